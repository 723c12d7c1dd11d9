"""Model cards for defended models: Hub metadata (``model-index`` evaluation results) plus a readable page.

The card is rendered from a Jinja template shipped with the package (``model_cards/*.md``, installed as
``hf_forget/model_cards``) with :meth:`huggingface_hub.ModelCard.from_template`, like trl's
``generate_model_card``. Its numbers come from the run's ``forget_report.json`` and, when an evaluation was
run, ``report.json`` (``idia.before.tpr``, ``sim_clean``, ``zero_shot.after.top5``, ...). It says how many
identities were removed, never who.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .. import __version__
from ..errors import ForgetInputError

__all__ = ["CardMetric", "card_metrics", "load_json", "model_card_data", "render_model_card", "template_path"]

DEFAULT_TEMPLATE = "defended_model.md"
TAGS = ["hf-forget", "unlearning", "privacy"]
FORGET_REPORT = "forget_report.json"
EVAL_REPORT = "report.json"
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_UNSPECIFIED = "unspecified"


def template_path(name: str = DEFAULT_TEMPLATE) -> Path:
    """Where a card template is: inside the installed package, or ``model_cards/`` of a source checkout."""
    packaged = resources.files("hf_forget") / "model_cards" / name
    if packaged.is_file():
        return Path(str(packaged))
    source = Path(__file__).resolve().parents[2] / "model_cards" / name
    if source.is_file():
        return source
    raise ForgetInputError(f"model card template {name!r} not found: reinstall hf-forget.")


def load_json(path: str | os.PathLike) -> dict:
    """A JSON report as a dict (``{}`` when the file does not exist)."""
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise ForgetInputError(f"cannot read {os.path.basename(path)} ({error}): fix or remove the file.") from None
    if not isinstance(data, dict):
        raise ForgetInputError(f"{os.path.basename(path)} does not hold a JSON object: fix or remove the file.")
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
    """One row of the card's table, and one or two ``model-index`` results."""

    label: str
    metric_type: str
    task_type: str
    task_name: str
    dataset: str
    before: float | None = None
    after: float | None = None
    results: list[EvalResult] = field(default_factory=list, repr=False)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


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

    ``datasets`` names the data set of each section (``idia``, ``similarity``, ``zero_shot``) when the
    reports do not.
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
        for when, value in (("before", before), ("after", after)):
            if value is None or (before_key is None and when == "before"):
                continue
            suffix = f"_{when}" if before_key else ""
            row.results.append(
                EvalResult(
                    task_type=task_type,
                    task_name=task_name,
                    dataset_type=re.sub(r"[^\w./-]+", "-", dataset).strip("-") or _UNSPECIFIED,
                    dataset_name=dataset,
                    metric_type=metric_type + suffix,
                    metric_name=f"{label} ({when} forgetting)" if before_key else label,
                    metric_value=round(value, 6),
                )
            )
        rows.append(row)
    return rows


def hub_base_model(candidate: str | None) -> str | None:
    """``candidate`` if it looks like a Hub repo id (local paths are not valid ``base_model`` metadata)."""
    if candidate and _REPO_ID.match(candidate) and not os.path.exists(candidate):
        return candidate
    return None


def model_card_data(
    *,
    metrics: list[CardMetric],
    library_name: str,
    base_model: str | None = None,
    pipeline_tag: str | None = None,
    license: str | None = None,
    model_name: str | None = None,
) -> ModelCardData:
    """The card's YAML metadata: base model, library, hf-forget tags and ``model-index`` results."""
    if library_name not in ("transformers", "diffusers"):
        raise ForgetInputError(f"library_name must be 'transformers' or 'diffusers', got {library_name!r}.")
    eval_results = [result for row in metrics for result in row.results]
    tags = TAGS + (["stable-diffusion", "text-to-image"] if library_name == "diffusers" else ["clip"])
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


def _describe_model(path: Path) -> dict:
    """Library, architecture, pipeline tag and text encoders of a model or pipeline folder."""
    if (path / "model_index.json").is_file():
        index = load_json(path / "model_index.json")
        encoders = sorted(name for name in index if name.startswith("text_encoder"))
        return {"library_name": "diffusers", "architecture": index.get("_class_name", "DiffusionPipeline"),
                "pipeline_tag": "text-to-image", "text_encoders": encoders}  # fmt: skip
    config = load_json(path / "config.json")
    architecture = (config.get("architectures") or ["CLIPTextModel"])[0]
    tag = "zero-shot-image-classification" if architecture == "CLIPModel" else "feature-extraction"
    return {"library_name": "transformers", "architecture": architecture, "pipeline_tag": tag, "text_encoders": []}


def render_model_card(
    path: str | os.PathLike,
    repo_id: str,
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
    is the chart's file name relative to the repository root; ``base_model`` overrides the report's.
    """
    path = Path(path)
    forget_report = load_json(path / FORGET_REPORT) if forget_report is None else forget_report
    report = load_json(path / EVAL_REPORT) if report is None else report
    described = _describe_model(path)
    metrics = card_metrics(report, forget_report, datasets)
    num = next((r[k] for r in (forget_report, report) for k in ("num_names", "num_identities", "num_forgotten")
                if isinstance(r.get(k), int)), None)  # fmt: skip
    modality = forget_report.get("modality", report.get("modality", "text"))
    base = base_model or forget_report.get("base_model") or report.get("base_model")
    model_name = repo_id.split("/")[-1]
    card_data = model_card_data(
        metrics=metrics,
        library_name=described["library_name"],
        base_model=base,
        pipeline_tag=described["pipeline_tag"],
        license=license,
        model_name=model_name,
    )
    not_evaluated = []
    present = {row.metric_type for row in metrics}
    if "idia_tpr" not in present:
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
        repo_id=repo_id,
        base_model=hub_base_model(base),
        pipeline_hint=hub_base_model(base) if described["architecture"] != "CLIPModel" and hub_base_model(base)
        and "diffusion" in (base or "").lower() else "<the base Stable Diffusion pipeline>",
        is_pipeline=described["library_name"] == "diffusers",
        architecture=described["architecture"],
        text_encoders=described["text_encoders"],
        num_identities=int(num) if isinstance(num, (int, float)) else "an unrecorded number of",
        modality=modality,
        gate_passed=bool(gate.get("passed", True)) if isinstance(gate, dict) else True,
        metrics=[
            {"label": row.label, "before": _fmt(row.before), "after": _fmt(row.after), "dataset": row.dataset}
            for row in metrics
        ],
        chart=chart,
        steps=forget_report.get("steps"),
        seconds=forget_report.get("seconds"),
        not_evaluated=not_evaluated,
        has_report=bool(report),
        hf_forget_version=__version__,
    )
