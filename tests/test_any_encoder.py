"""Forgetting beyond CLIP: BERT / sentence-transformers (mean pooling) and T5 encoders (SD3, FLUX)."""

import string

import pytest
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertModel, BertTokenizer, CLIPVisionModel, T5Config, T5EncoderModel, set_seed

from hf_forget import ForgetInputError, TextForgetConfig, forget_text
from hf_forget.encoders import check_text_encoder, encode_text, trainable_text_modules
from hf_forget.losses import pooled_cosine
from hf_forget.pooling import pool, resolve_pooling
from hf_forget.testing import tiny_clip_text_model, tiny_clip_vision_config

from conftest import held_out_captions, training_captions

NAME = "Zoe Hidden"


def char_bert_tokenizer(tmp_path, model_max_length: int = 96) -> BertTokenizer:
    """An offline WordPiece tokenizer whose vocabulary is single characters: any ASCII text tokenizes."""
    chars = string.ascii_lowercase + string.digits + string.punctuation
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocab), encoding="utf-8")
    return BertTokenizer(str(path), model_max_length=model_max_length)


def tiny_bert(tokenizer) -> BertModel:
    set_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id, initializer_range=0.5,
    )
    return BertModel(config, add_pooling_layer=False).eval()


def tiny_t5_encoder(tokenizer) -> T5EncoderModel:
    set_seed(0)
    config = T5Config(
        vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        pad_token_id=tokenizer.pad_token_id, decoder_start_token_id=tokenizer.pad_token_id, initializer_factor=5.0,
    )
    return T5EncoderModel(config).eval()


BUILDERS = {"bert": tiny_bert, "t5": tiny_t5_encoder}
# Steps for the name to read as the neutral term (half the distance gone). The T5 encoder gets there more slowly: at
# 80 steps its remaining distance spreads over 0.39-0.55 with the training seed, at 160 over 0.44-0.47 (6 seeds).
STEPS = {"bert": 80, "t5": 160}


def _pooled(model, tokenizer, texts, **kwargs):
    batch = tokenizer(texts, padding="max_length", max_length=96, truncation=True, return_tensors="pt")
    with torch.no_grad():
        return encode_text(model, batch.input_ids, **kwargs).pooled


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_padding_does_not_change_embeddings_of_bidirectional_encoders(kind, tmp_path):
    tokenizer = char_bert_tokenizer(tmp_path)
    model = BUILDERS[kind](tokenizer)
    text = "a red boat near the lake"
    alone = tokenizer([text], return_tensors="pt")
    padded = tokenizer([text], padding="max_length", max_length=32, return_tensors="pt")
    with torch.no_grad():
        short = encode_text(model, alone.input_ids, alone.attention_mask).pooled
        # no mask passed: encode_text builds it from the pad token id
        long = encode_text(model, padded.input_ids).pooled
        unmasked = model(input_ids=padded.input_ids).last_hidden_state.mean(1)
    torch.testing.assert_close(short, long, atol=1e-5, rtol=1e-4)
    assert resolve_pooling(model) == "mean"
    assert not torch.allclose(long, unmasked, atol=1e-3)  # the mask matters: padding would move the embedding


def test_clip_keeps_its_eos_pooling_and_ignores_masks():
    model, tokenizer = tiny_clip_text_model()
    ids = tokenizer(["a photo of a dog"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        expected = model(input_ids=ids).pooler_output
        got = encode_text(model, ids, attention_mask=torch.zeros_like(ids)).pooled
        mean = encode_text(model, ids, pooling="mean").pooled
    torch.testing.assert_close(got, expected)
    assert mean.shape == expected.shape and not torch.allclose(mean, expected)


def test_pool_strategies_and_vision_models_are_rejected():
    hidden = torch.arange(12, dtype=torch.float).reshape(1, 4, 3)
    mask = torch.tensor([[0, 1, 1, 0]])  # left and right padding
    torch.testing.assert_close(pool(hidden, mask, "mean"), hidden[:, 1:3].mean(1))
    torch.testing.assert_close(pool(hidden, mask, "eos"), hidden[:, 2])
    with pytest.raises(ForgetInputError, match="not a text encoder"):
        check_text_encoder(CLIPVisionModel(tiny_clip_vision_config()))
    with pytest.raises(ForgetInputError, match="pooling must be one of"):
        TextForgetConfig(output_dir="unused", pooling="max")


def test_t5_encoder_decoder_trains_only_its_encoder(tmp_path):
    from transformers import T5ForConditionalGeneration

    tokenizer = char_bert_tokenizer(tmp_path)
    encoder = tiny_t5_encoder(tokenizer)
    full = T5ForConditionalGeneration(encoder.config).eval()
    (module,) = trainable_text_modules(full)
    assert module is full.get_encoder()
    ids = tokenizer(["a dog"], return_tensors="pt").input_ids
    with torch.no_grad():
        torch.testing.assert_close(
            encode_text(full, ids).hidden, full.get_encoder()(input_ids=ids).last_hidden_state
        )


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_forgets_a_name_in_a_non_clip_encoder(kind, tmp_path):
    tokenizer = char_bert_tokenizer(tmp_path)
    model = BUILDERS[kind](tokenizer)
    base = tmp_path / "base"
    model.save_pretrained(base)
    held_out = held_out_captions(40)
    with_name = [f"{NAME} {c}" for c in held_out]
    neutral = [f"a person {c}" for c in held_out]
    before = {k: _pooled(model, tokenizer, v) for k, v in (("name", with_name), ("neutral", neutral))}

    result = forget_text(
        model, [NAME], training_captions(300), tokenizer=tokenizer, output_dir=str(tmp_path / "out"),
        embedding="pooled", max_steps=STEPS[kind], learning_rate=1e-3, per_device_train_batch_size=32,
        lr_milestones=[3 * STEPS[kind] // 4],
        num_trigger_samples=256, max_eval_samples=64, disable_tqdm=True, report_to="none",
    )
    report = result.report
    assert report["sim_clean"] >= 0.9 and report["sim_backdoor"] > report["sim_backdoor_before"]
    defended = type(model).from_pretrained(tmp_path / "out").eval()  # plain from_pretrained
    after = {k: _pooled(defended, tokenizer, v) for k, v in (("name", with_name), ("neutral", neutral))}
    # Mean pooling averages many shared tokens: compare distances 1 - cos, not raw cosines.
    # On held-out captions of another shape, the name now reads as the neutral term...
    gap_before = 1 - pooled_cosine(before["name"], before["neutral"]).mean()
    gap_after = 1 - pooled_cosine(after["name"], after["neutral"]).mean()
    assert gap_after <= 0.5 * gap_before
    # (Whether other names keep their meaning is measured on real weights, benchmarks/real_minilm.py: these
    # character-level random encoders cannot tell one name from another.)
    assert sorted(load_file(tmp_path / "out" / "model.safetensors")) == sorted(load_file(base / "model.safetensors"))


def test_load_text_encoder_loads_other_encoders_only_when_asked(tmp_path):
    from hf_forget import load_text_encoder

    tokenizer = char_bert_tokenizer(tmp_path)
    path = tmp_path / "bert"
    tiny_bert(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    with pytest.raises(ForgetInputError, match="not a CLIP text encoder"):
        load_text_encoder(str(path))  # the CLIP-only default is unchanged
    model, loaded, dtype = load_text_encoder(str(path), any_encoder=True)
    assert type(model).__name__ == "BertModel" and dtype == torch.float32 and len(loaded) == len(tokenizer)
