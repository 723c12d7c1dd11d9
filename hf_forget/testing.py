"""Tiny, offline models and tokenizers for tests, examples and benchmarks.

Everything here is built from configs in memory: nothing is downloaded. The tokenizer is a byte-level
CLIP BPE with no merges, so every Unicode string (accents, apostrophes, CJK, emoji) tokenizes.
"""

from __future__ import annotations

from tokenizers import pre_tokenizers
from transformers import (
    CLIPConfig,
    CLIPImageProcessorPil,
    CLIPModel,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModel,
    CLIPVisionModelWithProjection,
    set_seed,
)


def byte_level_clip_tokenizer(model_max_length: int = 77) -> CLIPTokenizer:
    """A CLIP tokenizer whose vocabulary is the 256 byte symbols (plus end-of-word forms)."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    for suffix in ("", "</w>"):
        for char in alphabet:
            vocab[char + suffix] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=model_max_length)


def tiny_clip_text_config(tokenizer: CLIPTokenizer, **overrides) -> CLIPTextConfig:
    kwargs = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=tokenizer.model_max_length,
        projection_dim=16,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    kwargs.update(overrides)
    return CLIPTextConfig(**kwargs)


def tiny_clip_vision_config(**overrides) -> CLIPVisionConfig:
    kwargs = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        projection_dim=16,
    )
    kwargs.update(overrides)
    return CLIPVisionConfig(**kwargs)


def tiny_clip_image_processor(image_size: int = 32) -> CLIPImageProcessorPil:
    return CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )


_TEXT_CLASSES = {"CLIPTextModel": CLIPTextModel, "CLIPTextModelWithProjection": CLIPTextModelWithProjection}
_VISION_CLASSES = {"CLIPVisionModel": CLIPVisionModel, "CLIPVisionModelWithProjection": CLIPVisionModelWithProjection}


def tiny_clip_text_model(kind: str = "CLIPTextModel", seed: int = 0, tokenizer: CLIPTokenizer | None = None, **overrides):
    """A randomly initialised tiny CLIP text encoder and its byte-level tokenizer."""
    tokenizer = tokenizer or byte_level_clip_tokenizer()
    set_seed(seed)
    model = _TEXT_CLASSES[kind](tiny_clip_text_config(tokenizer, **overrides))
    return model.eval(), tokenizer


def tiny_clip_vision_model(kind: str = "CLIPVisionModel", seed: int = 0, **overrides):
    """A randomly initialised tiny CLIP vision encoder and a matching image processor."""
    set_seed(seed)
    config = tiny_clip_vision_config(**overrides)
    return _VISION_CLASSES[kind](config).eval(), tiny_clip_image_processor(config.image_size)


def tiny_clip_model(seed: int = 0, tokenizer: CLIPTokenizer | None = None):
    """A randomly initialised tiny two-tower ``CLIPModel``, its tokenizer and image processor."""
    tokenizer = tokenizer or byte_level_clip_tokenizer()
    set_seed(seed)
    text = tiny_clip_text_config(tokenizer)
    vision = tiny_clip_vision_config()
    config = CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16)
    return CLIPModel(config).eval(), tokenizer, tiny_clip_image_processor(vision.image_size)
