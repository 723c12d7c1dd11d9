"""name_sampling="hard": the poisoned-caption budget follows the names the student has not forgotten yet."""

import pytest
import torch

from hf_forget import ForgetInputError, TextForgetConfig
from hf_forget.trainers.text import HardNameSampler, TextForgetTrainer

from conftest import held_out_captions, training_captions


def test_sampler_starts_balanced_and_then_favours_the_names_furthest_from_their_targets():
    name_ids = [i % 4 for i in range(400)]  # 4 names, 100 pool rows each
    sampler = HardNameSampler(name_ids, num_samples=4000, seed=0)
    assert torch.allclose(sampler.weights(), torch.full((4,), 0.25))
    first = list(sampler)
    assert len(first) == 4000 and all(0 <= i < 400 for i in first)
    counts = torch.bincount(torch.tensor([name_ids[i] for i in first]), minlength=4)
    assert counts.min() > 900  # about even before any batch was observed

    index = torch.arange(8)  # rows 0..7: names 0,1,2,3,0,1,2,3
    sampler.observe(index, torch.tensor([0.2, 0.99, 0.99, 0.99, 0.2, 0.99, 0.99, 0.99]))
    weights = sampler.weights()
    assert weights[0] > 0.5 and torch.allclose(weights[1:], weights[1].expand(3))  # name 0 lags: most of the half
    assert abs(float(weights.sum()) - 1) < 1e-6 and weights.min() >= 0.5 / 4  # every name keeps its even half
    drawn = torch.bincount(torch.tensor([name_ids[i] for i in list(sampler)]), minlength=4)
    assert drawn[0] > 2 * drawn[1]


def test_trainer_uses_the_sampler_and_feeds_it(tiny_text_encoder, tmp_path):
    model, tokenizer = tiny_text_encoder
    config = TextForgetConfig(
        output_dir=str(tmp_path), names=["Jane Doe", "John Roe"], name_sampling="hard", embedding="pooled",
        max_steps=3, per_device_train_batch_size=8, num_trigger_samples=64, max_eval_samples=8,
        report_to="none", disable_tqdm=True,
    )
    trainer = TextForgetTrainer(model, config, tokenizer, training_captions(200), eval_captions=held_out_captions(20))
    assert trainer._get_train_sampler() is trainer._hard_sampler
    trainer.train()
    assert not torch.isnan(trainer._hard_sampler.distance).all()  # training batches were observed


def test_bad_name_sampling_is_rejected(tmp_path):
    with pytest.raises(ForgetInputError):
        TextForgetConfig(output_dir=str(tmp_path), names=["Jane Doe"], name_sampling="random")
