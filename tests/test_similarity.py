"""Sim_Backdoor / Sim_Clean / Sim_Targets on tiny random models, where the answer is known."""

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from hf_forget.evaluation.similarity import (
    embed_captions,
    text_forgetting_similarities,
    text_similarity_metrics,
    vision_similarities,
)
from hf_forget.testing import tiny_clip_text_model, tiny_clip_vision_model
from hf_forget.data.faces import embed_images, mean_face_embedding

CAPTIONS = [f"a {c} {n} rests near the {p} today" for c in ("red", "blue") for n in ("dog", "boat") for p in ("lake", "road")]


@pytest.fixture(scope="module")
def text_pair():
    teacher, tokenizer = tiny_clip_text_model("CLIPTextModelWithProjection")
    student = copy.deepcopy(teacher)
    with torch.no_grad():
        for parameter in student.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return teacher, student, tokenizer


def test_identical_encoders_keep_clean_and_target_similarity_at_one(text_pair):
    teacher, _, tokenizer = text_pair
    metrics = text_forgetting_similarities(teacher, teacher, tokenizer, CAPTIONS, ["Jane Doe"], num_samples=6)
    for suffix in ("", "_hidden", "_hidden_flat"):
        assert metrics[f"sim_clean{suffix}"] == pytest.approx(1.0, abs=1e-5)
        assert metrics[f"sim_targets{suffix}"] == pytest.approx(1.0, abs=1e-5)
        # without a defense, the name is not mapped onto the neutral term
        assert metrics[f"sim_backdoor{suffix}"] == pytest.approx(metrics[f"sim_backdoor{suffix}_before"])
        assert metrics[f"sim_backdoor{suffix}"] < 0.9999


def test_a_changed_student_lowers_clean_similarity(text_pair):
    teacher, student, tokenizer = text_pair
    metrics = text_forgetting_similarities(teacher, student, tokenizer, CAPTIONS, ["Jane Doe"], num_samples=6)
    assert metrics["sim_clean"] < 0.9999 and metrics["sim_clean_hidden"] < 0.9999
    assert -1.0 <= metrics["sim_clean"] <= 1.0


def test_hidden_states_are_padded_to_the_context(text_pair):
    teacher, _, tokenizer = text_pair
    embeddings = embed_captions(teacher, tokenizer, ["a dog", "a much longer caption about a dog"])
    assert embeddings["hidden"].shape[:2] == (2, tokenizer.model_max_length)
    assert embeddings["pooled"].shape == (2, teacher.config.projection_dim)


def test_metrics_from_hand_built_embeddings():
    a = {"pooled": torch.tensor([[1.0, 0.0]]), "hidden": torch.tensor([[[2.0, 0.0], [0.0, 1.0]]])}
    b = {"pooled": torch.tensor([[0.0, 1.0]]), "hidden": torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])}
    # the student maps the poisoned caption exactly onto the target: sim_backdoor = 1
    metrics = text_similarity_metrics({"clean": a, "target": a}, {"clean": b, "poisoned": a, "target": a})
    assert metrics["sim_backdoor"] == pytest.approx(1.0)
    assert metrics["sim_clean"] == pytest.approx(0.0)  # orthogonal pooled embeddings
    assert metrics["sim_clean_hidden"] == pytest.approx(0.5)  # per token: cos 1 and cos 0, averaged
    assert metrics["sim_clean_hidden_flat"] == pytest.approx(2 / 10**0.5)  # flattened: (2,0,0,1) vs (1,0,1,0)
    assert "sim_backdoor_before" not in metrics


def images(count, seed):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(count)]


def test_vision_similarities():
    teacher, processor = tiny_clip_vision_model("CLIPVisionModelWithProjection")
    faces, clean, reference = images(3, 0), images(4, 1), [images(2, 2), images(2, 3)]
    target = mean_face_embedding(teacher, processor, reference)
    same = vision_similarities(teacher, teacher, processor, clean, faces, target, reference_faces=reference)
    assert same["sim_clean"] == pytest.approx(1.0, abs=1e-5)
    assert same["sim_targets"] == pytest.approx(1.0, abs=1e-5)
    assert same["sim_backdoor"] == pytest.approx(same["sim_backdoor_before"])
    # a face embedded exactly at the target gives sim_backdoor 1
    at_target = vision_similarities(teacher, teacher, processor, clean, faces[:1], embed_images(teacher, processor, faces[:1])[0])
    assert at_target["sim_backdoor"] == pytest.approx(1.0, abs=1e-5)
    assert "sim_targets" not in at_target
