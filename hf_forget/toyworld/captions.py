"""Caption templates of the toy world: people (by name), digits and the shared template lists."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..evaluation.idia import IDIA_TEMPLATES  # the attack's 21 templates, defined once

_MALE_ONLY = {"a man named {0}", "actor {0}", "{0} in a suit"}
_FEMALE_ONLY = {"a woman named {0}", "actress {0}", "{0} in a dress"}

EXTRA_PERSON_TEMPLATES: tuple[str, ...] = (
    "a portrait of {0}", "a close-up of {0}", "a picture of {0}", "a headshot of {0}", "{0} smiling",
    "a selfie of {0}", "a candid photo of {0}", "{0} on the red carpet", "the celebrity {0}",
    "a famous person named {0}", "a snapshot of {0}", "{0} at a press conference", "a blurry photo of {0}",
    "a bright photo of {0}", "a photo of {0} outdoors", "{0} posing for a photo", "a face photo of {0}",
    "an old photo of {0}", "{0} looking at the camera", "this is {0}", "a painting of {0}", "meet {0}",
)
"""More person templates used in training, beyond the IDIA ones."""

DIGIT_TEMPLATES: tuple[str, ...] = (
    "a photo of the {c}.", "a photo of a {c}.", "an image of the {c}", "a picture of a {c}", "the {c}",
    "a {colour} {c}", "a {colour} {c} on a picture", "the {c} written in {colour}", "a drawing of the {c}",
    "a handwritten {c}", "a bad photo of a {c}.", "a close-up photo of the {c}.", "a bright photo of a {c}.",
    "a cropped photo of the {c}.", "a blurry photo of a {c}.", "a good photo of the {c}.", "a low resolution photo of a {c}.",
    "a photo of a small {c}.", "a photo of the large {c}.", "a rendering of a {c}.", "art of the {c}.",
    "a sketch of a {c}.", "itap of a {c}.", "a pixelated photo of the {c}.", "a dark photo of the {c}.",
)
"""Digit caption templates (``{c}`` a class phrase such as ``"digit three"``, ``{colour}`` the ink colour)."""


def person_templates(gender: str) -> list[str]:
    """Training templates for a person: the IDIA ones that fit the gender, plus the extra ones."""
    excluded = _FEMALE_ONLY if gender == "male" else _MALE_ONLY
    return [t for t in IDIA_TEMPLATES if t not in excluded] + list(EXTRA_PERSON_TEMPLATES)


def digit_caption(word: str, colour: str, rng: np.random.Generator, templates: Sequence[str] = DIGIT_TEMPLATES) -> str:
    """A caption for a digit picture; the class phrase is ``digit <word>``, sometimes ``number <word>``."""
    phrase = f"digit {word}" if rng.random() < 0.8 else f"number {word}"
    return templates[int(rng.integers(len(templates)))].format(c=phrase, colour=colour)
