"""`hf-forget push`: publish a defended model or pipeline with its model card, in one Hub commit."""

from __future__ import annotations

import argparse
import sys

from ..config import parse_names
from ._parsing import CommandParser

HELP = "Publish a defended model (or pipeline) with its model card in one Hub commit, after a leak scan."


def make_parser(prog: str = "hf-forget push") -> CommandParser:
    parser = CommandParser(
        prog=prog,
        description=HELP
        + " Every staged file is scanned for the forgotten names first; run arguments are never published.",
    )
    parser.add_argument("path", help="Output directory of an hf-forget run (holds forget_report.json).")
    parser.add_argument("--repo_id", required=True, help="Target Hub repository, e.g. me/clip-defended.")
    parser.add_argument(
        "--names",
        action="append",
        required=True,
        help="The forgotten names, for the leak scan only (never stored): 'a,b' or @FILE with one name a line.",
    )
    parser.add_argument(
        "--local_dir",
        help="Write the tree that would be uploaded into this new (or empty) directory, outside the run and the "
        "report's folder; no network.",
    )
    parser.add_argument(
        "--report",
        help="Evaluation report.json of this run to publish with its report.md and chart (both in its folder).",
    )
    parser.add_argument("--private", action="store_true", help="Create the repository as private.")
    parser.add_argument("--create_pr", action="store_true", help="Open a pull request instead of committing to main.")
    parser.add_argument("--revision", help="Branch to commit to.")
    parser.add_argument("--token", help="Hub token (default: the logged-in one).")
    parser.add_argument("--base_model", help="Hub id of the base model, for the card (default: from the report).")
    parser.add_argument("--license", help="License identifier for the card metadata, e.g. mit.")
    parser.add_argument("--force", action="store_true", help="Publish even if the run did not pass its quality gate.")
    for section in ("idia", "similarity", "zero_shot"):
        parser.add_argument(
            f"--{section}_dataset",
            help=f"Data set behind the {section} results, if the report lacks it; a Hub id (owner/name) also puts "
            "this model's results into the card's model-index.",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(make_parser().parse_args_and_config(argv))


def run(args: argparse.Namespace) -> int:
    from ..errors import ForgetInputError  # noqa: PLC0415
    from ..publish.pusher import push_defended  # noqa: PLC0415 - keep `hf-forget --help` fast

    try:
        names = parse_names(args.names)
    except UnicodeDecodeError:
        raise ForgetInputError("the names file is not UTF-8 text: save it as UTF-8, one name a line.") from None

    datasets = {s: getattr(args, f"{s}_dataset") for s in ("idia", "similarity", "zero_shot") if getattr(args, f"{s}_dataset")}
    result = push_defended(
        args.path,
        args.repo_id,
        private=args.private,
        create_pr=args.create_pr,
        revision=args.revision,
        token=args.token,
        names=names,
        local_dir=args.local_dir,
        force=args.force,
        report=args.report,
        datasets=datasets or None,
        license=args.license,
        base_model=args.base_model,
    )
    where = result if args.local_dir else getattr(result, "pr_url", None) or getattr(result, "commit_url", result)
    print(f"{'wrote' if args.local_dir else 'pushed'} {args.repo_id}: {where}", file=sys.stdout)
    return 0
