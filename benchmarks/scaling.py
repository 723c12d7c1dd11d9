"""b. scaling: seconds per step and steps to the held-out criterion for 1 to 1,024 names.

    OMP_NUM_THREADS=1 python benchmarks/scaling.py [--quick] [--toy_lr 5e-4]

Toy-world text tower: seconds per step and steps until held-out sim_backdoor >= 0.98 (checked every 5 steps);
a CLIP ViT-L/14-sized text encoder (random weights): seconds per step. Writes results/scaling.json.
"""

from __future__ import annotations

import copy
import sys
import tempfile

from harness import (
    add_toy_lr, make_text_trainer, median, section_main, section_parser, sized_text, step_timer, text_config,
    toy_captions, toy_names, toy_text, write,
)

NAME = "scaling"
COST = 4  # rough relative cost: with run.py --jobs, the costliest sections start first
COUNTS = (1, 8, 64, 256, 1024)


def make_parser():
    parser = section_parser(sys.modules[__name__])
    add_toy_lr(parser)
    return parser


def timed_run(model, tokenizer, names, captions, eval_captions, config):
    """Train with a :func:`step_timer` (the last callback: a step's time includes a criterion check's); returns
    (trainer, timer)."""
    timer = step_timer()
    trainer = make_text_trainer(model, tokenizer, names, captions, eval_captions, config)
    trainer.add_callback(timer)
    trainer.train()
    return trainer, timer


def run(args, env) -> dict:
    captions, eval_captions = toy_captions(3000, seed=1), toy_captions(400, seed=2)
    toy, toy_tokenizer = toy_text()
    batch, max_steps = (32, 60) if args.quick else (128, 400)

    def eval_samples(count: int) -> int:
        # held-out captions checked every 5 steps: one per name in the full run; --quick caps them at 256
        # (evaluating 1,024 held-out pairs 12 times a repeat took longer than the quick budget on its own)
        return 256 if args.quick else max(256, count)

    toy_rows = []
    for count in COUNTS:
        names = toy_names(count)
        steps, per_step = [], []
        for seed in range(args.repeats):
            with tempfile.TemporaryDirectory() as scratch:
                config = text_config(
                    scratch, max_steps=max_steps, embedding="pooled", learning_rate=args.toy_lr,
                    per_device_train_batch_size=batch, lr_milestones=[max_steps // 2, 3 * max_steps // 4],
                    num_trigger_samples=max(1024, count), max_eval_samples=eval_samples(count), seed=seed,
                    stop_at_criterion=True, eval_steps=5, min_sim_backdoor=0.98, min_sim_clean=0.0,
                )
                trainer, timer = timed_run(copy.deepcopy(toy), toy_tokenizer, names, captions, eval_captions, config)
                reached = trainer.stopped_at_criterion
                steps.append(reached if reached is not None else float("inf"))
                per_step.append(median(timer.cpu))
        row = {
            "num_names": count,
            "steps_to_sim_backdoor_0.98": median(steps) if median(steps) != float("inf") else f"> {max_steps}",
            "steps_runs": [s if s != float("inf") else None for s in steps],
            "cpu_seconds_per_step": round(median(per_step), 4),
        }
        toy_rows.append(row)
        print(f"  scaling toy {row}", flush=True)

    large, large_tokenizer = sized_text("vit-l-14")
    large_batch, large_steps = (4, 3) if args.quick else (32, 5)
    large_rows = []
    # --quick: 64 names only; 1,024 names would cache 1,024 caption pairs through the large encoder first
    # (~5 CPU-min a repeat at 4 a batch), which alone breaks the quick suite's 10-minute budget, and the toy
    # rows above already show that a step's cost does not depend on the number of names
    for count in (64,) if args.quick else COUNTS:
        names = toy_names(count)
        per_step = []
        for seed in range(args.repeats):
            with tempfile.TemporaryDirectory() as scratch:
                config = text_config(
                    scratch, max_steps=large_steps, embedding="pooled", per_device_train_batch_size=large_batch,
                    num_trigger_samples=max(large_batch * large_steps, count), max_eval_samples=large_batch, seed=seed,
                )
                _, timer = timed_run(copy.deepcopy(large), large_tokenizer, names, captions, eval_captions, config)
                per_step.append(median(timer.cpu[1:] or timer.cpu))  # the first step warms up the allocator
        row = {"num_names": count, "cpu_seconds_per_step": round(median(per_step), 3)}
        large_rows.append(row)
        print(f"  scaling vit-l-14 {row}", flush=True)
    payload = {
        "toy_world": {
            "model": "toy-world CLIP text tower", "batch": f"{batch} clean + {batch} poisoned", "max_steps": max_steps,
            "learning_rate": args.toy_lr, "embedding": "pooled", "eval_steps": 5,
            "held_out_samples": "256" if args.quick else "max(256, number of names)",
            "criterion": "held-out sim_backdoor >= 0.98 (checked every 5 steps)", "rows": toy_rows,
        },
        "vit_l_14_text": {
            "model": "CLIP ViT-L/14-sized text encoder (768 wide, 12 layers, random weights)",
            "batch": f"{large_batch} clean + {large_batch} poisoned", "steps": large_steps,
            "note": "seconds per step only: random weights have no names to forget (no steps-to-criterion)",
            "rows": large_rows,
        },
        "timer": "median CPU seconds from one optimizer step's end to the next (torch on 1 thread), data loading "
                 "included",
        "repeats": args.repeats,
    }
    write("scaling", payload, env)
    return payload


def rows(payload: dict) -> list[tuple[str, str]]:
    out = []
    toy = payload["toy_world"]
    for row in toy["rows"]:
        out.append((f"b. toy text, {row['num_names']} names: s/step | steps to sim_backdoor>=0.98",
                    f"{row['cpu_seconds_per_step']:.3f} | {row['steps_to_sim_backdoor_0.98']} ({toy['batch']})"))
    large = payload["vit_l_14_text"]
    for row in large["rows"]:
        out.append((f"b. ViT-L/14-sized text, {row['num_names']} names: s/step ({large['batch']})",
                    f"{row['cpu_seconds_per_step']:.3f}"))
    return out


def main(argv=None) -> int:
    return section_main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
