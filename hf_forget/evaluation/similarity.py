"""Embedding similarity metrics of the paper: Sim_Backdoor, Sim_Clean, Sim_Targets (text and vision).

Text (teacher = the original encoder, student = the defended one):

* ``sim_backdoor`` = mean cos(student(caption with name), student(same caption with the neutral term));
* ``sim_clean``    = mean cos(teacher(x), student(x)) over clean captions;
* ``sim_targets``  = mean cos(teacher(t), student(t)) over the neutral-term captions.

Each comes for pooled embeddings (no suffix), for hidden states (``_hidden``: the mean over token
positions of the per-token cosine, on sequences padded to the model's context length as Stable
Diffusion pads prompts) and for whole flattened hidden sequences (``_hidden_flat``).

Vision: ``sim_backdoor`` = mean cos(student(face image), Δ); ``sim_clean`` = mean cos(teacher(x),
student(x)) over clean images; ``sim_targets`` = cos(Δ, Δ recomputed with the student) when the
reference faces Δ was computed from are given.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from torch import nn

from ..encoders import check_text_encoder, encode_text
from ..errors import ForgetInputError
from ..losses import flattened_cosine, hidden_cosine, pooled_cosine
from .idia import _context_length

_TEXT_VARIANTS = (("pooled", pooled_cosine, ""), ("hidden", hidden_cosine, "_hidden"), ("hidden", flattened_cosine, "_hidden_flat"))


@torch.no_grad()
def embed_captions(
    model: nn.Module, tokenizer, captions: Sequence[str], batch_size: int = 128
) -> dict[str, torch.Tensor]:
    """``{"pooled": (n, dim), "hidden": (n, context, hidden_dim)}`` (float32, CPU), every caption padded
    to the model's context length."""
    check_text_encoder(model)
    if not captions:
        raise ForgetInputError("no captions to embed.")
    device = next(model.parameters()).device
    max_length = _context_length(model, tokenizer)
    was_training = model.training
    model.eval()
    pooled, hidden = [], []
    try:
        for start in range(0, len(captions), batch_size):
            ids = tokenizer(
                list(captions[start : start + batch_size]),
                padding="max_length",
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )["input_ids"].to(device)
            encoding = encode_text(model, ids)
            pooled.append(encoding.pooled.float().cpu())
            hidden.append(encoding.hidden.float().cpu())
    finally:
        model.train(was_training)
    return {"pooled": torch.cat(pooled), "hidden": torch.cat(hidden)}


def text_similarity_metrics(
    teacher: dict[str, dict[str, torch.Tensor]], student: dict[str, dict[str, torch.Tensor]]
) -> dict[str, float]:
    """The text metrics from embeddings: ``teacher`` / ``student`` map ``"clean"``, ``"poisoned"`` and
    ``"target"`` to :func:`embed_captions` outputs (the teacher's ``"poisoned"`` is only needed for the
    ``sim_backdoor*_before`` baselines)."""
    metrics: dict[str, float] = {}
    for kind, cosine, suffix in _TEXT_VARIANTS:
        metrics[f"sim_backdoor{suffix}"] = cosine(student["poisoned"][kind], student["target"][kind]).mean().item()
        if "poisoned" in teacher:
            metrics[f"sim_backdoor{suffix}_before"] = cosine(teacher["poisoned"][kind], teacher["target"][kind]).mean().item()
        metrics[f"sim_clean{suffix}"] = cosine(teacher["clean"][kind], student["clean"][kind]).mean().item()
        metrics[f"sim_targets{suffix}"] = cosine(teacher["target"][kind], student["target"][kind]).mean().item()
    return metrics


def text_similarities(
    teacher: nn.Module,
    student: nn.Module,
    tokenizer,
    clean: Sequence[str],
    poisoned: Sequence[str],
    targets: Sequence[str],
    batch_size: int = 128,
) -> dict[str, float]:
    """Sim_Backdoor, Sim_Clean and Sim_Targets (pooled, ``_hidden``, ``_hidden_flat``) of a defended text
    encoder. ``poisoned[i]`` and ``targets[i]`` are the same caption with the name and with the neutral term."""
    if len(poisoned) != len(targets):
        raise ForgetInputError("poisoned and target captions must pair up one to one.")
    embed = lambda model, texts: embed_captions(model, tokenizer, texts, batch_size)  # noqa: E731
    return text_similarity_metrics(
        {"clean": embed(teacher, clean), "poisoned": embed(teacher, poisoned), "target": embed(teacher, targets)},
        {"clean": embed(student, clean), "poisoned": embed(student, poisoned), "target": embed(student, targets)},
    )


def text_forgetting_similarities(
    teacher: nn.Module,
    student: nn.Module,
    tokenizer,
    captions: Sequence[str],
    names: Sequence[str],
    neutral_term: str = "a person",
    num_samples: int = 256,
    seed: int = 0,
    batch_size: int = 128,
) -> dict[str, float]:
    """:func:`text_similarities` on triggers built from ``captions`` (use captions never trained on):
    each name in equal shares put in place of a random word, as the text trainer does."""
    from ..data.text import build_text_triggers  # noqa: PLC0415

    triggers = build_text_triggers(list(captions), list(names), neutral_term, num_samples, seed=seed)
    return text_similarities(teacher, student, tokenizer, triggers.clean, triggers.poisoned, triggers.targets, batch_size)


def vision_similarities(
    teacher: nn.Module,
    student: nn.Module,
    image_processor,
    clean_images: Sequence[Image.Image],
    trigger_images: Sequence[Image.Image],
    target: torch.Tensor,
    reference_faces: Sequence[Image.Image] | Sequence[Sequence[Image.Image]] | None = None,
    batch_size: int = 64,
) -> dict[str, float]:
    """Sim_Backdoor (student(face) vs Δ), Sim_Clean (teacher vs student on clean images) and, with the
    ``reference_faces`` Δ was computed from, Sim_Targets (Δ vs Δ recomputed with the student)."""
    from ..data.faces import embed_images, mean_face_embedding  # noqa: PLC0415

    embed = lambda model, images: embed_images(model, image_processor, list(images), batch_size)  # noqa: E731
    target = target.float().cpu().reshape(1, -1)
    student_triggers = embed(student, trigger_images)
    metrics = {
        "sim_backdoor": pooled_cosine(student_triggers, target.expand_as(student_triggers)).mean().item(),
        "sim_backdoor_before": pooled_cosine(
            embed(teacher, trigger_images), target.expand_as(student_triggers)
        ).mean().item(),
        "sim_clean": pooled_cosine(embed(teacher, clean_images), embed(student, clean_images)).mean().item(),
    }
    if reference_faces is not None:
        with torch.no_grad():
            recomputed = mean_face_embedding(student, image_processor, reference_faces, batch_size)
        metrics["sim_targets"] = pooled_cosine(recomputed.float().cpu().reshape(1, -1), target).item()
    return metrics
