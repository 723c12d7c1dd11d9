"""`hf-forget forget --modality text|vision|both`: one entry point for every defense.

``text`` and ``vision`` are `hf-forget text` and `hf-forget vision`; ``both`` forgets names in the text
tower and faces in the vision tower of one CLIPModel and writes one full CLIPModel. Its options are those
of `hf-forget vision` (the TrainingArguments apply to the vision run) plus the caption source and the
text run's knobs, prefixed ``--text_``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from ..config import VisionForgetConfig
from ..errors import ForgetInputError, QualityGateError
from ..vision_api import VisionScriptArguments, _augmentation, forget_joint, text_config_from
from . import text, vision
from ._output import print_summary, stdout_to_stderr
from ._parsing import DataclassArgumentParser, config_values

HELP = "Forget people: --modality text (names), vision (faces) or both (one CLIPModel)."
MODALITIES = ("text", "vision", "both")
USAGE = "%(prog)s --modality {text,vision,both} [-h] [--config FILE] --output_dir DIR [--option VALUE ...]"


@dataclass
class JointScriptArguments(VisionScriptArguments):
    """`--modality both`: the vision arguments plus the caption source and the text run's knobs."""

    captions: str | None = field(
        default=None, metadata={"help": "Generic captions: a text file (one a line), a saved dataset directory or a dataset name."}
    )
    caption_column: str = field(default="text", metadata={"help": "Caption column of a dataset."})
    trigger_captions: str | None = field(
        default=None,
        metadata={"help": "Captions that carry the names in the text run instead of --captions (which then only "
                  "give the clean samples); same formats as --captions."},
    )
    neutral_term: str = field(default="a person", metadata={"help": "The neutral term a forgotten name maps to."})
    text_embedding: str = field(
        default="pooled", metadata={"help": "Text embedding the loss acts on ('pooled' is what CLIP zero-shot and the IDIA use)."}
    )
    text_max_steps: int = field(default=400, metadata={"help": "Optimizer steps of the text run."})
    text_learning_rate: float = field(default=1e-4, metadata={"help": "Learning rate of the text run."})
    text_batch_size: int = field(default=128, metadata={"help": "(clean, poisoned) caption pairs a step in the text run."})
    text_alpha: float = field(default=0.6, metadata={"help": "alpha of the text run."})
    text_beta: float = field(default=0.01, metadata={"help": "beta of the text run."})
    text_lr_milestones: list[int] = field(default_factory=lambda: [200, 300], metadata={"help": "MultiStepLR milestones of the text run."})
    text_lr_gamma: float = field(default=0.5, metadata={"help": "MultiStepLR factor of the text run."})


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
            (JointScriptArguments, VisionForgetConfig), prog=prog, description=HELP, usage=USAGE
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


def run_joint(args: JointScriptArguments, vision_config: VisionForgetConfig) -> int:
    """``--modality both``: names in the text tower and faces in the vision tower of one CLIPModel."""
    if not args.model_name_or_path:
        raise ForgetInputError("pass --model_name_or_path: a two-tower CLIPModel.")
    for option, value in (("--faces", args.faces), ("--clean_images", args.clean_images), ("--captions", args.captions)):
        if not value:
            raise ForgetInputError(f"pass {option} (see `hf-forget forget --modality both --help`).")
    if not args.reference_faces and not args.target_embedding:
        raise ForgetInputError("pass --reference_faces (faces of many other people) or --target_embedding.")
    from ..validation import validate_names

    validate_names(vision_config.names, args.neutral_term)
    text_config = text_config_from(
        vision_config,
        neutral_term=args.neutral_term,
        embedding=args.text_embedding,
        max_steps=args.text_max_steps,
        learning_rate=args.text_learning_rate,
        per_device_train_batch_size=args.text_batch_size,
        alpha=args.text_alpha,
        beta=args.text_beta,
        lr_milestones=args.text_lr_milestones,
        lr_gamma=args.text_lr_gamma,
    )
    with stdout_to_stderr():
        result = forget_joint(
            args.model_name_or_path,
            vision_config.names,
            args.captions,
            args.faces,
            args.clean_images,
            reference_faces=args.reference_faces,
            target_embedding=args.target_embedding,
            output_dir=vision_config.output_dir,
            text_config=text_config,
            vision_config=vision_config,
            min_face_images=args.min_face_images,
            image_column=args.image_column,
            caption_column=args.caption_column,
            keep_faces=None if args.keep_faces else False,
            augmentation=_augmentation(args.face_scale),
            trigger_captions=args.trigger_captions,
        )
    if vision_config.process_index == 0:
        keys = ("sim_backdoor", "sim_clean", "sim_targets")
        summary = {part: {k: result.report[part].get(k) for k in keys} for part in ("text", "vision")}
        print_summary({"output_dir": result.output_dir, **summary, "passed": result.passed})
    if not result.passed:
        raise QualityGateError("held-out metrics below the gate; the output is marked as not passing.")
    return 0
