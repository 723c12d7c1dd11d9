"""c. criterion: --stop_at_criterion versus the fixed-step protocol, forgetting 8 seen toy-world identities.

    OMP_NUM_THREADS=1 python benchmarks/criterion.py [--quick] [--toy_lr 5e-4]

Both modes through forget_text, with the toy-world IDIA (32 seen + 32 unseen identities, 20 images, 1,000
candidates, 21 templates) after each run. Writes results/criterion.json.
"""

from __future__ import annotations

import copy
import sys
import tempfile

from audit import toy_audit
from harness import (
    add_toy_lr, clock, elapsed, median, run_forget_text, section_main, section_parser, seen_names, step_timer,
    text_config, toy_captions, toy_text, write,
)

NAME = "criterion"
COST = 1  # rough relative cost: with run.py --jobs, the costliest sections start first
KEYS = ("steps", "cpu_seconds", "sim_backdoor", "sim_clean", "idia_tpr", "idia_fpr")


def make_parser():
    parser = section_parser(sys.modules[__name__])
    add_toy_lr(parser)
    return parser


def run(args, env) -> dict:
    base, tokenizer = toy_text()
    captions, eval_captions = toy_captions(3000, seed=1), toy_captions(400, seed=2)
    names = seen_names()[:8]
    batch, fixed = (32, 150) if args.quick else (128, 400)
    before = toy_audit(base)
    runs = {"fixed": [], "stop_at_criterion": []}
    for seed in range(args.repeats):
        for mode in runs:
            with tempfile.TemporaryDirectory() as scratch:
                config = text_config(
                    scratch, max_steps=fixed, embedding="pooled", learning_rate=args.toy_lr,
                    per_device_train_batch_size=batch, lr_milestones=[fixed // 2, 3 * fixed // 4], seed=seed,
                    num_trigger_samples=4096, stop_at_criterion=(mode == "stop_at_criterion"), eval_steps=10,
                    min_sim_backdoor=0.98, min_sim_clean=0.99,
                )
                timer = step_timer()
                started = clock()
                result = run_forget_text(copy.deepcopy(base), tokenizer, names, captions, eval_captions, config,
                                         callbacks=[timer])
                wall, cpu = elapsed(started, timer.ended)  # set-up and training; the final evaluation excluded
                report = result.report
                after = toy_audit(result.model)
                run = {"seed": seed, "steps": report["steps"], "cpu_seconds": round(cpu, 1),
                       "wall_seconds": round(wall, 1), "sim_backdoor": round(report["sim_backdoor"], 4),
                       "sim_clean": round(report["sim_clean"], 4), "idia_tpr": after["tpr"], "idia_fpr": after["fpr"]}
                runs[mode].append(run)
                print(f"  criterion {mode}: {run}", flush=True)
    summary = {mode: {k: median([r[k] for r in rs]) for k in KEYS} for mode, rs in runs.items()}
    payload = {
        **summary,
        "cpu_time_ratio": round(summary["stop_at_criterion"]["cpu_seconds"] / summary["fixed"]["cpu_seconds"], 3),
        "fixed_steps": fixed,
        "idia_before": before,
        "num_names": len(names), "batch": f"{batch} + {batch}", "learning_rate": args.toy_lr,
        "criterion": "held-out sim_backdoor >= 0.98 and sim_clean >= 0.99, checked every 10 steps",
        "idia": "TPR over all 32 seen identities (8 forgotten, 24 kept), FPR over the 32 unseen; 1,000 candidates",
        "runs": runs,
    }
    write("criterion", payload, env)
    return payload


def rows(payload: dict) -> list[tuple[str, str]]:
    out = []
    for mode in ("fixed", "stop_at_criterion"):
        r = payload[mode]
        label = f"fixed {payload['fixed_steps']} steps" if mode == "fixed" else "--stop_at_criterion"
        out.append((f"c. {label}: steps, CPU s, IDIA TPR/FPR, sim_bd/sim_clean",
                    f"{r['steps']}, {r['cpu_seconds']}, {r['idia_tpr']}/{r['idia_fpr']}, "
                    f"{r['sim_backdoor']}/{r['sim_clean']}"))
    return out


def main(argv=None) -> int:
    return section_main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
