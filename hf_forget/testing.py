"""Tiny, offline models and tokenizers for tests, examples and benchmarks.

Everything here is built from configs in memory: nothing is downloaded. The tokenizer is a byte-level
CLIP BPE with no merges, so every Unicode string (accents, apostrophes, CJK, emoji) tokenizes.
"""

from __future__ import annotations

import string

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import (
    T5TokenizerFast,
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


def t5_char_tokenizer(model_max_length: int = 512) -> T5TokenizerFast:
    """An offline T5 tokenizer (Unigram, SentencePiece-style ``▁``) whose pieces are single characters, for T5
    encoders built from a config (SD3's and FLUX's T5 without the 32,128-row vocabulary).

    "Ada Quenby" and "the person" are both 9 pieces, so a name and the neutral term keep positions aligned."""
    chars = sorted(set(string.printable) - set(string.whitespace))
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -1.0)]
    vocab += [(c, -2.0) for c in chars] + [("▁" + c, -2.5) for c in chars]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=2, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=tokenizer, eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                           extra_ids=0, model_max_length=model_max_length)  # fmt: skip


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


# Shapes of real CLIP text encoders (random weights here), and "skeleton": ViT-L/14's structure (12 layers, the same
# 146 trained tensors) at width 8, so that a step is almost all host overhead and no arithmetic.
SIZED_TEXT_MODELS = {
    "vit-l-14": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                     projection_dim=768, vocab_size=49408),
    "vit-b-32": dict(hidden_size=512, num_hidden_layers=12, num_attention_heads=8, intermediate_size=2048,
                     projection_dim=512, vocab_size=49408),
    "skeleton": dict(hidden_size=8, num_hidden_layers=12, num_attention_heads=2, intermediate_size=16, projection_dim=8),
    "tiny": {},
}


def sized_clip_text_model(size: str = "vit-l-14", kind: str = "CLIPTextModel", seed: int = 0, **overrides):
    """A randomly initialised CLIP text encoder of a named size (:data:`SIZED_TEXT_MODELS`) and the offline
    byte-level tokenizer (77 positions; a 49,408-token vocabulary of which the tokenizer uses the first ids).

    Example:
    ```python
    >>> model, tokenizer = sized_clip_text_model("skeleton")
    >>> model.config.num_hidden_layers, model.config.hidden_size, model.config.max_position_embeddings
    (12, 8, 77)
    ```
    """
    if size not in SIZED_TEXT_MODELS:
        raise ValueError(f"size must be one of {sorted(SIZED_TEXT_MODELS)}, got {size!r}.")
    return tiny_clip_text_model(kind, seed=seed, **{**SIZED_TEXT_MODELS[size], **overrides})
