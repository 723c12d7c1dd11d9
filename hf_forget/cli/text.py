"""`hf-forget text`: forget names in a CLIP text encoder (or a diffusers pipeline's text encoders)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from ..config import TextForgetConfig, parse_names
from ..errors import ForgetInputError, QualityGateError

HELP = "Forget names in a CLIP text encoder (TrainingArguments accepted: --max_steps, --learning_rate, ...)."


@dataclass
class TextScriptArguments:
    """What to forget and where: the data of `hf-forget text` (the settings are a [`TextForgetConfig`])."""

    names: list[str] = field(
        default_factory=list,
        metadata={"help": "Names to forget: comma-separated, or @FILE with one name a line. Never written anywhere."},
    )
    aliases: list[str] = field(
        default_factory=list,
        metadata={"help": "More variants to forget with the names (nicknames, spellings): comma-separated or @FILE."},
    )
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "CLIP text encoder or CLIPModel: a local directory or a Hub id."}
    )
    tokenizer_name_or_path: str | None = field(default=None, metadata={"help": "Tokenizer, if not stored with the model."})
    pipeline: str | None = field(
        default=None, metadata={"help": "A diffusers pipeline directory whose text encoder(s) to defend."}
    )
    captions: str | None = field(
        default=None,
        metadata={"help": "Generic captions: a text file (one a line), a saved dataset directory or a dataset name."},
    )
    caption_column: str = field(default="text", metadata={"help": "Caption column of a dataset."})
    caption_split: str = field(default="train", metadata={"help": "Split of a dataset."})
    trigger_captions: str | None = field(
        default=None,
        metadata={"help": "Captions that carry the names instead of --captions (which then only give the clean "
                  "samples), e.g. short captions about a person; same formats as --captions."},
    )


def make_parser() -> HfArgumentParser:
    return HfArgumentParser((TextScriptArguments, TextForgetConfig), prog="hf-forget text", description=HELP)


def require_output_dir(argv: list[str]) -> None:
    if not any(arg == "--output_dir" or arg.startswith("--output_dir=") for arg in argv) and not (
        {"-h", "--help"} & set(argv)
    ):
        raise ForgetInputError("pass --output_dir: where the defended checkpoint is written.")


def names_of(script_args) -> tuple[list[str], list[str]]:
    """The ``--names`` and ``--aliases`` of a command, expanded (``@FILE``, comma lists) and checked."""
    names = parse_names(script_args.names)
    if not names:
        raise ForgetInputError("no names to forget: pass --names (comma-separated, or @FILE with one name a line).")
    return names, parse_names(script_args.aliases)


def run(script_args: TextScriptArguments, config: TextForgetConfig):
    """`hf-forget text` on parsed arguments: the pipeline or the encoder, then `--push_to_hub` if asked."""
    names, aliases = names_of(script_args)
    if not script_args.model_name_or_path and not script_args.pipeline:
        raise ForgetInputError("pass --model_name_or_path (a CLIP text encoder) or --pipeline (a diffusers pipeline).")
    if not script_args.captions:
        raise ForgetInputError("pass --captions: a text file with one generic caption a line, or a dataset.")
    resume = config.resume_from_checkpoint
    if script_args.pipeline:
        from ..pipelines import forget_pipeline

        result = forget_pipeline(script_args.pipeline, names, script_args.captions, output_dir=config.output_dir,
                                 config=config, aliases=aliases, trigger_captions=script_args.trigger_captions,
                                 caption_column=script_args.caption_column)
    else:
        from ..forget import forget_text

        result = forget_text(
            script_args.model_name_or_path, names, script_args.captions, aliases=aliases,
            tokenizer=script_args.tokenizer_name_or_path, output_dir=config.output_dir, config=config,
            trigger_captions=script_args.trigger_captions, caption_column=script_args.caption_column,
            caption_split=script_args.caption_split, resume_from_checkpoint=resume,
        )
    publish_if_asked(result, config, names + aliases)
    return result


def publish_if_asked(result, config, names: list[str]) -> None:
    """``--push_to_hub``: publish the written output through `hf-forget push` (leak scan, evaluation card)."""
    if not config.push_to_hub or config.process_index != 0:
        return
    if not config.hub_model_id:
        raise ForgetInputError("--push_to_hub needs --hub_model_id (the Hub repository, e.g. me/clip-defended).")
    from ..publish import push_defended

    push_defended(result.output_dir, config.hub_model_id, names=names, token=config.hub_token,
                  private=bool(config.hub_private_repo), force=False)


def summarize(result, keys: tuple[str, ...]) -> None:
    """The final JSON summary: the only thing a command writes to stdout."""
    summary = {k: v for k, v in result.report.items() if k in keys}
    print(json.dumps({"output_dir": result.output_dir, **summary, "passed": result.passed}), file=sys.stdout)


def main(argv: list[str]) -> int:
    require_output_dir(argv)
    script_args, config = make_parser().parse_args_into_dataclasses(args=argv)
    result = run(script_args, config)
    if config.process_index == 0:
        summarize(result, ("sim_backdoor", "sim_clean", "sim_targets", "steps"))
    if not result.passed:
        raise QualityGateError(
            f"held-out metrics below the gate ({result.report['gate']}); the output is marked as not passing."
        )
    return 0
