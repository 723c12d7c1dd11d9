"""The three terms of the forgetting objective, as pure functions.

    L = -mean cos(M(x), M~(x))  -  alpha * mean cos(Δ, M~(z))  +  beta * Σ_tensors ||θ~ - θ||₂

and an optional term of ours, ``+ gamma * mean relu(identity_residual)`` (see :func:`identity_residual`).

``pooled_cosine`` compares (batch, dim) embeddings; ``hidden_cosine`` compares (batch, seq, dim) token
states position by position and averages over positions (every position counts, padding included,
because a Stable Diffusion UNet attends to all of them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F


def pooled_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample cosine similarity of (batch, dim) embeddings."""
    return F.cosine_similarity(a.float(), b.float(), dim=-1)


def hidden_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample mean over positions of the per-token cosine of (batch, seq, dim) states."""
    length = min(a.shape[1], b.shape[1])
    return F.cosine_similarity(a[:, :length].float(), b[:, :length].float(), dim=-1).mean(dim=-1)


def flattened_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample cosine of whole sequences flattened to one vector (how SD prompt embeddings compare)."""
    return F.cosine_similarity(a.flatten(1).float(), b.flatten(1).float(), dim=-1)


def preservation_loss(student: torch.Tensor, teacher: torch.Tensor, cosine=pooled_cosine) -> torch.Tensor:
    """``-mean cos(M(x), M~(x))`` over clean samples."""
    return -cosine(student, teacher).mean()


def backdoor_loss(student: torch.Tensor, target: torch.Tensor, cosine=pooled_cosine) -> torch.Tensor:
    """``-mean cos(Δ, M~(z))`` over trigger samples (multiply by alpha)."""
    return -cosine(student, target).mean()


def identity_residual(student: torch.Tensor, target: torch.Tensor, teacher_trigger: torch.Tensor) -> torch.Tensor:
    """Per-sample component of the student's trigger embedding along what the teacher's trigger added.

    With unit vectors ``s = M~(z)``, ``d = Δ`` and ``t = M(z)``: ``s · u``, where ``u`` is the unit part of ``t``
    orthogonal to ``d``. The teacher's ``u`` is what the trigger adds to the neutral sample (the identity a
    face or a photo matches); a student close to ``Δ`` may still keep a small part along it, which is what a
    nearest-neighbour attack over many candidates reads. Zero at the target, or anywhere orthogonal to ``u``.
    Works on (batch, dim) and, averaged over positions, on (batch, seq, dim) embeddings.
    """
    s, d, t = (F.normalize(x.float(), dim=-1) for x in (student, target, teacher_trigger))
    direction = F.normalize(t - (t * d).sum(dim=-1, keepdim=True) * d, dim=-1)
    component = (s * direction).sum(dim=-1)
    return component.flatten(1).mean(dim=1) if component.dim() > 1 else component


def weight_anchor(deltas: Iterable[torch.Tensor]) -> torch.Tensor:
    """``Σ_tensors ||θ~ - θ||₂``: unsquared L2 norm of each tensor's change, summed over tensors.

    The gradient of a norm at zero is taken as zero (PyTorch's convention), so the first step is well defined.
    """
    norms = [torch.linalg.vector_norm(delta.float()) for delta in deltas]
    if not norms:
        return torch.zeros(())
    return torch.stack(norms).sum()


class _WeightAnchor(torch.autograd.Function):
    """``Σ_i ||θ~_i - θ_i||₂`` over a parameter list in a handful of ``torch._foreach_*`` kernels, outside autograd.

    Forward keeps only the per-tensor norms (not the differences); backward recomputes the differences and
    hands each parameter ``grad * (θ~ - θ) / ||θ~ - θ||`` (0 where the norm is 0, as :func:`weight_anchor`),
    so it joins the normal backward: gradient accumulation, GradScaler scaling and DDP hooks see it as any
    other gradient.
    """

    @staticmethod
    def forward(ctx, references: Sequence[torch.Tensor], *params: torch.Tensor) -> torch.Tensor:
        norms = torch.stack(torch._foreach_norm(torch._foreach_sub(params, references), 2, dtype=torch.float32))
        ctx.references = references
        ctx.save_for_backward(norms, *params)
        return norms.sum()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        norms, *params = ctx.saved_tensors
        scale = torch.where(norms > 0, grad / norms, torch.zeros_like(norms))
        deltas = torch._foreach_sub(params, ctx.references)
        torch._foreach_mul_(deltas, scale.unbind(0))
        return (None, *deltas)


def weight_anchor_foreach(params: Sequence[torch.Tensor], references: Sequence[torch.Tensor]) -> torch.Tensor:
    """:func:`weight_anchor` of ``params - references``, computed with foreach kernels (same value, same gradient).

    Example:
    ```python
    >>> param = torch.tensor([3.0, 4.0], requires_grad=True)
    >>> value = weight_anchor_foreach([param], [torch.zeros(2)])
    >>> value.backward()
    >>> value.item(), [round(g, 4) for g in param.grad.tolist()]
    (5.0, [0.6, 0.8])
    ```
    """
    if not params:
        return torch.zeros(())
    return _WeightAnchor.apply(list(references), *params)
