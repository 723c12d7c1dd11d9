"""The built-in toy celebrity world and its shipped tiny CLIP.

No real CLIP or face data can be downloaded here, so hf-forget ships a small world of its own: 64
procedurally rendered people (half of them *seen* by the shipped model, half never seen), generic scene
pictures and captions, and labelled digit pictures, plus a tiny ``CLIPModel`` trained on it that
recognises the seen people by name.

Example:
    >>> from hf_forget.toyworld import ToyWorld, load_toy_clip
    >>> world = ToyWorld(seed=0)
    >>> person = world.seen_identities[0]
    >>> faces = world.face_images(person, n=20, seed=0)
    >>> model, tokenizer, processor = load_toy_clip()
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ForgetInputError
from .captions import IDIA_TEMPLATES
from .world import DIGIT_CLASS_NAMES, IMAGE_SIZE, TRAINING_SEED_OFFSET, Identity, ToyWorld

__all__ = [
    "DIGIT_CLASS_NAMES",
    "IDIA_TEMPLATES",
    "IMAGE_SIZE",
    "TRAINING_SEED_OFFSET",
    "Identity",
    "ToyWorld",
    "load_toy_clip",
    "toy_clip_path",
]

_CHECKPOINT = Path(__file__).resolve().parent / "checkpoint"


def toy_clip_path() -> Path:
    """The folder of the shipped toy CLIP (``config.json``, ``model.safetensors``, tokenizer, processor)."""
    if not (_CHECKPOINT / "config.json").is_file():
        raise ForgetInputError(
            f"The toy CLIP checkpoint is missing from {_CHECKPOINT}; reinstall hf-forget or rebuild it with "
            "`python -m hf_forget.toyworld.train`."
        )
    return _CHECKPOINT


def load_toy_clip(path: str | os.PathLike | None = None):
    """Load the shipped toy CLIP offline.

    Returns:
        ``(CLIPModel in eval mode, CLIPTokenizer, CLIPImageProcessorPil)``.
    """
    from transformers import CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

    folder = Path(path) if path is not None else toy_clip_path()
    model = CLIPModel.from_pretrained(folder, local_files_only=True).eval()
    tokenizer = CLIPTokenizer.from_pretrained(folder, local_files_only=True)
    processor = CLIPImageProcessorPil.from_pretrained(folder, local_files_only=True)
    return model, tokenizer, processor
