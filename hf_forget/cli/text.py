"""`hf-forget text`: forget names in a CLIP text encoder (or a diffusers pipeline's text encoders).

The same command runs as ``python examples/forget_text.py ...``, ``accelerate launch examples/forget_text.py ...``
and ``accelerate launch -m hf_forget.cli text ...``. Its stdout is one JSON line, the run's summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import TextForgetConfig, parse_names
from ..errors import ForgetInputError, QualityGateError
from ..validation import check_name_files_outside
from ._output import print_summary, stdout_to_stderr
from ._parsing import DataclassArgumentParser

HELP = "Forget names in a CLIP text encoder (or a diffusers pipeline's text encoders)."
DESCRIPTION = HELP + " Accepts every TrainingArguments option (--max_steps, --learning_rate, ...)."
USAGE = "%(prog)s [-h] [--config FILE] --output_dir DIR --names NAMES [--option VALUE ...]"
SUMMARY_KEYS = ("sim_backdoor", "sim_clean", "sim_targets", "steps")


@dataclass
class NamesArguments:
    """Who to forget: data (personal data), never a setting."""

    names: list[str] = field(
        default_factory=list,
        metadata={"help": "Names to forget: comma-separated, or @FILE with one name a line (taken whole: a name "
                  "with a comma, such as 'Jon Q. Public, Jr.', goes in a file). Repeat to add. Never written anywhere."},
    )
    aliases: list[str] = field(
        default_factory=list,
        metadata={"help": "More variants to forget with the names (nicknames, spellings): comma-separated or @FILE."},
    )


@dataclass
class TextScriptArguments(NamesArguments):
    """What to forget and where: the data of `hf-forget text` (the settings are a [`TextForgetConfig`])."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "CLIP text encoder or CLIPModel: a local directory or a Hub id."}
    )
    tokenizer_name_or_path: str | None = field(default=None, metadata={"help": "Tokenizer, if not stored with the model."})
    pipeline: str | None = field(
        default=None, metadata={"help": "A diffusers pipeline directory whose text encoder(s) to defend."}
    )
    captions: str | None = field(
        default=None,
        metadata={"help": "Generic captions: a UTF-8 text file (one a line), a .csv/.tsv/.json/.jsonl/.parquet file "
                  "with a --caption_column (any of them may be .gz), a saved dataset directory or a dataset name."},
    )
    caption_column: str = field(default="text", metadata={"help": "Caption column of a dataset."})
    caption_split: str = field(default="train", metadata={"help": "Split of a dataset."})
    trigger_captions: str | None = field(
        default=None,
        metadata={"help": "Captions that carry the names instead of --captions (which then only give the clean "
                  "samples), e.g. short captions about a person; same formats as --captions."},
    )


def make_parser(prog: str = "hf-forget text") -> DataclassArgumentParser:
    parser = DataclassArgumentParser(
        (TextScriptArguments, TextForgetConfig), prog=prog, description=DESCRIPTION, usage=USAGE
    )
    parser.require("output_dir")
    return parser


def main(argv: list[str] | None = None) -> int:
    script_args, config = make_parser().parse_args_and_config(argv)
    return run(script_args, config)


def names_of(script_args) -> tuple[list[str], list[str]]:
    """The ``--names`` and ``--aliases`` of a command, expanded (``@FILE``, comma lists) and checked."""
    names = parse_names(script_args.names)
    if not names:
        raise ForgetInputError("no names to forget: pass --names (comma-separated, or @FILE with one name a line).")
    return names, parse_names(script_args.aliases)


def run(script_args: TextScriptArguments, config: TextForgetConfig) -> int:
    """Train (the pipeline's encoders or the encoder), publish with ``--push_to_hub``, print the summary."""
    names, aliases = names_of(script_args)
    if not script_args.model_name_or_path and not script_args.pipeline:
        raise ForgetInputError("pass --model_name_or_path (a CLIP text encoder) or --pipeline (a diffusers pipeline).")
    if not script_args.captions:
        raise ForgetInputError("pass --captions: a text file with one generic caption a line, or a dataset.")
    check_push(config)
    check_name_files_outside(config.output_dir, script_args.names + script_args.aliases, config.overwrite_output_dir)
    with stdout_to_stderr():
        if script_args.pipeline:
            from ..pipelines import forget_pipeline

            result = forget_pipeline(
                script_args.pipeline, names, script_args.captions, output_dir=config.output_dir, config=config,
                aliases=aliases, trigger_captions=script_args.trigger_captions, caption_column=script_args.caption_column,
            )
        else:
            from ..forget import forget_text

            result = forget_text(
                script_args.model_name_or_path, names, script_args.captions, aliases=aliases,
                tokenizer=script_args.tokenizer_name_or_path, output_dir=config.output_dir, config=config,
                trigger_captions=script_args.trigger_captions, caption_column=script_args.caption_column,
                caption_split=script_args.caption_split, resume_from_checkpoint=config.resume_from_checkpoint,
            )
        publish_if_asked(result, config, names + aliases)
    return finish(result, config, SUMMARY_KEYS)


def check_push(config) -> None:
    if config.push_to_hub and not config.hub_model_id:
        raise ForgetInputError("--push_to_hub needs --hub_model_id (the Hub repository, e.g. me/clip-defended).")


def publish_if_asked(result, config, names: list[str]) -> None:
    """``--push_to_hub``: publish the written output as `hf-forget push` does (leak scan, evaluation card)."""
    if not config.push_to_hub or config.process_index != 0 or not result.passed:
        return
    from .. import publish

    publish.push_defended(result.output_dir, config.hub_model_id, names=names, token=config.hub_token,
                          private=bool(config.hub_private_repo))


def finish(result, config, keys: tuple[str, ...]) -> int:
    """Print the summary (main process only); raise if the quality gate is not met."""
    if config.process_index == 0:
        summary = {k: v for k, v in result.report.items() if k in keys}
        print_summary({"output_dir": result.output_dir, **summary, "passed": result.passed})
    if not result.passed:
        raise QualityGateError(
            f"held-out metrics below the gate ({result.report['gate']}); the output is marked as not passing."
        )
    return 0
