"""A forgetting run at the speed of the device: hf-forget against the student-only lower bound, in one run.

The setting (issue 23): a CLIP ViT-L/14-sized text encoder (768 wide, 12 layers, 12 heads, 3072 MLP, 77
positions, random weights, the offline byte-level tokenizer of ``hf_forget.testing``), 64 invented names,
400 steps of 128 clean + 128 poisoned captions, ``embedding="both"``, bf16. Measured side by side:

* ``default``: the hf-forget run, teacher outputs cached (the library's default);
* ``reference``: the reference protocol, the frozen teacher run on every batch (``teacher_cache=False``);
* ``student_only``: the lower bound, a plain loop over exactly the batches the default run trained on (the
  same pool rows, same padding, same order): student forward on the clean and the poisoned captions, cosine
  to fixed targets (pooled and hidden), backward, the same AdamW, under bf16 autocast; no teacher, no anchor,
  no gradient clipping, no Trainer;
* ``criterion``: the default run with ``stop_at_criterion`` (held-out evaluation every ``--criterion_steps``
  optimizer steps, the library's ``eval_steps``): the time to the held-out criterion.

``seconds`` is ``trainer.train()`` alone (the steps); ``setup_seconds`` is the trainer's construction: the
model copy on the device, tokenising and padding the pools, the teacher cache and the held-out teacher
outputs. Before the timed runs an untimed warm-up runs both loops for a few steps (CUDA context, cuBLAS,
kernel loading). ``syncs_per_step`` counts, with ``torch.cuda.set_sync_debug_mode``, the synchronizing CUDA
calls of a short run whose steps do not log. ``profile``: a few steps of both loops under ``torch.profiler``,
how busy the device is in each and which kernels take the time (where a ratio above the target comes from).
The criterion run, the sync count and the profile are skipped past ``--budget_seconds``.

    python benchmarks/gpu_speed.py                      # the protocol on a CUDA GPU -> benchmarks/results/gpu.json
    STEPS=5 python benchmarks/gpu_speed.py --device cpu --size tiny --names 4 --batch 8 --pool 64 \
        --out /tmp/gpu.json                             # smoke mode: the same code on the CPU, in seconds

Flags default to the environment variables STEPS, NAMES, SIZE, DEVICE, BATCH, POOL and OUT when set.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import os
import random
import statistics
import sys
import tempfile
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

# ------------------------------------------------------------------------------------------------ data
_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "kl", "tr", "st", "qu", "th"]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "ou", "y"]
_CODAS = ["", "n", "r", "l", "s", "th", "x", "m"]


def invented_names(count: int, seed: int = 7) -> list[str]:
    """``count`` distinct two-part names built from syllables (invented, nobody's)."""
    rng = random.Random(seed)

    def word(syllables: int) -> str:
        return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables))

    names: list[str] = []
    while len(names) < count:
        name = f"{word(2).capitalize()} {word(rng.choice([2, 3])).capitalize()}"
        if name not in names:
            names.append(name)
    return names


_ADJECTIVES = ["small", "red", "old", "quiet", "bright", "tall", "green", "wooden", "busy", "empty", "narrow", "calm"]
_THINGS = ["dog", "cat", "house", "tree", "car", "boat", "river", "mountain", "bird", "table", "street", "garden",
           "bridge", "market", "lamp", "train"]
_ACTIONS = ["stands", "runs", "sits", "waits", "sleeps", "shines", "rests", "moves", "turns", "leans"]
_PLACES = ["near the lake", "in the park", "on a hill", "under the sky", "at night", "in the snow", "by the road",
           "in the rain", "at dawn", "behind the station"]


def generic_captions(count: int, seed: int) -> list[str]:
    """Generic captions: 'a <adjective> <thing> <action> <place>', some with a second clause."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        caption = f"a {rng.choice(_ADJECTIVES)} {rng.choice(_THINGS)} {rng.choice(_ACTIONS)} {rng.choice(_PLACES)}"
        if rng.random() < 0.5:
            caption += f" while a {rng.choice(_ADJECTIVES)} {rng.choice(_THINGS)} {rng.choice(_ACTIONS)}"
        out.append(caption)
    return out


# ------------------------------------------------------------------------------------------------ helpers
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    gc.collect()  # a finished run's trainer holds reference cycles (callbacks, accelerator): free its memory now
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None


def make_trainer(model, tokenizer, names, captions, eval_captions, **config):
    """A ``TextForgetTrainer`` of ``config`` (a ``TextForgetConfig``'s fields), names passed as data."""
    from transformers import PrinterCallback, set_seed

    from hf_forget import TextForgetConfig, TextForgetTrainer

    set_seed(config.get("seed", 42))
    trainer = TextForgetTrainer(model, TextForgetConfig(**config), tokenizer, captions, names=names,
                                eval_captions=eval_captions)
    trainer.remove_callback(PrinterCallback)  # the logs still happen (every 10 steps), without printing them
    return trainer


def trainer_config(args, scratch: str, steps: int, **overrides) -> dict:
    config = dict(
        output_dir=scratch, max_steps=steps, embedding="both", per_device_train_batch_size=args.batch,
        num_trigger_samples=args.pool, lr_milestones=[max(1, steps // 2), max(2, 3 * steps // 4)], seed=0,
        report_to="none", disable_tqdm=True, use_cpu=args.device == "cpu", bf16=args.dtype == "bf16",
    )
    config.update(overrides)
    return config


def is_fused(optimizer) -> bool:
    """Whether the Trainer's optimizer (accelerate's wrapper around a torch AdamW) is the fused kernel."""
    return bool(getattr(optimizer, "optimizer", optimizer).defaults.get("fused"))


class _Recorder:
    """Keeps the index tensor of every training batch (on the device, no sync) once ``on`` is set."""

    def __init__(self, trainer):
        self.on, self.indices, self._real = False, [], trainer.batch_from_pool

        def batch_from_pool(inputs):
            if self.on and "index" in inputs:
                self.indices.append(inputs["index"])
            return self._real(inputs)

        trainer.batch_from_pool = batch_from_pool


class _StepWindow:
    """A callback timing the optimizer steps alone: from the start of the first (``on_train_begin``, after the
    Trainer's own set-up in ``train()``) to the end of the last, the device synchronized at both ends."""

    def __init__(self, device: torch.device):
        from transformers import TrainerCallback

        window = self

        class Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                synchronize(device)
                window.started = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == state.max_steps:
                    synchronize(device)
                    window.seconds = time.perf_counter() - window.started

        self.callback, self.started, self.seconds = Callback(), None, None


def run_trainer(mode: str, base, tokenizer, names, captions, eval_captions, args, record: bool = False) -> dict:
    """One hf-forget run: set-up and ``train()`` timed apart, then held-out metrics (untimed)."""
    device = torch.device(args.device)
    overrides = {"teacher_cache": mode != "reference"}
    if mode == "criterion":
        overrides.update(stop_at_criterion=True, eval_steps=args.criterion_steps)
    with tempfile.TemporaryDirectory() as scratch:
        reset_peak(device)
        synchronize(device)
        started = time.perf_counter()
        trainer = make_trainer(copy.deepcopy(base), tokenizer, names, captions, eval_captions,
                               **trainer_config(args, scratch, args.steps, **overrides))
        synchronize(device)
        setup = time.perf_counter() - started
        recorder = _Recorder(trainer) if record else None
        if recorder:
            recorder.on = True
        window = _StepWindow(device)
        trainer.add_callback(window.callback)
        synchronize(device)
        started = time.perf_counter()
        trainer.train()
        synchronize(device)
        train_seconds = time.perf_counter() - started
        steps = trainer.state.global_step
        metrics = trainer.forget_metrics()
    # the steps alone (as the lower bound is timed); a run stopped early by the criterion: the whole train()
    seconds = window.seconds if window.seconds is not None else train_seconds
    row = {
        "seconds": round(seconds, 2), "steps": steps, "seconds_per_step": round(seconds / max(steps, 1), 4),
        "train_seconds": round(train_seconds, 2), "setup_seconds": round(setup, 2),
        "peak_memory_gib": peak_gib(device),
        "sim_backdoor": round(metrics["sim_backdoor"], 4), "sim_clean": round(metrics["sim_clean"], 4),
        "sim_backdoor_hidden": round(metrics["sim_backdoor_hidden"], 4),
        "sim_clean_hidden": round(metrics["sim_clean_hidden"], 4),
    }
    if mode == "criterion":
        # stopped at an evaluation, or (none stopped it) holding at the end of the run
        stopped = getattr(trainer, "stopped_at_criterion", None) or (steps if steps < args.steps else None)
        if stopped is None and trainer.gate(metrics)["passed"]:
            stopped = steps
        row["criterion_step"] = stopped
        row["criterion_reached"] = stopped is not None
    extras = {
        "kinds": list(trainer.kinds),
        "pool": trainer.train_dataset.pool,
        "fused": is_fused(trainer.optimizer),
        "learning_rate": trainer.args.learning_rate,
        "weight_decay": trainer.args.weight_decay,
        "indices": recorder.indices if recorder else None,
    }
    del trainer
    return {"row": row, **extras}


class StudentOnly:
    """The lower bound's state and step: the student alone, forward on the clean and the poisoned captions,
    cosine to fixed targets (stand-ins for the teacher's outputs), backward, AdamW; no Trainer."""

    def __init__(self, base, pool, kinds, fused: bool, lr: float, weight_decay: float, args):
        from hf_forget.encoders import encode_text, trainable_text_modules
        from hf_forget.losses import hidden_cosine, pooled_cosine
        from hf_forget.trainers.base import is_norm_layer

        self.device = torch.device(args.device)
        self.encode = encode_text
        self.model = model = copy.deepcopy(base).to(self.device)
        model.requires_grad_(False)
        for module in trainable_text_modules(model):  # what the trainer trains: the encoder, norm layers frozen
            module.requires_grad_(True)
            for sub in module.modules():
                if is_norm_layer(sub):
                    sub.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused)
        self.pool, self.kinds, self.fused = pool.to(self.device), kinds, fused
        self.cosine = {"pooled": pooled_cosine, "hidden": hidden_cosine}
        self.columns = ("clean_input_ids", "poisoned_input_ids")
        generator = torch.Generator(device=self.device).manual_seed(0)
        with torch.no_grad():
            probe = encode_text(model, self.pool.columns[self.columns[0]][: args.batch])
        self.targets = {
            kind: torch.randn(getattr(probe, kind).shape, generator=generator, device=self.device) for kind in kinds
        }
        self.autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16) if args.dtype == "bf16"
                         else contextlib.nullcontext())
        model.train()

    def loss(self, model, batch) -> torch.Tensor:
        """The loop's loss on a batch of pool rows (``batch``: the clean and poisoned token columns)."""
        terms = []
        for column in self.columns:
            encoding = self.encode(model, batch[column])
            terms += [self.cosine[kind](getattr(encoding, kind), self.targets[kind][: len(batch[column])]).mean()
                      for kind in self.kinds]
        return -torch.stack(terms).mean()

    def step(self, index: torch.Tensor) -> None:
        with self.autocast:
            loss = self.loss(self.model, {column: self.pool.columns[column].index_select(0, index)
                                          for column in self.columns})
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def student_only(base, pool, indices, kinds, fused: bool, lr: float, weight_decay: float, args) -> dict:
    """The lower bound over the given batches (index tensors on the device), timed as one loop."""
    device = torch.device(args.device)
    reset_peak(device)
    loop = StudentOnly(base, pool, kinds, fused, lr, weight_decay, args)
    synchronize(device)
    started = time.perf_counter()
    for index in indices:
        loop.step(index)
    synchronize(device)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "steps": len(indices), "seconds_per_step": round(seconds / len(indices), 4),
            "peak_memory_gib": peak_gib(device), "fused_adamw": fused}


def count_syncs(mode: str, base, tokenizer, names, captions, eval_captions, args, steps: int = 12,
                warmup: int = 2) -> dict:
    """Synchronizing CUDA calls (``torch.cuda.set_sync_debug_mode``) in steps that do not log, from the start of
    step ``warmup + 1`` to the end of the last: the batch fetches in between are counted too."""
    from transformers import TrainerCallback

    class Watch(TrainerCallback):
        def on_step_begin(self, args_, state, control, **kwargs):
            if state.global_step == warmup:  # after the first steps' one-off work (optimizer state, ...)
                torch.cuda.set_sync_debug_mode("warn")

        def on_step_end(self, args_, state, control, **kwargs):
            if state.global_step >= steps:
                torch.cuda.set_sync_debug_mode(0)

    with tempfile.TemporaryDirectory() as scratch:
        config = trainer_config(args, scratch, steps, teacher_cache=mode != "reference", logging_steps=10**6,
                                num_trigger_samples=min(args.pool, 8 * args.batch))
        trainer = make_trainer(copy.deepcopy(base), tokenizer, names, captions, eval_captions, **config)
        trainer.add_callback(Watch())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                trainer.train()
            finally:
                torch.cuda.set_sync_debug_mode(0)
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    places = sorted({f"{os.path.relpath(w.filename, ROOT) if w.filename.startswith(ROOT) else w.filename}:{w.lineno}"
                     for w in syncs})
    counted = steps - warmup
    return {"steps": counted, "syncs": len(syncs), "syncs_per_step": round(len(syncs) / counted, 2),
            "where": places[:12]}


def _busiest(profiler, steps: int, device: torch.device, top: int = 12) -> dict:
    """Per-step time of the profiled ops: on CUDA the kernels' device time, on the CPU the ops' own CPU time."""
    from torch.autograd import DeviceType

    rows = []
    for event in profiler.key_averages():
        if device.type == "cuda":
            # kernels (and copies) alone: a CPU op's device time repeats its kernels'
            if event.device_type != DeviceType.CUDA or getattr(event, "is_user_annotation", False):
                continue
            own = event.self_device_time_total
        else:
            own = event.self_cpu_time_total
        if own > 0:
            rows.append((own, event.count, event.key))
    rows.sort(reverse=True)
    return {
        "busy_ms_per_step": round(sum(r[0] for r in rows) / 1000 / steps, 3),
        "calls_per_step": round(sum(r[1] for r in rows) / steps, 1),
        "top": [{"name": name[:90], "ms_per_step": round(own / 1000 / steps, 3),
                 "calls_per_step": round(count / steps, 1)} for own, count, name in rows[:top]],
    }


def profile_steps(base, tokenizer, names, captions, eval_captions, args, steps: int = 4, warmup: int = 4) -> dict:
    """A few steps of the default run and of the student-only loop on the same batches under ``torch.profiler``:
    how busy the device is in each (kernel time a step against wall time a step) and which kernels take it, so
    that one device call says where a ratio above the target comes from. Few steps: building the tables of
    many ViT-L steps takes minutes."""
    from torch.profiler import ProfilerActivity, profile
    from transformers import TrainerCallback

    device = torch.device(args.device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    window: dict = {}

    class Window(TrainerCallback):
        def on_step_end(self, args_, state, control, **kwargs):
            if state.global_step == warmup:
                synchronize(device)
                window["profiler"] = profiler = profile(activities=activities)
                profiler.start()
                window["started"] = time.perf_counter()
            elif state.global_step == warmup + steps:
                synchronize(device)
                window["seconds"] = time.perf_counter() - window["started"]
                window["profiler"].stop()

    with tempfile.TemporaryDirectory() as scratch:
        trainer = make_trainer(copy.deepcopy(base), tokenizer, names, captions, eval_captions,
                               **trainer_config(args, scratch, warmup + steps))
        recorder = _Recorder(trainer)
        recorder.on = True
        trainer.add_callback(Window())
        trainer.train()
        ours = {"wall_ms_per_step": round(1000 * window["seconds"] / steps, 3),
                **_busiest(window["profiler"], steps, device)}
        loop = StudentOnly(base, trainer.train_dataset.pool, list(trainer.kinds), is_fused(trainer.optimizer),
                           trainer.args.learning_rate, trainer.args.weight_decay, args)
        del trainer
    for index in recorder.indices[:warmup]:
        loop.step(index)
    synchronize(device)
    with profile(activities=activities) as profiler:
        started = time.perf_counter()
        for index in recorder.indices[warmup:warmup + steps]:
            loop.step(index)
        synchronize(device)
        seconds = time.perf_counter() - started
    theirs = {"wall_ms_per_step": round(1000 * seconds / steps, 3), **_busiest(profiler, steps, device)}
    return {"steps": steps, "after_warmup_steps": warmup,
            "time": "cuda kernels" if device.type == "cuda" else "cpu ops", "default": ours, "student_only": theirs}


# ------------------------------------------------------------------------------------------------ main
def parse_args(argv=None):
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=int(env("STEPS", 400)))
    parser.add_argument("--names", type=int, default=int(env("NAMES", 64)))
    parser.add_argument("--size", default=env("SIZE", "vit-l-14"), help="hf_forget.testing.SIZED_TEXT_MODELS")
    parser.add_argument("--device", default=env("DEVICE", "cuda"))
    parser.add_argument("--dtype", default=None, choices=["bf16", "fp32"], help="default: bf16 on cuda, fp32 on cpu")
    parser.add_argument("--batch", type=int, default=int(env("BATCH", 128)), help="clean (and poisoned) captions a step")
    parser.add_argument("--pool", type=int, default=int(env("POOL", 4096)), help="num_trigger_samples")
    parser.add_argument("--captions", type=int, default=3000)
    parser.add_argument("--criterion_steps", type=int, default=25, help="eval_steps of the criterion run")
    parser.add_argument("--modes", default="student_only,default,reference,criterion,syncs,profile")
    parser.add_argument("--budget_seconds", type=float, default=float(env("BUDGET_SECONDS", 200)),
                        help="skip the criterion run, the sync count and the profile when the runs before took "
                             "longer than this")
    parser.add_argument("--out", default=env("OUT_JSON", os.path.join(RESULTS, "gpu.json")))
    args = parser.parse_args(argv)
    args.dtype = args.dtype or ("bf16" if args.device.startswith("cuda") else "fp32")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    began = time.perf_counter()
    from transformers.utils import logging

    from hf_forget.outputs import write_json
    from hf_forget.testing import sized_clip_text_model

    logging.set_verbosity_error()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_speed.py: no CUDA device (use --device cpu for the smoke mode)")
    modes = args.modes.split(",")
    base, tokenizer = sized_clip_text_model(args.size, seed=0)  # on the CPU: each run copies it to the device
    names = invented_names(args.names)
    captions, eval_captions = generic_captions(args.captions, seed=1), generic_captions(400, seed=2)
    data = (base, tokenizer, names, captions, eval_captions)
    prepared = time.perf_counter() - began

    # untimed warm-up of both loops: CUDA context, cuBLAS handles, kernels loaded on first use
    warm = run_trainer("default", *data, argparse.Namespace(**{**vars(args), "steps": 3, "pool": 4 * args.batch}),
                       record=True)
    student_only(base, warm["pool"], warm["indices"], warm["kinds"], warm["fused"], warm["learning_rate"],
                 warm["weight_decay"], args)
    del warm

    runs: dict[str, dict] = {}
    default = run_trainer("default", *data, args, record=True)
    runs["default"] = default["row"]
    print(json.dumps({"default": runs["default"]}), flush=True)
    if "student_only" in modes:
        runs["student_only"] = student_only(base, default["pool"], default["indices"], default["kinds"],
                                            default["fused"], default["learning_rate"], default["weight_decay"], args)
        print(json.dumps({"student_only": runs["student_only"]}), flush=True)
    del default
    if "reference" in modes:
        runs["reference"] = run_trainer("reference", *data, args)["row"]
        print(json.dumps({"reference": runs["reference"]}), flush=True)
    skipped = []
    if "criterion" in modes:
        if time.perf_counter() - began < args.budget_seconds:
            runs["criterion"] = run_trainer("criterion", *data, args)["row"]
            print(json.dumps({"criterion": runs["criterion"]}), flush=True)
        else:
            skipped.append("criterion")
    syncs = None
    if "syncs" in modes and device.type == "cuda":
        if time.perf_counter() - began < args.budget_seconds + 30:
            syncs = {mode: count_syncs(mode, *data, args) for mode in ("default", "reference")}
            print(json.dumps({"syncs": syncs}), flush=True)
        else:
            skipped.append("syncs")

    lower = runs.get("student_only", {}).get("seconds")
    criterion = runs.get("criterion")
    payload = {
        "command": "bash benchmarks/gpu.sh",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                     "accelerate": __import__("accelerate").__version__},
        "setting": {
            "model": f"CLIP text encoder, size {args.size!r} (hf_forget.testing.sized_clip_text_model), random weights",
            "parameters_millions": round(sum(p.numel() for p in base.parameters()) / 1e6, 1),
            "num_names": args.names, "steps": args.steps, "batch": f"{args.batch} clean + {args.batch} poisoned",
            "num_trigger_samples": args.pool, "embedding": "both", "dtype": args.dtype,
            "logging_steps": 10, "max_grad_norm": 1.0,
        },
        "ratio": round(runs["default"]["seconds"] / lower, 3) if lower else None,
        "reference_ratio": round(runs["reference"]["seconds"] / lower, 3) if lower and "reference" in runs else None,
        "seconds": runs["default"]["seconds"],
        "seconds_per_step": runs["default"]["seconds_per_step"],
        "setup_seconds": runs["default"]["setup_seconds"],
        "peak_memory_gib": runs["default"]["peak_memory_gib"],
        "time_to_criterion": None if criterion is None else {
            "reached": criterion["criterion_reached"], "step": criterion["criterion_step"],
            "seconds": criterion["train_seconds"] if criterion["criterion_reached"] else None,
            "setup_seconds": criterion["setup_seconds"], "criterion_steps": args.criterion_steps,
        },
        "syncs": syncs,
        "profile": None,
        "acceptance": {  # issue 23, for the protocol (400 steps, 64 names, vit-l-14, bf16) on one H200
            "ratio_at_most_1.15": None if not lower else runs["default"]["seconds"] / lower <= 1.15,
            "seconds_at_most_25": runs["default"]["seconds"] <= 25,
            "no_sync_in_a_step": None if syncs is None else all(v["syncs"] == 0 for v in syncs.values()),
        },
        "runs": runs,
        "skipped": skipped,
        "definitions": {
            "ratio": "default seconds / student_only seconds: the optimizer steps of the hf-forget run (teacher "
                     "cached) against a plain loop over the same batches (student forward on clean + poisoned "
                     "captions, cosine to fixed targets, backward, the same AdamW, bf16 autocast), same process",
            "seconds": "the optimizer steps, first start to last end (logging every 10 steps, gradient clipping at "
                       "1.0, as the Trainer does); train_seconds: the whole trainer.train() call (with its own "
                       "set-up and wrap-up); setup_seconds apart: the trainer's construction, i.e. the model copy "
                       "to the device, tokenising and padding the pools, the teacher cache, held-out teacher outputs",
            "time_to_criterion": "train() seconds of the default run with stop_at_criterion until the quality gate "
                                 "(trainer.gate) holds on the held-out samples, the evaluations every criterion_steps included",
            "syncs": "synchronizing CUDA calls (torch.cuda.set_sync_debug_mode) over steps that do not log",
            "profile": "a few steps of the default run and of the student-only loop (same batches) under "
                       "torch.profiler: wall ms a step (profiler on), busy ms a step (CUDA kernel time; on the CPU, "
                       "the ops' own time), and the kernels that take most of it",
        },
        "prepare_seconds": round(prepared, 1),
        "total_seconds": round(time.perf_counter() - began, 1),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_json(args.out, payload)
    if "profile" in modes:  # last, after the file holds the measurements: a diagnosis, not one of them
        if time.perf_counter() - began < args.budget_seconds + 20:
            payload["profile"] = profile_steps(*data, args)
            print(json.dumps({"profile": payload["profile"]}), flush=True)
        else:
            payload["skipped"].append("profile")
        payload["total_seconds"] = round(time.perf_counter() - began, 1)
        write_json(args.out, payload)
    summary = {k: payload[k] for k in ("ratio", "reference_ratio", "seconds", "seconds_per_step", "setup_seconds",
                                       "peak_memory_gib", "time_to_criterion", "total_seconds")}
    print(json.dumps(summary), flush=True)
    return payload


if __name__ == "__main__":
    main()
