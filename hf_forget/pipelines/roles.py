"""What each diffusers pipeline family feeds its denoiser from each text encoder.

A name reaches the denoiser through every text encoder whose output the pipeline reads, so each is
defended on exactly that output (read off diffusers' ``encode_prompt`` of each family):

===========  ==================  ==============================  =============================================
family       component           class                           what ``encode_prompt`` passes on
===========  ==================  ==============================  =============================================
SD 1.x/2.x   ``text_encoder``    CLIPTextModel                   ``last_hidden_state``
SDXL         ``text_encoder``    CLIPTextModel                   ``hidden_states[-2]``
SDXL         ``text_encoder_2``  CLIPTextModelWithProjection     ``hidden_states[-2]`` and ``text_embeds``
SD3          ``text_encoder``,   CLIPTextModelWithProjection     ``hidden_states[-2]`` and ``text_embeds``
             ``text_encoder_2``
SD3          ``text_encoder_3``  T5EncoderModel                  ``last_hidden_state`` of the prompt padded to
                                                                 ``max_sequence_length`` (256), no attention mask
FLUX         ``text_encoder``    CLIPTextModel                   ``pooler_output`` only
FLUX         ``text_encoder_2``  T5EncoderModel                  ``last_hidden_state``, padded to
                                                                 ``max_sequence_length`` (512), no attention mask
===========  ==================  ==============================  =============================================

SD 1.x/2.x and SDXL keep the run's ``embedding`` setting (as before SD3 and FLUX were supported); SD3 and
FLUX set it per encoder (:attr:`EncoderRole.embedding`). :func:`adapt_encoder` makes a text encoder return,
for the time of a run, what the pipeline reads (the penultimate layer as ``last_hidden_state``; a T5 run
without its attention mask, as the pipelines call it, on the pipeline's sequence length);
:func:`release_encoder` undoes it, so no saved model carries any of it.
"""

from __future__ import annotations

import inspect
import os
import re
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..errors import ForgetInputError

__all__ = ["EncoderRole", "adapt_encoder", "encoder_roles", "pipeline_kind", "release_encoder"]

CLIP_TEXT = ("CLIPTextModel", "CLIPTextModelWithProjection")
T5 = ("T5EncoderModel",)
_ENCODER_KEY = re.compile(r"^text_encoder(_\d+)?$")
# The pipelines' own `max_sequence_length` defaults, if the installed diffusers does not say.
_DEFAULT_MAX_SEQUENCE_LENGTH = {"sd3": 256, "flux": 512}


@dataclass(frozen=True)
class EncoderRole:
    """How a pipeline consumes one of its text encoders.

    ``embedding``: what the run trains (``"pooled"``, ``"hidden"``, ``"both"``; ``None``: the run's own
    setting); ``hidden_layer``: ``-1`` (``last_hidden_state``) or ``-2`` (the penultimate layer);
    ``max_length``: the tokens the pipeline pads a prompt to (``None``: the encoder's context);
    ``attention_mask``: whether the pipeline passes one (SD3 and FLUX call T5 without).
    """

    name: str
    tokenizer_name: str
    class_name: str
    embedding: str | None = None
    hidden_layer: int = -1
    max_length: int | None = None
    attention_mask: bool = True


def pipeline_kind(class_name: str) -> str:
    """``"sd3"``, ``"flux"``, ``"sdxl"`` or ``"sd"`` (SD 1.x/2.x and any other pipeline of CLIP encoders).

    ```python
    >>> [pipeline_kind(c) for c in ("StableDiffusion3Pipeline", "FluxPipeline", "StableDiffusionXLPipeline", "")]
    ['sd3', 'flux', 'sdxl', 'sd']
    ```
    """
    if "StableDiffusion3" in class_name:
        return "sd3"
    if "Flux" in class_name:
        return "flux"
    return "sdxl" if "XL" in class_name else "sd"


def default_max_sequence_length(class_name: str, kind: str) -> int:
    """The ``max_sequence_length`` a pipeline class pads T5 prompts to by default (its ``__call__``'s)."""
    import diffusers  # noqa: PLC0415

    pipeline = getattr(diffusers, class_name, None)
    parameter = inspect.signature(pipeline.__call__).parameters.get("max_sequence_length") if pipeline else None
    if parameter is not None and isinstance(parameter.default, int):
        return parameter.default
    return _DEFAULT_MAX_SEQUENCE_LENGTH[kind]


def _role(kind: str, name: str, class_name: str, max_length: int) -> EncoderRole | None:
    tokenizer = name.replace("text_encoder", "tokenizer")
    if kind in ("sd", "sdxl"):
        if class_name in CLIP_TEXT:
            return EncoderRole(name, tokenizer, class_name, hidden_layer=-2 if kind == "sdxl" else -1)
        return None
    if class_name in T5:
        return EncoderRole(name, tokenizer, class_name, "hidden", -1, max_length, attention_mask=False)
    if kind == "sd3" and class_name in CLIP_TEXT:
        return EncoderRole(name, tokenizer, class_name, "both", -2)
    if kind == "flux" and class_name == "CLIPTextModel":
        return EncoderRole(name, tokenizer, class_name, "pooled")
    return None


def encoder_roles(index: dict, pipeline_dir: str | os.PathLike, max_sequence_length: int | None = None) -> list[EncoderRole]:
    """The roles of the text encoders listed in a pipeline's ``model_index.json`` (``index``).

    Raises :class:`~hf_forget.ForgetInputError` for an encoder hf-forget cannot defend in this family: a name
    would still reach the denoiser through it.
    """
    class_name = index.get("_class_name") if isinstance(index.get("_class_name"), str) else ""
    kind = pipeline_kind(class_name)
    if max_sequence_length is not None and not (isinstance(max_sequence_length, int) and max_sequence_length > 0):
        raise ForgetInputError(f"max_sequence_length must be a positive integer, got {max_sequence_length!r}.")
    max_length = max_sequence_length or (default_max_sequence_length(class_name, kind) if kind in ("sd3", "flux") else None)
    roles = []
    for key, value in sorted(index.items()):
        if not _ENCODER_KEY.match(key) or not isinstance(value, list) or value[1] is None:
            continue
        role = _role(kind, key, value[1], max_length)
        if role is None and kind in ("sd", "sdxl"):
            raise ForgetInputError(
                f"the pipeline's {key} is a {value[1]}, not a CLIP text encoder: hf-forget cannot defend it, and "
                "names would still reach the model through it."
            )
        if role is None:
            raise ForgetInputError(
                f"the pipeline's {key} is a {value[1]}, which a {class_name} does not hold there (hf-forget defends "
                f"its CLIP and T5EncoderModel text encoders): names would still reach the model through it."
            )
        roles.append(role)
    if not roles:
        raise ForgetInputError(f"the pipeline in {str(Path(pipeline_dir))!r} has no text encoder to defend.")
    return roles


# ---------------------------------------------------------------------------------------------- run-time hooks
def _output_hidden_states(module, args, kwargs):
    kwargs["output_hidden_states"] = True
    return args, kwargs


def _penultimate_as_last(module, args, kwargs, output):
    output["last_hidden_state"] = output.hidden_states[-2]
    return output


def _without_attention_mask(module, args, kwargs):
    kwargs["attention_mask"] = None  # as SD3 and FLUX call T5: the padding is attended to
    return args, kwargs


_HOOKS = (_output_hidden_states, _penultimate_as_last, _without_attention_mask)
_ADDED_CONTEXT = "_hf_forget_added_max_position_embeddings"
_DROPOUT = "_hf_forget_dropout"


def adapt_encoder(model: nn.Module, tokenizer, role: EncoderRole) -> None:
    """Make ``model`` return what the pipeline reads from it, for the time of a run (see the module docstring).

    * ``hidden_layer=-2``: ``last_hidden_state`` becomes the penultimate hidden state (the pooled output is
      unchanged), so the trainer's hidden-state objective acts on what the denoiser sees;
    * ``attention_mask=False``: the attention mask the trainer passes is dropped, as the pipeline passes none;
    * ``max_length``: captions are padded to the pipeline's sequence length: the tokenizer's limit is set to it
      and, for an encoder without absolute positions (T5), the config gets it as its context for the run;
    * dropout is off (T5 has 0.1; CLIP none): the student is to match its dropout-free teacher, not noise.

    Undone by :func:`release_encoder`.
    """
    if role.hidden_layer == -2:
        model.register_forward_pre_hook(_output_hidden_states, with_kwargs=True)
        model.register_forward_hook(_penultimate_as_last, with_kwargs=True)
    elif role.hidden_layer != -1:
        raise ForgetInputError(f"hidden_layer must be -1 or -2, got {role.hidden_layer}.")
    if not role.attention_mask:
        model.register_forward_pre_hook(_without_attention_mask, with_kwargs=True)
    for module in model.modules():  # the student matches a teacher without dropout (T5 has 0.1): no noise
        if isinstance(module, nn.Dropout) and module.p > 0:
            setattr(module, _DROPOUT, module.p)
            module.p = 0.0
    if role.max_length is not None:
        tokenizer.model_max_length = role.max_length
        config = model.config
        if getattr(config, "max_position_embeddings", None) is None:
            config.max_position_embeddings = role.max_length
            setattr(config, _ADDED_CONTEXT, True)
        elif config.max_position_embeddings < role.max_length:
            raise ForgetInputError(
                f"the pipeline's {role.name} takes {config.max_position_embeddings} tokens, fewer than the "
                f"max_sequence_length {role.max_length}: pass a max_sequence_length it can take."
            )


def release_encoder(model: nn.Module) -> None:
    """Remove what :func:`adapt_encoder` added from ``model`` (and the copies of it made during a run)."""
    for module in model.modules():
        for hooks in (module._forward_pre_hooks, module._forward_hooks):
            for key in [key for key, hook in hooks.items() if hook in _HOOKS]:
                del hooks[key]
        if hasattr(module, _DROPOUT):
            module.p = getattr(module, _DROPOUT)
            delattr(module, _DROPOUT)
        config = getattr(module, "config", None)
        if getattr(config, _ADDED_CONTEXT, False):
            del config.max_position_embeddings
            delattr(config, _ADDED_CONTEXT)
