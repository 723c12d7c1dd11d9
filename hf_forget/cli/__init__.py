"""`hf-forget` command line: parse, call the library, map errors.

Each subcommand lives in ``hf_forget/cli/<name>.py`` and defines ``register(subparsers)`` (adding
its parser with ``func=run``) and ``run(args) -> int``. A command whose options come from dataclasses
(TrainingArguments) may instead define ``main(argv) -> int`` and ``HELP``; it then parses its own argv.
A :class:`ForgetInputError` becomes one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging as std_logging
import importlib
import sys

from transformers.utils import logging

from .. import __version__
from ..errors import ForgetInputError, QualityGateError

COMMANDS = ["text", "push", "vision", "forget", "audit", "demo"]

EXIT_USAGE = 2
EXIT_GATE = 3


def _modules():
    return {name.replace("_", "-"): importlib.import_module(f"hf_forget.cli.{name}") for name in COMMANDS}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    modules = _modules()
    parser = argparse.ArgumentParser(prog="hf-forget", description="Make CLIP encoders forget people.")
    parser.add_argument("--version", action="version", version=f"hf-forget {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in modules.items():
        if hasattr(module, "register"):
            module.register(subparsers)
        else:
            subparsers.add_parser(name, help=module.HELP, add_help=False)
    if "-v" in argv:
        argv.remove("-v")
        logging.set_verbosity_info()
        own = std_logging.getLogger("hf_forget")  # our modules log under their own names, not "transformers"
        own.setLevel(std_logging.INFO)
        own.addHandler(std_logging.StreamHandler())
    else:
        logging.set_verbosity_warning()
        logging.disable_progress_bar()  # weight-loading bars; training shows its own (--disable_tqdm)
    try:
        if argv and argv[0] in modules and hasattr(modules[argv[0]], "main"):
            return modules[argv[0]].main(argv[1:])
        args = parser.parse_args(argv)
        return args.func(args)
    except ForgetInputError as error:
        print(f"hf-forget: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except QualityGateError as error:
        print(f"hf-forget: quality gate not met: {error}", file=sys.stderr)
        return EXIT_GATE


