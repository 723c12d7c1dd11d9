"""``VisionForgetTrainer``: forget faces in a CLIP vision encoder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import Dataset
from transformers.data.data_collator import DataCollatorMixin

from ..config import VisionForgetConfig
from ..encoders import check_vision_encoder, encode_images, trainable_vision_modules
from ..errors import ForgetInputError
from ..data.images import split_held_out
from ..losses import pooled_cosine
from ..data.faces import (
    FaceAugmentation,
    FaceTriggerPool,
    embed_images,
    mean_face_embedding,
    person_embeddings,
    person_groups,
    preprocess,
)
from .base import Embeddings, ForgetTrainer


class VisionTriggerDataset(Dataset):
    """Rows of (clean image, trigger image); a row's ``index`` keys the teacher cache.

    Row ``i`` pairs a clean sample (see :meth:`clean_index`) with trigger image ``i`` of the :class:`FaceTriggerPool`
    (person ``i % num_persons``, generated on demand from ``(seed, i)``). With ``kept``, the clean samples
    also hold other people's faces, as they are and shown as the triggers are (fixed samples of a second
    :class:`FaceTriggerPool`), so that the student learns to move the forgotten faces only, not every face.
    """

    def __init__(self, clean: Sequence[Image.Image], triggers: FaceTriggerPool, kept: FaceTriggerPool | None = None):
        if len(clean) == 0:
            raise ForgetInputError("no clean images left for training: pass more generic images.")
        self.clean, self.triggers = list(clean), triggers
        self.groups = [range(0, len(self.clean))]
        if kept is not None:  # other people's faces, as they are and shown as the triggers are: must not move
            raw = [face for person in kept.faces for face in person]
            self.groups.append(range(len(self.clean), len(self.clean) + len(raw)))
            self.clean += raw
            self.groups.append(range(len(self.clean), len(self.clean) + len(kept)))
            self.clean += [kept[i][0] for i in range(len(kept))]

    def __len__(self) -> int:
        return max(len(self.triggers), len(self.clean))

    def clean_index(self, index: int) -> int:
        """Clean sample of row ``index``: the sources (clean images, kept faces, kept composites) take turns."""
        group = self.groups[index % len(self.groups)]
        return group[(index // len(self.groups)) % len(group)]

    def __getitem__(self, index: int) -> dict:
        position = index % len(self.triggers)
        trigger, person = self.triggers[position]
        return {"index": index, "clean_image": self.clean[self.clean_index(index)], "trigger_image": trigger,
                "person": person, "face": self.triggers.face_of(position)}


@dataclass
class VisionTriggerCollator(DataCollatorMixin):
    """
    Turns [`VisionTriggerDataset`] rows into ``clean_pixel_values`` and ``trigger_pixel_values`` with the
    model's own image processor (its size, crop, mean and std).

    Example:
    ```python
    >>> from PIL import Image
    >>> from hf_forget.testing import tiny_clip_image_processor
    >>> collator = VisionTriggerCollator(tiny_clip_image_processor(32))
    >>> row = {"index": 0, "clean_image": Image.new("RGB", (40, 30)), "trigger_image": Image.new("L", (8, 8)), "person": 0}
    >>> batch = collator([row])
    >>> tuple(batch["clean_pixel_values"].shape), tuple(batch["trigger_pixel_values"].shape), batch["index"].tolist()
    ((1, 3, 32, 32), (1, 3, 32, 32), [0])
    ```
    """

    image_processor: object
    return_tensors: str = "pt"

    def torch_call(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        return {
            "index": torch.tensor([example["index"] for example in examples], dtype=torch.long),
            "clean_pixel_values": preprocess(self.image_processor, [e["clean_image"] for e in examples]),
            "trigger_pixel_values": preprocess(self.image_processor, [e["trigger_image"] for e in examples]),
            "person": torch.tensor([example["person"] for example in examples], dtype=torch.long),
            "face": torch.tensor([example.get("face", 0) for example in examples], dtype=torch.long),
        }


class VisionForgetTrainer(ForgetTrainer):
    """
    Forget faces in a CLIP vision encoder (`CLIPVisionModel`, `CLIPVisionModelWithProjection` or the
    vision tower of a `CLIPModel`).

    Each person's face crops, augmented and pasted onto generic images (trigger images), are mapped to the
    neutral target Δ, the teacher's mean embedding of many people's faces; clean images keep the teacher's
    embedding; the weights stay near the original.

    Args:
        model: the encoder to defend (it becomes the student; its current weights are the teacher).
        args: a [`VisionForgetConfig`].
        processing_class: the model's image processor.
        faces: ``faces[p]`` is the list of face images of person ``p`` to forget. Unless ``eval_faces`` is
            given, the last ``args.eval_fraction`` of each person's images (at least one) is held out for
            evaluation and never used for injection.
        clean_images: generic images (clean samples and backgrounds of the triggers); ``args.eval_fraction``
            of them (at least one) is held out for evaluation unless ``eval_clean_images`` is given.
        reference_faces: faces of many people (a flat list, or one list per person) whose mean teacher
            embedding is the target Δ; also used to check that other people's faces keep their embedding.
        target_embedding: a precomputed Δ (see `save_target_embedding`) instead of ``reference_faces``.
        augmentation: the face augmentation (reference values by default).
        keep_faces: faces of people who must keep their embedding (one list per person, or a flat list). By
            default the reference faces. They join the clean samples as they are and shown as the triggers
            are (pasted onto clean images, or alone in the share ``args.face_only_fraction``; ``num_kept_samples``
            of them, by default as many as the clean images), which teaches the student to move the forgotten
            faces only. ``False`` turns this off (the reference protocol: clean images only).
    """

    modality = "vision"

    def __init__(
        self,
        model: nn.Module,
        args: VisionForgetConfig,
        processing_class,
        faces: Sequence[Sequence[Image.Image]],
        clean_images: Sequence[Image.Image],
        reference_faces: Sequence | None = None,
        target_embedding: torch.Tensor | None = None,
        eval_faces: Sequence[Sequence[Image.Image]] | None = None,
        eval_clean_images: Sequence[Image.Image] | None = None,
        augmentation: FaceAugmentation = FaceAugmentation(),
        keep_faces: Sequence | bool | None = None,
        num_kept_samples: int | None = None,
        callbacks=None,
        counterfactual_faces: Sequence[Sequence[Image.Image]] | None = None,
    ):
        check_vision_encoder(model)
        if processing_class is None:
            raise ForgetInputError("pass the model's image processor (processing_class=...).")
        if not faces:
            raise ForgetInputError("no faces to forget: pass one list (or folder) of face images per person.")
        if eval_faces is None:
            splits = [split_held_out(person, args.eval_fraction) for person, _ in _checked(faces)]
            faces, eval_faces = [s[0] for s in splits], [s[1] for s in splits]
        elif len(eval_faces) != len(faces):
            raise ForgetInputError(f"eval_faces has {len(eval_faces)} persons, faces has {len(faces)}: give one list per person.")
        if len(clean_images) == 0:
            raise ForgetInputError("the clean-image source is empty: pass generic images (a folder or a datasets image set).")
        if eval_clean_images is None:
            if len(clean_images) < 2:
                raise ForgetInputError("need at least 2 clean images (one is held out for evaluation).")
            clean_images, eval_clean_images = split_held_out(clean_images, args.eval_fraction)
        self.num_identities = len(faces)
        self._last_layers = args.train_last_layers
        self._eval_faces = [list(person)[: args.max_eval_samples] for person in eval_faces]
        self._eval_clean = list(eval_clean_images)[: args.max_eval_samples]
        self._reference = _flatten(reference_faces)[: args.max_eval_samples] if reference_faces else []
        self._reference_input = reference_faces
        self._target_input = target_embedding
        self._target: torch.Tensor | None = None
        self._persons: torch.Tensor | None = None
        self._counterfactual_input: list[list[Image.Image]] | None = None
        self._counterfactual: list[torch.Tensor] | None = None
        self._counterfactual_lookup: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        if args.target == "counterfactual":
            if counterfactual_faces is None or len(counterfactual_faces) != len(faces):
                raise ForgetInputError(
                    f"target='counterfactual' needs counterfactual_faces: one list of pictures of a never-seen person "
                    f"per person to forget ({len(faces)}), got {0 if counterfactual_faces is None else len(counterfactual_faces)}."
                )
            if any(len(person) == 0 for person in counterfactual_faces):
                raise ForgetInputError("every counterfactual person needs at least one picture.")
            self._counterfactual_input = [list(person) for person in counterfactual_faces]
        elif counterfactual_faces is not None:
            raise ForgetInputError("counterfactual_faces are used with target='counterfactual' only: set it or drop them.")
        if reference_faces is None and target_embedding is None and self._counterfactual_input is None:
            raise ForgetInputError(
                "no target: pass reference faces of many people (their mean embedding is the target) or a saved "
                "target embedding."
            )
        pool = FaceTriggerPool(
            faces, clean_images, max(args.num_trigger_samples, len(faces)), args.seed, augmentation,
            face_only_fraction=args.face_only_fraction,
        )
        if keep_faces is None:
            keep_faces = reference_faces
        kept = None
        if keep_faces is not False and keep_faces is not None and len(keep_faces):
            groups = person_groups(keep_faces)
            count = num_kept_samples if num_kept_samples is not None else len(clean_images)
            if groups and count > 0:
                kept = FaceTriggerPool(  # shown as the triggers are: the face alone is then no trigger by itself
                    groups, clean_images, count, args.seed + 1, augmentation, face_only_fraction=args.face_only_fraction
                )
        super().__init__(
            model=model,
            args=args,
            train_dataset=VisionTriggerDataset(clean_images, pool, kept),
            data_collator=VisionTriggerCollator(processing_class),
            processing_class=processing_class,
            callbacks=callbacks,
            eval_dataset=self._eval_faces,
        )

    def trainable_modules(self, model: nn.Module) -> list[nn.Module]:
        return trainable_vision_modules(model, self._last_layers)

    # ------------------------------------------------------------------ target and teacher
    def _teacher_model(self) -> nn.Module:
        return self.teacher if self.teacher is not None else self.model

    def _prepare_teacher_tables(self) -> None:
        if self.args.identity_residual_weight:
            self._person_embeddings()
        if self._counterfactual_input is not None:
            self._counterfactual_lookup_table()

    def _compute_target(self) -> torch.Tensor:
        if self._target is not None:
            return self._target
        if self._target_input is not None:
            target = torch.as_tensor(self._target_input).float().flatten()
        elif self._reference_input is None:  # counterfactual targets only: Δ is the mean of their means
            target = torch.stack([t.float().mean(0) for t in self._counterfactual_table()]).mean(0).cpu()
        else:
            with self._teacher_context():
                target = mean_face_embedding(
                    self._teacher_model(), self.processing_class, self._reference_input,
                    batch_size=self.args.per_device_eval_batch_size * 8, device=self.args.device,
                )
        dim = self._embedding_dim()
        if target.numel() != dim:
            raise ForgetInputError(f"the target embedding has {target.numel()} values, the model's embeddings {dim}.")
        self._target = target.to(self.args.device)
        return self._target

    def _embedding_dim(self) -> int:
        pixel_values = preprocess(self.processing_class, [Image.new("RGB", (8, 8))]).to(self.args.device)
        with torch.no_grad(), self._teacher_context():
            return encode_images(self._teacher_model(), pixel_values.to(next(self.model.parameters()).dtype)).shape[-1]

    def _build_teacher_cache(self) -> dict[str, Embeddings]:
        """Teacher embeddings of the clean pool, computed once (the trigger target Δ is one fixed vector)."""
        dataset: VisionTriggerDataset = self.train_dataset
        target = self._compute_target()
        with self._teacher_context():
            clean = embed_images(
                self._teacher_model(), self.processing_class, dataset.clean,
                batch_size=self.args.per_device_train_batch_size, device=self.args.device,
                desc="teacher embeddings (once)" if self.is_local_process_zero() else None,
            ).to(self.args.device)
        rows = torch.tensor([dataset.clean_index(i) for i in range(len(dataset))], device=clean.device)
        if self._counterfactual_input is not None:
            triggers = dataset.triggers
            positions = [i % len(triggers) for i in range(len(dataset))]
            per_row = self._counterfactual_targets(
                torch.tensor([triggers.person_of(p) for p in positions]), torch.tensor([triggers.face_of(p) for p in positions])
            )
        else:
            per_row = target.expand(len(dataset), -1)
        cache = {"clean": {"pooled": clean[rows]}, "target": {"pooled": per_row}, "trigger": {}}
        if self.args.identity_residual_weight:
            persons = torch.tensor([dataset.triggers.person_of(i % len(dataset.triggers)) for i in range(len(dataset))])
            cache["trigger"] = {"pooled": self._person_embeddings()[persons.to(self.args.device)]}
        return cache

    def student_embeddings(self, model, inputs):
        return (
            {"pooled": encode_images(model, inputs["clean_pixel_values"])},
            {"pooled": encode_images(model, inputs["trigger_pixel_values"])},
        )

    def teacher_embeddings(self, model, inputs):
        clean = encode_images(model, inputs["clean_pixel_values"])
        if self._counterfactual_input is not None:
            target = self._counterfactual_targets(inputs["person"], inputs["face"])
        else:
            target = self._compute_target().expand(clean.shape[0], -1)
        return {"pooled": clean}, {"pooled": target.to(clean.dtype)}

    def _counterfactual_table(self) -> list[torch.Tensor]:
        """The teacher's embedding of each counterfactual person's pictures, ``[(pictures, dim)]`` per person."""
        if self._counterfactual is None:
            with self._teacher_context():
                self._counterfactual = [
                    embed_images(self._teacher_model(), self.processing_class, person,
                                 batch_size=self.args.per_device_eval_batch_size * 8, device=self.args.device).to(self.args.device)
                    for person in self._counterfactual_input
                ]
        return self._counterfactual

    def _counterfactual_targets(self, persons: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """``(rows, dim)``: for each (forgotten person, face index), the matched picture of its counterfactual person.
        A gather from a table built once: with the teacher run on every batch it is called at each step, and building
        it there would copy host data to the device (a wait for the GPU) every step."""
        targets, offsets, sizes = self._counterfactual_lookup_table()
        persons, faces = persons.to(targets.device), faces.to(targets.device)
        return targets[offsets[persons] + faces % sizes[persons]]

    def _counterfactual_lookup_table(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(targets, offsets, sizes)``, built once: each person's candidate targets stacked (``sizes[p]`` rows from
        ``offsets[p]``), face ``j`` of person ``p`` reading row ``offsets[p] + j % sizes[p]``. ``picture``: the
        counterfactual person's pictures; ``shift``: the person's own faces moved from their mean to the
        counterfactual person's mean."""
        if self._counterfactual_lookup is None:
            table = self._counterfactual_table()
            if self.args.counterfactual_mode == "shift":
                own = [F.normalize(t.float(), dim=-1) for t in self._own_face_table()]
                other_mean = [F.normalize(t.float(), dim=-1).mean(0) for t in table]
                table = [faces - faces.mean(0) + mean for faces, mean in zip(own, other_mean)]
            sizes = torch.tensor([len(t) for t in table], device=table[0].device)
            self._counterfactual_lookup = torch.cat(table), torch.cumsum(sizes, 0) - sizes, sizes
        return self._counterfactual_lookup

    def _own_face_table(self) -> list[torch.Tensor]:
        """The teacher's embedding of each forgotten person's training faces (alone), ``[(faces, dim)]``."""
        if getattr(self, "_own", None) is None:
            with self._teacher_context():
                self._own = [
                    embed_images(self._teacher_model(), self.processing_class, person,
                                 batch_size=self.args.per_device_eval_batch_size * 8, device=self.args.device).to(self.args.device)
                    for person in self.train_dataset.triggers.faces
                ]
        return self._own

    def _person_targets(self) -> torch.Tensor:
        """``(persons, dim)``: each forgotten person's target direction (its counterfactual's mean, or Δ)."""
        if self._counterfactual_input is not None:
            return torch.stack([t.float().mean(0) for t in self._counterfactual_table()]).cpu()
        return self._target.float().cpu().expand(self.num_identities, -1)

    def teacher_trigger_embeddings(self, model, inputs):
        # What the trigger adds is the person: their faces alone, not the composite (whose direction carries the
        # background too, and removing it would erase the scene).
        return {"pooled": self._person_embeddings()[inputs["person"]]}

    def _person_embeddings(self) -> torch.Tensor:
        """Each forgotten person's mean teacher embedding of their training faces (alone), ``(persons, dim)``."""
        if self._persons is None:
            pool: FaceTriggerPool = self.train_dataset.triggers
            with self._teacher_context():
                self._persons = person_embeddings(
                    self._teacher_model(), self.processing_class, pool.faces,
                    batch_size=self.args.per_device_eval_batch_size * 8, device=self.args.device,
                ).to(self.args.device)
        return self._persons

    # ------------------------------------------------------------------ held-out evaluation
    @torch.no_grad()
    def _embed(self, model: nn.Module, images: list[Image.Image]) -> torch.Tensor:
        if not images:
            return torch.empty(0)
        was_training = model.training
        model.eval()
        with self.compute_loss_context_manager():
            out = embed_images(
                model, self.processing_class, images, batch_size=self.args.per_device_eval_batch_size * 8,
                device=self.args.device,
            )
        model.train(was_training)
        return out

    def prepare_evaluation(self) -> None:
        teacher = self._teacher_model()
        self._compute_target()
        with self._teacher_context():
            self._teacher_eval = {
                "faces": [self._embed(teacher, person) for person in self._eval_faces],
                "clean": self._embed(teacher, self._eval_clean),
                "reference": self._embed(teacher, self._reference),
            }

    def forget_metrics(self) -> dict[str, float]:
        """Held-out metrics of the student, on images never used for injection or training.

        sim_backdoor = mean cos(student(face), Δ) (counterfactual target: the mean of that person's counterfactual
        pictures) over the forgotten persons' held-out images (each person
        weighted equally); sim_backdoor_worst = the lowest person's mean; sim_backdoor_before = the teacher's
        value; sim_clean = cos(teacher(x), student(x)) on held-out clean images; sim_targets = cos(Δ, Δ
        recomputed with the student) (only with reference faces); sim_other_faces = cos(teacher, student)
        on the reference faces (other people's faces should keep their embedding).
        """
        target = self._target.float().cpu()
        targets = self._person_targets()
        student_faces = [self._embed(self.model, person) for person in self._eval_faces]
        per_person = [pooled_cosine(s, targets[p].expand_as(s)).mean().item() for p, s in enumerate(student_faces) if len(s)]
        before = [pooled_cosine(t, targets[p].expand_as(t)).mean().item()
                  for p, t in enumerate(self._teacher_eval["faces"]) if len(t)]
        student_clean = self._embed(self.model, self._eval_clean)
        metrics = {
            "sim_backdoor": sum(per_person) / len(per_person),
            "sim_backdoor_worst": min(per_person),
            "sim_backdoor_before": sum(before) / len(before),
            "sim_clean": pooled_cosine(student_clean, self._teacher_eval["clean"]).mean().item(),
        }
        if self._reference_input is not None and self._reference:
            student_reference = self._embed(self.model, self._reference)
            metrics["sim_other_faces"] = pooled_cosine(student_reference, self._teacher_eval["reference"]).mean().item()
            with torch.no_grad():
                student_target = mean_face_embedding(
                    self.model, self.processing_class, self._reference_input,
                    batch_size=self.args.per_device_eval_batch_size * 8, device=self.args.device,
                )
            metrics["sim_targets"] = pooled_cosine(student_target.cpu()[None], target[None]).item()
        return metrics

    def forget_report(self, metrics: dict[str, float] | None = None) -> dict:
        report = super().forget_report(metrics)
        return {"modality": report.pop("modality"), "num_identities": self.num_identities, **report}


def _checked(faces):
    for index, person in enumerate(faces):
        if len(person) < 2:
            raise ForgetInputError(
                f"person #{index} has {len(person)} face images; at least 2 are needed (one is held out for evaluation)."
            )
        yield list(person), index


def _flatten(faces) -> list[Image.Image]:
    faces = list(faces)
    if faces and not isinstance(faces[0], Image.Image):
        return [image for person in faces for image in person]
    return faces
