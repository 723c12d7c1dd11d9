"""Checking a defense: the Identity Inference Attack and a suite of stronger attacks, embedding similarities,
zero-shot accuracy, reports."""

from .attacks import (
    ATTACKS,
    AttackEmbeddings,
    AttackSuiteResult,
    attack_suite,
    auc,
    embed_for_attacks,
    run_attacks,
)
from .idia import (
    IDIA_TEMPLATES,
    IDIAInputs,
    IDIAResult,
    PersonResult,
    build_candidates,
    embed_idia_inputs,
    generate_filler_names,
    identity_inference_attack,
    idia_decisions,
    idia_from_embeddings,
    majority_votes,
)
from .similarity import text_forgetting_similarities, text_similarities, vision_similarities
from .zero_shot import IMAGENET_TEMPLATES, ZeroShotResult, class_embeddings, topk_accuracy, zero_shot_accuracy

__all__ = [
    "ATTACKS",
    "AttackEmbeddings",
    "AttackSuiteResult",
    "IDIA_TEMPLATES",
    "IDIAInputs",
    "IDIAResult",
    "IMAGENET_TEMPLATES",
    "PersonResult",
    "ZeroShotResult",
    "attack_suite",
    "auc",
    "build_candidates",
    "class_embeddings",
    "embed_for_attacks",
    "embed_idia_inputs",
    "generate_filler_names",
    "identity_inference_attack",
    "idia_decisions",
    "idia_from_embeddings",
    "majority_votes",
    "run_attacks",
    "text_forgetting_similarities",
    "text_similarities",
    "topk_accuracy",
    "vision_similarities",
    "zero_shot_accuracy",
]
