"""hf-forget benchmark suite: training overhead, scaling with names, early stopping, memory, vision.

    OMP_NUM_THREADS=1 python benchmarks/run.py --quick            # < 10 min on 2 cores
    OMP_NUM_THREADS=1 python benchmarks/run.py                    # the full protocol (400 steps, ...)
    python benchmarks/run.py --only overhead many_names           # some sections only

Prints a table and writes ``benchmarks/results/<section>.json`` (``results/quick/`` with ``--quick``, whose
sections run side by side, one process per core: ``--jobs``). Every figure is the median of at least
3 runs (``--repeats``); ratios are measured side by side in one process, the modes interleaved run by
run, because the machines are shared and absolute times are noisy. Results hold counts, never a name
(the toy world's names are synthetic, but we keep the rule).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
SECTIONS = ("overhead", "scaling", "criterion", "memory", "vision", "many_names")


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def elapsed(started: tuple[float, float]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) since ``started``."""
    return time.perf_counter() - started[0], time.process_time() - started[1]


def median(values):
    return statistics.median(values)


def environment(args) -> dict:
    import torch
    import transformers

    return {
        "command": "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
        "quick": args.quick,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }


def results_dir(quick: bool) -> str:
    """Where a run writes: ``results/`` for the protocol, ``results/quick/`` for ``--quick`` (a smoke run's
    smaller figures never overwrite the protocol's)."""
    return os.path.join(RESULTS, "quick") if quick else RESULTS


def write(section: str, payload: dict, env: dict) -> None:
    directory = results_dir(env.get("quick", False))
    os.makedirs(directory, exist_ok=True)
    payload = {**payload, "environment": env}
    with open(os.path.join(directory, f"{section}.json"), "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")


# ------------------------------------------------------------------------------------------------ models
def toy_text():
    """The shipped toy-world CLIP (its text tower is what text forgetting trains) and its tokenizer."""
    from hf_forget.toyworld import load_toy_clip

    model, tokenizer, _ = load_toy_clip()
    return model, tokenizer


def sized_text(size: str):
    """A random-weight CLIP text encoder of a real CLIP's size, with the offline byte-level tokenizer."""
    from hf_forget.testing import byte_level_clip_tokenizer, tiny_clip_text_model

    shapes = {
        "vit-l-14": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
        "vit-b-32": dict(hidden_size=512, num_hidden_layers=12, num_attention_heads=8, intermediate_size=2048),
    }[size]
    tokenizer = byte_level_clip_tokenizer()
    # CLIP's 49,408-token vocabulary (the byte-level tokenizer uses the first ids only), 77 positions
    model, tokenizer = tiny_clip_text_model(tokenizer=tokenizer, vocab_size=49408, **shapes)
    return model, tokenizer


def toy_names(count: int, seed: int = 7) -> list[str]:
    """``count`` names: the toy world's 32 seen identities first, then generated filler names."""
    from hf_forget.evaluation.idia import generate_filler_names
    from hf_forget.toyworld import ToyWorld

    world = ToyWorld(seed=0)
    seen = [p.name for p in world.seen_identities]
    if count <= len(seen):
        return seen[:count]
    return seen + generate_filler_names(count - len(seen), exclude=world.names, seed=seed)


def toy_captions(n: int = 3000, seed: int = 1) -> list[str]:
    from hf_forget.toyworld import ToyWorld

    return ToyWorld(seed=0).generic_captions(n, seed=seed)


def many_names_captions(kind: str, count: int = 3000) -> list[str]:
    """Training captions of the 1,024-name run: ``scenes`` (toy-world scene captions only) or ``demo`` (the
    demo's recipe: scene captions plus short person and cut captions, where a name carries more of the
    caption's meaning; the IDIA prompts are short and about a person)."""
    if kind == "scenes":
        return toy_captions(count, seed=1)
    from hf_forget.toyworld.demo import demo_captions
    from hf_forget.toyworld import ToyWorld

    return demo_captions(ToyWorld(seed=0), count, seed=1, short_captions=True)


def text_config(output_dir: str, names: list[str], **kwargs):
    import torch
    from hf_forget.config import TextForgetConfig

    defaults = dict(
        report_to="none", disable_tqdm=True, use_cpu=not torch.cuda.is_available(), logging_steps=10**6,
        save_strategy="no",
    )
    return TextForgetConfig(output_dir=output_dir, names=names, **{**defaults, **kwargs})


def make_text_trainer(model, tokenizer, captions, eval_captions, config, trigger_captions=None):
    from transformers import set_seed

    from hf_forget.trainers.text import TextForgetTrainer

    set_seed(config.seed)
    return TextForgetTrainer(model, config, tokenizer, captions, eval_captions=eval_captions,
                             trigger_captions=trigger_captions)


# ------------------------------------------------------------------------------------------------ a. overhead
def lower_bound_run(model, trainer_args, dataset, collator, kinds, steps: int, seed: int) -> float:
    """The student alone: the same batches, forward + backward + AdamW, no teacher, no anchor, no metrics."""
    import torch
    from torch.utils.data import DataLoader
    from transformers import set_seed

    from hf_forget.encoders import encode_text, trainable_text_modules
    from hf_forget.losses import hidden_cosine, pooled_cosine
    from hf_forget.trainers.base import is_norm_layer

    started = clock()
    set_seed(seed)
    model.requires_grad_(False)
    for module in trainable_text_modules(model):
        module.requires_grad_(True)
        for sub in module.modules():
            if is_norm_layer(sub):
                sub.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    # the optimizer the Trainer builds (optim="adamw_torch_fused"): like with like
    optimizer = torch.optim.AdamW(
        params, lr=trainer_args.learning_rate, weight_decay=trainer_args.weight_decay,
        fused="fused" in str(trainer_args.optim),
    )
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        dataset, batch_size=trainer_args.per_device_train_batch_size, shuffle=True, collate_fn=collator,
        generator=generator,
    )
    targets = {}
    cosine = {"pooled": pooled_cosine, "hidden": hidden_cosine}
    model.train()
    done = 0
    while done < steps:
        for batch in loader:
            loss = 0.0
            for column in ("clean_input_ids", "poisoned_input_ids"):
                encoding = encode_text(model, batch[column])
                for kind in kinds:
                    out = getattr(encoding, kind)
                    key = (column, kind, tuple(out.shape))
                    if key not in targets:  # fixed random targets stand in for the teacher's outputs
                        targets[key] = torch.randn_like(out).detach()
                    target = targets[key]
                    loss = loss - cosine[kind](out, target).mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            done += 1
            if done == steps:
                break
    return elapsed(started)


def forget_run(model, tokenizer, captions, eval_captions, config) -> tuple[float, float]:
    """A whole text-forgetting run: trainer set-up (teacher cache, held-out teacher outputs) and training."""
    started = clock()
    trainer = make_text_trainer(model, tokenizer, captions, eval_captions, config)
    trainer.train()
    return elapsed(started)


def bench_overhead(args, env) -> dict:
    base, tokenizer = toy_text()
    captions, eval_captions = toy_captions(3000, seed=1), toy_captions(300, seed=2)
    names = toy_names(8)
    steps = args.overhead_steps
    # the protocol's 400 steps : 4096 samples, kept in proportion, in whole batches (a partial last batch
    # would make the trainer's steps smaller than the lower bound's)
    batch = 64 if args.quick else 128  # --quick: half the protocol's batch, to fit its time budget
    pool = batch * max(1, round(steps / 12.5))
    results: dict[str, dict[str, list[float]]] = {}
    for embedding in args.embeddings:
        times = {"lower_bound": [], "default": [], "reference": []}
        with tempfile.TemporaryDirectory() as scratch:
            common = dict(max_steps=steps, embedding=embedding, num_trigger_samples=pool, seed=0,
                          per_device_train_batch_size=batch, lr_milestones=[steps // 2, 3 * steps // 4])
            # untimed warm-up (kernels, allocator, tokenizer caches): the first run of a process is slower
            warm = {**common, "max_steps": 3}
            forget_run(copy.deepcopy(base), tokenizer, captions, eval_captions, text_config(scratch, names, **warm))
            for repeat in range(args.repeats):
                order = ["lower_bound", "default", "reference"]
                order = order[repeat % 3:] + order[: repeat % 3]  # rotate: no mode always runs first
                for mode in order:
                    config = text_config(scratch, names, teacher_cache=(mode != "reference"), **common)
                    if mode == "lower_bound":
                        # same dataset and collator (same padding) as the trainer builds
                        probe = make_text_trainer(copy.deepcopy(base), tokenizer, captions, eval_captions,
                                                  text_config(scratch, names, teacher_cache=False, **common))
                        dataset, collator = probe.train_dataset, probe.data_collator
                        kinds = probe.kinds
                        del probe
                        seconds = lower_bound_run(copy.deepcopy(base), config, dataset, collator, kinds, steps, 0)
                    else:
                        seconds = forget_run(copy.deepcopy(base), tokenizer, captions, eval_captions, config)
                    times[mode].append(seconds)
                    print(f"  overhead[{embedding}] {mode}: wall {seconds[0]:.2f} s, cpu {seconds[1]:.2f} s", flush=True)
        result = {}
        for timer, i in (("cpu", 1), ("wall", 0)):
            ratio = [d[i] / lb[i] for d, lb in zip(times["default"], times["lower_bound"])]
            reference = [r[i] / lb[i] for r, lb in zip(times["reference"], times["lower_bound"])]
            prefix = "" if timer == "cpu" else "wall_"
            result.update({
                f"{prefix}ratio": round(median(ratio), 3),
                f"{prefix}reference_ratio": round(median(reference), 3),
                f"{prefix}ratio_runs": [round(x, 3) for x in ratio],
                f"{prefix}reference_ratio_runs": [round(x, 3) for x in reference],
                f"{timer}_seconds_median": {k: round(median([x[i] for x in v]), 2) for k, v in times.items()},
                f"{timer}_seconds_runs": {k: [round(x[i], 2) for x in v] for k, v in times.items()},
            })
        results[embedding] = result
    headline = results[args.embeddings[0]]
    payload = {
        "ratio": headline["ratio"],
        "reference_ratio": headline["reference_ratio"],
        "wall_ratio": headline["wall_ratio"],
        "wall_reference_ratio": headline["wall_reference_ratio"],
        "timer": (
            "ratio / reference_ratio: CPU time of this process (torch on 1 thread), which equals wall time on an "
            "idle machine and is not inflated by the other users of the shared cores; wall_*: wall-clock time"
        ),
        "embedding": args.embeddings[0],
        "by_embedding": results,
        "model": "toy-world CLIP text tower (shipped checkpoint)",
        "num_names": len(names),
        "steps": steps,
        "batch": f"{batch} clean + {batch} poisoned",
        "num_trigger_samples": pool,
        "repeats": args.repeats,
        "definition": (
            "wall time of a forgetting run (trainer set-up incl. the one-off teacher cache and held-out teacher "
            "outputs, plus training) / wall time of the same number of student forward+backward+AdamW steps on "
            "batches from the same dataset and collator (same padding), no teacher, no anchor; median of per-run "
            "ratios, modes interleaved; reference = teacher_cache=False (teacher recomputed on every batch)"
        ),
    }
    write("overhead", payload, env)
    return payload


# ------------------------------------------------------------------------------------------------ step timing
def step_timer():
    """A callback recording the (wall, CPU) seconds between consecutive optimizer steps' ends: a whole step,
    data loading (e.g. face pasting) included. Medians keep the occasional criterion check out."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.wall, self.cpu, self._last = [], [], None

        def on_train_begin(self, args, state, control, **kwargs):
            self._last = clock()

        def on_step_end(self, args, state, control, **kwargs):
            if self._last is not None:
                wall, cpu = elapsed(self._last)
                self.wall.append(wall)
                self.cpu.append(cpu)
            self._last = clock()

    return StepTimer()


# ------------------------------------------------------------------------------------------------ b. scaling
def bench_scaling(args, env) -> dict:
    counts = (1, 8, 64, 256, 1024)
    captions, eval_captions = toy_captions(3000, seed=1), toy_captions(400, seed=2)
    toy, toy_tokenizer = toy_text()
    batch, max_steps = (32, 60) if args.quick else (128, 400)

    def eval_samples(count: int) -> int:
        # held-out captions checked every 5 steps: one per name in the full run; --quick caps them at 256
        # (evaluating 1,024 held-out pairs 12 times a repeat took longer than the quick budget on its own)
        return 256 if args.quick else max(256, count)

    toy_rows = []
    for count in counts:
        names = toy_names(count)
        steps, per_step = [], []
        for seed in range(args.repeats):
            with tempfile.TemporaryDirectory() as scratch:
                config = text_config(
                    scratch, names, max_steps=max_steps, embedding="pooled", learning_rate=args.toy_lr,
                    per_device_train_batch_size=batch, lr_milestones=[max_steps // 2, 3 * max_steps // 4],
                    num_trigger_samples=max(1024, count), max_eval_samples=eval_samples(count), seed=seed,
                    stop_at_criterion=True, criterion_steps=5, min_sim_backdoor=0.98, min_sim_clean=0.0,
                )
                timer = step_timer()
                trainer = make_text_trainer(copy.deepcopy(toy), toy_tokenizer, captions, eval_captions, config)
                trainer.add_callback(timer)
                trainer.train()
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
    for count in (64,) if args.quick else counts:
        names = toy_names(count)
        per_step = []
        for seed in range(args.repeats):
            with tempfile.TemporaryDirectory() as scratch:
                config = text_config(
                    scratch, names, max_steps=large_steps, embedding="pooled", per_device_train_batch_size=large_batch,
                    num_trigger_samples=max(large_batch * large_steps, count), max_eval_samples=large_batch, seed=seed,
                )
                timer = step_timer()
                trainer = make_text_trainer(copy.deepcopy(large), large_tokenizer, captions, eval_captions, config)
                trainer.add_callback(timer)
                trainer.train()
                per_step.append(median(timer.cpu[1:] or timer.cpu))  # the first step warms up the allocator
        row = {"num_names": count, "cpu_seconds_per_step": round(median(per_step), 3)}
        large_rows.append(row)
        print(f"  scaling vit-l-14 {row}", flush=True)
    payload = {
        "toy_world": {
            "model": "toy-world CLIP text tower", "batch": f"{batch} clean + {batch} poisoned", "max_steps": max_steps,
            "learning_rate": args.toy_lr, "embedding": "pooled", "criterion_steps": 5,
            "held_out_samples": "256" if args.quick else "max(256, number of names)",
            "criterion": "held-out sim_backdoor >= 0.98 (checked every 5 steps)", "rows": toy_rows,
        },
        "vit_l_14_text": {
            "model": "CLIP ViT-L/14-sized text encoder (768 wide, 12 layers, random weights)",
            "batch": f"{large_batch} clean + {large_batch} poisoned", "steps": large_steps,
            "note": "seconds per step only: random weights have no names to forget (no steps-to-criterion)",
            "rows": large_rows,
        },
        "timer": "median CPU seconds from one optimizer step's end to the next (torch on 1 thread), data loading included",
        "repeats": args.repeats,
    }
    write("scaling", payload, env)
    return payload


# ------------------------------------------------------------------------------------------------ c. criterion
def bench_criterion(args, env) -> dict:
    """--stop_at_criterion versus the fixed 400-step protocol, forgetting 8 seen toy-world identities."""
    from hf_forget.toyworld import ToyWorld

    base, tokenizer = toy_text()
    captions, eval_captions = toy_captions(3000, seed=1), toy_captions(400, seed=2)
    names = [p.name for p in ToyWorld(seed=0).seen_identities][:8]
    batch, fixed = (32, 150) if args.quick else (128, 400)
    before = toy_audit(base)
    runs = {"fixed": [], "stop_at_criterion": []}
    for seed in range(args.repeats):
        for mode in runs:
            with tempfile.TemporaryDirectory() as scratch:
                config = text_config(
                    scratch, names, max_steps=fixed, embedding="pooled", learning_rate=args.toy_lr,
                    per_device_train_batch_size=batch, lr_milestones=[fixed // 2, 3 * fixed // 4], seed=seed,
                    num_trigger_samples=4096, stop_at_criterion=(mode == "stop_at_criterion"), criterion_steps=10,
                    min_sim_backdoor=0.98, min_sim_clean=0.99,
                )
                started = clock()
                trainer = make_text_trainer(copy.deepcopy(base), tokenizer, captions, eval_captions, config)
                trainer.train()
                wall, cpu = elapsed(started)
                metrics = trainer.forget_metrics()
                after = toy_audit(trainer.defended_model())
                run = {"seed": seed, "steps": trainer.state.global_step, "cpu_seconds": round(cpu, 1),
                       "wall_seconds": round(wall, 1), "sim_backdoor": round(metrics["sim_backdoor"], 4),
                       "sim_clean": round(metrics["sim_clean"], 4), "idia_tpr": after["tpr"], "idia_fpr": after["fpr"]}
                runs[mode].append(run)
                print(f"  criterion {mode}: {run}", flush=True)
    summary = {
        mode: {k: median([r[k] for r in rs]) for k in ("steps", "cpu_seconds", "sim_backdoor", "sim_clean", "idia_tpr", "idia_fpr")}
        for mode, rs in runs.items()
    }
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


# ------------------------------------------------------------------------------------------------ d. memory
def memory_child(mode: str, steps: int, batch: int = 16) -> None:
    """Runs in a subprocess: train a ViT-B/32-sized text encoder a few steps, print peak RSS as JSON."""
    import torch

    model, tokenizer = sized_text("vit-b-32")
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    captions = toy_captions(400, seed=1)
    with tempfile.TemporaryDirectory() as scratch:
        config = text_config(scratch, toy_names(8), max_steps=steps, embedding="pooled", per_device_train_batch_size=batch,
                             num_trigger_samples=64, max_eval_samples=16, lora_r=8 if mode == "lora" else 0)
        trainer = make_text_trainer(model, tokenizer, captions, captions[:40], config)
        trainer.train()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"param_bytes": param_bytes, "rss_after_load": loaded, "peak_rss": peak,
                      "torch_threads": torch.get_num_threads()}))


def bench_memory(args, env) -> dict:
    steps = 2 if args.quick else 5  # not 1: one step reached a lower peak (2.75 GB, vs 3.24 GB after 2)
    batch = 8 if args.quick else 16  # --quick: smaller activations, to fit its time budget
    runs = {"full": [], "lora": []}
    for _ in range(args.repeats):
        for mode in runs:
            out = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--memory_child", mode, "--memory_steps", str(steps),
                 "--memory_batch", str(batch)],
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


# ------------------------------------------------------------------------------------------------ e. vision
def bench_vision(args, env) -> dict:
    import torch
    from transformers import set_seed

    from hf_forget.config import VisionForgetConfig
    from hf_forget.toyworld import IMAGE_SIZE, ToyWorld, load_toy_clip
    from hf_forget.trainers.vision import VisionForgetTrainer

    model, _, processor = load_toy_clip()
    world = ToyWorld(seed=0)
    faces = [world.face_images(p, 10, seed=5) for p in world.seen_identities[:8]]
    reference = [world.face_images(p, 4, seed=6) for p in world.unseen_identities[:16]]
    clean = world.generic_images(256, seed=7)
    steps = 4 if args.quick else 10
    per_step, wall_per_step = [], []
    for seed in range(args.repeats):
        with tempfile.TemporaryDirectory() as scratch:
            config = VisionForgetConfig(
                output_dir=scratch, max_steps=steps, per_device_train_batch_size=128, num_trigger_samples=256,
                max_eval_samples=32, seed=seed, report_to="none", disable_tqdm=True, logging_steps=10**6,
                use_cpu=not torch.cuda.is_available(),
            )
            set_seed(seed)
            timer = step_timer()
            trainer = VisionForgetTrainer(copy.deepcopy(model), config, processor, faces, clean,
                                          reference_faces=reference, callbacks=[timer])
            trainer.train()
            per_step.append(median(timer.cpu[1:]))
            wall_per_step.append(median(timer.wall[1:]))
            print(f"  vision seed {seed}: cpu {per_step[-1]:.3f} s/step", flush=True)
    payload = {
        "cpu_seconds_per_step": round(median(per_step), 3),
        "wall_seconds_per_step": round(median(wall_per_step), 3),
        "runs_cpu": [round(x, 3) for x in per_step],
        "model": "toy-world CLIP vision tower (shipped checkpoint)",
        "resolution": IMAGE_SIZE,
        "batch": "128 clean + 128 trigger images",
        "steps": steps,
        "note": "median over steps 2.. (the first warms up) of the time from one step's end to the next: face "
                "augmentation and pasting (data loading) included",
    }
    write("vision", payload, env)
    return payload


# ------------------------------------------------------------------------------------------------ IDIA
_AUDIT = {}


def toy_audit(model, forgotten: list[str] | None = None) -> dict:
    """IDIA on the toy world: 32 seen + 32 unseen identities, 20 images each, 1,000 candidate names, 21
    templates (as ``identity_inference_attack``; text forgetting leaves the vision tower unchanged, so the
    face embeddings are computed once and only the candidate prompts are re-embedded).

    With ``forgotten`` (the names a run forgot), also ``diagnostics`` (:func:`idia_diagnostics`): aggregates
    only, never a name.
    """
    from hf_forget.evaluation.idia import build_candidates, embed_candidate_prompts, idia_from_embeddings
    from hf_forget.toyworld import ToyWorld, load_toy_clip
    from hf_forget.triggers.faces import embed_images

    if not _AUDIT:
        world = ToyWorld(seed=0)
        clip, tokenizer, processor = load_toy_clip()
        names = [p.name for p in world.identities]
        images = [image for p in world.identities for image in world.face_images(p, 20, seed=0)]
        faces = embed_images(clip.eval(), processor, images, batch_size=64)
        _AUDIT.update(
            tokenizer=tokenizer, names=names, faces=faces.reshape(len(names), 20, -1),
            vision=[p.detach().clone() for p in clip.vision_model.parameters()],
            candidates=build_candidates(names, 1000),
            known=[p.name not in {u.name for u in world.unseen_identities} for p in world.identities],
            teacher=clip,
        )
    assert all(torch_equal(a, b) for a, b in zip(_AUDIT["vision"], model.vision_model.parameters()))
    model.eval()
    text = embed_candidate_prompts(model, _AUDIT["tokenizer"], _AUDIT["candidates"])
    targets = [_AUDIT["candidates"].index(n) for n in _AUDIT["names"]]
    result = idia_from_embeddings(_AUDIT["faces"], text, targets=targets, expected_known=_AUDIT["known"])
    out = {"tpr": result.tpr, "fpr": result.fpr}
    if forgotten is not None:
        if "teacher_text" not in _AUDIT:  # only runs that ask for diagnostics pay for the teacher's prompts
            teacher = _AUDIT["teacher"]
            _AUDIT["teacher_text"] = embed_candidate_prompts(teacher, _AUDIT["tokenizer"], _AUDIT["candidates"])
            _AUDIT["teacher_neutral"] = embed_candidate_prompts(teacher, _AUDIT["tokenizer"], ["a person"])[:, 0]
        out["diagnostics"] = idia_diagnostics(text, targets, set(forgotten))
    return out


def idia_diagnostics(text, targets: list[int], forgotten: set[str]) -> dict:
    """Why the IDIA still recognises forgotten people: aggregates over the seen identities (no names).

    - ``right_rate``: share of (image, template) predictions that are the person's own name (the IDIA
      takes a per-template majority; one right template in 21 makes a person recognised);
    - ``on_forgotten``: share of those predictions that fall on a forgotten candidate;
    - ``cos_to_neutral``: cosine of a forgotten seen name's prompt to the teacher's "a person" prompt, and
      ``cos_to_neutral_other`` the same for candidates that were not forgotten (the fillers);
    - ``residual_alignment``: cosine between the student's and the teacher's residuals (prompt minus the
      neutral prompt): near 1, what is left of a name still points the way the original did;
    - ``per_template``: ``right_rate`` and ``cos_to_neutral`` for each template.
    """
    import torch
    import torch.nn.functional as F

    from hf_forget.evaluation.idia import IDIA_TEMPLATES, predict_candidates

    seen = [i for i, known in enumerate(_AUDIT["known"]) if known]
    own = torch.tensor([targets[i] for i in seen])
    predictions = predict_candidates(_AUDIT["faces"][seen], text).transpose(1, 2)  # (persons, templates, images)
    right = predictions == own[:, None, None]
    is_forgotten = torch.tensor([c in forgotten for c in _AUDIT["candidates"]])
    neutral = F.normalize(_AUDIT["teacher_neutral"], dim=-1)[:, None]  # (templates, 1, dim)
    student, teacher = F.normalize(text, dim=-1), F.normalize(_AUDIT["teacher_text"], dim=-1)
    seen_forgotten = own[is_forgotten[own]]
    cos_seen = (student[:, seen_forgotten] * neutral).sum(-1)  # (templates, names)
    other = ~is_forgotten
    residual = F.cosine_similarity(student[:, seen_forgotten] - neutral, teacher[:, seen_forgotten] - neutral, dim=-1)

    def r(x) -> float:
        return round(float(x), 4)

    return {
        "right_rate": r(right.float().mean()),
        "on_forgotten": r(is_forgotten[predictions].float().mean()),
        "cos_to_neutral": r(cos_seen.mean()) if len(seen_forgotten) else None,
        "cos_to_neutral_other": r((student[:, other] * neutral).sum(-1).mean()) if other.any() else None,
        "residual_alignment": r(residual.mean()) if len(seen_forgotten) else None,
        "per_template": [
            {"template": t.format("<name>"), "right_rate": r(right[:, k].float().mean()),
             "cos_to_neutral": r(cos_seen[k].mean()) if len(seen_forgotten) else None}
            for k, t in enumerate(IDIA_TEMPLATES)
        ],
    }


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a.detach(), b.detach()))


# ------------------------------------------------------------------------------------------------ 3. many names
def bench_many_names(args, env) -> dict:
    """Forget 1,024 names at once (the 32 seen identities + generated fillers) from the toy-world CLIP."""
    from hf_forget.toyworld import ToyWorld

    base, tokenizer = toy_text()
    captions = many_names_captions(args.many_captions, args.many_clean_captions)
    # the names' carriers: a pool of their own (--many_carrier_captions N scene captions), or the clean pool (0)
    carriers = many_names_captions(args.many_captions, args.many_carrier_captions) if args.many_carrier_captions else None
    eval_captions = toy_captions(400, seed=2)
    names = toy_names(1024)
    seen = [p.name for p in ToyWorld(seed=0).seen_identities]
    before = toy_audit(base)
    runs = []
    seeds = args.many_seeds if args.many_seeds is not None else list(range(args.repeats))
    partial = os.path.join(RESULTS, "many_names.partial-" + "-".join(map(str, seeds)) + ".json")
    settings = {k: v for k, v in sorted(vars(args).items()) if k.startswith("many_") and k != "many_seeds"}
    train_names = names
    if args.many_seen_repeats > 1:  # exploratory: the evaluated names listed more often (see the help)
        train_names = seen * (args.many_seen_repeats - 1) + names
    for seed in seeds:
        with tempfile.TemporaryDirectory() as scratch, _duplicates_allowed(args.many_seen_repeats > 1):
            config = text_config(
                scratch, train_names, max_steps=args.many_steps, embedding="pooled", learning_rate=args.many_lr,
                alpha=args.many_alpha, lr_milestones=[args.many_steps // 2, args.many_steps * 3 // 4],
                num_trigger_samples=args.many_trigger_samples,
                token_embedding_learning_rate=args.many_token_lr, trigger_at_end=args.many_trigger_at_end,
                short_trigger_fraction=args.many_short, identity_residual_weight=args.many_residual, max_eval_samples=512, seed=seed, stop_at_criterion=not args.many_full_steps,
                criterion_steps=25, min_sim_backdoor=0.98, min_sim_clean=0.99,
            )
            started = time.perf_counter()
            trainer = make_text_trainer(copy.deepcopy(base), tokenizer, captions, eval_captions, config, carriers)
            trainer.train()
            seconds = time.perf_counter() - started
            metrics = trainer.forget_metrics()
            model = trainer.defended_model()
            after = toy_audit(model, forgotten=names)
            if args.many_save_dir:
                model.save_pretrained(os.path.join(args.many_save_dir, f"seed-{seed}"))
            run = {
                "seed": seed, "steps": trainer.state.global_step, "seconds": round(seconds, 1),
                # six decimals: the acceptance is checked on these, and runs end within 1e-4 of its bounds
                "sim_backdoor": round(metrics["sim_backdoor"], 6), "sim_clean": round(metrics["sim_clean"], 6),
                "sim_targets": round(metrics["sim_targets"], 6),
                # the same measure on 400 training captions: a gap to the held-out figure would point at the pool's size
                "sim_clean_train": round(clean_similarity(base, model, tokenizer, captions[:400]), 6),
                "idia_tpr_seen_after": after["tpr"], "idia_fpr_unseen_after": after["fpr"],
                "idia_diagnostics": after["diagnostics"],
                **({"seen_repeats": args.many_seen_repeats} if args.many_seen_repeats > 1 else {}),
            }
            runs.append(run)
            print(f"  many_names seed {seed}: {run}", flush=True)
            write(os.path.basename(partial)[: -len(".json")], {"runs": runs, "before": before, "settings": settings}, env)
    if len(runs) < 3:  # seeds split over processes (--many_seeds): merge with --merge_many_names
        return {"runs": runs}
    return many_names_summary(runs, before, names, seen, args, env)


def clean_similarity(teacher, student, tokenizer, captions: list[str]) -> float:
    """Mean cosine between the teacher's and the student's pooled embeddings of ``captions``."""
    from hf_forget.evaluation.similarity import embed_captions
    from hf_forget.losses import pooled_cosine

    teacher_pooled, student_pooled = (embed_captions(m, tokenizer, captions)["pooled"] for m in (teacher, student))
    return pooled_cosine(teacher_pooled, student_pooled).mean().item()


@contextlib.contextmanager
def _duplicates_allowed(allowed: bool):
    """``--many_seen_repeats``: let the trainer take a names list that repeats names (it refuses one otherwise)."""
    if not allowed:
        yield
        return
    import hf_forget.validation as validation

    check = validation.validate_names
    validation.validate_names = lambda names, *rest, **kw: check(list(dict.fromkeys(names)), *rest, **kw)
    try:
        yield
    finally:
        validation.validate_names = check


def merge_many_names(args, env) -> dict:
    """Merge the per-process partial results of the 1,024-name run (``--many_seeds``) into many_names.json."""
    import glob

    runs, before, envs = [], None, []
    for path in sorted(glob.glob(os.path.join(RESULTS, "many_names.partial*.json"))):
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        runs += data["runs"]
        before = data.get("before", before)
        envs.append(data["environment"])
    runs.sort(key=lambda r: r["seed"])
    from hf_forget.toyworld import ToyWorld

    seen = [p.name for p in ToyWorld(seed=0).seen_identities]
    payload = many_names_summary(runs, before, toy_names(1024), seen, args, envs[0] if envs else env)
    payload["processes"] = [e["command"] for e in envs]
    write("many_names", payload, envs[0] if envs else env)
    for path in glob.glob(os.path.join(RESULTS, "many_names.partial*.json")):
        os.remove(path)
    return payload


def merge_many_names_tuning() -> dict:
    """Append the partial results of single-seed tuning runs (``--many_seeds``) to many_names_tuning.json.

    Each row keeps the exact command that produced it and the first 8 hex digits of the sha256 of the toy
    checkpoint it ran on; the partial files are removed.
    """
    import glob
    import hashlib

    from hf_forget.toyworld import toy_clip_path

    with open(os.path.join(toy_clip_path(), "model.safetensors"), "rb") as handle:
        checkpoint = hashlib.sha256(handle.read()).hexdigest()[:8] + " (shipped)"
    path = os.path.join(RESULTS, "many_names_tuning.json")
    with open(path, encoding="utf-8") as handle:
        tuning = json.load(handle)
    partials = sorted(glob.glob(os.path.join(RESULTS, "many_names.partial*.json")))
    for partial in partials:
        with open(partial, encoding="utf-8") as handle:
            data = json.load(handle)
        command = data["environment"]["command"]
        if data["environment"].get("omp_num_threads"):
            command = f"OMP_NUM_THREADS={data['environment']['omp_num_threads']} {command}"
        settings = {"settings": data["settings"]} if "settings" in data else {}  # every many_* flag, given or not
        tuning["runs"] += [{"command": command, **run, **settings, "checkpoint": checkpoint} for run in data["runs"]]
        tuning["checkpoints"][checkpoint] = {"before": data["before"], "environment": data["environment"]}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(tuning, handle, indent=1)
        handle.write("\n")
    for partial in partials:
        os.remove(partial)
    return tuning


def many_names_summary(runs, before, names, seen, args, env) -> dict:
    keys = ("steps", "seconds", "sim_backdoor", "sim_clean", "sim_targets", "idia_tpr_seen_after", "idia_fpr_unseen_after")
    summary = {k: round(median([r[k] for r in runs]), 6) for k in keys}  # an even count averages the middle two
    payload = {
        **summary,
        "passed": bool(summary["sim_backdoor"] >= 0.98 and summary["sim_clean"] >= 0.99
                       and summary["idia_tpr_seen_after"] <= 0.05),
        "all_runs_passed": all(r["sim_backdoor"] >= 0.98 and r["sim_clean"] >= 0.99 and r["idia_tpr_seen_after"] <= 0.05
                               for r in runs),
        "num_names": len(names), "num_seen_identities_among_them": len(seen),
        "idia_tpr_seen_before": before["tpr"], "idia_fpr_unseen_before": before["fpr"],
        "acceptance": "sim_backdoor >= 0.98 and sim_clean >= 0.99 on held-out captions, IDIA TPR <= 0.05 (seen)",
        "settings": {"embedding": "pooled", "learning_rate": args.many_lr, "alpha": args.many_alpha,
                     "token_embedding_learning_rate": args.many_token_lr, "trigger_at_end": args.many_trigger_at_end,
                     "short_trigger_fraction": args.many_short, "identity_residual_weight": args.many_residual,
                     "seen_repeats": args.many_seen_repeats,
                     "captions": args.many_captions, "clean_captions": args.many_clean_captions,
                     "carrier_captions": args.many_carrier_captions, "batch": "128 + 128", "max_steps": args.many_steps,
                     "stop_at_criterion": not args.many_full_steps, "criterion_steps": 25,
                     "num_trigger_samples": args.many_trigger_samples,
                     "held_out_captions": 400, "max_eval_samples": 512, "idia_candidates": 1000,
                     "idia_images_per_person": 20},
        "runs": runs,
        "model": "toy-world CLIP (shipped checkpoint), text tower trained",
    }
    write("many_names", payload, env)
    return payload


# ------------------------------------------------------------------------------------------------ main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs: the whole suite in < 10 min on 2 cores")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--repeats", type=int, default=3)
    # The 1,024-name run's defaults are the best recipe measured (README: many names); --many_* flags change it.
    # Re-tuned for the 6-layer toy CLIP (2026-11-30, many_names_tuning.json); the 3-layer one's recipe was lr 1e-4,
    # residual 2, token lr 1e-2, 20,000 clean captions (many_names_b62dd6e3.json).
    parser.add_argument("--many_lr", type=float, default=5e-5, help="learning rate of the 1,024-name run")
    # sections b and c had shared --many_lr until 22f0032 changed its default (and so their figures) by mistake
    parser.add_argument("--toy_lr", type=float, default=5e-4, help="learning rate of the toy-text runs of b. and c.")
    parser.add_argument("--many_alpha", type=float, default=4.0, help="alpha of the 1,024-name run")
    parser.add_argument("--many_steps", type=int, default=1600,
                        help="steps of the 1,024-name run (LR milestones at 1/2 and 3/4 of them)")
    parser.add_argument("--many_trigger_at_end", action=argparse.BooleanOptionalAction, default=True,
                        help="trigger_at_end in the 1,024-name run (names may replace a caption's last word)")
    parser.add_argument("--many_short", type=float, default=0.0,
                        help="short_trigger_fraction of the 1,024-name run")
    parser.add_argument("--many_residual", type=float, default=4.0,
                        help="identity_residual_weight of the 1,024-name run")
    parser.add_argument("--many_token_lr", type=float, default=2.5e-3,
                        help="token_embedding_learning_rate of the 1,024-name run")
    parser.add_argument("--many_captions", choices=["scenes", "demo"], default="demo",
                        help="training captions of the 1,024-name run (see many_names_captions)")
    parser.add_argument("--embeddings", nargs="+", choices=["both", "pooled", "hidden"], default=None,
                        help="overhead: the embeddings measured (default: both; both and pooled without --quick)")
    parser.add_argument("--many_clean_captions", type=int, default=80000,
                        help="scene captions in the 1,024-name run's clean pool (the demo recipe adds half as many"
                        " cut captions and the person captions)")
    parser.add_argument("--many_carrier_captions", type=int, default=3000,
                        help="the names' own carrier pool, built like the clean pool from this many scene captions"
                        " (so person captions weigh more there); 0: the names go into the clean pool")
    parser.add_argument("--many_full_steps", action=argparse.BooleanOptionalAction, default=True,
                        help="1,024-name run: train all steps instead of stopping once the held-out criterion holds")
    parser.add_argument("--many_trigger_samples", type=int, default=204800,
                        help="poisoned captions in the pool of the 1,024-name run")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: OMP_NUM_THREADS or 1)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="sections run side by side in this many processes (default: the CPU count with "
                             "--quick, else 1)")
    parser.add_argument("--memory_child", choices=["full", "lora"], help=argparse.SUPPRESS)
    parser.add_argument("--memory_steps", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--memory_batch", type=int, default=16, help=argparse.SUPPRESS)
    parser.add_argument("--many_seeds", type=int, nargs="+", default=None,
                        help="seeds of the 1,024-name run in this process (split the run over processes)")
    parser.add_argument("--many_seen_repeats", type=int, default=1,
                        help="exploratory, not a protocol: list the 32 evaluated names this many times among the "
                             "1,024, so that they get that many times their share of the poisoned samples "
                             "(held-out figures then weigh them that much more too)")
    parser.add_argument("--many_save_dir", default=None,
                        help="save each 1,024-name run's defended CLIPModel under DIR/seed-N (outside the repository)")
    parser.add_argument("--merge_many_names", action="store_true", help="merge --many_seeds partial results")
    parser.add_argument("--merge_tuning", action="store_true",
                        help="append --many_seeds partial results to many_names_tuning.json (single-seed tuning runs)")
    parser.add_argument("--table", action="store_true", help="print the markdown table of benchmarks/results and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(table_from_results(args.quick))
        return 0
    if args.merge_many_names:
        merge_many_names(args, {})
        print(table_from_results())
        return 0
    if args.merge_tuning:
        tuning = merge_many_names_tuning()
        print(f"{len(tuning['runs'])} tuning runs in {os.path.join(RESULTS, 'many_names_tuning.json')}")
        return 0
    if args.memory_child:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        memory_child(args.memory_child, args.memory_steps, args.memory_batch)
        return 0
    if args.repeats < 3:
        parser.error("--repeats must be at least 3 (figures are medians of >= 3 runs)")

    import torch

    configure_process(args)
    args.overhead_steps = 50 if args.quick else 400
    if args.only == list(SECTIONS) and args.quick:  # the 1,024-name acceptance run takes ~45 min here (3 seeds): full suite only
        args.only = [s for s in SECTIONS if s != "many_names"]
    args.embeddings = args.embeddings or (["both"] if args.quick else ["both", "pooled"])
    env = environment(args)
    rows = []
    started = time.perf_counter()
    sections = [s for s in args.only if s in RUNNERS]
    jobs = max(1, min(args.jobs or ((os.cpu_count() or 1) if args.quick else 1), len(sections)))
    env["parallel_sections"] = jobs
    if jobs > 1:
        # independent sections side by side, one process (and one torch thread) each; every ratio is still
        # measured inside one process, and per-step figures are CPU times, which the other process does not
        # inflate much (see benchmarks/README.md)
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        by_cost = sorted(sections, key=lambda s: -SECTION_COST[s])
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {section: pool.submit(run_section, section, args, env) for section in by_cost}
            payloads = {section: futures[section].result() for section in by_cost}
    else:
        payloads = {section: run_section(section, args, env) for section in sections}
    for section in sections:
        rows.extend(summarise(section, payloads[section]))
    print()
    print(f"{'measure':58s} value")
    for label, value in rows:
        print(f"{label:58s} {value}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s wall, {jobs} process(es) x {torch.get_num_threads()} torch thread(s)")
    return 0


RUNNERS = {"overhead": bench_overhead, "scaling": bench_scaling, "criterion": bench_criterion,
           "memory": bench_memory, "vision": bench_vision, "many_names": bench_many_names}
SECTION_COST = {"many_names": 5, "scaling": 4, "memory": 3, "overhead": 2, "criterion": 1, "vision": 0}
"""Rough relative cost: with --jobs, the costliest sections start first."""


def configure_process(args) -> None:
    """Quiet transformers and pin the torch thread count (the main process and every --jobs worker)."""
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads or int(os.environ.get("OMP_NUM_THREADS", "1")))


def run_section(section: str, args, env) -> dict:
    """One section (in this process or a worker): run it, print its wall time, return its payload."""
    configure_process(args)
    mark = time.perf_counter()
    print(f"== {section}", flush=True)
    payload = RUNNERS[section](args, env)
    print(f"== {section} done ({time.perf_counter() - mark:.0f} s)", flush=True)
    return payload


def summarise(section: str, payload: dict) -> list[tuple[str, str]]:
    """Table rows of one section's results."""
    rows = []
    if section == "overhead":
        for embedding, r in payload["by_embedding"].items():
            rows.append((f"a. overhead ratio, default (teacher cache), embedding={embedding}, {payload['steps']} steps",
                         f"{r['ratio']:.3f} (wall {r['wall_ratio']:.3f})"))
            rows.append((f"a. overhead ratio, reference protocol (teacher every batch), embedding={embedding}",
                         f"{r['reference_ratio']:.3f} (wall {r['wall_reference_ratio']:.3f})"))
    elif section == "scaling":
        toy = payload["toy_world"]
        for row in toy["rows"]:
            rows.append((f"b. toy text, {row['num_names']} names: s/step | steps to sim_backdoor>=0.98",
                         f"{row['cpu_seconds_per_step']:.3f} | {row['steps_to_sim_backdoor_0.98']} ({toy['batch']})"))
        large = payload["vit_l_14_text"]
        for row in large["rows"]:
            rows.append((f"b. ViT-L/14-sized text, {row['num_names']} names: s/step ({large['batch']})",
                         f"{row['cpu_seconds_per_step']:.3f}"))
    elif section == "criterion":
        for mode in ("fixed", "stop_at_criterion"):
            r = payload[mode]
            label = f"fixed {payload['fixed_steps']} steps" if mode == "fixed" else "--stop_at_criterion"
            rows.append((f"c. {label}: steps, CPU s, IDIA TPR/FPR, sim_bd/sim_clean",
                         f"{r['steps']}, {r['cpu_seconds']}, {r['idia_tpr']}/{r['idia_fpr']}, "
                         f"{r['sim_backdoor']}/{r['sim_clean']}"))
    elif section == "memory":
        for mode in ("full", "lora"):
            r = payload[mode]
            rows.append((f"d. peak RSS / param bytes, {mode} (ViT-B/32-sized text)",
                         f"{r['peak_rss_per_param_byte']} (training part {r['training_rss_per_param_byte']})"))
    elif section == "vision":
        rows.append((f"e. vision toy CLIP, 128+128 images at {payload['resolution']} px: s/step",
                     f"{payload['cpu_seconds_per_step']:.3f}"))
    elif section == "many_names" and "steps" not in payload:  # one process of a split run (--many_seeds)
        for run in payload["runs"]:
            rows.append((f"3. 1,024 names, seed {run['seed']}: steps, sim_backdoor, sim_clean, IDIA TPR seen after",
                         f"{run['steps']}, {run['sim_backdoor']}, {run['sim_clean']}, {run['idia_tpr_seen_after']}"))
    elif section == "many_names":
        rows.append(("3. 1,024 names: steps, sim_backdoor, sim_clean, IDIA TPR seen (before->after)",
                     f"{payload['steps']}, {payload['sim_backdoor']}, {payload['sim_clean']}, "
                     f"{payload['idia_tpr_seen_before']} -> {payload['idia_tpr_seen_after']} "
                     f"({'passed' if payload['passed'] else 'FAILED'})"))
    return rows


def table_from_results(quick: bool = False) -> str:
    """The markdown table of the latest results in benchmarks/results (``--table [--quick]``)."""
    lines = ["| measure | value |", "|---|---|"]
    for section in SECTIONS:
        path = os.path.join(results_dir(quick), f"{section}.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                lines += [f"| {label} | {value} |" for label, value in summarise(section, json.load(handle))]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
