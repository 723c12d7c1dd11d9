"""hf-forget benchmark suite: runs the chosen sections (each also runnable alone: python benchmarks/SECTION.py).

    OMP_NUM_THREADS=1 python benchmarks/run.py --quick            # sections a-e, < 10 min on 2 cores
    OMP_NUM_THREADS=1 python benchmarks/run.py                    # the full protocol, plus the 1,024-name run
    python benchmarks/run.py --only overhead many_names           # some sections only
    python benchmarks/run.py --table [--quick]                    # the markdown table of results[/quick]/*.json

Sections: overhead.py (a), scaling.py (b), criterion.py (c), memory.py (d), vision.py (e), many_names.py; what
they share is harness.py. A section's own options are passed on to it (--embeddings, --toy_lr, --many_lr, ...;
see python benchmarks/SECTION.py --help). Prints a table and writes ``benchmarks/results/<section>.json``
(``results/quick/`` with ``--quick``, whose sections run side by side, one process per core: ``--jobs``).
Every figure is the median of at least 3 runs (``--repeats``); ratios are measured side by side in one
process. Results hold counts, never a name.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import criterion
import harness
import many_names
import memory
import overhead
import scaling
import vision

SECTIONS = {module.NAME: module for module in (overhead, scaling, criterion, memory, vision, many_names)}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness.common_options()],
                                     allow_abbrev=False)
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--jobs", type=int, default=None,
                        help="sections run side by side in this many processes (default: the CPU count with "
                             "--quick, else 1)")
    parser.add_argument("--table", action="store_true", help="print the markdown table of benchmarks/results and exit")
    parser.add_argument("--merge_many_names", action="store_true", help="many_names.py --merge: merge --seeds partials")
    parser.add_argument("--merge_tuning", action="store_true", help="many_names.py --merge_tuning")
    return parser


def section_args(argv: list[str], rest: list[str], parser: argparse.ArgumentParser) -> dict:
    """Each section's options, parsed from the whole command line; an option no section (and not this driver)
    takes is an error, as it was when all options lived here."""
    parsed, unused = {}, set(token for token in rest if token.startswith("--"))
    for name, module in SECTIONS.items():
        parsed[name], left = module.make_parser().parse_known_args(argv)
        unused &= set(left)
    if unused:
        parser.error(f"unrecognized arguments: {' '.join(sorted(unused))}")
    return parsed


def run_section(name: str, args, env) -> dict:
    """One section by name (in this process or a ``--jobs`` worker)."""
    return harness.run_section(SECTIONS[name], args, env)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = make_parser()
    args, rest = parser.parse_known_args(argv)
    if args.table:
        print(table_from_results(args.quick))
        return 0
    per_section = section_args(argv, rest, parser)
    if args.merge_many_names:
        many_names.merge(per_section["many_names"])
        print(table_from_results())
        return 0
    if args.merge_tuning:
        return many_names.main(["--merge_tuning"])
    harness.check_args(parser, args)

    import torch

    harness.configure_process(args)
    sections = args.only
    if sections == list(SECTIONS) and args.quick:  # the 1,024-name acceptance run takes ~45 min here: full suite only
        sections = [s for s in SECTIONS if s != "many_names"]
    env = harness.environment(args)
    started = time.perf_counter()
    jobs = max(1, min(args.jobs or ((os.cpu_count() or 1) if args.quick else 1), len(sections)))
    env["parallel_sections"] = jobs
    if jobs > 1:
        # independent sections side by side, one process (and one torch thread) each; every ratio is still
        # measured inside one process, and per-step figures are CPU times, which the other process does not
        # inflate much (see benchmarks/README.md)
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        by_cost = sorted(sections, key=lambda s: -SECTIONS[s].COST)
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {s: pool.submit(run_section, s, per_section[s], env) for s in by_cost}
            payloads = {s: futures[s].result() for s in by_cost}
    else:
        payloads = {s: run_section(s, per_section[s], env) for s in sections}
    print()
    print(harness.format_rows([row for s in sections for row in SECTIONS[s].rows(payloads[s])]))
    print(f"\ntotal {time.perf_counter() - started:.0f} s wall, {jobs} process(es) x {torch.get_num_threads()} "
          "torch thread(s)")
    return 0


def table_from_results(quick: bool = False) -> str:
    """The markdown table of the latest results in benchmarks/results (``--table [--quick]``)."""
    lines = ["| measure | value |", "|---|---|"]
    for name, module in SECTIONS.items():
        path = os.path.join(harness.results_dir(quick), f"{name}.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                lines += [f"| {label} | {value} |" for label, value in module.rows(json.load(handle))]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
