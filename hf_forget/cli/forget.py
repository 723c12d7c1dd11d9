"""`hf-forget forget --modality text|vision|both`: one entry point for every defense.

``text`` and ``vision`` are `hf-forget text` and `hf-forget vision`; ``both`` forgets names in the text
tower and faces in the vision tower of one CLIPModel and writes one full CLIPModel. Its options are those
of `hf-forget vision` (which set the vision run and the run as a whole: seed, device, precision, logging,
checkpoints), the caption source and names, and every setting of the text run prefixed ``--text_``
(``--text_max_steps``, ``--text_identity_residual_weight``, ...; unset ones take `TextForgetConfig`'s defaults).
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field

from ..config import ForgetConfig, TextForgetConfig, VisionForgetConfig
from ..errors import ForgetInputError
from ..validation import check_name_files_outside
from . import text, vision
from ._output import stdout_to_stderr
from ._parsing import DataclassArgumentParser, config_values
from .text import NamesArguments
from .vision import VisionScriptArguments, face_arguments

HELP = "Forget people: --modality text (names), vision (faces) or both (one CLIPModel)."
MODALITIES = ("text", "vision", "both")
USAGE = "%(prog)s --modality {text,vision,both} [-h] [--config FILE] --output_dir DIR [--option VALUE ...]"
TEXT_PREFIX = "text_"
# Optimizer settings of TrainingArguments that the text run may set apart from the vision run.
_TEXT_TRAINER_FIELDS = ("learning_rate", "max_steps", "per_device_train_batch_size", "weight_decay", "warmup_steps",
                        "max_grad_norm", "lr_scheduler_kwargs", "gradient_accumulation_steps")


@dataclass
class JointScriptArguments(VisionScriptArguments, NamesArguments):
    """`--modality both`: the names, the vision arguments and the caption source of the text run."""

    captions: str | None = field(
        default=None, metadata={"help": "Generic captions: a UTF-8 text file (one a line), a .csv/.tsv/.json/.jsonl/.parquet file "
                  "with a --caption_column (any of them may be .gz), a saved dataset directory or a dataset name."}
    )
    caption_column: str = field(default="text", metadata={"help": "Caption column of a dataset."})
    trigger_captions: str | None = field(
        default=None,
        metadata={"help": "Captions that carry the names in the text run instead of --captions (which then only "
                  "give the clean samples); same formats as --captions."},
    )


def text_run_fields() -> list[dataclasses.Field]:
    """The settings of the text run: every field the forgetting configs declare, and a few optimizer fields,
    less those of the run as a whole (taken from the vision settings)."""
    from ..forget import RUN_LEVEL_FIELDS

    declared = set()
    for cls in (ForgetConfig, TextForgetConfig):
        declared |= set(cls.__dict__.get("__annotations__", {}))
    declared |= set(_TEXT_TRAINER_FIELDS)
    declared -= {*RUN_LEVEL_FIELDS, "output_dir", "remove_unused_columns"}
    return [f for f in dataclasses.fields(TextForgetConfig) if f.name in declared and f.init]


def _text_options() -> type:
    """A dataclass with a ``--text_X`` option for each text-run setting ``X`` (default: unset)."""
    hints = typing.get_type_hints(TextForgetConfig)
    specs = []
    for f in text_run_fields():
        metadata = dict(f.metadata)
        metadata["help"] = f"text run: {metadata.get('help', f.name)}"
        specs.append((TEXT_PREFIX + f.name, hints[f.name] | None, field(default=None, metadata=metadata)))
    return dataclasses.make_dataclass("TextRunOptions", specs)


TextRunOptions = _text_options()


def text_config(options, vision_config: VisionForgetConfig) -> TextForgetConfig:
    """The text run's config: the run-level settings of ``vision_config`` and the ``--text_*`` options given."""
    from ..forget import text_config_from

    given = {f.name[len(TEXT_PREFIX):]: getattr(options, f.name) for f in dataclasses.fields(options)
             if getattr(options, f.name) is not None}
    return text_config_from(vision_config, **given)


def modality_of(argv: list[str]) -> str:
    """``--modality`` from the command line, else from the ``--config`` file; ``both`` for a bare ``--help``."""
    modality = None
    for i, arg in enumerate(argv):
        if arg == "--modality" and i + 1 < len(argv):
            modality = argv[i + 1]
        elif arg.startswith("--modality="):
            modality = arg.split("=", 1)[1]
    if modality is None:
        modality = config_values(argv).get("modality")
    if modality is None and {"-h", "--help"} & set(argv):
        modality = "both"
    if modality not in MODALITIES:
        raise ForgetInputError(f"pass --modality text, vision or both (got {modality!r}).")
    return modality


def make_parser(modality: str = "both", prog: str = "hf-forget forget") -> DataclassArgumentParser:
    """The options of ``--modality text`` (those of `hf-forget text`), ``vision`` or ``both``."""
    if modality == "text":
        parser = text.make_parser(prog)
    elif modality == "vision":
        parser = vision.make_parser(prog)
    else:
        parser = DataclassArgumentParser(
            (JointScriptArguments, VisionForgetConfig, TextRunOptions), prog=prog, description=HELP, usage=USAGE
        )
        parser.require("output_dir")
    parser.usage = USAGE
    parser.add_command_argument("--modality", choices=MODALITIES, required=True, help="Which encoder(s) to defend.")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    modality = modality_of(argv)
    *parsed, _ = make_parser(modality).parse_args_and_config(argv)  # the last one holds --modality
    if modality == "text":
        return text.run(*parsed)
    if modality == "vision":
        return vision.run(*parsed)
    return run_joint(*parsed)


def run_joint(args: JointScriptArguments, vision_config: VisionForgetConfig, options) -> int:
    """``--modality both``: names in the text tower and faces in the vision tower of one CLIPModel."""
    if not args.model_name_or_path:
        raise ForgetInputError("pass --model_name_or_path: a two-tower CLIPModel.")
    if not args.captions:
        raise ForgetInputError("pass --captions (see `hf-forget forget --modality both --help`).")
    names, aliases = text.names_of(args)
    faces = face_arguments(args, vision_config)
    text.check_push(vision_config)
    check_name_files_outside(vision_config.output_dir, args.names + args.aliases, vision_config.overwrite_output_dir)
    text_settings = text_config(options, vision_config)
    from ..forget import forget_joint

    with stdout_to_stderr():
        result = forget_joint(
            args.model_name_or_path, names, args.captions, args.faces, args.clean_images, aliases=aliases,
            output_dir=vision_config.output_dir, text_config=text_settings, vision_config=vision_config,
            caption_column=args.caption_column, trigger_captions=args.trigger_captions,
            resume_from_checkpoint=vision_config.resume_from_checkpoint, **faces,
        )
        text.publish_if_asked(result, vision_config, names + aliases)
    keys = ("sim_backdoor", "sim_clean", "sim_targets")
    result.report.update({part: {k: result.report[part].get(k) for k in keys} for part in ("text", "vision")})
    return text.finish(result, vision_config, ("text", "vision"))
