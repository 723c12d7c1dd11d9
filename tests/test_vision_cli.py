"""`hf-forget vision` / `hf-forget forget --modality ...` and examples/forget_faces.py, end to end on tiny models."""

import json
import os
import subprocess
import sys

import pytest
from transformers import CLIPModel, CLIPVisionModel

from hf_forget.cli import main
from hf_forget.testing import tiny_clip_model, tiny_clip_text_model, tiny_clip_vision_model
from test_vision_trainer import synthetic_clean_images, synthetic_faces

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--max_steps", "4", "--per_device_train_batch_size", "8", "--num_trigger_samples", "16",
        "--learning_rate", "1e-3", "--use_cpu", "--disable_tqdm", "true", "--min_sim_backdoor", "0",
        "--min_sim_clean", "0"]


def write_face_folders(root, groups, label: str = "Person Name"):
    """``root/<folder>/<label> <person>/<i>.png`` for each ``(folder, persons, pictures)`` of ``groups`` (synthetic
    faces), and 12 synthetic generic images in ``root/clean/``."""
    for folder, persons, n in groups:
        for person in persons:
            directory = root / folder / f"{label} {person}"
            directory.mkdir(parents=True)
            for i, image in enumerate(synthetic_faces(person, n)):
                image.save(directory / f"{i}.png")
    (root / "clean").mkdir()
    for i, image in enumerate(synthetic_clean_images(12)):
        image.save(root / "clean" / f"{i}.jpg")
    return root


@pytest.fixture
def face_inputs(tmp_path):
    """faces/<person>/..., clean/..., reference/<person>/... folders of synthetic images."""
    return write_face_folders(tmp_path, (("faces", (0, 1), 5), ("reference", range(2, 8), 2)))


@pytest.fixture
def vision_dir(tmp_path):
    model, processor = tiny_clip_vision_model()
    path = tmp_path / "base_vision"
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def vision_args(inputs, model_dir, out, *extra):
    return ["vision", "--model_name_or_path", str(model_dir), "--faces", str(inputs / "faces"),
            "--clean_images", str(inputs / "clean"), "--reference_faces", str(inputs / "reference"),
            "--output_dir", str(out), *FAST, *extra]


def test_vision_cli_writes_a_loadable_checkpoint_and_a_private_report(face_inputs, vision_dir, capsys):
    out = face_inputs / "defended"
    target = face_inputs / "target.safetensors"
    assert main(vision_args(face_inputs, vision_dir, out, "--save_target_embedding", str(target))) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 1 and json.loads(printed[0])["steps"] == 4  # stdout: the JSON summary only
    report = json.loads((out / "forget_report.json").read_text())
    assert report["modality"] == "vision" and report["num_identities"] == 2 and report["steps"] == 4
    assert {"sim_backdoor", "sim_clean", "sim_targets"} <= set(report)
    assert isinstance(CLIPVisionModel.from_pretrained(out), CLIPVisionModel)
    assert (out / "preprocessor_config.json").exists()
    assert all(b"Person Name" not in p.read_bytes() for p in [*out.iterdir(), target])
    # the cached target replaces the reference faces
    again = face_inputs / "again"
    args = vision_args(face_inputs, vision_dir, again)
    args[args.index("--reference_faces") : args.index("--reference_faces") + 2] = ["--target_embedding", str(target)]
    args[args.index("--max_steps") + 1] = "8"  # 4 steps close about half the gap the gate asks for: too close to call
    assert main(args) == 0 and (again / "config.json").exists()


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("too_few", "person folder #1 (of 2, in sorted order) has 1 readable images"),
        ("corrupt", "has 1 readable images (4 unreadable or corrupt files skipped)"),
        ("empty_clean", "clean image source has 0 readable images"),
        ("text_model", "not a CLIP vision encoder"),
        ("no_reference", "pass --reference_faces"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(face_inputs, vision_dir, tmp_path, capsys, breakage, message):
    model_dir = vision_dir
    args = vision_args(face_inputs, vision_dir, tmp_path / "out")
    person = face_inputs / "faces" / "Person Name 1"
    if breakage in ("too_few", "corrupt"):
        for image in sorted(person.iterdir())[1:]:
            image.unlink()
        if breakage == "corrupt":
            for i in range(4):
                (person / f"broken{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    elif breakage == "empty_clean":
        for image in (face_inputs / "clean").iterdir():
            image.unlink()
    elif breakage == "text_model":
        model, tokenizer = tiny_clip_text_model()
        model_dir = tmp_path / "text_model"
        model.save_pretrained(model_dir)
        args[args.index("--model_name_or_path") + 1] = str(model_dir)
    elif breakage == "no_reference":
        index = args.index("--reference_faces")
        del args[index : index + 2]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert "Person Name" not in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("with_carriers", [False, True])
def test_forget_both_writes_one_clip_model(face_inputs, tmp_path, capsys, trigger_captions_seen, with_carriers):
    model, tokenizer, processor = tiny_clip_model()
    base = tmp_path / "clip"
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    processor.save_pretrained(base)
    captions = tmp_path / "captions.txt"
    captions.write_text("\n".join(f"a photo of a red car number {i} on a road" for i in range(60)))
    out = tmp_path / "joint"
    args = ["forget", "--modality", "both", "--model_name_or_path", str(base), "--names", "Zorblax Quintavius",
            "--captions", str(captions), "--faces", str(face_inputs / "faces"), "--clean_images",
            str(face_inputs / "clean"), "--reference_faces", str(face_inputs / "reference"), "--output_dir", str(out),
            "--text_max_steps", "3", "--text_per_device_train_batch_size", "8", "--text_learning_rate", "1e-2",
            "--text_min_sim_clean", "0", "--text_min_sim_backdoor", "0", *FAST]
    if with_carriers:  # captions that carry the name in the text run
        carriers = tmp_path / "carriers.txt"
        carriers.write_text("\n".join(f"a portrait of the tall man number {i}" for i in range(20)))
        args += ["--trigger_captions", str(carriers)]
    assert main(args) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 1 and json.loads(printed[0])["text"]["sim_clean"] is not None
    assert trigger_captions_seen == [str(carriers) if with_carriers else None]
    report = json.loads((out / "forget_report.json").read_text())
    assert report["modality"] == "both" and report["text"]["steps"] == 3 and report["vision"]["steps"] == 4
    defended = CLIPModel.from_pretrained(out)
    assert not all(
        (a == b).all() for a, b in zip(defended.text_model.parameters(), model.text_model.parameters())
    ) and not all((a == b).all() for a, b in zip(defended.vision_model.parameters(), model.vision_model.parameters()))
    assert (out / "tokenizer_config.json").exists() and (out / "preprocessor_config.json").exists()
    for path in out.rglob("*"):
        assert not path.is_file() or b"Zorblax" not in path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_forget_needs_a_modality(capsys):
    assert main(["forget", "--output_dir", "x"]) == 2
    assert "--modality" in capsys.readouterr().err


def test_forget_with_a_modality_takes_that_command_s_options(tmp_path):
    from hf_forget.cli import forget
    from hf_forget.errors import ForgetInputError

    *_, options = forget.make_parser("vision").parse_args_and_config(
        ["--modality", "vision", "--output_dir", str(tmp_path), "--faces", "f"]
    )
    assert options.modality == "vision"
    with pytest.raises(ForgetInputError, match="unrecognized arguments: --text_max_steps"):  # a `both` option
        forget.make_parser("vision").parse_args_and_config(["--modality", "vision", "--output_dir", "o",
                                                           "--text_max_steps", "3"])  # fmt: skip


@pytest.mark.slow
def test_example_runs_under_accelerate_launch(face_inputs, vision_dir, tmp_path):
    out = tmp_path / "example_out"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
               os.path.join(REPO, "examples", "forget_faces.py"), *vision_args(face_inputs, vision_dir, out)[1:]]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["steps"] == 4  # one JSON line on stdout
    assert isinstance(CLIPVisionModel.from_pretrained(out), CLIPVisionModel)
