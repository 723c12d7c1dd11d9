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
    "ForgetResult": ".api",
    "TextScriptArguments": ".api",
    "forget_text": ".api",
    "load_text_encoder": ".api",
    "run_text": ".api",
    "ForgetConfig": ".config",
    "TextForgetConfig": ".config",
    "VisionForgetConfig": ".config",
    "ForgetInputError": ".errors",
    "QualityGateError": ".errors",
    "ForgetTrainer": ".trainers",
    "TextForgetTrainer": ".trainers",
    "VisionForgetTrainer": ".trainers",
    "VisionScriptArguments": ".vision_api",
    "forget_faces": ".vision_api",
    "forget_joint": ".vision_api",
    "load_vision_encoder": ".vision_api",
    "run_vision": ".vision_api",
}

__all__ = sorted(_LAZY_IMPORTS)

if TYPE_CHECKING:  # static analysers and IDEs see the real imports
    from .api import ForgetResult, TextScriptArguments, forget_text, load_text_encoder, run_text
    from .config import ForgetConfig, TextForgetConfig, VisionForgetConfig
    from .errors import ForgetInputError, QualityGateError
    from .trainers import ForgetTrainer, TextForgetTrainer, VisionForgetTrainer
    from .vision_api import VisionScriptArguments, forget_faces, forget_joint, load_vision_encoder, run_vision


def __getattr__(name: str):
    module = _LAZY_IMPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
