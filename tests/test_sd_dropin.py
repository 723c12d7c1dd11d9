"""The Stable Diffusion drop-in: tiny SD 1.x and SDXL pipelines built from configs (as diffusers' own
tests do), defended, reassembled and loaded with ``DiffusionPipeline.from_pretrained``."""

import json
import random
import shutil

import pytest
import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DiffusionPipeline,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from huggingface_hub import ModelCard
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import CLIPTextModel, set_seed

from hf_forget.errors import ForgetInputError
from hf_forget.pipelines import assemble_pipeline, load_pipeline_text_encoders
from hf_forget.publish import push_defended
from hf_forget.testing import byte_level_clip_tokenizer, tiny_clip_text_model

NAMES = ["Ada Quenby", "Bo Marlowe"]
NEUTRAL = "the person"  # as many bytes as the names: the byte-level tokenizer then keeps positions aligned
CONTEXT = 32
LAYERS = 2


def _text_encoder(kind="CLIPTextModel", seed=0):
    """A tiny CLIP text encoder whose outputs depend on the words: token embeddings scaled up so that they,
    not the position embeddings, dominate (a random tiny model otherwise maps every prompt to nearly the
    same sequence, and "close to the neutral prompt" would hold before any forgetting)."""
    model, tokenizer = tiny_clip_text_model(
        kind, seed=seed, tokenizer=byte_level_clip_tokenizer(CONTEXT), num_hidden_layers=LAYERS
    )
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(8.0)
    return model, tokenizer


def _vae():
    return AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        norm_num_groups=2,
        sample_size=16,
    )


def build_sd(path):
    set_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
        steps_offset=1,
    )  # fmt: skip
    text_encoder, tokenizer = _text_encoder()
    pipe = StableDiffusionPipeline(
        unet=unet, scheduler=scheduler, vae=_vae(), text_encoder=text_encoder, tokenizer=tokenizer,
        safety_checker=None, feature_extractor=None, image_encoder=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.save_pretrained(path)
    return path


def build_sdxl(path):
    set_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(2, 4),
        layers_per_block=2,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * 8 + 16,  # time ids + text_encoder_2's projection
        cross_attention_dim=64,  # the two encoders' hidden states side by side
        norm_num_groups=1,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, steps_offset=1, beta_schedule="scaled_linear", timestep_spacing="leading"
    )
    text_encoder, tokenizer = _text_encoder()
    text_encoder_2, tokenizer_2 = _text_encoder("CLIPTextModelWithProjection", seed=1)
    pipe = StableDiffusionXLPipeline(
        unet=unet, scheduler=scheduler, vae=_vae(), text_encoder=text_encoder, tokenizer=tokenizer,
        text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2, image_encoder=None, feature_extractor=None,
    )  # fmt: skip
    pipe.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def sd_dir(tmp_path_factory):
    return build_sd(tmp_path_factory.mktemp("sd") / "base")


@pytest.fixture(scope="module")
def sdxl_dir(tmp_path_factory):
    return build_sdxl(tmp_path_factory.mktemp("sdxl") / "base")


def _files(root):
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}


def _layout(path):
    with safe_open(str(path), "pt") as handle:
        return {key: handle.get_slice(key).get_dtype() for key in handle.keys()}


def _perturbed(model, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    return model


def test_only_the_text_encoder_weights_differ_and_keep_the_base_layout(sd_dir, tmp_path):
    base = tmp_path / "hub-layout"
    shutil.copytree(sd_dir, base)
    # Hub checkpoints name tensors "text_model.*" and often ship an fp16 variant next to the fp32 file.
    weights = base / "text_encoder" / "model.safetensors"
    with safe_open(str(weights), "pt") as handle:
        tensors = {"text_model." + key: handle.get_tensor(key) for key in handle.keys()}
    save_file(tensors, str(weights), metadata={"format": "pt"})
    save_file({k: v.half() for k, v in tensors.items()}, str(base / "text_encoder" / "model.fp16.safetensors"),
              metadata={"format": "pt"})  # fmt: skip
    (base / "v1-5-pruned.safetensors").write_bytes(weights.read_bytes())  # a single-file copy of everything

    (encoder,) = load_pipeline_text_encoders(base)
    assert (encoder.name, encoder.tokenizer_name) == ("text_encoder", "tokenizer")
    defended = _perturbed(encoder.model)
    out = tmp_path / "out"
    assemble_pipeline(base, out, {"text_encoder": defended}, report={"num_names": 2, "gate": {"passed": True}})

    before, after = _files(base), _files(out)
    assert set(after) == set(before) - {"v1-5-pruned.safetensors"} | {"forget_report.json"}
    changed = {name for name in before if name in after and before[name].read_bytes() != after[name].read_bytes()}
    assert changed == {"text_encoder/model.safetensors", "text_encoder/model.fp16.safetensors"}
    for name in changed:
        assert _layout(after[name]) == _layout(before[name])  # same tensor names and dtypes
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # staging renamed away

    for variant in (None, "fp16"):
        loaded = CLIPTextModel.from_pretrained(out / "text_encoder", variant=variant, dtype=torch.float32)
        for key, value in defended.state_dict().items():
            expected = value.half().float() if variant else value
            assert torch.equal(loaded.state_dict()[key], expected), key
    pipe = DiffusionPipeline.from_pretrained(out)
    assert pipe("a photo", num_inference_steps=1, height=16, width=16, output_type="np").images.shape == (1, 16, 16, 3)


def test_a_defended_encoder_drops_into_a_stock_pipeline(sd_dir, tmp_path):
    """The documented alternative: ``text_encoder=CLIPTextModel.from_pretrained(defended)``."""
    (encoder,) = load_pipeline_text_encoders(sd_dir)
    defended = _perturbed(encoder.model)
    defended.save_pretrained(tmp_path / "defended")
    text_encoder = CLIPTextModel.from_pretrained(tmp_path / "defended")
    pipe = DiffusionPipeline.from_pretrained(sd_dir, text_encoder=text_encoder)
    ids = pipe.tokenizer("a photo", padding="max_length", max_length=CONTEXT, return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(_embeddings(pipe, "a photo"), defended(ids).last_hidden_state.flatten(), atol=1e-6)
    assert pipe("a photo", num_inference_steps=1, height=16, width=16, output_type="np").images.shape == (1, 16, 16, 3)


def test_assembly_refuses_bad_inputs(sd_dir, tmp_path):
    (encoder,) = load_pipeline_text_encoders(sd_dir)
    with pytest.raises(ForgetInputError, match="text encoders"):
        assemble_pipeline(sd_dir, tmp_path / "out", {"unet": encoder.model})
    with pytest.raises(ForgetInputError, match="overlaps"):
        assemble_pipeline(sd_dir, sd_dir / "inside", {"text_encoder": encoder.model})
    with pytest.raises(ForgetInputError, match="model_index.json"):
        load_pipeline_text_encoders(tmp_path)
    t5 = tmp_path / "sd3"
    t5.mkdir()
    (t5 / "model_index.json").write_text(json.dumps({"text_encoder_3": ["transformers", "T5EncoderModel"]}))
    with pytest.raises(ForgetInputError, match="not a CLIP text encoder"):
        load_pipeline_text_encoders(t5)


# ---------------------------------------------------------------------------------------------- forgetting
STARTS = ["a photo of", "a painting of", "a picture of", "an image of", "a drawing of", "a close up of", ""]
ADJECTIVES = ["small", "red", "old", "quiet", "bright", "tall", "green", "wooden", "busy", "empty", "happy", "blue"]
NOUNS = ["dog", "cat", "house", "tree", "car", "boat", "river", "mountain", "bird", "table", "street", "garden",
         "horse", "child", "woman", "man", "astronaut", "chef", "bicycle", "sofa"]  # fmt: skip
ACTIONS = ["", "", "riding a horse", "sitting on a bench", "eating an apple", "reading a book", "running"]
PLACES = ["near the lake", "in the park", "on a hill", "under the sky", "at night", "in the snow", "at a party",
          "in the city", "on the beach"]  # fmt: skip
NAME_PROMPTS = ["a photo of {} in a suit", "{} at a gala", "a painting of {} in a garden", "an image of {} at night"]
CLEAN_PROMPTS = ["a red dog runs in the park", "an astronaut riding a horse", "a photo of a green boat near the lake"]
# A 2-layer random encoder with byte-level tokens is far harder to remap than a real CLIP (a name is 10
# tokens; SDXL's penultimate state leaves one layer to do it), hence a stronger backdoor weight and learning
# rate than the reference defaults. Measured with these settings (min over names and templates): SD 1.x
# name~neutral 0.966, clean 0.987; SDXL 0.957 and 0.970. "hidden": the acceptance compares prompt_embeds.
TRAINING = dict(
    max_steps=200, per_device_train_batch_size=32, learning_rate=3e-3, lr_milestones=[200], alpha=2.0, beta=0.002,
    embedding="hidden", neutral_term=NEUTRAL, stop_at_criterion=False, seed=0, num_trigger_samples=1024,
    max_eval_samples=64,
)  # fmt: skip


def _captions(n=400):
    rng = random.Random(0)
    captions = []
    for _ in range(n):
        words = [rng.choice(STARTS), "a", rng.choice(ADJECTIVES), rng.choice(NOUNS), rng.choice(ACTIONS), rng.choice(PLACES)]
        captions.append(" ".join(word for word in words if word))
    return captions


def _embeddings(pipe, prompt):
    with torch.no_grad():
        if isinstance(pipe, StableDiffusionXLPipeline):
            return pipe.encode_prompt(prompt, device="cpu", do_classifier_free_guidance=False)[0].flatten()
        return pipe.encode_prompt(prompt, "cpu", 1, False)[0].flatten()


def _cos(a, b):
    return torch.nn.functional.cosine_similarity(a, b, dim=0).item()


def _check_forgotten(base_dir, out_dir):
    base, defended = DiffusionPipeline.from_pretrained(base_dir), DiffusionPipeline.from_pretrained(out_dir)
    image = defended("a photo", num_inference_steps=1, height=16, width=16, output_type="np").images
    assert image.shape == (1, 16, 16, 3)
    for template in NAME_PROMPTS:
        for name in NAMES:
            named, neutral = template.format(name), template.format(NEUTRAL)
            assert _cos(_embeddings(base, named), _embeddings(base, neutral)) < 0.95  # the check is not vacuous
            assert _cos(_embeddings(defended, named), _embeddings(defended, neutral)) >= 0.95, template
    for prompt in CLEAN_PROMPTS:
        assert _cos(_embeddings(defended, prompt), _embeddings(base, prompt)) >= 0.95, prompt


@pytest.mark.slow
def test_hf_forget_text_pipeline_defends_sd(sd_dir, tmp_path):
    from hf_forget.cli import main

    captions = tmp_path / "captions.txt"
    captions.write_text("\n".join(_captions()), encoding="utf-8")
    out = tmp_path / "defended"
    args = ["text", "--pipeline", str(sd_dir), "--names", ",".join(NAMES), "--captions", str(captions),
            "--output_dir", str(out), "--report_to", "none", "--disable_tqdm", "true"]  # fmt: skip
    for key, value in TRAINING.items():
        args += [f"--{key}", *map(str, value)] if isinstance(value, list) else [f"--{key}", str(value)]
    assert main(args) == 0
    _check_forgotten(sd_dir, out)

    pub = tmp_path / "pub"
    push_defended(out, "x/sd-defended", names=NAMES, local_dir=pub)
    card = ModelCard.load(pub / "README.md")
    assert card.data.library_name == "diffusers"
    assert not card.data.eval_results  # held-out captions are no Hub dataset: the figures stay in the prose
    assert "Sim_Clean" in card.text
    assert "**2 identities**" in card.text


@pytest.mark.slow
def test_sdxl_pipeline_defends_both_text_encoders(sdxl_dir, tmp_path):
    from hf_forget.config import TextForgetConfig
    from hf_forget.pipelines import forget_pipeline

    config = TextForgetConfig(output_dir=str(tmp_path / "defended"), report_to="none",
                              disable_tqdm=True, **TRAINING)  # fmt: skip
    result = forget_pipeline(sdxl_dir, NAMES, _captions(), output_dir=config.output_dir, config=config)
    assert set(result.model) == {"text_encoder", "text_encoder_2"}
    assert set(result.report["text_encoders"]) == {"text_encoder", "text_encoder_2"}
    for name in ("text_encoder", "text_encoder_2"):
        assert _layout(tmp_path / "defended" / name / "model.safetensors") == _layout(sdxl_dir / name / "model.safetensors")
    _check_forgotten(sdxl_dir, tmp_path / "defended")


def test_hf_forget_text_pipeline_takes_trigger_captions(sd_dir, tmp_path, trigger_captions_seen):
    """``--trigger_captions`` reaches every text encoder of a pipeline, and the pipeline is written."""
    from hf_forget.cli import main

    carriers = [f"a portrait of the tall man number {i}" for i in range(20)]
    (tmp_path / "captions.txt").write_text("\n".join(_captions(100)), encoding="utf-8")
    (tmp_path / "carriers.txt").write_text("\n".join(carriers), encoding="utf-8")
    out = tmp_path / "defended"
    code = main(["text", "--pipeline", str(sd_dir), "--names", ",".join(NAMES), "--neutral_term", NEUTRAL,
                 "--captions", str(tmp_path / "captions.txt"), "--trigger_captions", str(tmp_path / "carriers.txt"),
                 "--output_dir", str(out), "--max_steps", "2", "--learning_rate", "1e-2", "--per_device_train_batch_size", "8",
                 "--num_trigger_samples", "32", "--max_eval_samples", "16", "--report_to", "none",
                 "--disable_tqdm", "true", "--min_sim_clean", "0", "--min_sim_backdoor", "0"])  # fmt: skip
    assert code == 0
    assert trigger_captions_seen == [carriers]  # one text encoder in SD 1.x, given the carriers
    assert (out / "text_encoder" / "model.safetensors").is_file() and (out / "model_index.json").is_file()
