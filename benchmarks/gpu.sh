#!/usr/bin/env bash
# One prepared GPU check: forget 64 names from a CLIP ViT-L/14-sized text encoder (random weights, 768 wide,
# 12 layers) in bf16, 400 steps of 128 clean + 128 poisoned captions (the reference protocol's sizes),
# embedding "both" (pooled + hidden states padded to 77 tokens), teacher cache on; then the same run with the
# reference protocol (teacher_cache=False). Prints seconds and peak GPU memory of each, as JSON lines, and
# writes them to benchmarks/results/gpu.json.
#
#   bash benchmarks/gpu.sh            # STEPS=400 NAMES=64 by default; STEPS=50 bash benchmarks/gpu.sh to try
#
# Needs a CUDA GPU with bf16. Nothing is downloaded (random weights, offline byte-level tokenizer).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
STEPS="${STEPS:-400}" NAMES="${NAMES:-64}" python - <<'PY'
import json, os, sys, tempfile, time

import torch

sys.path.insert(0, "benchmarks")
import run  # noqa: E402  (benchmarks/run.py helpers)

from transformers.utils import logging
logging.set_verbosity_error()
assert torch.cuda.is_available(), "benchmarks/gpu.sh needs a CUDA GPU"
steps, count = int(os.environ["STEPS"]), int(os.environ["NAMES"])
model, tokenizer = run.sized_text("vit-l-14")
names = run.toy_names(count)
captions, eval_captions = run.toy_captions(3000, seed=1), run.toy_captions(400, seed=2)
rows = []
for mode in ("default", "reference"):
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as scratch:
        config = run.text_config(
            scratch, names, max_steps=steps, embedding="both", bf16=True, use_cpu=False,
            teacher_cache=(mode == "default"), num_trigger_samples=4096,
            lr_milestones=[steps // 2, 3 * steps // 4],
        )
        torch.cuda.synchronize()
        started = time.perf_counter()
        trainer = run.make_text_trainer(run.copy.deepcopy(model).cuda(), tokenizer, captions, eval_captions, config)
        trainer.train()
        torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        metrics = trainer.forget_metrics()
    row = {
        "mode": mode, "steps": steps, "num_names": count, "seconds": round(seconds, 1),
        "seconds_per_step": round(seconds / steps, 4),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "sim_backdoor": round(metrics["sim_backdoor"], 4), "sim_clean": round(metrics["sim_clean"], 4),
        "gpu": torch.cuda.get_device_name(), "dtype": "bf16",
        "model": "CLIP ViT-L/14-sized text encoder, random weights", "batch": "128 clean + 128 poisoned",
    }
    rows.append(row)
    print(json.dumps(row), flush=True)
os.makedirs("benchmarks/results", exist_ok=True)
with open("benchmarks/results/gpu.json", "w") as handle:
    json.dump({"command": "bash benchmarks/gpu.sh", "runs": rows}, handle, indent=2)
PY
