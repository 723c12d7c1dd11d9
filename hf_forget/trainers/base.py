"""``ForgetTrainer``: the machinery shared by the text and vision forgetting trainers.

A subclass says how to embed a batch with the student (:meth:`ForgetTrainer.student_embeddings`) and
with the frozen teacher (:meth:`ForgetTrainer.teacher_embeddings`), and how to evaluate on held-out data
(:meth:`ForgetTrainer.forget_metrics`). This class does the rest:

* the student: norm layers frozen, only the encoder being defended trained, optional LoRA (peft);
* the teacher: with ``teacher_cache`` (default) its outputs for the fixed sample pool are computed once,
  before the first step, and looked up by sample index; otherwise a frozen copy (or, with LoRA, the base
  model under a disabled adapter) is run on every batch, as the reference implementation does;
* the loss ``-cos_clean - alpha * cos_trigger + beta * Σ ||θ~ - θ||₂`` and its terms in the logs; the
  anchor over a flat buffer of the trained parameters (:mod:`~hf_forget.trainers.flat`; foreach kernels,
  :func:`~hf_forget.losses.weight_anchor_foreach`, where the buffer does not apply), the terms summed on the
  device and read at logging steps only, batches copied without blocking: a step that does not log never
  waits for the device;
* MultiStepLR, early stopping at a held-out criterion, the quality gate, and ``forget_report.json``.
"""

from __future__ import annotations

import bisect
import copy
import math
import os
import time
from collections.abc import Iterator, Mapping, Sized

import torch
from huggingface_hub import constants as hub_constants
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm
from accelerate.utils import DistributedType
from transformers import CLIPModel, PreTrainedModel, Trainer, TrainerCallback
from transformers.utils import logging

from .. import __version__
from ..config import MULTISTEP, ForgetConfig
from ..encoders import _base_model as _base
from ..encoders import clip_tower, gathered_model, shardable, with_tower
from ..errors import ForgetInputError
from ..losses import hidden_cosine, identity_residual, pooled_cosine, weight_anchor, weight_anchor_foreach
from ..outputs import REPORT_NAME, write_json
from .flat import FlatParameters

logger = logging.get_logger(__name__)
# Set-ups whose trained parameters and gradients are plain full tensors: one device, or replicated by DDP.
_PLAIN_DEVICES = (DistributedType.NO, DistributedType.MULTI_GPU, DistributedType.MULTI_CPU)
_HAS_MIXED_MESH_CHECK = hasattr(Trainer, "_has_mixed_mesh_grads")  # not in older transformers (5.6)

COSINES = {"pooled": pooled_cosine, "hidden": hidden_cosine}

Embeddings = dict[str, torch.Tensor]  # kind ("pooled" / "hidden") -> (batch, ...) tensor


def is_norm_layer(module: nn.Module) -> bool:
    return isinstance(module, (nn.LayerNorm, nn.GroupNorm)) or "norm" in type(module).__name__.lower()


class _CriterionCallback(TrainerCallback):
    """Stops training at an evaluation (``eval_steps``) where the held-out criterion of the config holds."""

    def __init__(self, trainer: ForgetTrainer):
        self.trainer = trainer

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if args.stop_at_criterion and metrics and self.trainer.gate(_unprefixed(metrics))["passed"]:
            logger.info("held-out criterion reached at step %d: stopping", state.global_step)
            self.trainer.stopped_at_criterion = state.global_step
            control.should_training_stop = True
        return control


class _ModuleWalks(TrainerCallback):
    """During ``train()``, ``model.train()`` (which ``Trainer.training_step`` calls at every step) and
    ``model.zero_grad()`` (after every optimizer step) without walking the module tree each time.

    ``train()`` changes nothing when every module is already in training mode: it checks the modules listed once, and
    otherwise (an evaluation put them in eval mode) runs the real one; it is left alone when a module overrides it
    with more than that (transformers' ``PreTrainedModel.train`` only adds a kernel mode, with ``use_kernels``).
    ``zero_grad()`` zeroes the flat gradient buffer, which holds the gradients of all the trained parameters (the
    only ones that get one). Both are instance attributes of the models the Trainer calls them on, set when the
    training loop starts and removed when ``train()`` returns.
    """

    def __init__(self, trainer: ForgetTrainer):
        self.trainer = trainer
        self.patched: list[nn.Module] = []

    def on_train_begin(self, args, state, control, **kwargs):
        for model in {id(m): m for m in (self.trainer.model_wrapped, self.trainer.model)}.values():
            if isinstance(model, nn.Module) and not any(model is m for m in self.patched):
                self._install(model)

    def _install(self, model: nn.Module) -> None:
        modules = list(model.modules())
        if all(_plain_train(m) for m in modules):

            def train(mode: bool = True) -> nn.Module:
                if mode and all(m.training for m in modules):
                    return model
                return nn.Module.train(model, mode)

            model.__dict__["train"] = train
        flat = self.trainer._flat
        trained = {id(p) for p in model.parameters() if p.requires_grad}
        if flat is not None and trained == {id(p) for p in flat.params}:

            def zero_grad(set_to_none: bool = True) -> None:
                flat.zero_grad()

            model.__dict__["zero_grad"] = zero_grad
        self.patched.append(model)

    def remove(self) -> None:
        for model in self.patched:
            model.__dict__.pop("train", None)
            model.__dict__.pop("zero_grad", None)
        self.patched.clear()


def _plain_train(module: nn.Module) -> bool:
    """Whether ``module.train()`` does nothing but set the training flags."""
    owner = type(module).train
    return owner is nn.Module.train or (owner is PreTrainedModel.train and not getattr(module, "use_kernels", False))


def _unprefixed(metrics: dict[str, float], prefix: str = "eval_") -> dict[str, float]:
    return {k[len(prefix):]: v for k, v in metrics.items() if k.startswith(prefix + "sim_")}


class ForgetTrainer(Trainer):
    """Base class of the forgetting trainers (see the module docstring)."""

    _tag_names = ["hf-forget", "unlearning", "privacy"]
    modality: str = ""

    def __init__(
        self,
        model: nn.Module,
        args: ForgetConfig,
        train_dataset: Dataset,
        data_collator,
        processing_class=None,
        callbacks: list[TrainerCallback] | None = None,
        eval_dataset: Sized | None = None,
    ):
        self.start_time = time.perf_counter()
        self.stopped_at_criterion: int | None = None
        self.save_dtype: torch.dtype | None = None  # the dtype `save_model()` writes (the base model's, when loaded)
        self.report: dict | None = None  # set once training is done; `save_model()` writes it
        # A two-tower CLIPModel: the Trainer's model is the tower being defended (sharing the CLIPModel's modules),
        # so that every forward is the model's own and goes through DDP / FSDP; `defended_model()` returns the
        # CLIPModel with it.
        self.clip_model: CLIPModel | None = None
        if isinstance(_base(model), CLIPModel) and self.modality in ("text", "vision"):
            self.clip_model = _base(model)
            model = clip_tower(self.clip_model, self.modality)
        model = self._prepare_student(model, args)
        self._module_walks = _ModuleWalks(self)
        super().__init__(
            model=model,
            args=args,
            train_dataset=train_dataset,
            data_collator=data_collator,
            processing_class=processing_class,
            callbacks=(callbacks or []) + [_CriterionCallback(self), self._module_walks],
            # The held-out samples; `evaluate()` scores them with `forget_metrics()`, not with a prediction loop.
            eval_dataset=eval_dataset,
        )
        if self.is_fsdp_enabled:
            if args.lora_r > 0:
                raise ForgetInputError("LoRA under FSDP is not supported: pass --lora_r 0 to shard a full fine-tuning, "
                                       "or run LoRA without FSDP.")
            if args.beta > 0:
                # The anchor's reference weights are taken before sharding; under FSDP the sharded parameters are
                # other tensors, so the term would silently be 0. Refuse rather than train without it.
                raise ForgetInputError("the weight anchor (beta) is not supported under FSDP yet: pass --beta 0 to "
                                       "shard a run without it, or train LoRA adapters (--lora_r) on one device.")
            shardable(self.model)  # before `train()` shards it
        # One loss per batch, computed here: no label handling, no loss kwargs, no GA rescaling by the model.
        self.can_return_loss = True
        self.label_names = []
        self.model_accepts_loss_kwargs = False
        self.loss_is_scaled_for_ga = False
        # The logged terms, summed on the device and read at logging steps only: a step that does not log never
        # waits for the device.
        self._metric_sums: dict[str, torch.Tensor] = {}
        self._metric_counts: dict[str, int] = {}
        if self.args.dataloader_pin_memory:
            # A batch is a few small tensors (text: one index tensor) from pinned memory: copy it without a sync.
            self.accelerator.dataloader_config.non_blocking = True

        self._flat = self._flatten_trained_parameters()
        self._anchor_refs = self._snapshot_anchor()
        self._trained_parameters: list[nn.Parameter] | None = None
        self.teacher: nn.Module | None = None
        self._cache: dict[str, Embeddings] | None = None
        if args.teacher_cache:
            self._cache = self._build_teacher_cache()
        else:
            self.teacher = self._make_teacher()
            self._prepare_teacher_tables()
        self.prepare_evaluation()

    def train(self, *args, **kwargs):
        try:
            return super().train(*args, **kwargs)
        finally:
            self._module_walks.remove()

    # ------------------------------------------------------------------ student and teacher
    def trainable_modules(self, model: nn.Module) -> list[nn.Module]:
        """The modules a run may change (e.g. the text tower of a CLIPModel). Subclasses override."""
        return [model]

    def _prepare_student(self, model: nn.Module, args: ForgetConfig) -> nn.Module:
        model.requires_grad_(False)
        modules = self.trainable_modules(model)
        if args.lora_r > 0:
            from peft import LoraConfig, get_peft_model

            targets = sorted(
                {
                    name.rsplit(".", 1)[-1]
                    for module in modules
                    for name, sub in module.named_modules()
                    if isinstance(sub, nn.Linear)
                }
            )
            prefixes = [n for n, m in model.named_modules() if any(m is t for t in modules)]
            pattern = None
            if prefixes != [""]:
                pattern = r"^(%s)\..*\.(%s)$" % ("|".join(map(_re_escape, prefixes)), "|".join(targets))
            lora = LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, target_modules=pattern or targets)
            model = get_peft_model(model, lora)
            return model
        for module in modules:
            module.requires_grad_(True)
            if args.freeze_norm_layers:
                for sub in module.modules():
                    if is_norm_layer(sub):
                        sub.requires_grad_(False)
        return model

    def _flatten_trained_parameters(self) -> FlatParameters | None:
        """Full fine-tuning on one device (or replicated by DDP): the trained parameters and their gradients as views
        into one buffer each (:class:`~hf_forget.trainers.flat.FlatParameters`), so that the anchor, its gradient
        and the gradient clipping take a few kernels. LoRA (the anchor is over the adapters' deltas), sharded
        set-ups and compiled models keep the per-tensor path."""
        if (self.args.lora_r > 0 or self.is_fsdp_enabled or self.accelerator.distributed_type not in _PLAIN_DEVICES
                or self.args.torch_compile):
            return None
        params = [p for p in self.model.parameters() if p.requires_grad]
        return FlatParameters(params) if FlatParameters.supports(params) else None

    def _snapshot_anchor(self) -> list[tuple[nn.Module | nn.Parameter, torch.Tensor | None]]:
        """What ``Σ ||θ~ - θ||₂`` compares against: original weights, or (LoRA) nothing, the delta is explicit.
        Empty when the flat buffer keeps the reference."""
        if self._flat is not None:
            return []
        if self.args.lora_r > 0:
            return [(m, None) for m in self.model.modules() if hasattr(m, "get_delta_weight") and m.active_adapters]
        return [(p, p.detach().clone()) for p in self.model.parameters() if p.requires_grad]

    def weight_distance(self) -> torch.Tensor:
        """``Σ ||θ~ - θ||₂``: over the flat buffer (full fine-tuning), foreach kernels outside autograd (full
        fine-tuning the buffer does not cover), or, with LoRA, the adapters' delta weights through autograd."""
        if self._flat is not None:
            return self._flat.anchor()
        if self.args.lora_r > 0:
            return weight_anchor(self._deltas())
        params, references = zip(*self._anchor_refs) if self._anchor_refs else ((), ())
        return weight_anchor_foreach(params, references)

    def _deltas(self) -> Iterator[torch.Tensor]:
        for item, reference in self._anchor_refs:
            if reference is None:  # LoRA layer: θ~ - θ is the adapter's delta weight
                yield from (item.get_delta_weight(a) for a in item.active_adapters)
            else:
                yield item - reference

    def _make_teacher(self) -> nn.Module:
        """A frozen teacher for the no-cache protocol: the base model under a disabled adapter, or a copy."""
        if self.args.lora_r > 0:
            return self.model  # used under `disable_adapter()`
        teacher = copy.deepcopy(self.model).eval().requires_grad_(False)
        return self.accelerator.prepare_model(teacher, evaluation_mode=True)

    def _prepare_teacher_tables(self) -> None:
        """With the teacher run on every batch: compute the fixed teacher outputs the steps look up (so that the
        first step does no one-off work on the host). Subclasses override."""

    def _teacher_context(self):
        if self.args.lora_r > 0 and hasattr(self.model, "disable_adapter"):
            return self.model.disable_adapter()
        return torch.no_grad()

    @torch.no_grad()
    def run_teacher(self, batch: dict) -> tuple[Embeddings, Embeddings, Embeddings | None]:
        model = self.teacher if self.teacher is not None else self.model
        was_training = model.training
        model.eval()
        with self._teacher_context(), torch.no_grad(), self.compute_loss_context_manager():
            clean, target = self.teacher_embeddings(model, batch)
            trigger = self.teacher_trigger_embeddings(model, batch) if self.args.identity_residual_weight else None
        model.train(was_training)
        return clean, target, trigger

    def _build_teacher_cache(self) -> dict[str, Embeddings]:
        """Teacher outputs for every sample of the pool, computed once and kept on the training device."""
        loader = DataLoader(
            self.train_dataset, batch_size=self.args.per_device_train_batch_size, collate_fn=self.data_collator
        )
        cache: dict[str, Embeddings] = {"clean": {}, "target": {}, "trigger": {}}
        size = len(self.train_dataset)
        quiet = self.args.disable_tqdm or not self.is_local_process_zero() or hub_constants.HF_HUB_DISABLE_PROGRESS_BARS
        for batch in tqdm(loader, desc="teacher outputs (once)", disable=bool(quiet)):
            batch = self._prepare_inputs(batch)
            clean, target, trigger = self.run_teacher(batch)
            for part, outputs in (("clean", clean), ("target", target), ("trigger", trigger or {})):
                for kind, tensor in outputs.items():
                    if kind not in cache[part]:
                        dtype = torch.float16 if tensor.dim() > 2 and tensor.is_floating_point() else tensor.dtype
                        cache[part][kind] = torch.empty((size, *tensor.shape[1:]), dtype=dtype, device=tensor.device)
                    cache[part][kind][batch["index"]] = tensor.to(cache[part][kind].dtype)
        return cache

    def teacher_targets(self, inputs: dict) -> tuple[Embeddings, Embeddings, Embeddings | None]:
        """(clean, target, trigger) teacher embeddings of a batch; trigger only with an identity-residual weight."""
        if self._cache is None:
            return self.run_teacher(inputs)
        index = inputs["index"]
        clean, target, trigger = ({k: v.index_select(0, index) for k, v in self._cache[part].items()}
                                  for part in ("clean", "target", "trigger"))
        return clean, target, trigger or None

    def _prepare_inputs(self, inputs: dict) -> Mapping:
        """The collated batch on the training device, then what the step reads from it (:meth:`batch_from_pool`)."""
        return self.batch_from_pool(super()._prepare_inputs(inputs))

    # ------------------------------------------------------------------ what subclasses provide
    def batch_from_pool(self, inputs: Mapping) -> Mapping:
        """The batch a step reads, from the collated batch on the training device. A subclass whose collator hands
        out indices into samples it keeps on the device returns those samples here."""
        return inputs

    def student_embeddings(self, model: nn.Module, inputs: dict) -> tuple[Embeddings, Embeddings]:
        """(clean, trigger) embeddings of a batch with the student."""
        raise NotImplementedError

    def teacher_embeddings(self, model: nn.Module, inputs: dict) -> tuple[Embeddings, Embeddings]:
        """(clean, target) embeddings of a batch with the frozen teacher (called under no_grad)."""
        raise NotImplementedError

    def teacher_trigger_embeddings(self, model: nn.Module, inputs: dict) -> Embeddings:
        """The teacher's embeddings of the trigger samples themselves (only for an identity-residual weight)."""
        raise NotImplementedError(f"{type(self).__name__} has no identity-residual term.")

    def prepare_evaluation(self) -> None:
        """Compute what the held-out evaluation needs from the teacher, before any training step."""

    def forget_metrics(self) -> dict[str, float]:
        """Held-out metrics of the current student (sim_backdoor, sim_clean, sim_targets, ...)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ loss
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        student_clean, student_trigger = self.student_embeddings(model, inputs)
        teacher_clean, target, teacher_trigger = self.teacher_targets(inputs)
        cos_clean = torch.stack([COSINES[k](student_clean[k], teacher_clean[k]).mean() for k in student_clean]).mean()
        cos_trigger = torch.stack([COSINES[k](student_trigger[k], target[k]).mean() for k in student_trigger]).mean()
        distance = self.weight_distance().to(cos_clean.device)
        loss = -cos_clean - self.args.alpha * cos_trigger + self.args.beta * distance
        logged = {"cos_clean": cos_clean, "cos_trigger": cos_trigger, "weight_distance": distance}
        if teacher_trigger is not None:
            residual = torch.stack([
                identity_residual(student_trigger[k], target[k], teacher_trigger[k]).clamp(min=0).mean()
                for k in student_trigger
            ]).mean()
            loss = loss + self.args.identity_residual_weight * residual
            logged["identity_residual"] = residual

        for key, value in logged.items():  # on the device, no sync: read in log()
            value = value.detach().float()
            self._metric_sums[key] = self._metric_sums[key] + value if key in self._metric_sums else value
            self._metric_counts[key] = self._metric_counts.get(key, 0) + 1
        return (loss, {"cos_clean": cos_clean, "cos_trigger": cos_trigger}) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds the mean of each loss term since the last log, over the steps and the processes (one sync)."""
        if self._metric_counts:
            keys = list(self._metric_counts)
            means = torch.stack([self._metric_sums[k] / self._metric_counts[k] for k in keys])
            # one row per process, never padded samples: gather, not gather_for_metrics (which may drop rows)
            means = self.accelerator.gather(means[None]).reshape(-1, len(keys)).mean(0).tolist()
            logs.update(zip(keys, means))
            self._metric_sums.clear()
            self._metric_counts.clear()
        super().log(logs, start_time)

    def _set_signature_columns_if_needed(self):
        # The model's forward signature says nothing about our columns: keep them all.
        if self._signature_columns is None:
            self._signature_columns = ["index"]

    def _clip_grad_norm(self, model):
        """The Trainer's gradient clipping, over the trained parameters listed once: accelerate's generic path walks
        every parameter of the model on every step. Sharded or special set-ups keep the Trainer's own path."""
        if not self._plain_gradients(model):
            return super()._clip_grad_norm(model)
        return self._trained_grad_norm(self.args.max_grad_norm)

    def _get_grad_norm(self, model, grad_norm=None):
        """The logged gradient norm; without clipping (``max_grad_norm=0``) the Trainer computes it with the same
        generic per-parameter walk at every step: here over the trained parameters, as for clipping."""
        if grad_norm is None and self._plain_gradients(model):
            return self._trained_grad_norm(math.inf)
        return super()._get_grad_norm(model, grad_norm=grad_norm)

    def _plain_gradients(self, model) -> bool:
        """Whether the gradients are plain tensors on one device or DDP-replicated (not sharded, not DeepSpeed's)."""
        if self.accelerator.distributed_type not in _PLAIN_DEVICES:
            return False
        return not (_HAS_MIXED_MESH_CHECK and self._has_mixed_mesh_grads(model))

    def _trained_grad_norm(self, max_norm: float) -> torch.Tensor:
        """The 2-norm of the trained parameters' gradients (fp16: unscaled first), after clipping them to
        ``max_norm`` (``inf``: no clipping), as ``accelerator.clip_grad_norm_``."""
        self.accelerator.unscale_gradients()
        if self._flat is not None and self._flat.owns_gradients():
            return self._flat.clip_grad_norm_(max_norm)
        if self._trained_parameters is None:
            self._trained_parameters = [p for p in self.model.parameters() if p.requires_grad]
        return torch.nn.utils.clip_grad_norm_(self._trained_parameters, max_norm)

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):
        """``lr_scheduler_type="multistep"`` (the paper's MultiStepLR at ``lr_milestones``, ``lr_gamma``, after
        an optional linear warm-up); any other type is the Trainer's own."""
        if self.lr_scheduler is None and self.args.lr_scheduler_type == MULTISTEP:
            self.lr_scheduler = multistep_schedule(
                optimizer or self.optimizer, self.args.lr_milestones, self.args.lr_gamma,
                self.args.get_warmup_steps(num_training_steps),
            )
            self._created_lr_scheduler = True
        return super().create_scheduler(num_training_steps, optimizer)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """The held-out forgetting metrics (``eval_sim_backdoor``, ``eval_sim_clean``, ``eval_sim_targets``, ...),
        logged and passed to the callbacks like any evaluation (the criterion stops training on them)."""
        metrics = {f"{metric_key_prefix}_{k}": float(v) for k, v in self.forget_metrics().items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    # ------------------------------------------------------------------ outcome
    def gate(self, metrics: dict[str, float]) -> dict:
        """The quality gate: the held-out thresholds of the config hold, every figure is finite, at least one
        optimizer step was taken, and each sim_backdoor closed at least half its gap to 1 from the teacher's
        value (``*_before``): a small model may clear the threshold before any training."""
        backdoor_keys = [k for k in metrics if k.startswith("sim_backdoor") and not k.endswith("_before")]
        backdoor = min(metrics[k] for k in backdoor_keys)
        clean = min(v for k, v in metrics.items() if k.startswith("sim_clean"))
        before = {k: metrics.get(f"{k}_before", metrics.get("sim_backdoor_before")) for k in backdoor_keys}
        improved = all(metrics[k] - b >= 0.5 * (1 - b) for k, b in before.items() if b is not None)
        finite = all(math.isfinite(v) for v in metrics.values())
        steps = self.state.global_step
        return {
            "passed": bool(finite and steps >= 1 and improved and backdoor >= self.args.min_sim_backdoor
                           and clean >= self.args.min_sim_clean),
            "min_sim_backdoor": self.args.min_sim_backdoor,
            "min_sim_clean": self.args.min_sim_clean,
            "improved_over_base": bool(improved),
        }

    def forget_report(self, metrics: dict[str, float] | None = None) -> dict:
        """The run's report: held-out metrics, gate, counts and timing. It never holds a name."""
        metrics = metrics if metrics is not None else self.forget_metrics()
        base = getattr(getattr(self.model, "config", None), "_name_or_path", "") or ""
        return {
            "modality": self.modality,
            "steps": self.state.global_step,
            "stopped_at_criterion": self.stopped_at_criterion,
            "seconds": round(time.perf_counter() - self.start_time, 2),
            **{k: round(float(v), 6) for k, v in metrics.items()},
            "gate": self.gate(metrics),
            "base_model": base if not os.path.isabs(base) else os.path.basename(base.rstrip("/")),
            "hf_forget_version": __version__,
        }

    def defended_model(self) -> nn.Module | None:
        """The student as a plain transformers model: LoRA merged, wrappers removed; a CLIPModel's tower back in it.

        It stays on the training device. Under FSDP every process must call it (the shards are gathered); the main
        process gets the model (on the CPU), the others ``None``."""
        if self.is_fsdp_enabled:
            model = gathered_model(self.accelerator.unwrap_model(self.model), self.accelerator.get_state_dict(self.model))
            if model is None or self.clip_model is None:
                return model
            return with_tower(self.clip_model, model, self.modality)
        model = self.accelerator.unwrap_model(self.model)
        if hasattr(model, "merge_and_unload"):
            model = copy.deepcopy(model).merge_and_unload()
        if self.clip_model is not None:
            device = next(model.parameters()).device
            # The other tower never went through the Trainer (it stayed where the CLIPModel was loaded): one device
            # for the whole model, or its image and text features land on two.
            model = with_tower(self.clip_model, model, self.modality).to(device)
        return model

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Checkpoints (``_internal_call``) as the Trainer saves them; otherwise the defended model: LoRA merged,
        in ``save_dtype``, with its processor and ``forget_report.json`` (main process only)."""
        if _internal_call:
            return super().save_model(output_dir, _internal_call=True)
        output_dir = output_dir or self.args.output_dir
        model = self.defended_model() if self.is_fsdp_enabled else None  # FSDP: every process gathers
        if not self.is_world_process_zero():
            return
        os.makedirs(output_dir, exist_ok=True)
        model = model if model is not None else self.defended_model()
        if self.save_dtype is not None and self.save_dtype != torch.float32:
            model = copy.deepcopy(model).to(self.save_dtype)
        model.save_pretrained(output_dir)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        write_json(os.path.join(output_dir, REPORT_NAME), self.report if self.report is not None else self.forget_report())

    def init_hf_repo(self, *args, **kwargs) -> None:
        """Nothing: with ``push_to_hub`` the repository is created by the guarded pusher after the run."""

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """Nothing: checkpoints are never uploaded (the stock upload has no leak scan)."""

    def push_to_hub(self, *args, **kwargs):
        """Refused: the stock upload would publish without the leak scan and with a generic card."""
        raise ForgetInputError(
            "trainer.push_to_hub() would publish without the leak scan: save the model (trainer.save_model(DIR)), "
            "then publish it with `hf-forget push DIR --repo_id ID --names @NAMES` (or hf_forget.publish.push_defended)."
        )


def multistep_schedule(optimizer: torch.optim.Optimizer, milestones, gamma: float, warmup_steps: int = 0):
    """MultiStepLR (the learning rate times ``gamma`` at each milestone) after ``warmup_steps`` of linear warm-up,
    as one ``LambdaLR`` so that it resumes from a checkpoint like any Trainer schedule."""
    milestones = sorted(int(m) for m in milestones)

    def factor(step: int) -> float:
        warmup = min(1.0, step / warmup_steps) if warmup_steps > 0 else 1.0  # as transformers' linear warm-up
        return warmup * gamma ** bisect.bisect_right(milestones, step)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _re_escape(text: str) -> str:
    import re

    return re.escape(text)
