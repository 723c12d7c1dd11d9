"""a. overhead: a whole text-forgetting run / the student's own forward + backward + AdamW steps.

    OMP_NUM_THREADS=1 python benchmarks/overhead.py [--quick] [--embeddings both pooled]

Writes results/overhead.json (results/quick/ with --quick). The modes run interleaved in one process, the
order rotating each repeat, after an untimed warm-up run.
"""

from __future__ import annotations

import copy
import sys
import tempfile

from harness import (
    clock, elapsed, make_text_trainer, median, section_main, section_parser, text_config, toy_captions, toy_names,
    toy_text, write,
)

NAME = "overhead"
COST = 2  # rough relative cost: with run.py --jobs, the costliest sections start first


def make_parser():
    parser = section_parser(sys.modules[__name__])
    parser.add_argument("--embeddings", nargs="+", choices=["both", "pooled", "hidden"], default=None,
                        help="the embeddings measured (default: both; both and pooled without --quick)")
    return parser


def lower_bound_run(model, trainer_args, dataset, collator, kinds, steps: int, seed: int) -> tuple[float, float]:
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
            batch = dataset.pool.batch(batch["index"])  # the collator hands out indices into the padded pool
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


def forget_run(model, tokenizer, names, captions, eval_captions, config) -> tuple[float, float]:
    """A whole text-forgetting run: trainer set-up (teacher cache, held-out teacher outputs) and training."""
    started = clock()
    trainer = make_text_trainer(model, tokenizer, names, captions, eval_captions, config)
    trainer.train()
    return elapsed(started)


def run(args, env) -> dict:
    base, tokenizer = toy_text()
    captions, eval_captions = toy_captions(3000, seed=1), toy_captions(300, seed=2)
    names = toy_names(8)
    steps = 50 if args.quick else 400
    embeddings = args.embeddings or (["both"] if args.quick else ["both", "pooled"])
    # the protocol's 400 steps : 4096 samples, kept in proportion, in whole batches (a partial last batch
    # would make the trainer's steps smaller than the lower bound's)
    batch = 64 if args.quick else 128  # --quick: half the protocol's batch, to fit its time budget
    pool = batch * max(1, round(steps / 12.5))
    results: dict[str, dict] = {}
    for embedding in embeddings:
        times = {"lower_bound": [], "default": [], "reference": []}
        with tempfile.TemporaryDirectory() as scratch:
            common = dict(max_steps=steps, embedding=embedding, num_trigger_samples=pool, seed=0,
                          per_device_train_batch_size=batch, lr_milestones=[steps // 2, 3 * steps // 4])
            # untimed warm-up (kernels, allocator, tokenizer caches): the first run of a process is slower
            warm = {**common, "max_steps": 3}
            forget_run(copy.deepcopy(base), tokenizer, names, captions, eval_captions, text_config(scratch, **warm))
            for repeat in range(args.repeats):
                order = ["lower_bound", "default", "reference"]
                order = order[repeat % 3:] + order[: repeat % 3]  # rotate: no mode always runs first
                for mode in order:
                    config = text_config(scratch, teacher_cache=(mode != "reference"), **common)
                    if mode == "lower_bound":
                        # same dataset and collator (same padding) as the trainer builds
                        probe = make_text_trainer(copy.deepcopy(base), tokenizer, names, captions, eval_captions,
                                                  text_config(scratch, teacher_cache=False, **common))
                        dataset, collator, kinds = probe.train_dataset, probe.data_collator, probe.kinds
                        del probe
                        seconds = lower_bound_run(copy.deepcopy(base), config, dataset, collator, kinds, steps, 0)
                    else:
                        seconds = forget_run(copy.deepcopy(base), tokenizer, names, captions, eval_captions, config)
                    times[mode].append(seconds)
                    print(f"  overhead[{embedding}] {mode}: wall {seconds[0]:.2f} s, cpu {seconds[1]:.2f} s",
                          flush=True)
        results[embedding] = ratios(times)
    headline = results[embeddings[0]]
    payload = {
        "ratio": headline["ratio"],
        "reference_ratio": headline["reference_ratio"],
        "wall_ratio": headline["wall_ratio"],
        "wall_reference_ratio": headline["wall_reference_ratio"],
        "timer": (
            "ratio / reference_ratio: CPU time of this process (torch on 1 thread), which equals wall time on an "
            "idle machine and is not inflated by the other users of the shared cores; wall_*: wall-clock time"
        ),
        "embedding": embeddings[0],
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


def ratios(times: dict[str, list[tuple[float, float]]]) -> dict:
    """Per-run ratios to the lower bound and their medians, CPU (``ratio``) and wall (``wall_ratio``)."""
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
    return result


def rows(payload: dict) -> list[tuple[str, str]]:
    out = []
    for embedding, r in payload["by_embedding"].items():
        out.append((f"a. overhead ratio, default (teacher cache), embedding={embedding}, {payload['steps']} steps",
                    f"{r['ratio']:.3f} (wall {r['wall_ratio']:.3f})"))
        out.append((f"a. overhead ratio, reference protocol (teacher every batch), embedding={embedding}",
                    f"{r['reference_ratio']:.3f} (wall {r['wall_reference_ratio']:.3f})"))
    return out


def main(argv=None) -> int:
    return section_main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
