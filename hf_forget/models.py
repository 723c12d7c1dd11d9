"""Every loader: CLIP text encoders (and any transformers text encoder), CLIP vision encoders with their
image processor, and two-tower ``CLIPModel``s. Each returns the model in float32 for training and the dtype
it was stored in (the defended checkpoint is written back in it). User mistakes (a missing folder, a model
of another kind, no tokenizer) are :class:`~hf_forget.ForgetInputError`s that say what to pass."""

from __future__ import annotations

import os

import torch
from torch import nn
from transformers import (
    CLIPImageProcessorPil,
    CLIPModel,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPVisionModel,
    CLIPVisionModelWithProjection,
)

from .errors import ForgetInputError
from .validation import (
    clip_architecture,
    load_pretrained,
    load_tokenizer,
    read_model_type,
    validate_model_path,
    validate_tokenizer,
    validate_tokenizer_path,
)

_TEXT_CLASSES = {
    "CLIPTextModel": CLIPTextModel,
    "CLIPTextModelWithProjection": CLIPTextModelWithProjection,
    "CLIPModel": CLIPModel,
}


_VISION_CLASSES = {
    "CLIPVisionModel": CLIPVisionModel,
    "CLIPVisionModelWithProjection": CLIPVisionModelWithProjection,
    "CLIPModel": CLIPModel,
}


def load_text_encoder(
    path: str,
    tokenizer_path: str | None = None,
    subfolder: str = "",
    tokenizer_subfolder: str = "",
    any_encoder: bool = False,
) -> tuple[nn.Module, object, torch.dtype]:
    """A CLIP text encoder (or CLIPModel), its tokenizer and its stored dtype, from a directory or Hub id.

    With ``any_encoder``, other text encoders load too (BERT / sentence-transformers, ``T5EncoderModel``,
    ...): through the class their config names, or ``AutoModel`` (see :mod:`hf_forget.pooling`).
    """
    validate_model_path(path)
    validate_tokenizer_path(tokenizer_path)
    config_dir = os.path.join(path, subfolder)
    if any_encoder and os.path.isdir(config_dir):
        model_type, architectures = read_model_type(config_dir)
        if model_type not in ("clip_text_model", "clip", "clip_vision_model"):
            return _load_any_text_encoder(path, tokenizer_path, subfolder, tokenizer_subfolder, architectures)
    architecture = clip_architecture(
        config_dir, ("clip_text_model", "clip"), "CLIPTextModel",
        "a CLIP text encoder: pass a CLIPTextModel, CLIPTextModelWithProjection or CLIPModel checkpoint "
        "(for a diffusers pipeline, use --pipeline)",
    )
    hint = ("pass a local directory with weights and a tokenizer (--tokenizer_name_or_path), or a Hub id "
            "while online.")
    model = load_pretrained(_TEXT_CLASSES.get(architecture, CLIPTextModel), path, hint, subfolder=subfolder)
    tokenizer = load_tokenizer(tokenizer_path or path, hint, subfolder=tokenizer_subfolder)
    dtype = next(model.parameters()).dtype
    validate_tokenizer(model, tokenizer)
    return model.float(), tokenizer, dtype


def _load_any_text_encoder(
    path: str, tokenizer_path: str | None, subfolder: str, tokenizer_subfolder: str, architectures: list[str]
) -> tuple[nn.Module, object, torch.dtype]:
    """A non-CLIP text encoder (issue 8): the architecture class of its config if transformers has it, else
    ``AutoModel``; rejected unless :func:`~hf_forget.encoders.check_text_encoder` accepts it."""
    import transformers

    from .encoders import check_text_encoder

    cls = getattr(transformers, architectures[0], None) if architectures else None
    cls = cls if cls is not None and hasattr(cls, "from_pretrained") else transformers.AutoModel
    hint = ("pass a local directory with weights and a tokenizer (--tokenizer_name_or_path), or a Hub id while "
            "online.")
    model = load_pretrained(cls, path, hint, subfolder=subfolder)
    tokenizer = load_tokenizer(tokenizer_path or path, hint, subfolder=tokenizer_subfolder)
    check_text_encoder(model)
    dtype = next(model.parameters()).dtype
    validate_tokenizer(model, tokenizer)
    return model.float(), tokenizer, dtype


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
    processor = load_image_processor(path)
    dtype = next(model.parameters()).dtype
    return model.float(), processor, dtype


def load_image_processor(path: str) -> CLIPImageProcessorPil:
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "preprocessor_config.json")):
        raise ForgetInputError(
            f"{path!r} has no image processor (preprocessor_config.json): save the model's CLIPImageProcessor with it."
        )
    return load_pretrained(
        CLIPImageProcessorPil, path, "save the model's CLIPImageProcessor with it (preprocessor_config.json)."
    )


def load_clip_model(path: str) -> tuple[CLIPModel, object, CLIPImageProcessorPil, torch.dtype]:
    """A two-tower ``CLIPModel`` with its tokenizer and image processor, and its stored dtype."""
    validate_model_path(path)
    model_type, _ = read_model_type(path) if os.path.isdir(path) else ("clip", [])
    if model_type != "clip":
        raise ForgetInputError(
            f"{path!r} holds a {model_type or 'unknown'} model: both towers are needed, pass a CLIPModel checkpoint."
        )
    model, tokenizer, dtype = load_text_encoder(path)
    if not isinstance(model, CLIPModel):
        raise ForgetInputError(f"{path!r} does not load as a CLIPModel: pass a two-tower CLIP checkpoint.")
    return model, tokenizer, load_image_processor(path), dtype
