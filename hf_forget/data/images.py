"""Loading images for face forgetting: person folders, clean-image sources and reference faces.

Every image goes through :func:`to_rgb`: EXIF orientation applied, palette / greyscale / 16-bit / alpha
images turned into 8-bit RGB (transparency composited onto white), very large images shrunk to
``max_side`` (the model sees a few hundred pixels at most). Unreadable or corrupt files are skipped and
counted, never named: file names can hold the very identity being forgotten, so neither logs nor
errors mention them; persons are referred to by their index in sorted folder order.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageFile, ImageOps
from transformers.utils import logging

from ..errors import ForgetInputError

logger = logging.get_logger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
DEFAULT_MAX_SIDE = 1024
# Truncated files are corrupt input: skip them rather than decode half an image.
ImageFile.LOAD_TRUNCATED_IMAGES = False


@dataclass
class ImageLoadStats:
    """How many files were read and how many were skipped (no file names: they may identify someone)."""

    loaded: int = 0
    skipped: int = 0

    def __iadd__(self, other: ImageLoadStats) -> ImageLoadStats:
        self.loaded += other.loaded
        self.skipped += other.skipped
        return self


@dataclass
class FaceFolders:
    """Face images grouped by person, in sorted folder order.

    ``persons[i]`` holds the RGB images of person ``i``. The folder names (often the persons' names) stay
    in memory in ``folder_names`` for the caller and are never written anywhere by hf-forget.
    """

    persons: list[list[Image.Image]]
    folder_names: list[str] = field(repr=False)
    stats: ImageLoadStats

    def __len__(self) -> int:
        return len(self.persons)

    def __repr__(self) -> str:  # identities stay out of reprs, logs and tracebacks
        sizes = [len(p) for p in self.persons]
        return f"FaceFolders(num_persons={len(self.persons)}, images_per_person={sizes}, skipped={self.stats.skipped})"


def to_rgb(image: Image.Image, max_side: int | None = DEFAULT_MAX_SIDE) -> Image.Image:
    """An 8-bit RGB copy of ``image``: EXIF-transposed, transparency on white, at most ``max_side`` pixels a side."""
    if max_side and image.format == "JPEG" and max(image.size) > 2 * max_side:
        image.draft("RGB", (max_side, max_side))  # decode a JPEG at reduced scale: cheap for huge photos
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block is not worth losing the picture for
        pass
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v * (1 / 256)).convert("L")
    elif image.mode == "F":
        image = image.convert("L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    image = image.convert("RGB")
    if max_side and max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    if image.width < 1 or image.height < 1:
        raise ValueError("empty image")
    return image


def load_image(path: str | os.PathLike, max_side: int | None = DEFAULT_MAX_SIDE) -> Image.Image | None:
    """The image at ``path`` as RGB (see :func:`to_rgb`), or ``None`` when it cannot be read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning, EXIF warnings
            with Image.open(path) as image:
                image.load()
                return to_rgb(image, max_side=max_side)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, MemoryError, ZeroDivisionError):
        return None


def _image_files(folder: str) -> list[str]:
    return sorted(
        os.path.join(folder, f)
        for f in os.listdir(folder)
        if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, f))
    )


def load_image_folder(folder: str | os.PathLike, max_side: int | None = DEFAULT_MAX_SIDE) -> tuple[list[Image.Image], ImageLoadStats]:
    """All readable images directly inside ``folder`` (sorted by file name) and the load counts."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise ForgetInputError(f"image folder {folder!r} does not exist or is not a directory.")
    images, stats = [], ImageLoadStats()
    for path in _image_files(folder):
        image = load_image(path, max_side=max_side)
        if image is None:
            stats.skipped += 1
        else:
            images.append(image)
            stats.loaded += 1
    return images, stats


def load_face_folders(
    root: str | os.PathLike,
    min_images_per_person: int = 2,
    max_side: int | None = DEFAULT_MAX_SIDE,
) -> FaceFolders:
    """Face images from ``root``, one subfolder per person (any folder names; sorted order = person index).

    Unreadable or corrupt files are skipped and counted. Raises :class:`ForgetInputError` when ``root`` has
    no person folder, or when a person has fewer than ``min_images_per_person`` readable images.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise ForgetInputError(
            f"face folder {root!r} does not exist: pass a directory with one subfolder of face images per person."
        )
    folders = sorted(d for d in os.listdir(root) if not d.startswith(".") and os.path.isdir(os.path.join(root, d)))
    if not folders:
        raise ForgetInputError(
            f"{root!r} has no person subfolder: put each person's face images in a subfolder of their own."
        )
    persons, total = [], ImageLoadStats()
    for index, name in enumerate(folders):
        images, stats = load_image_folder(os.path.join(root, name), max_side=max_side)
        total += stats
        if len(images) < min_images_per_person:
            skipped = f" ({stats.skipped} unreadable or corrupt files skipped)" if stats.skipped else ""
            raise ForgetInputError(
                f"person folder #{index} (of {len(folders)}, in sorted order) has {len(images)} readable images"
                f"{skipped}; at least {min_images_per_person} are needed: add face images of that person."
            )
        persons.append(images)
    if total.skipped:
        logger.warning(f"Skipped {total.skipped} unreadable or corrupt face image files (of {total.loaded + total.skipped}).")
    logger.info(f"Loaded {total.loaded} face images of {len(persons)} persons.")
    return FaceFolders(persons=persons, folder_names=folders, stats=total)


def load_images(
    source,
    what: str = "clean image source",
    min_images: int = 1,
    image_column: str = "image",
    max_images: int | None = None,
    max_side: int | None = DEFAULT_MAX_SIDE,
) -> list[Image.Image]:
    """RGB images from ``source``: a folder (searched recursively), a list of PIL images or paths, or a
    ``datasets.Dataset`` / ``DatasetDict`` / path saved with ``save_to_disk`` with an ``image_column``.

    Unreadable entries are skipped and counted. Raises :class:`ForgetInputError` when fewer than
    ``min_images`` readable images remain.
    """
    stats = ImageLoadStats()
    images: list[Image.Image] = []

    def add(item) -> None:
        if isinstance(item, Image.Image):
            try:
                image = to_rgb(item, max_side=max_side)
            except (OSError, ValueError):
                image = None
        elif isinstance(item, (str, os.PathLike)):
            image = load_image(item, max_side=max_side)
        elif isinstance(item, dict) and (item.get("bytes") or item.get("path")):
            import io

            data = item.get("bytes")
            image = load_image(io.BytesIO(data) if data else item["path"], max_side=max_side)
        else:
            image = None
        if image is None:
            stats.skipped += 1
        else:
            images.append(image)
            stats.loaded += 1

    def full() -> bool:
        return max_images is not None and len(images) >= max_images

    if source is None:
        raise ForgetInputError(f"no {what} given: pass an image folder, a list of images or a datasets image set.")
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        saved_dataset = any(
            os.path.exists(os.path.join(path, marker)) for marker in ("dataset_info.json", "dataset_dict.json")
        )
        if os.path.isdir(path) and saved_dataset:
            import datasets

            source = datasets.load_from_disk(path)
        elif os.path.isdir(path):
            for directory, subdirs, files in sorted(os.walk(path)):
                subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
                for f in sorted(files):
                    if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS) and not full():
                        add(os.path.join(directory, f))
            source = None
        else:
            raise ForgetInputError(f"{what} {path!r} does not exist: pass an image folder or a saved datasets image set.")
    if source is not None:
        try:
            import datasets
        except ImportError:  # pragma: no cover - datasets is a dependency
            datasets = None
        if datasets is not None and isinstance(source, datasets.DatasetDict):
            source = source["train"] if "train" in source else next(iter(source.values()))
        if datasets is not None and isinstance(source, datasets.Dataset):
            if image_column not in source.column_names:
                raise ForgetInputError(
                    f"{what} has no column {image_column!r} (columns: {source.column_names}): pass --image_column."
                )
            source = source[image_column] if max_images is None else source.select(range(min(max_images, len(source))))[image_column]
        if not isinstance(source, Iterable) or isinstance(source, (str, bytes)):
            raise ForgetInputError(f"{what} must be an image folder, a list of images or a datasets image set.")
        for item in source:
            if full():
                break
            add(item)
    if stats.skipped:
        logger.warning(f"Skipped {stats.skipped} unreadable or corrupt images in the {what}.")
    if len(images) < min_images:
        skipped = f" ({stats.skipped} unreadable or corrupt skipped)" if stats.skipped else ""
        raise ForgetInputError(
            f"the {what} has {len(images)} readable images{skipped}; at least {min_images} are needed."
        )
    return images


def split_held_out(images: Sequence[Image.Image], fraction: float, min_held_out: int = 1) -> tuple[list, list]:
    """``(injection, held_out)``: the last ``max(min_held_out, round(fraction * n))`` images are held out.

    Deterministic (file order), so the images evaluated are never those used for injection.
    """
    n = len(images)
    held = min(n - 1, max(min_held_out, round(fraction * n)))
    return list(images[: n - held]), list(images[n - held :])
