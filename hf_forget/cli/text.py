"""`hf-forget text`: forget names in a CLIP text encoder (or a diffusers pipeline's text encoders).

The same command runs as ``python examples/forget_text.py ...``, ``accelerate launch examples/forget_text.py ...``
and ``accelerate launch -m hf_forget.cli text ...``. Its stdout is one JSON line, the run's summary.
"""

from __future__ import annotations

from ..api import TextScriptArguments, run_text
from ..config import TextForgetConfig
from ..errors import QualityGateError
from ._output import print_summary, stdout_to_stderr
from ._parsing import DataclassArgumentParser

HELP = "Forget names in a CLIP text encoder (or a diffusers pipeline's text encoders)."
DESCRIPTION = HELP + " Accepts every TrainingArguments option (--max_steps, --learning_rate, ...)."
USAGE = "%(prog)s [-h] [--config FILE] --output_dir DIR [--option VALUE ...]"
SUMMARY_KEYS = ("sim_backdoor", "sim_clean", "sim_targets", "steps")


def make_parser(prog: str = "hf-forget text") -> DataclassArgumentParser:
    parser = DataclassArgumentParser(
        (TextScriptArguments, TextForgetConfig), prog=prog, description=DESCRIPTION, usage=USAGE
    )
    parser.require("output_dir")
    return parser


def main(argv: list[str] | None = None) -> int:
    script_args, config = make_parser().parse_args_and_config(argv)
    return run(script_args, config)


def run(script_args: TextScriptArguments, config: TextForgetConfig) -> int:
    """Train, print the summary (main process only), raise if the quality gate is not met."""
    with stdout_to_stderr():
        result = run_text(script_args, config)
    if config.process_index == 0:
        summary = {k: v for k, v in result.report.items() if k in SUMMARY_KEYS}
        print_summary({"output_dir": result.output_dir, **summary, "passed": result.passed})
    if not result.passed:
        raise QualityGateError(
            f"held-out metrics below the gate ({result.report['gate']}); the output is marked as not passing."
        )
    return 0
