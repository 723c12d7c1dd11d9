"""Host time of a forgetting step against a plain student loop, on the CPU, with (almost) no arithmetic.

On a GPU the host only has to launch work faster than the device runs it; what it does on top of the
student's own forward, backward and optimizer step (the Trainer's machinery, the teacher lookup, the weight
anchor, the logged terms, the batch) is what this measures, with a model where arithmetic costs nothing:
CLIP ViT-L/14's text-encoder structure (12 layers, the same 146 trained tensors) at width 8
(``hf_forget.testing.sized_clip_text_model("skeleton")``), batches of 2 clean + 2 poisoned captions,
``embedding="both"``, teacher cached (the default), torch on one thread.

Side by side in one process, ``--repeats`` times, each repeat a pair of runs:

* ``trainer``: ``TextForgetTrainer.train()`` with the library defaults (logging every 10 steps, gradient
  clipping), each step timed from the end of one to the end of the next (batch loading included);
* ``loop``: right after it, a plain loop over the same batches (the trainer's own, replayed): student forward
  on the clean and the poisoned captions, cosine to fixed targets, backward, the AdamW the Trainer builds
  (``benchmarks/gpu_speed.py::StudentOnly``, the GPU benchmark's lower bound); nothing else.

Per-step times (CPU time of the main thread, which other users of a shared machine inflate less than wall
time; wall time too) after ``--warmup`` steps give a median per run; ``ratio`` is the median over repeats of
``median trainer step / median loop step``. (Interleaving single steps of the two was tried and rejected: each
then runs with the other's data in the caches, which slows the small loop more than the trainer.)

    python benchmarks/host_overhead.py                  # -> benchmarks/results/host_overhead.json
    python benchmarks/host_overhead.py --steps 30 --repeats 3 --out /tmp/host_overhead.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

import gpu_speed  # noqa: E402  (the names, captions, trainer factory and student loop of the GPU benchmark)

CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}


class _StepClock(TrainerCallback):
    """Per-step (CPU, wall) seconds, from the end of one step to the end of the next: batch loading included."""

    def __init__(self):
        self.times: list[dict] = []
        self._last = None

    def tick(self, *args, **kwargs):
        now = {k: clock() for k, clock in CLOCKS.items()}
        if self._last is not None:
            self.times.append({k: now[k] - self._last[k] for k in now})
        self._last = now

    on_train_begin = on_step_end = tick

    def median(self, warmup: int, timer: str) -> float:
        return statistics.median(t[timer] for t in self.times[warmup:])


def trainer_run(base, tokenizer, names, captions, eval_captions, args, scratch) -> tuple[_StepClock, dict]:
    """A trainer run, timed step by step; what the loop needs to replay its batches."""
    config = gpu_speed.trainer_config(args, scratch, args.warmup + args.steps)
    trainer = gpu_speed.make_trainer(copy.deepcopy(base), tokenizer, names, captions, eval_captions, **config)
    recorder = gpu_speed._Recorder(trainer)
    recorder.on = True
    clock = _StepClock()
    trainer.add_callback(clock)
    trainer.train()
    replay = dict(
        pool=trainer.train_dataset.pool, kinds=list(trainer.kinds), fused=gpu_speed.is_fused(trainer.optimizer),
        lr=trainer.args.learning_rate, weight_decay=trainer.args.weight_decay, indices=recorder.indices,
    )
    return clock, replay


def loop_run(base, replay: dict, args) -> _StepClock:
    """The plain loop over the trainer's batches, timed step by step."""
    loop = gpu_speed.StudentOnly(base, replay["pool"], replay["kinds"], replay["fused"], replay["lr"],
                                 replay["weight_decay"], args)
    clock = _StepClock()
    clock.tick()
    for index in replay["indices"]:
        loop.step(index)
        clock.tick()
    return clock


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="timed steps a run (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--pool", type=int, default=64)
    parser.add_argument("--size", default="skeleton")
    parser.add_argument("--names", type=int, default=8)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "host_overhead.json"))
    args = parser.parse_args(argv)
    args.device, args.dtype = "cpu", "fp32"
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    from transformers.utils import logging

    from hf_forget.testing import sized_clip_text_model

    logging.set_verbosity_error()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        base, tokenizer = sized_clip_text_model(args.size, seed=0)
        trained = sum(1 for n, p in base.named_parameters() if "norm" not in n)
        names = gpu_speed.invented_names(args.names)
        captions, eval_captions = gpu_speed.generic_captions(400, seed=1), gpu_speed.generic_captions(40, seed=2)
        runs = []
        with tempfile.TemporaryDirectory() as scratch:
            # untimed warm-up: first calls of every op, the allocator, the tokenizer
            warm = argparse.Namespace(**{**vars(args), "steps": 5, "warmup": 1})
            loop_run(base, trainer_run(base, tokenizer, names, captions, eval_captions, warm, scratch)[1], warm)
            for repeat in range(args.repeats):
                trainer_clock, replay = trainer_run(base, tokenizer, names, captions, eval_captions, args, scratch)
                loop_clock = loop_run(base, replay, args)
                row = {}
                for timer in CLOCKS:
                    ours, theirs = trainer_clock.median(args.warmup, timer), loop_clock.median(args.warmup, timer)
                    row[timer] = {"trainer_ms": round(1000 * ours, 3), "loop_ms": round(1000 * theirs, 3),
                                  "ratio": round(ours / theirs, 3)}
                runs.append(row)
                print(json.dumps({"repeat": repeat, **row}), flush=True)
    finally:
        torch.set_num_threads(threads)
    payload = {
        "ratio": statistics.median(r["cpu"]["ratio"] for r in runs),
        "wall_ratio": statistics.median(r["wall"]["ratio"] for r in runs),
        "trainer_ms_per_step": statistics.median(r["cpu"]["trainer_ms"] for r in runs),
        "loop_ms_per_step": statistics.median(r["cpu"]["loop_ms"] for r in runs),
        "runs": runs,
        "setting": {
            "model": f"CLIP text encoder {args.size!r} (hf_forget.testing.sized_clip_text_model), {trained} trained "
                     "tensors", "batch": f"{args.batch} clean + {args.batch} poisoned", "embedding": "both",
            "teacher_cache": True, "steps": args.steps, "warmup_steps": args.warmup, "repeats": args.repeats,
            "torch_threads": 1, "torch": torch.__version__,
        },
        "definition": "ratio: median over repeats of (median per-step CPU time of the main thread in "
                      "TextForgetTrainer.train() / same for a plain loop over the same batches, run right after: "
                      "forward, cosine to fixed targets, backward, the Trainer's AdamW); wall_ratio: the same with "
                      "wall-clock time",
        "command": "python benchmarks/host_overhead.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
    print(json.dumps({k: payload[k] for k in ("ratio", "wall_ratio", "trainer_ms_per_step", "loop_ms_per_step")}))
    return payload


if __name__ == "__main__":
    main()
