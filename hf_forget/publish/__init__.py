"""Publishing defended models: leak scan, model cards, Hub pusher, Stable Diffusion drop-in.

``assemble_pipeline``, ``forget_pipeline`` and ``load_pipeline_text_encoders`` import diffusers, so they
are loaded on first use.
"""

from .card import render_model_card
from .leak_guard import NameLeakError, NamePatterns, find_leaks, scan_tree, text_contains_names
from .pusher import push_defended, stage_repository
from .weights import conform_clip_checkpoint, save_like_reference

_PIPELINE = ("assemble_pipeline", "forget_pipeline", "load_pipeline_text_encoders", "PipelineTextEncoder")

__all__ = [
    "NameLeakError",
    "NamePatterns",
    "conform_clip_checkpoint",
    "find_leaks",
    "push_defended",
    "render_model_card",
    "save_like_reference",
    "scan_tree",
    "stage_repository",
    "text_contains_names",
    *_PIPELINE,
]


def __getattr__(name: str):
    if name in _PIPELINE:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
