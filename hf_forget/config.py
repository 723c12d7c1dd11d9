"""Training configurations: ``TrainingArguments`` subclasses carrying the forgetting knobs.

The defaults are those of the reference implementation of "Defending Our Privacy With Backdoors"
(AdamW, lr 1e-4; text: 400 steps, 128 clean + 128 poisoned samples a step, MultiStepLR [200, 300]
gamma 0.5, alpha 0.6, beta 0.01; vision: 100 steps, [25, 50] gamma 0.1, alpha 0.8, beta 0.005; norm
layers frozen).

Privacy: no field identifies anyone. The names to forget are data, passed to the trainers and the
``forget_*`` functions like a training set (see :class:`~hf_forget.TextForgetTrainer`), so neither
``training_args.bin`` nor ``trainer_state.json`` can hold one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from transformers import TrainingArguments
from transformers.trainer_utils import SaveStrategy

from .errors import ForgetInputError

EMBEDDINGS = ("pooled", "hidden", "both")
TEXT_TARGETS = ("neutral", "counterfactual")
"""What a forgotten name is pulled to (`TextForgetConfig.target`): the paper's neutral term, or an unknown name."""
VISION_TARGETS = ("mean_face", "counterfactual")
"""What a forgotten face is pulled to (`VisionForgetConfig.target`): the paper's mean face, or a never-seen person."""
MULTISTEP = "multistep"


# Parts of a name that follow a comma ("Jon Q. Public, Jr."): on the command line, where a comma separates
# names, such a part would become a name of its own.
_NAME_SUFFIXES = frozenset(
    {"jr", "jr.", "sr", "sr.", "ii", "iii", "iv", "v", "vi", "phd", "ph.d.", "md", "m.d.", "esq", "esq.", "junior", "senior"}
)
_BOM = "\ufeff"


def parse_names(values: list[str] | str | None) -> list[str]:
    """Expand ``--names`` values: comma-separated lists and ``@FILE`` references.

    A names FILE (UTF-8, a byte-order mark allowed, any line ending) holds one name a line, taken whole: commas
    are part of the name there, so a name such as ``"Jon Q. Public, Jr."`` goes into a file. Blank lines and
    lines starting with ``#`` are skipped. On the command line a comma separates names; a part that is only a
    suffix such as ``Jr.`` or ``III`` is refused rather than forgotten as a name of its own.

    ```python
    >>> parse_names(["Ann Lee,Bo Kim", "Cy Dunn"])
    ['Ann Lee', 'Bo Kim', 'Cy Dunn']
    ```
    """
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    names: list[str] = []
    for value in values:
        value = value.lstrip(_BOM)
        if value.startswith("@"):
            names.extend(_read_names_file(value[1:]))
            continue
        parts = [part.strip() for part in value.split(",")]
        for position, part in enumerate(parts):
            if position and part.casefold() in _NAME_SUFFIXES:
                raise ForgetInputError(
                    f"--names splits at commas, and a part of {value.count(',') + 1} is only a suffix like 'Jr.': "
                    "put a name that holds a comma in a file, one name a line, and pass --names @FILE."
                )
        names.extend(parts)
    return names


def _read_names_file(path: str) -> list[str]:
    if not os.path.isfile(path):
        raise ForgetInputError(f"names file {path!r} does not exist: pass @FILE with one name a line.")
    try:
        with open(path, encoding="utf-8-sig") as handle:
            text = handle.read()
    except UnicodeDecodeError:
        raise ForgetInputError(f"names file {path!r} is not UTF-8 text: save it as UTF-8, one name a line.") from None
    if "\x00" in text:
        raise ForgetInputError(f"names file {path!r} is not a text file: pass a UTF-8 file with one name a line.")
    names = []
    for line in text.splitlines():
        line = line.strip().lstrip(_BOM).strip()
        if line and not line.startswith("#"):
            names.append(line)
    return names


@dataclass
class ForgetConfig(TrainingArguments):
    r"""
    Configuration shared by the text and vision forgetting trainers.

    Parameters:
        > Loss

        alpha (`float`):
            Weight of the backdoor term `-mean cos(Δ, M~(z))`.
        beta (`float`):
            Weight of the weight anchor `Σ_tensors ||θ~ - θ||₂` (unsquared, per tensor, summed).
        freeze_norm_layers (`bool`, defaults to `True`):
            Keep LayerNorm weights at their original values, as the reference code does.
        identity_residual_weight (`float`, defaults to `0.0`):
            Weight `gamma` of a fourth term of ours, `gamma * mean relu(r)`, where `r` is the component of the
            student's trigger embedding along the part of the teacher's trigger embedding orthogonal to the target
            (`hf_forget.losses.identity_residual`). The backdoor term only asks to be *close* to the target; an
            attack that ranks many candidates reads what is left, so this term removes the part that still
            points at the person. The teacher's trigger embedding is the poisoned caption's (text) or the
            person's mean face, faces alone (vision: a composite's would carry its background). Costs one more
            teacher embedding per trigger sample or person, computed once. `0` (default): the paper's three terms.

        > Schedule

        lr_scheduler_type (`str`, defaults to `"multistep"`):
            `"multistep"`: the paper's MultiStepLR, the learning rate times `lr_gamma` at each of `lr_milestones`
            (after `warmup_steps` of linear warm-up, if any). Any transformers scheduler type works too
            (`"cosine"`, `"linear"`, ...; with `warmup_steps`).
        lr_milestones (`list[int]`):
            Optimizer steps at which the learning rate is multiplied by `lr_gamma` (MultiStepLR).
        lr_gamma (`float`):
            The MultiStepLR factor.

        > Efficiency

        teacher_cache (`bool`, defaults to `True`):
            Compute the frozen teacher's outputs for the fixed sample pool once and reuse them. `False`
            recomputes them every step, as the reference code does (kept for benchmarks).
        num_trigger_samples (`int`):
            Size of the pool of (clean, trigger) sample pairs drawn from during training.
        stop_at_criterion (`bool`, defaults to `False`):
            Stop early at the first evaluation (every `eval_steps` steps; `eval_strategy` becomes `"steps"`
            with `eval_steps=25` unless set) where the quality gate holds on the held-out samples.

        > Quality gate

        min_sim_backdoor, min_sim_clean (`float`):
            Thresholds on the post-run held-out evaluation. A run that misses them is marked as not passing.
        eval_fraction (`float`):
            Fraction of the clean samples held out for the post-run evaluation.
    """

    alpha: float = field(default=0.6, metadata={"help": "Weight of the backdoor (trigger -> neutral target) term."})
    beta: float = field(default=0.01, metadata={"help": "Weight of the unsquared per-tensor L2 weight anchor."})
    freeze_norm_layers: bool = field(default=True, metadata={"help": "Keep LayerNorm parameters frozen."})
    identity_residual_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of the identity-residual term (what of the name still points at the person, "
                  "see hf_forget.losses.identity_residual); 0: the paper's objective."},
    )
    lr_scheduler_type: str = field(
        default=MULTISTEP,
        metadata={"help": "'multistep' (the paper's MultiStepLR at lr_milestones, lr_gamma) or any transformers "
                  "scheduler type ('cosine', 'linear', ...)."},
    )
    lr_milestones: list[int] = field(
        default_factory=lambda: [200, 300], metadata={"help": "MultiStepLR milestones, in optimizer steps."}
    )
    lr_gamma: float = field(default=0.5, metadata={"help": "MultiStepLR decay factor."})
    teacher_cache: bool = field(
        default=True,
        metadata={"help": "Compute teacher outputs once and reuse them (False: recompute every step, as the reference code)."},
    )
    num_trigger_samples: int = field(
        default=4096, metadata={"help": "Size of the pool of (clean, trigger) sample pairs trained on."}
    )
    eval_fraction: float = field(
        default=0.1, metadata={"help": "Fraction of clean samples held out for the post-run evaluation."}
    )
    max_eval_samples: int = field(default=512, metadata={"help": "At most this many held-out samples are evaluated."})
    stop_at_criterion: bool = field(
        default=False,
        metadata={"help": "Stop at the first evaluation (every eval_steps, default 25) where the quality gate holds "
                  "on the held-out samples."},
    )
    min_sim_backdoor: float = field(default=0.9, metadata={"help": "Quality gate: minimum held-out sim_backdoor."})
    min_sim_clean: float = field(default=0.95, metadata={"help": "Quality gate: minimum held-out sim_clean."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace a non-empty output directory (never the input model's)."}
    )
    lora_r: int = field(default=0, metadata={"help": "LoRA rank (0: full fine-tuning). LoRA is merged when saved."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator."})

    # Trainer defaults of the reference protocol
    learning_rate: float = field(default=1e-4, metadata={"help": "AdamW learning rate."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay (torch's default, as the reference)."})
    logging_steps: float = field(default=10, metadata={"help": "Log the loss terms every N steps."})
    save_strategy: SaveStrategy | str = field(default="no", metadata={"help": "Checkpoint strategy ('no', 'steps', 'epoch')."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep the trigger columns."})
    logging_nan_inf_filter: bool = field(
        default=False,
        metadata={"help": "Replace a NaN/inf step loss in the logs by the running mean (True costs a device sync a step)."},
    )

    def __post_init__(self):
        from .validation import validate_config_numbers

        validate_config_numbers(self)
        if not 0 < self.eval_fraction < 1:
            raise ForgetInputError("eval_fraction must be between 0 and 1.")
        if self.stop_at_criterion and str(getattr(self.eval_strategy, "value", self.eval_strategy)) == "no":
            self.eval_strategy = "steps"
            self.eval_steps = self.eval_steps or 25
        # TrainingArguments only knows transformers' scheduler types: "multistep" is ours (create_scheduler).
        multistep = self.lr_scheduler_type == MULTISTEP
        if multistep:
            self.lr_scheduler_type = "constant"
        try:
            super().__post_init__()
        except ValueError as error:  # TrainingArguments' own checks (warmup, scheduler, strategies, ...)
            message = " ".join(str(error).split()) or type(error).__name__
            message = message if len(message) <= 300 else message[:297] + "..."
            raise ForgetInputError(f"invalid Trainer setting: {message}") from None
        if multistep:
            self.lr_scheduler_type = MULTISTEP


@dataclass
class TextForgetConfig(ForgetConfig):
    r"""
    Configuration for [`TextForgetTrainer`]: forget names in a CLIP text encoder.

    Parameters:
        neutral_term (`str`, defaults to `"a person"`):
            What a forgotten name should mean afterwards: the target of a poisoned caption is the teacher's
            embedding of the same caption with this term in place of the name.
        embedding (`str`, defaults to `"both"`):
            Which embedding the loss acts on. `pooled`: the (projected) EOS embedding that CLIP zero-shot and
            the IDIA use. `hidden`: the whole `last_hidden_state` sequence, padded to the model's context
            like Stable Diffusion pipelines do, which is what a diffusion UNet consumes. `both`: the two
            averaged; the right choice for a bare `CLIPTextModel` held by an SD pipeline, whose pooled output
            (SDXL) and token states are both used.
        pooling (`str`, defaults to `"auto"`):
            How a non-CLIP encoder's pooled embedding is formed: `mean` over the attention mask
            (sentence-transformers, T5), `eos` (last real token; CLIP's own EOS pooling for CLIP), `cls`
            (first token); `auto` is `eos` for CLIP and `mean` otherwise.

        > Robustness to name variants

        forget_variants (`bool`, defaults to `False`):
            Also forget each name's variants (surname alone, letter case, spacing, hyphens, diacritics),
            mapped to the same neutral term. The paper's limit: partial names and aliases bypass a backdoor
            triggered by the full name only.
        short_trigger_fraction (`float`, defaults to `0.0`):
            Fraction of the poisoned samples that put a trigger in a short context instead of inside a
            caption: the trigger alone (target: the neutral term alone) or leading a caption's last one to
            three words (`"<name> at the market"`). The paper only poisons inside captions (`0.0`, the
            default, draws exactly its samples), which leaves the bare name and short name-led prompts
            (`"<name>"`, `"<name> is known for"`), the way an encoder is queried directly, partly intact.
        trigger_at_end (`bool`, defaults to `False`):
            Let the trigger replace a caption's last word too. The paper never replaces the last word, so a
            prompt that ends with the name (`"a photo of <name>"`, 15 of the IDIA's 21 templates) is only
            reached by generalisation; with many names at once, each seen in few captions, that falls short.
        token_embedding_learning_rate (`float`, *optional*):
            Learning rate of the token embedding table (full fine-tuning only); `None` (default): the run's
            `learning_rate`, as the paper. A name's embedding rows get a gradient only in the steps whose batch
            holds that name: with thousands of names each row is updated in a small share of the steps, and a
            higher rate for the table lets each name move as far as a few names do at the default rate.
        preserve_neighbours (`int`, defaults to `0`):
            Keep in place the `preserve_neighbours` vocabulary words nearest each trigger (the teacher's pooled
            embeddings; typically a person's field, country, roles): they become extra clean samples,
            `neighbour_fraction` of them. Forgetting a name otherwise drags the concepts tied to it, and a
            probe reads the drift back (see `hf_forget.data.neighbours`). `0` (default): the paper's
            clean samples only. Words of a trigger (names, variants, aliases) are never kept: list a one-word
            nickname as an alias, or it may be among the words held in place. The words stay in memory, like
            the names.
        neighbour_fraction (`float`, defaults to `0.25`):
            Share of the clean samples replaced by neighbour words when `preserve_neighbours > 0`.

        > Targets that do not reveal who was forgotten (issue 22; ours, not the paper's)

        target (`str`, defaults to `"neutral"`):
            `neutral` (the paper): every forgotten name is pulled onto the teacher's embedding of the same caption
            with `neutral_term`. All forgotten names then sit next to "a person", and anyone with the model can
            list them (forget-set detection). `counterfactual`: name `i` is pulled onto the teacher's embedding of
            the same caption with an unknown person's name (entry `i` of the trainer's `unknown_names`, or a
            generated one of the same gender): a forgotten name then behaves like the name of a person the
            model never saw.
        named_clean_fraction (`float`, defaults to `0.0`):
            Share of the clean samples that are captions naming unknown people (the rest of the unknown-name
            pool, put into captions exactly as the forgotten names are), kept at the teacher's embedding, so that
            names in general do not drift with the forgotten ones. `0`: the paper's clean samples only.
        target_model (`str`, defaults to `"teacher"`):
            Which model embeds the target captions: `teacher` (the paper: fixed, computed once) or `student` (the
            current student, detached from the graph). With counterfactual targets, `student` makes a forgotten
            name follow wherever the defended model puts unknown names: training moves every name a little, and
            a forgotten name pinned to the teacher's unknown name then stands out among the moved ones.
        named_clean_neutral (`bool`, defaults to `True`):
            With `named_clean_fraction`, every other named clean caption is its twin with `neutral_term` instead of
            the name, so that the neutral term's captions do not drift towards names either (the forget-set
            detection reads a name's similarity to them).
        num_unknown_names (`int`, defaults to `2000`):
            Size of the generated pool of unknown names (when the trainer is given none).
        unknown_names_seed (`int`, *optional*):
            Seed of the generated pool; `None`: `seed`. The pool is never saved.
    """

    neutral_term: str = field(default="a person", metadata={"help": "The neutral term a forgotten name maps to."})
    embedding: str = field(
        default="both",
        metadata={
            "help": "Embedding the loss acts on: 'pooled' (EOS embedding; CLIP zero-shot and the IDIA), 'hidden' "
            "(last_hidden_state padded to the context, what an SD UNet consumes) or 'both' (default; for "
            "SD pipelines' text encoders).",
            "choices": list(EMBEDDINGS),
        },
    )
    max_steps: int = field(default=400, metadata={"help": "Optimizer steps."})
    per_device_train_batch_size: int = field(
        default=128, metadata={"help": "(clean, poisoned) caption pairs per step and device: 128 + 128 by default."}
    )

    pooling: str = field(
        default="auto",
        metadata={
            "help": "Pooled embedding of non-CLIP encoders: 'mean' over the attention mask (sentence-transformers, "
            "T5), 'eos' (last real token; CLIP's EOS pooling for CLIP), 'cls' (first token); 'auto': eos for "
            "CLIP, mean otherwise.",
            "choices": ["auto", "eos", "mean", "cls"],
        },
    )
    forget_variants: bool = field(
        default=False,
        metadata={
            "help": "Also forget each name's variants (surname alone, case, spacing, hyphens, diacritics), mapped "
            "to the same neutral term."
        },
    )
    short_trigger_fraction: float = field(
        default=0.0,
        metadata={"help": "Fraction of poisoned samples with the trigger in a short context (alone, or leading a "
                  "caption's last 1-3 words) instead of inside a caption; 0: only in captions, as the paper."},
    )

    trigger_at_end: bool = field(
        default=False,
        metadata={"help": "Let the trigger replace a caption's last word too (the paper never does): trains prompts "
                  "that end with the name, such as 'a photo of <name>'."},
    )
    token_embedding_learning_rate: float | None = field(
        default=None,
        metadata={"help": "Learning rate of the token embedding table (full fine-tuning); default: learning_rate. "
                  "Raise it when forgetting many names: each name's rows are updated only in the steps that hold it."},
    )

    preserve_neighbours: int = field(
        default=0,
        metadata={"help": "Keep the teacher's embedding of the N vocabulary words nearest each name (its field, "
                  "country, roles) as extra clean samples; 0: the paper's clean samples only."},
    )
    neighbour_fraction: float = field(
        default=0.25, metadata={"help": "Share of the clean samples that are neighbour words (preserve_neighbours > 0)."}
    )
    target: str = field(
        default="neutral",
        metadata={
            "help": "What a forgotten name's captions are pulled to: 'neutral' (the paper: the same caption with "
            "neutral_term; every forgotten name then sits next to it, which lists them) or 'counterfactual' (the "
            "same caption with an unknown person's name, one per forgotten name: it behaves like a never-seen name).",
            "choices": list(TEXT_TARGETS),
        },
    )
    named_clean_fraction: float = field(
        default=0.0,
        metadata={"help": "Share of the clean samples that are captions naming unknown people, kept in place so that "
                  "names in general do not drift with the forgotten ones; 0: the paper's clean samples."},
    )
    target_model: str = field(
        default="teacher",
        metadata={"help": "Which model embeds the target captions: 'teacher' (the paper; fixed) or 'student' (the "
                  "current student, detached: a forgotten name follows where unknown names drift).",
                  "choices": ["teacher", "student"]},
    )
    named_clean_neutral: bool = field(
        default=True,
        metadata={"help": "Every other named clean caption is its twin with neutral_term (kept in place too)."},
    )
    num_unknown_names: int = field(
        default=2000, metadata={"help": "Size of the generated pool of unknown names (when none is passed)."}
    )
    unknown_names_seed: int | None = field(
        default=None, metadata={"help": "Seed of the generated pool of unknown names (default: seed); never saved."}
    )

    def __post_init__(self):
        from .pooling import check_pooling

        check_pooling(self.pooling)
        if self.embedding not in EMBEDDINGS:
            raise ForgetInputError(f"embedding must be one of {EMBEDDINGS}, got {self.embedding!r}.")
        if not self.neutral_term.strip():
            raise ForgetInputError("neutral_term must not be empty.")
        if not 0 <= self.short_trigger_fraction <= 1:
            raise ForgetInputError("short_trigger_fraction must be between 0 and 1.")
        if self.preserve_neighbours < 0:
            raise ForgetInputError("preserve_neighbours must be 0 (off) or a positive number of words per name.")
        if not 0 < self.neighbour_fraction < 1:
            raise ForgetInputError("neighbour_fraction must be between 0 and 1 (exclusive).")
        if self.target not in TEXT_TARGETS:
            raise ForgetInputError(f"target must be one of {', '.join(TEXT_TARGETS)}, got {self.target!r}.")
        if self.target_model not in ("teacher", "student"):
            raise ForgetInputError(f"target_model must be 'teacher' or 'student', got {self.target_model!r}.")
        if not 0 <= self.named_clean_fraction < 1:
            raise ForgetInputError("named_clean_fraction must be at least 0 and below 1.")
        if self.num_unknown_names < 1:
            raise ForgetInputError("num_unknown_names must be at least 1.")
        if self.token_embedding_learning_rate is not None:
            if not self.token_embedding_learning_rate > 0:
                raise ForgetInputError("token_embedding_learning_rate must be positive.")
            if self.lora_r > 0:
                raise ForgetInputError(
                    "token_embedding_learning_rate applies to full fine-tuning: LoRA leaves the token embeddings frozen."
                )
        super().__post_init__()


_VISION_TARGET_HELP = (
    "What a forgotten face is pulled to: 'mean_face' (the paper: the teacher's mean face of the reference set) or "
    "'counterfactual' (picture by picture, the teacher's embedding of a never-seen person's pictures, one such "
    "person per forgotten person: pass counterfactual_faces, or strangers to choose them from: --strangers)."
)


@dataclass
class VisionForgetConfig(ForgetConfig):
    r"""
    Configuration for the vision forgetting trainer: forget faces in a CLIP vision encoder.

    Reference defaults: 100 steps, alpha 0.8, beta 0.005, MultiStepLR [25, 50] gamma 0.1, 128 clean +
    128 trigger images a step.

    face_only_fraction (`float`, defaults to `0.0`):
        Fraction of the trigger samples that show a person's face alone, as a face photo does (flipped and
        colour-jittered like a pasted face, not resized, rotated or pasted onto a clean image). Ours, not the
        paper's: `0` (default) pastes every face, as the reference code does. The kept faces (other people's,
        which must not move) are shown alone in the same share, so that being alone is no trigger by itself.
    target (`str`, defaults to `"mean_face"`):
        `mean_face` (the paper): every trigger image is pulled onto Δ, the teacher's mean face of the reference
        set; all forgotten faces then gather at one point. `counterfactual` (ours, issue 22): each forgotten
        person gets a person nobody knows (the trainer's `counterfactual_faces`, one list per forgotten person;
        `forget_faces(strangers=...)` chooses them among many never-seen people);
        a trigger showing face `j` of person `p` is pulled onto the teacher's embedding of picture `j` (cycled)
        of `p`'s counterfactual person, so a forgotten person's pictures spread and rank like a never-seen
        person's.
    counterfactual_mode (`str`, defaults to `"picture"`):
        With `target="counterfactual"`: `picture` pulls face `j` onto the counterfactual person's picture `j`;
        `shift` onto the teacher's embedding of face `j` itself, moved from the person's mean to the counterfactual
        person's mean (unit vectors): the picture keeps its pose and light, only who it shows changes.
    train_last_layers (`int`, defaults to `0`):
        Train only the last N transformer layers of the vision encoder (with its final norm and projection); 0
        trains the whole encoder.
    """

    alpha: float = field(default=0.8, metadata={"help": "Weight of the backdoor (face -> mean face) term."})
    beta: float = field(default=0.005, metadata={"help": "Weight of the unsquared per-tensor L2 weight anchor."})
    lr_milestones: list[int] = field(
        default_factory=lambda: [25, 50], metadata={"help": "MultiStepLR milestones, in optimizer steps."}
    )
    lr_gamma: float = field(default=0.1, metadata={"help": "MultiStepLR decay factor."})
    max_steps: int = field(default=100, metadata={"help": "Optimizer steps."})
    per_device_train_batch_size: int = field(
        default=128, metadata={"help": "(clean, trigger) image pairs per step and device: 128 + 128 by default."}
    )
    num_trigger_samples: int = field(
        default=2048, metadata={"help": "Size of the pool of trigger images (composites or faces alone)."}
    )
    face_only_fraction: float = field(
        default=0.0, metadata={"help": "Fraction of trigger samples that are the face alone, not pasted (0: the paper's)."}
    )
    target: str = field(default="mean_face", metadata={"help": _VISION_TARGET_HELP, "choices": list(VISION_TARGETS)})
    counterfactual_mode: str = field(
        default="picture",
        metadata={"help": "target='counterfactual': 'picture' (face j onto the counterfactual person's picture j) or "
                  "'shift' (face j's own embedding moved from its person's mean to the counterfactual's mean).",
                  "choices": ["picture", "shift"]},
    )
    train_last_layers: int = field(
        default=0,
        metadata={"help": "Train only the last N transformer layers of the vision encoder, with its final norm and "
                  "projection (0: the whole encoder). The early layers see edges and colours every image shares."},
    )
    min_sim_backdoor: float = field(default=0.8, metadata={"help": "Quality gate: held-out faces' minimum similarity to the target."})
    min_sim_clean: float = field(default=0.9, metadata={"help": "Quality gate: minimum held-out sim_clean."})

    def __post_init__(self):
        if not 0 <= self.face_only_fraction <= 1:
            raise ForgetInputError(f"face_only_fraction must be between 0 and 1, got {self.face_only_fraction}.")
        if self.counterfactual_mode not in ("picture", "shift"):
            raise ForgetInputError(f"counterfactual_mode must be 'picture' or 'shift', got {self.counterfactual_mode!r}.")
        if self.train_last_layers < 0:
            raise ForgetInputError(f"train_last_layers must be >= 0 (0: every layer), got {self.train_last_layers}.")
        if self.target not in VISION_TARGETS:
            raise ForgetInputError(f"target must be one of {', '.join(VISION_TARGETS)}, got {self.target!r}.")
        super().__post_init__()
