"""The Identity Inference Attack on hand-built predictions and embeddings whose answer is known."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from hf_forget.errors import ForgetInputError
from transformers import CLIPTextModelWithProjection, CLIPVisionModelWithProjection

from hf_forget.evaluation.idia import (
    IDIA_TEMPLATES,
    build_candidates,
    embed_candidate_prompts,
    generate_filler_names,
    identity_inference_attack,
    idia_decisions,
    idia_from_embeddings,
    majority_votes,
)
from hf_forget.testing import tiny_clip_model

T = len(IDIA_TEMPLATES)


def predictions_for(rows: list[list[int]], default: int = 1, images: int = 5) -> torch.Tensor:
    """(1 person, 21 templates, images): the given rows for the first templates, ``default`` elsewhere."""
    out = torch.full((1, T, images), default, dtype=torch.long)
    for t, row in enumerate(rows):
        out[0, t] = torch.tensor(row)
    return out


def test_the_21_reference_templates():
    assert len(IDIA_TEMPLATES) == 21 and len(set(IDIA_TEMPLATES)) == 21
    assert all("{0}" in t for t in IDIA_TEMPLATES)
    assert IDIA_TEMPLATES[0] == "{0}" and "a photo of a person named {0}" in IDIA_TEMPLATES


def test_person_recognised_by_exactly_one_template():
    predictions = predictions_for([[0, 0, 0, 2, 3]])  # template 0: true name 0 wins; all others predict 1
    decisions = idia_decisions(predictions, torch.tensor([0]), num_candidates=4, tau=1)
    assert decisions.correct[0].tolist() == [True] + [False] * (T - 1)
    assert decisions.num_correct.tolist() == [1]
    assert decisions.recognised.tolist() == [True]
    assert idia_decisions(predictions, torch.tensor([0]), 4, tau=2).recognised.tolist() == [False]


def test_unique_plurality_counts_but_a_tie_does_not():
    # template 0: 0 twice, others once each -> unique maximum -> right
    # template 1: 0 twice and 1 twice -> tied maximum -> does not count, although 0 is among the leaders
    predictions = predictions_for([[0, 0, 1, 2, 3], [0, 0, 1, 1, 2]], default=3)
    assert majority_votes(predictions, 4)[0, :2].tolist() == [0, -1]
    decisions = idia_decisions(predictions, torch.tensor([0]), 4)
    assert decisions.correct[0, :2].tolist() == [True, False]
    assert decisions.num_correct.item() == 1


def test_a_tie_on_every_template_is_never_recognised():
    predictions = predictions_for([[0, 0, 1, 1]] * T, images=4)
    assert not idia_decisions(predictions, torch.tensor([0]), 2).recognised.item()


@pytest.mark.parametrize("tau, recognised", [(1, True), (3, True), (4, False), (21, False)])
def test_tau_counts_right_templates(tau, recognised):
    predictions = predictions_for([[0] * 5] * 3)  # right on exactly 3 templates
    assert idia_decisions(predictions, torch.tensor([0]), 2, tau=tau).recognised.item() is recognised


def test_tau_must_be_positive():
    with pytest.raises(ForgetInputError, match="tau"):
        idia_decisions(predictions_for([]), torch.tensor([0]), 2, tau=0)


def test_fillers_never_equal_a_real_name_and_are_seeded():
    generated = generate_filler_names(50)
    assert generated == generate_filler_names(50)  # seed 42 by default: reproducible
    assert generated != generate_filler_names(50, seed=7)
    # real names that the generator would produce, in other letter cases and spacing
    real = [generated[0].upper(), "  " + generated[3].lower(), generated[10].swapcase()]
    candidates = build_candidates(real, 1000)
    assert len(candidates) == 1000 and candidates[:3] == real
    keys = [" ".join(c.casefold().split()) for c in candidates]
    assert len(set(keys)) == 1000  # no filler collides with a real name or with another filler
    from faker.providers.person.en_US import Provider

    assert all(name.split()[0] in Provider.first_names_male for name in generated[::2])  # half male,
    assert all(name.split()[0] in Provider.first_names_female for name in generated[1::2])  # half female


def test_given_fillers_colliding_with_real_names_are_dropped():
    candidates = build_candidates(["Jane Doe"], 4, fillers=["JANE DOE", "Ann Lee", "ann lee", "Bo Kim"])
    assert candidates == ["Jane Doe", "Ann Lee", "Bo Kim", candidates[3]]
    assert candidates[3].casefold() not in {"jane doe", "ann lee", "bo kim"}


def test_candidates_must_hold_the_real_names():
    with pytest.raises(ForgetInputError, match="candidates"):
        build_candidates(["A B", "C D", "E F"], 2)
    with pytest.raises(ForgetInputError, match="same name"):
        build_candidates(["Jane Doe", "jane  doe"], 10)


def basis(index: int, dim: int = 8) -> torch.Tensor:
    vector = torch.zeros(dim)
    vector[index] = 1.0
    return vector


def test_tpr_and_fpr_from_hand_built_embeddings():
    # candidates 0..7 point along basis vectors in every template; a face along basis k predicts candidate k
    text = torch.stack([torch.stack([basis(c) for c in range(8)])] * T)
    faces = torch.stack(
        [
            torch.stack([basis(0)] * 3),  # known, recognised
            torch.stack([basis(1)] * 3),  # known, recognised
            torch.stack([basis(6)] * 3),  # known, but its faces point at filler 6: not recognised
            torch.stack([basis(3)] * 3),  # unseen, recognised: a false positive
            torch.stack([basis(7), basis(7), basis(4)]),  # unseen, majority is filler 7: not recognised
        ]
    )
    result = idia_from_embeddings(
        faces, text, targets=[0, 1, 2, 3, 4], expected_known=[True, True, True, False, False], names=list("abcde")
    )
    assert [p.recognised for p in result.persons] == [True, True, False, True, False]
    assert result.tpr == pytest.approx(2 / 3) and result.fnr == pytest.approx(1 / 3)
    assert result.fpr == pytest.approx(1 / 2)
    assert result.recognition_rate(["a", "c"]) == pytest.approx(0.5)
    assert result.recognition_rate([3, 4]) == pytest.approx(0.5)
    assert result.persons[0].correct_templates == T


def test_rates_are_none_without_persons_of_that_kind():
    text = torch.stack([torch.stack([basis(c) for c in range(8)])] * T)
    result = idia_from_embeddings(torch.stack([torch.stack([basis(0)] * 2)]), text, [0], [True])
    assert result.tpr == 1.0 and result.fpr is None


@pytest.fixture(scope="module")
def tiny_clip():
    return tiny_clip_model()


def random_faces(count: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(count)]


def test_attack_on_a_model_skips_small_persons_and_serialises_without_names(tiny_clip):
    model, tokenizer, processor = tiny_clip
    faces = {"Alpha Person": random_faces(3, 0), "Beta Person": random_faces(3, 1), "Gamma Person": random_faces(1, 2)}
    result = identity_inference_attack(
        model, tokenizer, processor, faces, unseen=["Beta Person"], num_candidates=30, images_per_person=2,
        templates=IDIA_TEMPLATES[:3],
    )
    assert [p.index for p in result.persons] == [0, 1] and result.skipped == [2]
    assert result.skipped_names == ["Gamma Person"]
    assert result.num_candidates == 30 and result.num_templates == 3
    assert [p.expected_known for p in result.persons] == [True, False]
    assert result.person("Alpha Person").index == 0
    text = json.dumps(result.to_dict())
    assert "Person" not in text and "Alpha" not in text
    assert "Alpha Person" in json.dumps(result.to_dict(include_names=True))
    assert "Alpha" not in repr(result)


def test_attack_accepts_a_text_and_vision_encoder_pair(tiny_clip):
    model, tokenizer, processor = tiny_clip
    state = model.state_dict()
    text = CLIPTextModelWithProjection(model.config.text_config).eval()
    vision = CLIPVisionModelWithProjection(model.config.vision_config).eval()
    text.load_state_dict({k: v for k, v in state.items() if k.startswith(("text_model.", "text_projection."))})
    vision.load_state_dict({k: v for k, v in state.items() if k.startswith(("vision_model.", "visual_projection."))})
    candidates = build_candidates(["Alpha Person"], 6)
    torch.testing.assert_close(
        embed_candidate_prompts(text, tokenizer, candidates, IDIA_TEMPLATES[:2]),
        embed_candidate_prompts(model, tokenizer, candidates, IDIA_TEMPLATES[:2]),
    )
    faces = {"Alpha Person": random_faces(2, 0)}
    kwargs = dict(num_candidates=6, images_per_person=2, templates=IDIA_TEMPLATES[:2])
    pair = identity_inference_attack((text, vision), tokenizer, processor, faces, **kwargs)
    full = identity_inference_attack(model, tokenizer, processor, faces, **kwargs)
    assert pair.to_dict() == full.to_dict()
    with pytest.raises(ForgetInputError, match="not a CLIP"):
        identity_inference_attack((text, torch.nn.Linear(2, 2)), tokenizer, processor, faces, **kwargs)


def test_attack_rejects_unusable_inputs(tiny_clip):
    model, tokenizer, processor = tiny_clip
    with pytest.raises(ForgetInputError, match="at least 20"):
        identity_inference_attack(model, tokenizer, processor, {"A B": random_faces(2, 0)}, num_candidates=5)
    with pytest.raises(ForgetInputError, match="no faces"):
        identity_inference_attack(model, tokenizer, processor, {"A B": random_faces(2, 0)}, unseen=["C D"], num_candidates=5)
