"""`hf-forget demo`: the whole method on the built-in toy world, offline, in a few minutes on a CPU."""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument(
        "--recipe", choices=["ours", "paper"], default="ours",
        help="ours (default): per-name counterfactual targets, clean captions naming unknown people, per-person "
        "face targets; paper: every name onto 'a person', every face onto the mean face (same suite, same scale).",
    )
    parser.add_argument(
        "--settings", default=None,
        help="JSON object of DemoSettings fields to change (hf_forget.toyworld.demo.DemoSettings), e.g. "
        "'{\"text_steps\": 400}'; for tuning, applied over the recipe's settings.",
    )
    parser.add_argument("--overwrite_output_dir", action="store_true", help="Replace a non-empty --output_dir.")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(make_parser().parse_args_and_config(argv))


def parse_settings(text: str | None) -> dict:
    """``--settings``: a JSON object whose keys are DemoSettings fields (seed and forget_seed have options)."""
    from ..errors import ForgetInputError  # noqa: PLC0415
    from ..toyworld.demo import DemoSettings  # noqa: PLC0415

    if not text:
        return {}
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise ForgetInputError(f"--settings is not valid JSON ({error.msg}): pass e.g. '{{\"text_steps\": 400}}'.") from None
    if not isinstance(values, dict):
        raise ForgetInputError("--settings must be a JSON object of DemoSettings fields.")
    known = set(DemoSettings.__dataclass_fields__) - {"seed", "forget_seed", "recipe"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ForgetInputError(f"--settings: unknown field {unknown[0]!r}; known: {', '.join(sorted(known))}.")
    return values


def run(args: argparse.Namespace) -> int:
    from ..toyworld.demo import run_demo, settings_for_recipe  # noqa: PLC0415 - keep `hf-forget --help` fast
    from ..evaluation.report import render_markdown  # noqa: PLC0415

    forget_seed = args.seed if args.forget_seed is None else args.forget_seed
    command = (
        f"hf-forget demo --output_dir {args.output_dir} --modality {args.modality} --seed {args.seed} "
        f"--forget_seed {forget_seed} --recipe {args.recipe}"
    )
    overrides = parse_settings(args.settings)
    if overrides:
        command += f" --settings '{json.dumps(overrides, sort_keys=True)}'"
    settings = settings_for_recipe(args.recipe, **overrides, seed=args.seed, forget_seed=forget_seed)
    report = run_demo(args.output_dir, args.modality, settings, overwrite=args.overwrite_output_dir, command=command)
    print(render_markdown(report))
    print(f"report written to {args.output_dir}", file=sys.stderr)
    return 0
