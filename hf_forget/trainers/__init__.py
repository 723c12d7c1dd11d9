from .base import ForgetTrainer
from .text import TextForgetTrainer

__all__ = ["ForgetTrainer", "TextForgetTrainer"]
