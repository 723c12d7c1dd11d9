"""Publishing defended models: leak scan, model cards, Hub pusher."""

from .card import CITATION, render_model_card, write_model_card
from .leak_guard import NameLeakError, NamePatterns, find_leaks, scan_tree, text_contains_names
from .pusher import check_report_belongs, check_repo_id, push_defended, stage_repository
from .weights import check_safetensors, conform_clip_checkpoint, save_like_reference

__all__ = [
    "CITATION",
    "NameLeakError",
    "NamePatterns",
    "check_report_belongs",
    "check_repo_id",
    "check_safetensors",
    "conform_clip_checkpoint",
    "find_leaks",
    "push_defended",
    "render_model_card",
    "save_like_reference",
    "scan_tree",
    "stage_repository",
    "text_contains_names",
    "write_model_card",
]
