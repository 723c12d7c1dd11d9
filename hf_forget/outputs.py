"""The one output folder of every run: checked up front, written aside, swapped into place when complete.

A run named ``OUT`` works in two hidden siblings:

* ``.OUT.incomplete/`` — the Trainer's ``output_dir`` while training: checkpoints (for resuming) and logs
  (``runs/`` of ``--report_to tensorboard``);
* ``.OUT.staged/`` — the finished output, assembled by the caller (:meth:`OutputFolder.commit`).

Only when the staged folder is complete does it take ``OUT``'s place. An existing ``OUT``
(``overwrite=True``) is exchanged with it in one atomic rename where the system can (Linux
``renameat2(RENAME_EXCHANGE)``), else moved aside to ``.OUT.previous`` first and restored by the next run if
the swap was cut short; it is deleted only after the new output is in place. The working folder (the
checkpoints) goes last, so a crash while saving the final model can still be resumed. A kill at any point
leaves either the old or the new output whole.

Inputs are never written: the output may not be, contain or lie inside any input path.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from transformers.utils import logging

from .errors import ForgetInputError

logger = logging.get_logger(__name__)

REPORT_NAME = "forget_report.json"
PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__))  # the installed package: its toy checkpoint is an input
_CHECKPOINT_PREFIX = "checkpoint-"


def _sibling(path: Path, suffix: str) -> Path:
    return path.parent / f".{path.name}.{suffix}"


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def check_output_path(output_dir: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (),
                      overwrite: bool = False, label: str = "output directory", allow_in_package: bool = False) -> Path:
    """``output_dir`` as an absolute path, if a run may write it: never an input, inside one or around one;
    not a file or a link; new, empty, or replaced only with ``overwrite``; where a folder can be created, and not
    inside the installed package unless ``allow_in_package`` (rebuilding the shipped toy CLIP). ``label`` names
    it in the messages (``"output directory"``, ``"local_dir"``)."""

    given = os.fspath(output_dir)
    if not given.strip():
        raise ForgetInputError(f"pass a non-empty {label}.")
    path = Path(os.path.abspath(given))
    if path.is_symlink():
        raise ForgetInputError(f"{label} {given!r} is a symbolic link: pass a real directory path.")
    check_output_location(path, label, allow_in_package)
    real = os.path.realpath(path)
    for source in inputs:
        if source is None or not isinstance(source, (str, os.PathLike)) or not os.fspath(source):
            continue
        if not os.path.exists(source):
            continue
        source_real = os.path.realpath(source)
        if real == source_real or real.startswith(source_real + os.sep) or source_real.startswith(real + os.sep):
            raise ForgetInputError(
                f"{label} {given!r} overlaps the input {os.fspath(source)!r}: inputs are never modified; "
                f"pass another {label}."
            )
    if path.exists() and not path.is_dir():
        raise ForgetInputError(f"{label} {given!r} is a file: pass a directory path.")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        hint = ", or --overwrite_output_dir" if label == "output directory" else ""
        raise ForgetInputError(f"{label} {given!r} is not empty: pass an empty or new one{hint}.")
    return path


def check_output_location(output_dir: str | os.PathLike, label: str = "output directory",
                          allow_in_package: bool = False) -> None:
    """``output_dir`` can be created where it is: not inside the installed hf-forget package (its shipped toy
    checkpoint is an input of the demo), and its nearest existing parent folder accepts a new folder.

    Writability is probed by creating and removing a folder: ``os.access`` answers yes to root on a read-only
    file system or under ``/proc``, and the run would fail only when it writes, after the work is done.
    """
    path = os.path.abspath(os.fspath(output_dir))
    real = os.path.realpath(path)
    if not allow_in_package and (real == PACKAGE_DIR or real.startswith(PACKAGE_DIR + os.sep)):
        raise ForgetInputError(
            f"{label} {os.fspath(output_dir)!r} lies inside the hf-forget package: pass a folder of your own."
        )
    parent = os.path.dirname(path)
    while not os.path.lexists(parent) and parent != os.path.dirname(parent):
        parent = os.path.dirname(parent)
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".hf-forget-probe-", dir=parent))
    except OSError as error:
        raise ForgetInputError(
            f"cannot create {label} {os.fspath(output_dir)!r}: {parent!r} is not a writable folder "
            f"({error.strerror or type(error).__name__}); pass another path."
        ) from None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return result == 0


def latest_complete_checkpoint(folder: str | os.PathLike) -> str | None:
    """The highest-step ``checkpoint-N`` in ``folder`` whose ``trainer_state.json`` (written last) reads back.

    ``transformers.trainer_utils.get_last_checkpoint`` returns the highest step even when the run was killed
    while writing it; such a checkpoint is skipped here, with a warning.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    steps = sorted(
        (int(entry.name[len(_CHECKPOINT_PREFIX):]), entry)
        for entry in folder.iterdir()
        if entry.name.startswith(_CHECKPOINT_PREFIX) and entry.name[len(_CHECKPOINT_PREFIX):].isdigit()
    )
    for _, entry in reversed(steps):
        try:
            json.loads((entry / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            logger.warning("skipping %s: incomplete (the run stopped while writing it)", entry.name)
            continue
        return str(entry)
    return None


def check_checkpoint(path: str | os.PathLike) -> str:
    """A checkpoint to resume from must be a complete Trainer checkpoint directory."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise ForgetInputError(
            f"checkpoint {path!r} does not exist: pass a checkpoint-N directory of this run, or 'latest'."
        )
    try:
        with open(os.path.join(path, "trainer_state.json"), encoding="utf-8") as handle:
            json.load(handle)
    except (OSError, ValueError):
        raise ForgetInputError(
            f"{path!r} is not a complete Trainer checkpoint (no readable trainer_state.json): pass another one, "
            "or 'latest'."
        ) from None
    return path


def resolve_resume(folder: str | os.PathLike, resume: str | bool | None) -> str | None:
    """What ``Trainer.train(resume_from_checkpoint=...)`` gets: for ``True``/``"latest"`` the latest complete
    checkpoint in ``folder`` (``None``, with a warning, when there is none: the run starts from scratch); a
    path is checked; ``None``/``False`` stay ``None``."""
    if resume is True or resume == "latest":
        resume = latest_complete_checkpoint(folder)
        if resume is None:
            logger.warning("no complete checkpoint to resume from: starting from scratch")
    if not resume:
        return None
    check_checkpoint(resume)
    logger.info("resuming from %s", os.path.basename(os.path.normpath(resume)))
    return str(resume)


class OutputFolder:
    """The output folder of one run (see the module docstring).

    Example:
    ```python
    output = OutputFolder("defended", inputs=["base-model"], overwrite=False)
    config.output_dir = output.work_dir      # checkpoints and logs go aside
    resume = output.resume("latest")         # the latest complete checkpoint there, or None
    ...                                      # train
    output.commit(lambda folder: trainer.save_model(folder))
    ```
    """

    def __init__(self, path: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (),
                 overwrite: bool = False, is_main_process: bool = True, label: str = "output directory",
                 allow_in_package: bool = False):
        self.path = check_output_path(path, list(inputs), overwrite, label, allow_in_package)
        self.overwrite = overwrite
        self.is_main_process = is_main_process
        self.work_dir = _sibling(self.path, "incomplete")
        self.staged_dir = _sibling(self.path, "staged")
        self.previous_dir = _sibling(self.path, "previous")
        if is_main_process:
            self._recover()

    def _recover(self) -> None:
        """Finish what a killed swap left: the previous output back in place, a half-staged folder gone."""
        if self.previous_dir.exists():
            if not self.path.exists():
                os.replace(self.previous_dir, self.path)
                logger.warning("restored %s from an interrupted replacement", self.path.name)
            else:
                _remove(self.previous_dir)
        _remove(self.staged_dir)

    def resume(self, resume: str | bool | None) -> str | None:
        """The checkpoint to resume from (see :func:`resolve_resume`); without one, a stale working folder of
        an earlier run is cleared so that the new run starts clean."""
        checkpoint = resolve_resume(self.work_dir, resume)
        if checkpoint is None and self.is_main_process:
            _remove(self.work_dir)
        return checkpoint

    def commit(self, write: Callable[[str], None], keep: Iterable[str] = ("runs",)) -> None:
        """Write the finished output with ``write(folder)`` into the staged folder, carry the working folder's
        ``keep`` entries (training logs) over, then swap it into place and clear the working folder."""
        if not self.is_main_process:
            return
        _remove(self.staged_dir)
        created = [p for p in self.path.parents if not p.exists()]
        self.staged_dir.mkdir(parents=True)
        try:
            write(str(self.staged_dir))
        except Exception:  # a refused or failed write leaves nothing behind (a kill is undone by the next run)
            _remove(self.staged_dir)
            for folder in created:  # deepest first; only the folders this call created, and only if empty
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
        for name in keep:
            source = self.work_dir / name
            if source.exists() and not (self.staged_dir / name).exists():
                shutil.copytree(source, self.staged_dir / name)
        self._swap_into_place()
        _remove(self.work_dir)  # the checkpoints go only once the output is in place
        logger.info("output written to %s", self.path)

    def _swap_into_place(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            os.replace(self.staged_dir, self.path)
            return
        if _exchange(self.staged_dir, self.path):
            _remove(self.staged_dir)  # now the old output
            return
        os.replace(self.path, self.previous_dir)
        os.replace(self.staged_dir, self.path)
        _remove(self.previous_dir)


def strict(data):
    """``data`` with every non-finite float (NaN, infinity) as ``None``: what strict JSON can say of an undefined
    figure (``json.dumps`` would write the bare ``NaN`` that other readers refuse)."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {key: strict(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict(value) for value in data]
    return data


def write_json(path: str | os.PathLike, data) -> None:
    """Strict JSON (an undefined figure is ``null``), written to a temporary file and renamed into place."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(strict(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)
