"""Helpers the toy-world benchmark scripts share: which checkpoint a result is from, and appending a result line.

Imported as a sibling module (``from jsonl import ...``): the scripts run as ``python benchmarks/NAME.py``,
so ``benchmarks/`` is on the path.
"""

from __future__ import annotations

import hashlib
import json
import os


def checkpoint_identity(folder: str | os.PathLike) -> tuple[str, dict | None]:
    """The sha256 of ``folder/model.safetensors`` and, for a toy CLIP, the training arguments of its manifest."""
    with open(os.path.join(folder, "model.safetensors"), "rb") as handle:
        sha256 = hashlib.sha256(handle.read()).hexdigest()
    manifest = os.path.join(folder, "toyworld.json")
    if not os.path.isfile(manifest):
        return sha256, None
    with open(manifest, encoding="utf-8") as handle:
        return sha256, json.load(handle).get("train_args")


def append_line(path: str | os.PathLike, line: dict) -> None:
    """Append ``line`` as one JSON line to ``path`` (folders created), and print it indented."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
    print(json.dumps(line, indent=1))
