"""Pooling strategies: one embedding per text out of an encoder's token states.

CLIP pools its own way (the final-layer-normed EOS token, projected or not); other text encoders do not
agree on one, so a forgetting run says which it wants:

* ``"eos"``: CLIP's EOS pooling; for any other encoder the state of the last real (unpadded) token, as
  decoder-style encoders are pooled;
* ``"mean"``: the mean of the token states over the attention mask, what sentence-transformers models
  (``all-MiniLM-L6-v2``, ``all-mpnet-base-v2``, ...) and T5 sentence encoders use;
* ``"cls"``: the first token's state (BERT's ``[CLS]``);
* ``"auto"``: ``"eos"`` for CLIP, ``"mean"`` for everything else.

A diffusion pipeline that conditions on a T5 encoder (SD3, FLUX) consumes its token states, not a pooled
vector: forget there with ``embedding="hidden"`` (or ``"both"``), the pooling only decides the pooled half.
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import ForgetInputError

POOLINGS = ("auto", "eos", "mean", "cls")


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ForgetInputError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")
    return pooling


def _is_clip(model: nn.Module) -> bool:
    from transformers import CLIPModel, CLIPTextModel, CLIPTextModelWithProjection

    return isinstance(model, (CLIPModel, CLIPTextModel, CLIPTextModelWithProjection))


def resolve_pooling(model: nn.Module, pooling: str = "auto") -> str:
    """The concrete strategy (``"eos"``, ``"mean"`` or ``"cls"``) that ``pooling`` means for ``model``.

    ``model`` is the bare transformers model (no DDP / peft wrapper).

    Example:
    ```python
    >>> from hf_forget.testing import tiny_clip_text_model
    >>> model, _ = tiny_clip_text_model()
    >>> resolve_pooling(model), resolve_pooling(model, "mean")
    ('eos', 'mean')
    ```
    """
    check_pooling(pooling)
    if pooling != "auto":
        return pooling
    return "eos" if _is_clip(model) else "mean"


def padding_mask(input_ids: torch.Tensor, pad_token_id: int | None) -> torch.Tensor:
    """``1`` where ``input_ids`` holds a real token, ``0`` on padding (all ones without a pad token).

    Example:
    ```python
    >>> padding_mask(torch.tensor([[5, 6, 0, 0]]), 0).tolist()
    [[1, 1, 0, 0]]
    ```
    """
    if pad_token_id is None:
        return torch.ones_like(input_ids)
    return (input_ids != pad_token_id).long()


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool token states ``(batch, seq, dim)`` into ``(batch, dim)`` with a concrete strategy.

    ``"mean"`` averages the masked-in tokens; ``"eos"`` takes the last masked-in token (left or right
    padding); ``"cls"`` the first position.

    Example:
    ```python
    >>> hidden = torch.tensor([[[1.0], [3.0], [100.0]]])
    >>> mask = torch.tensor([[1, 1, 0]])
    >>> pool(hidden, mask, "mean").tolist(), pool(hidden, mask, "eos").tolist(), pool(hidden, mask, "cls").tolist()
    ([[2.0]], [[3.0]], [[1.0]])
    ```
    """
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.to(hidden.device)
    if pooling == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    if pooling == "eos":
        last = mask.shape[1] - 1 - mask.long().flip(1).argmax(1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ForgetInputError(f"pool() needs a concrete pooling ('eos', 'mean' or 'cls'), got {pooling!r}.")
