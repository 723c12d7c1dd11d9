"""`hf-forget demo`: the whole method on the built-in toy world, offline, in a few minutes on a CPU."""

from __future__ import annotations

import argparse
import sys

from ._parsing import CommandParser

HELP = "Audit the shipped toy CLIP, make it forget 8 identities, audit again and write a report (offline)."


def make_parser(prog: str = "hf-forget demo") -> CommandParser:
    parser = CommandParser(
        prog=prog,
        description=HELP + " Writes DIR/report.json, DIR/report.md, DIR/report.png and the defended CLIPModel in "
        "DIR/model/. The forgotten people are drawn at random (--forget_seed) among the seen people the audit "
        "recognises; the attack suite runs before and after.",
    )
    parser.add_argument("--output_dir", required=True, help="New or empty directory for the report.")
    parser.add_argument(
        "--modality",
        choices=["text", "vision", "both"],
        default="text",
        help="Encoder(s) to defend: the text encoder (default), the vision encoder, or both.",
    )
    parser.add_argument("--seed", type=int, default=0, help="Training seed; also picks the audit's pictures and filler names (default 0).")
    parser.add_argument(
        "--forget_seed", type=int, default=None,
        help="Draws who is forgotten among the recognised seen people (default: --seed).",
    )
    parser.add_argument("--overwrite_output_dir", action="store_true", help="Replace a non-empty --output_dir.")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(make_parser().parse_args_and_config(argv))


def run(args: argparse.Namespace) -> int:
    from ..toyworld.demo import DemoSettings, run_demo  # noqa: PLC0415 - keep `hf-forget --help` fast
    from ..evaluation.report import render_markdown  # noqa: PLC0415

    forget_seed = args.seed if args.forget_seed is None else args.forget_seed
    command = (
        f"hf-forget demo --output_dir {args.output_dir} --modality {args.modality} --seed {args.seed} "
        f"--forget_seed {forget_seed}"
    )
    settings = DemoSettings(seed=args.seed, forget_seed=forget_seed)
    report = run_demo(args.output_dir, args.modality, settings, overwrite=args.overwrite_output_dir, command=command)
    print(render_markdown(report))
    print(f"report written to {args.output_dir}", file=sys.stderr)
    return 0
