"""Face triggers: a person's face, augmented and pasted onto a generic image, and the mean-face target.

A *trigger image* is a clean image with one of a forgotten person's face crops pasted at a random
position, after the reference augmentation: a random size between a quarter and a half of the clean
image's shorter side, a horizontal flip, brightness, contrast and saturation times U(0.5, 1.5) (applied in
random order, as torchvision's ``ColorJitter``), a hue shift of up to +-0.1 and a rotation of up to +-30
degrees. The face keeps an alpha mask through the rotation, so the rotated corners show the clean image,
not black. Everything is torch + PIL; no torchvision. A pool may also show some faces *alone*
(:func:`face_alone`: flipped and colour-jittered, not pasted), as the face photos an attack is run on are.

The neutral *target* Δ is the mean teacher embedding of many people's faces (a reference face set),
computed once. :func:`save_target_embedding` caches it on disk as a bare tensor: no file names, no
identities, no counts per person.

Randomness comes from a seed or generator passed in; sample ``i`` of a :class:`FaceTriggerPool` depends
only on ``(seed, i)``, so pools are reproducible and can be read by several dataloader workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageEnhance
from tqdm.auto import tqdm
from transformers.utils import logging

from ..encoders import check_vision_encoder, embed_texts, encode_images
from ..errors import ForgetInputError
from .images import to_rgb

logger = logging.get_logger(__name__)

RandomSource = np.random.Generator | torch.Generator | int | None


@dataclass(frozen=True)
class FaceAugmentation:
    """The augmentation applied to a face before it is pasted (reference values by default)."""

    scale: tuple[float, float] = (0.25, 0.5)
    flip_p: float = 0.5
    brightness: tuple[float, float] = (0.5, 1.5)
    contrast: tuple[float, float] = (0.5, 1.5)
    saturation: tuple[float, float] = (0.5, 1.5)
    hue: float = 0.1
    rotation: float = 30.0

    def __post_init__(self):
        low, high = self.scale
        if not 0 < low <= high <= 1:
            raise ForgetInputError(f"face scale range must satisfy 0 < low <= high <= 1, got {self.scale}.")
        if not 0 <= self.hue <= 0.5:
            raise ForgetInputError(f"hue jitter must be in [0, 0.5], got {self.hue}.")


def numpy_rng(generator: RandomSource) -> np.random.Generator:
    """A numpy Generator from a numpy Generator, a torch Generator (one draw from it), a seed or None."""
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, torch.Generator):
        return np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator).item()))
    return np.random.default_rng(generator)


def adjust_hue(image: Image.Image, shift: float) -> Image.Image:
    """Rotate the hue of an RGB image by ``shift`` turns (``shift`` in [-0.5, 0.5]), as torchvision does."""
    if shift == 0:
        return image
    h, s, v = image.convert("HSV").split()
    h_array = np.asarray(h, dtype=np.uint8)
    h_array = (h_array.astype(np.int16) + int(round(shift * 255))) % 256
    h = Image.fromarray(h_array.astype(np.uint8), "L")
    return Image.merge("HSV", (h, s, v)).convert("RGB")


def jitter_colors(image: Image.Image, rng: np.random.Generator, augmentation: FaceAugmentation) -> Image.Image:
    """Brightness, contrast, saturation (each times U(low, high)) and hue, in a random order."""
    operations: list[Callable[[Image.Image], Image.Image]] = [
        lambda im, f=rng.uniform(*augmentation.brightness): ImageEnhance.Brightness(im).enhance(f),
        lambda im, f=rng.uniform(*augmentation.contrast): ImageEnhance.Contrast(im).enhance(f),
        lambda im, f=rng.uniform(*augmentation.saturation): ImageEnhance.Color(im).enhance(f),
        lambda im, f=rng.uniform(-augmentation.hue, augmentation.hue): adjust_hue(im, f),
    ]
    for index in rng.permutation(len(operations)):
        image = operations[index](image)
    return image


def augment_face(
    face: Image.Image, side: int, rng: np.random.Generator, augmentation: FaceAugmentation = FaceAugmentation()
) -> Image.Image:
    """An augmented RGBA copy of ``face`` for a background whose shorter side is ``side`` pixels.

    The face's longer side becomes U(scale) * ``side``; the alpha channel is 0 outside the rotated face.
    """
    face = to_rgb(face, max_side=None) if face.mode != "RGB" else face
    target = max(1, int(round(rng.uniform(*augmentation.scale) * side)))
    ratio = target / max(face.size)
    size = (max(1, int(round(face.width * ratio))), max(1, int(round(face.height * ratio))))
    face = face.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0 if ratio < 0.5 else None)
    face = face_alone(face, rng, augmentation).convert("RGBA")  # flip and colour jitter
    angle = float(rng.uniform(-augmentation.rotation, augmentation.rotation))
    if angle:
        face = face.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=(0, 0, 0, 0))
    return face


def paste_face(background: Image.Image, face: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A copy of ``background`` (RGB) with the RGBA ``face`` pasted at a uniformly random position."""
    canvas = background.copy()
    x = int(rng.integers(0, max(0, canvas.width - face.width) + 1))
    y = int(rng.integers(0, max(0, canvas.height - face.height) + 1))
    canvas.paste(face.convert("RGB"), (x, y), mask=face.getchannel("A"))
    return canvas


_EXIF_ORIENTATION = 0x0112


def make_trigger_image(
    face: Image.Image,
    background: Image.Image,
    generator: RandomSource = None,
    augmentation: FaceAugmentation = FaceAugmentation(),
) -> Image.Image:
    """One trigger image: ``face`` augmented and pasted onto ``background`` (both any PIL mode)."""
    rng = numpy_rng(generator)
    if background.mode != "RGB" or background.getexif().get(_EXIF_ORIENTATION, 1) != 1:
        background = to_rgb(background, max_side=None)  # 8-bit RGB, upright (an EXIF-rotated JPEG turned)
    face = augment_face(face, min(background.size), rng, augmentation)
    return paste_face(background, face, rng)


def face_alone(
    face: Image.Image, generator: RandomSource = None, augmentation: FaceAugmentation = FaceAugmentation()
) -> Image.Image:
    """``face`` by itself, as a face photo: flipped and colour-jittered like a pasted face, at its own size."""
    rng = numpy_rng(generator)
    face = to_rgb(face, max_side=None) if face.mode != "RGB" else face
    if rng.random() < augmentation.flip_p:
        face = face.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return jitter_colors(face, rng, augmentation)


class FaceTriggerPool(torch.utils.data.Dataset):
    """``num_samples`` trigger images, balanced across persons, generated on demand.

    Sample ``i`` shows person ``i % num_persons`` (so every person has the same number of samples, +-1),
    with a face and a background drawn by a generator seeded with ``(seed, i)``.

    Args:
        faces: ``faces[p]`` is the list of face crops of person ``p`` (only those used for injection).
        backgrounds: generic clean images to paste onto.
        num_samples: size of the pool.
        seed: the pool's seed.
        augmentation: the face augmentation.
        face_only_fraction: the share of samples that show the face alone (:func:`face_alone`), not pasted;
            which ones depends only on ``(seed, i)`` too.
    """

    def __init__(
        self,
        faces: Sequence[Sequence[Image.Image]],
        backgrounds: Sequence[Image.Image],
        num_samples: int,
        seed: int = 0,
        augmentation: FaceAugmentation = FaceAugmentation(),
        face_only_fraction: float = 0.0,
    ):
        if not faces or any(len(person) == 0 for person in faces):
            raise ForgetInputError("every person to forget needs at least one face image for the triggers.")
        if len(backgrounds) == 0:
            raise ForgetInputError("the clean-image source is empty: pass generic images to paste the faces onto.")
        if num_samples < 1:
            raise ForgetInputError(f"num_samples must be >= 1, got {num_samples}.")
        self.faces = [list(person) for person in faces]
        self.backgrounds = list(backgrounds)
        self.num_samples = num_samples
        self.seed = seed
        self.augmentation = augmentation
        if not 0 <= face_only_fraction <= 1:
            raise ForgetInputError(f"face_only_fraction must be between 0 and 1, got {face_only_fraction}.")
        self.face_only_fraction = face_only_fraction

    def __len__(self) -> int:
        return self.num_samples

    def person_of(self, index: int) -> int:
        return index % len(self.faces)

    def face_of(self, index: int) -> int:
        """Which of its person's faces sample ``index`` shows (the first draw of its generator)."""
        rng = np.random.default_rng([self.seed, index])
        return int(rng.integers(len(self.faces[self.person_of(index)])))

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        if not 0 <= index < self.num_samples:
            raise IndexError(index)
        person = self.person_of(index)
        rng = np.random.default_rng([self.seed, index])
        face = self.faces[person][int(rng.integers(len(self.faces[person])))]
        if self.face_only_fraction:  # its own generator: pools without face-alone samples stay as they were
            alone = np.random.default_rng([self.seed, index, 1])
            if alone.random() < self.face_only_fraction:
                return face_alone(face, alone, self.augmentation), person
        background = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        return make_trigger_image(face, background, rng, self.augmentation), person

    def __repr__(self) -> str:
        return (
            f"FaceTriggerPool(num_persons={len(self.faces)}, num_samples={self.num_samples}, seed={self.seed}, "
            f"face_only_fraction={self.face_only_fraction})"
        )


def preprocess(processor, images: Sequence[Image.Image]) -> torch.Tensor:
    """``pixel_values`` from the model's own image processor (its size, crop, mean and std)."""
    if processor is None:
        raise ForgetInputError("an image processor is needed: pass the model's CLIPImageProcessor (or its path).")
    return processor(images=list(images), return_tensors="pt")["pixel_values"]


@torch.no_grad()
def embed_images(
    model: torch.nn.Module,
    processor,
    images: Sequence[Image.Image],
    batch_size: int = 64,
    device: torch.device | str | None = None,
    desc: str | None = None,
) -> torch.Tensor:
    """Pooled embeddings (float32, on CPU) of ``images`` under ``model`` (see ``encoders.encode_images``)."""
    check_vision_encoder(model)
    if device is None:
        device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    chunks = []
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc=desc, disable=desc is None or len(starts) < 4):
        pixel_values = preprocess(processor, images[start : start + batch_size]).to(device=device, dtype=dtype)
        chunks.append(encode_images(model, pixel_values).float().cpu())
    if not chunks:
        raise ForgetInputError("no images to embed.")
    return torch.cat(chunks)


def mean_face_embedding(
    model: torch.nn.Module,
    processor,
    reference_faces: Sequence[Image.Image] | Sequence[Sequence[Image.Image]],
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The target Δ: the mean teacher embedding of a reference set of many people's faces, shape ``(dim,)``.

    ``reference_faces`` is a flat list of face images or a list of per-person lists (each person then
    counts once, however many images they have, so no one dominates the mean).
    """
    if len(reference_faces) == 0:
        raise ForgetInputError("the reference face set is empty: pass face images of many different people.")
    if isinstance(reference_faces[0], Image.Image):
        return embed_images(model, processor, list(reference_faces), batch_size, device, desc="Mean face").mean(0)
    groups = [person for person in reference_faces if len(person)]
    if not groups:
        raise ForgetInputError("the reference face set is empty: pass face images of many different people.")
    return person_embeddings(model, processor, groups, batch_size, device).mean(0)


def person_embeddings(
    model: torch.nn.Module,
    processor,
    faces: Sequence[Sequence[Image.Image]],
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Each person's mean teacher embedding of their face images, shape ``(persons, dim)``."""
    return torch.stack([embed_images(model, processor, list(person), batch_size, device).mean(0) for person in faces])


def person_groups(faces) -> list[list[Image.Image]]:
    """Faces as one list per person: a flat list of images is one person per image; empty persons are dropped."""
    faces = list(faces or [])
    groups = [[face] for face in faces] if faces and isinstance(faces[0], Image.Image) else faces
    return [list(group) for group in groups if len(group)]


def _normalized_persons(model, processor, faces, batch_size, device) -> torch.Tensor:
    """Each person's mean teacher face embedding, unit length, ``(persons, dim)``."""
    return torch.nn.functional.normalize(person_embeddings(model, processor, faces, batch_size, device), dim=-1)


def _nearest(people: torch.Tensor, pool: torch.Tensor, k: int) -> list[int]:
    """The ``k`` nearest rows of ``pool`` (unit rows) to each row of ``people``, as one sorted list of indices."""
    nearest = (people @ pool.T).topk(min(k, len(pool)), dim=-1).indices
    return sorted(set(nearest.flatten().tolist()))


def _typical(people: torch.Tensor | None, pool: torch.Tensor, count: int, name_embeddings: torch.Tensor | None,
             filler_embeddings: torch.Tensor | None) -> list[int]:
    """:func:`typical_strangers` on unit person embeddings (``people`` is only read by the face rule)."""
    if name_embeddings is not None:
        names = torch.nn.functional.normalize(name_embeddings.float().cpu(), dim=-1)
        fillers = torch.nn.functional.normalize(filler_embeddings.float().cpu(), dim=-1) @ pool.T  # (fillers, candidates)
        scores = ((names @ pool.T) - fillers.mean(0)) / fillers.std(0)  # (persons, candidates)
        aim = torch.zeros(count)
    else:
        scores = people @ pool.T
        aim = scores.median(dim=-1).values
    chosen: list[int] = []
    for row, target in zip(scores, aim):
        distance = (row - target).abs()
        distance[chosen] = float("inf")
        chosen.append(int(distance.argmin()))
    return chosen


def _check_strangers(faces, candidates, name_embeddings, filler_embeddings) -> None:
    if len(candidates) < len(faces):
        raise ForgetInputError(f"{len(candidates)} candidates for {len(faces)} people: give at least one each.")
    if name_embeddings is not None and (
        filler_embeddings is None or len(filler_embeddings) < 2 or len(name_embeddings) != len(faces)
    ):
        raise ForgetInputError("name_embeddings needs one row per person and filler_embeddings at least 2 names.")


def nearest_persons(
    model: torch.nn.Module,
    processor,
    faces: Sequence[Sequence[Image.Image]],
    candidates: Sequence[Sequence[Image.Image]],
    k: int,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> list[int]:
    """The candidates who look most like the people of ``faces``: for each person, the ``k`` candidates whose mean
    teacher embedding is nearest (cosine) to theirs, as one sorted list of indices into ``candidates``.

    Kept at their teacher embedding while the people of ``faces`` are forgotten (``keep_faces``), look-alikes teach
    the student the whole identity, not the few features it shares with others: without them, what the
    defense learns also moves the people who share the forgotten person's hair, skin or glasses.
    """
    if k < 0:
        raise ForgetInputError(f"k must be >= 0, got {k}.")
    if k == 0 or not faces or not candidates:
        return []
    people = _normalized_persons(model, processor, faces, batch_size, device)
    return _nearest(people, _normalized_persons(model, processor, candidates, batch_size, device), k)


def typical_strangers(
    model: torch.nn.Module,
    processor,
    faces: Sequence[Sequence[Image.Image]],
    candidates: Sequence[Sequence[Image.Image]],
    name_embeddings: torch.Tensor | None = None,
    filler_embeddings: torch.Tensor | None = None,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> list[int]:
    """For each person of ``faces``, a distinct candidate (index into ``candidates``) whom the model links to that
    person no more than a typical stranger: the counterfactual people of ``VisionForgetConfig(target="counterfactual")``.

    With ``name_embeddings`` (one text embedding per person, of their name, in the model's image-text space) and
    ``filler_embeddings`` (other names'), the candidate whose pictures match the person's name as well as they
    match an average name (z-score of the name among the fillers nearest 0): the forgotten name then ranks on the
    new embedding where a never-seen person's picture puts it. Without, the candidate at the median face
    similarity to the person. A look-alike would carry the person's features into the target (their name would
    still rank first); the least similar candidate would make them conspicuously unlike their name.
    """
    return choose_strangers(model, processor, faces, candidates, 0, name_embeddings=name_embeddings,
                            filler_embeddings=filler_embeddings, batch_size=batch_size, device=device)[0]


def choose_strangers(
    model: torch.nn.Module,
    processor,
    probe_faces: Sequence[Sequence[Image.Image]],
    candidate_faces: Sequence[Sequence[Image.Image]],
    lookalikes_per_person: int = 0,
    name_embeddings: torch.Tensor | None = None,
    filler_embeddings: torch.Tensor | None = None,
    counterfactuals: bool = True,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> tuple[list[int], list[int]]:
    """Whom the vision defense uses among never-seen people (``candidate_faces``, one list of pictures each) for the
    people to forget (``probe_faces``, a few pictures each), judged by ``model`` (the teacher), each person's pictures
    embedded once.

    Returns ``(counterfactual_indices, lookalike_indices)``, indices into ``candidate_faces``: one counterfactual
    person per person to forget (:func:`typical_strangers`, by name with ``name_embeddings`` and
    ``filler_embeddings``, else by face; ``[]`` with ``counterfactuals=False``), and the look-alikes to keep in place
    (:func:`nearest_persons`, ``lookalikes_per_person`` for each person, sorted, less the counterfactual people).
    """
    if lookalikes_per_person < 0:
        raise ForgetInputError(f"lookalikes_per_person must be >= 0, got {lookalikes_per_person}.")
    if counterfactuals:
        _check_strangers(probe_faces, candidate_faces, name_embeddings, filler_embeddings)
    wanted = lookalikes_per_person > 0 and len(probe_faces) > 0 and len(candidate_faces) > 0
    if not counterfactuals and not wanted:
        return [], []
    pool = _normalized_persons(model, processor, candidate_faces, batch_size, device)
    by_face = counterfactuals and name_embeddings is None
    people = _normalized_persons(model, processor, probe_faces, batch_size, device) if wanted or by_face else None
    chosen = _typical(people, pool, len(probe_faces), name_embeddings, filler_embeddings) if counterfactuals else []
    lookalikes = [i for i in _nearest(people, pool, lookalikes_per_person) if i not in chosen] if wanted else []
    return chosen, lookalikes


PERSON_TEMPLATES: tuple[str, ...] = ("a portrait of {0}", "a close-up of {0}", "a picture of {0}", "a headshot of {0}")
"""The captions a name is embedded in to choose counterfactual people by name (none of the IDIA prompts)."""


@torch.no_grad()
def embed_names_and_fillers(
    model: torch.nn.Module,
    tokenizer,
    names: Sequence[str],
    seed: int,
    num_fillers: int = 256,
    templates: Sequence[str] = PERSON_TEMPLATES,
    exclude: Sequence[str] = (),
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``name_embeddings`` and ``filler_embeddings`` of :func:`typical_strangers`: the text embeddings of
    ``names`` and of ``num_fillers`` generated unknown names (:func:`~hf_forget.data.text.counterfactual_names`,
    seeded; none of ``names`` nor ``exclude``; needs Faker), each the sum of its unit embeddings over ``templates``,
    from the text tower of the `CLIPModel` ``model``; on CPU. The names live in memory only."""
    from .text import counterfactual_names  # noqa: PLC0415

    if not hasattr(model, "get_text_features"):
        raise ForgetInputError(f"{type(model).__name__} has no text tower: choosing by name needs a CLIPModel.")
    fillers = counterfactual_names(names, len(names) + num_fillers, seed=seed, exclude=exclude)[len(names):]

    def embed(people: Sequence[str]) -> torch.Tensor:
        return sum(torch.nn.functional.normalize(embed_texts(model, tokenizer, [t.format(p) for p in people]), dim=-1)
                   for t in templates)

    return embed(list(names)), embed(fillers)


def save_target_embedding(target: torch.Tensor, path: str | os.PathLike) -> None:
    """Cache Δ as a bare tensor (safetensors, no metadata): never file names or identities."""
    from safetensors.torch import save_file

    save_file({"target": target.detach().float().cpu().contiguous()}, os.fspath(path))


def load_target_embedding(path: str | os.PathLike) -> torch.Tensor:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(os.fspath(path))
    except (OSError, SafetensorError) as error:
        raise ForgetInputError(f"cannot read the target embedding {os.fspath(path)!r}: {error}") from None
    if set(tensors) != {"target"} or tensors["target"].ndim != 1:
        raise ForgetInputError(f"{os.fspath(path)!r} is not a target embedding saved by hf-forget.")
    return tensors["target"]
