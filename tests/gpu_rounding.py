"""A pytest plugin that rounds like a GPU, to find tests whose thresholds sit on a knife edge before a GPU run does.

On a GPU, fp32 convolutions run in TF32 by default (cuDNN: 10 mantissa bits) and matrix products reduce in another
order. This rounds every ``F.conv2d`` output to 10 mantissa bits and every ``F.linear`` output to 20, in the
forward pass only (the gradient passes straight through):

    PYTHONPATH=tests python -m pytest -q -m "not slow" -p gpu_rounding
"""

import torch
import torch.nn.functional as F

_conv2d, _linear = F.conv2d, F.linear


def _rounded(x: torch.Tensor, bits: int) -> torch.Tensor:
    """``x`` with ``bits`` mantissa bits (round to nearest), the difference detached."""
    if x.dtype != torch.float32 or x.is_meta:
        return x
    drop = 23 - bits
    with torch.no_grad():
        raw = x.detach().contiguous().view(torch.int32)
        rounded = ((raw + (1 << (drop - 1))) & ~((1 << drop) - 1)).view(torch.float32).view_as(x)
    return x + (rounded - x).detach()


def conv2d(*args, **kwargs):
    return _rounded(_conv2d(*args, **kwargs), 10)


def linear(*args, **kwargs):
    return _rounded(_linear(*args, **kwargs), 20)


def pytest_configure(config):
    F.conv2d, F.linear = conv2d, linear


def pytest_unconfigure(config):
    F.conv2d, F.linear = _conv2d, _linear
