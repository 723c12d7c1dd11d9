"""Publishing defended models: leak scan, model cards, Hub pusher, Stable Diffusion drop-in."""

from .leak_guard import NameLeakError, NamePatterns, find_leaks, scan_tree, text_contains_names

__all__ = ["NameLeakError", "NamePatterns", "find_leaks", "scan_tree", "text_contains_names"]
