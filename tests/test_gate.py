"""The quality gate: a run that misses its held-out thresholds exits 3, its output is marked as not passing,
and the pusher refuses to publish it unless forced."""

from __future__ import annotations

import json

import pytest
from conftest import training_captions

from hf_forget import TextForgetConfig, forget_text
from hf_forget.cli import EXIT_GATE, EXIT_USAGE, main
from hf_forget.errors import ForgetInputError
from hf_forget.publish.pusher import push_defended

NAME = "Jane Doe"
TINY_RUN = ["--max_steps", "4", "--per_device_train_batch_size", "8", "--num_trigger_samples", "32",
            "--max_eval_samples", "16", "--disable_tqdm", "true", "--report_to", "none"]  # fmt: skip


@pytest.fixture
def run_cli(tiny_text_encoder_dir, captions_file, tmp_path, capsys):
    def run(*extra: str) -> tuple[int, dict, str, str]:
        out = tmp_path / "defended"
        code = main(["text", "--model_name_or_path", str(tiny_text_encoder_dir), "--names", NAME,
                     "--captions", str(captions_file), "--output_dir", str(out), *TINY_RUN, *extra])  # fmt: skip
        captured = capsys.readouterr()
        report = json.loads((out / "forget_report.json").read_text()) if out.is_dir() else {}
        return code, report, captured.out, captured.err

    return run


@pytest.mark.parametrize("threshold", ["--min_sim_clean", "--min_sim_backdoor"])
def test_unreachable_threshold_exits_3_and_marks_the_output(run_cli, tmp_path, threshold):
    code, report, out, err = run_cli(threshold, "1.01")
    assert code == EXIT_GATE
    assert "quality gate not met" in err and "Traceback" not in err
    assert report["gate"]["passed"] is False
    assert report["gate"][threshold.lstrip("-")] == 1.01
    assert json.loads(out.strip().splitlines()[-1])["passed"] is False
    # the output is still complete (a reviewer can inspect it) and the staging dir is gone
    assert (tmp_path / "defended" / "model.safetensors").is_file()
    assert not (tmp_path / ".defended.incomplete").exists()


def test_reachable_thresholds_pass(run_cli):
    code, report, out, err = run_cli("--min_sim_clean", "0", "--min_sim_backdoor", "0", "--learning_rate", "1e-2")
    assert code == 0, err
    assert report["gate"] == {"passed": True, "min_sim_backdoor": 0.0, "min_sim_clean": 0.0, "improved_over_base": True}
    assert json.loads(out.strip().splitlines()[-1])["passed"] is True


def test_a_run_that_changes_nothing_does_not_pass_even_at_zero_thresholds(run_cli):
    # A small model may embed a name next to the neutral term before any training: the gate asks that the
    # backdoor close at least half the gap the base model left, not only that a threshold be cleared.
    code, report, _, err = run_cli("--min_sim_clean", "0", "--min_sim_backdoor", "0", "--learning_rate", "1e-12")
    assert code == EXIT_GATE and "Traceback" not in err
    assert report["gate"]["passed"] is False and report["gate"]["improved_over_base"] is False


@pytest.mark.parametrize("flags", [["--max_steps", "0"], ["--max_steps", "-1", "--num_train_epochs", "-1"],
                                   ["--learning_rate", "0"], ["--alpha", "nan"], ["--beta", "inf"],
                                   ["--lr_gamma", "nan"], ["--identity_residual_weight", "nan"]])
def test_settings_that_train_nothing_or_garbage_are_refused_up_front(run_cli, tmp_path, flags):
    code, report, _, err = run_cli(*flags)
    assert code == EXIT_USAGE and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "defended").exists()


def test_gate_thresholds_default_to_the_config(run_cli):
    fields = TextForgetConfig.__dataclass_fields__
    backdoor, clean = fields["min_sim_backdoor"].default, fields["min_sim_clean"].default
    assert 0 < backdoor <= 1 and 0 < clean <= 1  # a gate is on by default
    code, report, _, _ = run_cli()
    assert report["gate"]["min_sim_backdoor"] == backdoor and report["gate"]["min_sim_clean"] == clean
    suffixes = {"pooled": [""], "hidden": ["_hidden"], "both": ["", "_hidden"]}[fields["embedding"].default]
    passed = all(report[f"sim_backdoor{s}"] >= backdoor and report[f"sim_clean{s}"] >= clean for s in suffixes)
    passed = passed and report["gate"]["improved_over_base"]
    assert report["gate"]["passed"] is passed
    assert code == (0 if passed else EXIT_GATE)


def test_library_call_returns_a_failing_result_without_raising(tiny_text_encoder_dir, tmp_path):
    result = forget_text(
        str(tiny_text_encoder_dir), [NAME], training_captions(200), output_dir=str(tmp_path / "defended"),
        max_steps=2, per_device_train_batch_size=8, num_trigger_samples=16, max_eval_samples=8, disable_tqdm=True,
        report_to="none", min_sim_clean=1.01,
    )  # fmt: skip
    assert result.passed is False
    assert json.loads((tmp_path / "defended" / "forget_report.json").read_text())["gate"]["passed"] is False


def test_pusher_refuses_a_failing_run_unless_forced(run_cli, tmp_path, capsys):
    code, _, _, _ = run_cli("--min_sim_clean", "1.01")
    assert code == EXIT_GATE
    run_dir = tmp_path / "defended"

    with pytest.raises(ForgetInputError, match="quality gate"):
        push_defended(run_dir, "me/clip-defended", names=[NAME], local_dir=tmp_path / "refused")
    assert not (tmp_path / "refused").exists()

    push = ["push", str(run_dir), "--repo_id", "me/clip-defended", "--names", NAME]
    assert main([*push, "--local_dir", str(tmp_path / "refused")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "quality gate" in err and "Traceback" not in err and NAME not in err
    assert not (tmp_path / "refused").exists()

    assert main([*push, "--local_dir", str(tmp_path / "forced"), "--force"]) == 0
    card = (tmp_path / "forced" / "README.md").read_text(encoding="utf-8")
    assert "did not pass its quality gate" in card
    published = json.loads((tmp_path / "forced" / "forget_report.json").read_text())
    assert published["gate"]["passed"] is False
