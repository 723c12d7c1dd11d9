"""Shared fixtures: tiny offline CLIP models, tokenizers and caption files. Nothing is downloaded."""

import os
import random

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The models here are tiny: one thread each is as fast as two, and immune to oversubscription when a test
# starts subprocesses (CLI, accelerate launch, torchrun) or the cores are shared. Measured on a busy 2-core
# machine: the three longest tests took 970 s with torch's default two threads, 32 s with one.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import huggingface_hub.constants  # noqa: E402

huggingface_hub.constants.HF_HUB_OFFLINE = True  # read at import time: patch the constant too

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

from hf_forget.testing import tiny_clip_text_model  # noqa: E402

ADJECTIVES = ["small", "red", "old", "quiet", "bright", "tall", "green", "wooden", "busy", "empty"]
NOUNS = ["dog", "cat", "house", "tree", "car", "boat", "river", "mountain", "bird", "table", "street", "garden"]
VERBS = ["stands", "runs", "sits", "waits", "sleeps", "shines", "rests", "moves"]
PLACES = ["near the lake", "in the park", "on a hill", "under the sky", "at night", "in the snow", "by the road"]


def training_captions(n: int = 1500, seed: int = 0) -> list[str]:
    """Generic captions of one shape: 'a <adj> <noun> <verb> <place>'."""
    rng = random.Random(seed)
    return [
        f"a {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(VERBS)} {rng.choice(PLACES)}" for _ in range(n)
    ]


def held_out_captions(n: int = 200, seed: int = 1) -> list[str]:
    """Captions of a different shape than :func:`training_captions`."""
    rng = random.Random(seed)
    return [
        f"{rng.choice(PLACES)} we saw two {rng.choice(NOUNS)}s and one {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} today"
        for _ in range(n)
    ]


@pytest.fixture
def tiny_text_encoder():
    return tiny_clip_text_model()


@pytest.fixture
def tiny_text_encoder_dir(tmp_path):
    model, tokenizer = tiny_clip_text_model()
    path = tmp_path / "base"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def captions_file(tmp_path):
    path = tmp_path / "captions.txt"
    path.write_text("\n".join(training_captions(400)), encoding="utf-8")
    return path


@pytest.fixture
def mixed_precision_on_cpu(monkeypatch):
    """Lifts the CUDA-only rule on fp16/bf16, so that a test runs the autocast path (a GPU run's) on the CPU."""
    import hf_forget.validation

    monkeypatch.setattr(hf_forget.validation, "check_mixed_precision", lambda config: None)


@pytest.fixture
def trigger_captions_seen(monkeypatch):
    """The ``trigger_captions`` of every `hf_forget.forget.forget_text` call (the call itself runs as usual)."""
    import hf_forget.forget

    seen, real = [], hf_forget.forget.forget_text

    def spy(*args, trigger_captions=None, **kwargs):
        seen.append(trigger_captions)
        return real(*args, trigger_captions=trigger_captions, **kwargs)

    monkeypatch.setattr(hf_forget.forget, "forget_text", spy)
    return seen
