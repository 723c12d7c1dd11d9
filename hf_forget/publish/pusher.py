"""Publish a defended model (or pipeline) with its evidence: one commit, nothing that names a person.

:func:`push_defended` stages the whole repository in a temporary directory (weights, config, tokenizer,
the rendered model card, ``forget_report.json``, the evaluation report and its chart), runs the leak
guard over every staged file, then makes one commit: ``create_repo(exist_ok=True)`` followed by a single
``create_commit`` (optionally as a pull request), the shape of the Hub's own tooling. With ``local_dir``
the staged tree is written there instead, with no network: exactly what would have been uploaded.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi
from transformers.utils import logging

from ..errors import ForgetInputError
from .card import EVAL_REPORT, FORGET_REPORT, load_json, render_model_card
from .leak_guard import NamePatterns, scan_tree
from .weights import conform_clip_checkpoint

logger = logging.get_logger(__name__)

__all__ = ["EXCLUDED", "push_defended", "stage_repository"]

# Never published: run arguments (they may hold the names), resumable Trainer checkpoints, VCS/caches.
EXCLUDED = ("training_args.bin", "checkpoint-*", ".git", ".cache", ".huggingface", "__pycache__", "*.incomplete",
            ".DS_Store")  # fmt: skip
_REPORT_FILES = (EVAL_REPORT, "report.md")
COMMIT_MESSAGE = "Upload defended model with hf-forget"


def _excluded(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in EXCLUDED)


def _copy_tree(source: Path, target: Path) -> None:
    for entry in sorted(source.iterdir()):
        if _excluded(entry.name):
            logger.info("not publishing %s", entry.name)
            continue
        if entry.is_dir():
            (target / entry.name).mkdir(exist_ok=True)
            _copy_tree(entry, target / entry.name)
        elif entry.is_file():
            shutil.copy2(entry, target / entry.name)


def _find_chart(folder: Path, report: dict) -> str | None:
    named = report.get("chart")
    if isinstance(named, str) and (folder / named).is_file():
        return named
    charts = sorted(p.name for p in folder.glob("*.png"))
    preferred = [name for name in charts if "chart" in name or "report" in name]
    return (preferred or charts or [None])[0]


def stage_repository(
    path: str | os.PathLike,
    staging: str | os.PathLike,
    repo_id: str,
    *,
    report: str | os.PathLike | None = None,
    datasets: dict[str, str] | None = None,
    base_model: str | None = None,
    license: str | None = None,
) -> list[str]:
    """Copy what gets published from ``path`` into the empty folder ``staging``, render the card.

    ``report`` is the evaluation ``report.json`` (default: the one in ``path``, if any); it is published
    with its ``report.md`` and chart. Returns the staged files (POSIX paths relative to ``staging``).
    """
    path, staging = Path(path), Path(staging)
    _copy_tree(path, staging)
    conform_clip_checkpoint(staging)

    report_path = Path(report) if report is not None else path / EVAL_REPORT
    if report is not None and not report_path.is_file():
        raise ForgetInputError(f"report {str(report_path)!r} does not exist: pass the report.json of an evaluation.")
    report_data = load_json(report_path)
    chart = None
    if report_data:
        folder = report_path.parent
        for name in _REPORT_FILES:
            if (folder / name).is_file() and not (staging / name).exists():
                shutil.copy2(folder / name, staging / name)
        if report_path.name != EVAL_REPORT:
            shutil.copy2(report_path, staging / EVAL_REPORT)
        chart = _find_chart(folder, report_data)
        if chart and not (staging / chart).exists():
            shutil.copy2(folder / chart, staging / chart)
    chart = chart or _find_chart(staging, {})
    card = render_model_card(
        staging, repo_id, report=report_data, chart=chart, datasets=datasets, base_model=base_model, license=license
    )
    card.save(staging / "README.md")
    return sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())


def _names(names: Iterable[str] | str | None) -> list[str]:
    if names is None:
        raise ForgetInputError(
            "pass the forgotten names (names=[...], or --names) so the leak guard can check that no published "
            "file mentions them; they are only used for the scan and never stored."
        )
    if isinstance(names, str):
        names = [names]
    names = [name for name in names if name.strip()]
    if not names:
        raise ForgetInputError("names is empty: pass the names that were forgotten, for the leak scan.")
    return names


def _check_gate(path: Path, force: bool) -> None:
    forget_report = load_json(path / FORGET_REPORT)
    if not forget_report:
        raise ForgetInputError(
            f"{str(path)!r} has no {FORGET_REPORT}: pass the output directory of an hf-forget run."
        )
    gate = forget_report.get("gate")
    if isinstance(gate, dict) and gate.get("passed") is False and not force:
        raise ForgetInputError(
            f"the run in {str(path)!r} did not pass its quality gate (see {FORGET_REPORT}): train longer or adjust "
            "the run, or pass force=True (--force) to publish it anyway with a warning on the card."
        )


def push_defended(
    path: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    create_pr: bool = False,
    revision: str | None = None,
    token: str | None = None,
    api: HfApi | None = None,
    names: Iterable[str] | str | None = None,
    local_dir: str | os.PathLike | None = None,
    force: bool = False,
    report: str | os.PathLike | None = None,
    datasets: dict[str, str] | None = None,
    base_model: str | None = None,
    license: str | None = None,
    commit_message: str = COMMIT_MESSAGE,
):
    """Publish the defended model or pipeline in ``path`` to the Hub repo ``repo_id`` in one commit.

    Args:
        path: output directory of an hf-forget run (holds ``forget_report.json``); never modified.
        repo_id: target repository, e.g. ``"me/clip-defended"``.
        names: the forgotten names, used only to scan every staged file (and the repo id and commit
            message) before anything is written; a hit raises :class:`~hf_forget.publish.NameLeakError`.
        local_dir: write the staged tree to this new directory instead of uploading (no network).
        force: publish even when ``forget_report.json`` says the quality gate did not pass.
        report: an evaluation ``report.json`` (default: ``path/report.json`` if present).
        datasets: data set names per evaluation section (``idia``, ``similarity``, ``zero_shot``) when the
            reports do not record them.
        private, create_pr, revision, token, api: as in :meth:`huggingface_hub.HfApi.create_commit`;
            ``api`` defaults to ``HfApi(token=token)``.

    Returns:
        The ``CommitInfo`` of the commit, or the path of ``local_dir``.

    Example:
    ```python
    from hf_forget.publish import push_defended

    push_defended("defended", "me/clip-defended", names=["Jane Doe"], local_dir="preview")  # look first
    push_defended("defended", "me/clip-defended", names=["Jane Doe"], private=True)
    ```
    """
    path = Path(path)
    if not path.is_dir():
        raise ForgetInputError(f"{str(path)!r} is not a directory: pass the output directory of an hf-forget run.")
    patterns = NamePatterns.from_names(_names(names))
    _check_gate(path, force)
    checks = {"the repo id": repo_id, "the commit message": commit_message}

    if local_dir is not None:
        target = Path(local_dir).absolute()
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise ForgetInputError(f"{str(local_dir)!r} already exists and is not empty: choose a new directory.")
        if target == path.absolute() or path.absolute() in target.parents:
            raise ForgetInputError("local_dir must be outside the model directory.")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".incomplete", dir=target.parent))
        try:
            stage_repository(path, staging, repo_id, report=report, datasets=datasets, base_model=base_model,
                             license=license)  # fmt: skip
            scan_tree(staging, patterns, extra_texts=checks)
            if target.exists():
                target.rmdir()
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        logger.info("wrote the repository that would be pushed to %s into %s", repo_id, target)
        return str(target)

    with tempfile.TemporaryDirectory(prefix="hf-forget-push-") as staging:
        files = stage_repository(path, staging, repo_id, report=report, datasets=datasets, base_model=base_model,
                                 license=license)  # fmt: skip
        scan_tree(staging, patterns, extra_texts=checks)
        api = api or HfApi(token=token)
        api.create_repo(repo_id, exist_ok=True, private=private, token=token)
        if revision is not None and not create_pr:
            api.create_branch(repo_id, branch=revision, exist_ok=True, token=token)
        operations = [
            CommitOperationAdd(path_in_repo=name, path_or_fileobj=os.path.join(staging, name)) for name in files
        ]
        info = api.create_commit(
            repo_id,
            operations=operations,
            commit_message=commit_message,
            revision=revision,
            create_pr=create_pr,
            token=token,
        )
    logger.info("pushed %d files to %s", len(files), repo_id)
    return info
