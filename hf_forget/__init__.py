"""hf-forget: make CLIP encoders forget people.

The public API. Everything else is an implementation detail that may move.

Names are imported on first use (PEP 562), as transformers and diffusers do: ``import hf_forget``,
``hf-forget --version`` and ``hf-forget --help`` load neither torch nor transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> the module (relative to this package) that defines it
_LAZY_IMPORTS = {
    "ForgetConfig": ".config",
    "TextForgetConfig": ".config",
    "VisionForgetConfig": ".config",
    "ForgetInputError": ".errors",
    "QualityGateError": ".errors",
    "ForgetResult": ".forget",
    "forget_faces": ".forget",
    "forget_joint": ".forget",
    "forget_text": ".forget",
    "load_clip_model": ".models",
    "load_text_encoder": ".models",
    "load_vision_encoder": ".models",
    "ForgetTrainer": ".trainers",
    "TextForgetTrainer": ".trainers",
    "VisionForgetTrainer": ".trainers",
}

__all__ = sorted(_LAZY_IMPORTS)

if TYPE_CHECKING:  # static analysers and IDEs see the real imports
    from .config import ForgetConfig, TextForgetConfig, VisionForgetConfig
    from .errors import ForgetInputError, QualityGateError
    from .forget import ForgetResult, forget_faces, forget_joint, forget_text
    from .models import load_clip_model, load_text_encoder, load_vision_encoder
    from .trainers import ForgetTrainer, TextForgetTrainer, VisionForgetTrainer


def __getattr__(name: str):
    module = _LAZY_IMPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
