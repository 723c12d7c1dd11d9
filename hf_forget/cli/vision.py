"""`hf-forget vision`: forget faces in a CLIP vision encoder (or the vision tower of a CLIPModel).

The same command runs as ``python examples/forget_faces.py ...``, ``accelerate launch examples/forget_faces.py ...``
and ``accelerate launch -m hf_forget.cli vision ...``. Its stdout is one JSON line, the run's summary.
"""

from __future__ import annotations

from ..config import VisionForgetConfig
from ..errors import QualityGateError
from ..vision_api import VisionScriptArguments, run_vision
from ._output import print_summary, stdout_to_stderr
from ._parsing import DataclassArgumentParser

HELP = "Forget faces in a CLIP vision encoder (or the vision tower of a CLIPModel)."
DESCRIPTION = HELP + " Accepts every TrainingArguments option (--max_steps, --learning_rate, ...)."
USAGE = "%(prog)s [-h] [--config FILE] --output_dir DIR [--option VALUE ...]"
SUMMARY_KEYS = ("sim_backdoor", "sim_backdoor_worst", "sim_backdoor_before", "sim_clean", "sim_targets", "steps")


def make_parser(prog: str = "hf-forget vision") -> DataclassArgumentParser:
    parser = DataclassArgumentParser(
        (VisionScriptArguments, VisionForgetConfig), prog=prog, description=DESCRIPTION, usage=USAGE
    )
    parser.require("output_dir")
    return parser


def main(argv: list[str] | None = None) -> int:
    script_args, config = make_parser().parse_args_and_config(argv)
    return run(script_args, config)


def run(script_args: VisionScriptArguments, config: VisionForgetConfig) -> int:
    """Train, print the summary (main process only), raise if the quality gate is not met."""
    with stdout_to_stderr():
        result = run_vision(script_args, config)
    if config.process_index == 0:
        summary = {k: v for k, v in result.report.items() if k in SUMMARY_KEYS}
        print_summary({"output_dir": result.output_dir, **summary, "passed": result.passed})
    if not result.passed:
        raise QualityGateError(
            f"held-out metrics below the gate ({result.report['gate']}); the output is marked as not passing."
        )
    return 0
