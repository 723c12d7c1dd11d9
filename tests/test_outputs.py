"""The one output folder (hf_forget.outputs): checked up front, written aside, swapped in whole; a run killed at
any point leaves the old output or the new one complete, never neither, and never touches an input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import hf_forget.outputs as outputs
from hf_forget import ForgetInputError
from hf_forget.outputs import OutputFolder, latest_complete_checkpoint


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no cleanup."""


def old_output(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_text("old")
    return out


def write_new(folder: str) -> None:
    Path(folder, "model.safetensors").write_text("new")


def contents(out: Path) -> str | None:
    return (out / "model.safetensors").read_text() if (out / "model.safetensors").is_file() else None


@pytest.mark.parametrize("exchange", [True, False], ids=["atomic-exchange", "two-renames"])
@pytest.mark.parametrize("point", ["write", "exchange", "replace-old", "replace-new", "remove-old", "remove-work"])
def test_a_kill_at_any_point_of_an_overwrite_leaves_one_complete_output(tmp_path, monkeypatch, exchange, point):
    out = old_output(tmp_path)
    real_replace, real_remove, real_exchange = os.replace, outputs._remove, outputs._exchange
    calls = {"replace": 0}

    def replace(a, b):
        calls["replace"] += 1
        if (point == "replace-old" and calls["replace"] == 1) or (point == "replace-new" and calls["replace"] == 2):
            raise Killed
        return real_replace(a, b)

    def remove(path):
        if (point == "remove-old" and Path(path).name in (".out.staged", ".out.previous") and Path(path).exists()
                and contents(Path(path)) == "old") or (point == "remove-work" and Path(path).name == ".out.incomplete"):
            raise Killed
        return real_remove(path)

    def exchange_fn(a, b):
        if point == "exchange":
            raise Killed
        return real_exchange(a, b) if exchange else False

    def write(folder):
        if point == "write":
            raise Killed
        write_new(folder)

    monkeypatch.setattr(outputs.os, "replace", replace)
    monkeypatch.setattr(outputs, "_remove", remove)
    monkeypatch.setattr(outputs, "_exchange", exchange_fn)
    folder = OutputFolder(out, overwrite=True)
    folder.work_dir.mkdir()
    try:
        folder.commit(write)
    except Killed:
        pass
    monkeypatch.undo()
    OutputFolder(out, overwrite=True)  # the next run starts by finishing what the killed one left
    assert contents(out) in ("old", "new")
    assert not (tmp_path / ".out.previous").exists() and not (tmp_path / ".out.staged").exists()


def test_a_new_output_appears_only_when_complete(tmp_path):
    out = tmp_path / "new"
    folder = OutputFolder(out)

    def write(staged):
        assert not out.exists()
        write_new(staged)

    folder.commit(write)
    assert contents(out) == "new" and not folder.work_dir.exists() and not folder.staged_dir.exists()


def test_training_logs_move_with_the_output(tmp_path):
    folder = OutputFolder(tmp_path / "out")
    (folder.work_dir / "runs" / "x").mkdir(parents=True)
    (folder.work_dir / "runs" / "x" / "events").write_text("e")
    (folder.work_dir / "checkpoint-3").mkdir()
    folder.commit(write_new)
    assert (tmp_path / "out" / "runs" / "x" / "events").is_file()
    assert not (tmp_path / "out" / "checkpoint-3").exists()


@pytest.mark.parametrize("where", ["same", "inside", "around"])
def test_an_output_on_or_in_or_around_an_input_is_refused(tmp_path, where):
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    out = {"same": model, "inside": model / "sub", "around": tmp_path}[where]
    with pytest.raises(ForgetInputError, match="overlaps the input"):
        OutputFolder(out, inputs=[model], overwrite=True)


def test_a_link_a_file_or_a_full_folder_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "file").write_text("x")
    old_output(tmp_path)
    for path, message in (("link", "symbolic link"), ("file", "is a file"), ("out", "not empty")):
        with pytest.raises(ForgetInputError, match=message):
            OutputFolder(tmp_path / path)


def test_a_checkpoint_cut_short_is_skipped(tmp_path):
    for step, state in ((2, "{}"), (4, "{")):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    assert latest_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")


def test_reports_are_strict_json(tmp_path):
    from hf_forget.outputs import write_json

    write_json(tmp_path / "report.json", {"sim_backdoor": float("nan"), "runs": [{"auc": float("inf")}, 0.5]})

    def refuse(constant):
        raise ValueError(constant)

    data = json.loads((tmp_path / "report.json").read_text(), parse_constant=refuse)
    assert data == {"sim_backdoor": None, "runs": [{"auc": None}, 0.5]}  # undefined figures are null
