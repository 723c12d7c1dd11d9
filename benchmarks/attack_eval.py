"""The attack suite over seeds x modalities x recipes: `hf-forget demo` runs as parallel worker processes.

Each run is one `python -m hf_forget.cli demo --output_dir DIR --modality M --seed S --recipe R [--settings JSON]`
in its own process (``OMP_NUM_THREADS=--threads``; CUDA is used by the demo when available). As each run ends, one
JSON line is appended to ``--out`` (and flushed): the command, the attacks summary before/after, retained TPR, FPR,
zero-shot top-1 before/after, sim_clean, timings; a run that fails or passes ``--run_timeout`` is recorded as failed
(return code and the tail of its log) and the others go on. No new run starts after ``--max_seconds``. At the end
(and after every run) ``--summary`` holds, per modality and recipe, the median and the worst seed of every figure
and which acceptance lines of issue 22 hold.

Usage (the declared evaluation seeds, on the GPU machine)::

    python benchmarks/attack_eval.py --seeds 100-109 --modalities text,vision,both --recipes ours,paper \\
        --workers 12 --threads 1 --max_seconds 420 --out attack_eval.jsonl --summary attack_eval_summary.json

Rerun with the same ``--out`` to finish what a budget cut off: (seed, modality, recipe, settings) already recorded
as done are skipped (``--no_resume`` runs everything again).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COST = {"both": 3, "vision": 2, "text": 1}  # rough relative run time: the longest start first
ACCEPTANCE = {
    "idia_forgotten_zero_at_9_of_10": "paper IDIA: forgotten TPR 0 at >= 90% of seeds",
    "top5_at_most_unseen_plus_1_8": "top-5 IDIA rate of the forgotten <= never-seen + 1/8 (median)",
    "rank10_at_most_unseen_plus_1_8": "rank <= 10 rate of the forgotten <= never-seen + 1/8 (median)",
    "membership_auc_le_0.65": "membership AUC <= 0.65 (median)",
    "forget_set_auc_le_0.65": "forget-set AUC <= 0.65 (median; text statistic for text, vision statistic for "
    "vision and both: a text-only defense cannot move the vision one)",
    "retained_tpr_ge_before_minus": "retained TPR (out of sample) >= before - 0.05 (text) / 0.10 (vision, both) (median)",
    "fpr_unchanged": "IDIA FPR after == before (median)",
    "zero_shot_drop_le_2_points": "zero-shot top-1 down by <= 2 points (median)",
    "text_sim_clean_ge_0.99": "text sim_clean >= 0.99 (median; text and both)",
}


def parse_seeds(text: str) -> list[int]:
    """``"100-109"``, ``"0,3,5"`` or a mix (``"0-2,7"``) -> the list of seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            low, high = (int(v) for v in part.split("-", 1))
            seeds += list(range(low, high + 1))
        else:
            seeds.append(int(part))
    return list(dict.fromkeys(seeds))


def _get(d: dict, *keys, default=None):
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return default
        d = d[key]
    return d


def record_from_report(report: dict) -> dict:
    """The figures of one demo report that the summary reads (no name is in a report)."""
    idia_before, idia_after = _get(report, "idia", "before", default={}), _get(report, "idia", "after", default={})
    sims = report.get("similarity") or {}
    text_sim_clean = sims.get("text_sim_clean", report.get("sim_clean")) if report.get("modality") != "vision" else None
    return {
        "attacks": report.get("attacks"),
        "attack_details_after": _get(report, "attack_details", "after"),
        "retained_tpr": {"before": idia_before.get("retained_tpr"), "after": idia_after.get("retained_tpr")},
        "fpr": {"before": idia_before.get("fpr"), "after": idia_after.get("fpr")},
        "zero_shot_top1": {"before": _get(report, "zero_shot", "before", "top1"),
                           "after": _get(report, "zero_shot", "after", "top1")},
        "sim_clean": report.get("sim_clean"),
        "text_sim_clean": text_sim_clean,
        "sim_backdoor": report.get("sim_backdoor"),
        "gate": {k: _get(v, "gate", "passed") for k, v in (report.get("training") or {}).items()},
        "timings": report.get("timings"),
    }


def figures(record: dict) -> dict[str, float | None]:
    """Flat figures of one run (after the defense, and the deltas the acceptance reads)."""
    a = _get(record, "attacks", "after", default={}) or {}
    out: dict[str, float | None] = {}
    for attack in ("idia", "idia_top5", "rank_at_10"):
        for group in ("forgotten", "retained", "unseen"):
            out[f"{attack}_{group}"] = _get(a, attack, group)
    for key in ("membership_auc", "forget_set_auc_text", "forget_set_auc_vision"):
        out[key] = a.get(key)
        out[f"{key}_before"] = _get(record, "attacks", "before", key)
    out["retained_tpr_before"] = _get(record, "retained_tpr", "before")
    out["retained_tpr_after"] = _get(record, "retained_tpr", "after")
    out["fpr_before"], out["fpr_after"] = _get(record, "fpr", "before"), _get(record, "fpr", "after")
    z0, z1 = _get(record, "zero_shot_top1", "before"), _get(record, "zero_shot_top1", "after")
    out["zero_shot_before"], out["zero_shot_after"] = z0, z1
    out["zero_shot_drop_points"] = None if z0 is None or z1 is None else round(100 * (z0 - z1), 2)
    out["retained_tpr_drop"] = (
        None if out["retained_tpr_before"] is None or out["retained_tpr_after"] is None
        else round(out["retained_tpr_before"] - out["retained_tpr_after"], 4)
    )
    out["sim_clean"] = record.get("sim_clean")
    out["text_sim_clean"] = record.get("text_sim_clean")
    return out


# the worse direction of each figure (for "worst seed")
HIGHER_IS_WORSE = {
    "idia_forgotten", "idia_top5_forgotten", "rank_at_10_forgotten", "idia_unseen", "idia_top5_unseen",
    "rank_at_10_unseen", "fpr_after", "zero_shot_drop_points", "retained_tpr_drop",
}
LOWER_IS_WORSE = {"idia_retained", "idia_top5_retained", "rank_at_10_retained", "retained_tpr_after", "zero_shot_after",
                  "sim_clean", "text_sim_clean"}


def _distance_from_half(value: float) -> float:
    return abs(value - 0.5)


def summarise(records: list[dict]) -> dict:
    """Per (modality, recipe): median and worst seed of every figure, and the acceptance lines."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        if r.get("status") == "ok":
            groups.setdefault(f"{r['modality']}/{r['recipe']}", []).append(r)
    failed: dict[str, int] = {}
    not_started: dict[str, int] = {}
    for r in records:
        key = f"{r['modality']}/{r['recipe']}"
        if r.get("status") == "not_started":
            not_started[key] = not_started.get(key, 0) + 1
        elif r.get("status") != "ok":
            failed[key] = failed.get(key, 0) + 1
    summary: dict = {}
    for key, runs in sorted(groups.items()):
        modality = key.split("/")[0]
        per_seed = {r["seed"]: figures(r) for r in runs}
        names = list(next(iter(per_seed.values())))
        stats: dict = {}
        for name in names:
            values = [(seed, f[name]) for seed, f in per_seed.items() if f[name] is not None]
            if not values:
                stats[name] = {"median": None, "worst": None, "worst_seed": None, "n": 0}
                continue
            nums = [v for _, v in values]
            if name in HIGHER_IS_WORSE:
                worst_seed, worst = max(values, key=lambda sv: sv[1])
            elif name in LOWER_IS_WORSE:
                worst_seed, worst = min(values, key=lambda sv: sv[1])
            elif "auc" in name:  # an AUC leaks either way: the worst is the farthest from 0.5 (above: the leak named)
                worst_seed, worst = max(values, key=lambda sv: sv[1])
            else:
                worst_seed, worst = max(values, key=lambda sv: sv[1])
            stats[name] = {"median": round(statistics.median(nums), 4), "worst": worst, "worst_seed": worst_seed,
                           "n": len(nums)}
        med = {name: stats[name]["median"] for name in names}

        def le(a, b):
            return None if a is None or b is None else bool(a <= b + 1e-9)

        n = len(per_seed)
        zero = sum(1 for f in per_seed.values() if f["idia_forgotten"] == 0)
        forget_set = "forget_set_auc_text" if modality == "text" else "forget_set_auc_vision"
        slack = 0.05 if modality == "text" else 0.10
        acceptance = {
            "idia_forgotten_zero_at_9_of_10": bool(zero >= 0.9 * n),
            "top5_at_most_unseen_plus_1_8": le(med["idia_top5_forgotten"],
                                               None if med["idia_top5_unseen"] is None else med["idia_top5_unseen"] + 1 / 8),
            "rank10_at_most_unseen_plus_1_8": le(med["rank_at_10_forgotten"],
                                                 None if med["rank_at_10_unseen"] is None else med["rank_at_10_unseen"] + 1 / 8),
            "membership_auc_le_0.65": le(med["membership_auc"], 0.65),
            "forget_set_auc_le_0.65": le(med[forget_set], 0.65),
            "retained_tpr_ge_before_minus": le(med["retained_tpr_drop"], slack),
            "fpr_unchanged": None if med["fpr_after"] is None else bool(abs(med["fpr_after"] - med["fpr_before"]) < 1e-9),
            "zero_shot_drop_le_2_points": le(med["zero_shot_drop_points"], 2.0),
            "text_sim_clean_ge_0.99": None if modality == "vision" or med["text_sim_clean"] is None
            else bool(med["text_sim_clean"] >= 0.99),
        }
        summary[key] = {
            "seeds": sorted(per_seed),
            "num_runs": n,
            "num_failed": failed.get(key, 0),
            "num_not_started": not_started.get(key, 0),
            "idia_forgotten_zero_seeds": zero,
            "forget_set_statistic": forget_set,
            "figures": stats,
            "acceptance": acceptance,
            "all_acceptance_hold": all(v is not False for v in acceptance.values()),
        }
    for key in set(failed) | set(not_started):
        summary.setdefault(key, {"num_runs": 0, "num_failed": failed.get(key, 0), "num_not_started": not_started.get(key, 0)})
    return {"acceptance_lines": ACCEPTANCE, "groups": summary}


def preflight() -> dict:
    """What every run needs, checked once before any starts: the demo's extras (Faker for the audit's filler names
    and the unknown names, scikit-learn for the digits, matplotlib for the chart) and the device."""
    import importlib

    missing = []
    for module, package in (("faker", "faker"), ("sklearn", "scikit-learn"), ("matplotlib", "matplotlib"),
                            ("torch", "torch"), ("transformers", "transformers")):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise SystemExit(f"attack_eval: missing {', '.join(missing)}: pip install them (or 'hf-forget[demo]') first.")
    import torch
    import transformers

    mode = None
    if torch.cuda.is_available() and shutil.which("nvidia-smi"):
        try:
            mode = subprocess.run(["nvidia-smi", "--query-gpu=compute_mode", "--format=csv,noheader"], capture_output=True,
                                  text=True, timeout=30).stdout.strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            mode = None
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "cpus": os.cpu_count(),
            "compute_mode": mode}


def run_key(seed: int, modality: str, recipe: str, settings: str | None, note: str | None = None) -> str:
    return json.dumps([seed, modality, recipe, settings or "", note or ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", required=True, help="e.g. 100-109 or 0,1,2")
    parser.add_argument("--modalities", default="text,vision,both")
    parser.add_argument("--recipes", default="ours,paper")
    parser.add_argument("--workers", type=int, default=2, help="runs at the same time")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run")
    parser.add_argument("--out", required=True, help="JSONL: one line per run, appended and flushed as runs end")
    parser.add_argument("--summary", default=None, help="summary JSON (default: OUT with .summary.json)")
    parser.add_argument("--max_seconds", type=float, default=None, help="start no new run after this many seconds")
    parser.add_argument("--run_timeout", type=float, default=None, help="kill (and record as failed) a run after this")
    parser.add_argument("--settings", default=None, help="JSON of DemoSettings fields for every run (tuning)")
    parser.add_argument("--work_dir", default=None, help="where the runs' outputs go (default: a temporary folder)")
    parser.add_argument("--keep_outputs", action="store_true", help="keep each run's report and model")
    parser.add_argument("--no_resume", action="store_true", help="run again what --out already records as done")
    parser.add_argument("--note", default=None, help="a note stored in each line (tuning: what was tried)")
    parser.add_argument("--summarise_only", action="store_true",
                        help="run nothing: write the summary of the lines of --out with this --settings and --note")
    args = parser.parse_args(argv)

    seeds = parse_seeds(args.seeds)
    modalities = [m.strip() for m in args.modalities.split(",") if m.strip()]
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    bad = [m for m in modalities if m not in COST] + [r for r in recipes if r not in ("ours", "paper")]
    if bad or not seeds:
        parser.error(f"unknown modality/recipe {bad} or no seed")
    if args.settings:
        json.loads(args.settings)  # fail early on bad JSON
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary_path = Path(args.summary) if args.summary else out.with_suffix(".summary.json")
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="attack_eval_"))
    work.mkdir(parents=True, exist_ok=True)

    done: set[str] = set()
    if out.exists() and not args.no_resume:
        for line in out.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if r.get("status") == "ok":
                done.add(run_key(r["seed"], r["modality"], r["recipe"], r.get("settings"), r.get("note")))
    # the longest modality first (text runs fill the gaps at the end); within it, seed by seed, every recipe of a
    # seed together: a run cut short by a budget leaves whole seeds compared, not one recipe's seeds only
    queue = [(seed, m, r) for m in sorted(modalities, key=lambda m: -COST[m]) for seed in seeds for r in recipes
             if run_key(seed, m, r, args.settings, args.note) not in done]
    environment = {} if args.summarise_only else preflight()
    if args.summarise_only:
        queue = []
    print(f"attack_eval: {len(queue)} runs ({len(done)} already done), {args.workers} workers, outputs in {work}",
          file=sys.stderr, flush=True)

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    started = time.monotonic()
    running: list[dict] = []
    records: list[dict] = []
    if out.exists():
        for line in out.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pass

    def write_summary() -> None:
        mine = [r for r in records if (r.get("settings") or None) == (args.settings or None)
                and (r.get("note") or None) == (args.note or None) and r.get("seed") in seeds
                and r.get("modality") in modalities and r.get("recipe") in recipes]
        summary = summarise(mine)
        summary["settings"] = args.settings
        summary["seeds"] = seeds
        summary["environment"] = environment
        tmp = summary_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(summary, indent=1))
        os.replace(tmp, summary_path)

    def finish(job: dict, rc: int | None, timed_out: bool = False) -> None:
        record = {
            "seed": job["seed"], "modality": job["modality"], "recipe": job["recipe"], "settings": args.settings,
            "command": job["command"], "seconds": round(time.monotonic() - job["start"], 1),
            "returncode": rc, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "device": job["device"],
            **({"note": args.note} if args.note else {}),
        }
        report_path = job["dir"] / "report.json"
        if rc == 0 and report_path.exists():
            try:
                record.update(status="ok", **record_from_report(json.loads(report_path.read_text())))
            except Exception as error:  # noqa: BLE001 - a broken report is a failed run, the others go on
                record.update(status="failed", error=f"unreadable report: {error}")
        else:
            log = job["log"].read_text(errors="replace") if job["log"].exists() else ""
            record.update(status="timeout" if timed_out else "failed", log_tail=log[-3000:])
        with out.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        records.append(record)
        write_summary()
        if not args.keep_outputs and record["status"] == "ok":
            shutil.rmtree(job["dir"], ignore_errors=True)
        print(f"attack_eval: {record['status']} seed {job['seed']} {job['modality']} {job['recipe']} "
              f"({record['seconds']} s, {time.monotonic() - started:.0f} s elapsed)", file=sys.stderr, flush=True)

    try:
        while queue or running:
            now = time.monotonic()
            over_budget = args.max_seconds is not None and now - started > args.max_seconds
            while queue and len(running) < args.workers and not over_budget:
                seed, modality, recipe = queue.pop(0)
                directory = work / f"{modality}_{recipe}_{seed}"
                command = [sys.executable, "-m", "hf_forget.cli", "demo", "--output_dir", str(directory), "--modality",
                           modality, "--seed", str(seed), "--recipe", recipe, "--overwrite_output_dir"]
                if args.settings:
                    command += ["--settings", args.settings]
                log = work / f"{modality}_{recipe}_{seed}.log"
                handle = log.open("w")
                # an exclusive-process GPU takes one process: the other runs then go on the CPUs
                on_gpu = bool(environment.get("cuda")) and (
                    "exclusive" not in str(environment.get("compute_mode", "")).lower()
                    or not any(job["device"] == "cuda" for job in running))
                run_env = env if on_gpu else {**env, "CUDA_VISIBLE_DEVICES": ""}
                process = subprocess.Popen(command, cwd=ROOT, env=run_env, stdout=handle, stderr=subprocess.STDOUT,
                                           start_new_session=True)
                running.append({"seed": seed, "modality": modality, "recipe": recipe, "dir": directory, "log": log,
                                "device": "cuda" if on_gpu else "cpu",
                                "handle": handle, "process": process, "start": time.monotonic(),
                                "command": " ".join(command[1:]).replace(str(directory), "OUT")})
            if over_budget and queue:
                print(f"attack_eval: budget of {args.max_seconds} s spent, {len(queue)} runs not started",
                      file=sys.stderr, flush=True)
                for seed, modality, recipe in queue:
                    records.append({"seed": seed, "modality": modality, "recipe": recipe, "settings": args.settings,
                                    "status": "not_started"})
                queue = []
            for job in list(running):
                rc = job["process"].poll()
                timed_out = args.run_timeout is not None and time.monotonic() - job["start"] > args.run_timeout
                if rc is None and timed_out:
                    try:
                        os.killpg(job["process"].pid, 9)
                    except ProcessLookupError:
                        pass
                    rc = job["process"].wait()
                if rc is not None:
                    job["handle"].close()
                    running.remove(job)
                    finish(job, rc, timed_out and rc != 0)
            time.sleep(0.5)
    except KeyboardInterrupt:
        for job in running:
            try:
                os.killpg(job["process"].pid, 9)
            except ProcessLookupError:
                pass
        raise
    finally:
        write_summary()
    final = json.loads(summary_path.read_text())
    print(json.dumps({k: v.get("acceptance") for k, v in final["groups"].items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
