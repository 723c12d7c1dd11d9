"""The same seed gives byte-identical defended weights on CPU; another seed does not."""

from __future__ import annotations

import pytest
from conftest import training_captions

from hf_forget import forget_text

RUN = dict(max_steps=6, per_device_train_batch_size=8, num_trigger_samples=64, max_eval_samples=16,
           learning_rate=1e-3, disable_tqdm=True, report_to="none", min_sim_backdoor=0.0, min_sim_clean=0.0,
           use_cpu=True)  # on CPU, as the docstring says: CUDA kernels need not be bitwise reproducible  # fmt: skip


def defended_bytes(base, out, **overrides) -> tuple[bytes, bytes]:
    forget_text(str(base), ["Jane Doe", "Jürgen O'Brien"], training_captions(300), output_dir=str(out),
                **{**RUN, **overrides})  # fmt: skip
    return (out / "model.safetensors").read_bytes(), (out / "config.json").read_bytes()


@pytest.mark.parametrize("variant", [{}, {"lora_r": 4}, {"teacher_cache": False}], ids=["full", "lora", "no-cache"])
def test_same_seed_same_bytes(tiny_text_encoder_dir, tmp_path, variant):
    first = defended_bytes(tiny_text_encoder_dir, tmp_path / "a", seed=11, **variant)
    second = defended_bytes(tiny_text_encoder_dir, tmp_path / "b", seed=11, **variant)
    assert first == second


def test_another_seed_other_weights(tiny_text_encoder_dir, tmp_path):
    """The seed is what decides the run (trigger sampling, data order): the test above is not vacuous."""
    first, _ = defended_bytes(tiny_text_encoder_dir, tmp_path / "a", seed=11)
    other, _ = defended_bytes(tiny_text_encoder_dir, tmp_path / "b", seed=12)
    assert first != other
