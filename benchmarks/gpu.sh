#!/usr/bin/env bash
# A forgetting run at the speed of the GPU (issue 23), measured side by side in one process: the hf-forget run
# (teacher cached, the default), the reference protocol (teacher every step), the student-only lower bound on the
# same batches, and the time to the held-out criterion; a CLIP ViT-L/14-sized text encoder (random weights,
# offline byte-level tokenizer), 64 invented names, 400 steps of 128 clean + 128 poisoned captions,
# embedding "both", bf16. Writes benchmarks/results/gpu.json (see benchmarks/gpu_speed.py for the definitions).
#
#   bash benchmarks/gpu.sh                                   # the protocol; needs a CUDA GPU with bf16
#   STEPS=50 bash benchmarks/gpu.sh                          # a shorter try
#   STEPS=5 bash benchmarks/gpu.sh --device cpu --size tiny --names 4 --batch 8 --pool 64 --out /tmp/gpu.json
#
# Nothing is downloaded. Extra arguments go to benchmarks/gpu_speed.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
exec python3 benchmarks/gpu_speed.py "$@"
