"""`hf-forget vision` and `hf-forget forget --modality both` with --strangers and --lookalikes_per_person, end to end
on tiny models and folders on disk (the refused inputs are rows of tests/test_validation_table.py)."""

import json

import pytest
from transformers import CLIPModel, CLIPVisionModel

from hf_forget.cli import main
from hf_forget.testing import tiny_clip_model, tiny_clip_vision_model
from test_vision_cli import FAST, write_face_folders


@pytest.fixture
def inputs(tmp_path):
    """faces/, reference/ and strangers/ (one subfolder per person, named like a person) and clean/."""
    groups = (("faces", (0, 1), 5), ("reference", range(2, 6), 2), ("strangers", range(10, 20), 3))
    return write_face_folders(tmp_path, groups, label="Stranger Name")


def _face_options(inputs, out) -> list[str]:
    return ["--faces", str(inputs / "faces"), "--clean_images", str(inputs / "clean"), "--reference_faces",
            str(inputs / "reference"), "--strangers", str(inputs / "strangers"), "--lookalikes_per_person", "2",
            "--target", "counterfactual", "--counterfactual_mode", "shift", "--output_dir", str(out), *FAST]


def _assert_written(out, stdout: str) -> dict:
    printed = stdout.splitlines()
    assert len(printed) == 1 and json.loads(printed[0])["output_dir"] == str(out)  # stdout: the JSON summary only
    for path in out.rglob("*"):  # no folder name of anyone reaches the output
        assert not path.is_file() or b"Stranger Name" not in path.read_bytes()
    return json.loads((out / "forget_report.json").read_text())


def test_vision_cli_chooses_counterfactual_people_and_lookalikes_among_strangers(inputs, capsys):
    model, processor = tiny_clip_vision_model()
    model.save_pretrained(inputs / "base")
    processor.save_pretrained(inputs / "base")
    out = inputs / "defended"
    code = main(["vision", "--model_name_or_path", str(inputs / "base"), *_face_options(inputs, out)])
    captured = capsys.readouterr()
    assert code in (0, 3), captured.err  # 3: written, but a 4-step tiny run may miss its gate
    report = _assert_written(out, captured.out)
    assert report["modality"] == "vision" and report["num_identities"] == 2 and report["steps"] == 4
    assert isinstance(CLIPVisionModel.from_pretrained(out), CLIPVisionModel)


def test_forget_both_cli_with_strangers_writes_one_clip_model(inputs, tmp_path, capsys, caplog):
    pytest.importorskip("faker")  # two names for two face folders: chosen by name, fillers from Faker
    model, tokenizer, processor = tiny_clip_model()
    for part in (model, tokenizer, processor):
        part.save_pretrained(inputs / "clip")
    captions = tmp_path / "captions.txt"
    captions.write_text("\n".join(f"a photo of a red car number {i} on a road" for i in range(60)))
    out = inputs / "joint"
    code = main(["forget", "--modality", "both", "--model_name_or_path", str(inputs / "clip"), "--names",
                 "Zorblax Quintavius,Quorra Blintz", "--captions", str(captions), *_face_options(inputs, out),
                 "--text_max_steps", "2", "--text_per_device_train_batch_size", "8",
                 "--text_min_sim_clean", "0", "--text_min_sim_backdoor", "0"])  # fmt: skip
    captured = capsys.readouterr()
    assert code in (0, 3), captured.err
    assert "strangers:" not in caplog.text  # two names for two face folders: chosen by name, no warning
    report = _assert_written(out, captured.out)
    assert report["modality"] == "both" and report["steps"] == {"text": 2, "vision": 4}
    assert isinstance(CLIPModel.from_pretrained(out), CLIPModel)
    for path in out.rglob("*"):
        assert not path.is_file() or b"Zorblax" not in path.read_bytes()
