"""The built-in toy celebrity world and its shipped tiny CLIP."""

from __future__ import annotations

import json
import os
from itertools import combinations

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hf_forget.errors import ForgetInputError  # noqa: E402
from hf_forget.toyworld import DIGIT_CLASS_NAMES, IDIA_TEMPLATES, IMAGE_SIZE, ToyWorld, load_toy_clip, toy_clip_path  # noqa: E402
from hf_forget.toyworld.tokenizer import learn_clip_tokenizer  # noqa: E402
from hf_forget.toyworld.world import _SALIENT, digit_split_indices  # noqa: E402


@pytest.fixture(scope="module")
def world() -> ToyWorld:
    return ToyWorld(seed=0)


@pytest.fixture(scope="module")
def toy_clip():
    return load_toy_clip()


def _pixels(image) -> np.ndarray:
    return np.asarray(image)


def test_faces_are_deterministic_for_a_seed_and_new_for_another(world):
    person = world.seen_identities[0]
    first = world.face_images(person, n=3, seed=5)
    again = ToyWorld(seed=0).face_images(person.name, n=3, seed=5)
    other = world.face_images(person, n=3, seed=6)
    assert all(np.array_equal(_pixels(a), _pixels(b)) for a, b in zip(first, again))
    assert not any(np.array_equal(_pixels(a), _pixels(b)) for a, b in zip(first, other))
    assert first[0].size == (IMAGE_SIZE, IMAGE_SIZE) and first[0].mode == "RGB"
    # every picture of one call is a new pose
    assert not np.array_equal(_pixels(first[0]), _pixels(first[1]))


def test_world_has_half_seen_half_unseen_people_with_unique_names(world):
    assert len(world.identities) == 64
    assert len(world.seen_identities) == len(world.unseen_identities) == 32
    names = world.names
    assert len(set(names)) == 64
    assert len({n.split(" ", 1)[0] for n in names}) == 64 and len({n.split(" ", 1)[1] for n in names}) == 64
    assert {p.gender for p in world.seen_identities} == {"male", "female"}
    assert ToyWorld(seed=0).names == names and ToyWorld(seed=1).names != names


def test_people_differ_in_several_salient_attributes(world):
    for a, b in combinations(world.identities, 2):
        assert sum(a.attributes[k] != b.attributes[k] for k in _SALIENT) >= 3, (a.index, b.index)


def test_generic_captions_and_images_are_person_free_and_seeded(world):
    captions = world.generic_captions(50, seed=3)
    assert captions == world.generic_captions(50, seed=3)
    assert all(len(c.split()) >= 4 for c in captions)
    surnames = {n.split(" ", 1)[1].lower() for n in world.names}
    assert not any(s in c.lower() for c in captions for s in surnames)
    images = world.generic_images(2, seed=3)
    assert images[0].size == (IMAGE_SIZE, IMAGE_SIZE)
    assert np.array_equal(_pixels(images[1]), _pixels(world.generic_images(2, seed=3)[1]))


def test_object_dataset_is_labelled_digits_held_out_from_training(world):
    images, labels, class_names = world.object_dataset(n_per_class=2, seed=0)
    assert class_names == list(DIGIT_CLASS_NAMES) and class_names[3] == "digit three"
    assert sorted(labels) == sorted(list(range(10)) * 2) and len(images) == 20
    assert not set(digit_split_indices("test")) & set(digit_split_indices("train"))


def test_export_faces_writes_one_folder_per_person(world, tmp_path):
    people = world.seen_identities[:2]
    out = world.export_faces(tmp_path / "faces", people, n_per_identity=2, seed=0)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in people)
    assert all(len(list((out / p.name).glob("*.png"))) == 2 for p in people)
    with pytest.raises(ForgetInputError):
        world.export_faces(out, people, n_per_identity=1)


def test_learned_tokenizer_is_deterministic_and_covers_any_string():
    texts = ["a photo of Zoë O'Donnell", "a red car on the beach", "the digit three"] * 5
    first, second = learn_clip_tokenizer(texts, vocab_size=600), learn_clip_tokenizer(texts, vocab_size=600)
    assert first.get_vocab() == second.get_vocab()
    ids = first("Ximena Ní Bhriain 🙂 naïve").input_ids
    assert first.unk_token_id not in ids[1:-1]
    assert len(first("a photo of Zoë O'Donnell").input_ids) < len("a photo of Zoë O'Donnell")


def test_shipped_checkpoint_is_small_and_describes_this_world(world):
    path = toy_clip_path()
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert size <= 25 * 1024 * 1024
    manifest = json.loads((path / "toyworld.json").read_text())
    assert manifest["seen"] == [p.name for p in world.seen_identities]
    assert manifest["unseen"] == [p.name for p in world.unseen_identities]


def test_shipped_clip_loads_offline_and_knows_seen_faces_by_name(world, toy_clip):
    model, tokenizer, processor = toy_clip
    assert model.config.vision_config.image_size == IMAGE_SIZE
    people = world.seen_identities[:4]
    with torch.no_grad():
        texts = tokenizer([IDIA_TEMPLATES[2].format(n) for n in world.names], padding=True, return_tensors="pt")
        text = torch.nn.functional.normalize(model.get_text_features(**texts).pooler_output, dim=-1)
        faces = [im for p in people for im in world.face_images(p, 4, seed=0)]
        pixels = processor(images=faces, return_tensors="pt").pixel_values
        image = torch.nn.functional.normalize(model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
    scores = (image @ text.T).view(len(people), 4, -1).mean(1)  # mean over each person's faces
    truth = torch.tensor([world.names.index(p.name) for p in people])
    rank = (scores > scores[torch.arange(len(people)), truth][:, None]).sum(-1)
    assert (rank < 3).all(), rank  # own name among the top 3 of the world's 64 names


def test_shipped_image_processor_matches_training_normalisation(world, toy_clip):
    from hf_forget.toyworld.train import _to_pixels

    _, _, processor = toy_clip
    images = world.generic_images(2, seed=0)
    expected = _to_pixels(images, np.asarray(processor.image_mean, np.float32), np.asarray(processor.image_std, np.float32))
    got = processor(images=images, return_tensors="pt").pixel_values
    assert torch.allclose(got, expected, atol=2e-2)


def test_shipped_clip_reads_held_out_digits_far_above_chance(world, toy_clip):
    """The demo's utility check is only meaningful if the model knows digits: zero-shot, 10 classes."""
    from hf_forget.toyworld.demo import _zero_shot_templates
    from hf_forget.evaluation.zero_shot import zero_shot_accuracy

    model, tokenizer, processor = toy_clip
    images, labels, classes = world.object_dataset(n_per_class=10, seed=3, split="test")
    result = zero_shot_accuracy(model, tokenizer, processor, images, labels, classes, templates=_zero_shot_templates())
    assert result.num_classes == 10
    assert result.top1 >= 0.5, result  # chance is 0.1; 0.883 on the demo's 300 pictures


def test_face_stream_continues_face_images(world):
    person = world.seen_identities[1]
    stream = world.face_stream(person, seed=4)
    streamed = [next(stream) for _ in range(3)]
    assert all(np.array_equal(_pixels(a), _pixels(b)) for a, b in zip(streamed, world.face_images(person, 3, seed=4)))


def test_training_draws_new_faces_every_step_from_training_seeds_only(world):
    """With ``faces_per_identity=0`` each step renders new pictures (seeds reserved for training only)."""
    from hf_forget.toyworld.train import TrainArgs, _batch, _Pools, _to_pixels, image_processor
    from hf_forget.toyworld.world import TRAINING_SEED_OFFSET, _rng

    args = TrainArgs(faces_per_identity=0, digits_per_step=2, scenes_per_step=2, negatives_per_step=2, num_scene_images=4)
    processor = image_processor()
    pools = _Pools(world, args, processor)
    rng = _rng(0, 1)
    first, second = _batch(pools, args, rng)[0], _batch(pools, args, rng)[0]
    people = world.seen_identities
    mean, std = np.asarray(processor.image_mean, np.float32), np.asarray(processor.image_std, np.float32)
    n = args.faces_per_step * len(people)  # the default: 2 new pictures a person and step
    faces = [face for p in people for face in world.face_images(p, args.faces_per_step, seed=TRAINING_SEED_OFFSET)]
    expected = _to_pixels(faces, mean, std)
    assert torch.equal(first[:n], expected)
    assert not torch.equal(first[:n], second[:n])
