"""hf-forget: make CLIP encoders forget people.

The public API. Everything else is an implementation detail that may move.
"""

__version__ = "0.1.0"

from .config import ForgetConfig, TextForgetConfig, VisionForgetConfig
from .errors import ForgetInputError, QualityGateError
from .forget import ForgetResult, forget_faces, forget_joint, forget_text
from .models import load_clip_model, load_text_encoder, load_vision_encoder
from .trainers import ForgetTrainer, TextForgetTrainer, VisionForgetTrainer

__all__ = [
    "ForgetConfig",
    "ForgetInputError",
    "ForgetResult",
    "ForgetTrainer",
    "QualityGateError",
    "TextForgetConfig",
    "TextForgetTrainer",
    "VisionForgetConfig",
    "VisionForgetTrainer",
    "forget_faces",
    "forget_joint",
    "forget_text",
    "load_clip_model",
    "load_text_encoder",
    "load_vision_encoder",
]
