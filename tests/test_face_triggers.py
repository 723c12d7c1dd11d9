"""Face triggers and image loading: robust to any image a user has, seeded, balanced, private."""


import numpy as np
import pytest
import torch
from PIL import Image

from hf_forget.errors import ForgetInputError
from hf_forget.data.images import load_face_folders, load_images, split_held_out, to_rgb
from hf_forget.testing import tiny_clip_image_processor, tiny_clip_vision_model
from hf_forget.data.faces import (
    FaceAugmentation,
    FaceTriggerPool,
    augment_face,
    face_alone,
    load_target_embedding,
    make_trigger_image,
    mean_face_embedding,
    preprocess,
    save_target_embedding,
)


def solid(color, size=(32, 32), mode="RGB"):
    return Image.new(mode, size, color)


ODD_IMAGES = {
    "tiny": solid((10, 200, 30), (1, 1)),
    "huge": solid((1, 2, 3), (3000, 2200)),
    "grey": Image.new("L", (40, 60), 128),
    "rgba": Image.new("RGBA", (50, 30), (255, 0, 0, 0)),
    "palette": solid((0, 0, 255), (20, 20)).convert("P"),
    "one_bit": Image.new("1", (16, 16), 1),
    "sixteen_bit": Image.new("I;16", (12, 12), 40000),
    "long": solid((9, 9, 9), (400, 3)),
}


@pytest.mark.parametrize("face_kind", sorted(ODD_IMAGES))
@pytest.mark.parametrize("background_kind", sorted(ODD_IMAGES))
def test_trigger_never_fails_on_odd_images(face_kind, background_kind):
    background = ODD_IMAGES[background_kind]
    out = make_trigger_image(ODD_IMAGES[face_kind], background, np.random.default_rng(0))
    assert out.mode == "RGB" and out.size == to_rgb(background, max_side=None).size


def test_face_size_rotation_and_transparent_corners():
    rng = np.random.default_rng(0)
    face = solid((255, 0, 0), (100, 100))
    aug = FaceAugmentation()
    for _ in range(30):
        out = augment_face(face, 200, rng, aug)
        alpha = np.asarray(out.getchannel("A"))
        # a quarter to a half of the side before rotation; rotation expands the box by at most cos+sin
        assert 0.25 * 200 - 1 <= np.sqrt(alpha.astype(bool).sum()) <= 0.5 * 200 + 1
        assert max(out.size) <= 0.5 * 200 * 1.37 + 2
        if out.size != (alpha.shape[1], alpha.shape[0]) or max(out.size) > 105:
            assert alpha[0, 0] == 0 and alpha[-1, -1] == 0  # rotated corners are see-through


def test_pasted_face_keeps_background_outside_the_face():
    rng = np.random.default_rng(1)
    background = solid((0, 255, 0), (64, 64))
    out = np.asarray(make_trigger_image(solid((255, 0, 0), (20, 20)), background, rng))
    green = (out == [0, 255, 0]).all(-1).mean()
    assert 0.5 < green < 0.99  # the face covers some, not all, of the image; no black corners
    assert not (out == 0).all(-1).any()


def test_pool_is_balanced_seeded_and_index_deterministic():
    faces = [[solid((255, 0, 0))], [solid((0, 0, 255))], [solid((255, 255, 0))]]
    backgrounds = [solid((0, 255, 0), (48, 48)), solid((9, 9, 9), (64, 40))]
    pool = FaceTriggerPool(faces, backgrounds, num_samples=30, seed=3)
    persons = [pool[i][1] for i in range(len(pool))]
    assert np.bincount(persons).tolist() == [10, 10, 10]
    again = FaceTriggerPool(faces, backgrounds, num_samples=30, seed=3)
    other = FaceTriggerPool(faces, backgrounds, num_samples=30, seed=4)
    assert np.array_equal(np.asarray(pool[7][0]), np.asarray(again[7][0]))
    assert any(not np.array_equal(np.asarray(pool[i][0]), np.asarray(other[i][0])) for i in range(5))
    torch_seeded = [make_trigger_image(faces[0][0], backgrounds[0], torch.Generator().manual_seed(5)) for _ in range(2)]
    assert np.array_equal(np.asarray(torch_seeded[0]), np.asarray(torch_seeded[1]))


def test_pool_can_show_faces_alone():
    faces = [[solid((255, 0, 0), (20, 24))], [solid((0, 0, 255), (20, 24))]]
    backgrounds = [solid((0, 255, 0), (48, 48))]
    pasted = FaceTriggerPool(faces, backgrounds, num_samples=40, seed=3)
    assert all(pasted[i][0].size == (48, 48) for i in range(len(pasted)))
    assert all(np.array_equal(np.asarray(pasted[i][0]), np.asarray(FaceTriggerPool(
        faces, backgrounds, num_samples=40, seed=3, face_only_fraction=0.0)[i][0])) for i in range(5))  # fmt: skip
    alone = FaceTriggerPool(faces, backgrounds, num_samples=40, seed=3, face_only_fraction=1.0)
    for i in range(len(alone)):
        image, person = alone[i]
        assert image.size == (20, 24) and person == i % 2  # the face at its own size, balanced as before
        assert not (np.asarray(image) == [0, 255, 0]).all(-1).any()  # no background
    half = FaceTriggerPool(faces, backgrounds, num_samples=400, seed=3, face_only_fraction=0.5)
    shown_alone = sum(half[i][0].size == (20, 24) for i in range(len(half)))
    assert 150 < shown_alone < 250
    assert np.array_equal(np.asarray(half[11][0]), np.asarray(half[11][0]))  # index-deterministic
    jittered = face_alone(solid((200, 100, 50), (10, 10)).convert("L"), np.random.default_rng(0))
    assert jittered.mode == "RGB" and jittered.size == (10, 10)
    with pytest.raises(ForgetInputError, match="face_only_fraction"):
        FaceTriggerPool(faces, backgrounds, num_samples=4, face_only_fraction=1.5)


def test_pool_rejects_empty_backgrounds_and_faces():
    with pytest.raises(ForgetInputError, match="clean-image source is empty"):
        FaceTriggerPool([[solid((1, 1, 1))]], [], num_samples=4)
    with pytest.raises(ForgetInputError, match="at least one face"):
        FaceTriggerPool([[]], [solid((1, 1, 1))], num_samples=4)


def test_preprocessing_follows_the_model_processor():
    processor = tiny_clip_image_processor(24)
    pixels = preprocess(processor, [ODD_IMAGES["long"], ODD_IMAGES["tiny"]])
    assert pixels.shape == (2, 3, 24, 24)
    white = preprocess(processor, [solid((255, 255, 255))])[0]
    expected = (1 - torch.tensor(processor.image_mean)) / torch.tensor(processor.image_std)
    assert torch.allclose(white[:, 0, 0], expected, atol=1e-3)


def test_mean_face_target_is_cached_as_a_bare_tensor(tmp_path):
    model, processor = tiny_clip_vision_model()
    people = [[solid((i * 20, 100, 255 - i * 20)) for _ in range(2)] for i in range(5)]
    target = mean_face_embedding(model, processor, people)
    assert target.shape == (model.config.hidden_size,)
    flat = mean_face_embedding(model, processor, [image for person in people for image in person])
    assert torch.allclose(target, flat, atol=1e-5)  # equal-size groups: per-person mean == flat mean
    path = tmp_path / "person_target.safetensors"
    save_target_embedding(target, path)
    assert torch.equal(load_target_embedding(path), target)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        assert list(handle.keys()) == ["target"] and not handle.metadata()


def _write_person(folder, n, corrupt=0, exif_rotated=False):
    folder.mkdir(parents=True)
    for i in range(n):
        image = solid((i * 10 % 255, 50, 90), (30, 20))
        if exif_rotated and i == 0:
            exif = Image.Exif()
            exif[0x0112] = 6  # rotate 90 degrees on display
            image.save(folder / f"{i}.jpg", exif=exif)
        else:
            image.save(folder / f"{i}.png")
    for i in range(corrupt):
        (folder / f"broken_{i}.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.txt").write_text("ignored")


def test_face_folders_skip_and_count_corrupt_files(tmp_path):
    _write_person(tmp_path / "b_zoe_q", 3, corrupt=2, exif_rotated=True)
    _write_person(tmp_path / "a_ann_q", 4)
    faces = load_face_folders(tmp_path, min_images_per_person=3)
    assert [len(p) for p in faces.persons] == [4, 3]  # sorted folder order
    assert faces.stats.skipped == 2
    assert faces.persons[1][0].size == (20, 30)  # EXIF orientation applied
    assert "_q" not in repr(faces)  # folder names never end up in reprs or logs


def test_too_few_readable_images_is_a_clear_error(tmp_path):
    _write_person(tmp_path / "x", 3)
    _write_person(tmp_path / "y", 1, corrupt=3)
    with pytest.raises(ForgetInputError, match=r"person folder #1 .* 1 readable images \(3 unreadable") as info:
        load_face_folders(tmp_path, min_images_per_person=2)
    assert "'y'" not in str(info.value) and "broken" not in str(info.value)


def test_clean_sources(tmp_path):
    (tmp_path / "sub").mkdir()
    for i in range(3):
        solid((i, i, i)).save(tmp_path / "sub" / f"{i}.png")
    (tmp_path / "bad.png").write_bytes(b"garbage")
    assert len(load_images(tmp_path)) == 3
    assert len(load_images([ODD_IMAGES["grey"], ODD_IMAGES["rgba"]])) == 2
    import datasets

    dataset = datasets.Dataset.from_dict({"image": [solid((5, 5, 5))] * 2}, features=datasets.Features({"image": datasets.Image()}))
    assert all(im.mode == "RGB" for im in load_images(dataset))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ForgetInputError, match="0 readable images"):
        load_images(empty)
    with pytest.raises(ForgetInputError, match="does not exist"):
        load_images(tmp_path / "missing")


def test_held_out_split_never_overlaps():
    images = list(range(10))
    injection, held = split_held_out(images, 0.2)
    assert injection == list(range(8)) and held == [8, 9]
    assert split_held_out([1, 2], 0.1) == ([1], [2])


# --- property-based: any image a user may hand us ------------------------------------------------------
from io import BytesIO  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

MODES = ["RGB", "L", "LA", "RGBA", "P", "1", "I;16", "CMYK", "F"]


@st.composite
def user_images(draw):
    """An image of any size from 1 px to a few thousand, any common mode, possibly a JPEG with an EXIF
    orientation tag (1-8, the ones that rotate or mirror the picture included)."""
    big = draw(st.booleans())
    side = st.integers(1, 2600) if big else st.integers(1, 64)
    width, height = draw(side), draw(side)
    if width * height > 3_000_000:  # keep memory bounded; one side may still be huge
        height = max(1, 3_000_000 // width)
    mode = draw(st.sampled_from(MODES))
    image = Image.new(mode, (width, height))
    image.putpixel((0, 0), 1 if mode in ("1", "L", "P", "I;16", "F") else tuple([200] * len(mode)))
    orientation = draw(st.integers(0, 8))
    if orientation and mode in ("RGB", "L", "CMYK"):
        exif = Image.Exif()
        exif[0x0112] = orientation
        buffer = BytesIO()
        image.save(buffer, format="JPEG", exif=exif.tobytes())
        buffer.seek(0)
        image = Image.open(buffer)
    return image


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(face=user_images(), background=user_images(), seed=st.integers(0, 2**32 - 1))
def test_compositor_never_fails_on_any_image(face, background, seed):
    """Whatever the face and the background (tiny, huge, greyscale, RGBA, palette, 16-bit, CMYK, float,
    EXIF-rotated JPEG), the trigger is an 8-bit RGB picture of the (upright) background's size."""
    upright = to_rgb(background, max_side=None).size
    out = make_trigger_image(face, background, np.random.default_rng(seed))
    assert out.mode == "RGB" and out.size == upright
