"""`hf-forget` command line: pick the command, set up logging, map errors to exit codes.

Each command is a module ``hf_forget/cli/<name>.py`` with ``make_parser()`` (its parser, built on
:mod:`hf_forget.cli._parsing`: ``--config FILE``, one-line errors, grouped ``--help``) and
``main(argv) -> int``. This module knows the commands by name and one-line help only and imports the one
that runs, so ``hf-forget --help`` and ``--version`` load neither torch nor transformers.

Logs and progress go to stderr (``-v``/``--verbose``: info level); stdout holds the command's result only.
A :class:`~hf_forget.errors.ForgetInputError` (any user mistake: bad value, unknown flag, unknown key in a
config file) becomes one line on stderr and exit code 2, a missed quality gate exit code 3; never a traceback.

    hf-forget text --config text.yaml --max_steps 200 ...
    python -m hf_forget.cli text ...
    accelerate launch -m hf_forget.cli text ...
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import ForgetInputError, QualityGateError

# command name -> one-line help; the module is hf_forget.cli.<name>
COMMANDS = {
    "text": "Forget names in a CLIP text encoder (or a diffusers pipeline's text encoders).",
    "vision": "Forget faces in a CLIP vision encoder (or the vision tower of a CLIPModel).",
    "forget": "Forget people: --modality text (names), vision (faces) or both (one CLIPModel).",
    "audit": "Run the Identity Inference Attack: does a CLIP link these people's names to their faces?",
    "push": "Publish a defended model (or pipeline) with its model card in one Hub commit, after a leak scan.",
    "demo": "Audit the shipped toy CLIP, make it forget 8 identities, audit again and write a report (offline).",
}
VERBOSE_FLAGS = ("-v", "--verbose")

EXIT_USAGE = 2
EXIT_GATE = 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise ForgetInputError(message)


def make_parser() -> argparse.ArgumentParser:
    """The top-level parser: global options and the list of commands (for ``--help``)."""
    parser = _Parser(
        prog="hf-forget",
        description="Make CLIP encoders forget people.",
        usage="hf-forget [-h] [--version] [-v] COMMAND [--config FILE] [OPTIONS ...]",
        epilog="`hf-forget COMMAND --help` lists a command's options; every command reads --config FILE.yaml|json.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"hf-forget {__version__}")
    parser.add_argument(*VERBOSE_FLAGS, action="store_true", help="Log progress (info level) to stderr.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name, help_line in COMMANDS.items():
        commands.add_parser(name, help=help_line, add_help=False)  # listed only: the command parses its own argv
    return parser


def main(argv: list[str] | None = None) -> int:
    """``hf-forget [-v] COMMAND ARGS...``: the console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    at = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), len(argv))
    try:
        options = make_parser().parse_args(argv[:at])  # -h and --version print and exit here
        if at == len(argv):
            raise ForgetInputError(f"pass a command: {', '.join(COMMANDS)} (see hf-forget --help).")
        if argv[at] not in COMMANDS:
            raise ForgetInputError(f"unknown command {argv[at]!r}: choose from {', '.join(COMMANDS)}.")
    except ForgetInputError as error:
        print(f"hf-forget: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return run(argv[at], argv[at + 1 :], verbose=options.verbose)


def run(command: str, argv: list[str], verbose: bool = False) -> int:
    """Run one command on its arguments: what `hf-forget COMMAND ...` and the examples do.

    ``-v``/``--verbose`` may also come among the command's arguments.
    """
    from ._output import configure_logging  # noqa: PLC0415 - imports transformers' logging

    verbose = verbose or any(arg in VERBOSE_FLAGS for arg in argv)
    argv = [arg for arg in argv if arg not in VERBOSE_FLAGS]
    configure_logging(verbose)
    try:
        module = importlib.import_module(f"{__name__}.{command}")
        return module.main(argv)
    except ForgetInputError as error:
        print(f"hf-forget: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except QualityGateError as error:
        print(f"hf-forget: quality gate not met: {error}", file=sys.stderr)
        return EXIT_GATE
