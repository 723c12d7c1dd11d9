"""Helpers the toy-world benchmark scripts share: which checkpoint a result is from, appending a result line,
and the forgotten / retained / reference split of the vision runs.

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


def forgotten_split(world, first: int, count: int) -> tuple[list, list]:
    """The seen identities to forget (``count`` from the ``first``-th, world order) and the retained rest."""
    seen = list(world.seen_identities)
    forgotten = seen[first : first + count]
    return forgotten, [p for p in seen if p not in forgotten]


def reference_faces(world, retained, num_unseen: int, with_retained: bool) -> list:
    """The reference set whose mean face is the vision target: 4 pictures (seed 6, never the audit's) of the
    first ``num_unseen`` unseen identities, and of the ``retained`` ones too with ``with_retained``."""
    others = list(world.unseen_identities[:num_unseen]) + (list(retained) if with_retained else [])
    return [world.face_images(p, 4, seed=6) for p in others]
