"""Peak memory per parameter byte of defending a T5 encoder (SD3's / FLUX's text_encoder_3 / _2), full fine-tuning
vs LoRA vs FSDP (full fine-tuning sharded over 2 processes), as `hf-forget text --pipeline` trains it: token states (`embedding="hidden"`) of captions padded to
SD3's 256 tokens, without attention mask, teacher cache on.

    OMP_NUM_THREADS=1 python benchmarks/t5_memory.py                 # 3 repeats, batches 1 and 4: ~7 min on a CPU
    OMP_NUM_THREADS=1 python benchmarks/t5_memory.py --repeats 1 --batches 4

At batch 1 the parameter-sized state dominates (weights, gradients, AdamW moments, the weight anchor's copy:
what LoRA removes); at batch 4 the activations of 256-token sequences already weigh more for a model this small
(a 4.7 B-parameter T5-XXL is the other way round).

Each run is a fresh process (peak RSS is per process: ``ru_maxrss``; on a CUDA machine, peak allocated GPU
memory). The T5 is a T5 v1.1-small-shaped encoder built from a config (random weights, ~31 M parameters,
float32: 32,128-token vocabulary, 512 wide, 6 gated-GELU layers); nothing is downloaded. Writes
`benchmarks/results/t5_memory.json` with the command, medians of the repeats, and every run.

FSDP: `accelerate launch --config_file examples/fsdp.yaml --num_processes 2`, each process with the same batch as
the single-process runs; the figure is the larger of the two processes'. Without a GPU, FSDP runs on CPU
processes through tests/fsdp_on_cpu.py (Accelerate keeps FSDP to GPUs; torch's FSDP2 runs on CPU with gloo).
On CPU processes and a model this small FSDP saves nothing per process (measured: more than full fine-tuning):
each process builds the whole model before it is sharded, the weight anchor keeps the unsharded parameters alive
plus its full copy (taken before sharding), and FSDP adds its gather buffers. What it shards, gradients and AdamW
moments (3x the parameters, split over the processes), is what decides for a 4.7 B-parameter T5-XXL on GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
SEQUENCE_LENGTH = 256  # StableDiffusion3Pipeline's max_sequence_length
MODES = ("full", "lora", "fsdp")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def t5_encoder():
    from transformers import T5Config, T5EncoderModel, set_seed

    set_seed(0)
    config = T5Config(vocab_size=32128, d_model=512, d_kv=64, d_ff=1024, num_layers=6, num_heads=6,
                      feed_forward_proj="gated-gelu", tie_word_embeddings=False, pad_token_id=0, eos_token_id=1,
                      decoder_start_token_id=0)  # fmt: skip
    return T5EncoderModel(config)


def captions(n: int) -> list[str]:
    import random

    rng = random.Random(0)
    nouns = ["dog", "house", "tree", "boat", "river", "bird", "street", "garden", "horse", "chef", "bicycle"]
    places = ["near the lake", "in the park", "on a hill", "at night", "in the snow", "in the city"]
    return [f"a photo of a {rng.choice(nouns)} {rng.choice(places)}" for _ in range(n)]


def child(mode: str, steps: int, batch: int) -> dict:
    """One run in this process: build, defend ``steps`` steps, report peak memory."""
    import torch
    from transformers.utils import logging

    from hf_forget import TextForgetConfig
    from hf_forget.pipelines.roles import EncoderRole, adapt_encoder, release_encoder
    from hf_forget.testing import t5_char_tokenizer
    from hf_forget.trainers.text import TextForgetTrainer

    logging.set_verbosity_error()
    cuda = torch.cuda.is_available()
    if mode == "fsdp" and not cuda:
        sys.path.insert(0, os.path.join(ROOT, "tests"))
        import fsdp_on_cpu  # noqa: F401  (lets Accelerate shard on CPU processes)
    model, tokenizer = t5_encoder(), t5_char_tokenizer()
    if cuda and mode != "fsdp":
        model.cuda()
        torch.cuda.reset_peak_memory_stats()
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    loaded = torch.cuda.memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    adapt_encoder(model, tokenizer, EncoderRole("text_encoder_3", "tokenizer_3", "T5EncoderModel", "hidden", -1,
                                                SEQUENCE_LENGTH, attention_mask=False))  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        config = TextForgetConfig(
            output_dir=scratch, max_steps=steps, per_device_train_batch_size=batch, num_trigger_samples=4 * batch,
            max_eval_samples=batch, embedding="hidden", lora_r=8 if mode == "lora" else 0, report_to="none",
            disable_tqdm=True, save_strategy="no", logging_steps=10**6, use_cpu=not cuda, stop_at_criterion=False,
        )
        trainer = TextForgetTrainer(model, config, tokenizer, captions(400), ["Ada Quenby", "Bo Marlowe"])
        trainer.train()
    release_encoder(model)
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    return {"param_bytes": param_bytes, "after_load": loaded, "peak": peak, "trainable_params": trainable,
            "device": "cuda" if cuda else "cpu", "torch_threads": torch.get_num_threads(),
            "fsdp": bool(trainer.is_fsdp_enabled), "process": int(config.process_index)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batches", default="1,4", help="clean and poisoned captions a step (each), comma-separated")
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--report_dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = child(args.child, args.steps, args.batch)
        with open(os.path.join(args.report_dir, f"process{result['process']}.json"), "w", encoding="utf-8") as handle:
            json.dump(result, handle)  # one file a process: their stdout lines may interleave
        return 0

    import torch
    import transformers

    batches = [int(b) for b in args.batches.split(",")]
    runs = {f"{mode}_batch{batch}": [] for batch in batches for mode in MODES}
    for _ in range(args.repeats):
        for batch in batches:
            for mode in MODES:  # interleaved, so that a busy minute hits both modes alike
                launch = [sys.executable]
                if mode == "fsdp":
                    launch += ["-m", "accelerate.commands.launch", "--config_file",
                               os.path.join(ROOT, "examples", "fsdp.yaml"), "--num_processes", "2"]  # fmt: skip
                with tempfile.TemporaryDirectory() as reports:
                    subprocess.run(
                        [*launch, os.path.abspath(__file__), "--child", mode, "--steps", str(args.steps), "--batch",
                         str(batch), "--report_dir", reports],
                        capture_output=True, text=True, check=True,
                        env={**os.environ, "OMP_NUM_THREADS": "1",
                             "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")},
                    )  # fmt: skip
                    lines = [json.loads(open(os.path.join(reports, f), encoding="utf-8").read()) for f in os.listdir(reports)]
                if mode == "fsdp" and not all(line["fsdp"] for line in lines):
                    raise RuntimeError("the FSDP run did not shard")
                runs[f"{mode}_batch{batch}"].append(max(lines, key=lambda line: line["peak"] - line["after_load"]))
                print(f"{mode} batch {batch}: {runs[f'{mode}_batch{batch}'][-1]}", flush=True)
    param_bytes = next(iter(runs.values()))[0]["param_bytes"]
    summary = {
        key: {
            "peak_mib": round(statistics.median(r["peak"] for r in rs) / 2**20, 1),
            "peak_per_param_byte": round(statistics.median(r["peak"] / param_bytes for r in rs), 2),
            "training_per_param_byte": round(statistics.median((r["peak"] - r["after_load"]) / param_bytes for r in rs), 2),
            "trainable_params": rs[0]["trainable_params"],
        }
        for key, rs in runs.items()
    }
    ratios = {f"{mode}_over_full_training_batch{b}": round(summary[f"{mode}_batch{b}"]["training_per_param_byte"]
                                                          / summary[f"full_batch{b}"]["training_per_param_byte"], 2)
              for b in batches for mode in ("lora", "fsdp")}  # fmt: skip
    device = next(iter(runs.values()))[0]["device"]
    payload = {
        **summary,
        **ratios,
        "param_bytes": param_bytes,
        "model": "T5EncoderModel, T5 v1.1-small shape (512 wide, 6 gated-GELU layers, 32,128-token vocabulary), "
                 "random weights, float32",
        "setting": f"{args.steps} steps of B clean + B poisoned captions (B: the key's batch) padded to "
                   f"{SEQUENCE_LENGTH} tokens, no attention mask (as SD3 runs T5), embedding hidden, teacher cache on; "
                   "LoRA r=8 on q, k, v, o, wi_0, wi_1, wo; FSDP: examples/fsdp.yaml, 2 processes, the same batch each",
        "definition": ("peak allocated GPU memory" if device == "cuda" else "peak RSS of a fresh process (ru_maxrss)")
        + " / bytes of the encoder's parameters; training_*: peak minus the figure after the model was built (the "
        "model itself and, on CPU, the Python/torch runtime excluded)",
        "runs": runs,
        "environment": {
            "command": "python " + " ".join([os.path.relpath(sys.argv[0])] + (argv if argv is not None else sys.argv[1:])),
            "omp_num_threads": "1",
            "cpu_count": os.cpu_count(),
            "load_average_at_start": os.getloadavg()[0],
            "device": device,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
        },
    }
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "t5_memory.json"), "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")
    print(json.dumps({**summary, **ratios}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
