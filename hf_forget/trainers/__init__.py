from .base import ForgetTrainer
from .text import TextForgetTrainer
from .vision import VisionForgetTrainer

__all__ = ["ForgetTrainer", "TextForgetTrainer", "VisionForgetTrainer"]
