"""Neighbour words: the vocabulary words a teacher places nearest a forgotten name, kept as clean samples.

Forgetting a name drags what the encoder ties to it. On all-MiniLM-L6-v2 (``benchmarks/real_minilm.py``), after
two figures of the same sport were forgotten with their variants, the student's embedding of the bare word
for that sport had moved next to "a person": every forgotten name, now mapped to "a person", was closest to
that sport, and a knowledge probe read it off for both. The words nearest a name in the teacher's space
(its field, country, roles) are the concepts most exposed to that drift; keeping the teacher's embedding of
these words, as extra clean samples, holds them in place while the name itself moves.

The words are chosen from the tokenizer's own vocabulary (whole words only) by the teacher's pooled
embedding: no list of attributes is needed. They are derived from the names, so, like the names, they stay
in memory: only their number is ever logged.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedTokenizerBase

from ..encoders import embed_texts
from .text import is_short_round, normalize

MIN_WORD_LENGTH = 3


def vocabulary_words(tokenizer: PreTrainedTokenizerBase, min_length: int = MIN_WORD_LENGTH) -> list[str]:
    """Whole lower-case alphabetic words of the tokenizer's vocabulary, each one token on its own, sorted.

    Subword pieces (``##ing``, a BPE merge without its end-of-word mark) are left out: a word qualifies when
    the tokenizer encodes it back as exactly one token.
    """
    candidates = sorted(
        {
            word
            for word in (tokenizer.convert_tokens_to_string([token]).strip() for token in tokenizer.get_vocab())
            if len(word) >= min_length and word.isascii() and word.isalpha() and word.islower()
        }
    )
    if not candidates:
        return []
    encoded = tokenizer(candidates, add_special_tokens=False)["input_ids"]
    return [word for word, ids in zip(candidates, encoded) if len(ids) == 1]


def neighbour_words(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    names: Sequence[str],
    per_name: int,
    pooling: str = "auto",
    max_length: int = 77,
    exclude: Sequence[str] = (),
) -> list[str]:
    """The ``per_name`` vocabulary words nearest each name (cosine of the model's pooled embeddings).

    A word that is part of a name or of ``exclude`` (case-insensitively) is never chosen: the name's own
    words are what is forgotten. Returns the union, sorted (deterministic, and not grouped by name).
    """
    if per_name <= 0 or not names:
        return []
    banned = {normalize(part) for text in [*names, *exclude] for part in text.split()}
    words = [w for w in vocabulary_words(tokenizer) if normalize(w) not in banned]
    if not words:
        return []
    was_training = model.training
    model.eval()
    try:
        name_embeds = F.normalize(embed_texts(model, tokenizer, list(names), pooling, max_length, 512), dim=-1)
        word_embeds = F.normalize(embed_texts(model, tokenizer, words, pooling, max_length, 512), dim=-1)
    finally:
        model.train(was_training)
    nearest = (name_embeds @ word_embeds.T).topk(min(per_name, len(words)), dim=1).indices
    return sorted({words[i] for i in nearest.flatten().tolist()})


def mix_in(clean: list[str], words: Sequence[str], fraction: float, seed: int = 0) -> list[str]:
    """``clean`` with ``fraction`` of its entries, spread evenly, replaced by ``words`` (cycled in a seeded
    order, so that every word is used about equally often)."""
    if not words or fraction <= 0:
        return list(clean)
    order = list(words)
    random.Random(seed).shuffle(order)
    out = list(clean)
    used = 0
    for index in range(len(out)):
        if is_short_round(index, fraction):  # the same even spread as the short-context rounds
            out[index] = order[used % len(order)]
            used += 1
    return out
