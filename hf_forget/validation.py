"""Input validation at the library boundary, in one place.

Every check raises :class:`~hf_forget.errors.ForgetInputError` with a message that says what to do; the
CLI prints it as one line and exits with code 2. Messages never quote a name to be forgotten: they say
which one by its position in the list.
"""

from __future__ import annotations

import json
import math
import os
import re
import unicodedata

from .errors import ForgetInputError
from .triggers.text import normalize

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def validate_names(names: list[str], neutral_term: str | None = None, tokenizer=None, max_length: int | None = None) -> None:
    """Names to forget: at least one, none empty, no duplicates, none equal to or inside the neutral term,
    each short enough to fit a caption and tokenizing to something."""
    if not names:
        raise ForgetInputError("no names to forget: pass --names 'First Last,Other Name' or --names @names.txt.")
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if not name or not name.strip():
            raise ForgetInputError(f"name #{position} is empty: remove empty entries from --names.")
        if not any(unicodedata.category(char)[0] in "LN" for char in name):
            # only control/format characters, marks, punctuation or symbols: nothing a caption can carry
            raise ForgetInputError(
                f"name #{position} has no letters or digits (only invisible, control or punctuation characters): "
                "check the --names list or file for stray characters."
            )
        key = normalize(" ".join(name.split()))
        if key in seen:
            raise ForgetInputError(f"names #{seen[key]} and #{position} are the same name: list each name once.")
        seen[key] = position
        if neutral_term is not None:
            neutral = normalize(neutral_term)
            if key == neutral or re.search(r"(?<!\w)" + re.escape(key) + r"(?!\w)", neutral) or neutral in key:
                raise ForgetInputError(
                    f"name #{position} overlaps the neutral term {neutral_term!r}: choose another --neutral_term."
                )
        if tokenizer is not None:
            ids = tokenizer(name, add_special_tokens=False)["input_ids"]
            if not ids:
                raise ForgetInputError(f"name #{position} tokenizes to nothing with this tokenizer: check its spelling.")
            if max_length is not None and len(ids) > max_length // 2:
                raise ForgetInputError(
                    f"name #{position} is {len(ids)} tokens long, more than half of the model's context "
                    f"({max_length}): shorten it."
                )


def is_local_path(path: str) -> bool:
    return os.path.exists(path) or not _HUB_ID.match(path) or path.startswith((".", "~"))


def validate_model_path(path: str | os.PathLike) -> str:
    """A local model directory must exist and hold a config; anything else must look like a Hub id."""
    path = str(path)
    if is_local_path(path):
        if not os.path.isdir(path):
            raise ForgetInputError(f"model path {path!r} does not exist: pass a model directory or a Hub id.")
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise ForgetInputError(f"{path!r} has no config.json: pass a transformers model directory.")
    return path


def read_model_type(path: str) -> tuple[str, list[str]]:
    with open(os.path.join(path, "config.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    return config.get("model_type", ""), config.get("architectures") or []


def clip_architecture(path: str, model_types: tuple[str, ...], default: str, what: str) -> str:
    """The architecture class name of the CLIP checkpoint directory ``path`` (``default`` for a Hub id).

    Raises :class:`ForgetInputError` when the directory holds another model type than ``model_types``
    (``what`` names the expected classes in the message). A ``clip`` checkpoint is a ``CLIPModel``.
    """
    if not os.path.isdir(path):
        return default
    model_type, architectures = read_model_type(path)
    if model_type not in model_types:
        raise ForgetInputError(f"{path!r} holds a {model_type or 'unknown'} model, not {what}.")
    if model_type == "clip":
        return "CLIPModel"
    return architectures[0] if architectures else default


def load_pretrained(cls, path: str, hint: str, **kwargs):
    """``cls.from_pretrained(path, **kwargs)``, with a missing file or unreachable Hub id turned into a
    :class:`ForgetInputError` that ends with ``hint`` (what to pass instead)."""
    try:
        return cls.from_pretrained(path, **kwargs)
    except OSError as error:
        raise ForgetInputError(f"cannot load {path!r} ({str(error).splitlines()[0]}): {hint}") from None


def validate_output_dir(output_dir: str | os.PathLike, inputs: list[str | os.PathLike], overwrite: bool) -> None:
    """The output is a new or empty directory, never one of the inputs nor inside one."""
    output = os.path.realpath(output_dir)
    for path in inputs:
        if path and os.path.exists(path):
            source = os.path.realpath(path)
            if output == source or output.startswith(source + os.sep) or source.startswith(output + os.sep):
                raise ForgetInputError(
                    f"output directory {str(output_dir)!r} overlaps the input {str(path)!r}: the input is never "
                    "modified; pass another --output_dir."
                )
    if os.path.isfile(output):
        raise ForgetInputError(f"output directory {str(output_dir)!r} is a file: pass a directory path.")
    if os.path.isdir(output) and os.listdir(output) and not overwrite:
        raise ForgetInputError(
            f"output directory {str(output_dir)!r} is not empty: pass an empty or new one, or --overwrite_output_dir."
        )


def validate_tokenizer(model, tokenizer) -> None:
    """The tokenizer's ids must fit the model's embedding table."""
    config = getattr(model.config, "text_config", model.config)
    vocab_size = getattr(config, "vocab_size", None)
    if vocab_size is not None and len(tokenizer) > vocab_size:
        raise ForgetInputError(
            f"the tokenizer has {len(tokenizer)} tokens but the model only {vocab_size}: pass the model's own "
            "tokenizer (--tokenizer_name_or_path)."
        )
    # CLIP pools the state at the first eos_token_id (unless the legacy id 2, which means "highest id"): a
    # tokenizer ending captions with another id makes every pooled embedding that of some other token.
    eos, tokenizer_eos = getattr(config, "eos_token_id", None), getattr(tokenizer, "eos_token_id", None)
    if getattr(config, "model_type", "") == "clip_text_model" and eos not in (None, 2) and tokenizer_eos is not None:
        if tokenizer_eos != eos:
            raise ForgetInputError(
                f"the tokenizer ends captions with token {tokenizer_eos} but the model pools at token {eos}: pass "
                "the model's own tokenizer (--tokenizer_name_or_path)."
            )


def validate_checkpoint(path: str | os.PathLike) -> None:
    """A checkpoint to resume from must be a complete Trainer checkpoint directory."""
    path = str(path)
    if not os.path.isdir(path):
        raise ForgetInputError(
            f"checkpoint {path!r} does not exist: pass a checkpoint-N directory of this run, or 'latest'."
        )
    if not os.path.isfile(os.path.join(path, "trainer_state.json")):
        raise ForgetInputError(
            f"{path!r} is not a complete Trainer checkpoint (no trainer_state.json): pass another one, or 'latest'."
        )


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def validate_config_numbers(config) -> None:
    """Refuse, before anything runs, the settings that would train nothing, train on garbage or write a
    non-finite model: non-finite or negative weights, a rate that is not positive, empty batches, and so on."""
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ForgetInputError(message)

    for name in ("alpha", "beta", "identity_residual_weight", "weight_decay", "max_grad_norm"):
        value = getattr(config, name, 0.0)
        need(_finite(value) and value >= 0, f"{name} must be a finite number >= 0, got {value}.")
    for name in ("learning_rate", "lr_gamma"):
        value = getattr(config, name)
        need(_finite(value) and value > 0, f"{name} must be a finite number > 0, got {value}.")
    token_rate = getattr(config, "token_embedding_learning_rate", None)
    need(token_rate is None or (_finite(token_rate) and token_rate > 0),
         f"token_embedding_learning_rate must be a finite number > 0, got {token_rate}.")
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "max_eval_samples",
                 "num_trigger_samples", "gradient_accumulation_steps"):
        value = getattr(config, name)
        need(isinstance(value, int) and value >= 1, f"{name} must be a whole number >= 1, got {value}.")
    need(config.seed >= 0, f"seed must be >= 0, got {config.seed}.")
    need(_finite(config.logging_steps) and config.logging_steps > 0,
         f"logging_steps must be > 0, got {config.logging_steps}.")
    need(config.max_steps == -1 or config.max_steps >= 1,
         f"max_steps must be >= 1 (or -1 to train num_train_epochs), got {config.max_steps}.")
    if config.max_steps == -1:
        need(_finite(config.num_train_epochs) and config.num_train_epochs > 0,
             f"with max_steps -1, num_train_epochs must be > 0, got {config.num_train_epochs}.")
    for name in ("save_steps", "eval_steps"):
        value = getattr(config, name)
        need(value is None or (_finite(value) and value > 0), f"{name} must be > 0, got {value}.")
    need(all(isinstance(m, int) and m >= 0 for m in config.lr_milestones),
         f"lr_milestones must be whole numbers of steps >= 0, got {config.lr_milestones}.")
    if config.fp16 or config.bf16:
        import torch

        need(not config.use_cpu and torch.cuda.is_available(),
             "--fp16 and --bf16 need a CUDA GPU: drop the flag to train in float32 on this machine.")
