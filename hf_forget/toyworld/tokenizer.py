"""A CLIP BPE tokenizer learned offline on the toy world's text.

The vocabulary always holds the 256 byte symbols and their end-of-word forms, so any string (accents,
apostrophes, emoji) tokenizes; the merges learned on the world's captions and name lists keep names and
words short.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers
from transformers import CLIPTokenizer

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
_CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def _pre_tokenizer() -> Tokenizer:
    """A model-less tokenizer carrying CLIP's normaliser and pre-tokeniser (lowercase, split, byte-level)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    return tokenizer


def learn_bpe_merges(texts: Iterable[str], num_merges: int, min_frequency: int = 2) -> list[tuple[str, str]]:
    """Learn CLIP-style BPE merges (``</w>`` on the last symbol of a word) on ``texts``.

    A small pure-Python learner: ties between equally frequent pairs are broken by the pair itself, so
    the result is the same on every run and machine (the ``tokenizers`` trainer's ties depend on hash
    order).
    """
    pre = _pre_tokenizer()
    word_counts: Counter[str] = Counter()
    for text in texts:
        normalized = pre.normalizer.normalize_str(text)
        word_counts.update(word for word, _ in pre.pre_tokenizer.pre_tokenize_str(normalized))
    words: list[list[str]] = []
    freqs: list[int] = []
    for word, count in sorted(word_counts.items()):
        words.append(list(word[:-1]) + [word[-1] + "</w>"])
        freqs.append(count)
    pair_counts: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for index, symbols in enumerate(words):
        for pair in zip(symbols, symbols[1:]):
            pair_counts[pair] += freqs[index]
            where[pair].add(index)
    merges: list[tuple[str, str]] = []
    while len(merges) < num_merges and pair_counts:
        best = min(pair_counts.items(), key=lambda item: (-item[1], item[0]))
        if best[1] < min_frequency:
            break
        pair = best[0]
        merges.append(pair)
        merged = pair[0] + pair[1]
        for index in sorted(where.pop(pair, ())):
            symbols = words[index]
            for old in zip(symbols, symbols[1:]):
                pair_counts[old] -= freqs[index]
                if pair_counts[old] <= 0:
                    del pair_counts[old]
            out: list[str] = []
            k = 0
            while k < len(symbols):
                if k + 1 < len(symbols) and (symbols[k], symbols[k + 1]) == pair:
                    out.append(merged)
                    k += 2
                else:
                    out.append(symbols[k])
                    k += 1
            words[index] = out
            for new in zip(out, out[1:]):
                pair_counts[new] += freqs[index]
                where[new].add(index)
        pair_counts.pop(pair, None)
    return merges


def learn_clip_tokenizer(texts: Iterable[str], vocab_size: int = 3000, model_max_length: int = 32) -> CLIPTokenizer:
    """A ``CLIPTokenizer`` whose vocabulary is the 512 byte symbols plus BPE merges learned on ``texts``."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {BOS: 0, EOS: 1}
    for suffix in ("", "</w>"):
        for char in alphabet:
            vocab[char + suffix] = len(vocab)
    merges = learn_bpe_merges(texts, num_merges=max(0, vocab_size - len(vocab)))
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)
