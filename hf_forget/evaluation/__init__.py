"""Checking a defense: the Identity Inference Attack, embedding similarities, zero-shot accuracy, reports."""

from .idia import (
    IDIA_TEMPLATES,
    IDIAResult,
    PersonResult,
    build_candidates,
    generate_filler_names,
    identity_inference_attack,
    idia_decisions,
    idia_from_embeddings,
    majority_votes,
)
from .similarity import text_forgetting_similarities, text_similarities, vision_similarities
from .zero_shot import IMAGENET_TEMPLATES, ZeroShotResult, class_embeddings, topk_accuracy, zero_shot_accuracy

__all__ = [
    "IDIA_TEMPLATES",
    "IDIAResult",
    "IMAGENET_TEMPLATES",
    "PersonResult",
    "ZeroShotResult",
    "build_candidates",
    "class_embeddings",
    "generate_filler_names",
    "identity_inference_attack",
    "idia_decisions",
    "idia_from_embeddings",
    "majority_votes",
    "text_forgetting_similarities",
    "text_similarities",
    "topk_accuracy",
    "vision_similarities",
    "zero_shot_accuracy",
]
