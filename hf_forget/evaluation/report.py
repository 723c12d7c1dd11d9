"""The evaluation report of a forgetting run: ``report.json``, ``report.md`` and ``report.png``.

The report compares the model before and after the defense: the IDIA true positive rate on the
forgotten identities (should fall to ~0), on the seen identities that were not forgotten (should stay)
and the false positive rate on never-seen identities; the embedding similarities; zero-shot accuracy.
With the attack suite (:mod:`.attacks`), ``report["attacks"] = {"before": S, "after": S}`` where ``S`` is
:attr:`.attacks.AttackSuiteResult.summary`: per group (forgotten / retained / unseen) rates of the paper's IDIA,
the top-5 vote IDIA and rank <= 10, and the membership and forget-set detection AUCs (floats or null).
It holds counts and rates only, never a name; :func:`write_report` can scan what it wrote to prove it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Collection, Iterable
from pathlib import Path

from ..errors import ForgetInputError
from ..outputs import strict
from .attacks import AttackSuiteResult, empty_summary
from .idia import IDIAResult
from .zero_shot import ZeroShotResult

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_PNG = "report.png"


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def idia_summary(result: IDIAResult, forgotten: Collection[int | str], kept: Collection[int | str] = ()) -> dict:
    """Rates of one IDIA run split by group: ``tpr`` over the forgotten persons (given by input index or
    name), ``retained_tpr`` over the other persons expected to be known except the ``kept`` ones (known persons
    whose pictures the defense used), reported apart as ``kept_tpr``, ``fpr`` over never-seen persons."""
    forgotten_keys, kept_keys = set(forgotten), set(kept)
    is_forgotten = [p.index in forgotten_keys or p.name in forgotten_keys for p in result.persons]
    is_kept = [p.index in kept_keys or p.name in kept_keys for p in result.persons]
    retained = [
        p.recognised
        for p, gone, held in zip(result.persons, is_forgotten, is_kept)
        if p.expected_known and not gone and not held
    ]
    kept_flags = [p.recognised for p, held in zip(result.persons, is_kept) if held]
    summary = {
        "tpr": _round(result.recognition_rate(p.index for p, gone in zip(result.persons, is_forgotten) if gone)),
        "retained_tpr": _round(sum(retained) / len(retained) if retained else None),
        "fpr": _round(result.fpr),
        "known_tpr": _round(result.tpr),
        "num_forgotten": sum(is_forgotten),
        "num_retained": len(retained),
        "num_unseen": sum(not p.expected_known for p in result.persons),
        "num_skipped": len(result.skipped),
    }
    if kept_keys:
        summary["kept_tpr"] = _round(sum(kept_flags) / len(kept_flags) if kept_flags else None)
        summary["num_kept"] = len(kept_flags)
    return summary


def build_report(
    *,
    modality: str,
    idia_before: IDIAResult,
    idia_after: IDIAResult,
    forgotten: Collection[int | str],
    similarities: dict[str, float],
    zero_shot_before: ZeroShotResult | None = None,
    zero_shot_after: ZeroShotResult | None = None,
    seconds: float | None = None,
    extra: dict | None = None,
    kept: Collection[int | str] = (),
    attacks_before: AttackSuiteResult | None = None,
    attacks_after: AttackSuiteResult | None = None,
) -> dict:
    """Assemble the report dictionary (JSON-ready, no names).

    ``similarities`` holds at least ``sim_clean`` and ``sim_backdoor`` (see :mod:`.similarity`); they are
    copied to the top level, the full dictionary is kept under ``"similarity"``. With the attack suite's results,
    ``"attacks"`` holds their summaries (``{"before": S, "after": S}``) and ``"attack_details"`` their details.
    """
    report = {
        "modality": modality,
        "num_forgotten": len(forgotten),
        "idia": {
            "before": idia_summary(idia_before, forgotten, kept),
            "after": idia_summary(idia_after, forgotten, kept),
            "num_candidates": idia_before.num_candidates,
            "num_templates": idia_before.num_templates,
            "images_per_person": idia_before.images_per_person,
            "tau": idia_before.tau,
        },
        "sim_clean": _round(similarities.get("sim_clean"), 6),
        "sim_backdoor": _round(similarities.get("sim_backdoor"), 6),
        "similarity": {key: _round(value, 6) for key, value in similarities.items()},
        "zero_shot": {
            "before": zero_shot_before.to_dict() if zero_shot_before else None,
            "after": zero_shot_after.to_dict() if zero_shot_after else None,
        },
        "seconds": _round(seconds, 1),
        "chart": REPORT_PNG,
    }
    if attacks_before is not None or attacks_after is not None:
        report["attacks"] = {
            "before": attacks_before.summary if attacks_before else empty_summary(),
            "after": attacks_after.summary if attacks_after else empty_summary(),
        }
        report["attack_details"] = {
            "before": attacks_before.details if attacks_before else None,
            "after": attacks_after.details if attacks_after else None,
        }
    if extra:
        report.update(extra)
    return report


def _fmt(value, percent: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f}%" if percent else f"{value:.4f}"


def render_markdown(report: dict) -> str:
    """A short human-readable summary of :func:`build_report`'s dictionary."""
    idia, zero_shot = report["idia"], report["zero_shot"]
    before, after = idia["before"], idia["after"]
    lines = [
        "# hf-forget evaluation report",
        "",
        f"Modality: **{report['modality']}** · identities forgotten: **{report['num_forgotten']}** · "
        f"run time: {report.get('seconds', '–')} s",
        "",
        f"## Identity Inference Attack ({idia['num_candidates']} candidate names, {idia['num_templates']} templates, "
        f"{idia['images_per_person']} images a person, tau = {idia['tau']})",
        "",
        "| | before | after |",
        "|---|---|---|",
        f"| TPR, forgotten identities (n={before['num_forgotten']}) | {_fmt(before['tpr'], True)} | {_fmt(after['tpr'], True)} |",
        f"| TPR, retained seen identities (n={before['num_retained']}) | {_fmt(before['retained_tpr'], True)} | "
        f"{_fmt(after['retained_tpr'], True)} |",
        *(
            [f"| TPR, seen identities whose pictures the defense kept (n={before['num_kept']}) | "
             f"{_fmt(before.get('kept_tpr'), True)} | {_fmt(after.get('kept_tpr'), True)} |"]
            if before.get("num_kept") else []
        ),
        f"| FPR, never-seen identities (n={before['num_unseen']}) | {_fmt(before['fpr'], True)} | {_fmt(after['fpr'], True)} |",
        "",
        *render_attacks(report),
        "## Embedding similarity (defended vs. original encoder)",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {key} | {_fmt(value)} |" for key, value in report.get("similarity", {}).items()],
    ]
    if zero_shot.get("before") or zero_shot.get("after"):
        zb, za = zero_shot.get("before") or {}, zero_shot.get("after") or {}
        lines += [
            "",
            f"## Zero-shot accuracy ({zb.get('num_samples', za.get('num_samples'))} images, "
            f"{zb.get('num_classes', za.get('num_classes'))} classes)",
            "",
            "| | before | after |",
            "|---|---|---|",
            f"| top-1 | {_fmt(zb.get('top1'), True)} | {_fmt(za.get('top1'), True)} |",
            f"| top-5 | {_fmt(zb.get('top5'), True)} | {_fmt(za.get('top5'), True)} |",
        ]
    if "command" in report:
        lines += ["", f"Command: `{report['command']}`"]
    return "\n".join(lines) + "\n"


ATTACK_LABELS = {
    "idia": "IDIA (the paper's: top-1 vote)",
    "idia_top5": "IDIA, top-5 vote",
    "rank_at_10": "true name ranks <= 10 (mean similarity)",
    "membership_auc": "membership: forgotten vs never seen (true-name z-score)",
    "forget_set_auc_text": "forget set, text: name prompts vs neutral-term prompts",
    "forget_set_auc_vision": "forget set, vision: how tightly a person's pictures cluster, vs never seen",
}


def render_attacks(report: dict) -> list[str]:
    """The attack-suite section of :func:`render_markdown` (no lines when the report has no suite)."""
    attacks = report.get("attacks")
    if not attacks:
        return []
    before, after = attacks.get("before") or {}, attacks.get("after") or {}
    counts = ((report.get("attack_details") or {}).get("before") or {}).get("num_persons", {})
    label = lambda g: f"{g} (n={counts[g]})" if g in counts else g  # noqa: E731
    groups = ("forgotten", "retained", "unseen")
    lines = [
        "## Attack suite (share of people each attack finds, per group)",
        "",
        "| attack | " + " | ".join(f"{label(g)} before | after" for g in groups) + " |",
        "|---|" + "---|---|" * len(groups),
    ]
    for key in ("idia", "idia_top5", "rank_at_10"):
        b, a = before.get(key) or {}, after.get(key) or {}
        lines.append(f"| {ATTACK_LABELS[key]} | " + " | ".join(f"{_fmt(b.get(g), True)} | {_fmt(a.get(g), True)}" for g in groups) + " |")
    lines += [
        "",
        "| detection (AUC; 0.5: no signal, far from 0.5 either way: a leak) | before | after |",
        "|---|---|---|",
        *[f"| {ATTACK_LABELS[key]} | {_fmt(before.get(key))} | {_fmt(after.get(key))} |"
          for key in ("membership_auc", "forget_set_auc_text", "forget_set_auc_vision")],
        "",
    ]
    return lines


def _pyplot():
    try:
        import matplotlib  # noqa: PLC0415 - an optional extra
    except ImportError:
        raise ForgetInputError("the report chart needs matplotlib: pip install 'hf-forget[demo]'.") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def plot_report(report: dict, path: str | os.PathLike) -> None:
    """A PNG chart: IDIA rates, similarities, zero-shot accuracy (before vs. after) and, with the attack suite,
    what each attack finds of the forgotten people and the detection AUCs."""
    plt = _pyplot()
    idia, zero_shot = report["idia"], report["zero_shot"]
    attacks = report.get("attacks")
    figure, axes = plt.subplots(1, 4 if attacks else 3, figsize=(17.5 if attacks else 13, 4))
    groups = [("forgotten\nTPR", "tpr"), ("retained\nTPR", "retained_tpr"), ("unseen\nFPR", "fpr")]
    _bars(axes[0], [g for g, _ in groups], [idia["before"][k] for _, k in groups], [idia["after"][k] for _, k in groups])
    axes[0].set_title("Identity Inference Attack")
    axes[0].set_ylim(0, 1.05)
    sims = {
        k: v for k, v in report.get("similarity", {}).items()
        if v is not None and not k.endswith(("_before", "_flat"))
    }
    names = list(sims)[::-1]
    axes[1].barh(range(len(names)), [sims[k] for k in names], color="tab:green")
    axes[1].set_yticks(range(len(names)), [k.replace("sim_", "") for k in names], fontsize=8)
    for row, key in enumerate(names):
        axes[1].text(sims[key], row, f" {sims[key]:.3f}", va="center", fontsize=7)
    axes[1].set_xlim(min([0.0, *sims.values()]), 1.15)
    axes[1].set_title("Similarity (defended vs. original)")
    zb, za = zero_shot.get("before") or {}, zero_shot.get("after") or {}
    _bars(axes[2], ["top-1", "top-5"], [zb.get("top1"), zb.get("top5")], [za.get("top1"), za.get("top5")])
    axes[2].set_title("Zero-shot accuracy")
    axes[2].set_ylim(0, 1.05)
    if attacks:
        before, after = attacks.get("before") or {}, attacks.get("after") or {}
        keys = [("IDIA", "idia"), ("IDIA\ntop-5", "idia_top5"), ("rank\n<= 10", "rank_at_10")]
        aucs = [("member-\nship AUC", "membership_auc"), ("forget set\nAUC text", "forget_set_auc_text"),
                ("forget set\nAUC vision", "forget_set_auc_vision")]
        _bars(
            axes[3], [k for k, _ in keys + aucs],
            [(before.get(key) or {}).get("forgotten") for _, key in keys] + [before.get(key) for _, key in aucs],
            [(after.get(key) or {}).get("forgotten") for _, key in keys] + [after.get(key) for _, key in aucs],
        )
        axes[3].axhline(0.5, color="tab:red", linestyle="--", linewidth=0.8)
        axes[3].tick_params(axis="x", labelsize=7)
        axes[3].set_ylim(0, 1.05)
        axes[3].set_title("Attack suite: forgotten found / AUC (0.5: none)")
    figure.suptitle(f"hf-forget: {report['num_forgotten']} identities forgotten ({report['modality']} encoder)")
    figure.tight_layout()
    figure.savefig(path, dpi=100, format="png", metadata={"Software": None})
    plt.close(figure)


def _bars(axis, labels, before, after) -> None:
    positions = range(len(labels))
    axis.bar([p - 0.2 for p in positions], [v or 0 for v in before], width=0.4, label="before", color="tab:gray")
    axis.bar([p + 0.2 for p in positions], [v or 0 for v in after], width=0.4, label="after", color="tab:blue")
    axis.set_xticks(list(positions), labels)
    axis.legend(fontsize=8)


def _write_atomically(path: Path, write) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def write_report(output_dir: str | os.PathLike, report: dict, forbidden_names: Iterable[str] = ()) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.png`` into ``output_dir`` (each file atomically).

    With ``forbidden_names`` (the forgotten identities), the written files are scanned with the leak
    guard, which raises ``NameLeakError`` (naming the file, never the name) if any carries one.
    """
    directory = Path(output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / REPORT_JSON, "markdown": directory / REPORT_MD, "chart": directory / REPORT_PNG}

    def dump_json(target: str) -> None:
        with open(target, "w", encoding="utf-8") as handle:
            json.dump(strict(report), handle, indent=2, allow_nan=False)  # strict JSON: an undefined figure is null
            handle.write("\n")

    def dump_markdown(target: str) -> None:
        Path(target).write_text(render_markdown(report), encoding="utf-8")

    _write_atomically(paths["json"], dump_json)
    _write_atomically(paths["markdown"], dump_markdown)
    _write_atomically(paths["chart"], lambda target: plot_report(report, target))
    forbidden_names = [name for name in forbidden_names if name]
    if forbidden_names:
        from ..publish.leak_guard import scan_tree  # noqa: PLC0415

        scan_tree(directory, forbidden_names)
    return paths
