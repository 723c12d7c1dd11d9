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
from .data.text import normalize

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


def validate_tokenizer_path(path: str | os.PathLike | None) -> None:
    """A local tokenizer directory (``--tokenizer_name_or_path``) must exist; anything else must look like a Hub id."""
    if path is not None and is_local_path(os.fspath(path)) and not os.path.isdir(path):
        raise ForgetInputError(f"tokenizer path {os.fspath(path)!r} does not exist: pass a tokenizer directory or a Hub id.")


def read_model_type(path: str) -> tuple[str, list[str]]:
    """``(model_type, architectures)`` from ``path/config.json``; a config that is no JSON object is refused."""
    config_path = os.path.join(path, "config.json")
    try:
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ForgetInputError(
            f"{config_path!r} is not a readable JSON file ({_first_line(error)}): restore the model's config.json."
        ) from None
    if not isinstance(config, dict):
        raise ForgetInputError(
            f"{config_path!r} holds a JSON {type(config).__name__}, not an object: restore the model's config.json."
        )
    architectures = config.get("architectures") or []
    if not isinstance(architectures, list) or not all(isinstance(a, str) for a in architectures):
        raise ForgetInputError(f"{config_path!r}: 'architectures' must be a list of class names.")
    model_type = config.get("model_type", "")
    return (model_type if isinstance(model_type, str) else ""), architectures


def _first_line(error: BaseException, limit: int = 200) -> str:
    """The telling line of an exception's message: its first, or the nested ``XError: ...`` line after a heading
    that ends with ':' (huggingface_hub's validation errors)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    line = lines[0]
    if line.endswith(":") and len(lines) > 1 and re.match(r"^\w+(Error|Exception): ", lines[1]):
        line = lines[1]
    elif "ignore_mismatched_sizes" in line:
        line = "the weights' shapes do not match config.json"
    line = line.rstrip(":")
    return line if len(line) <= limit else line[: limit - 3] + "..."


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
    """``cls.from_pretrained(path, **kwargs)``, with any failure to read what is there (a missing or corrupt file,
    a config transformers refuses, weights that do not match it, an unreachable Hub id) turned into a
    :class:`ForgetInputError` that ends with ``hint`` (what to pass instead)."""
    try:
        return cls.from_pretrained(path, **kwargs)
    except ForgetInputError:
        raise
    except Exception as error:  # noqa: BLE001 - whatever the files hold, it is the input that is broken
        raise ForgetInputError(f"cannot load {path!r} ({_first_line(error)}): {hint}") from None




def load_tokenizer(path: str, hint: str, **kwargs):
    """``AutoTokenizer.from_pretrained(path, **kwargs)`` through :func:`load_pretrained`, refused when it holds no
    vocabulary: with its files missing, transformers builds a CLIP tokenizer of special tokens only, without a word."""
    from transformers import AutoTokenizer

    tokenizer = load_pretrained(AutoTokenizer, path, hint, **kwargs)
    if len(tokenizer) <= len(set(tokenizer.all_special_ids)):
        raise ForgetInputError(
            f"the tokenizer of {path!r} has no vocabulary, only {len(tokenizer)} special tokens (are its tokenizer "
            f"files missing?): {hint}"
        )
    return tokenizer


def check_name_files_outside(output_dir: str | os.PathLike, values: list[str] | None, overwrite: bool) -> None:
    """The ``@FILE`` names files of ``values`` (``--names``/``--aliases``) are inputs too: the output may not hold
    them (``--overwrite_output_dir`` would delete them) nor lie inside them."""
    from .outputs import check_output_path

    files = [value.lstrip("\ufeff")[1:] for value in values or () if value.lstrip("\ufeff").startswith("@")]
    if files:
        check_output_path(output_dir, files, overwrite)


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
    workers = getattr(config, "dataloader_num_workers", 0)
    need(isinstance(workers, int) and workers >= 0, f"dataloader_num_workers must be 0 or more, got {workers}.")
    limit = getattr(config, "save_total_limit", None)
    need(limit is None or (isinstance(limit, int) and limit >= 1),
         f"save_total_limit must be 1 or more (or unset), got {limit}: a checkpoint is what a run resumes from.")
    warmup = getattr(config, "warmup_steps", 0)
    need(_finite(warmup) and warmup >= 0, f"warmup_steps must be 0 or more, got {warmup}.")
    for name in ("min_sim_backdoor", "min_sim_clean"):
        value = getattr(config, name, 0.0)
        need(_finite(value), f"{name} must be a finite cosine similarity threshold, got {value}.")
    lora_r, lora_alpha = getattr(config, "lora_r", 0), getattr(config, "lora_alpha", 16)
    need(isinstance(lora_r, int) and lora_r >= 0, f"lora_r must be 0 (full fine-tuning) or a positive rank, got {lora_r}.")
    need(lora_r == 0 or (_finite(lora_alpha) and lora_alpha > 0),
         f"lora_alpha must be > 0 with LoRA (it scales the adapters; 0 would train nothing), got {lora_alpha}.")
    validate_report_to(getattr(config, "report_to", None))
    check_mixed_precision(config)


def check_mixed_precision(config) -> None:
    """fp16 and bf16 are accepted on a CUDA GPU only (elsewhere a run trains in float32). A function of its own so
    that a test can lift the rule and run the bf16 autocast path on the CPU."""
    if config.fp16 or config.bf16:
        import torch

        if config.use_cpu or not torch.cuda.is_available():
            raise ForgetInputError("--fp16 and --bf16 need a CUDA GPU: drop the flag to train in float32 on this machine.")


# The stranger options as a message spells them: keyword arguments of forget_faces / forget_joint, or flags.
_STRANGER_WORDS = {
    "python": {
        "strangers": "strangers", "lookalikes": "lookalikes_per_person", "counterfactual": "target='counterfactual'",
        "picks": "target='counterfactual' without counterfactual_faces", "no_kept_face": "keep_faces=False",
        "pass_strangers": "pass strangers=... (a folder with one subfolder per never-seen person)",
        "or_given": ", or counterfactual_faces",
    },
    "cli": {
        "strangers": "--strangers", "lookalikes": "--lookalikes_per_person", "counterfactual": "--target counterfactual",
        "picks": "--target counterfactual", "no_kept_face": "--keep_faces false",
        "pass_strangers": "pass --strangers DIR (one subfolder per never-seen person)", "or_given": "",
    },
}


def picks_counterfactuals(target: str, counterfactual_faces) -> bool:
    """Whether the counterfactual people are to be chosen among the strangers (none were given)."""
    return target == "counterfactual" and counterfactual_faces is None


def check_stranger_options(target: str, strangers, lookalikes_per_person, keep_faces, counterfactual_faces=None,
                           spelling: str = "python") -> None:
    """Refuse, before anything is loaded, strangers that nothing would use, look-alikes with nowhere to come from or
    to go, and counterfactual people with nobody to choose them from. ``spelling``: ``"python"`` or ``"cli"``, how
    the message names the options."""
    words = _STRANGER_WORDS[spelling]
    lookalikes = words["lookalikes"]
    if isinstance(lookalikes_per_person, bool) or not isinstance(lookalikes_per_person, int) or lookalikes_per_person < 0:
        raise ForgetInputError(f"{lookalikes} must be an integer, 0 or more, got {lookalikes_per_person!r}.")
    picks = picks_counterfactuals(target, counterfactual_faces)
    if strangers is None:
        if lookalikes_per_person:
            raise ForgetInputError(f"{lookalikes} chooses look-alikes among {words['strangers']}: "
                                   f"{words['pass_strangers']}.")
        if picks:
            raise ForgetInputError(f"{words['counterfactual']} needs a never-seen person per person to forget, "
                                   f"chosen among many: {words['pass_strangers']}{words['or_given']}.")
        return
    if not picks and not lookalikes_per_person:
        raise ForgetInputError(f"{words['strangers']} is used to choose the counterfactual people ({words['picks']}) "
                               f"or look-alikes to keep ({lookalikes} > 0): set one or drop {words['strangers']}.")
    if lookalikes_per_person and keep_faces is False:
        raise ForgetInputError(f"{lookalikes} keeps look-alikes in place, {words['no_kept_face']} keeps no face: "
                               "drop one.")


def validate_report_to(report_to) -> None:
    """Each ``--report_to`` integration must be one transformers knows, and installed."""
    values = [report_to] if isinstance(report_to, str) else list(report_to or [])
    values = [v for v in values if v not in ("none", "all")]
    if not values:
        return
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    for value in values:
        if value not in INTEGRATION_TO_CALLBACK:
            raise ForgetInputError(
                f"--report_to {value!r} is not an integration transformers knows: pass one of "
                f"{', '.join(INTEGRATION_TO_CALLBACK)}, or none."
            )
        if value not in get_available_reporting_integrations():
            raise ForgetInputError(f"--report_to {value}: {value} is not installed: install it, or pass --report_to none.")


def check_device(device: str | None) -> str | None:
    """A ``--device`` torch can use on this machine (``None``: let the command choose)."""
    if device is None:
        return None
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ForgetInputError(f"--device {device!r} is not a torch device: pass cpu, cuda or cuda:N.") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ForgetInputError(f"--device {device}: this machine has no CUDA GPU available; pass --device cpu.")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ForgetInputError(
                f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s); pass another index."
            )
    elif parsed.type != "cpu":
        backend = getattr(torch.backends, parsed.type, None) or getattr(torch, parsed.type, None)
        available = getattr(backend, "is_available", None)
        if not (callable(available) and available()):
            raise ForgetInputError(f"--device {device}: not available on this machine; pass --device cpu.")
    return device
