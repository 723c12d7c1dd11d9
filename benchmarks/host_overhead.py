"""Host time of a forgetting step against a plain student loop, on the CPU, with (almost) no arithmetic.

On a GPU the host only has to launch work faster than the device runs it; what it does on top of the
student's own forward, backward and optimizer step (the Trainer's machinery, the teacher lookup, the weight
anchor, the logged terms, the batch) is what this measures, with a model where arithmetic costs nothing:
CLIP ViT-L/14's text-encoder structure (12 layers, the same 146 trained tensors) at width 8
(``hf_forget.testing.sized_clip_text_model("skeleton")``), batches of 2 clean + 2 poisoned captions,
``embedding="both"``, teacher cached (the default), torch on one thread.

Side by side, step by step, in ``--repeats`` runs:

* ``trainer``: a step of ``TextForgetTrainer.train()`` with the library defaults (logging every 10 steps,
  gradient clipping at 1.0), timed from the end of one step to the end of the next (batch loading included);
* ``loop``: right after it (from a trainer callback), one step of a plain loop on the same batch: student
  forward on the clean and the poisoned captions, cosine to fixed targets, backward, the AdamW the Trainer
  builds (``benchmarks/gpu_speed.py::StudentOnly``, the GPU benchmark's lower bound); nothing else.

A second series of runs (``floor``) times the same Trainer with the loop's own loss in place of the forgetting
loss (no teacher, no anchor, no logged terms; the gradients still in the trainer's flat buffer, so that clipping and
zeroing take the same path), against the same plain loop: what the Trainer's loop costs by itself (accelerate's
optimizer wrapper, the scheduler, callbacks, gradient clipping); ``ratio / floor_ratio`` is what the forgetting adds
on top of it.

Alternating single steps puts both under the same load of a shared machine (whole runs one after the other
give the same ratio, with more spread). Per-step times (CPU time of the main thread, which the other users of
the machine inflate less than wall time; wall time too) after ``--warmup`` steps give a median each; ``ratio``
is the median over runs of ``median trainer step / median loop step``. A last run splits both steps into their
parts (``breakdown``).

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


class _Paired(TrainerCallback):
    """Times each trainer step (end of one step to the end of the next: batch loading included) and, right after
    it, one step of the plain loop on the same batch: both see the shared machine under the same load."""

    def __init__(self, recorder, loop: gpu_speed.StudentOnly):
        self.recorder, self.loop = recorder, loop
        self.trainer_times: list[dict] = []
        self.loop_times: list[dict] = []
        self._last = None

    @staticmethod
    def _now() -> dict:
        return {k: clock() for k, clock in CLOCKS.items()}

    def on_train_begin(self, args, state, control, **kwargs):
        self._last = self._now()

    def on_step_end(self, args, state, control, **kwargs):
        ended = self._now()
        self.trainer_times.append({k: ended[k] - self._last[k] for k in ended})
        self.loop.step(self.recorder.indices[-1])
        self._last = self._now()
        self.loop_times.append({k: self._last[k] - ended[k] for k in ended})


def _trainer(base, tokenizer, names, captions, eval_captions, args, scratch):
    config = gpu_speed.trainer_config(args, scratch, args.warmup + args.steps)
    trainer = gpu_speed.make_trainer(copy.deepcopy(base), tokenizer, names, captions, eval_captions, **config)
    recorder = gpu_speed._Recorder(trainer)
    recorder.on = True
    fused = trainer.args.optim == "adamw_torch_fused"  # the AdamW the Trainer will build
    loop = gpu_speed.StudentOnly(base, trainer.train_dataset.pool, list(trainer.kinds), fused,
                                 trainer.args.learning_rate, trainer.args.weight_decay, args)
    return trainer, recorder, loop


def paired_run(base, tokenizer, names, captions, eval_captions, args, scratch, floor: bool = False) -> dict:
    """One trainer run with a plain-loop step after each of its steps; per-step medians after the warm-up.
    ``floor``: the trainer's loss is the loop's own (the Trainer's machinery alone)."""
    trainer, recorder, loop = _trainer(base, tokenizer, names, captions, eval_captions, args, scratch)
    if floor:
        flat = trainer._flat

        def compute_loss(model, inputs, return_outputs=False, num_items_in_batch=None):
            if flat is not None:  # the gradients laid out as in the trainer's own runs: views into one buffer
                flat.attach_gradients()
            return loop.loss(model, inputs)

        trainer.compute_loss = compute_loss
    pairs = _Paired(recorder, loop)
    trainer.add_callback(pairs)
    trainer.train()
    assert loop.fused == gpu_speed.is_fused(trainer.optimizer), "the loop must use the Trainer's AdamW"
    assert trainer._flat is None or trainer._flat.owns_gradients(), "the gradients must stay in the flat buffer"
    row = {}
    for timer in CLOCKS:
        ours = statistics.median(t[timer] for t in pairs.trainer_times[args.warmup:])
        theirs = statistics.median(t[timer] for t in pairs.loop_times[args.warmup:])
        row[timer] = {"trainer_ms": round(1000 * ours, 3), "loop_ms": round(1000 * theirs, 3),
                      "ratio": round(ours / theirs, 3)}
    return row


def breakdown_run(base, tokenizer, names, captions, eval_captions, args, scratch) -> dict:
    """Where the host time of a step goes (CPU ms a step, after the warm-up), the trainer's next to the loop's:
    methods timed by wrappers, in a run apart (their small cost is not in the ratio)."""
    trainer, recorder, loop = _trainer(base, tokenizer, names, captions, eval_captions, args, scratch)
    spent: dict[str, float] = {}
    counting = [False]

    def timed(owner, name, label):
        real = getattr(owner, name)

        def wrapper(*a, **k):
            started = time.thread_time()
            try:
                return real(*a, **k)
            finally:
                if counting[0]:
                    spent[label] = spent.get(label, 0.0) + time.thread_time() - started

        setattr(owner, name, wrapper)

    for name, label in (("student_embeddings", "student forward"), ("compute_loss", "compute_loss"),
                        ("weight_distance", "anchor forward"), ("_clip_grad_norm", "gradient clipping"),
                        ("get_batch_samples", "batch")):
        timed(trainer, name, label)
    timed(trainer.accelerator, "backward", "backward")
    create_optimizer = trainer.create_optimizer

    def create_and_time(*a, **k):
        optimizer = create_optimizer(*a, **k)
        timed(optimizer, "step", "optimizer.step()")
        return optimizer

    trainer.create_optimizer = create_and_time

    class Window(TrainerCallback):
        def on_train_begin(self, args_, state, control, **kwargs):
            # here, once the trainer has set up the model it calls them on (with its own model.train / zero_grad)
            timed(trainer.model_wrapped, "train", "model.train()")
            timed(trainer.model_wrapped, "zero_grad", "zero_grad")

        def on_step_end(self, args_, state, control, **kwargs):
            if state.global_step == args.warmup:
                counting[0], self.started = True, time.thread_time()
            elif state.global_step == args.warmup + args.steps:
                counting[0], self.seconds = False, time.thread_time() - self.started

    window = Window()
    trainer.add_callback(window)
    trainer.train()
    steps = args.steps
    ours = {k: 1000 * v / steps for k, v in spent.items()}
    ours["compute_loss"] -= ours["student forward"] + ours["anchor forward"]
    ours["step"] = 1000 * window.seconds / steps

    spent.clear()
    indices = recorder.indices[args.warmup:]
    timed(loop.optimizer, "step", "optimizer.step()")
    timed(loop.optimizer, "zero_grad", "zero_grad")
    real_backward = torch.Tensor.backward
    timed(torch.Tensor, "backward", "backward")
    counting[0] = True
    try:
        started = time.thread_time()
        for index in indices:
            loop.step(index)
        seconds = time.thread_time() - started
    finally:
        counting[0] = False
        torch.Tensor.backward = real_backward
    theirs = {k: 1000 * v / len(indices) for k, v in spent.items()}
    theirs["step"] = 1000 * seconds / len(indices)
    return {
        "trainer_ms": {k: round(v, 3) for k, v in ours.items()},
        "loop_ms": {k: round(v, 3) for k, v in theirs.items()},
        "note": "compute_loss: beyond the student forward and the anchor (teacher lookup, cosines, loss terms, "
                "logged sums); backward includes the anchor's; the rest of a trainer step is the Trainer's loop "
                "(callbacks, scheduler, state) and the loop's forward is its step minus the parts listed",
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="timed steps a run (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--pool", type=int, default=64)
    parser.add_argument("--size", default="skeleton")
    parser.add_argument("--names", type=int, default=8)
    parser.add_argument("--no_breakdown", dest="breakdown", action="store_false",
                        help="skip the run that splits a step's host time into its parts")
    parser.add_argument("--no_floor", dest="floor", action="store_false",
                        help="skip the runs of the Trainer with the loop's loss (the Trainer's own cost)")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "host_overhead.json"))
    args = parser.parse_args(argv)
    args.device, args.dtype = "cpu", "fp32"
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    from transformers.utils import logging

    from hf_forget.outputs import write_json
    from hf_forget.testing import sized_clip_text_model

    logging.set_verbosity_error()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        base, tokenizer = sized_clip_text_model(args.size, seed=0)
        trained = sum(1 for n, p in base.named_parameters() if "norm" not in n)
        names = gpu_speed.invented_names(args.names)
        captions, eval_captions = gpu_speed.generic_captions(400, seed=1), gpu_speed.generic_captions(40, seed=2)
        data = (base, tokenizer, names, captions, eval_captions)
        runs, floor_runs, breakdown = [], [], None
        with tempfile.TemporaryDirectory() as scratch:
            # untimed warm-up: first calls of every op, the allocator, the tokenizer
            paired_run(*data, argparse.Namespace(**{**vars(args), "steps": 5, "warmup": 1}), scratch)
            for repeat in range(args.repeats):
                runs.append(paired_run(*data, args, scratch))
                print(json.dumps({"repeat": repeat, **runs[-1]}), flush=True)
                if args.floor:  # interleaved with the runs above: the same load
                    floor_runs.append(paired_run(*data, args, scratch, floor=True))
                    print(json.dumps({"floor_repeat": repeat, **floor_runs[-1]}), flush=True)
            if args.breakdown:
                breakdown = breakdown_run(*data, args, scratch)
                print(json.dumps({"breakdown": breakdown}), flush=True)
    finally:
        torch.set_num_threads(threads)
    payload = {
        "ratio": statistics.median(r["cpu"]["ratio"] for r in runs),
        "wall_ratio": statistics.median(r["wall"]["ratio"] for r in runs),
        "trainer_ms_per_step": statistics.median(r["cpu"]["trainer_ms"] for r in runs),
        "loop_ms_per_step": statistics.median(r["cpu"]["loop_ms"] for r in runs),
        "floor_ratio": statistics.median(r["cpu"]["ratio"] for r in floor_runs) if floor_runs else None,
        "runs": runs,
        "floor_runs": floor_runs,
        "breakdown": breakdown,
        "setting": {
            "model": f"CLIP text encoder {args.size!r} (hf_forget.testing.sized_clip_text_model), {trained} trained "
                     "tensors", "batch": f"{args.batch} clean + {args.batch} poisoned", "embedding": "both",
            "teacher_cache": True, "steps": args.steps, "warmup_steps": args.warmup, "repeats": args.repeats,
            "torch_threads": 1, "torch": torch.__version__,
        },
        "definition": "ratio: median over runs of (median per-step CPU time of the main thread in "
                      "TextForgetTrainer.train() / same for a plain-loop step on the same batch, run right after "
                      "each trainer step: forward, cosine to fixed targets, backward, the Trainer's AdamW); "
                      "wall_ratio: the same with wall-clock time; floor_ratio: ratio of the same Trainer whose loss "
                      "is the plain loop's (no teacher, anchor or logged terms), the Trainer's own cost",
        "command": " ".join(["python benchmarks/host_overhead.py", *(sys.argv[1:] if argv is None else argv)]),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_json(args.out, payload)
    print(json.dumps({k: payload[k] for k in ("ratio", "wall_ratio", "floor_ratio", "trainer_ms_per_step",
                                              "loop_ms_per_step")}))
    return payload


if __name__ == "__main__":
    main()
