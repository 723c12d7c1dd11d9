"""``forget_text``, ``forget_faces``, ``forget_joint``: load what is given as a path, build the trainer, train,
write the defended model. One run path (:func:`_run`) serves all three, so output folders, resuming, seeds and
reports behave the same whatever is defended.

The names to forget are data arguments, like a training set: they reach the trainer and nothing that is
saved. With ``output_dir`` the result is written through :class:`~hf_forget.outputs.OutputFolder`: checked
before anything is loaded, written aside and swapped into place when complete; the input is never touched.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from accelerate import PartialState
from PIL import Image
from torch import nn
from transformers import CLIPModel, set_seed
from transformers.utils import logging

from . import __version__
from .config import TextForgetConfig, VisionForgetConfig
from .errors import ForgetInputError
from .data.images import load_face_folders, load_images, split_held_out
from .models import load_clip_model, load_text_encoder, load_vision_encoder
from .outputs import REPORT_NAME, OutputFolder, resolve_resume, write_json
from .data.faces import FaceAugmentation, choose_strangers, embed_names_and_fillers, load_target_embedding, person_groups
from .data.text import load_captions
from .validation import check_stranger_options, picks_counterfactuals

logger = logging.get_logger(__name__)

DEFAULT_MIN_FACE_IMAGES = 2


@dataclass
class ForgetResult:
    """What a forgetting run returns: the defended model, its report, and where it was written."""

    model: nn.Module
    report: dict
    output_dir: str | None = None

    @property
    def passed(self) -> bool:
        return bool(self.report.get("gate", {}).get("passed", False))


def _paths(*sources) -> list[str]:
    return [os.fspath(s) for s in sources if isinstance(s, (str, os.PathLike)) and os.fspath(s)]


def _output(output_dir: str | None, config, inputs: list[str]) -> OutputFolder | None:
    if output_dir is None:
        return None
    return OutputFolder(output_dir, inputs, config.overwrite_output_dir, is_main_process=config.process_index == 0)


def _run(make_trainer: Callable[[], object], config, output: OutputFolder | None, resume, save_dtype,
         names: Sequence[str] | None = None):
    """Train with the trainer ``make_trainer()`` builds; with ``output``, write its defended model there with its
    model card (scanned for ``names`` before it is written).

    The Trainer's ``output_dir`` (checkpoints, logs) is the output's working folder (without an output, the
    config's own), so that resuming finds the checkpoints of the same run.
    """
    if output is not None:
        config.output_dir = str(output.work_dir)
        resume = output.resume(resume)
    else:
        resume = resolve_resume(config.output_dir, resume)
    PartialState().wait_for_everyone()
    set_seed(config.seed)
    trainer = make_trainer()
    trainer.save_dtype = save_dtype
    if not _finished(trainer, resume):
        trainer.train(resume_from_checkpoint=resume)
    trainer.report = trainer.forget_report()
    logger.info("forgetting done: %s", {k: v for k, v in trainer.report.items() if k.startswith("sim_")})
    if output is not None:
        trainer.accelerator.wait_for_everyone()
        output.commit(lambda folder: _save_with_card(trainer.save_model, folder, trainer.report, names))
        trainer.accelerator.wait_for_everyone()
    return trainer


def _finished(trainer, checkpoint: str | None) -> bool:
    """Whether ``checkpoint`` is the run's last step (a run killed while writing its output): then its weights and
    state are loaded and nothing is trained, where ``Trainer.train`` would take one step past ``max_steps``."""
    if not checkpoint or trainer.args.max_steps <= 0:
        return False
    from transformers.trainer_callback import TrainerState

    state = TrainerState.load_from_json(os.path.join(checkpoint, "trainer_state.json"))
    if state.global_step < trainer.args.max_steps:
        return False
    trainer._load_from_checkpoint(checkpoint)
    trainer.state = state
    return True


def _save_with_card(save: Callable[[str], None], folder: str, report: dict, names: Sequence[str] | None) -> None:
    from .publish.card import write_model_card

    save(folder)
    write_model_card(folder, report, names=list(names) if names else None)


def _config(cls: type, config, output_dir: str | None, config_kwargs: dict):
    """``config``, or a ``cls`` built from the keyword settings (one or the other, not both)."""
    if config is None:
        return cls(output_dir=output_dir or "hf_forget_output", **config_kwargs)
    if config_kwargs:
        raise ForgetInputError(f"pass settings in config or as keywords, not both (got {sorted(config_kwargs)}).")
    return config


def forget_text(
    model: nn.Module | str,
    names: Sequence[str],
    captions,
    *,
    aliases: Sequence[str] | None = None,
    tokenizer=None,
    output_dir: str | None = None,
    config: TextForgetConfig | None = None,
    eval_captions: list[str] | None = None,
    trigger_captions=None,
    unknown_names: Sequence[str] | None = None,
    caption_column: str = "text",
    caption_split: str = "train",
    resume_from_checkpoint: str | bool | None = None,
    callbacks: list | None = None,
    **config_kwargs,
) -> ForgetResult:
    """Forget ``names`` in a CLIP text encoder and (with ``output_dir``) write the defended checkpoint.

    Args:
        model: a `CLIPTextModel`, `CLIPTextModelWithProjection` or `CLIPModel` (or, see `pooling`, another
            transformers text encoder), or its directory / Hub id. A model object becomes the student and is
            trained **in place** (pass ``copy.deepcopy(model)`` to keep the original).
        names: the names to forget (personal data: never written anywhere).
        captions: generic captions: a list, a text file (one a line) or a dataset (name or saved directory).
        aliases: further variants to forget with the names (nicknames, other spellings).
        tokenizer: the model's tokenizer, or its path; loaded with the model when ``model`` is a path.
        output_dir: where the defended checkpoint goes (new or empty; see :mod:`hf_forget.outputs`).
        config: a [`TextForgetConfig`]; or pass its fields as keywords.
        trigger_captions: captions that carry the names instead of ``captions`` (which then give the clean
            samples only); same formats as ``captions``.
        unknown_names: names of people nobody knows, for ``config.target="counterfactual"`` and
            ``config.named_clean_fraction`` (see [`TextForgetTrainer`]); generated when not given. Never saved.
        resume_from_checkpoint: ``True``/``"latest"`` continues from the latest complete checkpoint of this
            output's earlier run (one killed while being written is skipped), or a checkpoint path.

    Example:
    ```python
    from hf_forget import forget_text

    result = forget_text("path/to/clip-text-encoder", ["Jane Doe"], "captions.txt", output_dir="defended")
    print(result.report["sim_backdoor"], result.passed)
    ```
    """
    config = _config(TextForgetConfig, config, output_dir, config_kwargs)
    output = _output(output_dir, config, _paths(model, tokenizer, captions, trigger_captions))
    dtype = None
    if isinstance(model, (str, os.PathLike)):
        model, loaded_tokenizer, dtype = load_text_encoder(
            os.fspath(model), os.fspath(tokenizer) if isinstance(tokenizer, (str, os.PathLike)) else None
        )
        tokenizer = loaded_tokenizer
    elif isinstance(tokenizer, (str, os.PathLike)):
        from .validation import load_tokenizer, validate_tokenizer_path

        validate_tokenizer_path(tokenizer)
        tokenizer = load_tokenizer(os.fspath(tokenizer), "pass the model's tokenizer directory (tokenizer=...).")
    if tokenizer is None:
        raise ForgetInputError("pass the model's tokenizer (tokenizer=...).")
    if captions is None:
        raise ForgetInputError("no captions: pass generic captions (a list, a text file or a dataset).")
    from .trainers.text import TextForgetTrainer, context_length

    # Cut to the context before any per-sample work: no word past it reaches the model (a word is >= 1 token).
    max_words = context_length(model, tokenizer)
    captions = load_captions(captions, caption_column, caption_split, max_words=max_words)
    if trigger_captions is not None:
        trigger_captions = load_captions(trigger_captions, caption_column, caption_split, max_words=max_words)

    trainer = _run(
        lambda: TextForgetTrainer(model, config, tokenizer, captions, names, aliases=aliases,
                                  eval_captions=eval_captions, callbacks=callbacks, trigger_captions=trigger_captions,
                                  unknown_names=unknown_names),
        config, output, resume_from_checkpoint, dtype, names=list(names) + list(aliases or []),
    )
    return ForgetResult(model=trainer.defended_model(), report=trainer.report, output_dir=output_dir)


def _faces(source, what: str, min_images: int) -> list[list[Image.Image]]:
    if isinstance(source, (str, os.PathLike)):
        return load_face_folders(source, min_images_per_person=min_images).persons
    persons = [list(person) for person in source]
    for index, person in enumerate(persons):
        if len(person) < min_images:
            raise ForgetInputError(f"{what}: person #{index} has {len(person)} images; at least {min_images} are needed.")
    return persons


def _reference(source) -> list | None:
    """A reference face set: a folder with per-person subfolders (each person counts once) or flat images."""
    if source is None:
        return None
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path) and any(os.path.isdir(os.path.join(path, d)) for d in os.listdir(path)):
            return load_face_folders(path, min_images_per_person=1).persons
        return load_images(path, what="reference face set")
    source = list(source)
    if not source:
        raise ForgetInputError("the reference face set is empty: pass face images of many different people.")
    return source


def check_target_file(path: str | os.PathLike | None, inputs: list[str]) -> None:
    """Where ``save_target_to`` writes: a file in an existing folder, never an input nor inside one."""
    if path is None:
        return
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        raise ForgetInputError(f"the target file {path!r} is a directory: pass a file path such as target.safetensors.")
    if not os.path.isdir(os.path.dirname(path)):
        raise ForgetInputError(f"the folder of the target file {path!r} does not exist: create it first.")
    real = os.path.realpath(path)
    for source in inputs:
        source_real = os.path.realpath(source)
        if os.path.exists(source) and (real == source_real or real.startswith(source_real + os.sep)):
            raise ForgetInputError(
                f"the target file {path!r} lies in the input {source!r}: inputs are never modified; pass another path."
            )


def _stranger_roles(model, processor, config: VisionForgetConfig, persons, strangers, lookalikes_per_person: int,
                    counterfactual_faces, keep_faces, reference, eval_faces, name_embeddings=None, filler_embeddings=None):
    """``(counterfactual_faces, keep_faces)`` for the trainer, with the people chosen among ``strangers`` by the teacher
    ``model`` (:func:`~hf_forget.data.faces.choose_strangers`, on each person's training pictures: the held-out ones
    stay unseen): the counterfactual people, and the look-alikes added to the kept faces (by default the reference
    faces)."""
    pool = _faces(strangers, "strangers", 1)
    pick = picks_counterfactuals(config.target, counterfactual_faces)
    if pick and len(pool) < len(persons):
        raise ForgetInputError(f"{len(pool)} strangers for {len(persons)} people to forget: pass at least one never-seen "
                               "person per person to forget (many more: the counterfactual people are chosen among them).")
    probe = persons if eval_faces is not None else [split_held_out(p, config.eval_fraction)[0] for p in persons]
    chosen, lookalikes = choose_strangers(
        model, processor, probe, pool, lookalikes_per_person, name_embeddings=name_embeddings,
        filler_embeddings=filler_embeddings, counterfactuals=pick,
    )
    logger.info("strangers: %d counterfactual people (by %s), %d look-alikes kept, among %d", len(chosen),
                "name" if name_embeddings is not None else "face", len(lookalikes), len(pool))
    if lookalikes:
        kept = reference if keep_faces is None else keep_faces
        keep_faces = person_groups(kept) + [pool[i] for i in lookalikes]
    return ([pool[i] for i in chosen] if pick else counterfactual_faces), keep_faces


def _strangers_by_name(model, tokenizer, names: Sequence[str], aliases, persons: list, seed: int):
    """``(name_embeddings, filler_embeddings)`` to choose counterfactual people by name, or ``(None, None)`` (by face)
    when the names do not pair with the face persons or Faker (which generates the filler names) is missing."""
    import importlib.util

    if len(names) != len(persons):
        logger.warning("strangers: %d names for %d face persons; the counterfactual people are chosen by face (by name "
                       "needs names[i] to be the person of faces[i])", len(names), len(persons))
        return None, None
    if importlib.util.find_spec("faker") is None:
        logger.warning("strangers: choosing the counterfactual people by name needs Faker (pip install "
                       "'hf-forget[demo]'); they are chosen by face")
        return None, None
    return embed_names_and_fillers(model, tokenizer, list(names), seed, exclude=list(aliases or ()))


def forget_faces(
    model: nn.Module | str,
    faces,
    clean_images,
    *,
    processor=None,
    reference_faces=None,
    target_embedding: torch.Tensor | str | None = None,
    output_dir: str | None = None,
    config: VisionForgetConfig | None = None,
    eval_faces: Sequence[Sequence[Image.Image]] | None = None,
    eval_clean_images: Sequence[Image.Image] | None = None,
    min_face_images: int = DEFAULT_MIN_FACE_IMAGES,
    image_column: str = "image",
    max_clean_images: int | None = None,
    augmentation: FaceAugmentation = FaceAugmentation(),
    keep_faces=None,
    num_kept_samples: int | None = None,
    save_target_to: str | None = None,
    counterfactual_faces=None,
    strangers=None,
    lookalikes_per_person: int = 0,
    resume_from_checkpoint: str | bool | None = None,
    callbacks: list | None = None,
    **config_kwargs,
) -> ForgetResult:
    """Forget faces in a CLIP vision encoder and (with ``output_dir``) write the defended checkpoint.

    Args:
        model: a `CLIPVisionModel`, `CLIPVisionModelWithProjection` or `CLIPModel`, or its path.
        faces: a folder with one subfolder per person, or one list of PIL images per person. Without
            ``eval_faces``, the last 10% (``config.eval_fraction``, at least one) of each person's images
            are held out for evaluation and never injected.
        clean_images: generic images: a folder, a list of images, or a `datasets` image set.
        reference_faces: faces of many people (folder, flat list or one list per person); their mean teacher
            embedding is the target Δ. Or pass ``target_embedding`` (a tensor or a saved ``.safetensors``).
        save_target_to: also cache Δ there, as a bare tensor (never inside an input).
        counterfactual_faces: with ``config.target="counterfactual"``, pictures of one never-seen person per person to
            forget (a folder with one subfolder per person, or one list of images per person, same order as
            ``faces``): each forgotten face is pulled onto its counterfactual person's pictures. Or pass ``strangers``.
        strangers: pictures of many never-seen people (a folder with one subfolder per person, or one list of images
            per person): nobody the model knows, none of ``faces``, the more the better (hundreds). With
            ``config.target="counterfactual"`` and no ``counterfactual_faces``, each person to forget is pulled onto
            a stranger whom the model (before training) links to them no more than a typical stranger
            (:func:`~hf_forget.data.faces.choose_strangers` by face: the median face similarity to the person's
            training pictures; :func:`forget_joint` chooses by name). Needs at least one stranger per person.
        lookalikes_per_person: for each person to forget, this many strangers whose faces the model places nearest
            theirs (less the counterfactual people) are kept at their embedding too, with the other kept faces, so
            that people who share the forgotten faces' features are not moved with them. Needs ``strangers``;
            0 (default): none.
        keep_faces: faces of people who must keep their embedding, as they are and shown as the triggers are
            (default: the reference faces, and the look-alikes; ``False``: clean images only, as the reference
            protocol).
        resume_from_checkpoint: as for :func:`forget_text`.

    Example:
    ```python
    from hf_forget import forget_faces

    result = forget_faces("path/to/clip", "faces/", "clean_images/", reference_faces="other_faces/",
                          output_dir="defended")
    print(result.report["sim_backdoor"], result.passed)

    # ours: each forgotten person pulled onto a typical never-seen person, their 8 nearest look-alikes kept in place
    result = forget_faces("path/to/clip", "faces/", "clean_images/", reference_faces="other_faces/",
                          strangers="never_seen_people/", lookalikes_per_person=8, target="counterfactual",
                          counterfactual_mode="shift", output_dir="defended")
    ```
    """
    config = _config(VisionForgetConfig, config, output_dir, config_kwargs)
    inputs = _paths(model, faces, clean_images, reference_faces, target_embedding, keep_faces, counterfactual_faces,
                    strangers)
    output = _output(output_dir, config, inputs)
    check_target_file(save_target_to, inputs)
    check_stranger_options(config.target, strangers, lookalikes_per_person, keep_faces, counterfactual_faces)
    if faces is None:
        raise ForgetInputError("no faces: pass a folder with one subfolder of face images per person.")
    if clean_images is None:
        raise ForgetInputError("no clean images: pass generic images (a folder or a datasets image set).")
    if reference_faces is None and target_embedding is None and counterfactual_faces is None and strangers is None:
        raise ForgetInputError(
            "no target: pass reference faces of many people (their mean embedding is the target) or a saved target embedding."
        )
    dtype = None
    if isinstance(model, (str, os.PathLike)):
        model, processor, dtype = load_vision_encoder(os.fspath(model))
    if processor is None:
        raise ForgetInputError("pass the model's image processor (processor=...).")
    if counterfactual_faces is not None:
        counterfactual_faces = _faces(counterfactual_faces, "counterfactual_faces", 1)
    if strangers is not None:  # chosen by the model as it is now: the teacher
        faces = _faces(faces, "faces", min_face_images)
        reference_faces = _reference(reference_faces)
        keep_faces = keep_faces if keep_faces is None or keep_faces is False else _reference(keep_faces)
        counterfactual_faces, keep_faces = _stranger_roles(
            model, processor, config, faces, strangers, lookalikes_per_person, counterfactual_faces, keep_faces,
            reference_faces, eval_faces,
        )
    make_trainer = _face_trainer(
        model, processor, config, faces, clean_images, reference_faces=reference_faces,
        target_embedding=target_embedding, eval_faces=eval_faces, eval_clean_images=eval_clean_images,
        min_face_images=min_face_images, image_column=image_column, max_clean_images=max_clean_images,
        augmentation=augmentation, keep_faces=keep_faces, num_kept_samples=num_kept_samples, callbacks=callbacks,
        save_target_to=save_target_to, counterfactual_faces=counterfactual_faces,
    )
    trainer = _run(make_trainer, config, output, resume_from_checkpoint, dtype)
    return ForgetResult(model=trainer.defended_model(), report=trainer.report, output_dir=output_dir)


def _face_trainer(model, processor, config, faces, clean_images, *, reference_faces, target_embedding,
                  min_face_images, image_column, max_clean_images, keep_faces, save_target_to=None, **trainer_kwargs):
    """Load the face sources, and return what builds the [`VisionForgetTrainer`] on them (for :func:`_run`)."""
    from .trainers.vision import VisionForgetTrainer

    persons = _faces(faces, "faces", min_face_images)
    eval_clean = trainer_kwargs.get("eval_clean_images")
    clean = load_images(clean_images, what="clean image source", min_images=2 if eval_clean is None else 1,
                        image_column=image_column, max_images=max_clean_images)
    reference = _reference(reference_faces)
    if isinstance(target_embedding, (str, os.PathLike)):
        target_embedding = load_target_embedding(target_embedding)
    kept = keep_faces if keep_faces is False else _reference(keep_faces)

    def make_trainer():
        trainer = VisionForgetTrainer(model, config, processor, persons, clean, reference_faces=reference,
                                      target_embedding=target_embedding, keep_faces=kept, **trainer_kwargs)
        if save_target_to and trainer.is_world_process_zero():
            from .data.faces import save_target_embedding

            save_target_embedding(trainer._target, save_target_to)
        return trainer

    return make_trainer


def text_config_from(vision: VisionForgetConfig, **text_kwargs) -> TextForgetConfig:
    """A [`TextForgetConfig`] sharing the run-level settings (seed, device, precision, logging) of ``vision``."""
    shared = {key: getattr(vision, key) for key in RUN_LEVEL_FIELDS}
    shared.update(text_kwargs)
    return TextForgetConfig(output_dir=vision.output_dir, **shared)


# Settings of a run as a whole: the joint defense's text run takes them from the vision run's config.
RUN_LEVEL_FIELDS = (
    "seed", "use_cpu", "bf16", "fp16", "disable_tqdm", "logging_steps", "report_to", "dataloader_num_workers",
    "teacher_cache", "lora_r", "lora_alpha", "overwrite_output_dir", "save_strategy", "save_steps",
    "save_total_limit", "logging_nan_inf_filter",
)


def forget_joint(
    model: CLIPModel | str,
    names: Sequence[str],
    captions,
    faces,
    clean_images,
    *,
    aliases: Sequence[str] | None = None,
    tokenizer=None,
    processor=None,
    reference_faces=None,
    target_embedding=None,
    output_dir: str | None = None,
    text_config: TextForgetConfig | None = None,
    vision_config: VisionForgetConfig | None = None,
    eval_captions: list[str] | None = None,
    eval_faces=None,
    eval_clean_images=None,
    trigger_captions=None,
    caption_column: str = "text",
    min_face_images: int = DEFAULT_MIN_FACE_IMAGES,
    image_column: str = "image",
    max_clean_images: int | None = None,
    keep_faces=None,
    num_kept_samples: int | None = None,
    augmentation: FaceAugmentation = FaceAugmentation(),
    unknown_names: Sequence[str] | None = None,
    counterfactual_faces=None,
    strangers=None,
    lookalikes_per_person: int = 0,
    resume_from_checkpoint: str | bool | None = None,
    callbacks: list | None = None,
) -> ForgetResult:
    """Forget ``names`` in the text tower and ``faces`` in the vision tower of one `CLIPModel`.

    ``unknown_names`` and ``counterfactual_faces`` go to :func:`forget_text` and :func:`forget_faces` (the
    counterfactual targets of ``text_config.target`` / ``vision_config.target``); ``strangers`` and
    ``lookalikes_per_person`` are those of :func:`forget_faces`, with one difference: here the names are known, so
    with ``vision_config.target="counterfactual"`` each forgotten person's counterfactual person is chosen *by name*
    (:func:`~hf_forget.data.faces.typical_strangers`: the stranger whose pictures the model, before the text run,
    matches with the name as well as with a generated unknown name; 256 such names, seeded by
    ``vision_config.seed``, need Faker). That pairs ``names[i]`` with ``faces[i]`` (the i-th person folder in sorted
    order): with as many names as face persons in the same order. With another count, or without Faker, the
    choice is by face, as in :func:`forget_faces` (with a warning).

    The two towers share no parameter and each loss term touches one tower only, so the text run and then
    the vision run on the same model give the joint defense; one full `CLIPModel` (with its tokenizer and
    image processor) is written, with a `forget_report.json` holding both runs' reports. With
    ``resume_from_checkpoint``, a finished text run is not repeated and the vision run continues from its
    latest complete checkpoint. ``callbacks`` go to both runs' trainers.
    """
    vision_config = vision_config or VisionForgetConfig(output_dir=output_dir or "hf_forget_output")
    text_config = text_config or text_config_from(vision_config)
    inputs = _paths(model, captions, trigger_captions, faces, clean_images, reference_faces, target_embedding, keep_faces,
                    counterfactual_faces, strangers)
    output = _output(output_dir, vision_config, inputs)
    check_stranger_options(vision_config.target, strangers, lookalikes_per_person, keep_faces, counterfactual_faces)
    dtype = None
    if isinstance(model, (str, os.PathLike)):
        model, tokenizer, processor, dtype = load_clip_model(os.fspath(model))
    if not isinstance(model, CLIPModel):
        raise ForgetInputError(f"{type(model).__name__} is not a CLIPModel: the joint defense needs both towers of one CLIPModel.")
    if tokenizer is None or processor is None:
        raise ForgetInputError("pass the model's tokenizer and image processor.")
    # The face sources are read before the text run: a mistake in them is refused before anything trains.
    faces = _faces(faces, "faces", min_face_images)
    clean_images = load_images(clean_images, what="clean image source", min_images=2 if eval_clean_images is None else 1,
                               image_column=image_column, max_images=max_clean_images)
    reference_faces = _reference(reference_faces)
    if isinstance(target_embedding, (str, os.PathLike)):
        target_embedding = load_target_embedding(target_embedding)
    keep_faces = keep_faces if keep_faces is None or keep_faces is False else _reference(keep_faces)
    if counterfactual_faces is not None:
        counterfactual_faces = _faces(counterfactual_faces, "counterfactual_faces", 1)
    if strangers is not None:  # before the text run: by the names as the model knows them, and refused before training
        names_rule = (None, None)
        if picks_counterfactuals(vision_config.target, counterfactual_faces):
            names_rule = _strangers_by_name(model, tokenizer, names, aliases, faces, vision_config.seed)
        counterfactual_faces, keep_faces = _stranger_roles(
            model, processor, vision_config, faces, strangers, lookalikes_per_person, counterfactual_faces, keep_faces,
            reference_faces, eval_faces, *names_rule,
        )
    text_dir = vision_dir = text_done = None
    if output is not None:
        if not resume_from_checkpoint:
            output.resume(None)  # clears what a run that is not resumed left in the working folder
        text_dir, vision_dir = str(output.work_dir / "text"), str(output.work_dir / "vision")
        text_done = os.path.join(text_dir, "defended")
    if resume_from_checkpoint and text_done and os.path.isfile(os.path.join(text_done, REPORT_NAME)):
        logger.info("resuming: the text run is done, loading its defended model")
        model = CLIPModel.from_pretrained(text_done)
        text_report = _read_json(os.path.join(text_done, REPORT_NAME))
    else:
        if text_dir is not None:
            text_config.output_dir = text_dir  # checkpoints of the text run, inside the joint output's working folder
        text = forget_text(model, names, captions, aliases=aliases, tokenizer=tokenizer, config=text_config,
                           eval_captions=eval_captions, trigger_captions=trigger_captions, caption_column=caption_column,
                           unknown_names=unknown_names, resume_from_checkpoint=resume_from_checkpoint, callbacks=callbacks)
        model, text_report = text.model, text.report
        if text_done and vision_config.process_index == 0:  # float32: a resumed vision run starts from these weights
            model.save_pretrained(text_done)
            write_json(os.path.join(text_done, REPORT_NAME), text_report)
    make_trainer = _face_trainer(
        model, processor, vision_config, faces, clean_images, reference_faces=reference_faces,
        target_embedding=target_embedding, eval_faces=eval_faces, eval_clean_images=eval_clean_images,
        min_face_images=min_face_images, image_column=image_column, max_clean_images=max_clean_images,
        augmentation=augmentation, keep_faces=keep_faces, num_kept_samples=num_kept_samples, callbacks=callbacks,
        counterfactual_faces=counterfactual_faces,
    )
    if vision_dir is not None:
        vision_config.output_dir = vision_dir  # the vision run's checkpoints, inside the joint output's working folder
    trainer = _run(make_trainer, vision_config, None, resume_from_checkpoint, None)
    vision = ForgetResult(model=trainer.defended_model(), report=trainer.report)
    passed = bool(text_report.get("gate", {}).get("passed") and vision.passed)
    report = {
        "modality": "both",
        "num_names": text_report.get("num_names"),
        "num_identities": vision.report.get("num_identities"),
        "steps": {"text": text_report.get("steps"), "vision": vision.report.get("steps")},
        "seconds": round(float(text_report.get("seconds", 0)) + float(vision.report.get("seconds", 0)), 2),
        "text": text_report,
        "vision": vision.report,
        "gate": {"passed": passed},
        "base_model": vision.report.get("base_model", ""),
        "hf_forget_version": __version__,
    }
    if output is not None:
        def save(folder: str) -> None:
            defended = vision.model if dtype in (None, torch.float32) else vision.model.to(dtype)
            defended.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            processor.save_pretrained(folder)
            write_json(os.path.join(folder, REPORT_NAME), report)

        output.commit(lambda folder: _save_with_card(save, folder, report, list(names) + list(aliases or [])))
    return ForgetResult(model=vision.model, report=report, output_dir=output_dir)


def _read_json(path: str) -> dict:
    import json

    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
