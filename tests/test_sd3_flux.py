"""SD3 and FLUX: every text encoder (CLIP and T5) of tiny pipelines built from configs (as diffusers' own tests
build theirs) is defended on what the pipeline feeds its denoiser; the folder loads and generates."""

import json

import pytest
import torch
from diffusers import (
    AutoencoderKL,
    DiffusionPipeline,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
)
from huggingface_hub import ModelCard
from transformers import T5Config, T5EncoderModel, set_seed

from hf_forget.encoders import encode_text
from hf_forget.errors import ForgetInputError
from hf_forget.pipelines import load_pipeline_text_encoders, pipeline_roles
from hf_forget.pipelines.roles import adapt_encoder, release_encoder
from hf_forget.testing import byte_level_clip_tokenizer, t5_char_tokenizer, tiny_clip_text_model
from test_sd_dropin import CLEAN_PROMPTS, NAME_PROMPTS, NAMES, NEUTRAL, TRAINING, _captions, _files, _layout

CONTEXT = 32  # CLIP tokens
T5_LENGTH = 32  # max_sequence_length of the trained checks: the pipelines' 256 / 512 are all padding here


def tiny_t5(tokenizer, d_model: int = 64) -> T5EncoderModel:
    """A T5 v1.1 encoder (gated-GELU feed-forward, as SD3's and FLUX's T5-XXL)."""
    set_seed(2)
    config = T5Config(vocab_size=len(tokenizer), d_model=d_model, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                      relative_attention_num_buckets=8, feed_forward_proj="gated-gelu", tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id)  # fmt: skip
    return T5EncoderModel(config).eval()


def _clip(kind, seed):
    """As in test_sd_dropin: token embeddings scaled up so that the words, not the positions, dominate."""
    model, tokenizer = tiny_clip_text_model(kind, seed=seed, tokenizer=byte_level_clip_tokenizer(CONTEXT),
                                            num_hidden_layers=2)  # fmt: skip
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(8.0)
    return model, tokenizer


def _vae(latent_channels):
    return AutoencoderKL(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
                         latent_channels=latent_channels, norm_num_groups=1, use_quant_conv=False,
                         use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035)  # fmt: skip


def build_sd3(path):
    """Two CLIP encoders with projection (hidden 32, projection 16) and a T5 (d_model 64: the CLIP states side
    by side fit its width, nothing is cut)."""
    set_seed(0)
    transformer = SD3Transformer2DModel(sample_size=32, patch_size=1, in_channels=4, num_layers=1, attention_head_dim=8,
                                        num_attention_heads=4, caption_projection_dim=32, joint_attention_dim=64,
                                        pooled_projection_dim=32, out_channels=4)  # fmt: skip
    text_encoder, tokenizer = _clip("CLIPTextModelWithProjection", 0)
    text_encoder_2, tokenizer_2 = _clip("CLIPTextModelWithProjection", 1)
    tokenizer_3 = t5_char_tokenizer()
    pipe = StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), vae=_vae(4), text_encoder=text_encoder,
        tokenizer=tokenizer, text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2, text_encoder_3=tiny_t5(tokenizer_3),
        tokenizer_3=tokenizer_3,
    )  # fmt: skip
    pipe.save_pretrained(path)
    return path


def build_flux(path):
    set_seed(0)
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=64,
                                         pooled_projection_dim=32, axes_dims_rope=[4, 4, 8])  # fmt: skip
    text_encoder, tokenizer = _clip("CLIPTextModel", 0)
    tokenizer_2 = t5_char_tokenizer()
    pipe = FluxPipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), vae=_vae(1), text_encoder=text_encoder,
        tokenizer=tokenizer, text_encoder_2=tiny_t5(tokenizer_2), tokenizer_2=tokenizer_2, image_encoder=None,
        feature_extractor=None,
    )  # fmt: skip
    pipe.save_pretrained(path)
    return path


BUILDERS = {"sd3": build_sd3, "flux": build_flux}


@pytest.fixture(scope="module")
def pipeline_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipelines")
    return {kind: build(root / kind) for kind, build in BUILDERS.items()}


def encoder_outputs(pipe, prompt, max_sequence_length=T5_LENGTH) -> dict[str, torch.Tensor]:
    """Each encoder's share of what ``encode_prompt`` hands the denoiser, cut out of ``prompt_embeds`` and
    ``pooled_prompt_embeds``."""
    with torch.no_grad():
        if isinstance(pipe, StableDiffusion3Pipeline):
            embeds, _, pooled, _ = pipe.encode_prompt(prompt, None, None, device="cpu", do_classifier_free_guidance=False,
                                                      max_sequence_length=max_sequence_length)  # fmt: skip
            width = pipe.text_encoder.config.hidden_size
            projection = pipe.text_encoder.config.projection_dim
            return {
                "text_encoder hidden[-2]": embeds[0, :CONTEXT, :width],
                "text_encoder_2 hidden[-2]": embeds[0, :CONTEXT, width : 2 * width],
                "text_encoder_3 (T5) last_hidden_state": embeds[0, CONTEXT:],
                "text_encoder text_embeds": pooled[0, :projection],
                "text_encoder_2 text_embeds": pooled[0, projection:],
            }
        embeds, pooled, _ = pipe.encode_prompt(prompt, None, device="cpu", max_sequence_length=max_sequence_length)
        return {"text_encoder_2 (T5) last_hidden_state": embeds[0], "text_encoder pooler_output": pooled[0]}


def _cos(a, b):
    return torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()


# ---------------------------------------------------------------------------------------------- roles
def _index(tmp_path, class_name, **encoders):
    folder = tmp_path / class_name
    folder.mkdir()
    index = {"_class_name": class_name, **{k: ["transformers", v] for k, v in encoders.items()}}
    (folder / "model_index.json").write_text(json.dumps(index), encoding="utf-8")
    return folder


def test_each_family_defends_what_its_pipeline_reads(tmp_path):
    """Read off diffusers' encode_prompt: SD3 CLIP penultimate + projection, FLUX CLIP pooled only, T5 token states
    without attention mask at the pipeline's own max_sequence_length; SD 1.x/2.x and SDXL keep the run's setting."""
    sd3 = _index(tmp_path, "StableDiffusion3Pipeline", text_encoder="CLIPTextModelWithProjection",
                 text_encoder_2="CLIPTextModelWithProjection", text_encoder_3="T5EncoderModel")  # fmt: skip
    flux = _index(tmp_path, "FluxPipeline", text_encoder="CLIPTextModel", text_encoder_2="T5EncoderModel")
    sdxl = _index(tmp_path, "StableDiffusionXLPipeline", text_encoder="CLIPTextModel",
                  text_encoder_2="CLIPTextModelWithProjection")  # fmt: skip
    sd = _index(tmp_path, "StableDiffusionPipeline", text_encoder="CLIPTextModel")

    def summary(path, **kwargs):
        return [(r.name, r.tokenizer_name, r.embedding, r.hidden_layer, r.max_length, r.attention_mask)
                for r in pipeline_roles(path, **kwargs)]  # fmt: skip

    assert summary(sd3) == [("text_encoder", "tokenizer", "both", -2, None, True),
                            ("text_encoder_2", "tokenizer_2", "both", -2, None, True),
                            ("text_encoder_3", "tokenizer_3", "hidden", -1, 256, False)]  # fmt: skip
    assert summary(flux) == [("text_encoder", "tokenizer", "pooled", -1, None, True),
                             ("text_encoder_2", "tokenizer_2", "hidden", -1, 512, False)]  # fmt: skip
    assert summary(flux, max_sequence_length=256)[1][4] == 256  # FLUX.1-schnell is run with 256
    assert summary(sdxl) == [("text_encoder", "tokenizer", None, -2, None, True),
                             ("text_encoder_2", "tokenizer_2", None, -2, None, True)]  # fmt: skip
    assert summary(sd) == [("text_encoder", "tokenizer", None, -1, None, True)]

    odd = _index(tmp_path, "StableDiffusion3Pipeline2", text_encoder="CLIPTextModelWithProjection",
                 text_encoder_3="GemmaModel")  # fmt: skip
    with pytest.raises(ForgetInputError, match="text_encoder_3 is a GemmaModel"):
        pipeline_roles(odd)
    t5_in_sdxl = _index(tmp_path, "StableDiffusionXLPipeline2", text_encoder="T5EncoderModel")
    with pytest.raises(ForgetInputError, match="not a CLIP text encoder"):
        pipeline_roles(t5_in_sdxl)
    with pytest.raises(ForgetInputError, match="max_sequence_length"):
        pipeline_roles(flux, max_sequence_length=0)


def _our_hooks(model):
    from hf_forget.pipelines.roles import _HOOKS

    hooks = [h for m in model.modules() for h in (*m._forward_pre_hooks.values(), *m._forward_hooks.values())]
    return [h for h in hooks if h in _HOOKS]


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_an_adapted_encoder_returns_what_encode_prompt_hands_the_denoiser(kind, pipeline_dirs):
    """What the trainer embeds (encode_text with the collator's attention mask, on the adapted encoder) is exactly
    each encoder's share of encode_prompt; releasing the encoder leaves no hook and no config change behind."""
    pipe = DiffusionPipeline.from_pretrained(pipeline_dirs[kind])
    prompt = "a photo of Ada Quenby in a suit"
    expected = encoder_outputs(pipe, prompt, max_sequence_length=48)
    got = {}
    for encoder in load_pipeline_text_encoders(pipeline_dirs[kind], max_sequence_length=48):
        config_before = encoder.model.config.to_dict()
        adapt_encoder(encoder.model, encoder.tokenizer, encoder.role)
        assert bool(_our_hooks(encoder.model)) == (encoder.role.hidden_layer == -2 or not encoder.role.attention_mask)
        length = encoder.role.max_length or CONTEXT
        batch = encoder.tokenizer([prompt], truncation=True, max_length=length)["input_ids"]
        ids = torch.tensor([batch[0] + [encoder.tokenizer.pad_token_id] * (length - len(batch[0]))])
        mask = (torch.arange(length) < len(batch[0])).long()[None]  # as TextTriggerCollator builds it
        with torch.no_grad():
            encoding = encode_text(encoder.model, ids, mask)
        got[encoder.name] = encoding
        release_encoder(encoder.model)
        assert not _our_hooks(encoder.model)
        assert encoder.model.config.to_dict() == config_before
    if kind == "sd3":
        pairs = [(got["text_encoder"].hidden, "text_encoder hidden[-2]"),
                 (got["text_encoder_2"].hidden, "text_encoder_2 hidden[-2]"),
                 (got["text_encoder_3"].hidden, "text_encoder_3 (T5) last_hidden_state"),
                 (got["text_encoder"].pooled, "text_encoder text_embeds"),
                 (got["text_encoder_2"].pooled, "text_encoder_2 text_embeds")]  # fmt: skip
    else:
        pairs = [(got["text_encoder_2"].hidden, "text_encoder_2 (T5) last_hidden_state"),
                 (got["text_encoder"].pooled, "text_encoder pooler_output")]  # fmt: skip
    for tensor, key in pairs:
        torch.testing.assert_close(tensor[0], expected[key], atol=1e-5, rtol=1e-4, msg=key)


# ---------------------------------------------------------------------------------------------- the CLI
CLI_RUN = ["--max_steps", "2", "--learning_rate", "1e-2", "--per_device_train_batch_size", "8",
           "--num_trigger_samples", "32", "--max_eval_samples", "16", "--report_to", "none", "--disable_tqdm", "true",
           "--min_sim_clean", "0", "--min_sim_backdoor", "0", "--neutral_term", NEUTRAL]  # fmt: skip
TAGS = {"sd3": ["sd3", "sd3-diffusers"], "flux": ["flux", "flux-diffusers"]}


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_hf_forget_text_pipeline_writes_a_complete_pipeline(kind, pipeline_dirs, tmp_path):
    """``hf-forget text --pipeline`` exits 0 (the pipeline's own max_sequence_length); only the text encoder weights
    change, in the base files' layout; the folder loads, generates, and its card names the family."""
    from hf_forget.cli import main

    base = pipeline_dirs[kind]
    (tmp_path / "captions.txt").write_text("\n".join(_captions(100)), encoding="utf-8")
    out = tmp_path / "defended"
    assert main(["text", "--pipeline", str(base), "--names", ",".join(NAMES), "--captions",
                 str(tmp_path / "captions.txt"), "--output_dir", str(out), *CLI_RUN]) == 0  # fmt: skip

    before, after = _files(base), _files(out)
    assert set(after) == set(before) | {"forget_report.json", "README.md"}
    encoders = [r.name for r in pipeline_roles(base)]
    for name in before:
        component = name.split("/")[0]
        if component in encoders and name.endswith(".safetensors"):
            assert before[name].read_bytes() != after[name].read_bytes(), name
            assert _layout(after[name]) == _layout(before[name]), name  # same tensor names and dtypes
        else:
            assert before[name].read_bytes() == after[name].read_bytes(), name  # transformer, VAE, tokenizers, ...

    report = json.loads((out / "forget_report.json").read_text(encoding="utf-8"))
    assert sorted(report["text_encoders"]) == encoders
    t5 = encoders[-1]
    assert report["text_encoders"][t5]["max_sequence_length"] == {"sd3": 256, "flux": 512}[kind]
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "diffusers"
    assert set(TAGS[kind]) <= set(card.data.tags)
    assert not any(name.split()[-1] in card.text for name in NAMES)

    pipe = DiffusionPipeline.from_pretrained(out)
    assert type(pipe).__name__ == {"sd3": "StableDiffusion3Pipeline", "flux": "FluxPipeline"}[kind]
    image = pipe("a photo", num_inference_steps=1, height=16, width=16, output_type="np",
                 max_sequence_length=T5_LENGTH).images  # fmt: skip
    assert image.shape == (1, 16, 16, 3)


def test_lora_defends_t5_and_is_merged_into_the_pipeline(pipeline_dirs, tmp_path):
    """``lora_r``: LoRA on the T5 attention (q, k, v, o) and gated feed-forward (wi_0, wi_1, wo) projections as on
    CLIP's;
    the written T5 is a plain T5EncoderModel with merged weights, its embedding table untouched."""
    from peft import PeftModel

    from hf_forget.config import TextForgetConfig
    from hf_forget.pipelines import forget_pipeline
    from hf_forget.trainers import base as trainer_base

    seen = []
    real = trainer_base.ForgetTrainer._prepare_student

    def spy(self, model, args):
        model = real(self, model, args)
        seen.append(model)
        return model

    config = TextForgetConfig(output_dir=str(tmp_path / "out"), max_steps=3, learning_rate=1e-2, lora_r=4,
                              per_device_train_batch_size=8, num_trigger_samples=32, max_eval_samples=16,
                              report_to="none", disable_tqdm=True, min_sim_clean=0, min_sim_backdoor=0,
                              neutral_term=NEUTRAL)  # fmt: skip
    trainer_base.ForgetTrainer._prepare_student = spy
    try:
        result = forget_pipeline(pipeline_dirs["flux"], NAMES, _captions(100), output_dir=config.output_dir,
                                 config=config, max_sequence_length=T5_LENGTH)  # fmt: skip
    finally:
        trainer_base.ForgetTrainer._prepare_student = real
    t5_student = seen[-1]
    assert isinstance(t5_student, PeftModel)
    targets = {name.rsplit(".", 2)[-2] for name, _ in t5_student.named_modules() if name.endswith("lora_A")}
    assert targets == {"q", "k", "v", "o", "wi_0", "wi_1", "wo"}

    defended = result.model["text_encoder_2"]
    assert type(defended) is T5EncoderModel and not any("lora" in k for k in defended.state_dict())
    written = T5EncoderModel.from_pretrained(tmp_path / "out" / "text_encoder_2")
    base = T5EncoderModel.from_pretrained(pipeline_dirs["flux"] / "text_encoder_2")
    changed = [k for k, v in written.state_dict().items() if not torch.equal(v, base.state_dict()[k])]
    assert any(".q.weight" in k for k in changed) and any(".wi_1.weight" in k for k in changed)
    assert "shared.weight" not in changed  # LoRA adapts the projections only
    for key, value in defended.state_dict().items():
        torch.testing.assert_close(written.state_dict()[key], value)


# ---------------------------------------------------------------------------------------------- forgetting
# Settings of test_sd_dropin (alpha 2, 3e-3), a little longer: SD3's CLIP encoders learn their pooled and
# penultimate outputs together. Measured over 4 templates x 2 names that are no training captions (worst case):
# before, a name moves each output by >= 0.27 of the distance between two different clean prompts (token states
# cos <= 0.88); after, the name's effect e(name) - e(neutral) keeps <= 0.63 of its size in SD3's CLIP token
# states (cos >= 0.943), <= 0.51 in every other output (T5 cos >= 0.958). Clean prompts: cos >= 0.97 to the base.
FORGET = dict(TRAINING, max_steps=300, lr_milestones=[300])
CLOSE = 0.93  # cos(defended(name prompt), defended(neutral prompt)) of the token states
RESIDUAL = 0.75  # at most this much of the name's effect remains in any output, for any prompt


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_sd3_and_flux_forget_the_names_in_every_encoder(kind, pipeline_dirs, tmp_path):
    from hf_forget.config import TextForgetConfig
    from hf_forget.pipelines import forget_pipeline

    base_dir, out = pipeline_dirs[kind], tmp_path / "defended"
    config = TextForgetConfig(output_dir=str(out), report_to="none", disable_tqdm=True, **FORGET)
    result = forget_pipeline(base_dir, NAMES, _captions(), output_dir=str(out), config=config,
                             max_sequence_length=T5_LENGTH)  # fmt: skip
    assert result.passed, result.report["gate"]

    base, defended = DiffusionPipeline.from_pretrained(base_dir), DiffusionPipeline.from_pretrained(out)
    assert defended("a photo", num_inference_steps=1, height=16, width=16, output_type="np",
                    max_sequence_length=T5_LENGTH).images.shape == (1, 16, 16, 3)  # fmt: skip
    clean_a, clean_b = encoder_outputs(base, CLEAN_PROMPTS[0]), encoder_outputs(base, CLEAN_PROMPTS[1])
    for template in NAME_PROMPTS:
        for name in NAMES:
            named, neutral = template.format(name), template.format(NEUTRAL)
            b_named, b_neutral = encoder_outputs(base, named), encoder_outputs(base, neutral)
            d_named, d_neutral = encoder_outputs(defended, named), encoder_outputs(defended, neutral)
            for key in b_named:
                effect = (b_named[key] - b_neutral[key]).norm()
                # far before: the name moves the output by a fair share of what another whole prompt does
                assert effect >= 0.2 * (clean_a[key] - clean_b[key]).norm(), (key, named)
                residual = ((d_named[key] - d_neutral[key]).norm() / effect).item()
                assert residual <= RESIDUAL, (key, named, residual)
                if "hidden" in key:
                    assert _cos(b_named[key], b_neutral[key]) < 0.9, (key, named)  # the check is not vacuous
                    assert _cos(d_named[key], d_neutral[key]) >= CLOSE, (key, named)
    for prompt in CLEAN_PROMPTS:
        b, d = encoder_outputs(base, prompt), encoder_outputs(defended, prompt)
        for key in b:
            assert _cos(b[key], d[key]) >= 0.95, (key, prompt)
