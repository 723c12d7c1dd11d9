"""The trained parameters and their gradients as views into one contiguous buffer each.

With every trained tensor a slice of one buffer (as DDP's gradient buckets or Megatron's contiguous gradient
buffer keep gradients), the work a step does over all of them takes a handful of kernels, however many tensors
there are, on a CPU as on a GPU:

* the weight anchor ``Σ_i ||θ~_i - θ_i||₂``: one difference with the reference copy, sums of squares by chunks, and
  per-tensor sums from the chunks' prefix sums (each tensor starts on a chunk boundary; the padding between
  tensors stays 0 in the weights and in the reference, so it adds nothing);
* its gradient, ``g * (θ~ - θ) / ||θ~ - θ||`` for each tensor, added straight into the gradient buffer during the
  backward pass (the autograd node carries the loss's scale, gradient-accumulation share and fp16 loss scale);
* gradient clipping: one norm and one multiplication over the gradient buffer;
* zeroing the gradients: one fill.

The Parameters stay the same objects (the optimizer, the Trainer and ``save_pretrained`` see them as before; saving
clones tensors that share a buffer without overlapping). Their gradients are kept as views into the buffer between
steps: zeroed, not set to ``None``. Every trained tensor receives a gradient at every step anyway (the anchor's, 0 at
the first step), so the optimizer sees the same gradients.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

CHUNK = 64  # elements a partial sum covers; each tensor starts at a multiple of it


class FlatParameters:
    """Trained parameters (one device, one dtype) moved into a flat buffer, with a flat gradient buffer and the
    anchor's reference copy of the weights (see the module docstring)."""

    def __init__(self, params: Sequence[nn.Parameter]):
        self.params = list(params)
        first = self.params[0]
        chunks = [max(1, -(-p.numel() // CHUNK)) for p in self.params]
        starts = [0]
        for count in chunks[:-1]:
            starts.append(starts[-1] + count * CHUNK)
        self.slices = [(start, p.numel()) for start, p in zip(starts, self.params)]
        total = CHUNK * sum(chunks)
        self.data = torch.zeros(total, dtype=first.dtype, device=first.device)
        self.grad = torch.zeros_like(self.data)
        self.grads = [self.grad[start:start + n].view(p.shape) for (start, n), p in zip(self.slices, self.params)]
        self.adopt_parameters()
        self.reference = self.data.clone()
        counts = torch.tensor(chunks)
        # the tensor each chunk belongs to, and each tensor's last chunk (on the device: no copy in a step)
        self.chunk_tensor = torch.repeat_interleave(torch.arange(len(chunks)), counts).to(first.device)
        self.last_chunk = (counts.cumsum(0) - 1).to(first.device)
        self._handle = torch.zeros((), device=first.device, requires_grad=True)  # ties the anchor to the backward

    @staticmethod
    def supports(params: Sequence[nn.Parameter]) -> bool:
        """Whether the parameters can share a buffer: one device and one floating dtype, and float64 partial sums
        on that device (not on MPS)."""
        if not params:
            return False
        first = params[0]
        return (first.is_floating_point() and first.device.type != "mps" and not first.is_meta
                and all(p.device == first.device and p.dtype == first.dtype for p in params))

    # ------------------------------------------------------------------ the buffers and the Parameters
    @torch.no_grad()
    def adopt_parameters(self) -> None:
        """Copies the parameters' values into the buffer and makes each parameter a view into it."""
        for (start, n), p in zip(self.slices, self.params):
            view = self.data[start:start + n]
            view.copy_(p.detach().reshape(-1))
            p.data = view.view(p.shape)
        self._pointers = [p.data_ptr() for p in self.params]

    def intact(self) -> bool:
        """Whether every parameter is still its view into the buffer (something may have replaced ``p.data``)."""
        return all(p.data_ptr() == pointer for p, pointer in zip(self.params, self._pointers))

    def owns_gradients(self) -> bool:
        """Whether every parameter's gradient is its view into the gradient buffer."""
        return all(p.grad is g for p, g in zip(self.params, self.grads))

    @torch.no_grad()
    def attach_gradients(self) -> None:
        """Makes each parameter's gradient its view into the gradient buffer, keeping any gradient it holds."""
        if not self.intact():
            self.adopt_parameters()
        for p, g in zip(self.params, self.grads):
            current = p.grad
            if current is g:
                continue
            if current is None:
                g.zero_()
            else:
                g.copy_(current)
            p.grad = g

    @torch.no_grad()
    def zero_grad(self) -> None:
        """Zeroes the gradient buffer; the gradients stay its views (a gradient held elsewhere is dropped)."""
        self.grad.zero_()
        for p, g in zip(self.params, self.grads):
            if p.grad is not g and p.grad is not None:
                p.grad = None

    # ------------------------------------------------------------------ the weight anchor
    def norms(self) -> torch.Tensor:
        """``||θ~_i - θ_i||₂`` of every tensor, in float32."""
        delta = (self.data - self.reference).view(-1, CHUNK)
        partial = delta.square().sum(dim=1).cumsum(0, dtype=torch.float64).index_select(0, self.last_chunk)
        return torch.diff(partial, prepend=partial.new_zeros(1)).sqrt().float()

    @torch.no_grad()
    def add_anchor_gradient(self, norms: torch.Tensor, grad: torch.Tensor) -> None:
        """Adds ``grad * (θ~ - θ) / ||θ~ - θ||`` of each tensor (0 where the norm is 0) to the gradient buffer."""
        scale = torch.where(norms > 0, grad / norms, torch.zeros_like(norms)).to(self.grad.dtype)
        delta = (self.data - self.reference).view(-1, CHUNK)
        self.grad.view(-1, CHUNK).addcmul_(delta, scale.index_select(0, self.chunk_tensor).unsqueeze(1))

    def anchor(self) -> torch.Tensor:
        """``Σ_i ||θ~_i - θ_i||₂``; its gradient goes into the gradient buffer in the backward pass."""
        if torch.is_grad_enabled():
            self.attach_gradients()
        elif not self.intact():
            self.adopt_parameters()
        return _FlatAnchor.apply(self, self._handle)

    # ------------------------------------------------------------------ gradient clipping
    @torch.no_grad()
    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """``torch.nn.utils.clip_grad_norm_`` (2-norm) over the gradient buffer: the total norm before clipping."""
        total = torch.linalg.vector_norm(self.grad)
        if max_norm != float("inf"):  # inf: the norm alone (what the Trainer logs when it does not clip)
            self.grad.mul_(torch.clamp(max_norm / (total + 1e-6), max=1.0))
        return total


class _FlatAnchor(torch.autograd.Function):
    """The anchor's value from the flat buffers; backward adds its gradient to the gradient buffer directly.

    The node runs before any of the model's (it is created after the student's forward, and the engine runs the
    most recent ready node first), so the addition lands before a parameter's gradient is accumulated and handed to
    DDP's reducer; under DDP the term is the same on every process, so averaging leaves it unchanged.
    """

    @staticmethod
    def forward(ctx, flat: FlatParameters, handle: torch.Tensor) -> torch.Tensor:
        norms = flat.norms()
        ctx.flat = flat
        ctx.save_for_backward(norms)
        return norms.sum()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (norms,) = ctx.saved_tensors
        ctx.flat.add_anchor_gradient(norms, grad)
        return None, None
