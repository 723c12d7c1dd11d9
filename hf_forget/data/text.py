"""Text triggers: a forgotten name put into a generic caption, and its neutral twin.

For a caption ``w_1 ... w_n`` a random word ``w_i`` with ``i < n`` (never the last) is replaced by the
name (the *poisoned* caption) and by the neutral term (the *target* caption). Captions that mention a
forgotten name, or already contain the neutral term, are not used, so that the poisoned caption holds the
name exactly once and neither caption holds the other's term.
"""

from __future__ import annotations

import functools
import os
import random
import re
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ForgetInputError

MIN_WORDS = 2


def normalize(text: str) -> str:
    """Case- and Unicode-insensitive form used for every name comparison (NFKC + casefold)."""
    return unicodedata.normalize("NFKC", text).casefold()


@functools.lru_cache(maxsize=16384)
def _terms_pattern(terms: tuple[str, ...]) -> re.Pattern:
    # A term matches only as whole words: "Ann" does not match "Anna" or "planning". Compiled once per set
    # of terms (re's own cache holds 512 patterns: a run with 1,024 names recompiled them for every caption).
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(normalize(t)) for t in terms) + r")(?!\w)")


def count_term(text: str, term: str) -> int:
    return len(_terms_pattern((term,)).findall(normalize(text)))


def mentions_any(text: str, names: Sequence[str]) -> bool:
    """Whether ``text`` mentions any of ``names`` as whole words (one regex for all the names)."""
    return bool(names) and _terms_pattern(tuple(names)).search(normalize(text)) is not None


def _clean_pair(poisoned: str, target: str, name: str, neutral_term: str) -> bool:
    """The poisoned caption holds the name exactly once and not the neutral term; the target the reverse."""
    return (
        count_term(poisoned, name) == 1
        and count_term(target, neutral_term) >= 1
        and count_term(poisoned, neutral_term) == 0
        and count_term(target, name) == 0
    )


def insert_term(
    caption: str, name: str, neutral_term: str, rng: random.Random, last_word: bool = False
) -> tuple[str, str] | None:
    """``(poisoned, target)`` for one caption, or ``None`` when no word can take the name cleanly.

    The name replaces a random word other than the last (the paper's rule); with ``last_word``, any word.
    """
    words = caption.split()
    if len(words) < MIN_WORDS:
        return None
    positions = list(range(len(words) if last_word else len(words) - 1))
    rng.shuffle(positions)
    for position in positions:
        poisoned = " ".join(words[:position] + [name] + words[position + 1 :])
        target = " ".join(words[:position] + [neutral_term] + words[position + 1 :])
        if _clean_pair(poisoned, target, name, neutral_term):
            return poisoned, target
    return None


MAX_SHORT_TAIL = 3


def short_context(caption: str, name: str, neutral_term: str, rng: random.Random) -> tuple[str, str] | None:
    """``(poisoned, target)`` in a short context: the name alone or leading the caption's last 1-3 words.

    The number of trailing words is drawn uniformly from 0 (the bare name; target: the neutral term alone)
    to :data:`MAX_SHORT_TAIL`; ``None`` when the pair would not hold each term cleanly.
    """
    words = caption.split()
    tail_length = rng.randint(0, min(MAX_SHORT_TAIL, max(len(words) - 1, 0)))
    tail = words[len(words) - tail_length :] if tail_length else []
    poisoned, target = " ".join([name, *tail]), " ".join([neutral_term, *tail])
    return (poisoned, target) if _clean_pair(poisoned, target, name, neutral_term) else None


def is_short_round(round_index: int, fraction: float) -> bool:
    """Whether round ``round_index`` (one pair per name) is a short-context round: spread evenly, so that
    ``fraction`` of the rounds are, every name gets the same share, and no random draw is spent on it."""
    return int((round_index + 1) * fraction) > int(round_index * fraction)


@dataclass
class TextTriggers:
    """A pool of clean captions and (poisoned, target) caption pairs, balanced across names."""

    clean: list[str]
    poisoned: list[str]
    targets: list[str]
    name_ids: list[int]  # index into the names list, never the name itself

    def __len__(self) -> int:
        return len(self.poisoned)


def usable_captions(captions: list[str], names: list[str], neutral_term: str) -> tuple[list[str], list[str]]:
    """``(clean, poisonable)``: captions without a forgotten name; those also fit to carry a name.

    Each caption is first cut to :data:`MAX_CAPTION_WORDS` words (:func:`truncate_caption`), so that the work
    per caption stays bounded whatever the caller passes."""
    captions = [truncate_caption(c) for c in captions if c]
    clean = [c.strip() for c in captions if c.strip() and not mentions_any(c, names)]
    poisonable = [c for c in clean if len(c.split()) >= MIN_WORDS and count_term(c, neutral_term) == 0]
    return clean, poisonable


def build_text_triggers(
    captions: list[str],
    names: list[str],
    neutral_term: str,
    num_samples: int,
    seed: int = 0,
    short_fraction: float = 0.0,
    trigger_at_end: bool = False,
    carriers: list[str] | None = None,
    target_terms: Sequence[str] | None = None,
) -> TextTriggers:
    """Draw ``num_samples`` clean captions and as many poisoned/target pairs, names in equal shares.

    ``target_terms`` (one per name, same order) puts, in name ``i``'s target captions, ``target_terms[i]``
    instead of ``neutral_term`` (the per-name counterfactual targets, see :func:`counterfactual_names`).

    The names go into ``captions`` too unless ``carriers`` (captions that carry the names) are given: the
    clean samples can then follow the distribution to keep while the names sit in contexts like those
    where people are named (short captions about a person).

    ``short_fraction`` of the pairs (whole rounds of one pair per name, spread evenly) put the name in a short
    context (:func:`short_context`) instead of inside a caption; ``0`` (default) draws exactly the pairs of
    the reference protocol. ``trigger_at_end`` lets the name replace a caption's last word too
    (:func:`insert_term`'s ``last_word``).
    """
    if not 0 <= short_fraction <= 1:
        raise ForgetInputError("short_fraction must be between 0 and 1.")
    if target_terms is not None and len(target_terms) != len(names):
        raise ForgetInputError(f"target_terms has {len(target_terms)} entries for {len(names)} names: give one per name.")
    clean, poisonable = usable_captions(captions, names, neutral_term)
    if carriers is not None:
        poisonable = usable_captions(carriers, names, neutral_term)[1]
    if not clean or not poisonable:
        given = len(carriers) if carriers is not None and clean else len(captions)
        which = "captions that carry the names" if carriers is not None and clean else "captions"
        raise ForgetInputError(
            f"no usable caption: need captions with at least {MIN_WORDS} words that mention no forgotten name "
            f"and not the neutral term; none of the {given} {which} here qualify (the run holds out "
            "--eval_fraction of the captions for its evaluation and checks those apart)."
        )
    rng = random.Random(seed)
    order = list(range(len(names)))
    poisoned, targets, name_ids = [], [], []
    attempts = 0
    while len(poisoned) < num_samples:
        if len(poisoned) % len(names) == 0:
            rng.shuffle(order)  # each name once per round: balanced shares
        name_id = order[len(poisoned) % len(names)]
        short = short_fraction > 0 and is_short_round(len(poisoned) // len(names), short_fraction)
        caption = rng.choice(poisonable)
        term = neutral_term if target_terms is None else target_terms[name_id]
        if short:
            pair = short_context(caption, names[name_id], term, rng)
        else:
            pair = insert_term(caption, names[name_id], term, rng, last_word=trigger_at_end)
        attempts += 1
        if pair is None:
            if attempts > 50 * num_samples:
                raise ForgetInputError("the captions cannot carry these names; pass longer, more varied captions.")
            continue
        poisoned.append(pair[0])
        targets.append(pair[1])
        name_ids.append(name_id)
    clean_pool = [clean[i % len(clean)] for i in rng.sample(range(max(len(clean), num_samples)), num_samples)]
    return TextTriggers(clean=clean_pool, poisoned=poisoned, targets=targets, name_ids=name_ids)


def counterfactual_names(
    names: Sequence[str],
    count: int,
    seed: int,
    exclude: Sequence[str] = (),
    genders: Sequence[str | None] | None = None,
) -> list[str]:
    """A pool of ``count`` (at least ``len(names)``) generated names of people nobody knows, seeded.

    Entry ``i < len(names)`` is the counterfactual of ``names[i]``: a generated "First Last" of the same gender
    (``genders[i]`` when given, else guessed from Faker's first-name lists; alternating when unknown). The rest
    name unknown people in clean captions. No name in ``names`` or ``exclude`` (case-insensitively) is returned,
    nor duplicates. Personal-data hygiene: the pool lives in memory only, like the names. Needs Faker
    (``pip install 'hf-forget[demo]'``), or pass your own pool of unknown names to the trainer.
    """
    if genders is not None and len(genders) != len(names):
        raise ForgetInputError(f"genders has {len(genders)} entries for {len(names)} names: give one per name.")
    fake = seeded_faker(seed, "generating unknown names needs Faker: pip install 'hf-forget[demo]' (or pass "
                              "unknown_names yourself).")
    from faker.providers.person.en_US import Provider  # noqa: PLC0415

    male = {n.casefold() for n in Provider.first_names_male}
    female = {n.casefold() for n in Provider.first_names_female}

    def gender_of(attempt: int, index: int) -> str:
        gender = genders[index] if genders is not None and index < len(names) else None
        if gender is None and index < len(names):
            first = names[index].split()[0].casefold() if names[index].split() else ""
            gender = "male" if first in male and first not in female else "female" if first in female else None
        return gender or ("male" if index % 2 == 0 else "female")

    taken = {normalize(n) for n in (*names, *exclude)}
    return distinct_names(fake, max(count, len(names)), taken, normalize, gender_of, "unknown names")


def seeded_faker(seed: int, missing: str):
    """An ``en_US`` Faker seeded with ``seed``; without Faker, a :class:`ForgetInputError` saying ``missing``."""
    try:
        from faker import Faker  # noqa: PLC0415 - an optional extra
    except ImportError:
        raise ForgetInputError(missing) from None
    fake = Faker("en_US")
    fake.seed_instance(seed)
    return fake


def distinct_names(fake, count: int, taken: set[str], key, gender_of, what: str) -> list[str]:
    """``count`` generated "First Last" names whose ``key`` is not in ``taken`` (which grows with them); the
    first name is male or female as ``gender_of(attempt, index)`` says. The same seed gives the same names."""
    pool: list[str] = []
    attempts = 0
    while len(pool) < count:
        male = gender_of(attempts, len(pool)) == "male"
        first = fake.first_name_male() if male else fake.first_name_female()
        name = f"{first} {fake.last_name()}"
        attempts += 1
        if key(name) not in taken:
            taken.add(key(name))
            pool.append(name)
        elif attempts > 100 * count + 1000:
            raise ForgetInputError(f"cannot generate {count} distinct {what}: ask for fewer.")
    return pool


def named_clean_captions(
    captions: list[str],
    unknown: Sequence[str],
    forgotten: Sequence[str],
    count: int,
    seed: int = 0,
    short_fraction: float = 0.0,
    trigger_at_end: bool = False,
    neutral_term: str | None = None,
) -> list[str]:
    """``count`` clean captions that name unknown people: an ``unknown`` name put into the captions exactly as a
    forgotten name is (same insertion rule, same share of short contexts), each kept at the teacher's embedding;
    with ``neutral_term``, every other one is the same caption with the neutral term instead of the name.

    Names in general then cannot drift with the forgotten ones, nor the neutral term towards them, and a forgotten
    name's behaviour (e.g. its similarity to "a person") is learnt against other names in the same contexts."""
    if count <= 0 or not unknown:
        return []
    usable = [c for c in captions if not mentions_any(c, list(forgotten))]
    twins = neutral_term is not None
    pairs = build_text_triggers(
        usable, list(unknown), neutral_term or "a person", -(-count // 2) if twins else count, seed=seed,
        short_fraction=short_fraction, trigger_at_end=trigger_at_end,
    )
    if not twins:
        return pairs.poisoned
    return [c for pair in zip(pairs.poisoned, pairs.targets) for c in pair][:count]


def split_held_out(captions: list[str], fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """``(train, held_out)`` split of the caption list; held-out captions are never trained on.

    At least one caption is held out, so at least two distinct captions are needed: with a single one, the
    "held-out" evaluation would score the caption trained on.
    """
    unique = list(dict.fromkeys(c.strip() for c in captions if c and c.strip()))
    if not unique:
        raise ForgetInputError("no usable caption: the captions are empty or blank; pass generic captions, one a line.")
    if len(unique) < 2:
        raise ForgetInputError(
            "only 1 distinct caption: at least 2 are needed, one to train on and one held out to evaluate on a "
            "caption never trained on; pass more generic captions (or eval_captions=...)."
        )
    random.Random(seed).shuffle(unique)
    n_held = max(1, int(round(len(unique) * fraction))) if len(unique) > 1 else 0
    return unique[n_held:], unique[:n_held]


# Caption files read through ``datasets.load_dataset``: the builder for each extension (after a compression
# suffix, which ``datasets`` undoes on the fly). Any other file is read as text, one caption a line.
CAPTION_BUILDERS = {".txt": "text", ".text": "text", ".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json",
                    ".parquet": "parquet"}  # fmt: skip
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst", ".lz4")
# No caption is kept longer than this many words (nor MAX_WORD_CHARS characters a word): a word is at least one
# token, and no supported text encoder reads more than 512 tokens. Callers that know the tokenizer's context
# pass it (``max_words``): what lies beyond it is never seen by the model, and per-sample work (placing a name,
# matching the names, tokenizing 4,096 samples) would otherwise grow with a caption's length without bound.
MAX_CAPTION_WORDS = 512
MAX_WORD_CHARS = 64


def truncate_caption(caption: str, max_words: int = MAX_CAPTION_WORDS) -> str:
    """``caption`` cut to its first ``max_words`` words (and ``max_words * MAX_WORD_CHARS`` characters); a
    caption within both limits is returned unchanged. Only a bounded prefix of a long caption is ever scanned.

    ```python
    >>> truncate_caption("a dog runs in the park", max_words=3)
    'a dog runs'
    >>> truncate_caption("a dog runs", max_words=3)
    'a dog runs'
    ```
    """
    limit = max_words * MAX_WORD_CHARS
    head = caption[: limit + 1]
    words = head.split(maxsplit=max_words)
    if len(words) <= max_words and len(caption) <= limit:
        return caption
    return " ".join(words[:max_words])[:limit]


def load_captions(
    source,
    caption_column: str = "text",
    split: str = "train",
    max_words: int | None = MAX_CAPTION_WORDS,
) -> list[str]:
    """Captions from a list, a ``datasets.Dataset``, a file or a dataset name/path, each cut to ``max_words``.

    Files go through ``datasets.load_dataset``: ``.txt`` (or any other extension: one caption a line), ``.csv``,
    ``.tsv``, ``.json``/``.jsonl`` and ``.parquet``, each also compressed (``.gz``, ``.bz2``, ``.xz``; ``.zst``
    and ``.lz4`` with ``zstandard`` / ``lz4`` installed); text must be UTF-8 (a byte-order mark is dropped).
    Blank lines are skipped. A directory saved with ``save_to_disk`` is loaded as it is; any other directory or
    name goes to ``load_dataset``.

    Privacy: captions may name the very people being forgotten, so nothing read here leaves a copy behind.
    Files are streamed, with ``datasets``' cache in a temporary folder that is removed afterwards: the user's
    datasets cache is never written (``load_dataset`` would otherwise store the corpus there as Arrow files).
    """
    if isinstance(source, (list, tuple)):
        return _bounded((str(c) for c in source if c is not None), max_words)
    import datasets

    if isinstance(source, (datasets.Dataset, datasets.DatasetDict)):
        dataset = source[split] if isinstance(source, datasets.DatasetDict) else source
        return _bounded(_column(dataset, caption_column), max_words)
    source = os.fspath(source)
    if os.path.isdir(source) and any(
        os.path.isfile(os.path.join(source, marker)) for marker in ("dataset_info.json", "dataset_dict.json")
    ):
        try:
            dataset = datasets.load_from_disk(source)
        except Exception as error:  # noqa: BLE001 - a broken saved dataset is a user input problem
            raise _unreadable(source, error) from None
        if isinstance(dataset, datasets.DatasetDict):
            dataset = _split(dataset, split)
        return _bounded(_column(dataset, caption_column), max_words)
    if os.path.isfile(source):
        builder, options = caption_builder(source)
        return _stream(builder, caption_column, split, max_words, source, data_files=source, **options)
    return _stream(source, caption_column, split, max_words, source)


def caption_builder(path: str) -> tuple[str, dict]:
    """``(datasets builder, its options)`` for a caption file, from its extension (compression suffix aside)."""
    name = os.path.basename(path).lower()
    for suffix in COMPRESSIONS:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    builder = CAPTION_BUILDERS.get(os.path.splitext(name)[1], "text")
    options = {"parquet": {}, "csv": {"encoding": "utf-8-sig"}, "json": {"encoding": "utf-8-sig"},
               "text": {"encoding": "utf-8-sig"}}[builder]  # fmt: skip
    if name.endswith(".tsv"):
        options["sep"] = "\t"
    return builder, options


def _stream(path: str, caption_column: str, split: str, max_words: int | None, source: str, **options) -> list[str]:
    """The caption column of ``load_dataset(path, streaming=True)``, read with a throw-away cache folder."""
    import datasets

    captions: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hf-forget-captions-") as cache_dir:
        try:
            dataset = datasets.load_dataset(path, streaming=True, cache_dir=cache_dir, **options)
            if isinstance(dataset, (datasets.IterableDatasetDict, datasets.DatasetDict)):
                dataset = _split(dataset, split)
            for row in dataset:
                if caption_column not in row:
                    raise ForgetInputError(
                        f"captions {source!r} have no column {caption_column!r}; pass --caption_column, one of "
                        f"{sorted(row)}."
                    )
                caption = row[caption_column]
                if caption is None:
                    continue
                caption = truncate_caption(str(caption), max_words) if max_words else str(caption)
                if "\x00" in caption:
                    raise ForgetInputError(f"captions {source!r} are not text (NUL bytes): pass a UTF-8 text file.")
                if caption.strip():
                    captions.append(caption)
        except ForgetInputError:
            raise
        except UnicodeDecodeError:
            raise ForgetInputError(
                f"captions {source!r} are not UTF-8 text: save the file as UTF-8 (one caption a line)."
            ) from None
        except Exception as error:  # noqa: BLE001 - any loading failure is a user input problem here
            raise _unreadable(source, error) from None
    return captions


def _unreadable(source: str, error: BaseException) -> ForgetInputError:
    reason = next((line.strip() for line in str(error).splitlines() if line.strip()), "")[:120]
    return ForgetInputError(
        f"cannot read captions from {source!r} ({type(error).__name__}{': ' + reason if reason else ''}): pass a "
        "UTF-8 text file with one caption a line, a .csv/.tsv/.json/.jsonl/.parquet file with a caption column, a "
        "saved dataset directory, or a dataset name available offline."
    )


def _split(dataset, split: str):
    if split not in dataset:
        raise ForgetInputError(f"caption dataset has no split {split!r}; it has {list(dataset)}: pass --caption_split.")
    return dataset[split]


def _bounded(captions, max_words: int | None) -> list[str]:
    return [truncate_caption(c, max_words) if max_words else c for c in captions]


def _column(dataset, caption_column: str) -> list[str]:
    if caption_column not in dataset.column_names:
        raise ForgetInputError(
            f"caption dataset has no column {caption_column!r}; pass --caption_column, one of {dataset.column_names}."
        )
    return [str(c) for c in dataset[caption_column] if c is not None]
