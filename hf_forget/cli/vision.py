"""`hf-forget vision`: forget faces in a CLIP vision encoder (or the vision tower of a CLIPModel)."""

from __future__ import annotations

import json
import sys

from transformers import HfArgumentParser

from ..config import VisionForgetConfig
from ..errors import ForgetInputError, QualityGateError
from ..vision_api import VisionScriptArguments, run_vision

HELP = "Forget faces in a CLIP vision encoder (TrainingArguments accepted: --max_steps, --learning_rate, ...)."


def parser() -> HfArgumentParser:
    return HfArgumentParser((VisionScriptArguments, VisionForgetConfig), prog="hf-forget vision", description=HELP)


def require_output_dir(argv: list[str]) -> None:
    if not any(arg == "--output_dir" or arg.startswith("--output_dir=") for arg in argv) and not (
        {"-h", "--help"} & set(argv)
    ):
        raise ForgetInputError("pass --output_dir: where the defended checkpoint is written.")


def parse(argv: list[str]) -> tuple[VisionScriptArguments, VisionForgetConfig]:
    """The argument set shared by `hf-forget vision` and `examples/forget_faces.py`."""
    require_output_dir(argv)
    script_args, config = parser().parse_args_into_dataclasses(args=argv)
    return script_args, config


def summarize(result) -> None:
    keys = ("sim_backdoor", "sim_backdoor_worst", "sim_backdoor_before", "sim_clean", "sim_targets", "steps")
    summary = {k: v for k, v in result.report.items() if k in keys}
    print(json.dumps({"output_dir": result.output_dir, **summary, "passed": result.passed}), file=sys.stdout)


def main(argv: list[str]) -> int:
    script_args, config = parse(argv)
    result = run_vision(script_args, config)
    if config.process_index == 0:
        summarize(result)
    if not result.passed:
        raise QualityGateError(
            f"held-out metrics below the gate ({result.report['gate']}); the output is marked as not passing."
        )
    return 0
