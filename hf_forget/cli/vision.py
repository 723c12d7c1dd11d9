"""`hf-forget vision`: forget faces in a CLIP vision encoder (or the vision tower of a CLIPModel).

The same command runs as ``python examples/forget_faces.py ...``, ``accelerate launch examples/forget_faces.py ...``
and ``accelerate launch -m hf_forget.cli vision ...``. Its stdout is one JSON line, the run's summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import VisionForgetConfig
from ..errors import ForgetInputError
from ..validation import check_stranger_options
from ._output import stdout_to_stderr
from ._parsing import DataclassArgumentParser
from .text import finish

HELP = "Forget faces in a CLIP vision encoder (or the vision tower of a CLIPModel)."
DESCRIPTION = HELP + " Accepts every TrainingArguments option (--max_steps, --learning_rate, ...)."
USAGE = "%(prog)s [-h] [--config FILE] --output_dir DIR [--option VALUE ...]"
SUMMARY_KEYS = ("sim_backdoor", "sim_backdoor_worst", "sim_backdoor_before", "sim_clean", "sim_targets", "steps")


@dataclass
class VisionScriptArguments:
    """Arguments of `hf-forget vision` and `examples/forget_faces.py` besides the [`VisionForgetConfig`]."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "CLIP vision encoder or CLIPModel: a local directory or a Hub id."}
    )
    faces: str | None = field(
        default=None,
        metadata={"help": "Faces to forget: a directory with one subfolder of face images per person (about 30 each)."},
    )
    clean_images: str | None = field(
        default=None,
        metadata={"help": "Generic clean images: an image folder (searched recursively) or a saved datasets image set."},
    )
    image_column: str = field(default="image", metadata={"help": "Image column of a dataset."})
    reference_faces: str | None = field(
        default=None,
        metadata={"help": "Faces of many other people (a folder, flat or one subfolder per person): their mean "
                  "embedding is the target every forgotten face maps to."},
    )
    target_embedding: str | None = field(
        default=None, metadata={"help": "A cached target (.safetensors from --save_target_embedding) instead of --reference_faces."}
    )
    save_target_embedding: str | None = field(
        default=None, metadata={"help": "Also cache the target computed from --reference_faces here (a bare tensor)."}
    )
    min_face_images: int = field(
        default=2,
        metadata={"help": "Fewest readable images a person folder may have (the last 10%%, at least one, are held out)."},
    )
    max_clean_images: int | None = field(default=None, metadata={"help": "Use at most this many clean images."})
    keep_faces: bool = field(
        default=True,
        metadata={"help": "Also train the reference faces (as they are, and shown as the triggers are) to keep their "
                  "embedding, so that only the forgotten faces move; false: clean images only, as the reference protocol."},
    )
    face_scale: list[float] = field(
        default_factory=lambda: [0.25, 0.5],
        metadata={"help": "Pasted face size, as a fraction of the clean image's shorter side (low high)."},
    )
    strangers: str | None = field(
        default=None,
        metadata={"help": "Pictures of many never-seen people (a directory with one subfolder per person; nobody the "
                  "model knows, none of --faces; hundreds is good). With --target counterfactual, each forgotten person "
                  "is pulled onto the stranger the model links to them no more than a typical stranger (by face; with "
                  "--modality both and one name per face folder, names in sorted folder order: by name); with "
                  "--lookalikes_per_person, their nearest look-alikes keep their embedding."},
    )
    lookalikes_per_person: int = field(
        default=0,
        metadata={"help": "For each forgotten person, keep this many look-alikes from --strangers (the never-seen people "
                  "the model places nearest them) at their embedding, with the reference faces, so that people who "
                  "share the forgotten faces' features are not moved with them (0: none)."},
    )


def make_parser(prog: str = "hf-forget vision") -> DataclassArgumentParser:
    parser = DataclassArgumentParser(
        (VisionScriptArguments, VisionForgetConfig), prog=prog, description=DESCRIPTION, usage=USAGE
    )
    parser.require("output_dir")
    return parser


def main(argv: list[str] | None = None) -> int:
    script_args, config = make_parser().parse_args_and_config(argv)
    return run(script_args, config)


def augmentation(face_scale):
    from ..data.faces import FaceAugmentation

    if len(face_scale) != 2:
        raise ForgetInputError(f"--face_scale takes two numbers (low high), got {face_scale}.")
    return FaceAugmentation(scale=(float(face_scale[0]), float(face_scale[1])))


def face_arguments(args, config: VisionForgetConfig) -> dict:
    """The face-run keyword arguments of `forget_faces` / `forget_joint` from parsed vision arguments."""
    for option, value in (("--faces", args.faces), ("--clean_images", args.clean_images)):
        if not value:
            raise ForgetInputError(f"pass {option} (see --help).")
    # Required with --strangers too: the reference faces are the kept faces (other people stay who they are) and
    # give the report's sim_other_faces and sim_targets.
    if not args.reference_faces and not args.target_embedding:
        raise ForgetInputError("pass --reference_faces (faces of many other people) or --target_embedding.")
    check_stranger_options(config.target, args.strangers or None, args.lookalikes_per_person,
                           None if args.keep_faces else False, spelling="cli")
    if args.min_face_images < 2:
        raise ForgetInputError(
            f"--min_face_images must be 2 or more (one image of each person is held out), got {args.min_face_images}."
        )
    if args.max_clean_images is not None and args.max_clean_images < 2:
        raise ForgetInputError(
            f"--max_clean_images must be 2 or more (one clean image is held out), got {args.max_clean_images}."
        )
    return dict(
        reference_faces=args.reference_faces, target_embedding=args.target_embedding,
        min_face_images=args.min_face_images, image_column=args.image_column,
        max_clean_images=args.max_clean_images, keep_faces=None if args.keep_faces else False,
        augmentation=augmentation(args.face_scale), strangers=args.strangers or None,
        lookalikes_per_person=args.lookalikes_per_person,
    )


def run(args: VisionScriptArguments, config: VisionForgetConfig) -> int:
    """Train, print the summary (main process only), raise if the quality gate is not met."""
    if not args.model_name_or_path:
        raise ForgetInputError("pass --model_name_or_path: a CLIP vision encoder or CLIPModel.")
    if config.push_to_hub:
        raise ForgetInputError("--push_to_hub needs the forgotten names for the leak scan: after this run, publish "
                               f"with `hf-forget push {config.output_dir} --repo_id ID --names @NAMES`.")
    faces = face_arguments(args, config)
    from ..forget import forget_faces

    with stdout_to_stderr():
        result = forget_faces(
            args.model_name_or_path, args.faces, args.clean_images, output_dir=config.output_dir, config=config,
            save_target_to=args.save_target_embedding, resume_from_checkpoint=config.resume_from_checkpoint, **faces,
        )
    return finish(result, config, SUMMARY_KEYS)
