"""hf-forget: make CLIP encoders forget people.

The public API. Everything else is an implementation detail that may move.
"""

__version__ = "0.1.0"

from .api import ForgetResult, TextScriptArguments, forget_text, load_text_encoder, run_text
from .config import ForgetConfig, TextForgetConfig, VisionForgetConfig
from .errors import ForgetInputError, QualityGateError
from .trainers import ForgetTrainer, TextForgetTrainer, VisionForgetTrainer
from .vision_api import VisionScriptArguments, forget_faces, forget_joint, load_vision_encoder, run_vision

__all__ = [
    "ForgetConfig",
    "ForgetInputError",
    "ForgetResult",
    "ForgetTrainer",
    "QualityGateError",
    "TextForgetConfig",
    "TextForgetTrainer",
    "TextScriptArguments",
    "VisionForgetConfig",
    "VisionForgetTrainer",
    "VisionScriptArguments",
    "forget_faces",
    "forget_joint",
    "forget_text",
    "load_text_encoder",
    "load_vision_encoder",
    "run_text",
    "run_vision",
]
