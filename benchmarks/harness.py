"""What the benchmark sections share: timers, the environment record, results files, models, names, captions,
the one place a text forgetting trainer is built (:func:`make_text_trainer`) and the one place ``forget_text``
is called (:func:`run_forget_text`), the step timer, and the command-line plumbing of a section.

Imported as a sibling module (``from harness import ...``): the sections run as ``python benchmarks/NAME.py``,
so ``benchmarks/`` is on the path. Nothing here changes library code: a benchmark measures the library as a
user gets it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


# ------------------------------------------------------------------------------------------------ timing
def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def elapsed(started: tuple[float, float], ended: tuple[float, float] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) from ``started`` to ``ended`` (default: now)."""
    ended = ended or clock()
    return ended[0] - started[0], ended[1] - started[1]


def median(values):
    return statistics.median(values)


def step_timer():
    """A callback recording the (wall, CPU) seconds between consecutive optimizer steps' ends: a whole step,
    data loading (e.g. face pasting) included. Medians keep the occasional criterion check out. ``ended`` is
    the ``clock()`` at the end of training (before any final evaluation)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.wall, self.cpu, self._last, self.ended = [], [], None, None

        def on_train_begin(self, args, state, control, **kwargs):
            self._last = clock()

        def on_step_end(self, args, state, control, **kwargs):
            if self._last is not None:
                wall, cpu = elapsed(self._last)
                self.wall.append(wall)
                self.cpu.append(cpu)
            self._last = clock()

        def on_train_end(self, args, state, control, **kwargs):
            self.ended = clock()

    return StepTimer()


# ------------------------------------------------------------------------------------------------ results
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


def format_rows(rows: list[tuple[str, str]]) -> str:
    return "\n".join([f"{'measure':58s} value"] + [f"{label:58s} {value}" for label, value in rows])


# ------------------------------------------------------------------------------------------------ models, data
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


def seen_names() -> list[str]:
    """The toy world's 32 seen identities (synthetic names), world order."""
    from hf_forget.toyworld import ToyWorld

    return [p.name for p in ToyWorld(seed=0).seen_identities]


def toy_names(count: int, seed: int = 7) -> list[str]:
    """``count`` distinct names: the toy world's 32 seen identities first, then generated filler names."""
    from hf_forget.evaluation.idia import generate_filler_names
    from hf_forget.toyworld import ToyWorld

    seen = seen_names()
    if count <= len(seen):
        return seen[:count]
    return seen + generate_filler_names(count - len(seen), exclude=ToyWorld(seed=0).names, seed=seed)


def toy_captions(n: int = 3000, seed: int = 1) -> list[str]:
    from hf_forget.toyworld import ToyWorld

    return ToyWorld(seed=0).generic_captions(n, seed=seed)


# ------------------------------------------------------------------------------------------------ the library
def quiet_settings() -> dict:
    """Training arguments of every benchmark run: no reporting, no progress bar, no logging, no checkpoints, the
    CPU unless a GPU is there."""
    import torch

    return dict(report_to="none", disable_tqdm=True, use_cpu=not torch.cuda.is_available(), logging_steps=10**6,
                save_strategy="no")


def text_config(output_dir: str, **settings):
    """A ``TextForgetConfig`` for a benchmark run (:func:`quiet_settings`, overridden by ``settings``). No names:
    they are a data argument of :func:`make_text_trainer` / :func:`run_forget_text`."""
    from hf_forget.config import TextForgetConfig

    return TextForgetConfig(output_dir=output_dir, **{**quiet_settings(), **settings})


def make_text_trainer(model, tokenizer, names, captions, eval_captions, config, trigger_captions=None, callbacks=None):
    """THE one place the benchmarks build a ``TextForgetTrainer`` (seeded like ``forget_text``)."""
    from transformers import set_seed

    from hf_forget.trainers.text import TextForgetTrainer

    set_seed(config.seed)
    return TextForgetTrainer(model, config, tokenizer, captions, list(names), eval_captions=eval_captions,
                             callbacks=callbacks, trigger_captions=trigger_captions)


def run_forget_text(model, tokenizer, names, captions, eval_captions, config, trigger_captions=None, callbacks=None):
    """THE one place the benchmarks call ``forget_text`` (``model`` is trained in place; nothing is written)."""
    from hf_forget import forget_text

    return forget_text(model, names, captions, tokenizer=tokenizer, eval_captions=eval_captions, config=config,
                       callbacks=callbacks, trigger_captions=trigger_captions)


# ------------------------------------------------------------------------------------------------ command line
def common_options() -> argparse.ArgumentParser:
    """The options every section takes (a parent parser)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--quick", action="store_true",
                        help="smaller runs, written to results/quick/ (the suite in < 10 min on 2 cores)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (>= 3: figures are medians)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: OMP_NUM_THREADS or 1)")
    return parser


def section_parser(module) -> argparse.ArgumentParser:
    """A section's parser: its docstring's first line, the common options (its own ones are added by it)."""
    return argparse.ArgumentParser(description=module.__doc__.splitlines()[0], parents=[common_options()],
                                   allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="\n".join(module.__doc__.splitlines()[1:]))


def add_toy_lr(parser: argparse.ArgumentParser) -> None:
    """``--toy_lr``, an option of both scaling and criterion (run.py passes it to both)."""
    # sections b and c had shared --many_lr until 22f0032 changed its default (and so their figures) by mistake
    parser.add_argument("--toy_lr", type=float, default=5e-4, help="learning rate of the toy-text runs of b. and c.")


def check_args(parser: argparse.ArgumentParser, args) -> None:
    if args.repeats < 3:
        parser.error("--repeats must be at least 3 (figures are medians of >= 3 runs)")


def configure_process(args) -> None:
    """Quiet transformers and pin the torch thread count (every process that runs a section)."""
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads or int(os.environ.get("OMP_NUM_THREADS", "1")))


def run_section(module, args, env) -> dict:
    """One section in this process: run it, print its wall time, return its payload."""
    configure_process(args)
    mark = time.perf_counter()
    print(f"== {module.NAME}", flush=True)
    payload = module.run(args, env)
    print(f"== {module.NAME} done ({time.perf_counter() - mark:.0f} s)", flush=True)
    return payload


def section_main(module, argv=None) -> int:
    """``python benchmarks/SECTION.py [options]``: parse, run the section, print its table rows."""
    parser = module.make_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    payload = run_section(module, args, environment(args))
    print()
    print(format_rows(module.rows(payload)))
    return 0
