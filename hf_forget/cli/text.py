"""`hf-forget text`: forget names in a CLIP text encoder (or a diffusers pipeline's text encoders)."""

from __future__ import annotations

import json
import sys

from transformers import HfArgumentParser

from ..api import TextScriptArguments, run_text
from ..config import TextForgetConfig
from ..errors import ForgetInputError, QualityGateError

HELP = "Forget names in a CLIP text encoder (TrainingArguments accepted: --max_steps, --learning_rate, ...)."


def parser() -> HfArgumentParser:
    return HfArgumentParser((TextScriptArguments, TextForgetConfig), prog="hf-forget text", description=HELP)


def parse(argv: list[str]) -> tuple[TextScriptArguments, TextForgetConfig]:
    """The argument set shared by `hf-forget text` and `examples/forget_text.py`."""
    if not any(arg == "--output_dir" or arg.startswith("--output_dir=") for arg in argv) and not (
        {"-h", "--help"} & set(argv)
    ):
        raise ForgetInputError("pass --output_dir: where the defended checkpoint is written.")
    script_args, config = parser().parse_args_into_dataclasses(args=argv)
    return script_args, config


def main(argv: list[str]) -> int:
    script_args, config = parse(argv)
    result = run_text(script_args, config)
    if config.process_index == 0:
        summary = {k: v for k, v in result.report.items() if k in ("sim_backdoor", "sim_clean", "sim_targets", "steps")}
        print(json.dumps({"output_dir": result.output_dir, **summary, "passed": result.passed}), file=sys.stdout)
    if not result.passed:
        raise QualityGateError(
            f"held-out metrics below the gate ({result.report['gate']}); the output is marked as not passing."
        )
    return 0
