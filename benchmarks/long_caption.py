"""A captions file of 1 MB lines: a text-forgetting run stays bounded in time and memory (issue 26).

Before captions were cut to the model's context, one 800 KB caption line took 587 s and ~5 GB at
64 trigger samples (90 KB: 29 s, 1.0 GB), growing with ``num_trigger_samples``: every sample placed a name in
the whole line, matched the names over it and tokenized it. Now each caption is cut to the context (a word
is at least one token) when it is read, before any per-sample work.

Each run is a fresh process: a tiny CLIP text encoder (hf_forget.testing, 77-token context), one training
step, ``num_trigger_samples`` of 64 and 4,096 (the default), on three caption files side by side: ``long``,
four distinct 1 MB lines (every sample comes from a 1 MB line); ``context``, the same four lines cut to 77
words (what the model can read of them: the bounded cost); ``short``, cut to 12 words (typical captions).
Reported: the medians over ``--repeats`` runs (the kinds interleaved, the order rotating) of wall and CPU
seconds of the run (model load, captions, triggers, teacher cache, one step, evaluation; imports excluded),
the process's peak RSS, and the ratios to ``context``: a 1 MB line costs what its first 77 words cost, plus
reading the file.

    OMP_NUM_THREADS=1 python benchmarks/long_caption.py            # writes benchmarks/results/long_caption.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULT = os.path.join(HERE, "results", "long_caption.json")
LINE_BYTES = 1_000_000
KINDS = {"long": None, "context": 77, "short": 12}  # words kept of each 1 MB line (None: all)


def write_inputs(folder: str) -> dict[str, str]:
    """The tiny model and the two caption files in ``folder``."""
    from hf_forget.testing import tiny_clip_text_model

    model, tokenizer = tiny_clip_text_model()
    model.save_pretrained(os.path.join(folder, "model"))
    tokenizer.save_pretrained(os.path.join(folder, "model"))
    nouns = ["dog", "cat", "house", "tree", "car", "boat", "river", "mountain", "bird", "table", "street", "garden"]
    lines = []
    for line_index in range(4):
        words, size = [], 0
        while size < LINE_BYTES:
            word = f"{nouns[(len(words) * 7 + line_index) % len(nouns)]}{len(words) % 97}"
            words.append(word)
            size += len(word) + 1
        lines.append(" ".join(words))
    paths = {kind: os.path.join(folder, f"{kind}.txt") for kind in KINDS}
    for kind, words in KINDS.items():
        with open(paths[kind], "w", encoding="utf-8") as handle:
            handle.write("\n".join(line if words is None else " ".join(line.split()[:words]) for line in lines) + "\n")
    return {"model": os.path.join(folder, "model"), **paths}


def child(model: str, captions: str, samples: int, work: str) -> None:
    """One run, in this process: print its figures as one JSON line."""
    import resource

    import torch

    from hf_forget import TextForgetConfig, forget_text

    torch.set_num_threads(1)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    wall, cpu = time.perf_counter(), time.process_time()
    config = TextForgetConfig(output_dir=work, max_steps=1, per_device_train_batch_size=8, num_trigger_samples=samples,
                              max_eval_samples=8, disable_tqdm=True, report_to="none", use_cpu=True)  # fmt: skip
    forget_text(model, ["Jane Doe"], captions, config=config)
    print(json.dumps({
        "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_before_mib": rss_before / 2**20,
    }))  # fmt: skip


def run_once(inputs: dict, kind: str, samples: int) -> dict:
    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        proc = subprocess.run(
            [sys.executable, __file__, "--child", inputs["model"], inputs[kind], str(samples), work],
            capture_output=True, text=True, env=env, check=True,
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, nargs="+", default=[64, 4096])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model, captions, samples, work = args.child
        child(model, captions, int(samples), work)
        return
    import hf_forget
    import torch
    import transformers

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        inputs = write_inputs(folder)
        sizes = {kind: os.path.getsize(inputs[kind]) for kind in KINDS}
        for samples in args.samples:
            runs = {kind: [] for kind in KINDS}
            order = list(KINDS)
            for repeat in range(args.repeats):
                for kind in order[repeat % len(order):] + order[: repeat % len(order)]:
                    runs[kind].append(run_once(inputs, kind, samples))
                    print(samples, kind, runs[kind][-1], file=sys.stderr, flush=True)
            median = {kind: {key: round(statistics.median(r[key] for r in runs[kind]), 2) for key in runs[kind][0]}
                      for kind in runs}  # fmt: skip
            results[str(samples)] = {
                **median,
                "ratio_cpu_long_over_context": round(median["long"]["cpu_s"] / median["context"]["cpu_s"], 2),
                "ratio_wall_long_over_context": round(median["long"]["wall_s"] / median["context"]["wall_s"], 2),
                "ratio_peak_rss_long_over_context": round(median["long"]["peak_rss_mib"] / median["context"]["peak_rss_mib"], 2),
                "runs": runs,
            }  # fmt: skip
    report = {
        "what": "forget_text, one step, tiny CLIP text encoder (77-token context), on 4 distinct 1 MB caption lines "
                "('long'), the same lines cut to 77 words ('context') and to 12 words ('short'), side by side; "
                "medians of fresh processes",
        "files_bytes": sizes,
        "num_trigger_samples": results,
        "before_fix_reported_in_issue_26": "one 800 KB line: 587 s and ~5 GB at 64 samples (90 KB: 29 s, 1.0 GB)",
        "environment": {
            "command": "OMP_NUM_THREADS=1 python benchmarks/long_caption.py " + " ".join(sys.argv[1:]),
            "repeats": args.repeats, "torch_threads": 1, "load_average": os.getloadavg(), "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__, "hf_forget": hf_forget.__version__,
        },  # fmt: skip
    }
    os.makedirs(os.path.dirname(RESULT), exist_ok=True)
    with open(RESULT, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
        handle.write("\n")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "runs"} for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
