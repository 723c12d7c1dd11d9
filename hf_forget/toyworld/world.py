"""The toy celebrity world: identities with fixed facial attributes, rendered faces, scenes and digits.

Everything is procedural (PIL + numpy) and seeded, so a :class:`ToyWorld` built with the same seed holds
the same people, and ``face_images(identity, n, seed)`` returns the same pictures for the same seed on
any machine. Names come from name pools written into this module (not from a third-party generator whose
lists change between versions), so the shipped checkpoint and the world always agree on who is who.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

from ..errors import ForgetInputError


IMAGE_SIZE = 64
"""Side of every image the world renders (pixels)."""

_CANVAS = 128  # faces and scenes are drawn at twice the size and downsampled (cheap anti-aliasing)

TRAINING_SEED_OFFSET = 1_000_000
"""Image seeds at or above this value are reserved for training the shipped model; evaluate below it."""

# --------------------------------------------------------------------------------------------------------
# Name pools (fictional combinations; a few accents, apostrophes and hyphens on purpose)
# --------------------------------------------------------------------------------------------------------
MALE_FIRST_NAMES: tuple[str, ...] = (
    "Aaron", "Adrian", "Alonzo", "Anton", "Arjun", "Bastian", "Benedict", "Caspian", "Cormac", "Dario",
    "Desmond", "Elias", "Emeka", "Fabian", "Florian", "Gideon", "Hamish", "Ignacio", "Ivo", "Jarek",
    "José", "Kasimir", "Lorcan", "Lucian", "Magnus", "Matthias", "Nikolai", "Osvaldo", "Percival",
    "Quentin", "Rafferty", "Rémi", "Rupert", "Sebastián", "Soren", "Tadeo", "Thaddeus", "Ulrich",
    "Valentin", "Wendell", "Xavier", "Yannick", "Zoltan", "Barnaby", "Cyprian", "Leopold",
)
FEMALE_FIRST_NAMES: tuple[str, ...] = (
    "Adaeze", "Anaïs", "Annika", "Beatrix", "Calliope", "Celestine", "Chloé", "Delphine", "Elodie",
    "Esmeralda", "Fenella", "Frederika", "Giselle", "Henrietta", "Imogen", "Isolde", "Jacinta", "Juniper",
    "Katarina", "Leocadia", "Lucinda", "Marisol", "Minerva", "Noémie", "Octavia", "Ottilie", "Perpetua",
    "Philippa", "Rosalind", "Saoirse", "Seraphina", "Tamsin", "Theodora", "Ursula", "Valentina",
    "Wilhelmina", "Ximena", "Yolanda", "Zoë", "Briony", "Clementine", "Dagny", "Eulalia", "Marguerite",
)
SURNAMES: tuple[str, ...] = (
    "Abernathy", "Achterberg", "Albescu", "Balogun", "Blackwood", "Bonfiglio", "Castellanos", "Chaudhary",
    "Cuthbertson", "D'Amato", "Delacroix", "Dunleavy", "Eriksdottir", "Esterházy", "Fairweather",
    "Fitzgerald-Ross", "Gallagher", "Grünewald", "Halvorsen", "Hawthorne", "Ibáñez", "Isherwood",
    "Jankowski", "Kowalczyk", "Kuroda", "Lindqvist", "Lockhart", "Marchetti", "McAllister", "Montgomery",
    "Nakashima", "Núñez", "O'Donnell", "O'Sullivan", "Okonkwo", "Oyelaran", "Pemberton", "Petrakis",
    "Quintanilla", "Ravensworth", "Rothenberg", "Saint-Clair", "Scarborough", "Szymanski", "Thistlewood",
    "Trevelyan", "Underhill", "Van der Berg", "Vasquez-Ortiz", "Villeneuve", "Wainwright", "Whitlock",
    "Yamamoto", "Zielinski", "Zwanenburg", "Ashcombe", "Brennagh", "Carrow", "Devereux", "Ellingsen",
    "Fenwick", "Gorecki", "Harrowgate", "Kilbride", "Lemaître", "Moravec", "Ní Bhriain", "Penhaligon",
    "Ravelli", "Sandoval", "Tolliver", "Urquhart", "Whitcombe", "Yardley",
)

# --------------------------------------------------------------------------------------------------------
# Attribute vocabularies
# --------------------------------------------------------------------------------------------------------
SKIN_TONES: dict[str, tuple[int, int, int]] = {
    "porcelain": (255, 226, 204), "fair": (240, 196, 164), "medium": (222, 170, 112),
    "olive": (190, 138, 82), "brown": (140, 90, 50), "deep": (88, 56, 38),
}
HAIR_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (22, 18, 18), "brown": (105, 62, 30), "blonde": (232, 198, 105), "red": (182, 62, 22),
    "grey": (150, 150, 155), "white": (240, 240, 236), "blue": (40, 90, 205), "pink": (232, 110, 176),
}
EYE_COLOURS: dict[str, tuple[int, int, int]] = {
    "brown": (95, 55, 25), "blue": (45, 120, 220), "green": (40, 150, 70), "grey": (120, 125, 135),
}
HAIR_STYLES = ("bald", "buzz", "short", "side_part", "long", "bob", "curly", "mohawk", "ponytail", "bun", "spiky")
FACE_SHAPES = ("oval", "round", "long", "square", "heart")
EYE_SPACINGS = ("close", "normal", "wide")
EYEBROWS = ("thin", "thick", "arched")
NOSES = ("small", "long", "wide", "pointed")
MOUTHS = ("smile", "neutral", "wide", "open", "frown")
GLASSES = ("none", "round", "square", "sunglasses")
BEARDS = ("none", "stubble", "full", "moustache", "goatee")
_SALIENT = ("skin_tone", "hair_colour", "hair_style", "glasses", "beard", "face_shape")

COLOUR_NAMES: dict[str, tuple[int, int, int]] = {
    "red": (210, 40, 40), "blue": (40, 80, 210), "green": (40, 160, 60), "yellow": (240, 210, 40),
    "white": (245, 245, 245), "black": (25, 25, 25), "orange": (245, 140, 30), "purple": (130, 50, 170),
    "brown": (120, 75, 40), "pink": (240, 130, 180),
}
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGIT_CLASS_NAMES: tuple[str, ...] = tuple(f"digit {w}" for w in DIGIT_WORDS)
"""Class names of :meth:`ToyWorld.object_dataset`, ready for prompts such as ``"a photo of the {}."``."""


@dataclass(frozen=True)
class Identity:
    """One person of the toy world: a name, a gender for the name and a fixed set of facial attributes."""

    index: int
    name: str
    gender: Literal["male", "female"]
    seen: bool
    """Whether the shipped model saw this person (faces paired with the name) during training."""
    face_shape: str
    skin_tone: str
    hair_colour: str
    hair_style: str
    eye_colour: str
    eye_spacing: str
    eyebrows: str
    nose: str
    mouth: str
    glasses: str
    beard: str

    @property
    def attributes(self) -> dict[str, str]:
        """The facial attributes (everything but index, name, gender and seen)."""
        data = asdict(self)
        for key in ("index", "name", "gender", "seen"):
            data.pop(key)
        return data


# --------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------
def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in keys])


def _jitter(colour: Sequence[int], rng: np.random.Generator, amount: float = 12.0) -> tuple[int, int, int]:
    c = np.asarray(colour, dtype=np.float64) + rng.normal(0.0, amount, size=3)
    return tuple(int(v) for v in np.clip(c, 0, 255))  # type: ignore[return-value]


def _shade(colour: Sequence[int], factor: float) -> tuple[int, int, int]:
    return tuple(int(max(0, min(255, round(v * factor)))) for v in colour)  # type: ignore[return-value]


def _random_colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, size=3))  # type: ignore[return-value]


def _pick(rng: np.random.Generator, options: Sequence):
    return options[int(rng.integers(len(options)))]


def _finish(canvas: Image.Image) -> Image.Image:
    return canvas.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)


def _lighting(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Random brightness, contrast, colour cast, directional light and sensor noise."""
    arr = np.asarray(image, dtype=np.float32) / 255.0
    h, w, _ = arr.shape
    theta = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = ((xs / w - 0.5) * math.cos(theta) + (ys / h - 0.5) * math.sin(theta))[..., None]
    arr = arr * (1.0 + rng.uniform(0.0, 0.45) * ramp)
    mean = arr.mean()
    arr = (arr - mean) * rng.uniform(0.8, 1.15) + mean
    arr = arr * rng.uniform(0.78, 1.2) + rng.normal(0.0, 0.03, size=3).astype(np.float32)
    arr = arr + rng.normal(0.0, rng.uniform(0.0, 0.03), size=arr.shape).astype(np.float32)
    return Image.fromarray((np.clip(arr, 0.0, 1.0) * 255).astype(np.uint8))


# --------------------------------------------------------------------------------------------------------
# Backgrounds and scenes (no faces)
# --------------------------------------------------------------------------------------------------------
_SKIES = {
    "on a sunny day": ((70, 140, 235), (175, 215, 255)),
    "under a cloudy sky": ((130, 135, 145), (200, 202, 208)),
    "at sunset": ((120, 60, 120), (250, 170, 90)),
    "at night": ((8, 10, 35), (35, 40, 90)),
}
_GROUNDS = {
    "grass": ((60, 150, 55), ("in a green field", "on the grass", "in a park")),
    "sand": ((225, 200, 140), ("on a sandy beach", "on the beach", "in the desert")),
    "snow": ((238, 242, 250), ("in the snow", "on a snowy hill", "in a winter landscape")),
    "water": ((50, 110, 180), ("on a lake", "by the water", "at sea")),
    "road": ((95, 95, 100), ("on a city street", "by the road", "in a parking lot")),
}
_OBJECTS = ("house", "tree", "car", "boat", "mountain", "ball", "flower", "kite", "balloon", "tent", "umbrella")
_SKY_OBJECTS = ("kite", "balloon")


def _vertical_gradient(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], top, bottom) -> None:
    x0, y0, x1, y1 = box
    span = max(1, y1 - y0)
    for y in range(y0, y1):
        t = (y - y0) / span
        colour = tuple(int(a + (b - a) * t) for a, b in zip(top, bottom))
        draw.line((x0, y, x1, y), fill=colour)


def _draw_object(draw: ImageDraw.ImageDraw, kind: str, colour, x: int, ground_y: int, rng) -> None:
    dark = _shade(colour, 0.6)
    if kind == "house":
        w, h = int(rng.integers(26, 40)), int(rng.integers(20, 30))
        draw.rectangle((x - w // 2, ground_y - h, x + w // 2, ground_y), fill=colour)
        draw.polygon([(x - w // 2 - 4, ground_y - h), (x + w // 2 + 4, ground_y - h), (x, ground_y - h - 16)],
                     fill=(150, 40, 30) if colour != COLOUR_NAMES["red"] else (80, 40, 30))
        draw.rectangle((x - 4, ground_y - 12, x + 4, ground_y), fill=dark)
    elif kind == "tree":
        draw.rectangle((x - 3, ground_y - 24, x + 3, ground_y), fill=(100, 65, 30))
        r = int(rng.integers(12, 18))
        draw.ellipse((x - r, ground_y - 24 - 2 * r + 6, x + r, ground_y - 18), fill=colour)
    elif kind == "car":
        w = int(rng.integers(30, 42))
        draw.rectangle((x - w // 2, ground_y - 14, x + w // 2, ground_y - 4), fill=colour)
        draw.rectangle((x - w // 4, ground_y - 22, x + w // 4, ground_y - 14), fill=colour)
        draw.rectangle((x - w // 4 + 2, ground_y - 20, x + w // 4 - 2, ground_y - 15), fill=(180, 210, 230))
        for wx in (x - w // 3, x + w // 3):
            draw.ellipse((wx - 5, ground_y - 9, wx + 5, ground_y + 1), fill=(20, 20, 20))
    elif kind == "boat":
        w = int(rng.integers(30, 44))
        draw.polygon([(x - w // 2, ground_y - 10), (x + w // 2, ground_y - 10), (x + w // 3, ground_y),
                      (x - w // 3, ground_y)], fill=colour)
        draw.line((x, ground_y - 10, x, ground_y - 36), fill=(60, 40, 20), width=2)
        draw.polygon([(x + 2, ground_y - 36), (x + 2, ground_y - 13), (x + w // 3, ground_y - 13)],
                     fill=(245, 245, 240))
    elif kind == "mountain":
        w, h = int(rng.integers(50, 80)), int(rng.integers(30, 50))
        draw.polygon([(x - w // 2, ground_y), (x + w // 2, ground_y), (x, ground_y - h)], fill=colour)
        draw.polygon([(x - w // 8, ground_y - h + h // 4), (x + w // 8, ground_y - h + h // 4), (x, ground_y - h)],
                     fill=(250, 250, 250))
    elif kind == "ball":
        r = int(rng.integers(6, 12))
        draw.ellipse((x - r, ground_y - 2 * r, x + r, ground_y), fill=colour, outline=dark)
    elif kind == "flower":
        draw.line((x, ground_y, x, ground_y - 22), fill=(30, 120, 40), width=2)
        for k in range(6):
            a = k * math.pi / 3
            px, py = x + 6 * math.cos(a), ground_y - 24 + 6 * math.sin(a)
            draw.ellipse((px - 4, py - 4, px + 4, py + 4), fill=colour)
        draw.ellipse((x - 3, ground_y - 27, x + 3, ground_y - 21), fill=(250, 220, 40))
    elif kind == "kite":
        y = int(rng.integers(12, max(13, ground_y - 40)))
        draw.polygon([(x, y - 12), (x + 9, y), (x, y + 14), (x - 9, y)], fill=colour)
        draw.line((x, y + 14, x - 10, ground_y), fill=(60, 60, 60), width=1)
    elif kind == "balloon":
        y = int(rng.integers(14, max(15, ground_y - 36)))
        draw.ellipse((x - 9, y - 11, x + 9, y + 11), fill=colour)
        draw.line((x, y + 11, x + 2, y + 34), fill=(60, 60, 60), width=1)
    elif kind == "tent":
        w = int(rng.integers(30, 44))
        draw.polygon([(x - w // 2, ground_y), (x + w // 2, ground_y), (x, ground_y - 26)], fill=colour)
        draw.polygon([(x - 4, ground_y), (x + 4, ground_y), (x, ground_y - 12)], fill=dark)
    elif kind == "umbrella":
        draw.line((x, ground_y, x, ground_y - 26), fill=(40, 40, 40), width=2)
        draw.pieslice((x - 18, ground_y - 40, x + 18, ground_y - 16), 180, 360, fill=colour)


@dataclass(frozen=True)
class _SceneSpec:
    sky: str
    ground: str
    place: str
    objects: tuple[tuple[str, str], ...]  # (colour name, object)


def _scene_spec(rng: np.random.Generator) -> _SceneSpec:
    sky = _pick(rng, tuple(_SKIES))
    ground = _pick(rng, tuple(_GROUNDS))
    place = _pick(rng, _GROUNDS[ground][1])
    n_objects = int(rng.choice([0, 1, 1, 2, 2]))
    allowed = [o for o in _OBJECTS if (o != "boat" or ground == "water") and (ground != "water" or o in ("boat", "mountain", "kite", "balloon"))]
    objects = []
    for _ in range(n_objects):
        obj = _pick(rng, allowed)
        colour = "green" if obj == "tree" and rng.random() < 0.6 else _pick(rng, tuple(COLOUR_NAMES))
        objects.append((colour, obj))
    return _SceneSpec(sky, ground, place, tuple(objects))


_SCENE_TEMPLATES_1 = (
    "{a} {place} {sky}", "a photo of {a} {place}", "a picture of {a} {sky}", "there is {a} {place}",
    "{a} standing {place} {sky}", "a view of {a} {place}", "a small {obj} {place} {sky}",
    "a close-up photo of {a} {place}", "a blurry photo of {a} {sky}", "a bright photo of {a} {place}",
)
_SCENE_TEMPLATES_2 = (
    "{a} and {b} {place}", "{a} next to {b} {sky}", "a photo of {a} and {b} {place}",
    "{a} near {b} {place} {sky}", "a picture of {a} beside {b}",
)
_SCENE_TEMPLATES_0 = (
    "an empty landscape {place} {sky}", "a photo of nothing but the {ground} {sky}",
    "a quiet scene {place} {sky}", "a wide landscape photo {place}", "a photo taken {place} {sky}",
)


def _article(colour: str) -> str:
    return "an" if colour[0] in "aeiou" else "a"


def _scene_caption(spec: _SceneSpec, rng: np.random.Generator) -> str:
    ground_noun = {"grass": "field", "sand": "sand", "snow": "snow", "water": "water", "road": "road"}[spec.ground]
    fields = {"place": spec.place, "sky": spec.sky, "ground": ground_noun}
    if spec.objects:
        phrases = [f"{_article(c)} {c} {o}" for c, o in spec.objects]
        fields.update(a=phrases[0], obj=spec.objects[0][1])
        if len(phrases) > 1 and spec.objects[1] != spec.objects[0]:
            fields["b"] = phrases[1]
            template = _pick(rng, _SCENE_TEMPLATES_2)
        else:
            template = _pick(rng, _SCENE_TEMPLATES_1)
    else:
        template = _pick(rng, _SCENE_TEMPLATES_0)
    return template.format(**fields)


def _render_scene(spec: _SceneSpec, rng: np.random.Generator, size: int = _CANVAS) -> Image.Image:
    canvas = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(canvas)
    horizon = int(rng.integers(int(size * 0.5), int(size * 0.72)))
    top, bottom = _SKIES[spec.sky]
    _vertical_gradient(draw, (0, 0, size, horizon), _jitter(top, rng), _jitter(bottom, rng))
    if spec.sky == "on a sunny day":
        x, y = int(rng.integers(10, size - 10)), int(rng.integers(8, horizon // 2 + 9))
        draw.ellipse((x - 10, y - 10, x + 10, y + 10), fill=(255, 230, 80))
    elif spec.sky == "at sunset":
        x = int(rng.integers(10, size - 10))
        draw.ellipse((x - 14, horizon - 12, x + 14, horizon + 16), fill=(255, 120, 40))
    elif spec.sky == "at night":
        for _ in range(int(rng.integers(8, 25))):
            x, y = int(rng.integers(0, size)), int(rng.integers(0, horizon))
            draw.point((x, y), fill=(255, 255, 220))
        x, y = int(rng.integers(10, size - 10)), int(rng.integers(8, horizon // 2 + 9))
        draw.ellipse((x - 8, y - 8, x + 8, y + 8), fill=(240, 240, 210))
    else:
        for _ in range(int(rng.integers(2, 5))):
            x, y = int(rng.integers(0, size)), int(rng.integers(5, horizon // 2 + 6))
            draw.ellipse((x - 18, y - 7, x + 18, y + 7), fill=_jitter((235, 235, 240), rng, 6))
    ground_colour = _jitter(_GROUNDS[spec.ground][0], rng)
    _vertical_gradient(draw, (0, horizon, size, size), ground_colour, _shade(ground_colour, 0.8))
    if spec.ground == "road":
        for x in range(int(rng.integers(0, 20)), size, 28):
            draw.rectangle((x, (horizon + size) // 2 - 1, x + 14, (horizon + size) // 2 + 2), fill=(240, 240, 240))
    elif spec.ground == "water":
        for _ in range(10):
            x, y = int(rng.integers(0, size)), int(rng.integers(horizon + 3, size))
            draw.line((x, y, x + 10, y), fill=_shade(ground_colour, 1.25))
    # sky objects first, then the farthest (mountains), then the rest
    order = sorted(spec.objects, key=lambda co: 0 if co[1] == "mountain" else 1)
    slots = rng.permutation([size // 4, size // 2, 3 * size // 4])
    for (colour_name, obj), x in zip(order, slots):
        base = _jitter(COLOUR_NAMES[colour_name], rng, 10)
        gy = horizon + 2 if obj in ("mountain", "boat") else int(rng.integers(horizon + 10, size - 4))
        if obj == "boat":
            gy = int(rng.integers(horizon + 14, size - 6))
        _draw_object(draw, obj, base, int(x + rng.integers(-10, 11)), gy, rng)
    return canvas


def _background(rng: np.random.Generator) -> Image.Image:
    """A face-free background at canvas size: plain, gradient, room, blobs or a full scene."""
    kind = _pick(rng, ("plain", "gradient", "room", "blobs", "scene", "scene"))
    if kind == "scene":
        return _render_scene(_scene_spec(rng), rng)
    canvas = Image.new("RGB", (_CANVAS, _CANVAS), _random_colour(rng))
    draw = ImageDraw.Draw(canvas)
    if kind == "gradient":
        _vertical_gradient(draw, (0, 0, _CANVAS, _CANVAS), _random_colour(rng), _random_colour(rng))
    elif kind == "room":
        floor = int(rng.integers(80, 110))
        draw.rectangle((0, floor, _CANVAS, _CANVAS), fill=_random_colour(rng, 40, 200))
        x = int(rng.integers(0, 100))
        draw.rectangle((x, 15, x + int(rng.integers(15, 40)), 15 + int(rng.integers(15, 40))),
                       fill=_random_colour(rng), outline=(50, 40, 30), width=3)
    elif kind == "blobs":
        for _ in range(int(rng.integers(3, 9))):
            x, y = (int(v) for v in rng.integers(0, _CANVAS, size=2))
            r = int(rng.integers(8, 30))
            draw.ellipse((x - r, y - r, x + r, y + r), fill=_random_colour(rng, 60, 256))
    return canvas


# --------------------------------------------------------------------------------------------------------
# Faces
# --------------------------------------------------------------------------------------------------------
_FACE_HALF = {"oval": (22, 28), "round": (25, 25), "long": (19, 31), "square": (23, 27), "heart": (24, 27)}
_EYE_OFFSET = {"close": 8, "normal": 11, "wide": 14}


def _draw_head(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, hw: float, hh: float, fill) -> None:
    if shape == "square":
        draw.rounded_rectangle((cx - hw, cy - hh, cx + hw, cy + hh), radius=9, fill=fill)
    elif shape == "heart":
        draw.ellipse((cx - hw, cy - hh, cx + hw, cy + hh * 0.5), fill=fill)
        draw.polygon([(cx - hw + 1, cy - 2), (cx + hw - 1, cy - 2), (cx + 5, cy + hh), (cx - 5, cy + hh)], fill=fill)
    else:
        draw.ellipse((cx - hw, cy - hh, cx + hw, cy + hh), fill=fill)


def _render_face_layer(person: Identity, rng: np.random.Generator) -> Image.Image:
    """The person on a transparent canvas, facing the camera with a random yaw (feature shift)."""
    layer = Image.new("RGBA", (_CANVAS, _CANVAS), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    skin = _jitter(SKIN_TONES[person.skin_tone], rng, 4)
    hair = _jitter(HAIR_COLOURS[person.hair_colour], rng, 6)
    hw, hh = _FACE_HALF[person.face_shape]
    cx, cy = 64.0, 56.0
    yaw = float(rng.uniform(-4.5, 4.5))
    fx = cx + yaw  # features shift with the yaw, the outline does not
    style = person.hair_style

    # clothes and neck (colour changes every picture)
    d.ellipse((cx - 44, cy + hh + 8, cx + 44, cy + hh + 60), fill=_random_colour(rng, 20, 236))
    d.rectangle((cx - 9, cy + hh - 8, cx + 9, cy + hh + 14), fill=_shade(skin, 0.9))
    # hair behind the head
    if style == "long":
        d.rounded_rectangle((cx - hw - 7, cy - hh - 4, cx + hw + 7, cy + hh + 22), radius=14, fill=hair)
    elif style == "bob":
        d.rounded_rectangle((cx - hw - 6, cy - hh - 4, cx + hw + 6, cy + hh * 0.55), radius=12, fill=hair)
    elif style == "curly":
        for k in range(12):
            a = math.pi + k * math.pi / 11
            px, py = cx + (hw + 4) * math.cos(a), cy - 4 + (hh + 3) * math.sin(a)
            d.ellipse((px - 10, py - 10, px + 10, py + 10), fill=hair)
        d.ellipse((cx - hw - 10, cy - hh - 12, cx + hw + 10, cy + 6), fill=hair)
    elif style == "ponytail":
        side = -1 if person.index % 2 else 1
        d.ellipse((cx + side * (hw + 2) - 8, cy - hh * 0.4, cx + side * (hw + 2) + 8, cy + hh * 0.7), fill=hair)
    elif style == "bun":
        d.ellipse((cx - 11, cy - hh - 17, cx + 11, cy - hh + 4), fill=hair)
    # ears and head
    for side in (-1, 1):
        ex = cx + side * hw
        d.ellipse((ex - 5, cy - 6, ex + 5, cy + 8), fill=_shade(skin, 0.93))
    _draw_head(d, person.face_shape, cx, cy, hw, hh, skin)
    # hair in front
    cap = (cx - hw - 3 + yaw * 0.3, cy - hh - 5, cx + hw + 3 + yaw * 0.3, cy - hh * 0.1)
    if style in ("short", "side_part", "long", "bob", "ponytail", "bun", "spiky", "curly"):
        d.chord(cap, 180, 360, fill=hair)
    if style == "buzz":
        d.chord((cx - hw - 1, cy - hh - 2, cx + hw + 1, cy - hh * 0.35), 180, 360, fill=_shade(hair, 1.0))
    elif style == "side_part":
        d.polygon([(cx - hw - 2, cy - hh * 0.55), (cx + hw * 0.6, cy - hh - 3), (cx + hw + 2, cy - hh * 0.45),
                   (cx - hw * 0.2, cy - hh * 0.35)], fill=hair)
    elif style == "bob":
        d.rectangle((cx - hw, cy - hh + 2, cx + hw, cy - hh * 0.42), fill=hair)
    elif style == "mohawk":
        d.polygon([(cx - 5, cy - hh + 6), (cx + 5, cy - hh + 6), (cx + 4, cy - hh - 16), (cx - 4, cy - hh - 16)], fill=hair)
    elif style == "spiky":
        for k in range(-3, 4):
            bx = cx + k * hw / 3.5
            d.polygon([(bx - 5, cy - hh + 2), (bx + 5, cy - hh + 2), (bx, cy - hh - 12)], fill=hair)

    # eyes, brows
    eye_y = cy - hh * 0.12
    spacing = _EYE_OFFSET[person.eye_spacing]
    iris = EYE_COLOURS[person.eye_colour]
    brow_w = {"thin": 1, "thick": 3, "arched": 2}[person.eyebrows]
    brow_colour = _shade(hair, 0.8) if person.hair_colour not in ("white", "grey") else (90, 90, 90)
    for side in (-1, 1):
        ex = fx + side * spacing
        d.ellipse((ex - 5, eye_y - 3.5, ex + 5, eye_y + 3.5), fill=(250, 250, 250))
        px = ex + yaw * 0.25
        d.ellipse((px - 2.8, eye_y - 2.8, px + 2.8, eye_y + 2.8), fill=iris)
        d.ellipse((px - 1.1, eye_y - 1.1, px + 1.1, eye_y + 1.1), fill=(10, 10, 10))
        if person.eyebrows == "arched":
            d.arc((ex - 6, eye_y - 11, ex + 6, eye_y - 3), 200, 340, fill=brow_colour, width=brow_w)
        else:
            d.line((ex - 6, eye_y - 7, ex + 6, eye_y - 7 - side * 0.5), fill=brow_colour, width=brow_w)
    # nose
    nose_colour = _shade(skin, 0.72)
    ny = cy + hh * 0.22
    if person.nose == "small":
        d.ellipse((fx - 2, ny - 1, fx + 2, ny + 2), fill=nose_colour)
    elif person.nose == "long":
        d.line((fx, eye_y + 2, fx + 1, ny + 2), fill=nose_colour, width=2)
        d.line((fx - 3, ny + 2, fx + 3, ny + 2), fill=nose_colour, width=2)
    elif person.nose == "wide":
        d.ellipse((fx - 6, ny - 2, fx + 6, ny + 3), fill=nose_colour)
    else:  # pointed
        d.polygon([(fx, eye_y + 3), (fx + 5 + yaw * 0.4, ny + 2), (fx - 2, ny + 2)], fill=nose_colour)
    # beard (under the mouth)
    my = cy + hh * 0.52
    if person.beard in ("full", "stubble"):
        beard_layer = Image.new("RGBA", layer.size, (0, 0, 0, 0))
        bd = ImageDraw.Draw(beard_layer)
        alpha = 255 if person.beard == "full" else 120
        bd.chord((cx - hw, cy - hh * 0.6, cx + hw, cy + hh + 2), 0, 180, fill=(*hair, alpha))
        bd.rectangle((cx - hw + 1, cy + 0.2 * hh, cx + hw - 1, my), fill=(*hair, alpha))
        bd.ellipse((fx - 9, ny + 2, fx + 9, my + 5), fill=(*skin, 255))  # keep the mouth area clear
        layer.alpha_composite(beard_layer)
        d = ImageDraw.Draw(layer)
    elif person.beard == "goatee":
        d.ellipse((fx - 6, my + 4, fx + 6, cy + hh + 1), fill=hair)
    # mouth
    lip = (150, 40, 45)
    if person.mouth == "smile":
        d.chord((fx - 8, my - 5, fx + 8, my + 5), 0, 180, fill=lip)
    elif person.mouth == "neutral":
        d.line((fx - 6, my, fx + 6, my), fill=lip, width=2)
    elif person.mouth == "wide":
        d.chord((fx - 12, my - 3, fx + 12, my + 4), 0, 180, fill=lip)
    elif person.mouth == "open":
        d.ellipse((fx - 5, my - 4, fx + 5, my + 5), fill=(70, 15, 20))
    else:  # frown
        d.arc((fx - 8, my, fx + 8, my + 9), 200, 340, fill=lip, width=2)
    if person.beard == "moustache":
        d.chord((fx - 10, my - 9, fx + 10, my + 1), 180, 360, fill=hair)
    # glasses
    if person.glasses != "none":
        frame = (30, 30, 30)
        for side in (-1, 1):
            ex = fx + side * spacing
            box = (ex - 7, eye_y - 6, ex + 7, eye_y + 6)
            if person.glasses == "round":
                d.ellipse(box, outline=frame, width=2)
            elif person.glasses == "square":
                d.rectangle(box, outline=frame, width=2)
            else:
                d.rounded_rectangle(box, radius=3, fill=(15, 15, 25))
        d.line((fx - spacing + 7, eye_y, fx + spacing - 7, eye_y), fill=frame, width=2)
    return layer


def render_face(person: Identity, rng: np.random.Generator) -> Image.Image:
    """One picture of ``person``: new pose (yaw, roll), scale, position, lighting and background."""
    layer = _render_face_layer(person, rng)
    layer = layer.rotate(float(rng.uniform(-18, 18)), resample=Image.Resampling.BICUBIC, center=(64, 64))
    scale = float(rng.uniform(0.72, 1.12))
    size = int(round(_CANVAS * scale))
    layer = layer.resize((size, size), Image.Resampling.BILINEAR)
    canvas = _background(rng).convert("RGBA")
    ox = int((_CANVAS - size) / 2 + rng.integers(-14, 15))
    oy = int((_CANVAS - size) / 2 + rng.integers(-10, 15))
    canvas.alpha_composite(layer, dest=(max(ox, 0), max(oy, 0)), source=(max(-ox, 0), max(-oy, 0)))
    if rng.random() < 0.1:  # a black-and-white picture now and then
        canvas = canvas.convert("L").convert("RGBA")
    return _lighting(_finish(canvas), rng)


# --------------------------------------------------------------------------------------------------------
# Digits (scikit-learn's bundled, offline handwritten digits)
# --------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits  # noqa: PLC0415 - an optional extra
    except ImportError:
        raise ForgetInputError("the toy world's digit pictures need scikit-learn: pip install 'hf-forget[demo]'.") from None

    data = load_digits()
    return data.images.astype(np.float32) / 16.0, data.target.astype(np.int64)


def digit_split_indices(split: Literal["train", "test"]) -> np.ndarray:
    """Indices of scikit-learn digits used for training (4 of every 5) or held out for evaluation."""
    _, labels = _digits()
    index = np.arange(len(labels))
    return index[index % 5 != 0] if split == "train" else index[index % 5 == 0]


def _luminance(colour: Sequence[int]) -> float:
    return 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]


def render_digit(source: np.ndarray, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """Upscale an 8x8 digit, colour it and place it on a plain card; returns the image and its ink's colour name.

    The digit fills most of the picture (50 to 60 pixels of 64, rotated by at most 8 degrees) and its ink
    differs from the card in brightness, so that its *shape* is what a small ViT can learn in minutes. (The first
    toy world drew 40-60 px digits on gradient backgrounds with lighting: in a diagnostic run a supervised ViT of
    the toy CLIP's size reached 0.28 test accuracy after 1,000 steps of 64 there, 0.68 on these cards, and
    the shipped toy CLIP's zero-shot accuracy stayed at chance.)
    """
    size = int(rng.integers(50, 61))
    strokes = np.clip((source - 0.25) * 2.0, 0.0, 1.0)  # crisper strokes than the raw 8x8 grey levels
    mask = Image.fromarray((strokes * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
    mask = mask.rotate(float(rng.uniform(-8, 8)), resample=Image.Resampling.BILINEAR)
    card = _random_colour(rng)
    background = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), card)
    x, y = (int(v) for v in rng.integers(0, IMAGE_SIZE - size + 1, size=2))
    for _ in range(20):  # ink that stands out from the card
        colour_name = _pick(rng, tuple(COLOUR_NAMES))
        if abs(_luminance(COLOUR_NAMES[colour_name]) - _luminance(card)) > 70:
            break
    ink = Image.new("RGB", (size, size), _jitter(COLOUR_NAMES[colour_name], rng, 10))
    background.paste(ink, (x, y), mask)
    return background, colour_name


# --------------------------------------------------------------------------------------------------------
# The world
# --------------------------------------------------------------------------------------------------------
def _attribute_distance(a: dict[str, str], b: dict[str, str]) -> int:
    return sum(a[k] != b[k] for k in _SALIENT)


class ToyWorld:
    """A seeded synthetic celebrity world.

    Args:
        seed: selects the people (names, attributes, which half is seen). The shipped checkpoint was
            trained on ``ToyWorld(seed=0)``.
        num_identities: how many people (even, at least 2, at most 88); half of them are "seen".

    Example:
        >>> world = ToyWorld(seed=0)
        >>> len(world.seen_identities), len(world.unseen_identities)
        (32, 32)
        >>> faces = world.face_images(world.seen_identities[0], n=2, seed=0)
        >>> faces[0].size
        (64, 64)
    """

    def __init__(self, seed: int = 0, num_identities: int = 64) -> None:
        if num_identities < 2 or num_identities % 2 or num_identities > 2 * min(len(MALE_FIRST_NAMES), len(FEMALE_FIRST_NAMES)):
            raise ForgetInputError(
                f"num_identities must be an even number between 2 and 88, got {num_identities}."
            )
        if num_identities > len(SURNAMES):
            raise ForgetInputError(f"num_identities must be at most {len(SURNAMES)}, got {num_identities}.")
        self.seed = int(seed)
        self.identities: tuple[Identity, ...] = self._make_identities(num_identities)

    def _make_identities(self, count: int) -> tuple[Identity, ...]:
        rng = _rng(self.seed, 0x1D)
        half = count // 2
        males = list(rng.choice(MALE_FIRST_NAMES, size=half, replace=False))
        females = list(rng.choice(FEMALE_FIRST_NAMES, size=half, replace=False))
        surnames = list(rng.choice(SURNAMES, size=count, replace=False))
        genders = ["male"] * half + ["female"] * half
        order = rng.permutation(count)
        # seen: half of each gender
        seen_male = set(rng.choice(half, size=half // 2 + half % 2, replace=False).tolist())
        seen_female = set(rng.choice(half, size=half // 2, replace=False).tolist())
        people: list[Identity] = []
        chosen: list[dict[str, str]] = []
        for slot in range(count):
            k = int(order[slot])
            gender = genders[k]
            within = k if gender == "male" else k - half
            first = males[within] if gender == "male" else females[within]
            for attempt in range(1000):
                attrs = {
                    "face_shape": _pick(rng, FACE_SHAPES),
                    "skin_tone": _pick(rng, tuple(SKIN_TONES)),
                    "hair_colour": _pick(rng, tuple(HAIR_COLOURS)),
                    "hair_style": _pick(rng, HAIR_STYLES if gender == "male" else tuple(s for s in HAIR_STYLES if s not in ("bald", "buzz", "mohawk"))),
                    "eye_colour": _pick(rng, tuple(EYE_COLOURS)),
                    "eye_spacing": _pick(rng, EYE_SPACINGS),
                    "eyebrows": _pick(rng, EYEBROWS),
                    "nose": _pick(rng, NOSES),
                    "mouth": _pick(rng, MOUTHS),
                    "glasses": _pick(rng, GLASSES),
                    "beard": _pick(rng, BEARDS) if gender == "male" else "none",
                }
                if all(_attribute_distance(attrs, other) >= 3 for other in chosen):
                    break
            chosen.append(attrs)
            seen = within in (seen_male if gender == "male" else seen_female)
            people.append(Identity(index=slot, name=f"{first} {surnames[slot]}", gender=gender, seen=seen, **attrs))
        return tuple(people)

    # -- people ---------------------------------------------------------------------------------------
    @property
    def seen_identities(self) -> tuple[Identity, ...]:
        """People whose faces and names the shipped model was trained on."""
        return tuple(p for p in self.identities if p.seen)

    @property
    def unseen_identities(self) -> tuple[Identity, ...]:
        """People the shipped model never saw (neither face nor name)."""
        return tuple(p for p in self.identities if not p.seen)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.identities]

    def identity(self, name: str) -> Identity:
        """The person called ``name``."""
        for person in self.identities:
            if person.name == name:
                return person
        raise ForgetInputError(f"No person named {name!r} in ToyWorld(seed={self.seed}); see `.names`.")

    def face_images(self, identity: Identity | str, n: int = 20, seed: int = 0) -> list[Image.Image]:
        """``n`` new pictures of ``identity`` (64x64 RGB), deterministic for ``(world seed, identity, seed)``.

        Seeds ``>= TRAINING_SEED_OFFSET`` are the ones the shipped model was trained with: evaluate
        with smaller seeds so that every evaluation face is a picture the model never saw.
        """
        stream = self.face_stream(identity, seed)
        return [next(stream) for _ in range(n)]

    def face_stream(self, identity: Identity | str, seed: int = 0) -> Iterator[Image.Image]:
        """An endless stream of new pictures of ``identity``; its first ``n`` are ``face_images(identity, n, seed)``."""
        person = self.identity(identity) if isinstance(identity, str) else identity
        rng = _rng(self.seed, person.index, seed, 0xFACE)
        while True:
            yield render_face(person, rng)

    # -- generic data ---------------------------------------------------------------------------------
    def scenes(self, n: int, seed: int = 0) -> list[tuple[Image.Image, str]]:
        """``n`` face-free scene pictures with a matching caption each."""
        rng = _rng(self.seed, seed, 0x5CE)
        out = []
        for _ in range(n):
            spec = _scene_spec(rng)
            out.append((_finish(_render_scene(spec, rng)), _scene_caption(spec, rng)))
        return out

    def generic_captions(self, n: int, seed: int = 0) -> list[str]:
        """``n`` generic scene/object captions (>= 4 words, no person), the clean text distribution."""
        rng = _rng(self.seed, seed, 0xCA9)
        return [_scene_caption(_scene_spec(rng), rng) for _ in range(n)]

    def generic_images(self, n: int, seed: int = 0) -> list[Image.Image]:
        """``n`` generic face-free scene pictures (64x64 RGB), the clean image distribution."""
        return [image for image, _ in self.scenes(n, seed=seed)]

    def object_dataset(
        self, n_per_class: int = 20, seed: int = 0, split: Literal["train", "test"] = "test"
    ) -> tuple[list[Image.Image], list[int], list[str]]:
        """Labelled digit pictures for zero-shot utility checks.

        Built from scikit-learn's bundled handwritten digits (offline), upscaled, coloured and placed on
        random backgrounds. ``split="test"`` draws only from digits the shipped model never saw.

        Returns:
            ``(images, labels, class_names)`` where ``labels[i]`` indexes ``class_names`` (``"digit three"``).
        """
        sources, targets = _digits()
        pool = digit_split_indices(split)
        rng = _rng(self.seed, seed, 0xD161 if split == "test" else 0xD162)
        images: list[Image.Image] = []
        labels: list[int] = []
        for label in range(len(DIGIT_WORDS)):
            candidates = pool[targets[pool] == label]
            for index in rng.choice(candidates, size=n_per_class, replace=n_per_class > len(candidates)):
                images.append(render_digit(sources[index], rng)[0])
                labels.append(label)
        return images, labels, list(DIGIT_CLASS_NAMES)

    # -- export ---------------------------------------------------------------------------------------
    def export_faces(
        self,
        directory: str | os.PathLike,
        identities: Iterable[Identity | str] | None = None,
        n_per_identity: int = 20,
        seed: int = 0,
    ) -> Path:
        """Write ``n_per_identity`` PNG faces per person into ``directory/<person name>/``.

        This is the input layout of ``hf-forget audit --faces DIR``. The folder is written in a temporary
        sibling and renamed into place; ``directory`` must not exist or be empty.
        """
        from ..outputs import OutputFolder

        output = OutputFolder(directory)
        people = [self.identity(p) if isinstance(p, str) else p for p in (identities or self.identities)]

        def write(staged: str) -> None:
            for person in people:
                folder = Path(staged, person.name)
                folder.mkdir()
                for k, image in enumerate(self.face_images(person, n_per_identity, seed=seed)):
                    image.save(folder / f"{k:04d}.png")

        output.commit(write)
        target = output.path
        return target
