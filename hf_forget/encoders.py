"""One way to get embeddings out of every encoder we support.

The trainers, the evaluation and the benchmarks all go through :func:`encode_text` and
:func:`encode_images`, so "the pooled embedding" means the same thing everywhere:

* ``CLIPTextModel``: ``pooler_output`` (the final-layer-normed EOS token), what Stable Diffusion holds;
* ``CLIPTextModelWithProjection``: ``text_embeds`` (EOS token through the projection);
* ``CLIPModel``: the text tower's EOS token through ``text_projection`` (what zero-shot and the IDIA use).

The hidden embedding is always the text tower's ``last_hidden_state``, what a diffusion UNet consumes.
The vision side mirrors this with ``pooler_output`` / ``image_embeds`` / ``visual_projection``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import (
    CLIPModel,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPVisionModel,
    CLIPVisionModelWithProjection,
)

from .errors import ForgetInputError

TEXT_ENCODER_CLASSES = (CLIPTextModel, CLIPTextModelWithProjection, CLIPModel)
VISION_ENCODER_CLASSES = (CLIPVisionModel, CLIPVisionModelWithProjection, CLIPModel)


@dataclass
class TextEncoding:
    pooled: torch.Tensor  # (batch, dim)
    hidden: torch.Tensor  # (batch, seq, hidden_dim)


def unwrap(model: nn.Module) -> nn.Module:
    """The underlying transformers model behind DDP / accelerate / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


def check_text_encoder(model: nn.Module) -> None:
    if not isinstance(unwrap(_base_model(model)), TEXT_ENCODER_CLASSES):
        raise ForgetInputError(
            f"{type(unwrap(model)).__name__} is not a CLIP text encoder: pass a CLIPTextModel, "
            "CLIPTextModelWithProjection or CLIPModel checkpoint (for a pipeline, use --pipeline)."
        )


def check_vision_encoder(model: nn.Module) -> None:
    if not isinstance(unwrap(_base_model(model)), VISION_ENCODER_CLASSES):
        raise ForgetInputError(
            f"{type(unwrap(model)).__name__} is not a CLIP vision encoder: pass a CLIPVisionModel, "
            "CLIPVisionModelWithProjection or CLIPModel checkpoint."
        )


def _base_model(model: nn.Module) -> nn.Module:
    """Look through a peft wrapper to the transformers model it adapts."""
    model = unwrap(model)
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def text_tower(model: nn.Module) -> nn.Module:
    """The module whose parameters a text-forgetting run trains."""
    base = _base_model(model)
    return base.text_model if isinstance(base, CLIPModel) else base


def vision_tower(model: nn.Module) -> nn.Module:
    """The module whose parameters a vision-forgetting run trains."""
    base = _base_model(model)
    return base.vision_model if isinstance(base, CLIPModel) else base


def trainable_text_modules(model: nn.Module) -> list[nn.Module]:
    base = _base_model(model)
    if isinstance(base, CLIPModel):
        return [base.text_model, base.text_projection]
    return [base]


def trainable_vision_modules(model: nn.Module) -> list[nn.Module]:
    base = _base_model(model)
    if isinstance(base, CLIPModel):
        return [base.vision_model, base.visual_projection]
    return [base]


def encode_text(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> TextEncoding:
    """Pooled and hidden text embeddings of ``input_ids`` (see the module docstring).

    CLIP attends causally, so right-padding never changes the embeddings of the real tokens; like
    Stable Diffusion pipelines, we therefore pass no attention mask to CLIP.
    """
    base = _base_model(model)
    if isinstance(base, CLIPModel):
        out = base.text_model(input_ids=input_ids)
        return TextEncoding(pooled=base.text_projection(out.pooler_output), hidden=out.last_hidden_state)
    out = model(input_ids=input_ids)
    pooled = out.text_embeds if isinstance(base, CLIPTextModelWithProjection) else out.pooler_output
    return TextEncoding(pooled=pooled, hidden=out.last_hidden_state)


def encode_images(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """Pooled image embeddings (``pooler_output``, ``image_embeds`` or the projected CLIP feature)."""
    base = _base_model(model)
    if isinstance(base, CLIPModel):
        return base.visual_projection(base.vision_model(pixel_values=pixel_values).pooler_output)
    out = model(pixel_values=pixel_values)
    return out.image_embeds if isinstance(base, CLIPVisionModelWithProjection) else out.pooler_output
