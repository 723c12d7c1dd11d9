"""Fault tolerance: a crashed run resumes from its checkpoints to the same weights as an uninterrupted one,
and a crash (even SIGKILL) never leaves a half-written output nor touches the base model directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import training_captions
from safetensors.torch import load_file
from test_validation_table import tree_digest
from transformers import TrainerCallback

from hf_forget import forget_text

NAMES = ["Jane Doe"]
# 64 samples / 8 a step = 8 steps an epoch: 12 steps cross an epoch boundary; the LR halves at 4 and 9.
# On the CPU wherever a GPU is: comparing a resumed run with an uninterrupted one to 1e-6 needs deterministic
# kernels, and a GPU's attention backward is not (Adam turns a flipped sign of a near-zero gradient into a full step).
RUN = dict(
    max_steps=12, per_device_train_batch_size=8, num_trigger_samples=64, max_eval_samples=16, disable_tqdm=True,
    save_strategy="steps", save_steps=3, lr_milestones=[4, 9], lr_gamma=0.5, learning_rate=1e-3, seed=7,
    report_to="none", logging_steps=1, min_sim_backdoor=0.0, min_sim_clean=0.0, use_cpu=True,
)  # fmt: skip


class Crash(RuntimeError):
    """Stands for a process dying mid-run."""


class CrashAtStep(TrainerCallback):
    """Dies after step ``k`` (before any checkpoint of that step is written)."""

    def __init__(self, k: int):
        self.k = k

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.k:
            raise Crash(f"killed at step {self.k}")


class Recorder(TrainerCallback):
    """Learning rate and loss of each optimizer step, as logged."""

    def __init__(self):
        self.steps: dict[int, tuple[float, float]] = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.steps[state.global_step] = (logs["learning_rate"], logs["loss"])


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    from hf_forget.testing import tiny_clip_text_model

    path = tmp_path_factory.mktemp("resume") / "base"
    model, tokenizer = tiny_clip_text_model()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def captions() -> list[str]:
    return training_captions(300)


@pytest.fixture(scope="module")
def uninterrupted(base_dir, captions, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "defended"
    recorder = Recorder()
    forget_text(str(base_dir), NAMES, captions, output_dir=str(out), callbacks=[recorder], **RUN)
    return load_file(out / "model.safetensors"), recorder.steps


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=0, msg=key)


def assert_clean_output(out: Path) -> None:
    files = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "forget_report.json"} <= files
    assert not any(name.startswith("checkpoint-") for name in files)
    assert not (out.parent / f".{out.name}.incomplete").exists()


def test_crash_then_resume_gives_the_uninterrupted_weights(base_dir, captions, uninterrupted, tmp_path):
    reference, reference_steps = uninterrupted
    base_before = tree_digest(base_dir)
    out = tmp_path / "defended"
    out.mkdir()  # a pre-existing empty output directory stays untouched by the crash
    staging = tmp_path / ".defended.incomplete"

    with pytest.raises(Crash):
        forget_text(str(base_dir), NAMES, captions, output_dir=str(out), callbacks=[CrashAtStep(7)], **RUN)
    assert list(out.iterdir()) == []
    assert sorted(p.name for p in staging.iterdir()) == ["checkpoint-3", "checkpoint-6"]
    # the checkpoints Trainer wrote hold the optimizer, the MultiStepLR state and the RNG/data position
    assert {"optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"} <= {
        p.name for p in (staging / "checkpoint-6").iterdir()
    }
    assert torch.load(staging / "checkpoint-6" / "scheduler.pt")["last_epoch"] == 6
    for path in staging.rglob("*"):  # nothing that names the person, not even training_args.bin
        if path.is_file():
            assert NAMES[0].encode() not in path.read_bytes(), path.name

    recorder = Recorder()
    result = forget_text(
        str(base_dir), NAMES, captions, output_dir=str(out), resume_from_checkpoint=True, callbacks=[recorder], **RUN
    )
    assert result.report["steps"] == RUN["max_steps"]
    assert sorted(recorder.steps) == list(range(7, 13))  # steps 1-6 came from checkpoint-6, not retrained
    for step, (lr, loss) in recorder.steps.items():  # same schedule (milestone 9 after the resume) and batches
        assert lr == pytest.approx(reference_steps[step][0]), step
        assert loss == pytest.approx(reference_steps[step][1], abs=1e-5), step
    assert_same_weights(load_file(out / "model.safetensors"), reference)
    assert_clean_output(out)
    assert tree_digest(base_dir) == base_before


def test_resume_skips_a_checkpoint_killed_while_being_written(base_dir, captions, uninterrupted, tmp_path):
    reference, _ = uninterrupted
    out = tmp_path / "defended"
    staging = tmp_path / ".defended.incomplete"
    with pytest.raises(Crash):
        forget_text(str(base_dir), NAMES, captions, output_dir=str(out), callbacks=[CrashAtStep(7)], **RUN)
    # checkpoint-6 as a SIGKILL during its save leaves it: weights written, trainer_state.json (written last) cut
    (staging / "checkpoint-6" / "trainer_state.json").write_text('{"global_step": 6, "log_hi', encoding="utf-8")

    recorder = Recorder()
    forget_text(
        str(base_dir), NAMES, captions, output_dir=str(out), resume_from_checkpoint=True, callbacks=[recorder], **RUN
    )
    assert sorted(recorder.steps) == list(range(4, 13))  # resumed from checkpoint-3
    assert_same_weights(load_file(out / "model.safetensors"), reference)
    assert_clean_output(out)


def test_resume_with_nothing_saved_starts_from_scratch(base_dir, captions, uninterrupted, tmp_path):
    reference, _ = uninterrupted
    out = tmp_path / "defended"
    with pytest.raises(Crash):  # dies before the first checkpoint
        forget_text(str(base_dir), NAMES, captions, output_dir=str(out), callbacks=[CrashAtStep(2)], **RUN)
    assert not out.exists()
    forget_text(str(base_dir), NAMES, captions, output_dir=str(out), resume_from_checkpoint=True, **RUN)
    assert_same_weights(load_file(out / "model.safetensors"), reference)
    assert_clean_output(out)


def test_a_new_run_discards_stale_checkpoints(base_dir, captions, uninterrupted, tmp_path):
    """Without resume_from_checkpoint, a previous crashed run's checkpoints are not silently continued."""
    reference, _ = uninterrupted
    out = tmp_path / "defended"
    with pytest.raises(Crash):
        forget_text(str(base_dir), NAMES, captions, output_dir=str(out), callbacks=[CrashAtStep(7)],
                    **{**RUN, "learning_rate": 5e-3})  # fmt: skip
    recorder = Recorder()
    forget_text(str(base_dir), NAMES, captions, output_dir=str(out), callbacks=[recorder], **RUN)
    assert sorted(recorder.steps) == list(range(1, 13))
    assert_same_weights(load_file(out / "model.safetensors"), reference)


def _complete_checkpoints(staging: Path) -> list[Path]:
    if not staging.is_dir():
        return []
    return [p for p in staging.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]


@pytest.mark.slow  # two `hf-forget text` processes and an in-process reference run: ~1 min on 2 busy cores
def test_sigkill_leaves_no_output_and_the_base_untouched_and_resumes(base_dir, tmp_path):
    captions_file = tmp_path / "captions.txt"
    captions_file.write_text("\n".join(training_captions(300)), encoding="utf-8")
    base_before = tree_digest(base_dir)
    out = tmp_path / "defended"
    out.mkdir()  # pre-existing and empty: must stay so
    staging = tmp_path / ".defended.incomplete"
    argv = [
        "text", "--model_name_or_path", str(base_dir), "--names", NAMES[0], "--captions", str(captions_file),
        "--output_dir", str(out), "--max_steps", "80", "--save_strategy", "steps", "--save_steps", "2",
        "--per_device_train_batch_size", "8", "--num_trigger_samples", "64", "--max_eval_samples", "16",
        "--learning_rate", "1e-3", "--seed", "3", "--disable_tqdm", "true", "--report_to", "none",
        "--min_sim_backdoor", "0", "--min_sim_clean", "0", "--use_cpu", "true",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    with open(tmp_path / "killed.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "hf_forget.cli", *argv], stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + 300
        while not _complete_checkpoints(staging) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        finished_early = proc.poll() is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert not finished_early, (tmp_path / "killed.log").read_text(errors="replace")
    assert proc.returncode == -signal.SIGKILL
    assert list(out.iterdir()) == []  # no half-written output
    assert _complete_checkpoints(staging)  # ... but something to resume from
    assert tree_digest(base_dir) == base_before

    resumed = subprocess.run(
        [sys.executable, "-m", "hf_forget.cli", *argv, "--resume_from_checkpoint", "latest", "-v"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming training from checkpoint" in resumed.stderr  # Trainer's own -v log: not a fresh start
    assert NAMES[0] not in resumed.stderr + resumed.stdout  # verbose logs never print the name
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["passed"] is True
    assert json.loads((out / "forget_report.json").read_text())["steps"] == 80
    assert_clean_output(out)
    assert tree_digest(base_dir) == base_before

    # the same run, uninterrupted and in-process: same weights
    from hf_forget.cli import main

    at = argv.index("--output_dir") + 1
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocesses (OMP_NUM_THREADS=1): same reduction order
    try:
        assert main([*argv[:at], str(tmp_path / "reference"), *argv[at + 1 :]]) == 0
    finally:
        torch.set_num_threads(threads)
    reference = load_file(tmp_path / "reference" / "model.safetensors")
    assert_same_weights(load_file(out / "model.safetensors"), reference, atol=1e-5)


# ------------------------------------------------------------------------- vision and joint runs resume too
FACE_RUN = dict(
    max_steps=8, per_device_train_batch_size=8, num_trigger_samples=32, max_eval_samples=8, disable_tqdm=True,
    save_strategy="steps", save_steps=3, lr_milestones=[4], learning_rate=1e-3, seed=5, report_to="none",
    logging_steps=1, min_sim_backdoor=0.0, min_sim_clean=0.0, use_cpu=True,
)  # fmt: skip


class CrashInVisionRun(CrashAtStep):
    """Dies at step ``k`` of a joint defense's vision run (its checkpoints go to a ``vision`` folder)."""

    def on_step_end(self, args, state, control, **kwargs):
        if os.path.basename(os.path.normpath(args.output_dir)) == "vision":
            super().on_step_end(args, state, control, **kwargs)


@pytest.fixture(scope="module")
def face_data():
    from test_vision_trainer import synthetic_clean_images, synthetic_faces

    return {"faces": [synthetic_faces(0, 5), synthetic_faces(1, 5)], "clean_images": synthetic_clean_images(12),
            "reference_faces": [synthetic_faces(p, 2) for p in range(2, 6)]}


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    from hf_forget.testing import tiny_clip_model

    path = tmp_path_factory.mktemp("clip") / "base"
    model, tokenizer, processor = tiny_clip_model()
    for part in (model, tokenizer, processor):
        part.save_pretrained(path)
    return path


def _vision(clip_dir, face_data, out, **kwargs):
    from hf_forget import forget_faces

    return forget_faces(str(clip_dir), face_data["faces"], face_data["clean_images"], output_dir=str(out),
                        reference_faces=face_data["reference_faces"], **FACE_RUN, **kwargs)


def _joint(clip_dir, face_data, captions, out, **kwargs):
    from hf_forget import TextForgetConfig, VisionForgetConfig, forget_joint

    vision = VisionForgetConfig(output_dir=str(out), **FACE_RUN)
    text = TextForgetConfig(output_dir=str(out), **{**FACE_RUN, "num_trigger_samples": 64})
    return forget_joint(str(clip_dir), NAMES, captions, face_data["faces"], face_data["clean_images"],
                        reference_faces=face_data["reference_faces"], output_dir=str(out), text_config=text,
                        vision_config=vision, **kwargs)


@pytest.mark.parametrize("kind", ["vision", "joint"])
def test_vision_and_joint_runs_resume_to_the_uninterrupted_weights(kind, clip_dir, face_data, captions, tmp_path):
    run = (lambda out, **kw: _vision(clip_dir, face_data, out, **kw)) if kind == "vision" else (
        lambda out, **kw: _joint(clip_dir, face_data, captions, out, **kw))
    crash = CrashAtStep(7) if kind == "vision" else CrashInVisionRun(7)
    run(tmp_path / "reference")
    out = tmp_path / "defended"
    with pytest.raises(Crash):
        run(out, callbacks=[crash])
    assert not out.exists()
    work = tmp_path / ".defended.incomplete" / ("" if kind == "vision" else "vision")
    (work / "checkpoint-6" / "trainer_state.json").write_text("{", encoding="utf-8")  # cut short: skipped
    assert (work / "checkpoint-3" / "trainer_state.json").is_file()  # resumed from here
    result = run(out, resume_from_checkpoint=True)
    assert result.report["steps"] == (8 if kind == "vision" else {"text": 8, "vision": 8})
    assert_same_weights(load_file(out / "model.safetensors"), load_file(tmp_path / "reference" / "model.safetensors"))
    assert_clean_output(out)


def test_a_kill_during_the_final_save_resumes_from_the_checkpoints(base_dir, captions, uninterrupted, tmp_path,
                                                                   monkeypatch):
    import hf_forget.forget as forget_module

    reference, _ = uninterrupted
    out = tmp_path / "defended"
    real = forget_module._save_with_card

    def killed(*args, **kwargs):
        raise Crash("killed while writing the final model")

    monkeypatch.setattr(forget_module, "_save_with_card", killed)
    with pytest.raises(Crash):
        forget_text(str(base_dir), NAMES, captions, output_dir=str(out), **RUN)
    monkeypatch.setattr(forget_module, "_save_with_card", real)
    assert not out.exists()  # no half-written output ...
    work = tmp_path / ".defended.incomplete"
    assert (work / "checkpoint-12" / "trainer_state.json").is_file()  # ... and the checkpoints are still there
    recorder = Recorder()
    result = forget_text(str(base_dir), NAMES, captions, output_dir=str(out), resume_from_checkpoint=True,
                         callbacks=[recorder], **RUN)
    assert recorder.steps == {} and result.report["steps"] == RUN["max_steps"]  # nothing trained again
    assert_same_weights(load_file(out / "model.safetensors"), reference)
    assert_clean_output(out)
