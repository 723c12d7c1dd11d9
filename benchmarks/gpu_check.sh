# The one device check of issue 23, for one GPU (an H200; about 5 minutes): the speed benchmark
# (benchmarks/gpu.sh: hf-forget, the reference protocol and the student-only lower bound in one process, time to
# the held-out criterion, synchronizing calls a step, a few profiled steps of both loops) and the non-slow test
# suite with CUDA visible.
#
#   bash benchmarks/gpu_check.sh          # from the repository root; writes into $OUT (default /tmp/gpu_check)
#
# From a session lent the GPU machine: `bash benchmarks/gpu_wheels.sh` here, then the device tool's run with
# command "OUT=\$OUT bash benchmarks/gpu_check.sh", carry [".whl"], timeout_s 480 (the script bounds its two
# parts at 240 s and 150 s), then give_back.
#
# $OUT gets 4 files: env.txt (GPU, versions), gpu_speed.log, gpu.json, pytest.log. Local smoke run of the same
# script on the CPU: GPU_ARGS="--device cpu --size tiny --names 4 --batch 4 --pool 16" STEPS=3 \
#   PYTEST_ARGS="-q tests/test_step_speed.py" bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:-$PWD}"
case ":$PYTHONPATH:" in *":$PWD:"*) ;; *) export PYTHONPATH="$PYTHONPATH:$PWD" ;; esac
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# What the GPU machine lacks (diffusers, datasets, faker and their small dependencies), as wheels in .whl/
# (git-ignored; `bash benchmarks/gpu_wheels.sh` fills it here; carried along with the checkout), installed beside
# the machine's own packages, not over them.
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
OUT="${OUT:-/tmp/gpu_check}"
mkdir -p "$OUT"
started=$(date +%s)

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "no nvidia-smi"
  python3 -c "import sys, torch, transformers, accelerate; print('python', sys.version.split()[0], '| torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(), '| transformers', transformers.__version__, '| accelerate', accelerate.__version__)"
  python3 -c "import hf_forget; print('hf_forget from', hf_forget.__file__)"
  for module in diffusers datasets faker; do
    python3 -c "import $module; from importlib.metadata import version; print('$module', version('$module'))" 2>/dev/null || echo "$module missing (carry .whl)"
  done
  git log -1 --format='commit %H %s' 2>/dev/null || true
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# 1. the speed benchmark (about 3 minutes on an H200); bounded so that the tests below always run (past
#    BUDGET_SECONDS the benchmark skips its last parts: the criterion run, the sync count, the profile)
rm -f benchmarks/results/gpu.json
read -r -a gpu_args <<< "${GPU_ARGS:-}"
BUDGET_SECONDS="${BUDGET_SECONDS:-150}" timeout "${GPU_TIMEOUT:-240}" bash benchmarks/gpu.sh "${gpu_args[@]}" 2>&1 \
  | tee "$OUT/gpu_speed.log"
echo "gpu.sh exit: ${PIPESTATUS[0]}" | tee -a "$OUT/gpu_speed.log"
cp benchmarks/results/gpu.json "$OUT/gpu.json" 2>/dev/null || echo "no benchmarks/results/gpu.json" | tee -a "$OUT/gpu_speed.log"

# 2. the non-slow suite with CUDA visible (about a minute with 12 workers); one CPU thread a worker: 12 workers with
#    torch's default of a thread per core would fight over the machine's 16 cores
if [ -n "${PYTEST_ARGS:-}" ]; then read -r -a pytest_args <<< "$PYTEST_ARGS"; else pytest_args=(-q -m "not slow" -n 12); fi
OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" timeout "${PYTEST_TIMEOUT:-150}" python3 -m pytest "${pytest_args[@]}" 2>&1 \
  | tee "$OUT/pytest.log"
echo "pytest exit: ${PIPESTATUS[0]}" | tee -a "$OUT/pytest.log"
echo "gpu_check.sh: $(( $(date +%s) - started )) s" | tee -a "$OUT/env.txt"
