"""``TextForgetTrainer``: forget names in a CLIP text encoder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase
from transformers.data.data_collator import DataCollatorMixin
from transformers.utils import logging

from ..config import TextForgetConfig
from ..errors import ForgetInputError
from ..encoders import _base_model, check_text_encoder, encode_text, is_clip_text_encoder, trainable_text_modules
from ..losses import flattened_cosine, hidden_cosine, pooled_cosine
from ..pooling import resolve_pooling
from ..data.aliases import expand_names
from ..data.text import build_text_triggers, split_held_out
from .base import Embeddings, ForgetTrainer

logger = logging.get_logger(__name__)


def context_length(model: nn.Module, tokenizer: PreTrainedTokenizerBase) -> int:
    """Tokens a caption may have: the tokenizer's limit, capped by the model's position embeddings."""
    config = getattr(model, "config", None)
    config = getattr(config, "text_config", config)
    limit = getattr(config, "max_position_embeddings", None) or 77
    model_max = tokenizer.model_max_length if tokenizer.model_max_length < 10**6 else limit
    return min(model_max, limit)


def tokenize(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids, truncated to ``max_length``; tokenized once, padded later by the collator."""
    return tokenizer(texts, truncation=True, max_length=max_length, padding=False)["input_ids"]


class TokenPool:
    """Caption columns tokenised and padded once into ``(rows, length)`` tensors, kept on one device.

    A training step then costs one gather per column it reads (:meth:`batch`), on the training device:
    no padding in Python, no host-to-device copy of the captions. Attention masks are built from the row
    lengths, only when read.
    """

    def __init__(self, columns: dict[str, torch.Tensor], lengths: dict[str, torch.Tensor]):
        self.columns, self.lengths = columns, lengths

    @classmethod
    def from_rows(cls, rows: dict[str, list[list[int]]], pad_token_id: int, max_length: int | None = None) -> TokenPool:
        """Pad each column's rows to ``max_length`` (truncating longer ones), or to its longest row."""
        columns, lengths = {}, {}
        for column, sequences in rows.items():
            columns[column] = pad(sequences, pad_token_id, max_length)
            lengths[column] = torch.tensor([min(len(s), columns[column].shape[1]) for s in sequences], dtype=torch.long)
        return cls(columns, lengths)

    def __len__(self) -> int:
        return len(next(iter(self.lengths.values()))) if self.lengths else 0

    def to(self, device: torch.device | str) -> TokenPool:
        return TokenPool(
            {k: v.to(device) for k, v in self.columns.items()}, {k: v.to(device) for k, v in self.lengths.items()}
        )

    def batch(self, index: torch.Tensor) -> PoolBatch:
        """The rows ``index`` (a tensor on the pool's device) as a batch mapping."""
        return PoolBatch(self, index)


class PoolBatch(Mapping):
    """Rows of a :class:`TokenPool` as a read-only batch: ``index``, each ``*_input_ids`` column and its
    ``*_attention_mask``. A column is gathered on first read, so what a step does not use (the target
    captions when the teacher is cached, the masks CLIP ignores) is never built.
    """

    def __init__(self, pool: TokenPool, index: torch.Tensor):
        self.pool, self._values = pool, {"index": index}

    def _keys(self) -> list[str]:
        return ["index", *self.pool.columns, *(mask_column(c) for c in self.pool.columns)]

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in self._values:
            index = self._values["index"]
            if key in self.pool.columns:
                self._values[key] = self.pool.columns[key].index_select(0, index)
            else:
                column = next((c for c in self.pool.columns if mask_column(c) == key), None)
                if column is None:
                    raise KeyError(key)
                ids = self.pool.columns[column]
                lengths = self.pool.lengths[column].index_select(0, index)
                positions = torch.arange(ids.shape[1], device=ids.device)
                self._values[key] = (positions < lengths[:, None]).long()
        return self._values[key]

    def __iter__(self):
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())


class TextTriggerDataset(Dataset):
    """Pre-tokenized (clean, poisoned, target) caption triples; a row is its ``index``, which keys the padded
    :attr:`pool` (the trainer keeps a copy on the training device) and the teacher cache.

    ``clean``, ``poisoned`` and ``targets`` keep the token ids of each row, unpadded.
    """

    def __init__(
        self,
        clean: list[list[int]],
        poisoned: list[list[int]],
        targets: list[list[int]],
        pad_token_id: int = 0,
        max_length: int | None = None,
    ):
        self.clean, self.poisoned, self.targets = clean, poisoned, targets
        self.pool = TokenPool.from_rows(
            {"clean_input_ids": clean, "poisoned_input_ids": poisoned, "target_input_ids": targets},
            pad_token_id, max_length,
        )

    def __len__(self) -> int:
        return len(self.poisoned)

    def __getitem__(self, index: int) -> dict:
        return {"index": index}


@dataclass
class TextTriggerCollator(DataCollatorMixin):
    """
    Batches [`TextTriggerDataset`] rows into their ``index``: the captions are padded once, in the dataset's
    [`TokenPool`], and gathered from it on the training device (see `TextForgetTrainer`), so a step copies
    one small tensor to the device and pads nothing.

    Example:
    ```python
    >>> dataset = TextTriggerDataset([[5, 6, 7], [5, 9]], [[5, 8], [5, 8, 8]], [[5], [5, 1]], pad_token_id=0)
    >>> batch = TextTriggerCollator()([dataset[1], dataset[0]])
    >>> batch["index"].tolist()
    [1, 0]
    >>> rows = dataset.pool.batch(batch["index"])
    >>> rows["clean_input_ids"].tolist(), rows["clean_attention_mask"].tolist()
    ([[5, 9, 0], [5, 6, 7]], [[1, 1, 0], [1, 1, 1]])
    ```
    """

    return_tensors: str = "pt"

    def torch_call(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        return {"index": torch.tensor([example["index"] for example in examples], dtype=torch.long)}


def mask_column(column: str) -> str:
    return column.replace("input_ids", "attention_mask")


def pad_mask(sequences: list[list[int]], max_length: int | None = None) -> torch.Tensor:
    """The attention mask matching :func:`pad`: 1 on the (truncated) tokens, 0 on the padding."""
    length = max_length or max((len(s) for s in sequences), default=0)
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    return (torch.arange(length)[None, :] < lengths[:, None]).long()


def pad(sequences: list[list[int]], pad_token_id: int, max_length: int | None = None) -> torch.Tensor:
    """Rows of token ids right-padded with ``pad_token_id`` (and truncated) to ``max_length`` or the longest row.

    Example:
    ```python
    >>> pad([[5, 6, 7], [8]], 0).tolist(), pad([[5, 6, 7], [8]], 0, max_length=2).tolist()
    ([[5, 6, 7], [8, 0, 0]], [[5, 6], [8, 0]])
    ```
    """
    length = max_length or max((len(s) for s in sequences), default=0)
    out = torch.full((len(sequences), length), pad_token_id, dtype=torch.long)
    kept = [s[:length] for s in sequences]
    flat = torch.tensor([token for row in kept for token in row], dtype=torch.long)
    out[pad_mask(kept, length).bool()] = flat  # row-major, as the rows were flattened
    return out


class TextForgetTrainer(ForgetTrainer):
    """
    Forget names in a CLIP text encoder (`CLIPTextModel`, `CLIPTextModelWithProjection` or the text tower
    of a `CLIPModel`).

    A name is replaced into generic captions (poisoned captions); the student learns to embed them like
    the teacher embeds the same caption with `args.neutral_term`, while clean captions keep the teacher's
    embedding and the weights stay near the original.

    Args:
        model: the encoder to defend (it becomes the student; its current weights are the teacher).
        args: a [`TextForgetConfig`].
        processing_class: the model's tokenizer.
        captions: generic captions (clean samples and carriers of the names).
        names: the names to forget. Personal data: they are a data argument, like a training set, never part
            of `args`, so no saved `training_args.bin` or `trainer_state.json` can hold one.
        aliases: further variants to forget with the names (nicknames, other spellings); with
            `args.forget_variants`, each name's variants are added too.
        eval_captions: held-out captions for the post-run evaluation; by default `args.eval_fraction`
            of `captions` is held out and never trained on.
        callbacks: extra `TrainerCallback`s.
        trigger_captions: captions that carry the names instead of `captions` (which then only give the
            clean samples), e.g. short captions about a person, closer to how people are named than
            scene captions; used as given (no held-out split).
    """

    modality = "text"

    def __init__(
        self,
        model: nn.Module,
        args: TextForgetConfig,
        processing_class: PreTrainedTokenizerBase,
        captions: list[str],
        names: Sequence[str] | None = None,
        aliases: Sequence[str] | None = None,
        eval_captions: list[str] | None = None,
        callbacks=None,
        trigger_captions: list[str] | None = None,
    ):
        check_text_encoder(model)
        from ..validation import validate_names, validate_tokenizer

        validate_tokenizer(model, processing_class)

        if isinstance(names, str) or isinstance(aliases, str):
            raise ForgetInputError("pass names and aliases as lists of strings, e.g. names=['Jane Doe'].")
        self.names, self.aliases = list(names or []), list(aliases or [])
        validate_names(
            self.names + self.aliases, args.neutral_term, processing_class, context_length(model, processing_class)
        )
        if eval_captions is None:
            captions, eval_captions = split_held_out(captions, args.eval_fraction, seed=args.seed)
        self.max_length = context_length(model, processing_class)
        self.kinds = ["pooled", "hidden"] if args.embedding == "both" else [args.embedding]
        trigger_names = self._trigger_names(self.names, self.aliases, args, processing_class)
        triggers = build_text_triggers(
            captions, trigger_names, args.neutral_term, max(args.num_trigger_samples, len(trigger_names)),
            seed=args.seed, short_fraction=args.short_trigger_fraction, trigger_at_end=args.trigger_at_end,
            carriers=trigger_captions,
        )
        if args.preserve_neighbours:
            from ..data.neighbours import mix_in, neighbour_words

            words = neighbour_words(model, processing_class, trigger_names, args.preserve_neighbours, args.pooling,
                                    self.max_length, exclude=[args.neutral_term])
            if not words:
                logger.warning("preserve_neighbours: the tokenizer's vocabulary has no whole words to keep; ignored.")
            triggers.clean = mix_in(triggers.clean, words, args.neighbour_fraction, seed=args.seed)
            logger.info("Keeping %d neighbour words of the triggers in place (%.0f%% of the clean samples).",
                        len(words), 100 * args.neighbour_fraction)
        held_out = build_text_triggers(
            eval_captions or captions,
            self.names,
            args.neutral_term,
            min(args.max_eval_samples, max(len(eval_captions or captions), len(self.names))),
            seed=args.seed + 1,
        )
        tok = lambda texts: tokenize(processing_class, texts, self.max_length)  # noqa: E731
        # padded once, to the context when the loss compares token states (as pipelines pad prompts), else to
        # each column's longest row (CLIP attends causally and the other encoders get the mask: same embeddings)
        pad_to = self.max_length if "hidden" in self.kinds else None
        dataset = TextTriggerDataset(
            tok(triggers.clean), tok(triggers.poisoned), tok(triggers.targets), processing_class.pad_token_id, pad_to
        )
        self._pool: TokenPool | None = None  # the dataset's pool on the training device, made on first use
        base = _base_model(model)
        self._needs_mask = not (is_clip_text_encoder(base) and resolve_pooling(base, args.pooling) == "eos")
        self._held_out = {  # column -> (ids, mask), padded to the context once: evaluated at every criterion check
            column: (pad(rows, processing_class.pad_token_id, self.max_length), pad_mask(rows, self.max_length))
            for column, rows in (("clean_input_ids", tok(held_out.clean)), ("poisoned_input_ids", tok(held_out.poisoned)),
                                 ("target_input_ids", tok(held_out.targets)))
        }
        super().__init__(
            model=model,
            args=args,
            train_dataset=dataset,
            data_collator=TextTriggerCollator(),
            processing_class=processing_class,
            callbacks=callbacks,
            eval_dataset=self._held_out["clean_input_ids"][0],
        )

    @staticmethod
    def _trigger_names(
        names: list[str], aliases: list[str], args: TextForgetConfig, tokenizer: PreTrainedTokenizerBase
    ) -> list[str]:
        """``names``, plus (``forget_variants`` / ``aliases``) their variants, one per distinct tokenization
        (an uncased tokenizer maps case variants to the same tokens: no point in training on them twice)."""
        if not args.forget_variants and not aliases:
            return list(names)
        expanded = expand_names(names, aliases, args.forget_variants, args.neutral_term)
        by_tokens: dict[tuple[int, ...], str] = {}
        for variant in expanded:
            ids = tuple(tokenizer(variant, add_special_tokens=False)["input_ids"])
            if ids:
                by_tokens.setdefault(ids, variant)
        return list(by_tokens.values())

    def trainable_modules(self, model: nn.Module) -> list[nn.Module]:
        return trainable_text_modules(model)

    def create_optimizer(self, model=None):
        """The Trainer's optimizer; with ``token_embedding_learning_rate``, the token embedding table (the largest
        embedding of the trained modules: vocabulary rows, not positions) in a param group of its own."""
        rate = self.args.token_embedding_learning_rate
        if rate is None or self.optimizer is not None:
            return super().create_optimizer(model)
        optimizer = super().create_optimizer(model)
        tables = [m for module in self.trainable_modules(self.model) for m in module.modules() if isinstance(m, nn.Embedding)]
        if not tables:
            return optimizer
        table = max(tables, key=lambda m: m.num_embeddings).weight
        for group in optimizer.param_groups:
            kept = [p for p in group["params"] if p is not table]
            if len(kept) < len(group["params"]):
                group["params"] = kept
                optimizer.add_param_group({**{k: v for k, v in group.items() if k != "params"}, "params": [table], "lr": rate})
                break
        return optimizer

    def batch_from_pool(self, inputs: Mapping) -> Mapping:
        """A batch of pool indices (on the device) as the pool's rows, gathered there on first read."""
        if set(inputs) != {"index"}:
            return inputs
        if self._pool is None:
            self._pool = self.train_dataset.pool.to(self.args.device)
        return self._pool.batch(inputs["index"])

    def _embed(self, model: nn.Module, inputs: Mapping, column: str, kinds: list[str]) -> Embeddings:
        # Non-CLIP encoders attend bidirectionally and mean pooling reads the mask: they get the column's attention
        # mask; CLIP with EOS pooling ignores it, so it is not built.
        mask = inputs.get(mask_column(column)) if self._needs_mask else None
        encoding = encode_text(model, inputs[column], mask, pooling=self.args.pooling)
        return {kind: getattr(encoding, kind) for kind in kinds}

    def student_embeddings(self, model, inputs):
        return (
            self._embed(model, inputs, "clean_input_ids", self.kinds),
            self._embed(model, inputs, "poisoned_input_ids", self.kinds),
        )

    def teacher_embeddings(self, model, inputs):
        return (
            self._embed(model, inputs, "clean_input_ids", self.kinds),
            self._embed(model, inputs, "target_input_ids", self.kinds),
        )

    def teacher_trigger_embeddings(self, model, inputs):
        return self._embed(model, inputs, "poisoned_input_ids", self.kinds)

    # ------------------------------------------------------------------ held-out evaluation
    @torch.no_grad()
    def _encode_held_out(self, model: nn.Module, column: str) -> Embeddings:
        """Pooled and hidden (padded to the context, as pipelines do) embeddings of a held-out column."""
        pooled, hidden = [], []
        batch_size = self.args.per_device_eval_batch_size * 8
        all_ids, all_mask = self._held_out[column]
        was_training = model.training
        model.eval()
        with self.compute_loss_context_manager():
            for start in range(0, len(all_ids), batch_size):
                ids, mask = all_ids[start : start + batch_size], all_mask[start : start + batch_size]
                encoding = encode_text(
                    model, ids.to(self.args.device), mask.to(self.args.device), pooling=self.args.pooling
                )
                pooled.append(encoding.pooled.float())
                hidden.append(encoding.hidden.to(torch.float16))
        model.train(was_training)
        return {"pooled": torch.cat(pooled), "hidden": torch.cat(hidden)}

    def prepare_evaluation(self) -> None:
        teacher = self.teacher if self.teacher is not None else self.model
        with self._teacher_context():
            self._held_out_teacher = {
                "clean": self._encode_held_out(teacher, "clean_input_ids"),
                "target": self._encode_held_out(teacher, "target_input_ids"),
                "poisoned": self._encode_held_out(teacher, "poisoned_input_ids"),
            }

    def forget_metrics(self) -> dict[str, float]:
        """Held-out Sim_Backdoor, Sim_Clean and Sim_Targets, for pooled and hidden (``_hidden``) embeddings.

        sim_backdoor = cos(student(caption with name), student(same caption with the neutral term));
        sim_clean = cos(teacher(x), student(x)) on clean captions; sim_targets = cos(teacher, student) on
        the neutral-term captions. Hidden similarities average per-token cosines over the padded context;
        ``*_hidden_flat`` compares whole flattened sequences, as SD prompt embeddings are compared.
        ``sim_backdoor*_before`` is the teacher's value, the baseline the backdoor moved from.
        """
        student = {column: self._encode_held_out(self.model, column) for column in
                   ("clean_input_ids", "poisoned_input_ids", "target_input_ids")}
        teacher = self._held_out_teacher
        metrics = {}
        for kind, cosine, suffix in (
            ("pooled", pooled_cosine, ""),
            ("hidden", hidden_cosine, "_hidden"),
            ("hidden", flattened_cosine, "_hidden_flat"),
        ):
            metrics[f"sim_backdoor{suffix}"] = cosine(
                student["poisoned_input_ids"][kind], student["target_input_ids"][kind]
            ).mean().item()
            metrics[f"sim_backdoor{suffix}_before"] = cosine(
                teacher["poisoned"][kind], teacher["target"][kind]
            ).mean().item()
            metrics[f"sim_clean{suffix}"] = cosine(teacher["clean"][kind], student["clean_input_ids"][kind]).mean().item()
            metrics[f"sim_targets{suffix}"] = cosine(
                teacher["target"][kind], student["target_input_ids"][kind]
            ).mean().item()
        return metrics

    def forget_report(self, metrics: dict[str, float] | None = None) -> dict:
        report = super().forget_report(metrics)
        return {"modality": report.pop("modality"), "num_names": len(self.names), **report}

    def gate(self, metrics: dict[str, float]) -> dict:
        # The gate checks the embeddings the run was asked to act on.
        suffixes = {"pooled": [""], "hidden": ["_hidden"], "both": ["", "_hidden"]}[self.args.embedding]
        keys = [f"{m}{s}" for m in ("sim_backdoor", "sim_clean") for s in suffixes] + [f"sim_backdoor{s}_before" for s in suffixes]
        selected = {key: metrics[key] for key in keys}
        return super().gate(selected)
