"""Who the vision defense moves a forgotten face to, and whom it keeps in place (issue 22); forget_faces and
forget_joint choosing them among never-seen people (``strangers``)."""

import pytest
import torch
from PIL import Image
from test_vision_trainer import synthetic_clean_images, synthetic_faces

from hf_forget import forget_faces, forget_joint
from hf_forget.config import TextForgetConfig, VisionForgetConfig
from hf_forget.data.faces import (
    choose_strangers,
    embed_names_and_fillers,
    nearest_persons,
    person_embeddings,
    typical_strangers,
)
from hf_forget.data.images import split_held_out
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


def test_choose_strangers_keeps_no_counterfactual_person_among_the_lookalikes():
    model, processor = tiny_clip_vision_model()
    faces, candidates = _people(2, seed=7), _people(9, seed=8)
    counterfactual, lookalikes = choose_strangers(model, processor, faces, candidates, len(candidates))
    assert counterfactual == typical_strangers(model, processor, faces, candidates)
    assert lookalikes == sorted(set(range(len(candidates))) - set(counterfactual))
    assert choose_strangers(model, processor, faces, candidates, 3, counterfactuals=False) == (
        [], nearest_persons(model, processor, faces, candidates, 3))
    assert choose_strangers(model, processor, faces, candidates, 0, counterfactuals=False) == ([], [])
    with pytest.raises(ForgetInputError, match="lookalikes_per_person"):
        choose_strangers(model, processor, faces, candidates, -1)


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


# ------------------------------------------------------------------ forget_faces / forget_joint with strangers
TINY = dict(max_steps=2, per_device_train_batch_size=8, num_trigger_samples=16, max_eval_samples=8, learning_rate=1e-3,
            disable_tqdm=True, use_cpu=True, report_to="none")


@pytest.fixture
def built(monkeypatch):
    """The vision trainers the runs build, to look at what they were given."""
    import hf_forget.trainers.vision as vision

    trainers = []

    class Recording(vision.VisionForgetTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            trainers.append(self)

    monkeypatch.setattr(vision, "VisionForgetTrainer", Recording)
    return trainers


def _inputs():
    faces = [synthetic_faces(p, 6) for p in (0, 1)]
    strangers = [synthetic_faces(p, 3, seed=9) for p in range(10, 22)]
    reference = [synthetic_faces(p, 2, seed=5) for p in (30, 31, 32)]
    return faces, strangers, reference


def _training(faces, config):
    """The pictures the trainer trains on (the held-out ones are never used to choose)."""
    return [split_held_out(person, config.eval_fraction)[0] for person in faces]


def test_forget_faces_pulls_each_person_onto_the_typical_stranger_and_trains(tmp_path, built):
    model, processor = tiny_clip_vision_model()
    faces, strangers, reference = _inputs()
    config = VisionForgetConfig(output_dir=str(tmp_path / "run"), target="counterfactual", counterfactual_mode="shift", **TINY)
    expected = typical_strangers(model, processor, _training(faces, config), strangers)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = forget_faces(model, faces, synthetic_clean_images(8), processor=processor, reference_faces=reference,
                          config=config, strangers=strangers)
    trainer, = built
    assert trainer._counterfactual_input == [strangers[i] for i in expected]
    assert result.report["steps"] == 2
    assert any(not torch.equal(before[k], v) for k, v in result.model.state_dict().items())


@pytest.mark.parametrize("target, flat", [("counterfactual", False), ("mean_face", False), ("mean_face", True)])
def test_lookalikes_join_the_kept_faces(tmp_path, built, target, flat):
    model, processor = tiny_clip_vision_model()
    faces, strangers, reference = _inputs()
    if flat:
        reference = [face for person in reference for face in person]
    config = VisionForgetConfig(output_dir=str(tmp_path / "run"), target=target, **TINY)
    training = _training(faces, config)
    counterfactual = typical_strangers(model, processor, training, strangers) if target == "counterfactual" else []
    lookalikes = [i for i in nearest_persons(model, processor, training, strangers, 2) if i not in counterfactual]
    assert choose_strangers(model, processor, training, strangers, 2, counterfactuals=target == "counterfactual") == (
        counterfactual, lookalikes)
    forget_faces(model, faces, synthetic_clean_images(8), processor=processor, reference_faces=reference, config=config,
                 strangers=strangers, lookalikes_per_person=2)
    trainer, = built
    dataset = trainer.train_dataset
    kept_faces = dataset.clean[dataset.groups[1].start:dataset.groups[1].stop]  # the kept faces as they are
    flat_reference = reference if flat else [face for person in reference for face in person]
    assert kept_faces == flat_reference + [face for i in lookalikes for face in strangers[i]]
    assert (trainer._counterfactual_input is None) == (target == "mean_face")


@pytest.mark.parametrize("kwargs, message", [
    (dict(strangers=True), "strangers is used to choose"),
    (dict(lookalikes_per_person=1), "chooses look-alikes among strangers"),
    (dict(strangers=True, lookalikes_per_person=-1), "must be an integer, 0 or more"),
    (dict(strangers=True, lookalikes_per_person=1, keep_faces=False), "keeps no face"),
    (dict(target="counterfactual"), "needs a never-seen person per person"),
    (dict(strangers=1, target="counterfactual"), "1 strangers for 2 people"),
])
def test_strangers_settings_are_checked(tmp_path, kwargs, message):
    model, processor = tiny_clip_vision_model()
    faces, strangers, reference = _inputs()
    if "strangers" in kwargs:
        kwargs["strangers"] = strangers if kwargs["strangers"] is True else strangers[: kwargs["strangers"]]
    config = VisionForgetConfig(output_dir=str(tmp_path / "run"), target=kwargs.pop("target", "mean_face"), **TINY)
    with pytest.raises(ForgetInputError, match=message):
        forget_faces(model, faces, synthetic_clean_images(8), processor=processor, reference_faces=reference,
                     config=config, **kwargs)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("names", [["Jane Doe", "John Roe"], ["Jane Doe"]])
def test_forget_joint_chooses_by_name_when_the_names_pair_with_the_faces(tmp_path, built, caplog, names):
    pytest.importorskip("faker")
    from conftest import training_captions

    model, tokenizer, processor = tiny_clip_model()
    faces, strangers, reference = _inputs()
    vision_config = VisionForgetConfig(output_dir=str(tmp_path / "run"), target="counterfactual", **TINY)
    text_config = TextForgetConfig(output_dir=str(tmp_path / "run"), **TINY)
    training = _training(faces, vision_config)
    by_name = len(names) == len(faces)
    rows = embed_names_and_fillers(model, tokenizer, names, vision_config.seed) if by_name else (None, None)
    expected = typical_strangers(model, processor, training, strangers, name_embeddings=rows[0], filler_embeddings=rows[1])
    result = forget_joint(model, names, training_captions(200), faces, synthetic_clean_images(8), tokenizer=tokenizer,
                          processor=processor, reference_faces=reference, text_config=text_config,
                          vision_config=vision_config, strangers=strangers)
    trainer, = built
    assert trainer._counterfactual_input == [strangers[i] for i in expected]
    assert result.report["steps"] == {"text": 2, "vision": 2}
    assert ("chosen by face" in caplog.text) == (not by_name)
