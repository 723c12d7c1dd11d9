"""Publish a defended model (or pipeline) with its evidence: one commit, nothing that names a person.

:func:`push_defended` checks everything it can before it writes a byte (names, repo id, quality gate, that
the evaluation report belongs to the run, that the run holds regular files only and readable weights),
then stages the repository in a temporary folder (weights, config, tokenizer, the rendered model card,
``forget_report.json``, the evaluation report and its chart), runs the leak guard over every staged file,
and makes one commit: ``create_repo(exist_ok=True)`` then ``upload_folder`` of the scanned staging folder
(optionally as a pull request), the shape of trl's ``push_to_hub`` helper. With ``local_dir`` the staged
tree is renamed into that new folder instead, with no network: exactly what would have been uploaded.

What is read is untrusted: a link inside the run folder is never followed (the push is refused, naming
the link), and a path read from a report (its chart) must stay inside the report's folder.
"""

from __future__ import annotations

import fnmatch
import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import HFValidationError, validate_repo_id
from transformers.utils import logging

from ..errors import ForgetInputError
from ..outputs import OutputFolder
from .card import EVAL_REPORT, FORGET_REPORT, load_json, lookup, render_model_card
from .files import contained_file, copy_regular_file, regular_files
from .leak_guard import NameLeakError, NamePatterns, scan_tree
from .weights import check_safetensors, conform_clip_checkpoint

logger = logging.get_logger(__name__)

__all__ = ["EXCLUDED", "check_repo_id", "check_report_belongs", "push_defended", "stage_repository"]

# Never published: run arguments (they may hold the names), resumable Trainer checkpoints, VCS/caches,
# unfinished staging folders.
EXCLUDED = ("training_args.bin", "checkpoint-*", ".git", ".cache", ".huggingface", "__pycache__", "*.incomplete",
            ".DS_Store")  # fmt: skip
REPORT_MD = "report.md"
COMMIT_MESSAGE = "Upload defended model with hf-forget"
# Errors of the Hub client that are the user's to fix (offline, no token, no access, no network).
_HUB_ERRORS = tuple(c for c in HfHubHTTPError.__mro__ if c not in (Exception, BaseException, object))


def _excluded(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in EXCLUDED)


def check_repo_id(repo_id: object) -> str:
    """``repo_id`` if it is a valid Hub model repo id (``name`` or ``namespace/name``), else one-line refusal.

    ```python
    >>> check_repo_id("me/clip-defended")
    'me/clip-defended'
    >>> check_repo_id("me/clip/defended")
    Traceback (most recent call last):
    ...
    hf_forget.errors.ForgetInputError: invalid repo id (Repo id must be in the form 'repo_name' or \
'namespace/repo_name': 'me/clip/defended'): use 'name' or 'namespace/name'.
    ```
    """
    if not isinstance(repo_id, str) or not repo_id:
        raise ForgetInputError("pass the target Hub repo id, e.g. 'me/clip-defended'.")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        reason = str(error).splitlines()[0].replace(" Use `repo_type` argument if needed.", "").rstrip(".")
        raise ForgetInputError(f"invalid repo id ({reason}): use 'name' or 'namespace/name'.") from None
    return repo_id


def _identity_counts(data: dict) -> set[int]:
    counts = {data.get(key) for key in ("num_forgotten", "num_names", "num_identities")}
    counts |= {lookup(data, f"idia.{when}.num_forgotten") for when in ("before", "after")}
    return {c for c in counts if isinstance(c, int) and not isinstance(c, bool)}


def _same(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return True  # only numbers are compared


def _training_records(report: dict, forget_report: dict) -> list[tuple[dict, dict]]:
    """Pairs (what the report says the training run measured, what ``forget_report.json`` says)."""
    training = report.get("training")
    if not isinstance(training, dict) or not training:
        return []
    modality = forget_report.get("modality")
    if modality == "both":
        return [(training[m], forget_report[m]) for m in ("text", "vision")
                if isinstance(training.get(m), dict) and isinstance(forget_report.get(m), dict)]  # fmt: skip
    if isinstance(training.get(modality), dict):
        return [(training[modality], forget_report)]
    if any(isinstance(v, dict) for v in training.values()):
        return [({}, {})]  # records of another modality only: refused below
    return [(training, forget_report)]


def check_report_belongs(report: dict, forget_report: dict, *, required: bool = True) -> None:
    """Refuse an evaluation ``report`` that was not made for the run whose ``forget_report`` is given.

    Compared: the modality, the number of forgotten people (``num_forgotten`` / ``idia.*.num_forgotten``
    against ``num_names`` / ``num_identities``) and, when the report carries the training run's own figures
    (``report["training"]``, as ``hf-forget demo`` writes), every number they share with
    ``forget_report.json`` (steps, ``sim_*``, ...). The evaluation's own similarity measurements are not
    compared: they are taken on other data. With ``required`` a report that carries neither a count nor
    the training figures is refused too: nothing would tie it to the run.
    """
    problems = []
    modality, reported_modality = forget_report.get("modality"), report.get("modality")
    if isinstance(modality, str) and isinstance(reported_modality, str) and modality != reported_modality:
        problems.append(f"it evaluates a {reported_modality} run, the model is a {modality} run")
    ours, theirs = _identity_counts(forget_report), _identity_counts(report)
    if ours and theirs and not theirs & ours:
        problems.append(f"it counts {min(theirs)} forgotten people, the run {min(ours)}")
    records = _training_records(report, forget_report)
    for recorded, actual in records:
        if not recorded and not actual:
            problems.append(f"its training figures are for another modality than the run's ({modality})")
            continue
        differing = sorted(k for k in recorded.keys() & actual.keys() if not _same(recorded[k], actual[k]))
        if differing:
            problems.append(f"its training figures differ from {FORGET_REPORT} ({', '.join(differing[:4])})")
    if not problems and required and not theirs and not records:
        problems.append("it records neither how many people were forgotten nor the run's figures")
    if problems:
        raise ForgetInputError(
            f"the evaluation report does not belong to this model: {'; '.join(problems)}. Pass the report.json "
            "of an evaluation of this run."
        )


@dataclass
class _Plan:
    """What a push copies: files of the run folder, plus the evaluation report's files from elsewhere."""

    run: Path
    files: list[str]
    report: dict
    external: bool = False  # the report lies outside the run folder (or is not its report.json)
    extra: list[tuple[Path, str]] = field(default_factory=list)  # (source, path in the repository)
    chart: str | None = None


def _redacting_label(patterns: NamePatterns | None, where: str):
    def label(relative: str) -> str:
        if patterns is not None and patterns.search(relative):
            parent = relative.rsplit("/", 1)[0] if "/" in relative else ""
            while parent and patterns.search(parent):
                parent = parent.rsplit("/", 1)[0] if "/" in parent else ""
            return f"an entry of {where}" + (f" under {parent}/" if parent else "")
        return f"{relative!r} in {where}"

    return label


def _pngs(folder: Path) -> list[str]:
    names = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.lower().endswith(".png") and entry.is_file(follow_symlinks=False):
                names.append(entry.name)
    return sorted(names)


def _default_chart(names: list[str]) -> str | None:
    preferred = [name for name in names if "chart" in name or "report" in name]
    return (preferred or names or [None])[0]


def _plan(path: Path, report: str | os.PathLike | None, patterns: NamePatterns | None = None) -> _Plan:
    run = path.resolve()
    own_report = run / EVAL_REPORT
    report_path = own_report if report is None else Path(report).resolve()
    if report is not None and not report_path.is_file():
        raise ForgetInputError(f"report {str(report)!r} does not exist: pass the report.json of an evaluation.")
    external = report_path != own_report
    files = regular_files(
        run,
        skip=_excluded,
        label=_redacting_label(patterns, "the run folder"),
    )
    if external:  # the run's own evaluation (if any) is replaced by the one passed
        files = [f for f in files if f not in (EVAL_REPORT, REPORT_MD)]
    plan = _Plan(run=run, files=files, report=load_json(report_path), external=external)
    folder = report_path.parent
    if external:
        plan.extra.append((report_path, EVAL_REPORT))
        markdown = contained_file(folder, REPORT_MD, f"{REPORT_MD} next to the report")
        if markdown is not None:
            plan.extra.append((markdown, REPORT_MD))
    if plan.report or external:
        named = plan.report.get("chart")
        chart_file = contained_file(folder, named, 'the report\'s "chart"') if named is not None else None
        if chart_file is None:  # in another folder, only a PNG named like a chart or report is taken
            candidates = _pngs(folder)
            if folder != run:
                candidates = [name for name in candidates if "chart" in name or "report" in name]
            fallback = _default_chart(candidates)
            chart_file = folder / fallback if fallback else None
        if chart_file is not None:
            name = chart_file.relative_to(folder).as_posix()
            if folder == run:
                plan.chart = name if name in files else None
            elif name in files or name in (EVAL_REPORT, REPORT_MD):
                raise ForgetInputError(
                    f"the report's chart would replace the run's file {name}: rename the chart (and its \"chart\" "
                    "entry)."
                )
            else:
                plan.extra.append((chart_file, name))
                plan.chart = name
    if plan.chart is None:
        plan.chart = _default_chart([f for f in files if "/" not in f and f.lower().endswith(".png")])
    return plan


def _stage(plan: _Plan, staging: Path, repo_id: str | None, *, datasets, base_model, license) -> list[str]:
    for relative in plan.files:
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        copy_regular_file(plan.run / relative, target)
    for source, name in plan.extra:
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        copy_regular_file(source, target)
    conform_clip_checkpoint(staging)
    card = render_model_card(
        staging, repo_id, report=plan.report, chart=plan.chart, datasets=datasets, base_model=base_model,
        license=license,
    )  # fmt: skip
    (staging / "README.md").unlink(missing_ok=True)
    card.save(staging / "README.md")
    return sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())


def stage_repository(
    path: str | os.PathLike,
    staging: str | os.PathLike,
    repo_id: str | None,
    *,
    report: str | os.PathLike | None = None,
    datasets: dict[str, str] | None = None,
    base_model: str | None = None,
    license: str | None = None,
) -> list[str]:
    """Copy what gets published from ``path`` into the empty folder ``staging``, render the card.

    Only regular files inside ``path`` are copied; a link (or another special file) refuses the whole
    staging. ``report`` is the evaluation ``report.json`` (default: the one in ``path``, if any); it is
    published with its ``report.md`` and chart, which must lie inside its folder. Returns the staged files
    (POSIX paths relative to ``staging``).
    """
    path, staging = Path(path), Path(staging)
    if staging.resolve() == path.resolve() or path.resolve() in staging.resolve().parents:
        raise ForgetInputError("the staging folder must be outside the model directory.")
    plan = _plan(path, report)
    return _stage(plan, staging, repo_id, datasets=datasets, base_model=base_model, license=license)


def _names(names: Iterable[str] | str | None) -> list[str]:
    if names is None:
        raise ForgetInputError(
            "pass the forgotten names (names=[...], or --names) so the leak guard can check that no published "
            "file mentions them; they are only used for the scan and never stored."
        )
    if isinstance(names, str):
        names = [names]
    names = [name for name in names if isinstance(name, str) and name.strip()]
    if not names:
        raise ForgetInputError("names is empty: pass the names that were forgotten, for the leak scan.")
    return names


def _check_gate(path: Path, force: bool) -> dict:
    if (path / FORGET_REPORT).is_symlink():
        raise ForgetInputError(f"{FORGET_REPORT} in the run folder is a symbolic link: links are never followed.")
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
    return forget_report


def _check_hub_reachable(api: HfApi | None) -> None:
    import huggingface_hub.constants  # noqa: PLC0415 - read now: tests and users set it after import

    if api is None and huggingface_hub.constants.HF_HUB_OFFLINE:
        raise ForgetInputError(
            "the Hub is offline here (HF_HUB_OFFLINE is set): unset it to push, or pass local_dir (--local_dir) "
            "to write the tree that would be uploaded."
        )


def push_defended(
    path: str | os.PathLike,
    repo_id: str,
    *,
    names: Iterable[str] | str | None = None,
    local_dir: str | os.PathLike | None = None,
    report: str | os.PathLike | None = None,
    private: bool = False,
    create_pr: bool = False,
    revision: str | None = None,
    token: str | None = None,
    force: bool = False,
    datasets: dict[str, str] | None = None,
    license: str | None = None,
    base_model: str | None = None,
    api: HfApi | None = None,
    commit_message: str = COMMIT_MESSAGE,
):
    """Publish the defended model or pipeline in ``path`` to the Hub repo ``repo_id`` in one commit.

    Args:
        path: output directory of an hf-forget run (holds ``forget_report.json``); never modified. Only its
            regular files are published: a symbolic link (or pipe, socket, device) in it refuses the push.
        repo_id: target repository, e.g. ``"me/clip-defended"`` (checked with ``validate_repo_id``).
        names: the forgotten names, used only to scan every staged file (and the repo id and commit
            message) before anything is written; a hit raises :class:`~hf_forget.publish.NameLeakError`.
        local_dir: write the staged tree to this new (or empty) directory instead of uploading (no network).
            It must lie outside the run folder, the report's folder and the base model, and is renamed into
            place only when complete.
        report: an evaluation ``report.json`` (default: ``path/report.json`` if present). It must belong to
            the run (see :func:`check_report_belongs`); its ``report.md`` and chart must lie in its folder.
        force: publish even when ``forget_report.json`` says the quality gate did not pass.
        datasets: data set names per evaluation section (``idia``, ``similarity``, ``zero_shot``) when the
            reports do not record them; Hub ids (``owner/name``) put the results into ``model-index``.
        license, base_model: card metadata (default: from the base model when known).
        private, create_pr, revision, token: as in :meth:`huggingface_hub.HfApi.upload_folder`.
        api: the :class:`~huggingface_hub.HfApi` to use (default ``HfApi(token=token)``).

    Returns:
        The ``CommitInfo`` of the commit, or the path of ``local_dir``.

    Raises:
        ForgetInputError: anything the user can fix (one line; the CLI exits with code 2). Nothing has
            been written or uploaded then.

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
    if patterns.regex is None:
        raise ForgetInputError(
            "the names hold no letter or digit: pass the names that were forgotten, for the leak scan."
        )
    leaks = [label for label, text in (("the repo id", repo_id), ("the commit message", commit_message))
             if isinstance(text, str) and patterns.search(text)]  # fmt: skip
    if leaks:
        raise NameLeakError(leaks)
    check_repo_id(repo_id)
    forget_report = _check_gate(path, force)
    plan = _plan(path, report, patterns)
    if plan.report or plan.external:
        check_report_belongs(plan.report, forget_report, required=plan.external)
    for relative in plan.files:
        if relative.endswith(".safetensors"):
            check_safetensors(plan.run / relative, relative)

    if local_dir is not None:
        inputs = [plan.run] + [source.parent for source, _ in plan.extra]
        if base_model and os.path.isdir(base_model):
            inputs.append(Path(base_model))
        output = OutputFolder(local_dir, inputs, label="local_dir")

        def write(staging: str) -> None:
            _stage(plan, Path(staging), repo_id, datasets=datasets, base_model=base_model, license=license)
            scan_tree(staging, patterns)

        output.commit(write, keep=())
        target = output.path
        logger.info("wrote the repository that would be pushed to %s into %s", repo_id, target)
        return str(target)

    _check_hub_reachable(api)
    with tempfile.TemporaryDirectory(prefix="hf-forget-push-") as staging:
        files = _stage(plan, Path(staging), repo_id, datasets=datasets, base_model=base_model, license=license)
        scan_tree(staging, patterns)
        api = api or HfApi(token=token)
        try:
            api.create_repo(repo_id, exist_ok=True, private=private, token=token)
            if revision is not None and not create_pr:
                api.create_branch(repo_id, branch=revision, exist_ok=True, token=token)
            info = api.upload_folder(
                repo_id=repo_id,
                folder_path=staging,
                commit_message=commit_message,
                revision=revision,
                create_pr=create_pr,
                token=token,
            )
        except _HUB_ERRORS as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ForgetInputError(f"could not push to {repo_id} ({reason}): check the network and your token "
                                   "(`hf auth login`), or pass local_dir.") from None  # fmt: skip
    logger.info("pushed %d files to %s", len(files), repo_id)
    return info
