"""Zero-shot classification accuracy (top-1, top-5) of a CLIP on a labelled image set.

A class is represented by the mean of its normalised template embeddings ("a photo of a {}." ...),
renormalised (as in CLIP's ImageNet notebook); an image is assigned the class of highest cosine
similarity. Accuracies are computed with torch (no ``evaluate.load``, which needs the network).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..errors import ForgetInputError
from .idia import _towers, embed_prompts

IMAGENET_TEMPLATES: tuple[str, ...] = (
    "a bad photo of a {}.", "a photo of many {}.", "a sculpture of a {}.", "a photo of the hard to see {}.",
    "a low resolution photo of the {}.", "a rendering of a {}.", "graffiti of a {}.", "a bad photo of the {}.",
    "a cropped photo of the {}.", "a tattoo of a {}.", "the embroidered {}.", "a photo of a hard to see {}.",
    "a bright photo of a {}.", "a photo of a clean {}.", "a photo of a dirty {}.", "a dark photo of the {}.",
    "a drawing of a {}.", "a photo of my {}.", "the plastic {}.", "a photo of the cool {}.",
    "a close-up photo of a {}.", "a black and white photo of the {}.", "a painting of the {}.",
    "a painting of a {}.", "a pixelated photo of the {}.", "a sculpture of the {}.", "a bright photo of the {}.",
    "a cropped photo of a {}.", "a plastic {}.", "a photo of the dirty {}.", "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.", "a photo of the {}.", "a good photo of the {}.", "a rendering of the {}.",
    "a {} in a video game.", "a photo of one {}.", "a doodle of a {}.", "a close-up photo of the {}.",
    "a photo of a {}.", "the origami {}.", "the {} in a video game.", "a sketch of a {}.", "a doodle of the {}.",
    "a origami {}.", "a low resolution photo of a {}.", "the toy {}.", "a rendition of the {}.",
    "a photo of the clean {}.", "a photo of a large {}.", "a rendition of a {}.", "a photo of a nice {}.",
    "a photo of a weird {}.", "a blurry photo of a {}.", "a cartoon {}.", "art of a {}.", "a sketch of the {}.",
    "a embroidered {}.", "a pixelated photo of a {}.", "itap of the {}.", "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.", "a plushie {}.", "a photo of the nice {}.", "a photo of the small {}.",
    "a photo of the weird {}.", "the cartoon {}.", "art of the {}.", "a drawing of the {}.",
    "a photo of the large {}.", "a black and white photo of a {}.", "the plushie {}.", "a dark photo of a {}.",
    "itap of a {}.", "graffiti of the {}.", "a toy {}.", "itap of my {}.", "a photo of a cool {}.",
    "a photo of a small {}.", "a tattoo of the {}.",
)
"""The 80 ImageNet prompt templates of CLIP's zero-shot evaluation (``{}`` is the class name)."""


@dataclass
class ZeroShotResult:
    top1: float
    top5: float
    num_samples: int
    num_classes: int

    def to_dict(self) -> dict:
        return asdict(self)


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Fraction of rows whose label is among the ``k`` highest logits, for each ``k`` (capped at the
    number of classes)."""
    labels = torch.as_tensor(labels, dtype=torch.long, device=logits.device)
    out = {}
    for k in ks:
        top = logits.topk(min(k, logits.shape[-1]), dim=-1).indices
        out[k] = (top == labels.unsqueeze(-1)).any(-1).float().mean().item() if len(labels) else float("nan")
    return out


@torch.no_grad()
def class_embeddings(
    model: nn.Module, tokenizer, class_names: Sequence[str], templates: Sequence[str] = IMAGENET_TEMPLATES, batch_size: int = 256
) -> torch.Tensor:
    """``(classes, dim)`` unit vectors: per class, the mean of its normalised template embeddings, renormalised."""
    if not templates or any("{}" not in t for t in templates):
        raise ForgetInputError("every zero-shot template needs a '{}' slot for the class name.")
    prompts = [template.format(name) for name in class_names for template in templates]
    flat = F.normalize(embed_prompts(model, tokenizer, prompts, batch_size), dim=-1)
    per_class = flat.reshape(len(class_names), len(templates), -1).mean(1)
    return F.normalize(per_class, dim=-1)  # renormalised mean, as CLIP's notebook does


def load_labelled_images(
    source,
    labels: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    image_column: str = "image",
    label_column: str = "label",
) -> tuple[list[Image.Image], list[int], list[str]]:
    """``(images, labels, class_names)`` from a list of images + labels, an image folder with one
    subfolder per class (sorted subfolder names are the class names), or a ``datasets`` dataset with
    image and label columns (class names from a ``ClassLabel`` feature, else ``class_names``)."""
    if isinstance(source, (str, os.PathLike)):
        from ..data.images import load_face_folders  # noqa: PLC0415 - same folder layout: one subfolder per class

        folders = load_face_folders(source, min_images_per_person=1)
        images = [image for group in folders.persons for image in group]
        labels = [index for index, group in enumerate(folders.persons) for _ in group]
        return images, labels, list(class_names or folders.folder_names)
    if hasattr(source, "features") and hasattr(source, "column_names"):
        for column in (image_column, label_column):
            if column not in source.column_names:
                raise ForgetInputError(f"the dataset has no {column!r} column; columns: {source.column_names}.")
        feature = source.features[label_column]
        names = list(class_names or getattr(feature, "names", None) or [])
        if not names:
            raise ForgetInputError(f"the {label_column!r} column has no class names: pass class_names.")
        images = [image.convert("RGB") for image in source[image_column]]
        return images, [int(label) for label in source[label_column]], names
    images = list(source)
    if labels is None or class_names is None:
        raise ForgetInputError("with a list of images, pass labels and class_names too.")
    if len(labels) != len(images):
        raise ForgetInputError(f"{len(images)} images but {len(labels)} labels: pass one label per image.")
    return images, [int(label) for label in labels], list(class_names)


def zero_shot_accuracy(
    model,
    tokenizer,
    image_processor,
    images,
    labels: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    templates: Sequence[str] = IMAGENET_TEMPLATES,
    image_column: str = "image",
    label_column: str = "label",
    batch_size: int = 64,
) -> ZeroShotResult:
    """Top-1 and top-5 zero-shot accuracy of ``model`` (a ``CLIPModel`` or a (text, vision) encoder pair).

    ``images`` is a list of PIL images (with ``labels`` and ``class_names``), an image folder with one
    subfolder per class, or a ``datasets`` dataset (see :func:`load_labelled_images`).
    """
    from ..data.faces import embed_images  # noqa: PLC0415

    text_model, vision_model = _towers(model)
    images, labels, class_names = load_labelled_images(images, labels, class_names, image_column, label_column)
    if not images:
        raise ForgetInputError("no labelled images to classify.")
    if min(labels) < 0 or max(labels) >= len(class_names):
        raise ForgetInputError(f"labels must index the {len(class_names)} class names.")
    was_training = text_model.training, vision_model.training
    text_model.eval()
    vision_model.eval()
    try:
        classes = class_embeddings(text_model, tokenizer, class_names, templates)
        image_embeds = F.normalize(embed_images(vision_model, image_processor, images, batch_size), dim=-1)
    finally:
        text_model.train(was_training[0])
        vision_model.train(was_training[1])
    accuracy = topk_accuracy(image_embeds @ classes.T, torch.tensor(labels), ks=(1, 5))
    return ZeroShotResult(top1=accuracy[1], top5=accuracy[5], num_samples=len(images), num_classes=len(class_names))
