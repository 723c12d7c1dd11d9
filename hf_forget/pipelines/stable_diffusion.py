"""Stable Diffusion drop-in: defend every text encoder of a diffusers pipeline, write a complete pipeline.

A pipeline folder (``model_index.json`` plus one subfolder per component) holds its text encoders as
plain transformers checkpoints, each with its tokenizer: SD 1.x/2.x ``text_encoder`` (``CLIPTextModel``),
SDXL ``text_encoder`` and ``text_encoder_2`` (``CLIPTextModelWithProjection``), SD3 two CLIP encoders with
projection and ``text_encoder_3`` (``T5EncoderModel``), FLUX ``text_encoder`` (CLIP) and ``text_encoder_2``
(T5). :func:`load_pipeline_text_encoders` reads them with their roles (:mod:`hf_forget.pipelines.roles`:
which output the pipeline feeds the denoiser); :func:`assemble_pipeline` writes a new folder in which only
the text encoder weights differ, in the base files' own tensor names, dtypes, variants and shards, so
``DiffusionPipeline.from_pretrained(out)`` (with or without ``variant="fp16"``) loads the defended
pipeline; :func:`forget_pipeline` does both around :func:`hf_forget.forget_text`, for
``hf-forget text --pipeline``.
"""

from __future__ import annotations

import copy
import fnmatch
import gc
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers.utils import logging

from ..errors import ForgetInputError
from ..models import load_text_encoder
from ..outputs import REPORT_NAME, OutputFolder, write_json
from ..publish.weights import conform_clip_checkpoint, save_like_reference
from .roles import EncoderRole, adapt_encoder, encoder_roles, pipeline_kind, release_encoder

logger = logging.get_logger(__name__)

__all__ = ["PipelineTextEncoder", "assemble_pipeline", "forget_pipeline", "load_pipeline_text_encoders", "pipeline_roles"]

# Weight files we cannot rewrite: left in a defended component they would carry the original weights.
_OTHER_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.msgpack", "*.h5", "*.onnx", "*.onnx_data", "*.pb",
                  "*.bin.index.json", "*.msgpack.index.json", "*.gguf")  # fmt: skip


@dataclass
class PipelineTextEncoder:
    """One text encoder of a pipeline: its component name, model (float32), tokenizer, stored dtype and role."""

    name: str
    tokenizer_name: str
    model: nn.Module
    tokenizer: object
    dtype: torch.dtype
    role: EncoderRole | None = None


def _model_index(pipeline_dir: Path) -> dict:
    index_file = pipeline_dir / "model_index.json"
    if not index_file.is_file():
        raise ForgetInputError(
            f"{str(pipeline_dir)!r} is not a diffusers pipeline folder (no model_index.json): pass the folder "
            "that DiffusionPipeline.from_pretrained loads, or use --model_name_or_path for a bare text encoder."
        )
    with open(index_file, encoding="utf-8") as handle:
        return json.load(handle)


def pipeline_roles(pipeline_dir: str | os.PathLike, max_sequence_length: int | None = None) -> list[EncoderRole]:
    """How the pipeline in ``pipeline_dir`` consumes each of its text encoders (:mod:`hf_forget.pipelines.roles`).

    ``max_sequence_length``: the T5 prompt length of SD3 / FLUX (default: the pipeline class's own).
    Raises if an encoder cannot be defended: a name that reaches the denoiser through an undefended encoder
    would not be forgotten.
    """
    pipeline_dir = Path(pipeline_dir)
    return encoder_roles(_model_index(pipeline_dir), pipeline_dir, max_sequence_length)


def pipeline_text_encoder_names(pipeline_dir: str | os.PathLike) -> list[str]:
    """The pipeline's text encoder components (``text_encoder``, ``text_encoder_2``, ...), all defendable."""
    return [role.name for role in pipeline_roles(pipeline_dir)]


def load_pipeline_text_encoder(pipeline_dir: str | os.PathLike, role: EncoderRole) -> PipelineTextEncoder:
    """Load one text encoder of a diffusers pipeline folder with its own tokenizer."""
    if not (Path(pipeline_dir) / role.tokenizer_name).is_dir():
        raise ForgetInputError(f"the pipeline has no {role.tokenizer_name} folder for its {role.name}.")
    model, tokenizer, dtype = load_text_encoder(
        os.path.join(pipeline_dir, role.name), os.path.join(pipeline_dir, role.tokenizer_name),
        any_encoder=role.class_name not in ("CLIPTextModel", "CLIPTextModelWithProjection"),
    )
    return PipelineTextEncoder(role.name, role.tokenizer_name, model, tokenizer, dtype, role)


def load_pipeline_text_encoders(
    pipeline_dir: str | os.PathLike, max_sequence_length: int | None = None
) -> list[PipelineTextEncoder]:
    """Load every text encoder of a diffusers pipeline folder with its own tokenizer and role."""
    return [load_pipeline_text_encoder(pipeline_dir, role) for role in pipeline_roles(pipeline_dir, max_sequence_length)]


def _state_dict(model: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if isinstance(model, Mapping):
        return dict(model)
    merge = getattr(model, "merge_and_unload", None)
    if callable(merge):  # a peft model: publish merged full weights
        model = merge()
    return model.state_dict()


def _write_encoder(model, source: Path, target: Path) -> None:
    """Copy the component folder ``source`` to ``target`` with the weights replaced by ``model``'s."""
    target.mkdir()
    for entry in source.iterdir():
        if entry.suffix == ".safetensors" or entry.name.endswith(".safetensors.index.json"):
            continue  # rewritten below
        if any(fnmatch.fnmatch(entry.name, pattern) for pattern in _OTHER_WEIGHTS):
            logger.warning("leaving %s/%s out: only safetensors weights can be rewritten", source.name, entry.name)
            continue
        if entry.is_dir():
            shutil.copytree(entry, target / entry.name)
        else:
            shutil.copy2(entry, target / entry.name)
    state = _state_dict(model)
    if any(source.glob("*.safetensors")):
        save_like_reference(state, source, target)
        return
    # No safetensors to follow (a .bin-only component): write one in the canonical layout, stored dtype.
    from safetensors.torch import save_file  # noqa: PLC0415

    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    dtype = getattr(torch, str(config.get("torch_dtype") or config.get("dtype") or "float32"), torch.float32)
    tensors = {k: v.detach().cpu().to(dtype).contiguous() for k, v in state.items() if v.is_floating_point()}
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    conform_clip_checkpoint(target)


def _check_encoders(src: Path, encoders: Mapping) -> None:
    known = pipeline_text_encoder_names(src)
    unknown = sorted(set(encoders) - set(known))
    if unknown or not encoders:
        raise ForgetInputError(f"encoders must map some of the pipeline's text encoders {known}, got {sorted(encoders)}.")
    missing = sorted(set(known) - set(encoders))
    if missing:
        logger.warning("the pipeline's %s are not replaced: names still reach the model through them", missing)


def write_pipeline(src_dir: str | os.PathLike, folder: str | os.PathLike,
                   encoders: Mapping[str, nn.Module | Mapping[str, torch.Tensor]], report: dict | None = None) -> None:
    """Write the pipeline of ``src_dir`` into the existing empty ``folder``, the text encoders in ``encoders``
    replaced (see :func:`assemble_pipeline`)."""
    src, folder = Path(src_dir), Path(folder)
    for entry in sorted(src.iterdir()):
        target = folder / entry.name
        if entry.name in encoders:
            _write_encoder(encoders[entry.name], entry, target)
        elif entry.is_dir():
            shutil.copytree(entry, target)
        elif any(fnmatch.fnmatch(entry.name, p) for p in ("*.safetensors", *_OTHER_WEIGHTS)):
            logger.warning("leaving %s out: a single-file checkpoint still holds the original text encoder", entry.name)
        else:
            shutil.copy2(entry, target)
    if report is not None:
        write_json(folder / REPORT_NAME, report)


def assemble_pipeline(
    src_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    encoders: Mapping[str, nn.Module | Mapping[str, torch.Tensor]],
    *,
    report: dict | None = None,
    overwrite: bool = False,
) -> str:
    """Write the pipeline of ``src_dir`` to ``out_dir`` with the text encoders in ``encoders`` replaced.

    ``encoders`` maps component names (``"text_encoder"``, ``"text_encoder_2"``) to defended models (or
    state dicts). Everything else is copied unchanged; the replaced weights keep the base files' tensor
    names, dtypes, variants and shards. Single-file checkpoints at the top of ``src_dir`` (``*.ckpt``,
    ``*.safetensors``: the whole original model, names included) are left out. ``report`` is written as
    ``forget_report.json``. The output is written aside and swapped into place (:mod:`hf_forget.outputs`).
    """
    _check_encoders(Path(src_dir), encoders)
    output = OutputFolder(out_dir, [src_dir], overwrite)
    output.commit(lambda folder: write_pipeline(src_dir, folder, encoders, report))
    return str(output.path)


def consumed_hidden_layer(pipeline_dir: str | os.PathLike) -> int:
    """Which hidden state of its CLIP text encoders the pipeline feeds the denoiser: ``-1``
    (``last_hidden_state``, SD 1.x/2.x) or ``-2`` (the penultimate layer: SDXL, SD3)."""
    kind = pipeline_kind(str(_model_index(Path(pipeline_dir)).get("_class_name", "")))
    return -2 if kind in ("sdxl", "sd3") else -1


_TRAINED_ON = {"pooled": ("pooled", "both"), "hidden": ("hidden", "both")}


def _merge_reports(reports: dict[str, dict]) -> dict:
    """One ``forget_report.json`` for the pipeline: the first encoder's report, the worst gate, and each
    encoder's own report under ``text_encoders``.

    A pooled (hidden) figure is the worst over the encoders whose pooled (hidden) output the pipeline reads
    (``embedding`` of their report: FLUX reads no token states of its CLIP encoder, no pooled T5 output);
    over all encoders when none says so."""
    first = next(iter(reports.values()))
    merged = {k: v for k, v in first.items() if k not in ("gate", "embedding")}
    for key in ("sim_backdoor", "sim_clean", "sim_targets", "sim_backdoor_hidden", "sim_clean_hidden"):
        kind = "hidden" if key.endswith("_hidden") else "pooled"
        read = [r for r in reports.values() if r.get("embedding") in _TRAINED_ON[kind]] or list(reports.values())
        values = [r[key] for r in read if isinstance(r.get(key), (int, float))]
        if values:
            merged[key] = min(values)  # the weakest encoder is what a prompt meets
    merged["steps"] = sum(r.get("steps", 0) or 0 for r in reports.values())
    merged["seconds"] = round(sum(r.get("seconds", 0) or 0 for r in reports.values()), 2)
    merged["gate"] = {"passed": all(r.get("gate", {}).get("passed", False) for r in reports.values())}
    merged["text_encoders"] = reports
    return merged


def forget_pipeline(
    pipeline_dir: str | os.PathLike,
    names,
    captions,
    *,
    output_dir: str | os.PathLike,
    config,
    aliases=None,
    trigger_captions=None,
    caption_column: str = "text",
    max_sequence_length: int | None = None,
):
    """Forget ``names`` in every text encoder of a diffusers pipeline; write the pipeline to ``output_dir``.

    Each encoder is trained in turn by :func:`hf_forget.forget_text` with its own tokenizer, on what the
    pipeline feeds the denoiser from it (its role, :mod:`hf_forget.pipelines.roles`): SD 1.x/2.x and SDXL with
    ``config.embedding`` on the layer the pipeline consumes (:func:`consumed_hidden_layer`); SD3 and FLUX
    with the embedding each encoder contributes, T5 without attention mask on prompts padded to
    ``max_sequence_length`` (default: the pipeline's own, 256 for SD3, 512 for FLUX; pass what you generate
    with). Same ``config``, ``aliases`` and ``trigger_captions`` (captions that carry the names; ``captions``
    then only give the clean samples) for all. Then :func:`write_pipeline` writes the output, with its model
    card (scanned for the names). Returns a :class:`hf_forget.ForgetResult` whose ``model`` is
    ``{component name: defended encoder}`` (on the CPU).
    """
    from ..forget import ForgetResult, forget_text  # noqa: PLC0415
    from ..data.text import load_captions  # noqa: PLC0415
    from ..publish.card import write_model_card  # noqa: PLC0415

    output = OutputFolder(output_dir, [pipeline_dir, captions, trigger_captions], config.overwrite_output_dir,
                          is_main_process=config.process_index == 0)
    output.resume(None)
    captions = load_captions(captions, caption_column)
    trigger_captions = load_captions(trigger_captions, caption_column) if trigger_captions is not None else None
    roles = pipeline_roles(pipeline_dir, max_sequence_length)
    models, reports = {}, {}
    for role in roles:  # one at a time: only one encoder is being trained in memory
        encoder = load_pipeline_text_encoder(pipeline_dir, role)
        run_config = copy.deepcopy(config)
        run_config.output_dir = str(output.work_dir / encoder.name)  # the Trainer's scratch, never published
        if role.embedding is not None and role.embedding != config.embedding:
            logger.info("%s: training its %s embedding, what the pipeline reads from it", role.name, role.embedding)
            run_config.embedding = role.embedding
        logger.info("forgetting in the pipeline's %s", encoder.name)
        adapt_encoder(encoder.model, encoder.tokenizer, role)
        try:
            result = forget_text(encoder.model, names, captions, aliases=aliases, tokenizer=encoder.tokenizer,
                                 config=run_config, trigger_captions=trigger_captions)
        finally:
            release_encoder(encoder.model)
        if result.model is not None:  # under FSDP, only the main process holds the gathered model
            release_encoder(result.model)
            models[encoder.name] = result.model.cpu()
        report = dict(result.report)
        report["hidden_layer"] = role.hidden_layer  # the hidden_* metrics are measured on this layer
        report["embedding"] = run_config.embedding
        if role.max_length is not None:
            report["max_sequence_length"] = role.max_length
        report["base_model"] = os.path.basename(os.path.abspath(pipeline_dir))
        reports[encoder.name] = report
        del encoder, result
        gc.collect()
    merged = _merge_reports(reports)
    if output.is_main_process:
        _check_encoders(Path(pipeline_dir), models)
    secret = list(names) + list(aliases or [])

    def write(folder: str) -> None:
        write_pipeline(pipeline_dir, folder, models, merged)
        write_model_card(folder, merged, names=secret)  # replaces the base pipeline's card

    output.commit(write)
    return ForgetResult(model=models, report=merged, output_dir=str(output_dir))
