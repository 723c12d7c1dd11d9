"""High-level calls for faces: forget faces in a CLIP vision encoder, and the joint text + vision defense.

``forget_faces`` mirrors :func:`hf_forget.forget_text`: it takes a model (or its path), face images per
person, generic clean images and a reference face set (or a cached target), trains a
:class:`~hf_forget.trainers.vision.VisionForgetTrainer` and, with ``output_dir``, writes the defended
checkpoint atomically (staged in a hidden sibling, renamed into place). ``forget_joint`` forgets names in
the text tower and faces in the vision tower of one ``CLIPModel`` and writes one full ``CLIPModel``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from PIL import Image
from torch import nn
from transformers import CLIPImageProcessorPil, CLIPModel, CLIPVisionModel, CLIPVisionModelWithProjection, set_seed
from transformers.utils import logging

from . import __version__
from .api import ForgetResult, _publish_atomically, _stage
from .config import TextForgetConfig, VisionForgetConfig
from .errors import ForgetInputError
from .images import load_face_folders, load_images
from .triggers.faces import FaceAugmentation, load_target_embedding, save_target_embedding
from .validation import clip_architecture, load_pretrained, read_model_type, validate_model_path, validate_output_dir

logger = logging.get_logger(__name__)

_VISION_CLASSES = {
    "CLIPVisionModel": CLIPVisionModel,
    "CLIPVisionModelWithProjection": CLIPVisionModelWithProjection,
    "CLIPModel": CLIPModel,
}
DEFAULT_MIN_FACE_IMAGES = 2


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
        default=DEFAULT_MIN_FACE_IMAGES,
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


def load_vision_encoder(path: str) -> tuple[nn.Module, CLIPImageProcessorPil, torch.dtype]:
    """A CLIP vision encoder (or CLIPModel), its image processor and its stored dtype."""
    validate_model_path(path)
    architecture = clip_architecture(
        path, ("clip_vision_model", "clip"), "CLIPVisionModel",
        "a CLIP vision encoder: pass a CLIPVisionModel, CLIPVisionModelWithProjection or CLIPModel checkpoint",
    )
    model = load_pretrained(
        _VISION_CLASSES.get(architecture, CLIPVisionModel), path,
        "pass a local directory with weights, or a Hub id while online.",
    )
    try:
        processor = CLIPImageProcessorPil.from_pretrained(path)
    except OSError:
        raise ForgetInputError(
            f"{path!r} has no image processor (preprocessor_config.json): save the model's CLIPImageProcessor with it."
        ) from None
    dtype = next(model.parameters()).dtype
    return model.float(), processor, dtype


def _faces(source, what: str, min_images: int) -> list[list[Image.Image]]:
    if isinstance(source, (str, os.PathLike)):
        return load_face_folders(source, min_images_per_person=min_images).persons
    persons = [list(person) for person in source]
    for index, person in enumerate(persons):
        if len(person) < min_images:
            raise ForgetInputError(
                f"{what}: person #{index} has {len(person)} images; at least {min_images} are needed."
            )
    return persons


def _reference(source) -> list | None:
    """A reference face set: a folder with per-person subfolders (each person counts once) or flat images."""
    if source is None:
        return None
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path) and any(os.path.isdir(os.path.join(path, d)) for d in os.listdir(path)):
            return load_face_folders(path, min_images_per_person=1).persons
        return load_images(path, what="reference face set")
    source = list(source)
    if not source:
        raise ForgetInputError("the reference face set is empty: pass face images of many different people.")
    return source


def forget_faces(
    model: nn.Module | str,
    faces=None,
    clean_images=None,
    *,
    processor=None,
    reference_faces=None,
    target_embedding: torch.Tensor | str | None = None,
    output_dir: str | None = None,
    eval_faces: Sequence[Sequence[Image.Image]] | None = None,
    eval_clean_images: Sequence[Image.Image] | None = None,
    config: VisionForgetConfig | None = None,
    min_face_images: int = DEFAULT_MIN_FACE_IMAGES,
    image_column: str = "image",
    max_clean_images: int | None = None,
    augmentation: FaceAugmentation = FaceAugmentation(),
    keep_faces=None,
    num_kept_samples: int | None = None,
    resume_from_checkpoint: str | bool | None = None,
    base_path: str | None = None,
    save_dtype: torch.dtype | None = None,
    save_target_to: str | None = None,
    **config_kwargs,
) -> ForgetResult:
    """Forget faces in a CLIP vision encoder and (with ``output_dir``) write the defended checkpoint.

    Args:
        model: a `CLIPVisionModel`, `CLIPVisionModelWithProjection` or `CLIPModel`, or its path.
        faces: a folder with one subfolder per person, or one list of PIL images per person. Without
            ``eval_faces``, the last 10% (``config.eval_fraction``, at least one) of each person's images
            are held out for evaluation and never injected.
        clean_images: generic images: a folder, a list of images, or a `datasets` image set.
        reference_faces: faces of many people (folder, flat list or one list per person); their mean teacher
            embedding is the target Δ. Or pass ``target_embedding`` (a tensor or a saved ``.safetensors``).
        save_target_to: also cache Δ there, as a bare tensor.
        keep_faces: faces of people who must keep their embedding, as they are and shown as the triggers are
            (pasted, or alone in the share ``config.face_only_fraction``) among the clean samples (default: the
            reference faces; ``False``: clean images only, as the reference protocol).

    Example:
    ```python
    from hf_forget import forget_faces

    result = forget_faces("path/to/clip", "faces/", "clean_images/", reference_faces="other_faces/",
                          output_dir="defended")
    print(result.report["sim_backdoor"], result.passed)
    ```
    """
    source, dtype = base_path, save_dtype
    if isinstance(model, (str, os.PathLike)):
        source = os.fspath(model)
        model, loaded_processor, dtype = load_vision_encoder(source)
        processor = processor or loaded_processor
    if processor is None:
        raise ForgetInputError("pass the model's image processor (processor=...).")
    if faces is None:
        raise ForgetInputError("no faces: pass a folder with one subfolder of face images per person.")
    if clean_images is None:
        raise ForgetInputError("no clean images: pass generic images (a folder or a datasets image set).")
    if reference_faces is None and target_embedding is None:
        raise ForgetInputError(
            "no target: pass reference faces of many people (their mean embedding is the target) or a saved target embedding."
        )
    if config is None:
        config = VisionForgetConfig(output_dir=output_dir or "hf_forget_output", **config_kwargs)
    staging = None
    if output_dir is not None:
        inputs = [source, faces, clean_images, reference_faces, target_embedding]
        validate_output_dir(output_dir, [os.fspath(p) for p in inputs if isinstance(p, (str, os.PathLike))],
                            config.overwrite_output_dir)
    persons = _faces(faces, "faces", min_face_images)
    clean = load_images(clean_images, what="clean image source", min_images=2 if eval_clean_images is None else 1,
                        image_column=image_column, max_images=max_clean_images)
    reference = _reference(reference_faces)
    if isinstance(target_embedding, (str, os.PathLike)):
        target_embedding = load_target_embedding(target_embedding)
    if output_dir is not None:
        staging = _stage(output_dir)
        config.output_dir = staging
        if resume_from_checkpoint is None and os.path.isdir(staging) and config.process_index == 0:
            shutil.rmtree(staging)
    set_seed(config.seed)

    from .trainers.vision import VisionForgetTrainer

    trainer = VisionForgetTrainer(
        model, config, processor, persons, clean, reference_faces=reference, target_embedding=target_embedding,
        eval_faces=eval_faces, eval_clean_images=eval_clean_images, augmentation=augmentation,
        keep_faces=keep_faces if keep_faces is False else _reference(keep_faces), num_kept_samples=num_kept_samples,
    )
    if save_target_to and trainer.is_world_process_zero():
        save_target_embedding(trainer._target, save_target_to)
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    report = trainer.forget_report()
    logger.info("forgetting done: %s", {k: v for k, v in report.items() if k.startswith("sim_")})
    if output_dir is not None:
        _publish_atomically(trainer, report, staging, output_dir, dtype)
    return ForgetResult(model=trainer.defended_model(), report=report, output_dir=output_dir)


def run_vision(script_args: VisionScriptArguments, config: VisionForgetConfig) -> ForgetResult:
    """What `hf-forget vision` and `examples/forget_faces.py` do with their parsed arguments."""
    if not script_args.model_name_or_path:
        raise ForgetInputError("pass --model_name_or_path: a CLIP vision encoder or CLIPModel.")
    if not script_args.faces:
        raise ForgetInputError("pass --faces: a directory with one subfolder of face images per person.")
    if not script_args.clean_images:
        raise ForgetInputError("pass --clean_images: a folder of generic images or a saved datasets image set.")
    if not script_args.reference_faces and not script_args.target_embedding:
        raise ForgetInputError("pass --reference_faces (faces of many other people) or --target_embedding.")
    validate_output_dir(config.output_dir, _input_paths(script_args), config.overwrite_output_dir)
    resume = True if config.resume_from_checkpoint == "latest" else config.resume_from_checkpoint
    if isinstance(resume, str) and not os.path.isdir(resume):
        raise ForgetInputError(
            f"checkpoint {resume!r} does not exist: pass a checkpoint-N folder of this run, or --resume_from_checkpoint latest."
        )
    model, processor, dtype = load_vision_encoder(script_args.model_name_or_path)
    return forget_faces(
        model,
        script_args.faces,
        script_args.clean_images,
        processor=processor,
        reference_faces=script_args.reference_faces,
        target_embedding=script_args.target_embedding,
        output_dir=config.output_dir,
        config=config,
        min_face_images=script_args.min_face_images,
        image_column=script_args.image_column,
        max_clean_images=script_args.max_clean_images,
        resume_from_checkpoint=resume,
        base_path=script_args.model_name_or_path,
        save_dtype=dtype,
        save_target_to=script_args.save_target_embedding,
        keep_faces=None if script_args.keep_faces else False,
        augmentation=_augmentation(script_args.face_scale),
    )


def _augmentation(face_scale) -> FaceAugmentation:
    if len(face_scale) != 2:
        raise ForgetInputError(f"--face_scale takes two numbers (low high), got {face_scale}.")
    return FaceAugmentation(scale=(float(face_scale[0]), float(face_scale[1])))


def _input_paths(script_args) -> list[str]:
    """Every input path of a run: the output directory may overlap none of them."""
    fields = ("model_name_or_path", "faces", "clean_images", "reference_faces", "target_embedding")
    return [value for value in (getattr(script_args, f, None) for f in fields) if isinstance(value, str) and value]


# ---------------------------------------------------------------------------------------------- joint
def text_config_from(vision: VisionForgetConfig, **text_kwargs) -> TextForgetConfig:
    """A [`TextForgetConfig`] sharing the run-level settings (seed, device, precision, logging) of ``vision``."""
    shared = {
        key: getattr(vision, key)
        for key in ("seed", "use_cpu", "bf16", "fp16", "disable_tqdm", "logging_steps", "report_to",
                    "dataloader_num_workers", "teacher_cache", "lora_r", "lora_alpha", "overwrite_output_dir")
    }
    shared.update(text_kwargs)
    return TextForgetConfig(output_dir=vision.output_dir, names=list(vision.names), **shared)


def forget_joint(
    model: CLIPModel | str,
    names: list[str],
    captions,
    faces,
    clean_images,
    *,
    tokenizer=None,
    processor=None,
    reference_faces=None,
    target_embedding=None,
    output_dir: str | None = None,
    text_config: TextForgetConfig | None = None,
    vision_config: VisionForgetConfig | None = None,
    eval_captions: list[str] | None = None,
    eval_faces=None,
    eval_clean_images=None,
    min_face_images: int = DEFAULT_MIN_FACE_IMAGES,
    image_column: str = "image",
    caption_column: str = "text",
    base_path: str | None = None,
    save_dtype: torch.dtype | None = None,
    keep_faces=None,
    augmentation: FaceAugmentation = FaceAugmentation(),
    trigger_captions=None,
) -> ForgetResult:
    """Forget ``names`` in the text tower and ``faces`` in the vision tower of one `CLIPModel`.

    The two towers share no parameter and each loss term touches one tower only, so the text run and then
    the vision run on the same model give the joint defense; one full `CLIPModel` (with its tokenizer and
    image processor) is written, with a `forget_report.json` holding both runs' reports.
    ``trigger_captions`` (as in :func:`hf_forget.forget_text`) carry the names in the text run.
    """
    source, dtype = base_path, save_dtype
    if isinstance(model, (str, os.PathLike)):
        source = os.fspath(model)
        validate_model_path(source)
        model_type, _ = read_model_type(source) if os.path.isdir(source) else ("clip", [])
        if model_type != "clip":
            raise ForgetInputError(
                f"{source!r} holds a {model_type or 'unknown'} model: --modality both needs a two-tower CLIPModel."
            )
        from .api import load_text_encoder

        model, loaded_tokenizer, dtype = load_text_encoder(source)
        tokenizer = tokenizer or loaded_tokenizer
        processor = processor or load_vision_encoder_processor(source)
    if not isinstance(model, CLIPModel):
        raise ForgetInputError(
            f"{type(model).__name__} is not a CLIPModel: the joint defense needs both towers of one CLIPModel."
        )
    if tokenizer is None or processor is None:
        raise ForgetInputError("pass the model's tokenizer and image processor.")
    vision_config = vision_config or VisionForgetConfig(output_dir=output_dir or "hf_forget_output", names=list(names))
    text_config = text_config or text_config_from(vision_config)
    if names:
        text_config.names = list(names)
    if output_dir is not None:
        inputs = [source, captions, trigger_captions, faces, clean_images, reference_faces, target_embedding]
        validate_output_dir(output_dir, [os.fspath(p) for p in inputs if isinstance(p, (str, os.PathLike))],
                            vision_config.overwrite_output_dir)
    staging = _stage(output_dir) if output_dir is not None else None
    for config, part in ((text_config, "text"), (vision_config, "vision")):
        config.output_dir = os.path.join(staging, f"_{part}_run") if staging else config.output_dir

    from .api import forget_text

    text = forget_text(model, captions=captions, tokenizer=tokenizer, config=text_config, eval_captions=eval_captions,
                       caption_column=caption_column, trigger_captions=trigger_captions)
    vision = forget_faces(
        text.model, faces, clean_images, processor=processor, reference_faces=reference_faces,
        target_embedding=target_embedding, config=vision_config, eval_faces=eval_faces,
        eval_clean_images=eval_clean_images, min_face_images=min_face_images, image_column=image_column,
        keep_faces=keep_faces, augmentation=augmentation,
    )
    report = {
        "modality": "both",
        "num_names": text.report.get("num_names"),
        "num_identities": vision.report.get("num_identities"),
        "steps": {"text": text.report.get("steps"), "vision": vision.report.get("steps")},
        "seconds": round(float(text.report.get("seconds", 0)) + float(vision.report.get("seconds", 0)), 2),
        "text": text.report,
        "vision": vision.report,
        "passed": bool(text.passed and vision.passed),
        "gate": {"passed": bool(text.passed and vision.passed)},
        "base_model": vision.report.get("base_model", ""),
        "hf_forget_version": __version__,
    }
    if output_dir is not None and vision_config.process_index == 0:
        if os.path.isdir(staging):
            shutil.rmtree(staging)
        os.makedirs(staging)
        defended = vision.model if dtype in (None, torch.float32) else vision.model.to(dtype)
        defended.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        processor.save_pretrained(staging)
        with open(os.path.join(staging, "forget_report.json"), "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
        if os.path.isdir(output_dir):
            shutil.rmtree(output_dir)
        os.replace(staging, output_dir)
    return ForgetResult(model=vision.model, report=report, output_dir=output_dir)


def load_vision_encoder_processor(path: str) -> CLIPImageProcessorPil:
    try:
        return CLIPImageProcessorPil.from_pretrained(path)
    except OSError:
        raise ForgetInputError(
            f"{path!r} has no image processor (preprocessor_config.json): save the model's CLIPImageProcessor with it."
        ) from None
