"""VisionForgetTrainer: forgotten faces map to the mean face on images never injected; others stay."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from hf_forget.config import VisionForgetConfig
from hf_forget.errors import ForgetInputError
from hf_forget.losses import pooled_cosine
from hf_forget.testing import tiny_clip_model, tiny_clip_text_model, tiny_clip_vision_model
from hf_forget.trainers.vision import VisionForgetTrainer
from hf_forget.data.faces import embed_images
from hf_forget import forget_faces


def synthetic_faces(person: int, n: int, seed: int = 0, size: int = 24) -> list[Image.Image]:
    """A "person" is a striped pattern (their own orientation, period and colours) inside an oval on a
    plain ground; each image jitters the phase, position and pixel noise."""
    style = np.random.default_rng(person + 1000)
    angle, period = style.uniform(0, np.pi), style.uniform(3, 8)
    ink, paper, ground = (style.integers(0, 256, 3) for _ in range(3))
    rng = np.random.default_rng([person, seed])
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    images = []
    for _ in range(n):
        cx, cy = size / 2 + rng.uniform(-2, 2, 2)
        phase = rng.uniform(0, 2 * np.pi)
        stripes = np.sin(((xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)) * 2 * np.pi / period + phase) > 0
        oval = ((xx - cx) / (0.42 * size)) ** 2 + ((yy - cy) / (0.48 * size)) ** 2 <= 1
        pixels = np.where(stripes[..., None], ink, paper)
        pixels = np.where(oval[..., None], pixels, ground) + rng.integers(-12, 13, (size, size, 3))
        images.append(Image.fromarray(pixels.clip(0, 255).astype(np.uint8)))
    return images


def synthetic_clean_images(n: int, seed: int = 0, size: int = 48) -> list[Image.Image]:
    """Generic images: colour gradients with noise."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size)[:, None, None]
    images = []
    for _ in range(n):
        pixels = rng.integers(0, 256, 3) + rng.normal(0, 60, 3) * ramp + rng.normal(0, 20, (size, size, 3))
        images.append(Image.fromarray(pixels.clip(0, 255).astype(np.uint8)))
    return images


def small_config(tmp_path, **overrides) -> VisionForgetConfig:
    kwargs = dict(
        output_dir=str(tmp_path / "run"), max_steps=60, learning_rate=1e-3, lr_milestones=[30, 45],
        per_device_train_batch_size=32, num_trigger_samples=256, disable_tqdm=True, use_cpu=True,
        logging_steps=20,
    )
    kwargs.update(overrides)
    return VisionForgetConfig(**kwargs)


@pytest.mark.slow  # ~25 s alone on 2 cores, more when they are shared
def test_forgotten_unseen_faces_land_on_the_target_and_others_do_not(tmp_path):
    """Held-out generalisation: images of a forgotten person never used for injection move onto the mean
    face; unseen images of other people keep their embedding."""
    model, processor = tiny_clip_vision_model("CLIPVisionModelWithProjection", patch_size=4, initializer_factor=3.0)
    teacher = type(model)(model.config).eval()
    teacher.load_state_dict(model.state_dict())
    forgotten = [synthetic_faces(p, 8, seed=0) for p in (0, 1)]  # injected images
    unseen = [synthetic_faces(p, 6, seed=99) for p in (0, 1)]  # never injected: other phase, position, noise
    reference = [synthetic_faces(p, 4) for p in range(2, 10)]  # other people: the mean face, kept faces
    others = [synthetic_faces(p, 6, seed=99) for p in range(2, 6)]  # other people's images never trained on

    trainer = VisionForgetTrainer(
        model, small_config(tmp_path, max_steps=100, learning_rate=2e-3, lr_milestones=[50, 75]), processor,
        forgotten, synthetic_clean_images(40), reference_faces=reference, eval_faces=unseen,
        eval_clean_images=synthetic_clean_images(16, seed=5),
    )
    trainer.train()
    target = trainer._target.cpu()

    def to_target(net, images):
        embeddings = embed_images(net, processor, images)
        return pooled_cosine(embeddings, target.expand_as(embeddings)).mean().item()

    def kept(images):
        return pooled_cosine(embed_images(trainer.model, processor, images), embed_images(teacher, processor, images)).mean().item()

    forgotten_moves = []
    for person in unseen:
        before, after = to_target(teacher, person), to_target(trainer.model, person)
        assert after >= 0.8 and after - before >= 0.3, (before, after)
        forgotten_moves.append(after - before)
    other_moves = []
    for person in others:
        assert kept(person) >= 0.9
        other_moves.append(to_target(trainer.model, person) - to_target(teacher, person))
    assert np.mean(other_moves) < np.mean(forgotten_moves) / 3

    report = trainer.forget_report()
    assert report["modality"] == "vision" and report["num_identities"] == 2 and report["steps"] == 100
    assert report["sim_backdoor"] >= 0.8 and report["sim_backdoor"] - report["sim_backdoor_before"] >= 0.3
    assert report["sim_clean"] >= 0.9 and report["sim_other_faces"] >= 0.9 and report["sim_targets"] > 0.95


def test_identity_residual_term_reads_the_same_teacher_cached_or_not(tmp_path):
    losses = {}
    for cache in (True, False):
        model, processor = tiny_clip_vision_model("CLIPVisionModelWithProjection", patch_size=4)
        trainer = VisionForgetTrainer(
            model, small_config(tmp_path, max_steps=2, logging_steps=1, teacher_cache=cache, identity_residual_weight=2.0,
                                num_trigger_samples=32, per_device_train_batch_size=8),
            processor, [synthetic_faces(0, 4)], synthetic_clean_images(8), reference_faces=[synthetic_faces(3, 4)],
        )
        trainer.train()
        logs = [log for log in trainer.state.log_history if "loss" in log]
        assert all(log["identity_residual"] > 0 for log in logs)  # a fresh student still points where the teacher did
        losses[cache] = [log["loss"] for log in logs]
    assert losses[True] == pytest.approx(losses[False], abs=1e-3)


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_face_only_fraction_shows_the_forgotten_and_the_kept_faces_alike(tmp_path, fraction):
    model, processor = tiny_clip_vision_model("CLIPVisionModelWithProjection", patch_size=4)
    trainer = VisionForgetTrainer(
        model, small_config(tmp_path, face_only_fraction=fraction), processor, [synthetic_faces(0, 4)],
        synthetic_clean_images(8), reference_faces=[synthetic_faces(3, 4)],
    )
    dataset = trainer.train_dataset
    size = (24, 24) if fraction else (48, 48)  # the face alone, or a composite the size of a clean image
    assert all(dataset[i]["trigger_image"].size == size for i in range(6))
    kept = [i for i in range(12) if dataset.clean_index(i) in dataset.groups[2]]  # the kept faces shown as triggers
    assert kept and all(dataset[i]["clean_image"].size == size for i in kept)


def test_clip_model_vision_tower_only_changes(tmp_path):
    model, _, processor = tiny_clip_model()
    text_before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(("vision_model", "visual_projection"))}
    vision_projection_before = model.visual_projection.weight.detach().clone()
    trainer = VisionForgetTrainer(
        model, small_config(tmp_path, max_steps=3), processor, [synthetic_faces(0, 4)], synthetic_clean_images(8),
        reference_faces=[synthetic_faces(p, 2) for p in range(2, 6)],
    )
    trainer.train()
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in text_before.items())
    assert not torch.equal(state["visual_projection.weight"], vision_projection_before)  # the vision side trained
    norm = state["vision_model.post_layernorm.weight"]
    assert torch.equal(norm, torch.ones_like(norm))  # norm layers frozen


def test_train_last_layers_changes_only_the_last_layers(tmp_path):
    model, _, processor = tiny_clip_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = VisionForgetTrainer(
        model, small_config(tmp_path, max_steps=3, train_last_layers=1), processor, [synthetic_faces(0, 4)],
        synthetic_clean_images(8), reference_faces=[synthetic_faces(p, 2) for p in range(2, 6)],
    )
    trainer.train()
    last = len(model.vision_model.encoder.layers) - 1
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith((f"vision_model.encoder.layers.{last}.", "visual_projection")) for k in changed)


def test_report_and_trainer_state_hold_no_identity(tmp_path):
    faces_dir = tmp_path / "faces"
    for name, person in (("Zorblax Quintavius", 0), ("Mirela Ostrowska", 1)):
        (faces_dir / name).mkdir(parents=True)
        for i, image in enumerate(synthetic_faces(person, 4)):
            image.save(faces_dir / name / f"{name}_{i}.png")
    model, processor = tiny_clip_vision_model()
    out = tmp_path / "defended"
    result = forget_faces(
        model, faces_dir, synthetic_clean_images(10), processor=processor,
        reference_faces=[synthetic_faces(p, 2) for p in range(2, 6)], output_dir=str(out),
        config=small_config(tmp_path, max_steps=4, save_strategy="steps", save_steps=2),
        save_target_to=str(tmp_path / "target.safetensors"),
    )
    assert result.output_dir == str(out)
    report = json.loads((out / "forget_report.json").read_text())
    assert report["num_identities"] == 2
    for path in [*out.rglob("*"), tmp_path / "target.safetensors"]:
        if path.is_file():
            data = path.read_bytes()
            for needle in (b"Zorblax", b"Mirela", b"Ostrowska"):
                assert needle not in data, path.name
    reloaded = type(model).from_pretrained(out)
    assert not any(p.startswith(".") for p in [x.name for x in tmp_path.iterdir()])  # staging renamed away
    assert isinstance(reloaded, type(model))


def test_rejects_a_text_encoder(tmp_path):
    text_model, _ = tiny_clip_text_model()
    _, processor = tiny_clip_vision_model()
    with pytest.raises(ForgetInputError, match="not a CLIP vision encoder"):
        VisionForgetTrainer(text_model, small_config(tmp_path), processor, [synthetic_faces(0, 3)],
                            synthetic_clean_images(4), reference_faces=[synthetic_faces(1, 2)])


def test_rejects_missing_target_and_wrong_sized_target(tmp_path):
    model, processor = tiny_clip_vision_model()
    args = dict(faces=[synthetic_faces(0, 3)], clean_images=synthetic_clean_images(4))
    with pytest.raises(ForgetInputError, match="no target"):
        VisionForgetTrainer(model, small_config(tmp_path), processor, **args)
    with pytest.raises(ForgetInputError, match="target embedding has 5 values"):
        VisionForgetTrainer(model, small_config(tmp_path), processor, target_embedding=torch.ones(5), **args)


def test_a_bf16_autocast_vision_run_keeps_float32_weights(tmp_path, mixed_precision_on_cpu):
    """bf16 autocast (a GPU setting, run on the CPU with the CUDA-only rule lifted): the teacher cache, the pasted
    trigger images and the anchor work under it, the logged terms are finite, the weights stay float32."""
    import math

    model, processor = tiny_clip_vision_model("CLIPVisionModelWithProjection", patch_size=4)
    trainer = VisionForgetTrainer(
        model, small_config(tmp_path, max_steps=2, logging_steps=1, bf16=True, num_trigger_samples=16,
                            per_device_train_batch_size=8),
        processor, [synthetic_faces(0, 4)], synthetic_clean_images(8), reference_faces=[synthetic_faces(3, 4)],
    )
    assert trainer.accelerator.mixed_precision == "bf16"
    trainer.train()
    logs = [log for log in trainer.state.log_history if "loss" in log]
    assert len(logs) == 2 and all(math.isfinite(log["loss"]) for log in logs)
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
