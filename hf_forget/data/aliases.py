"""Name variants: the other ways a forgotten name reaches an encoder.

The paper's own limit: a backdoor triggered by the full name is bypassed by a surname alone, another
letter case or spelling, or a nickname. With ``forget_variants`` every name's variants become triggers of
their own, mapped to the same neutral term:

* letter case: lower, upper and title case (cased tokenizers such as T5's tell them apart);
* spacing and hyphens: ``"Jean-Luc Picard"`` also as ``"Jean Luc Picard"`` and ``"JeanLuc Picard"``;
* diacritics: ``"Zoë Saldaña"`` also as ``"Zoe Saldana"``;
* the surname alone (the last word, skipping suffixes such as ``Jr.``), when it is not a common word;
* the user's aliases (nicknames, common misspellings, transliterations), with the same variants.

A variant is never shorter than :data:`MIN_VARIANT_CHARS` characters nor in :data:`STOP_SURNAMES`, so that
forgetting does not eat ordinary words; the functions here never log or return anything but the variants.
"""

from __future__ import annotations

import unicodedata

from .text import count_term, normalize

MIN_VARIANT_CHARS = 3
SUFFIXES = {"jr", "jr.", "sr", "sr.", "ii", "iii", "iv", "phd", "md"}
# Surnames that are also everyday English words: as triggers alone they would erase those words.
STOP_SURNAMES = {
    "a", "an", "the", "and", "of", "de", "van", "von", "la", "le", "da", "di", "del", "bin", "al",
    "may", "will", "rose", "king", "young", "long", "white", "black", "brown", "green", "grey", "gray",
    "bush", "baker", "cook", "smith", "hill", "wood", "woods", "stone", "rock", "park", "church", "hall",
    "bell", "lane", "fox", "wolf", "bird", "swift", "rich", "gold", "day", "winter", "summer", "street",
    "person", "man", "woman",
}


def strip_diacritics(text: str) -> str:
    """``"Zoë Saldaña"`` -> ``"Zoe Saldana"`` (NFKD, combining marks dropped; other scripts kept)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def surname(name: str) -> str | None:
    """The last word of a multi-word name, skipping suffixes (``Jr.``); ``None`` for one-word names."""
    words = name.split()
    while words and words[-1].casefold() in SUFFIXES:
        words = words[:-1]
    if len(words) < 2:
        return None
    return words[-1].rstrip(".,")


def _case_variants(text: str) -> list[str]:
    return [text, text.lower(), text.upper(), text.title()]


def _spacing_variants(text: str) -> list[str]:
    out = [text, " ".join(text.split())]
    if "-" in text:
        out += [text.replace("-", " "), text.replace("-", "")]
    return out


def name_variants(name: str, aliases: list[str] | tuple[str, ...] = (), surname_alone: bool = True) -> list[str]:
    """The name, its variants and those of its ``aliases`` (the same person's other names), without
    duplicates, the name first.

    Example:
    ```python
    >>> name_variants("Zoë Saldaña")[:4]
    ['Zoë Saldaña', 'zoë saldaña', 'ZOË SALDAÑA', 'Zoe Saldana']
    >>> "Saldana" in name_variants("Zoë Saldaña"), "Smith" in name_variants("Jane Smith")
    (True, False)
    ```
    """
    bases = [name, *aliases]
    if surname_alone:
        for base in list(bases):
            last = surname(base)
            if last and len(last) >= MIN_VARIANT_CHARS and normalize(last) not in STOP_SURNAMES:
                bases.append(last)
    out: list[str] = []
    for base in bases:
        for spaced in _spacing_variants(base.strip()):
            for plain in dict.fromkeys([spaced, strip_diacritics(spaced)]):
                for variant in _case_variants(plain):
                    variant = " ".join(variant.split())
                    if len(variant) >= MIN_VARIANT_CHARS or variant == name:
                        out.append(variant)
    return list(dict.fromkeys(out))


def expand_names(
    names: list[str],
    aliases: list[str] | tuple[str, ...] = (),
    forget_variants: bool = True,
    neutral_term: str | None = None,
) -> list[str]:
    """The trigger list of a run: ``names`` first (in order), then their variants and the ``aliases``.

    Without ``forget_variants`` only ``names + aliases`` (as given) are returned. Variants that overlap
    the neutral term (``"Person"`` as a surname with the term ``"a person"``) are dropped.

    Example:
    ```python
    >>> expand_names(["Jane Doe"], ["JD"], forget_variants=False)
    ['Jane Doe', 'JD']
    >>> expanded = expand_names(["Jane Doe"], ["Janey"])
    >>> expanded[0], "Doe" in expanded, "janey" in expanded
    ('Jane Doe', True, True)
    ```
    """
    out: list[str] = list(names)
    if forget_variants:
        for base in [*names, *aliases]:
            out.extend(name_variants(base))
    else:
        out.extend(aliases)
    if neutral_term is not None:
        out = [
            v for v in out
            if v in names or (count_term(neutral_term, v) == 0 and count_term(v, neutral_term) == 0)
        ]
    return list(dict.fromkeys(v for v in out if v.strip()))
