"""Who the vision defense moves a forgotten face to, and whom it keeps in place (issue 22)."""

import pytest
import torch
from PIL import Image

from hf_forget.config import VisionForgetConfig
from hf_forget.data.faces import nearest_persons, person_embeddings, typical_strangers
from hf_forget.encoders import trainable_vision_modules
from hf_forget.errors import ForgetInputError
from hf_forget.testing import tiny_clip_model, tiny_clip_vision_model


def _people(count: int, pictures: int = 2, seed: int = 0) -> list[list[Image.Image]]:
    generator = torch.Generator().manual_seed(seed)
    people = []
    for _ in range(count):
        colour = torch.randint(0, 256, (3,), generator=generator)
        people.append([
            Image.new("RGB", (32, 32), tuple(int(c) for c in (colour + torch.randint(-8, 9, (3,), generator=generator)).clamp(0, 255)))
            for _ in range(pictures)
        ])
    return people


def test_nearest_persons_are_the_closest_candidates_of_each_person():
    model, processor = tiny_clip_vision_model()
    faces, candidates = _people(2, seed=1), _people(12, seed=2)
    mine = torch.nn.functional.normalize(person_embeddings(model, processor, faces), dim=-1)
    theirs = torch.nn.functional.normalize(person_embeddings(model, processor, candidates), dim=-1)
    expected = sorted(set((mine @ theirs.T).topk(3, dim=-1).indices.flatten().tolist()))
    assert nearest_persons(model, processor, faces, candidates, 3) == expected
    assert nearest_persons(model, processor, faces, candidates, 0) == []
    with pytest.raises(ForgetInputError, match="k must be"):
        nearest_persons(model, processor, faces, candidates, -1)


def test_typical_strangers_sit_at_the_median_face_similarity_and_are_distinct():
    model, processor = tiny_clip_vision_model()
    faces, candidates = _people(3, seed=3), _people(15, seed=4)
    chosen = typical_strangers(model, processor, faces, candidates)
    assert len(set(chosen)) == 3
    mine = torch.nn.functional.normalize(person_embeddings(model, processor, faces), dim=-1)
    theirs = torch.nn.functional.normalize(person_embeddings(model, processor, candidates), dim=-1)
    first = mine[0] @ theirs.T
    assert chosen[0] == int((first - first.median()).abs().argmin())
    with pytest.raises(ForgetInputError, match="at least one each"):
        typical_strangers(model, processor, faces, candidates[:2])


def test_typical_strangers_by_name_take_the_candidate_whose_name_score_is_nearest_zero():
    model, _, processor = tiny_clip_model()
    faces, candidates = _people(2, seed=5), _people(10, seed=6)
    pool = torch.nn.functional.normalize(person_embeddings(model, processor, candidates), dim=-1)
    fillers = torch.randn(40, pool.shape[1], generator=torch.Generator().manual_seed(0))
    names = torch.randn(2, pool.shape[1], generator=torch.Generator().manual_seed(1))
    filler_sims = torch.nn.functional.normalize(fillers, dim=-1) @ pool.T
    scores = (torch.nn.functional.normalize(names, dim=-1) @ pool.T - filler_sims.mean(0)) / filler_sims.std(0)
    chosen = typical_strangers(model, processor, faces, candidates, name_embeddings=names, filler_embeddings=fillers)
    assert chosen[0] == int(scores[0].abs().argmin())
    assert chosen[1] != chosen[0]
    with pytest.raises(ForgetInputError, match="filler_embeddings"):
        typical_strangers(model, processor, faces, candidates, name_embeddings=names)


@pytest.mark.parametrize("kind", ["CLIPVisionModel", "CLIPVisionModelWithProjection", "CLIPModel"])
def test_train_last_layers_leaves_the_early_layers_alone(kind):
    model = tiny_clip_model()[0] if kind == "CLIPModel" else tiny_clip_vision_model(kind)[0]
    everything = {id(p) for m in trainable_vision_modules(model) for p in m.parameters()}
    last = {id(p) for m in trainable_vision_modules(model, 1) for p in m.parameters()}
    tower = model.vision_model if hasattr(model, "vision_model") else model
    assert last < everything
    assert not {id(p) for p in tower.encoder.layers[0].parameters()} & last
    assert {id(p) for p in tower.encoder.layers[-1].parameters()} <= last
    assert {id(p) for p in tower.post_layernorm.parameters()} <= last
    with pytest.raises(ForgetInputError, match="layers"):
        trainable_vision_modules(model, len(tower.encoder.layers) + 1)
    with pytest.raises(ForgetInputError, match="train_last_layers"):
        VisionForgetConfig(output_dir="unused", train_last_layers=-1, use_cpu=True)
