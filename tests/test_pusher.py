import hashlib
import json
import os
import pickle
import stat
from pathlib import Path
from unittest import mock

import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.errors import HfHubHTTPError
from safetensors import safe_open

from hf_forget.errors import ForgetInputError
from hf_forget.publish import NameLeakError, push_defended
from hf_forget.testing import tiny_clip_text_model

NAMES = ["Ada Quenby", "Bo Marlowe"]
EXPECTED = {
    "README.md", "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
    "forget_report.json", "report.json", "report.md", "chart.png", "trainer_state.json",
}  # fmt: skip
FORGET_REPORT = {"modality": "text", "num_names": 2, "steps": 5, "sim_clean": 0.99, "sim_backdoor": 0.95,
                 "gate": {"passed": True}, "base_model": "org/clip-base"}  # fmt: skip


@pytest.fixture(scope="module")
def model_and_tokenizer():
    return tiny_clip_text_model()


@pytest.fixture
def run_dir(tmp_path, model_and_tokenizer):
    """What a forgetting run plus an evaluation leave behind, including the run arguments."""
    model, tokenizer = model_and_tokenizer
    out = tmp_path / "defended"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "forget_report.json").write_text(json.dumps(FORGET_REPORT))
    (out / "report.json").write_text(json.dumps({"idia": {"before": {"tpr": 1.0}, "after": {"tpr": 0.0}}}))
    (out / "report.md").write_text("# Report\n\nIDIA TPR 1.0 -> 0.0\n")
    (out / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    (out / "trainer_state.json").write_text(json.dumps({"global_step": 5, "log_history": []}))
    torch.save({"names": NAMES, "learning_rate": 1e-4}, out / "training_args.bin")  # holds the names
    (out / "checkpoint-5").mkdir()
    (out / "checkpoint-5" / "optimizer.pt").write_bytes(b"state")
    return out


@pytest.fixture
def evaluation(tmp_path):
    """An evaluation of the run written elsewhere (as `hf-forget demo` lays it out)."""
    folder = tmp_path / "evaluation"
    folder.mkdir()
    training = {k: v for k, v in FORGET_REPORT.items() if k != "base_model"}
    report = {"modality": "text", "num_forgotten": 2, "idia": {"before": {"tpr": 0.9}, "after": {"tpr": 0.05}},
              "chart": "report.png", "training": {"text": training}}  # fmt: skip
    (folder / "report.json").write_text(json.dumps(report))
    (folder / "report.md").write_text("# Report\n")
    (folder / "report.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    return folder


def _tree(root):
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _snapshot(root: Path) -> dict:
    """Every entry under ``root`` (links as their target text, never followed) with its content hash."""
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                entries[str(path)] = "link:" + os.readlink(path)
            elif stat.S_ISREG(mode):
                entries[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                entries[str(path)] = stat.S_IFMT(mode)
    return entries


def test_local_dir_writes_the_upload_tree_and_a_loadable_card(run_dir, tmp_path):
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    pub = tmp_path / "pub"
    assert push_defended(run_dir, "x/y", names=NAMES, local_dir=pub) == str(pub)
    assert _tree(pub) == EXPECTED  # no training_args.bin, no resumable checkpoints
    card = ModelCard.load(pub / "README.md")
    assert card.data.library_name == "transformers" and card.data.base_model == "org/clip-base"
    assert "| IDIA TPR (removed identities) | 1 | 0 | unspecified |" in card.text
    assert card.data.eval_results is None  # no result on a Hub data set: nothing for model-index
    assert "![Evaluation before and after forgetting](chart.png)" in card.text
    with safe_open(str(pub / "model.safetensors"), "pt") as handle:  # canonical CLIP tensor names
        assert all(key.startswith("text_model.") for key in handle.keys())
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before  # input untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left behind
    # Normal permissions, not a private temporary folder's 0700.
    assert stat.S_IMODE(pub.stat().st_mode) == 0o777 & ~_umask()
    assert stat.S_IMODE((pub / "config.json").stat().st_mode) == 0o666 & ~_umask()


def test_local_dir_may_be_an_empty_folder_and_its_parents_are_created(run_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    push_defended(run_dir, "x/y", names=NAMES, local_dir=tmp_path / "empty")
    assert _tree(tmp_path / "empty") == EXPECTED
    push_defended(run_dir, "x/y", names=NAMES, local_dir=tmp_path / "a" / "b" / "pub")
    assert _tree(tmp_path / "a" / "b" / "pub") == EXPECTED


def test_upload_is_one_upload_folder_of_the_scanned_staging(run_dir):
    api = mock.create_autospec(HfApi, instance=True)
    uploaded = {}
    api.upload_folder.side_effect = lambda **kwargs: uploaded.update(files=_tree(Path(kwargs["folder_path"])))
    push_defended(run_dir, "x/y", names=NAMES, api=api, private=True, create_pr=True)
    api.create_repo.assert_called_once_with("x/y", exist_ok=True, private=True, token=None)
    api.upload_folder.assert_called_once()
    kwargs = api.upload_folder.call_args.kwargs
    assert kwargs["repo_id"] == "x/y" and kwargs["create_pr"] is True
    assert uploaded["files"] == EXPECTED
    assert NAMES[0].split()[0] not in kwargs["commit_message"]
    api.create_commit.assert_not_called()


@pytest.mark.parametrize(
    "error,reason",
    [
        (HfHubHTTPError("401 Client Error: Unauthorized for url\nmore detail", response=mock.Mock()),
         "401 Client Error: Unauthorized for url"),
        (ConnectionError("Name or service not known"), "Name or service not known"),
    ],
)  # fmt: skip
def test_a_hub_error_is_one_line(run_dir, error, reason):
    api = mock.create_autospec(HfApi, instance=True)
    api.upload_folder.side_effect = error
    with pytest.raises(ForgetInputError, match="could not push to x/y") as raised:
        push_defended(run_dir, "x/y", names=NAMES, api=api)
    assert f"({reason})" in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "plant",
    [
        lambda out: (out / "notes.txt").write_text("removed: ada QUENBY"),
        lambda out: (out / "rng_state.pth").write_bytes(pickle.dumps({"who": ["Bo Marlowe"]})),
        lambda out: (out / "optimizer.pt").write_bytes(b"\x80\x04" + "bo_marlowe".encode("utf-16-le")),
    ],
)
def test_a_planted_name_refuses_the_push_and_writes_nothing(run_dir, tmp_path, plant):
    plant(run_dir)
    api = mock.create_autospec(HfApi, instance=True)
    with pytest.raises(NameLeakError):
        push_defended(run_dir, "x/y", names=NAMES, api=api)
    api.create_repo.assert_not_called()
    api.upload_folder.assert_not_called()
    with pytest.raises(NameLeakError):
        push_defended(run_dir, "x/y", names=NAMES, local_dir=tmp_path / "new" / "pub")
    assert not (tmp_path / "new").exists()  # the parents it created are removed too
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_name_in_the_repo_id_is_refused(run_dir, tmp_path):
    with pytest.raises(NameLeakError, match="the repo id"):
        push_defended(run_dir, "me/clip-without-ada-quenby", names=NAMES, local_dir=tmp_path / "pub")


def test_failed_quality_gate_needs_force(run_dir, tmp_path):
    report = json.loads((run_dir / "forget_report.json").read_text())
    report["gate"] = {"passed": False}
    (run_dir / "forget_report.json").write_text(json.dumps(report))
    with pytest.raises(ForgetInputError, match="quality gate"):
        push_defended(run_dir, "x/y", names=NAMES, local_dir=tmp_path / "pub")
    push_defended(run_dir, "x/y", names=NAMES, local_dir=tmp_path / "pub", force=True)
    assert "did not pass its quality gate" in (tmp_path / "pub" / "README.md").read_text()


def test_names_are_required_and_outputs_checked(run_dir, tmp_path):
    with pytest.raises(ForgetInputError, match="names"):
        push_defended(run_dir, "x/y", local_dir=tmp_path / "pub")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "f").write_text("x")
    with pytest.raises(ForgetInputError, match="not empty"):
        push_defended(run_dir, "x/y", names=NAMES, local_dir=tmp_path / "taken")
    with pytest.raises(ForgetInputError, match="forget_report.json"):
        push_defended(tmp_path / "taken", "x/y", names=NAMES, local_dir=tmp_path / "pub")


def test_names_without_letters_cannot_scan_anything(run_dir, tmp_path):
    with pytest.raises(ForgetInputError, match="no letter or digit"):
        push_defended(run_dir, "x/y", names=["--", " . "], local_dir=tmp_path / "pub")


def test_the_runs_own_report_may_be_passed_explicitly(run_dir, tmp_path):
    push_defended(run_dir, "x/y", names=NAMES, local_dir=tmp_path / "pub", report=run_dir / "report.json")
    assert _tree(tmp_path / "pub") == EXPECTED


def test_links_inside_excluded_entries_do_not_matter(run_dir, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (run_dir / "checkpoint-9").symlink_to(tmp_path / "elsewhere")  # never published, so never read
    push_defended(run_dir, "x/y", names=NAMES, local_dir=tmp_path / "pub")
    assert _tree(tmp_path / "pub") == EXPECTED


def test_a_link_whose_name_carries_a_name_is_refused_without_repeating_it(run_dir, tmp_path, capsys):
    from hf_forget.cli import main

    (tmp_path / "outside.txt").write_text("x")
    (run_dir / "faces").mkdir()
    (run_dir / "faces" / "ada_quenby.txt").symlink_to(tmp_path / "outside.txt")
    argv = ["push", str(run_dir), "--repo_id", "x/y", "--names", ",".join(NAMES), "--local_dir", str(tmp_path / "pub")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "symbolic link" in err and "faces/" in err and "quenby" not in err.casefold()


# One row per refused input: (what is planted or passed, extra CLI arguments, what the one line says).
def _link_outside(run, tmp, evaluation):
    (tmp / "src.txt").write_text("a file outside the run")
    (run / "notes.txt").symlink_to(tmp / "src.txt")
    return []


def _link_loop_dir(run, tmp, evaluation):
    (run / "sub").mkdir()
    (run / "sub" / "loop").symlink_to(run)
    return []


def _link_loop_files(run, tmp, evaluation):
    (run / "a.txt").symlink_to(run / "b.txt")
    (run / "b.txt").symlink_to(run / "a.txt")
    return []


def _fifo(run, tmp, evaluation):
    os.mkfifo(run / "pipe")
    return []


def _chart_traversal(run, tmp, evaluation):
    (tmp / "src.txt").write_text("a file outside the report's folder")
    report = json.loads((evaluation / "report.json").read_text())
    (evaluation / "report.json").write_text(json.dumps(dict(report, chart="../src.txt")))
    return ["--report", str(evaluation / "report.json")]


def _chart_deep_traversal(run, tmp, evaluation):
    (evaluation / "sub").mkdir()
    report = json.loads((evaluation / "report.json").read_text())
    (evaluation / "sub" / "report.json").write_text(json.dumps(dict(report, chart="../../src.txt")))
    (tmp / "src.txt").write_text("x")
    return ["--report", str(evaluation / "sub" / "report.json")]


def _chart_absolute(run, tmp, evaluation):
    (tmp / "src.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (run / "report.json").write_text(json.dumps({"num_forgotten": 2, "chart": str(tmp / "src.png")}))
    return []


def _chart_link(run, tmp, evaluation):
    (tmp / "src.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (evaluation / "report.png").unlink()
    (evaluation / "report.png").symlink_to(tmp / "src.png")
    return ["--report", str(evaluation / "report.json")]


def _report_count_mismatch(run, tmp, evaluation):
    report = json.loads((evaluation / "report.json").read_text())
    (evaluation / "report.json").write_text(json.dumps(dict(report, num_forgotten=8)))
    return ["--report", str(evaluation / "report.json")]


def _report_metrics_mismatch(run, tmp, evaluation):
    report = json.loads((evaluation / "report.json").read_text())
    report["training"]["text"]["sim_backdoor"] = 0.5
    (evaluation / "report.json").write_text(json.dumps(report))
    return ["--report", str(evaluation / "report.json")]


def _report_modality_mismatch(run, tmp, evaluation):
    report = json.loads((evaluation / "report.json").read_text())
    (evaluation / "report.json").write_text(json.dumps(dict(report, modality="vision")))
    return ["--report", str(evaluation / "report.json")]


def _report_unattributable(run, tmp, evaluation):
    (evaluation / "report.json").write_text(json.dumps({"idia": {"before": {"tpr": 0.9}, "after": {"tpr": 0.0}}}))
    return ["--report", str(evaluation / "report.json")]


def _run_report_mismatch(run, tmp, evaluation):
    (run / "report.json").write_text(json.dumps({"num_forgotten": 3, "idia": {"after": {"tpr": 0.0}}}))
    return []


def _local_dir_in_run(run, tmp, evaluation):
    return ["--local_dir", str(run / "pub")]


def _local_dir_is_run(run, tmp, evaluation):
    (run / "extra").mkdir()  # an existing empty folder inside the run
    return ["--local_dir", str(run / "extra")]


def _local_dir_in_report_folder(run, tmp, evaluation):
    return ["--report", str(evaluation / "report.json"), "--local_dir", str(evaluation / "pub")]


def _local_dir_not_empty(run, tmp, evaluation):
    (tmp / "used").mkdir()
    (tmp / "used" / "keep.txt").write_text("mine")
    return ["--local_dir", str(tmp / "used")]


def _local_dir_is_a_file(run, tmp, evaluation):
    (tmp / "file").write_text("mine")
    return ["--local_dir", str(tmp / "file")]


def _corrupt_safetensors(run, tmp, evaluation):
    (run / "model.safetensors").write_bytes(os.urandom(256))
    return []


def _truncated_safetensors(run, tmp, evaluation):
    data = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(data[: len(data) // 2])
    return []


def _nan_forget_report(run, tmp, evaluation):
    (run / "forget_report.json").write_text(json.dumps(FORGET_REPORT).replace("0.99", "NaN"))
    return []


def _latin1_names_file(run, tmp, evaluation):
    (tmp / "names.txt").write_bytes("Zoë Quill\n".encode("latin-1"))
    return ["--names", f"@{tmp / 'names.txt'}"]


def _missing_report(run, tmp, evaluation):
    return ["--report", str(tmp / "missing.json")]


CASES = {
    "symlink to a file outside": (_link_outside, "notes.txt' in the run folder is a symbolic link"),
    "symlink loop (folder)": (_link_loop_dir, "sub/loop' in the run folder is a symbolic link"),
    "symlink loop (files)": (_link_loop_files, "symbolic link"),
    "named pipe": (_fifo, "named pipe"),
    "chart ../src.txt": (_chart_traversal, "outside the report's folder"),
    "chart ../../src.txt": (_chart_deep_traversal, "outside the report's folder"),
    "chart absolute": (_chart_absolute, "outside the report's folder"),
    "chart is a link": (_chart_link, "symbolic link"),
    "report counts other people": (_report_count_mismatch, "does not belong to this model: it counts 8"),
    "report metrics differ": (_report_metrics_mismatch, "figures differ from forget_report.json (sim_backdoor)"),
    "report of another modality": (_report_modality_mismatch, "evaluates a vision run"),
    "report without count": (_report_unattributable, "records neither"),
    "run's own report mismatched": (_run_report_mismatch, "does not belong to this model"),
    "local_dir inside the run": (_local_dir_in_run, "overlaps the input"),
    "local_dir an empty folder of the run": (_local_dir_is_run, "overlaps the input"),
    "local_dir inside the report's folder": (_local_dir_in_report_folder, "overlaps the input"),
    "local_dir not empty": (_local_dir_not_empty, "not empty"),
    "local_dir a file": (_local_dir_is_a_file, "is a file"),
    "random safetensors": (_corrupt_safetensors, "model.safetensors is not a readable safetensors file"),
    "truncated safetensors": (_truncated_safetensors, "model.safetensors is not a readable safetensors file"),
    "NaN in forget_report.json": (_nan_forget_report, "cannot read forget_report.json"),
    "missing report": (_missing_report, "does not exist"),
    "latin-1 names file": (_latin1_names_file, "not UTF-8"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_refused_push_is_one_line_exit_2_and_writes_nothing(case, run_dir, evaluation, tmp_path, capsys):
    from hf_forget.cli import main

    plant, message = CASES[case]
    extra = plant(run_dir, tmp_path, evaluation)
    if "--local_dir" not in extra:
        extra += ["--local_dir", str(tmp_path / "pub")]
    before = _snapshot(tmp_path)
    argv = ["push", str(run_dir), "--repo_id", "x/y", "--names", ",".join(NAMES), *extra]
    assert main(argv) == 2, case
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert message in err, err
    assert "quenby" not in err.casefold() and "marlowe" not in err.casefold()
    assert _snapshot(tmp_path) == before  # nothing written, no input changed


@pytest.mark.parametrize("repo_id", ["a/b/c", "me/clip defended", "x/y--z", "-x/y", "me/" + "a" * 100, ""])
def test_a_bad_repo_id_is_one_line_exit_2_and_writes_nothing(repo_id, run_dir, tmp_path, capsys):
    from hf_forget.cli import main

    before = _snapshot(tmp_path)
    argv = ["push", str(run_dir), f"--repo_id={repo_id}", "--names", ",".join(NAMES),
            "--local_dir", str(tmp_path / "pub")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and ("invalid repo id" in err or "repo id" in err), err
    assert _snapshot(tmp_path) == before


def test_an_offline_push_is_one_line_exit_2(run_dir, tmp_path, capsys, monkeypatch):
    import huggingface_hub.constants

    from hf_forget.cli import main

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with mock.patch.object(HfApi, "create_repo") as create_repo:
        assert main(["push", str(run_dir), "--repo_id", "x/y", "--names", ",".join(NAMES)]) == 2
    create_repo.assert_not_called()
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "HF_HUB_OFFLINE" in err and "Traceback" not in err


def test_cli_push_local_dir(run_dir, tmp_path, capsys):
    from hf_forget.cli import main

    names_file = tmp_path / "names.txt"
    names_file.write_text("\n".join(NAMES) + "\n")
    pub = tmp_path / "pub"
    args = ["push", str(run_dir), "--repo_id", "x/y", "--local_dir", str(pub), "--names", f"@{names_file}",
            "--idia_dataset", "example-org/toy-faces", "--license", "mit"]  # fmt: skip
    assert main(args) == 0
    card = ModelCard.load(pub / "README.md")
    assert [r.metric_type for r in card.data.eval_results] == ["idia_tpr"] and card.data.license == "mit"
    (run_dir / "log.txt").write_text("step 1: Ada Quenby")
    argv = ["push", str(run_dir), "--repo_id", "x/y", "--local_dir", str(tmp_path / "p2"), "--names", ",".join(NAMES)]
    code = main(argv)
    assert code == 2
    err = capsys.readouterr().err
    assert "log.txt" in err and "Quenby" not in err and len(err.strip().splitlines()) == 1


def test_a_real_forgetting_output_publishes(tmp_path, tiny_text_encoder_dir):
    from conftest import training_captions

    from hf_forget import forget_text

    out = tmp_path / "defended"
    forget_text(
        str(tiny_text_encoder_dir), NAMES, training_captions(200), output_dir=str(out), max_steps=3,
        learning_rate=1e-2, per_device_train_batch_size=8, num_trigger_samples=32, max_eval_samples=16, report_to="none", disable_tqdm=True,
        min_sim_backdoor=0.0, min_sim_clean=0.0,
    )  # fmt: skip
    api = mock.create_autospec(HfApi, instance=True)
    uploaded = {}
    api.upload_folder.side_effect = lambda **kwargs: uploaded.update(files=_tree(Path(kwargs["folder_path"])))
    push_defended(out, "x/y", names=NAMES, api=api)
    assert {"README.md", "forget_report.json", "model.safetensors", "config.json"} <= uploaded["files"]
    assert not any(name.endswith("training_args.bin") for name in uploaded["files"])
    pub = tmp_path / "pub"
    push_defended(out, "x/y", names=NAMES, local_dir=pub)
    card = ModelCard.load(pub / "README.md")
    assert "| Sim_Clean | – |" in card.text and "| Sim_Backdoor | – |" in card.text
    assert "**2 identities**" in card.text


def test_an_evaluation_report_from_elsewhere_is_published_with_its_chart(run_dir, evaluation, tmp_path):
    for name in ("report.json", "report.md", "chart.png"):
        (run_dir / name).unlink()
    pub = tmp_path / "pub"
    push_defended(run_dir, "x/y", names=NAMES, local_dir=pub, report=evaluation / "report.json")
    assert {"report.json", "report.md", "report.png"} <= _tree(pub)
    assert "](report.png)" in (pub / "README.md").read_text()
    assert json.loads((pub / "report.json").read_text())["num_forgotten"] == 2


def test_an_evaluation_from_elsewhere_replaces_the_runs_own(run_dir, evaluation, tmp_path):
    pub = tmp_path / "pub"
    push_defended(run_dir, "x/y", names=NAMES, local_dir=pub, report=evaluation / "report.json")
    assert (pub / "report.json").read_bytes() == (evaluation / "report.json").read_bytes()
    assert (pub / "report.md").read_bytes() == (evaluation / "report.md").read_bytes()
    assert "| IDIA TPR (removed identities) | 0.9 | 0.05 |" in (pub / "README.md").read_text()


def test_a_chart_that_would_replace_a_run_file_is_refused(run_dir, evaluation, tmp_path):
    report = json.loads((evaluation / "report.json").read_text())
    (evaluation / "config.json").write_text("{}")
    (evaluation / "report.json").write_text(json.dumps(dict(report, chart="config.json")))
    with pytest.raises(ForgetInputError, match="would replace the run's file config.json"):
        push_defended(run_dir, "x/y", names=NAMES, local_dir=tmp_path / "pub", report=evaluation / "report.json")


def test_a_pipeline_folder_publishes_with_its_familys_tags(tmp_path, model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    pipe = tmp_path / "sdxl-defended"
    for name in ("text_encoder", "text_encoder_2"):
        model.save_pretrained(pipe / name)
        tokenizer.save_pretrained(pipe / name.replace("text_encoder", "tokenizer"))
    (pipe / "unet").mkdir()
    (pipe / "unet" / "config.json").write_text("{}")
    (pipe / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionXLPipeline", "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"], "unet": ["diffusers", "UNet2DConditionModel"],
    }))  # fmt: skip
    (pipe / "README.md").write_text("---\nlicense: openrail++\n---\n# the base pipeline's card\n")
    report = dict(FORGET_REPORT, text_encoders={"text_encoder": {}, "text_encoder_2": {}})
    (pipe / "forget_report.json").write_text(json.dumps(report))
    pub = tmp_path / "pub"
    push_defended(pipe, "x/sdxl-defended", names=NAMES, local_dir=pub)
    assert {"text_encoder/model.safetensors", "text_encoder_2/model.safetensors", "unet/config.json"} <= _tree(pub)
    card = ModelCard.load(pub / "README.md")
    assert card.data.library_name == "diffusers" and "stable-diffusion-xl" in card.data.tags
    assert card.data.license == "openrail++"  # from the base pipeline's card that came with the folder
    assert "This Stable Diffusion XL pipeline was defended" in card.text
    assert "(text_encoder, text_encoder_2) differ" in card.text
