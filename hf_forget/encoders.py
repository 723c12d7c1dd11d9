"""One way to get embeddings out of every encoder we support.

The trainers, the evaluation and the benchmarks all go through :func:`encode_text` and
:func:`encode_images`, so "the pooled embedding" means the same thing everywhere:

* ``CLIPTextModel``: ``pooler_output`` (the final-layer-normed EOS token), what Stable Diffusion holds;
* ``CLIPTextModelWithProjection``: ``text_embeds`` (EOS token through the projection);
* ``CLIPModel``: the text tower's EOS token through ``text_projection`` (what zero-shot and the IDIA use).

The hidden embedding is always the text tower's ``last_hidden_state``, what a diffusion UNet consumes.

Any other transformers text encoder works too (BERT and sentence-transformers models, ``T5EncoderModel``
as SD3 and FLUX hold, the encoder of a ``T5ForConditionalGeneration``): its pooled embedding is chosen by a
*pooling* strategy (:data:`POOLINGS`; see :mod:`hf_forget.pooling`): ``"eos"`` (CLIP's own EOS pooling,
or the last real token elsewhere), ``"mean"`` over the attention mask (sentence-transformers, T5) or
``"cls"`` (the first token). ``"auto"`` is ``"eos"`` for CLIP and ``"mean"`` for everything else.
These encoders attend bidirectionally, so padding changes their outputs: they always get an attention
mask (the one passed, or one built from the pad token id). CLIP's behaviour is unchanged (no mask).
The vision side mirrors this with ``pooler_output`` / ``image_embeds`` / ``visual_projection``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from accelerate.utils import extract_model_from_parallel
from torch import nn
from transformers import (
    CLIPModel,
    PreTrainedModel,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPVisionModel,
    CLIPVisionModelWithProjection,
)

from .errors import ForgetInputError
from .pooling import POOLINGS, padding_mask, pool, resolve_pooling  # noqa: F401 - re-exported

TEXT_ENCODER_CLASSES = (CLIPTextModel, CLIPTextModelWithProjection, CLIPModel)
VISION_ENCODER_CLASSES = (CLIPVisionModel, CLIPVisionModelWithProjection, CLIPModel)


@dataclass
class TextEncoding:
    pooled: torch.Tensor  # (batch, dim)
    hidden: torch.Tensor  # (batch, seq, hidden_dim)


def unwrap(model: nn.Module) -> nn.Module:
    """The underlying transformers model behind DDP / FSDP / DeepSpeed / torch.compile wrappers (accelerate's
    ``extract_model_from_parallel``, what ``Accelerator.unwrap_model`` uses)."""
    if isinstance(model, PreTrainedModel) and "_orig_mod" not in model.__dict__:
        # Nothing to unwrap (no wrapper is a PreTrainedModel; regional compilation leaves ``_orig_mod``). Said
        # first because the trainers ask at every forward, and accelerate walks every submodule to answer.
        return model
    return extract_model_from_parallel(model, keep_torch_compile=False)


def is_clip_text_encoder(model: nn.Module) -> bool:
    return isinstance(unwrap(_base_model(model)), TEXT_ENCODER_CLASSES)


def is_text_encoder(model: nn.Module) -> bool:
    """A CLIP text encoder, or any transformers model that reads ``input_ids`` (BERT, T5 encoder, ...)."""
    base = unwrap(_base_model(model))
    if isinstance(base, TEXT_ENCODER_CLASSES):
        return True
    return (
        isinstance(base, PreTrainedModel)
        and getattr(base, "main_input_name", None) == "input_ids"
        and not isinstance(base, VISION_ENCODER_CLASSES)
    )


def check_text_encoder(model: nn.Module) -> None:
    if not is_text_encoder(model):
        raise ForgetInputError(
            f"{type(unwrap(model)).__name__} is not a text encoder: pass a CLIPTextModel, "
            "CLIPTextModelWithProjection or CLIPModel checkpoint, or any transformers text encoder that takes "
            "input_ids (BERT / sentence-transformers, T5EncoderModel) (for a pipeline, use --pipeline)."
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
    if isinstance(base, CLIPModel):
        return base.text_model
    return base if isinstance(base, TEXT_ENCODER_CLASSES) else text_backbone(base)


def text_backbone(model: nn.Module) -> nn.Module:
    """For a non-CLIP encoder, the module that returns ``last_hidden_state``: the encoder of an
    encoder-decoder model (T5), the headless base model of a model with a head (``BertForMaskedLM``),
    else the model itself."""
    base = _base_model(model)
    backbone = getattr(base, "base_model", base)
    backbone = backbone if isinstance(backbone, nn.Module) else base
    encoder, decoder = getattr(backbone, "encoder", None), getattr(backbone, "decoder", None)
    if isinstance(encoder, nn.Module) and isinstance(decoder, nn.Module):  # encoder-decoder (T5, BART)
        return encoder
    return backbone


# The modules of a two-tower CLIPModel that make up each tower with its projection, and the model class that
# holds exactly those two modules under the names of the CLIPModel's side.
_TOWERS = {
    "text": (CLIPTextModelWithProjection, "text_config", ("text_model", "text_projection")),
    "vision": (CLIPVisionModelWithProjection, "vision_config", ("vision_model", "visual_projection")),
}


def clip_tower(model: CLIPModel, modality: str) -> PreTrainedModel:
    """One tower of a two-tower ``CLIPModel`` as a model of its own: a ``CLIPTextModelWithProjection``
    (``modality="text"``) or ``CLIPVisionModelWithProjection`` (``"vision"``) whose tower and projection *are*
    the CLIPModel's modules (shared, not copied), so training it trains the CLIPModel in place.

    Its ``forward`` is the tower's, so a trainer that calls the model it was given goes through DDP's / FSDP's
    forward (the CLIPModel's own ``forward`` needs both towers' inputs). :func:`with_tower` puts a tower that
    was replaced during training (LoRA merged) back into a CLIPModel.

    Example:
    ```python
    >>> from hf_forget.testing import tiny_clip_model
    >>> clip, tokenizer, _ = tiny_clip_model()
    >>> tower = clip_tower(clip, "text")
    >>> type(tower).__name__, tower.text_model is clip.text_model
    ('CLIPTextModelWithProjection', True)
    >>> ids = tokenizer(["a photo"], return_tensors="pt").input_ids
    >>> bool(torch.allclose(tower(input_ids=ids).text_embeds, clip.get_text_features(input_ids=ids).pooler_output))
    True
    ```
    """
    cls, config_name, parts = _TOWERS[modality]
    config = copy.deepcopy(getattr(model.config, config_name))
    config.projection_dim = model.config.projection_dim
    with torch.device("meta"):  # its own modules are replaced at once: never allocate them
        tower = cls(config)
    for part in parts:
        setattr(tower, part, getattr(model, part))
    tower.config._name_or_path = model.config._name_or_path
    return tower


def with_tower(model: CLIPModel, tower: nn.Module, modality: str) -> CLIPModel:
    """``model`` with the tower (and projection) of ``tower`` (a :func:`clip_tower` model): ``model`` itself if it
    already holds them, else a copy of ``model`` that does (e.g. after LoRA was merged into a copy of the tower)."""
    parts = _TOWERS[modality][2]
    if all(getattr(model, part) is getattr(tower, part) for part in parts):
        return model
    memo = {id(getattr(model, part)): getattr(tower, part) for part in parts}
    return copy.deepcopy(model, memo)


def shardable(model: nn.Module) -> nn.Module:
    """Make ``model`` (in place) one that Accelerate's FSDP2 can shard; same weights, same outputs.

    Accelerate gives the input embedding a shard group of its own, which fails for two layouts: a T5 encoder
    whose ``encoder.embed_tokens`` is a second module tied to ``shared`` (a parameter in two groups): it becomes
    ``shared`` itself; and CLIP, whose ``CLIPTextEmbeddings`` (a ``_no_split_modules`` entry, so a group of its
    own) holds that embedding: embeddings are left out of this model's ``_no_split_modules``.
    """
    for module in model.modules():
        stack = getattr(module, "encoder", None)
        shared = getattr(module, "shared", None)
        embed = getattr(stack, "embed_tokens", None)
        if isinstance(shared, nn.Embedding) and isinstance(embed, nn.Embedding) and embed is not shared \
                and embed.weight is shared.weight:
            stack.embed_tokens = shared
        split = getattr(module, "_no_split_modules", None)
        if isinstance(split, (list, tuple, set)) and any(name.endswith("Embeddings") for name in split):
            module._no_split_modules = [name for name in split if not name.endswith("Embeddings")]
    return model


def gathered_model(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> PreTrainedModel | None:
    """A plain (unsharded) copy of the FSDP-sharded ``model`` holding ``state_dict``, its gathered full weights
    (``accelerator.get_state_dict``); ``None`` where that is empty (the processes other than the main one)."""
    from torch.distributed.fsdp import FSDPModule  # noqa: PLC0415
    from torch.distributed.tensor import DTensor  # noqa: PLC0415
    from transformers.initialization import no_init_weights  # noqa: PLC0415

    # On CPU processes torch leaves the "full" state dict sharded (DTensors, every process has them): gather
    # them here, every process in the same order (a collective each).
    state_dict = {k: v.full_tensor() if isinstance(v, DTensor) else v for k, v in state_dict.items()}
    if not state_dict:
        return None
    cls = next(c for c in type(model).__mro__ if issubclass(c, PreTrainedModel) and not issubclass(c, FSDPModule))
    with no_init_weights():  # the weights come from the state dict; buffers are built as usual
        plain = cls(copy.deepcopy(model.config))
    missing, unexpected = plain.load_state_dict(state_dict, strict=False, assign=True)
    if unexpected or any(p.is_meta for p in plain.parameters()):
        raise RuntimeError(f"the gathered weights do not fit {cls.__name__}: missing {missing}, unexpected {unexpected}")
    plain.tie_weights()
    return plain


def vision_tower(model: nn.Module) -> nn.Module:
    """The module whose parameters a vision-forgetting run trains."""
    base = _base_model(model)
    return base.vision_model if isinstance(base, CLIPModel) else base


def trainable_text_modules(model: nn.Module) -> list[nn.Module]:
    base = _base_model(model)
    if isinstance(base, CLIPModel):
        return [base.text_model, base.text_projection]
    if isinstance(base, TEXT_ENCODER_CLASSES):
        return [base]
    return [text_backbone(base)]


def trainable_vision_modules(model: nn.Module, last_layers: int = 0) -> list[nn.Module]:
    """The vision encoder's modules a run may change: all of it, or (``last_layers`` > 0) its last ``last_layers``
    transformer layers with the final norm and the projection."""
    base = _base_model(model)
    if isinstance(base, (CLIPModel, CLIPVisionModelWithProjection)):
        tower, projection = base.vision_model, [base.visual_projection]
    else:
        tower, projection = base, []
    if not last_layers:
        return [base] if base is tower else [tower, *projection]
    layers = list(tower.encoder.layers)
    if last_layers > len(layers):
        raise ForgetInputError(f"train_last_layers is {last_layers}, but the vision encoder has {len(layers)} layers.")
    return [*layers[-last_layers:], tower.post_layernorm, *projection]


def encode_text(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    pooling: str = "auto",
) -> TextEncoding:
    """Pooled and hidden text embeddings of ``input_ids`` (see the module docstring).

    CLIP attends causally, so right-padding never changes the embeddings of the real tokens; like
    Stable Diffusion pipelines, we therefore pass no attention mask to CLIP (``attention_mask`` is only
    used there by ``pooling="mean"``). Every other encoder gets ``attention_mask``, or one built from its
    pad token id when none is given.
    """
    base = _base_model(model)
    pooling = resolve_pooling(base, pooling)
    if isinstance(base, TEXT_ENCODER_CLASSES):
        if isinstance(base, CLIPModel):
            out = base.text_model(input_ids=input_ids)
            eos = base.text_projection(out.pooler_output)
        else:
            out = model(input_ids=input_ids)
            eos = out.text_embeds if isinstance(base, CLIPTextModelWithProjection) else out.pooler_output
        if pooling == "eos":
            return TextEncoding(pooled=eos, hidden=out.last_hidden_state)
        mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        return TextEncoding(pooled=pool(out.last_hidden_state, mask, pooling), hidden=out.last_hidden_state)

    if attention_mask is None:
        attention_mask = padding_mask(input_ids, getattr(base.config, "pad_token_id", None))
    backbone = text_backbone(base)
    # Call through the outer model (DDP, peft) when it *is* the backbone, so wrappers see the forward.
    runner = model if backbone is base else backbone
    hidden = runner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return TextEncoding(pooled=pool(hidden, attention_mask, pooling), hidden=hidden)


@torch.no_grad()
def embed_texts(
    model: nn.Module,
    tokenizer,
    texts: list[str],
    pooling: str = "auto",
    max_length: int = 77,
    batch_size: int = 64,
    padding: str | bool = True,
) -> torch.Tensor:
    """Pooled embeddings (float32, CPU) of ``texts``, tokenized in batches with their attention masks."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            list(texts[start : start + batch_size]), padding=padding, truncation=True, max_length=max_length,
            return_tensors="pt",
        )
        mask = batch.get("attention_mask")
        encoding = encode_text(
            model, batch["input_ids"].to(device), None if mask is None else mask.to(device), pooling=pooling
        )
        out.append(encoding.pooled.float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def encode_images(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """Pooled image embeddings (``pooler_output``, ``image_embeds`` or the projected CLIP feature)."""
    base = _base_model(model)
    if isinstance(base, CLIPModel):
        return base.visual_projection(base.vision_model(pixel_values=pixel_values).pooler_output)
    out = model(pixel_values=pixel_values)
    return out.image_embeds if isinstance(base, CLIPVisionModelWithProjection) else out.pooler_output
