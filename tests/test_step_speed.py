"""A forgetting step at the speed of the device: the foreach weight anchor, batches gathered from a pool on the
device, and no host-device sync in a step that does not log."""

import pytest
import torch
from conftest import held_out_captions, training_captions
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import TrainerCallback

from hf_forget import TextForgetConfig, TextForgetTrainer
from hf_forget.losses import weight_anchor, weight_anchor_foreach
from hf_forget.testing import tiny_clip_text_model
from hf_forget.trainers.flat import FlatParameters
from hf_forget.trainers.text import PoolBatch, TextTriggerCollator, TokenPool

SMALL = dict(per_device_train_batch_size=8, num_trigger_samples=32, max_eval_samples=16, disable_tqdm=True,
             learning_rate=1e-3, report_to="none")


def _trainer(tmp_path, **kwargs):
    model, tokenizer = tiny_clip_text_model()
    config = TextForgetConfig(output_dir=str(tmp_path), **{**SMALL, **kwargs})
    return TextForgetTrainer(model, config, tokenizer, training_captions(200), names=["Ann Example"],
                             eval_captions=held_out_captions(20))


@pytest.mark.parametrize("scale", [1.0, 0.25, 1024.0])  # 0.25: a gradient-accumulation share; 1024: a loss scale
def test_foreach_anchor_has_the_reference_value_and_gradient(scale):
    torch.manual_seed(0)
    shapes = [(4, 3), (5,), (2, 2, 2), (7,)]
    params = [torch.randn(s, requires_grad=True) for s in shapes]
    references = [p.detach() + 0.1 * torch.randn_like(p) for p in params]
    references[1] = params[1].detach().clone()  # one tensor unchanged: its gradient is 0, as at the first step
    grads = {}
    for name, value in (
        ("reference", lambda: weight_anchor([p - r for p, r in zip(params, references)])),
        ("foreach", lambda: weight_anchor_foreach(params, references)),
    ):
        for p in params:
            p.grad = None
        out = value()
        (scale * out).backward()
        grads[name] = (out.detach(), [p.grad.clone() for p in params])
    assert torch.allclose(grads["foreach"][0], grads["reference"][0], rtol=1e-6)
    for ours, theirs in zip(grads["foreach"][1], grads["reference"][1]):
        assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-7)
    assert torch.equal(grads["foreach"][1][1], torch.zeros(5))


def test_foreach_anchor_at_the_first_step_is_zero_with_zero_gradient():
    params = [torch.randn(3, 3, requires_grad=True), torch.randn(4, requires_grad=True)]
    value = weight_anchor_foreach(params, [p.detach().clone() for p in params])
    value.backward()
    assert value.item() == 0.0 and all(torch.equal(p.grad, torch.zeros_like(p)) for p in params)


def test_the_trainers_anchor_is_the_sum_of_per_tensor_distances_to_the_original_weights(tmp_path):
    trainer = _trainer(tmp_path, max_steps=3)
    original = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainer.weight_distance().item() == 0.0
    trainer.train()
    moved = dict(trainer.model.named_parameters())
    expected = weight_anchor([moved[n].detach() - original[n] for n in original])
    assert trainer.weight_distance().item() == pytest.approx(expected.item(), rel=1e-5) and expected > 0


def test_the_collator_hands_out_indices_and_the_pool_holds_the_padded_captions(tmp_path):
    trainer = _trainer(tmp_path, max_steps=1, embedding="both")
    dataset = trainer.train_dataset
    batch = trainer.data_collator([dataset[i] for i in (3, 0)])
    assert set(batch) == {"index"} and batch["index"].tolist() == [3, 0]
    rows = trainer._prepare_inputs(batch)
    assert isinstance(rows, PoolBatch)
    ids = rows["poisoned_input_ids"]
    assert ids.shape == (2, trainer.max_length)  # "both": padded to the context once
    assert ids[0, : len(dataset.poisoned[3])].tolist() == dataset.poisoned[3]
    assert rows["poisoned_attention_mask"][0].sum().item() == len(dataset.poisoned[3])


def test_the_cached_teacher_step_gathers_only_the_columns_it_uses(tmp_path, monkeypatch):
    batches = []
    real = TokenPool.batch

    def spy(self, index):
        batches.append(real(self, index))
        return batches[-1]

    monkeypatch.setattr(TokenPool, "batch", spy)
    trainer = _trainer(tmp_path, max_steps=2)
    batches.clear()  # the teacher cache reads every column once, at set-up
    trainer.train()
    assert len(batches) == 2
    # CLIP with EOS pooling reads no mask, and the cached teacher needs no target captions
    assert all(set(b._values) == {"index", "clean_input_ids", "poisoned_input_ids"} for b in batches)


class _HostWaits(TorchDispatchMode):
    """The tensor operations that make the host wait for a GPU, recognised on any device: a tensor read as a
    Python number (``item``, ``bool``, ``float`` and their C++ callers), an output whose size depends on the
    values (``nonzero``, boolean-mask indexing, ``unique``, ...), and host data turned into a tensor in the step
    (``torch.tensor(list)``: on a GPU, a blocking copy from pageable memory)."""

    SCALAR = ("aten._local_scalar_dense.", "aten.equal.", "aten.is_nonzero.", "aten.lift_fresh.")
    SIZED = ("aten.nonzero", "aten.masked_select.", "aten.unique", "aten._unique", "aten.repeat_interleave.Tensor")

    def __init__(self, calls: list[str]):
        super().__init__()
        self.calls = calls

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if name.startswith(self.SCALAR + self.SIZED):
            self.calls.append(name)
        elif name.startswith(("aten.index.", "aten.index_put")) and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] if i is not None
        ):
            self.calls.append(f"{name} (boolean mask)")
        return func(*args, **(kwargs or {}))


class _SyncCounter(TrainerCallback):
    """Counts what makes the host wait for the device, from the start to the end of each optimizer step: the
    Python-level reads (``Tensor.item``, ``.tolist``, ``.cpu``, ...) and, below them, :class:`_HostWaits`."""

    NAMES = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")

    def __init__(self, monkeypatch):
        self.counting, self.calls, self._mode = False, [], None
        for name in self.NAMES:
            real = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._counted(name, real))

    def _counted(self, name, real):
        def method(tensor, *args, **kwargs):
            if self.counting:
                self.calls.append(name)
            return real(tensor, *args, **kwargs)

        return method

    def on_step_begin(self, args, state, control, **kwargs):
        self.counting = True
        if self._mode is None:  # one mode on the stack at a time, whatever calls this
            self._mode = _HostWaits(self.calls)
            self._mode.__enter__()

    def on_step_end(self, args, state, control, **kwargs):
        self.counting = False
        self.close()

    def close(self) -> None:
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self._mode = None

    def count(self, trainer) -> list[str]:
        """Trains ``trainer`` with the counter and returns what it saw."""
        trainer.add_callback(self)
        try:
            trainer.train()
        finally:
            self.close()
        return self.calls


def test_the_counter_sees_what_makes_the_host_wait(tmp_path, monkeypatch):
    counter = _SyncCounter(monkeypatch)
    counter.on_step_begin(None, None, None)
    x = torch.arange(6.0)
    x.sum().item(), bool(x.any()), x.tolist(), x[x > 2], x.nonzero(), torch.tensor([1, 2]), x.unique()
    x[torch.tensor([True] * 6)] = 0.0
    counter.on_step_end(None, None, None)
    x.sum().item()  # outside a step: not counted
    assert {"item", "__bool__", "tolist", "aten._local_scalar_dense.default", "aten.index.Tensor (boolean mask)",
            "aten.nonzero.default", "aten.lift_fresh.default", "aten.index_put_.default (boolean mask)"} <= set(
        counter.calls) and any(c.startswith(("aten.unique", "aten._unique")) for c in counter.calls)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"teacher_cache": False, "identity_residual_weight": 1.0},
     {"identity_residual_weight": 1.0, "gradient_accumulation_steps": 2},
     {"target": "counterfactual", "named_clean_fraction": 0.5}],
    ids=["cached-teacher", "teacher-every-step", "residual-accumulated", "counterfactual"],
)
def test_a_step_that_does_not_log_never_waits_for_the_device(tmp_path, monkeypatch, kwargs):
    trainer = _trainer(tmp_path, max_steps=4, logging_steps=1000, **kwargs)
    assert _SyncCounter(monkeypatch).count(trainer) == []
    assert trainer.state.global_step == 4


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"teacher_cache": False, "identity_residual_weight": 1.0},
     {"target": "counterfactual", "teacher_cache": False},
     {"target": "counterfactual", "counterfactual_mode": "shift", "teacher_cache": False}],
    ids=["mean-face", "teacher-every-step", "counterfactual", "counterfactual-shift"],
)
def test_a_vision_step_that_does_not_log_never_waits_for_the_device(tmp_path, monkeypatch, kwargs):
    from test_vision_trainer import small_config, synthetic_clean_images, synthetic_faces

    from hf_forget.testing import tiny_clip_vision_model
    from hf_forget.trainers.vision import VisionForgetTrainer

    model, processor = tiny_clip_vision_model("CLIPVisionModelWithProjection", patch_size=4)
    extra = {"counterfactual_faces": [synthetic_faces(p, 3, seed=9) for p in (10, 11)]} if "target" in kwargs else {}
    config = small_config(tmp_path, max_steps=3, logging_steps=1000, num_trigger_samples=16,
                          per_device_train_batch_size=4, **kwargs)
    trainer = VisionForgetTrainer(model, config, processor, [synthetic_faces(0, 4), synthetic_faces(1, 5)],
                                  synthetic_clean_images(8), reference_faces=[synthetic_faces(3, 4)], **extra)
    assert _SyncCounter(monkeypatch).count(trainer) == []
    assert trainer.state.global_step == 3


def test_logged_terms_are_the_means_of_the_steps_since_the_last_log(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path, max_steps=4, logging_steps=2)
    seen = []
    real = TextForgetTrainer.compute_loss

    def spy(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = real(self, model, inputs, return_outputs=True)
        seen.append(outputs["cos_clean"].item())
        return (loss, outputs) if return_outputs else loss

    monkeypatch.setattr(TextForgetTrainer, "compute_loss", spy)
    trainer.train()
    logged = [log["cos_clean"] for log in trainer.state.log_history if "cos_clean" in log and "loss" in log]
    assert logged == pytest.approx([sum(seen[0:2]) / 2, sum(seen[2:4]) / 2], rel=1e-6)
    assert not trainer.args.logging_nan_inf_filter  # its check of the loss is a sync a step


def test_collator_docstring_batch_is_an_index_tensor():
    batch = TextTriggerCollator()([{"index": 2}, {"index": 5}])
    assert list(batch) == ["index"] and batch["index"].dtype == torch.long


@pytest.mark.parametrize("cache", [True, False], ids=["cached-teacher", "teacher-every-step"])
@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_torch_compile_trains_the_student(tmp_path, backend, cache):
    trainer = _trainer(tmp_path, max_steps=2, torch_compile=True, torch_compile_backend=backend, teacher_cache=cache,
                       logging_steps=1)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    assert trainer.state.global_step == 2
    assert isinstance(trainer.model_wrapped, torch._dynamo.eval_frame.OptimizedModule)  # the student ran compiled
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    assert any(not torch.equal(p.detach(), before[n]) for n, p in trainer.model.named_parameters() if n in before)
    metrics = trainer.forget_metrics()
    assert 0 < metrics["sim_clean"] <= 1.0 + 1e-6


def _moved_flat_parameters(shapes=((4, 3), (5,), (70,), (3, 50), (2, 2, 2))):
    """Parameters in a flat buffer, moved away from their reference except the second (as at the first step)."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    flat = FlatParameters(params)
    with torch.no_grad():
        for i, p in enumerate(params):
            if i != 1:
                p.add_(0.1 * torch.randn_like(p))  # as the optimizer does: in place, in the buffer
    return params, flat


@pytest.mark.parametrize("scale", [1.0, 0.25, 1024.0])  # 0.25: a gradient-accumulation share; 1024: a loss scale
def test_flat_anchor_has_the_reference_value_and_gradient(scale):
    params, flat = _moved_flat_parameters()
    leaves = [p.detach().clone().requires_grad_(True) for p in params]
    reference = weight_anchor([leaf - r.view(leaf.shape) for leaf, r in
                               zip(leaves, (flat.reference[s:s + n] for s, n in flat.slices))])
    (scale * reference).backward()
    value = flat.anchor()
    (scale * value).backward()
    assert torch.allclose(value.detach(), reference.detach(), rtol=1e-6)
    for p, g, leaf in zip(params, flat.grads, leaves):
        assert p.grad is g  # the gradient is the parameter's view into the gradient buffer
        assert torch.allclose(p.grad, leaf.grad, rtol=1e-5, atol=1e-7)
    assert torch.equal(params[1].grad, torch.zeros(5))
    assert torch.equal(flat.grad.count_nonzero(), sum(g.count_nonzero() for g in flat.grads))  # padding stays 0


def test_flat_anchor_adds_to_the_models_gradient_and_keeps_the_parameters():
    params, flat = _moved_flat_parameters()
    before = [p.detach().clone() for p in params]
    value = flat.anchor()
    (value + sum((p * p).sum() for p in params)).backward()
    expected = [2 * b + (b - r.view(b.shape)) / (b - r.view(b.shape)).norm().clamp_min(1e-30) * (i != 1)
                for i, (b, r) in enumerate(zip(before, (flat.reference[s:s + n] for s, n in flat.slices)))]
    for p, e in zip(params, expected):
        assert torch.allclose(p.grad, e, rtol=1e-5, atol=1e-6)
    assert all(p.data_ptr() == flat.data[s:].data_ptr() for p, (s, _) in zip(params, flat.slices))


@pytest.mark.parametrize("max_norm", [0.1, 1e6, float("inf")])  # clipping, a norm under the bound, the norm alone
def test_flat_clipping_is_torchs_clip_grad_norm(max_norm):
    params, flat = _moved_flat_parameters()
    flat.attach_gradients()
    with torch.no_grad():
        for g in flat.grads:
            g.copy_(torch.randn_like(g))
    copies = [p.detach().clone().requires_grad_(True) for p in params]
    for c, p in zip(copies, params):
        c.grad = p.grad.clone()
    expected = torch.nn.utils.clip_grad_norm_(copies, max_norm)
    total = flat.clip_grad_norm_(max_norm)
    assert torch.allclose(total, expected, rtol=1e-6)
    for c, p in zip(copies, params):
        assert torch.allclose(p.grad, c.grad, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("overflow", [False, True], ids=["finite", "overflow"])
def test_a_grad_scaler_unscales_clips_and_skips_over_the_flat_buffer_as_over_tensors(overflow):
    """fp16 training (GPU only, so its stand-in here is torch's CPU GradScaler) scales the loss, the anchor's gradient
    with it; the scaler unscales the gradients in place, the step clips them and is skipped where one overflowed."""
    params, flat = _moved_flat_parameters()
    leaves = [p.detach().clone().requires_grad_(True) for p in params]
    references = [flat.reference[s:s + n].view(p.shape) for (s, n), p in zip(flat.slices, params)]
    results = {}
    for name, tensors in (("flat", params), ("per-tensor", leaves)):
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        optimizer = torch.optim.SGD(tensors, lr=0.1)
        before = [t.detach().clone() for t in tensors]
        anchor = flat.anchor() if name == "flat" else weight_anchor([t - r for t, r in zip(leaves, references)])
        scaler.scale(anchor + sum((t * t).sum() for t in tensors)).backward()
        if overflow:
            tensors[2].grad[3] = float("inf")
        scaler.unscale_(optimizer)
        norm = flat.clip_grad_norm_(0.5) if name == "flat" else torch.nn.utils.clip_grad_norm_(leaves, 0.5)
        scaler.step(optimizer)
        scaler.update()
        results[name] = norm, [t.detach().clone() for t in tensors], scaler.get_scale()
        if overflow:  # the step was skipped and the scale halved
            assert all(torch.equal(t, b) for t, b in zip(tensors, before)) and scaler.get_scale() == 512.0
    (norm, weights, scale), (norm_ref, weights_ref, scale_ref) = results["flat"], results["per-tensor"]
    assert scale == scale_ref and (torch.isinf(norm) if overflow else torch.allclose(norm, norm_ref, rtol=1e-5))
    for ours, theirs in zip(weights, weights_ref):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("flat", [True, False], ids=["flat", "per-tensor"])
def test_without_clipping_the_logged_gradient_norm_is_the_trainers(tmp_path, monkeypatch, flat):
    """With ``max_grad_norm=0`` the Trainer still logs the gradient norm, from a walk over every parameter at every
    step: the trainers compute the same figure over the trained parameters."""
    from accelerate import Accelerator
    from transformers import Trainer

    if not flat:
        monkeypatch.setattr(FlatParameters, "supports", staticmethod(lambda params: False))
    logged = {}
    for name in ("ours", "transformers"):
        with monkeypatch.context() as patch:
            if name == "transformers":
                patch.setattr(TextForgetTrainer, "_get_grad_norm", Trainer._get_grad_norm)
            else:
                patch.setattr(Accelerator, "clip_grad_norm_", lambda *a, **k: pytest.fail("walked every parameter"))
            trainer = _trainer(tmp_path / name, max_steps=3, max_grad_norm=0.0, logging_steps=1, beta=1.0)
            assert (trainer._flat is not None) == flat
            trainer.train()
        logged[name] = [row["grad_norm"] for row in trainer.state.log_history if "grad_norm" in row]
    assert len(logged["ours"]) == 3 and all(norm > 0 for norm in logged["ours"])
    assert logged["ours"] == pytest.approx(logged["transformers"], rel=1e-5)


def test_flat_zero_grad_keeps_the_views_and_drops_foreign_gradients():
    params, flat = _moved_flat_parameters()
    flat.anchor().backward()
    params[0].grad = torch.ones_like(params[0])  # replaced by someone else
    flat.zero_grad()
    assert params[0].grad is None and all(p.grad is g for p, g in zip(params[1:], flat.grads[1:]))
    assert not flat.grad.any()
    flat.attach_gradients()
    assert flat.owns_gradients()


@pytest.mark.parametrize("kwargs", [{}, {"gradient_accumulation_steps": 2, "max_grad_norm": 0.05}],
                         ids=["defaults", "accumulated-clipped"])
def test_the_flat_buffer_trains_to_the_per_tensor_weights(tmp_path, monkeypatch, kwargs):
    """Anchor, its gradient, clipping and zeroing over the flat buffer give the weights of the per-tensor path."""
    runs = {}
    for name, flat in (("flat", True), ("per-tensor", False)):
        if not flat:
            monkeypatch.setattr(FlatParameters, "supports", staticmethod(lambda params: False))
        trainer = _trainer(tmp_path / name, max_steps=4, beta=1.0, **kwargs)
        assert (trainer._flat is not None) == flat
        trainer.train()
        runs[name] = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        assert "train" not in vars(trainer.model) and "zero_grad" not in vars(trainer.model)  # removed after train()
    moved = _trainer(tmp_path / "base").model.state_dict()
    assert any(not torch.equal(runs["flat"][n], moved[n]) for n in moved)
    for name, value in runs["per-tensor"].items():
        torch.testing.assert_close(runs["flat"][name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_a_step_after_the_model_was_put_in_eval_mode_trains_in_training_mode(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path, max_steps=3)
    modes = []
    real = TextForgetTrainer.compute_loss

    def spy(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        modes.append(all(m.training for m in model.modules()))
        return real(self, model, inputs, return_outputs, num_items_in_batch)

    class Evaluates(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            model.eval()  # as an evaluation between steps may leave it

    monkeypatch.setattr(TextForgetTrainer, "compute_loss", spy)
    trainer.add_callback(Evaluates())
    trainer.train()
    assert modes == [True, True, True]


def test_a_defended_model_with_flat_parameters_saves_and_loads(tmp_path):
    from transformers import CLIPTextModel

    trainer = _trainer(tmp_path, max_steps=2)
    assert trainer._flat is not None
    trainer.train()
    trainer.save_model(str(tmp_path / "out"))
    loaded = CLIPTextModel.from_pretrained(tmp_path / "out")
    for name, value in trainer.model.state_dict().items():  # the trained model stays on the training device
        assert torch.equal(loaded.state_dict()[name], value.cpu()), name


@pytest.mark.parametrize("cache", [True, False])  # False: the reference protocol, the teacher run under autocast too
def test_a_bf16_autocast_run_trains_in_float32_weights_and_saves_them(tmp_path, mixed_precision_on_cpu, cache):
    """The GPU benchmark's precision (bf16 autocast), run on the CPU with the CUDA-only rule lifted: the flat buffer,
    the anchor and the clipping stay in float32, the logged terms are finite, the saved weights are float32."""
    import json
    import math

    from safetensors.torch import load_file

    trainer = _trainer(tmp_path, bf16=True, use_cpu=True, max_steps=4, logging_steps=2, embedding="both",
                       teacher_cache=cache)
    assert trainer.accelerator.mixed_precision == "bf16"
    assert trainer._flat is not None and trainer._flat.data.dtype == torch.float32
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logged) == 2 and all(math.isfinite(h["loss"]) and math.isfinite(h["grad_norm"]) for h in logged)
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert 0 < trainer.weight_distance().item() and math.isfinite(trainer.forget_metrics()["sim_backdoor"])
    trainer.save_model(str(tmp_path / "saved"))
    assert {t.dtype for t in load_file(str(tmp_path / "saved" / "model.safetensors")).values()} == {torch.float32}
    assert json.loads((tmp_path / "saved" / "config.json").read_text()).get("dtype", "float32") == "float32"
