"""Model cards for defended models: Hub metadata (``model-index`` results of this model) plus a readable page.

The card is rendered from a Jinja template shipped with the package (``hf_forget/model_cards/*.md``) with
:meth:`huggingface_hub.ModelCard.from_template`, like trl's ``generate_model_card``. Its numbers come from
the run's ``forget_report.json`` and, when an evaluation was run, ``report.json`` (``idia.before.tpr``,
``sim_clean``, ``zero_shot.after.top5``, ``attacks``, ...). It says how many identities were removed, never who.

What goes where:

* ``model-index`` holds this model's results only (the "after" values), and only those measured on a data
  set that lives on the Hub (``owner/name``): its ``dataset.type`` must name one.
* The base model's scores ("before") and every result on local data are in the card's prose tables.
* ``base_model`` and ``license`` come from the arguments, else from the base model when it can be known
  offline (a Hub id, a Hub cache snapshot folder, the base's own model card).

:func:`write_model_card` is what a trainer calls on ``save_model()``; :func:`render_model_card` returns the
card without writing it.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from .. import __version__
from ..errors import ForgetInputError
from .files import contained_file, write_text_atomically

__all__ = [
    "CITATION",
    "CardMetric",
    "attack_rows",
    "base_model_metadata",
    "card_metrics",
    "load_json",
    "model_card_data",
    "pipeline_family",
    "render_model_card",
    "template_path",
    "write_model_card",
]

DEFAULT_TEMPLATE = "defended_model.md"
TAGS = ["hf-forget", "unlearning", "privacy"]
FORGET_REPORT = "forget_report.json"
EVAL_REPORT = "report.json"
CARD_FILE = "README.md"
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_UNSPECIFIED = "unspecified"

PAPER_TITLE = "Defending Our Privacy With Backdoors"
PAPER_URL = "https://arxiv.org/abs/2310.08320"
CITATION = """\
@inproceedings{hintersdorf2024defending,
  title         = {Defending Our Privacy With Backdoors},
  author        = {Hintersdorf, Dominik and Struppek, Lukas and Neider, Daniel and Kersting, Kristian},
  booktitle     = {Proceedings of the 27th European Conference on Artificial Intelligence (ECAI 2024)},
  year          = {2024},
  eprint        = {2310.08320},
  archivePrefix = {arXiv},
}"""

# diffusers pipeline families, most specific first: (marker in the pipeline class name, name, Hub tags).
# The tags are the ones diffusers' own training scripts put on the cards of each family.
PIPELINE_FAMILIES = (
    ("StableDiffusionXL", "Stable Diffusion XL", ("stable-diffusion-xl", "stable-diffusion-xl-diffusers")),
    ("StableDiffusion3", "Stable Diffusion 3", ("sd3", "sd3-diffusers")),
    ("Flux", "FLUX", ("flux", "flux-diffusers")),
    ("StableDiffusion", "Stable Diffusion", ("stable-diffusion", "stable-diffusion-diffusers")),
)

# report["attacks"] = {"before": S, "after": S}; S holds three per-group rates and three scalars.
SIDES = ("before", "after")
ATTACK_GROUPS = ("forgotten", "retained", "unseen")
ATTACK_RATES = (
    ("idia", "IDIA recognition rate"),
    ("idia_top5", "IDIA top-5 rate"),
    ("rank_at_10", "Rank@10 rate"),
)
ATTACK_SCALARS = (
    ("membership_auc", "Membership inference AUC"),
    ("forget_set_auc_text", "Forget-set AUC (text)"),
    ("forget_set_auc_vision", "Forget-set AUC (vision)"),
)
_GROUP_LABEL = {
    "forgotten": "forgotten identities", "retained": "retained identities", "unseen": "never-seen identities"
}  # fmt: skip


def template_path(name: str = DEFAULT_TEMPLATE) -> Path:
    """Where a card template is: ``hf_forget/model_cards/`` (package data)."""
    packaged = resources.files("hf_forget") / "model_cards" / name
    if packaged.is_file():
        return Path(str(packaged))
    raise ForgetInputError(f"model card template {name!r} not found: reinstall hf-forget.")


def _refuse_constant(constant: str):
    raise ValueError(f"{constant} is not valid JSON")


def load_json(path: str | os.PathLike) -> dict:
    """A JSON report as a dict (``{}`` when the file does not exist). Strict JSON: ``NaN`` is refused."""
    if not os.path.isfile(path):
        return {}
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle, parse_constant=_refuse_constant)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ForgetInputError(f"cannot read {name} ({reason}): fix or remove the file.") from None
    if not isinstance(data, dict):
        raise ForgetInputError(f"{name} does not hold a JSON object: fix or remove the file.")
    return data


def lookup(report: dict, key: str) -> Any:
    """``report["idia"]["before"]["tpr"]`` for ``"idia.before.tpr"``; a flat ``"idia.before.tpr"`` key works too."""
    if key in report:
        return report[key]
    node: Any = report
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@dataclass
class CardMetric:
    """One row of the card's table (base model before, this model after) and its ``model-index`` result."""

    label: str
    metric_type: str
    task_type: str
    task_name: str
    dataset: str
    before: float | None = None
    after: float | None = None
    results: list[EvalResult] = field(default_factory=list, repr=False)


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _valid_repo_id(candidate: str) -> bool:
    try:
        validate_repo_id(candidate)
    except HFValidationError:
        return False
    return True


def hub_dataset(name: str | None) -> str | None:
    """``name`` if it can be a Hub data set id (``owner/name``, not a local path); else ``None``."""
    if name and _REPO_ID.match(name) and _valid_repo_id(name) and not os.path.exists(name):
        return name
    return None


def _dataset(report: dict, section: str, override: dict[str, str] | None) -> str:
    if override and override.get(section):
        return override[section]
    for key in (f"{section}.dataset", f"datasets.{section}", "dataset"):
        value = lookup(report, key)
        if isinstance(value, str) and value:
            return value
    if section == "similarity" and report.get("modality") in ("text", "vision"):
        # The trainers measure similarities on the run's own held-out inputs.
        return "held-out generic " + ("captions" if report["modality"] == "text" else "images")
    return _UNSPECIFIED


def card_metrics(report: dict, forget_report: dict, datasets: dict[str, str] | None = None) -> list[CardMetric]:
    """The evaluation rows present in the reports (``report.json`` first, then ``forget_report.json``).

    ``before`` is the base model's score, ``after`` this model's. Only ``after`` values measured on a Hub
    data set become ``model-index`` results (``row.results``). ``datasets`` names the data set of each
    section (``idia``, ``similarity``, ``zero_shot``) when the reports do not.
    """
    merged = {**forget_report, **report}
    specs = [
        ("IDIA TPR (removed identities)", "idia_tpr", "identity-inference-attack", "Identity Inference Attack",
         "idia", "idia.before.tpr", "idia.after.tpr"),
        ("Sim_Clean", "sim_clean", "feature-extraction", "Embedding similarity", "similarity", None, "sim_clean"),
        ("Sim_Backdoor", "sim_backdoor", "feature-extraction", "Embedding similarity", "similarity", None,
         "sim_backdoor"),
        ("Zero-shot top-1 accuracy", "top1_accuracy", "zero-shot-image-classification", "Zero-shot classification",
         "zero_shot", "zero_shot.before.top1", "zero_shot.after.top1"),
        ("Zero-shot top-5 accuracy", "top5_accuracy", "zero-shot-image-classification", "Zero-shot classification",
         "zero_shot", "zero_shot.before.top5", "zero_shot.after.top5"),
    ]  # fmt: skip
    rows = []
    for label, metric_type, task_type, task_name, section, before_key, after_key in specs:
        before = _number(lookup(merged, before_key)) if before_key else None
        after = _number(lookup(merged, after_key))
        if before is None and after is None:
            continue
        dataset = _dataset(merged, section, datasets)
        row = CardMetric(label, metric_type, task_type, task_name, dataset, before, after)
        hub_id = hub_dataset(dataset)
        if after is not None and hub_id:
            row.results.append(
                EvalResult(
                    task_type=task_type,
                    task_name=task_name,
                    dataset_type=hub_id,
                    dataset_name=hub_id,
                    metric_type=metric_type,
                    metric_name=label,
                    metric_value=round(after, 6),
                )
            )
        rows.append(row)
    return rows


def _rate(value: Any, where: str) -> float | None:
    if value is None:
        return None
    number = _number(value)
    if number is None:
        raise ForgetInputError(f"report.json: attacks.{where} must be a finite number or null; fix the report.")
    return number


def attack_rows(report: dict) -> list[dict]:
    """The attack suite's before/after rows from ``report["attacks"]`` (``[]`` when the report has none).

    Schema: ``{"before": S, "after": S}``, ``S = {"idia": {"forgotten": r, "retained": r, "unseen": r},
    "idia_top5": {...}, "rank_at_10": {...}, "membership_auc": x, "forget_set_auc_text": x,
    "forget_set_auc_vision": x}``, every value a number or null. Rows with no value on either side are
    left out; a value of the wrong type refuses the card.
    """
    attacks = report.get("attacks")
    if attacks is None:
        return []
    if not isinstance(attacks, dict) or any(not isinstance(attacks.get(w), (dict, type(None))) for w in SIDES):
        raise ForgetInputError('report.json: "attacks" must be {"before": {...}, "after": {...}}; fix the report.')
    sides = {when: attacks.get(when) or {} for when in SIDES}
    rows = []
    for key, label in ATTACK_RATES:
        groups = {}
        for when, side in sides.items():
            value = side.get(key)
            if value is not None and not isinstance(value, dict):
                raise ForgetInputError(
                    f'report.json: attacks.{when}.{key} must be {{"forgotten": r, "retained": r, "unseen": r}}; '
                    "fix the report."
                )
            groups[when] = value or {}
        for group in ATTACK_GROUPS:
            before = _rate(groups["before"].get(group), f"before.{key}.{group}")
            after = _rate(groups["after"].get(group), f"after.{key}.{group}")
            if before is not None or after is not None:
                rows.append({"label": f"{label}, {_GROUP_LABEL[group]}", "before": before, "after": after})
    for key, label in ATTACK_SCALARS:
        before = _rate(sides["before"].get(key), f"before.{key}")
        after = _rate(sides["after"].get(key), f"after.{key}")
        if before is not None or after is not None:
            rows.append({"label": label, "before": before, "after": after})
    return rows


def hub_base_model(candidate: str | None) -> str | None:
    """``candidate`` if it looks like a Hub repo id (local paths are not valid ``base_model`` metadata)."""
    if candidate and _REPO_ID.match(candidate) and _valid_repo_id(candidate) and not os.path.exists(candidate):
        return candidate
    return None


def _card_data_of(path: Path) -> dict:
    """The YAML metadata of the model card at ``path`` (``{}`` if there is none or it is not a card)."""
    try:
        if not path.is_file() or path.is_symlink():
            return {}
        return ModelCard.load(path, ignore_metadata_errors=True).data.to_dict()
    except Exception:  # noqa: BLE001 - a foreign README is a hint, never a reason to fail
        return {}


def _cached_card_data(repo_id: str) -> dict:
    """The metadata of a Hub model's card when it is in the local Hub cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache  # noqa: PLC0415

        cached = try_to_load_from_cache(repo_id, CARD_FILE)
    except Exception:  # noqa: BLE001
        return {}
    return _card_data_of(Path(cached)) if isinstance(cached, str) else {}


def _hub_id_of_cache_folder(path: Path) -> str | None:
    """``owner/name`` for a Hub cache snapshot folder (``.../models--owner--name/snapshots/<sha>``)."""
    for part in reversed(path.resolve().parts):
        if part.startswith("models--"):
            candidate = "/".join(part.split("--")[1:])
            return candidate if _valid_repo_id(candidate) else None
    return None


def base_model_metadata(base: str | None, run: str | os.PathLike | None = None) -> tuple[str | None, str | None]:
    """``(Hub id, license)`` of the base model, as far as they can be known without a network.

    ``base`` is a Hub id or a local folder (a Hub cache snapshot folder gives its id); the license comes
    from the base's model card (in the folder or the Hub cache). ``run``'s own ``README.md`` fills what
    is still missing: an hf-forget card carries both, a card copied from the base (a pipeline's) its license.
    """
    hub_id, license = None, None
    if base and os.path.isdir(base):
        hub_id = _hub_id_of_cache_folder(Path(base))
        license = _card_data_of(Path(base) / CARD_FILE).get("license")
    elif hub_base_model(base):
        hub_id = base
    if hub_id and not license:
        license = _cached_card_data(hub_id).get("license")
    if run is not None:
        own = _card_data_of(Path(run) / CARD_FILE)
        if "hf-forget" in (own.get("tags") or []):
            hub_id = hub_id or hub_base_model(own.get("base_model") if isinstance(own.get("base_model"), str) else None)
        license = license or own.get("license")
    return hub_id, license if isinstance(license, str) and license else None


def pipeline_family(class_name: str) -> tuple[str, list[str]]:
    """``(display name, Hub tags)`` of a diffusers pipeline class (SD 1.x/2.x, SDXL, SD3, FLUX, other).

    ```python
    >>> pipeline_family("StableDiffusionXLPipeline")
    ('Stable Diffusion XL', ['stable-diffusion-xl', 'stable-diffusion-xl-diffusers', 'text-to-image'])
    >>> pipeline_family("FluxPipeline")[1]
    ['flux', 'flux-diffusers', 'text-to-image']
    ```
    """
    for marker, display, tags in PIPELINE_FAMILIES:
        if marker in class_name:
            return display, [*tags, "text-to-image"]
    return "diffusers", ["text-to-image"]


def model_card_data(
    *,
    metrics: list[CardMetric],
    library_name: str,
    base_model: str | None = None,
    pipeline_tag: str | None = None,
    license: str | None = None,
    model_name: str | None = None,
    extra_tags: list[str] | None = None,
) -> ModelCardData:
    """The card's YAML metadata: base model, library, hf-forget tags and ``model-index`` results."""
    if library_name not in ("transformers", "diffusers"):
        raise ForgetInputError(f"library_name must be 'transformers' or 'diffusers', got {library_name!r}.")
    eval_results = [result for row in metrics for result in row.results]
    family = extra_tags if extra_tags is not None else (["text-to-image"] if library_name == "diffusers" else ["clip"])
    tags = TAGS + [tag for tag in family if tag not in TAGS]
    return ModelCardData(
        base_model=hub_base_model(base_model),
        library_name=library_name,
        license=license,
        tags=tags,
        pipeline_tag=pipeline_tag,
        model_name=model_name if eval_results else None,  # model-index needs a name
        eval_results=eval_results or None,
    )


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"


def _describe_model(path: Path, forget_report: dict) -> dict:
    """Library, architecture, pipeline family, tags and defended text encoders of a model or pipeline folder."""
    if (path / "model_index.json").is_file():
        index = load_json(path / "model_index.json")
        architecture = index.get("_class_name") if isinstance(index.get("_class_name"), str) else "DiffusionPipeline"
        family, tags = pipeline_family(architecture)
        changed = forget_report.get("text_encoders")
        encoders = sorted(changed) if isinstance(changed, dict) and changed else sorted(
            name for name in index if name.startswith("text_encoder")
        )
        return {"library_name": "diffusers", "architecture": architecture, "family": family, "tags": tags,
                "pipeline_tag": "text-to-image", "text_encoders": encoders}  # fmt: skip
    config = load_json(path / "config.json")
    architectures = config.get("architectures")
    architecture = architectures[0] if isinstance(architectures, list) and architectures else "CLIPTextModel"
    architecture = architecture if isinstance(architecture, str) and architecture.isidentifier() else "CLIPTextModel"
    tag = "zero-shot-image-classification" if architecture == "CLIPModel" else "feature-extraction"
    return {"library_name": "transformers", "architecture": architecture, "family": None, "tags": ["clip"],
            "pipeline_tag": tag, "text_encoders": []}  # fmt: skip


def _identity_count(forget_report: dict, report: dict) -> int | None:
    for source in (forget_report, report):
        for key in ("num_names", "num_identities", "num_forgotten"):
            value = source.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def render_model_card(
    path: str | os.PathLike,
    repo_id: str | None = None,
    *,
    report: dict | None = None,
    forget_report: dict | None = None,
    chart: str | None = None,
    datasets: dict[str, str] | None = None,
    base_model: str | None = None,
    license: str | None = None,
    template: str | os.PathLike | None = None,
) -> ModelCard:
    """Render the model card of the defended model (or pipeline) in ``path``.

    ``report`` / ``forget_report`` default to ``path``'s ``report.json`` / ``forget_report.json``; ``chart``
    is the chart's file name relative to the repository root; ``base_model`` and ``license`` override what
    the reports and the base model say. Without ``repo_id`` (a card written next to a local checkpoint)
    the usage snippets load from a placeholder path: the folder's own name is never written.
    """
    path = Path(path)
    forget_report = load_json(path / FORGET_REPORT) if forget_report is None else forget_report
    report = load_json(path / EVAL_REPORT) if report is None else report
    described = _describe_model(path, forget_report)
    metrics = card_metrics(report, forget_report, datasets)
    attacks = attack_rows(report)
    num = _identity_count(forget_report, report)
    modality = forget_report.get("modality", report.get("modality", "text"))
    recorded = next((r["base_model"] for r in (forget_report, report) if isinstance(r.get("base_model"), str)), None)
    # A recorded local path (or its last part) is not looked up: it may name another folder here.
    base_id, base_license = base_model_metadata(base_model or hub_base_model(recorded), path)
    model_name = repo_id.split("/")[-1] if repo_id else f"{described['architecture']} defended with hf-forget"
    card_data = model_card_data(
        metrics=metrics,
        library_name=described["library_name"],
        base_model=base_id,
        pipeline_tag=described["pipeline_tag"],
        license=license or base_license,
        model_name=model_name,
        extra_tags=described["tags"],
    )
    not_evaluated = []
    present = {row.metric_type for row in metrics}
    if "idia_tpr" not in present and not attacks:
        not_evaluated.append("the Identity Inference Attack (run `hf-forget audit` before and after)")
    if "top1_accuracy" not in present:
        not_evaluated.append("zero-shot accuracy")
    if described["library_name"] == "diffusers" or described["architecture"] in ("CLIPTextModel",
                                                                                  "CLIPTextModelWithProjection"):
        not_evaluated.append("the quality of generated images (FID, CLIP score) and whether generated images "
                             "still depict a removed person")  # fmt: skip
    gate = forget_report.get("gate", {})
    return ModelCard.from_template(
        card_data,
        template_path=str(template or template_path()),
        model_name=model_name,
        repo_id=repo_id or "path/to/this/model",
        base_model=base_id,
        pipeline_hint=base_id if described["architecture"] != "CLIPModel" and base_id
        and "diffusion" in base_id.lower() else "<the base Stable Diffusion pipeline>",
        is_pipeline=described["library_name"] == "diffusers",
        pipeline_family=described["family"],
        architecture=described["architecture"],
        text_encoders=described["text_encoders"],
        num_identities=num if num is not None else "an unrecorded number of",
        modality=modality,
        gate_passed=bool(gate.get("passed", True)) if isinstance(gate, dict) else True,
        metrics=[
            {"label": row.label, "before": _fmt(row.before), "after": _fmt(row.after), "dataset": row.dataset}
            for row in metrics
        ],
        in_model_index=any(row.results for row in metrics),
        attacks=[{"label": r["label"], "before": _fmt(r["before"]), "after": _fmt(r["after"])} for r in attacks],
        chart=chart,
        steps=forget_report.get("steps"),
        seconds=forget_report.get("seconds"),
        not_evaluated=not_evaluated,
        has_report=bool(report),
        paper_title=PAPER_TITLE,
        paper_url=PAPER_URL,
        citation=CITATION,
        hf_forget_version=__version__,
    )


def write_model_card(
    folder: str | os.PathLike,
    forget_report: dict | None = None,
    base_model: str | None = None,
    *,
    repo_id: str | None = None,
    report: dict | None = None,
    license: str | None = None,
    datasets: dict[str, str] | None = None,
    names=None,
) -> Path:
    """Write the model card (``README.md``) of the defended model in ``folder``; return its path.

    What a trainer calls on ``save_model()``: ``forget_report`` is the run's report (default: ``folder``'s
    ``forget_report.json``), ``report`` an evaluation (default: ``folder``'s ``report.json``, whose chart is
    linked if it lies inside ``folder``). With ``names`` (the forgotten names) the card is scanned first and
    a hit raises :class:`~hf_forget.publish.NameLeakError` without writing anything. The file is written
    atomically.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ForgetInputError(f"{str(folder)!r} is not a directory: pass the output folder of the run.")
    report = load_json(folder / EVAL_REPORT) if report is None else report
    chart = None
    if isinstance(report.get("chart"), str) and contained_file(folder, report["chart"], 'report.json\'s "chart"'):
        chart = Path(report["chart"].replace("\\", "/")).as_posix()
    card = render_model_card(folder, repo_id, report=report, forget_report=forget_report, chart=chart,
                             datasets=datasets, base_model=base_model, license=license)  # fmt: skip
    text = str(card)
    if names is not None:
        from .leak_guard import NameLeakError, NamePatterns  # noqa: PLC0415

        patterns = names if isinstance(names, NamePatterns) else NamePatterns.from_names(
            [names] if isinstance(names, str) else names
        )
        if patterns.search(text):
            raise NameLeakError([CARD_FILE])
    target = folder / CARD_FILE
    write_text_atomically(target, text)
    return target
