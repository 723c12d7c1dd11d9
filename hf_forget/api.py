"""High-level calls: load an encoder, forget names, write the defended checkpoint atomically."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import AutoTokenizer, CLIPModel, CLIPTextModel, CLIPTextModelWithProjection, set_seed
from transformers.utils import logging

from .config import TextForgetConfig
from .errors import ForgetInputError
from .triggers.text import load_captions
from .validation import (
    clip_architecture,
    load_pretrained,
    read_model_type,
    validate_checkpoint,
    validate_model_path,
    validate_names,
    validate_output_dir,
    validate_tokenizer,
)

logger = logging.get_logger(__name__)

_TEXT_CLASSES = {
    "CLIPTextModel": CLIPTextModel,
    "CLIPTextModelWithProjection": CLIPTextModelWithProjection,
    "CLIPModel": CLIPModel,
}


@dataclass
class TextScriptArguments:
    """Arguments of `hf-forget text` and `examples/forget_text.py` besides the [`TextForgetConfig`]."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "CLIP text encoder or CLIPModel: a local directory or a Hub id."}
    )
    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "Tokenizer, if not stored with the model."}
    )
    pipeline: str | None = field(
        default=None, metadata={"help": "A diffusers pipeline directory whose text encoder(s) to defend."}
    )
    captions: str | None = field(
        default=None,
        metadata={"help": "Generic captions: a text file (one a line), a saved dataset directory or a dataset name."},
    )
    caption_column: str = field(default="text", metadata={"help": "Caption column of a dataset."})
    caption_split: str = field(default="train", metadata={"help": "Split of a dataset."})
    trigger_captions: str | None = field(
        default=None,
        metadata={"help": "Captions that carry the names instead of --captions (which then only give the clean "
                  "samples), e.g. short captions about a person; same formats as --captions."},
    )


@dataclass
class ForgetResult:
    """What a forgetting run returns: the defended model, its report, and where it was written."""

    model: nn.Module
    report: dict
    output_dir: str | None = None

    @property
    def passed(self) -> bool:
        return bool(self.report.get("gate", {}).get("passed", False))


def load_text_encoder(
    path: str,
    tokenizer_path: str | None = None,
    subfolder: str = "",
    tokenizer_subfolder: str = "",
    any_encoder: bool = False,
) -> tuple[nn.Module, object, torch.dtype]:
    """A CLIP text encoder (or CLIPModel), its tokenizer and its stored dtype, from a directory or Hub id.

    With ``any_encoder``, other text encoders load too (BERT / sentence-transformers, ``T5EncoderModel``,
    ...): through the class their config names, or ``AutoModel`` (see :mod:`hf_forget.pooling`).
    """
    validate_model_path(path)
    config_dir = os.path.join(path, subfolder)
    if any_encoder and os.path.isdir(config_dir):
        model_type, architectures = read_model_type(config_dir)
        if model_type not in ("clip_text_model", "clip", "clip_vision_model"):
            return _load_any_text_encoder(path, tokenizer_path, subfolder, tokenizer_subfolder, architectures)
    architecture = clip_architecture(
        config_dir, ("clip_text_model", "clip"), "CLIPTextModel",
        "a CLIP text encoder: pass a CLIPTextModel, CLIPTextModelWithProjection or CLIPModel checkpoint "
        "(for a diffusers pipeline, use --pipeline)",
    )
    hint = ("pass a local directory with weights and a tokenizer (--tokenizer_name_or_path), or a Hub id "
            "while online.")
    model = load_pretrained(_TEXT_CLASSES.get(architecture, CLIPTextModel), path, hint, subfolder=subfolder)
    tokenizer = load_pretrained(AutoTokenizer, tokenizer_path or path, hint, subfolder=tokenizer_subfolder)
    dtype = next(model.parameters()).dtype
    validate_tokenizer(model, tokenizer)
    return model.float(), tokenizer, dtype


def _load_any_text_encoder(
    path: str, tokenizer_path: str | None, subfolder: str, tokenizer_subfolder: str, architectures: list[str]
) -> tuple[nn.Module, object, torch.dtype]:
    """A non-CLIP text encoder (issue 8): the architecture class of its config if transformers has it, else
    ``AutoModel``; rejected unless :func:`~hf_forget.encoders.check_text_encoder` accepts it."""
    import transformers

    from .encoders import check_text_encoder

    cls = getattr(transformers, architectures[0], None) if architectures else None
    cls = cls if cls is not None and hasattr(cls, "from_pretrained") else transformers.AutoModel
    try:
        model = cls.from_pretrained(path, subfolder=subfolder)
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or path, subfolder=tokenizer_subfolder)
    except (OSError, ValueError) as error:
        raise ForgetInputError(
            f"cannot load {path!r} ({str(error).splitlines()[0]}): pass a local directory with weights and a "
            "tokenizer (--tokenizer_name_or_path), or a Hub id while online."
        ) from None
    check_text_encoder(model)
    dtype = next(model.parameters()).dtype
    validate_tokenizer(model, tokenizer)
    return model.float(), tokenizer, dtype


def _stage(output_dir: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(output_dir)), f".{os.path.basename(os.path.abspath(output_dir))}.incomplete")


def forget_text(
    model: nn.Module | str,
    names: list[str] | None = None,
    captions=None,
    *,
    tokenizer=None,
    output_dir: str | None = None,
    eval_captions: list[str] | None = None,
    config: TextForgetConfig | None = None,
    resume_from_checkpoint: str | bool | None = None,
    caption_column: str = "text",
    base_path: str | None = None,
    save_dtype: torch.dtype | None = None,
    callbacks: list | None = None,
    trigger_captions=None,
    **config_kwargs,
) -> ForgetResult:
    """Forget ``names`` in a CLIP text encoder and (with ``output_dir``) write the defended checkpoint.

    The output is staged in a hidden sibling directory (``.NAME.incomplete``, which also holds the
    Trainer's checkpoints for ``resume_from_checkpoint``) and renamed into place when complete, so a crash
    never leaves a half-written output and the input is never touched.

    ``model`` is a path or Hub id (loaded here), or a model object, which becomes the student and is trained
    **in place** (the teacher's outputs and the anchor weights are taken before the first step): pass
    ``copy.deepcopy(model)`` to keep the original. ``result.model`` is the defended model (for a LoRA
    student, merged into full weights).

    ``base_path`` (the directory the model came from, never written to) and ``save_dtype`` (the dtype to
    save in) are filled in when ``model`` is a path. ``callbacks`` are extra ``TrainerCallback``s.
    ``trigger_captions`` (same formats as ``captions``) carry the names instead of ``captions``, which then
    only give the clean samples (see :class:`~hf_forget.TextForgetTrainer`).

    ``resume_from_checkpoint=True`` continues from the latest *complete* checkpoint in the staging directory
    (one killed while being written is skipped); with none, the run starts from scratch with a warning.

    Example:
    ```python
    from hf_forget import forget_text

    result = forget_text("path/to/clip-text-encoder", ["Jane Doe"], "captions.txt", output_dir="defended")
    print(result.report["sim_backdoor"], result.passed)
    ```
    """
    source, dtype = base_path, save_dtype
    if isinstance(model, str):
        source = model
        model, loaded_tokenizer, dtype = load_text_encoder(model)
        tokenizer = tokenizer or loaded_tokenizer
    if tokenizer is None:
        raise ForgetInputError("pass the model's tokenizer (tokenizer=...).")
    if config is None:
        config = TextForgetConfig(output_dir=output_dir or "hf_forget_output", names=names or [], **config_kwargs)
    elif names:
        config.names = list(names)
    if captions is None:
        raise ForgetInputError("no captions: pass generic captions (a list, a text file or a dataset).")
    captions = load_captions(captions, caption_column=caption_column)
    if trigger_captions is not None:
        trigger_captions = load_captions(trigger_captions, caption_column=caption_column)

    staging = None
    if output_dir is not None:
        validate_output_dir(output_dir, [source] if source else [], config.overwrite_output_dir)
        staging = _stage(output_dir)
        config.output_dir = staging
        resume_from_checkpoint = resolve_resume(staging, resume_from_checkpoint)
        if not resume_from_checkpoint and os.path.isdir(staging) and config.process_index == 0:
            shutil.rmtree(staging)  # a stale run that was not resumed
    else:
        resume_from_checkpoint = resolve_resume(config.output_dir, resume_from_checkpoint)
    set_seed(config.seed)

    from .trainers.text import TextForgetTrainer

    trainer = TextForgetTrainer(model, config, tokenizer, captions, eval_captions=eval_captions, callbacks=callbacks,
                                trigger_captions=trigger_captions)
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    report = trainer.forget_report()
    logger.info("forgetting done: %s", {k: v for k, v in report.items() if k.startswith("sim_")})
    if output_dir is not None:
        _publish_atomically(trainer, report, staging, output_dir, dtype)
    return ForgetResult(model=trainer.defended_model(), report=report, output_dir=output_dir)


def latest_complete_checkpoint(folder: str) -> str | None:
    """The highest-step ``checkpoint-N`` in ``folder`` whose ``trainer_state.json`` (written last) reads back."""
    if not os.path.isdir(folder):
        return None
    steps = sorted(
        (int(entry.rsplit("-", 1)[1]), entry)
        for entry in os.listdir(folder)
        if entry.startswith("checkpoint-") and entry.rsplit("-", 1)[1].isdigit()
    )
    for _, entry in reversed(steps):
        path = os.path.join(folder, entry)
        try:
            with open(os.path.join(path, "trainer_state.json"), encoding="utf-8") as handle:
                json.load(handle)
        except (OSError, ValueError):
            logger.warning("skipping %s: incomplete (the run stopped while writing it)", entry)
            continue
        return path
    return None


def resolve_resume(folder: str, resume: str | bool | None) -> str | None:
    """What ``Trainer.train(resume_from_checkpoint=...)`` gets: for ``True``/``"latest"`` the latest complete
    checkpoint in ``folder`` (``None``, with a warning, when there is none: the run starts from scratch); a
    path is validated; ``None``/``False`` stay ``None``."""
    if resume is True or resume == "latest":
        resume = latest_complete_checkpoint(folder)
        if resume is None:
            logger.warning("no complete checkpoint to resume from in %s: starting from scratch", folder)
    if not resume:
        return None
    validate_checkpoint(resume)
    logger.info("resuming from %s", os.path.basename(os.path.normpath(resume)))
    return str(resume)


def _publish_atomically(trainer, report: dict, staging: str, output_dir: str, dtype: torch.dtype | None) -> None:
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        os.makedirs(staging, exist_ok=True)
        for entry in os.listdir(staging):  # checkpoints were only for resuming this run
            path = os.path.join(staging, entry)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        trainer.save_defended(staging, report, dtype=dtype)
        if os.path.isdir(output_dir):
            shutil.rmtree(output_dir)  # empty, or --overwrite_output_dir (validated before training)
        os.replace(staging, output_dir)
        logger.info("defended checkpoint written to %s", output_dir)
    trainer.accelerator.wait_for_everyone()


def run_text(script_args: TextScriptArguments, config: TextForgetConfig) -> ForgetResult:
    """What `hf-forget text` and `examples/forget_text.py` do with their parsed arguments."""
    if not script_args.model_name_or_path and not script_args.pipeline:
        raise ForgetInputError("pass --model_name_or_path (a CLIP text encoder) or --pipeline (a diffusers pipeline).")
    if not script_args.captions:
        raise ForgetInputError("pass --captions: a text file with one generic caption a line, or a dataset.")
    validate_names(config.names, config.neutral_term)
    inputs = [
        script_args.model_name_or_path, script_args.pipeline, script_args.tokenizer_name_or_path, script_args.captions,
        script_args.trigger_captions,
    ]
    validate_output_dir(config.output_dir, inputs, config.overwrite_output_dir)  # never over (or around) an input
    captions = load_captions(script_args.captions, script_args.caption_column, script_args.caption_split)
    carriers = None
    if script_args.trigger_captions:
        carriers = load_captions(script_args.trigger_captions, script_args.caption_column, script_args.caption_split)
    if script_args.pipeline:
        from .pipelines import forget_pipeline  # noqa: PLC0415 - optional path

        return forget_pipeline(script_args.pipeline, captions, config, trigger_captions=carriers)
    model, tokenizer, dtype = load_text_encoder(script_args.model_name_or_path, script_args.tokenizer_name_or_path)
    resume = True if config.resume_from_checkpoint == "latest" else config.resume_from_checkpoint
    return forget_text(
        model,
        tokenizer=tokenizer,
        captions=captions,
        output_dir=config.output_dir,
        config=config,
        resume_from_checkpoint=resume,
        base_path=script_args.model_name_or_path,
        save_dtype=dtype,
        trigger_captions=carriers,
    )
