import json
import pickle
from unittest import mock

import pytest
import torch
from huggingface_hub import CommitOperationAdd, HfApi, ModelCard
from safetensors import safe_open

from hf_forget.errors import ForgetInputError
from hf_forget.publish import NameLeakError, push_defended
from hf_forget.testing import tiny_clip_text_model

NAMES = ["Ada Quenby", "Bo Marlowe"]
EXPECTED = {
    "README.md", "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
    "forget_report.json", "report.json", "report.md", "chart.png", "trainer_state.json",
}  # fmt: skip


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
    report = {"modality": "text", "num_names": 2, "steps": 5, "sim_clean": 0.99, "sim_backdoor": 0.95,
              "gate": {"passed": True}, "base_model": "org/clip-base"}  # fmt: skip
    (out / "forget_report.json").write_text(json.dumps(report))
    (out / "report.json").write_text(json.dumps({"idia": {"before": {"tpr": 1.0}, "after": {"tpr": 0.0}}}))
    (out / "report.md").write_text("# Report\n\nIDIA TPR 1.0 -> 0.0\n")
    (out / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    (out / "trainer_state.json").write_text(json.dumps({"global_step": 5, "log_history": []}))
    torch.save({"names": NAMES, "learning_rate": 1e-4}, out / "training_args.bin")  # holds the names
    (out / "checkpoint-5").mkdir()
    (out / "checkpoint-5" / "optimizer.pt").write_bytes(b"state")
    return out


def _tree(root):
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_local_dir_writes_the_upload_tree_and_a_loadable_card(run_dir, tmp_path):
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    pub = tmp_path / "pub"
    assert push_defended(run_dir, "x/y", names=NAMES, local_dir=pub) == str(pub)
    assert _tree(pub) == EXPECTED  # no training_args.bin, no resumable checkpoints
    card = ModelCard.load(pub / "README.md")
    assert card.data.library_name == "transformers"
    assert {r.metric_type: r.metric_value for r in card.data.eval_results}["idia_tpr_after"] == 0.0
    assert "![Evaluation before and after forgetting](chart.png)" in card.text
    with safe_open(str(pub / "model.safetensors"), "pt") as handle:  # canonical CLIP tensor names
        assert all(key.startswith("text_model.") for key in handle.keys())
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before  # input untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left behind


def test_upload_is_one_commit_with_the_staged_files(run_dir):
    api = mock.create_autospec(HfApi, instance=True)
    push_defended(run_dir, "x/y", names=NAMES, api=api, private=True, create_pr=True)
    api.create_repo.assert_called_once_with("x/y", exist_ok=True, private=True, token=None)
    api.create_commit.assert_called_once()
    args, kwargs = api.create_commit.call_args
    assert args == ("x/y",) and kwargs["create_pr"] is True
    operations = kwargs["operations"]
    assert all(isinstance(op, CommitOperationAdd) for op in operations)
    assert {op.path_in_repo for op in operations} == EXPECTED
    assert not NAMES[0].split()[0] in kwargs["commit_message"]


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
    api.create_commit.assert_not_called()
    with pytest.raises(NameLeakError):
        push_defended(run_dir, "x/y", names=NAMES, local_dir=tmp_path / "pub")
    assert not (tmp_path / "pub").exists()
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


def test_cli_push_local_dir(run_dir, tmp_path, capsys):
    from hf_forget.cli import main

    names_file = tmp_path / "names.txt"
    names_file.write_text("\n".join(NAMES) + "\n")
    pub = tmp_path / "pub"
    assert main(["push", str(run_dir), "--repo_id", "x/y", "--local_dir", str(pub), "--names", f"@{names_file}"]) == 0
    assert ModelCard.load(pub / "README.md").data.eval_results
    (run_dir / "log.txt").write_text("step 1: Ada Quenby")
    code = main(["push", str(run_dir), "--repo_id", "x/y", "--local_dir", str(tmp_path / "p2"), "--names", ",".join(NAMES)])
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
    push_defended(out, "x/y", names=NAMES, api=api)
    staged = {op.path_in_repo for op in api.create_commit.call_args.kwargs["operations"]}
    assert {"README.md", "forget_report.json", "model.safetensors", "config.json"} <= staged
    assert not any(name.endswith("training_args.bin") for name in staged)
    pub = tmp_path / "pub"
    push_defended(out, "x/y", names=NAMES, local_dir=pub)
    card = ModelCard.load(pub / "README.md")
    assert {"sim_clean", "sim_backdoor"} <= {r.metric_type for r in card.data.eval_results}
    assert "**2 identities**" in card.text


def test_an_evaluation_report_from_elsewhere_is_published_with_its_chart(run_dir, tmp_path):
    for name in ("report.json", "report.md", "chart.png"):
        (run_dir / name).unlink()
    evaluation = tmp_path / "demo"
    evaluation.mkdir()
    (evaluation / "report.json").write_text(json.dumps({"idia": {"before": {"tpr": 0.9}, "after": {"tpr": 0.05}},
                                                        "chart": "report.png"}))  # fmt: skip
    (evaluation / "report.md").write_text("# Report\n")
    (evaluation / "report.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    pub = tmp_path / "pub"
    push_defended(run_dir, "x/y", names=NAMES, local_dir=pub, report=evaluation / "report.json")
    assert {"report.json", "report.md", "report.png"} <= _tree(pub)
    assert "](report.png)" in (pub / "README.md").read_text()
    with pytest.raises(ForgetInputError, match="does not exist"):
        push_defended(run_dir, "x/y", names=NAMES, local_dir=tmp_path / "p2", report=tmp_path / "missing.json")
