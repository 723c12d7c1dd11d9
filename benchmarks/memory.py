"""d. memory: peak RSS of a fresh process / bytes of the encoder's parameters, full fine-tuning and LoRA r=8.

    OMP_NUM_THREADS=1 python benchmarks/memory.py [--quick]

Each run is a fresh process (this file with --child) training a ViT-B/32-sized text encoder (random weights) a
few steps. Writes results/memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile

from harness import (
    make_text_trainer, median, section_main, section_parser, sized_text, text_config, toy_captions, toy_names, write,
)

NAME = "memory"
COST = 3  # rough relative cost: with run.py --jobs, the costliest sections start first


def make_parser():
    parser = section_parser(sys.modules[__name__])
    parser.add_argument("--child", choices=["full", "lora"], help=argparse.SUPPRESS)
    parser.add_argument("--child_steps", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--child_batch", type=int, default=16, help=argparse.SUPPRESS)
    return parser


def child(mode: str, steps: int, batch: int = 16) -> None:
    """Runs in a subprocess: train a ViT-B/32-sized text encoder a few steps, print peak RSS as JSON."""
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    model, tokenizer = sized_text("vit-b-32")
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    captions = toy_captions(400, seed=1)
    with tempfile.TemporaryDirectory() as scratch:
        config = text_config(scratch, max_steps=steps, embedding="pooled", per_device_train_batch_size=batch,
                             num_trigger_samples=64, max_eval_samples=16, lora_r=8 if mode == "lora" else 0)
        trainer = make_text_trainer(model, tokenizer, toy_names(8), captions, captions[:40], config)
        trainer.train()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"param_bytes": param_bytes, "rss_after_load": loaded, "peak_rss": peak,
                      "torch_threads": torch.get_num_threads()}))


def run(args, env) -> dict:
    steps = 2 if args.quick else 5  # not 1: one step reached a lower peak (2.75 GB, vs 3.24 GB after 2)
    batch = 8 if args.quick else 16  # --quick: smaller activations, to fit its time budget
    runs = {"full": [], "lora": []}
    for _ in range(args.repeats):
        for mode in runs:
            out = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--child", mode, "--child_steps", str(steps),
                 "--child_batch", str(batch)],
                capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  memory {mode}: {runs[mode][-1]}", flush=True)
    summary = {}
    for mode, rs in runs.items():
        pb = rs[0]["param_bytes"]
        summary[mode] = {
            "peak_rss_mib": round(median([r["peak_rss"] for r in rs]) / 2**20, 1),
            "peak_rss_per_param_byte": round(median([r["peak_rss"] / pb for r in rs]), 2),
            "training_rss_per_param_byte": round(median([(r["peak_rss"] - r["rss_after_load"]) / pb for r in rs]), 2),
        }
    payload = {
        **summary,
        "param_bytes": runs["full"][0]["param_bytes"],
        "model": "CLIP ViT-B/32-sized text encoder (512 wide, 12 layers, random weights, float32)",
        "setting": f"{steps} steps, {batch} + {batch} captions, embedding pooled, teacher cache on; LoRA r=8",
        "definition": "peak RSS of a fresh process (ru_maxrss) / bytes of the encoder's parameters; "
                      "training_*: peak minus RSS after the model was built (the model itself, the runtime excluded)",
        "runs": runs,
    }
    write("memory", payload, env)
    return payload


def rows(payload: dict) -> list[tuple[str, str]]:
    return [(f"d. peak RSS / param bytes, {mode} (ViT-B/32-sized text)",
             f"{r['peak_rss_per_param_byte']} (training part {r['training_rss_per_param_byte']})")
            for mode, r in ((m, payload[m]) for m in ("full", "lora"))]


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    if args.child:
        child(args.child, args.child_steps, args.child_batch)
        return 0
    return section_main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
