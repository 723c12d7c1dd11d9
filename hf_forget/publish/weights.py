"""Write defended weights the way the base checkpoint stored them: same tensor names, dtypes and shards.

transformers >= 5 saves a bare ``CLIPTextModel`` / ``CLIPVisionModel`` without the ``text_model.`` /
``vision_model.`` prefix that every released CLIP checkpoint (and every transformers 4.x release)
uses. Older readers would silently re-initialise such weights, so what we publish keeps the base layout:
:func:`save_like_reference` follows a reference file, :func:`conform_clip_checkpoint` restores the
canonical prefix when no reference is at hand.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers.utils import logging

from ..errors import ForgetInputError

logger = logging.get_logger(__name__)

__all__ = ["check_safetensors", "conform_clip_checkpoint", "safetensors_layout", "save_like_reference"]

_TOWER_PREFIX = {"CLIPTextModel": "text_model.", "CLIPVisionModel": "vision_model."}
_PREFIXES = ("text_model.", "vision_model.")


def check_safetensors(path: str | os.PathLike, label: str | None = None) -> None:
    """Refuse (one line) a ``*.safetensors`` file whose header cannot be read: random, truncated or empty.

    Only the header is parsed (the tensors are not loaded); safetensors checks that it covers the file.
    """
    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except Exception as error:  # noqa: BLE001 - SafetensorError, OSError, ...: all mean a damaged file
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ForgetInputError(
            f"{label or Path(path).name} is not a readable safetensors file ({reason}): the run folder is damaged; "
            "restore the file or run the training again."
        ) from None


def safetensors_layout(files: Iterable[str | os.PathLike]) -> dict[str, tuple[str, torch.dtype]]:
    """``{tensor name: (file name, dtype)}`` over the safetensors files of one checkpoint."""
    layout = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():
                layout[key] = (Path(file).name, handle.get_slice(key).get_dtype())
    return layout


_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}  # fmt: skip


def _candidates(key: str) -> list[str]:
    stripped = next((key[len(p) :] for p in _PREFIXES if key.startswith(p)), key)
    return [key, stripped, *(p + stripped for p in _PREFIXES)]


def match_keys(source_keys: Iterable[str], reference_keys: Iterable[str]) -> dict[str, str]:
    """Map each reference tensor name to the source tensor holding it (names may differ by a tower prefix)."""
    source = set(source_keys)
    mapping = {}
    missing = []
    for ref in reference_keys:
        found = next((c for c in _candidates(ref) if c in source), None)
        if found is None:
            missing.append(ref)
        else:
            mapping[ref] = found
    if missing:
        raise ForgetInputError(
            f"the defended model lacks {len(missing)} tensor(s) of the base checkpoint (e.g. {missing[0]!r}): "
            "it was not trained from this base model."
        )
    return mapping


def save_like_reference(
    state_dict: Mapping[str, torch.Tensor], reference_dir: str | os.PathLike, out_dir: str | os.PathLike
) -> list[str]:
    """Write ``state_dict`` into ``out_dir`` as the safetensors files of ``reference_dir`` are written.

    Every ``*.safetensors`` file of ``reference_dir`` (each variant such as ``model.fp16.safetensors``,
    each shard of an index) is rewritten with the same tensor names, dtypes, shard assignment and header
    metadata, its values taken from ``state_dict``. Index files are copied (their maps stay valid).
    Returns the written file names.
    """
    reference_dir, out_dir = Path(reference_dir), Path(out_dir)
    files = sorted(reference_dir.glob("*.safetensors"))
    if not files:
        raise ForgetInputError(f"{str(reference_dir)!r} has no safetensors weights to follow.")
    state = {key: value.detach().cpu() for key, value in state_dict.items()}
    written = []
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            keys = list(handle.keys())
            dtypes = {key: handle.get_slice(key).get_dtype() for key in keys}
            metadata = handle.metadata() or {"format": "pt"}
        mapping = match_keys(state, keys)
        tensors = {}
        for key in keys:
            tensor = state[mapping[key]]
            dtype = _DTYPES.get(dtypes[key])
            if dtype is None:
                raise ForgetInputError(f"unsupported dtype {dtypes[key]} in {file.name}.")
            tensors[key] = tensor.to(dtype).contiguous()
        save_file(tensors, str(out_dir / file.name), metadata=metadata)
        written.append(file.name)
    for index in reference_dir.glob("*.safetensors.index.json"):
        (out_dir / index.name).write_bytes(index.read_bytes())
        written.append(index.name)
    return written


def conform_clip_checkpoint(folder: str | os.PathLike) -> bool:
    """Give a bare CLIP text/vision checkpoint in ``folder`` the canonical ``text_model.`` /
    ``vision_model.`` tensor names if it was saved without them (in place). Returns whether it changed."""
    folder = Path(folder)
    config_file = folder / "config.json"
    if not config_file.is_file():
        return False
    try:
        architectures = json.loads(config_file.read_text(encoding="utf-8")).get("architectures") or []
    except (json.JSONDecodeError, AttributeError):
        return False
    prefix = _TOWER_PREFIX.get(architectures[0] if architectures else "")
    files = sorted(folder.glob("*.safetensors"))
    if prefix is None or not files:
        return False
    changed = False
    for file in files:
        check_safetensors(file)
        with safe_open(str(file), framework="pt") as handle:
            keys = list(handle.keys())
            if all(key.startswith(prefix) for key in keys):
                continue
            tensors = {key if key.startswith(prefix) else prefix + key: handle.get_tensor(key) for key in keys}
            metadata = handle.metadata() or {"format": "pt"}
        save_file(tensors, str(file), metadata=metadata)
        changed = True
    for index_file in folder.glob("*.safetensors.index.json"):
        index = json.loads(index_file.read_text(encoding="utf-8"))
        weight_map = index.get("weight_map", {})
        index["weight_map"] = {k if k.startswith(prefix) else prefix + k: v for k, v in weight_map.items()}
        index_file.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if changed:
        logger.info("renamed the tensors of %s to the canonical %r layout", folder.name, prefix)
    return changed
