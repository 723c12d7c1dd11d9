"""The whole paper on a laptop: audit the toy CLIP, forget 8 seen identities, audit again, report.

``hf-forget demo`` calls :func:`run_demo`. It is offline: the toy CLIP ships with the package and the
toy world renders its faces, captions and digit pictures on the fly (see :mod:`hf_forget.toyworld`).

The protocol (issue 22), so that a figure measures what it claims:

* **who is forgotten**: ``num_forgotten`` people drawn at random (``forget_seed``, default: ``seed``) among the
  seen identities of ``ToyWorld(seed=0)`` that the "before" audit recognises (people ask to be forgotten by a
  model that knows them). ``report.json["forgotten"]`` lists them as indices into ``seen_identities``; their
  names stay in memory and everything written (report and model) is scanned for them;
* **out-of-sample groups**: the vision defense's reference faces (its target, and faces it keeps in place) are
  people of *another* toy world plus a random ``kept_fraction`` of the retained seen people; those are reported
  apart (``kept``), so "retained" and "unseen" figures come from people whose pictures never entered the defense;
* **an independent audit**: the audit's pictures (face seed ``AUDIT_FACE_SEED + seed``) and filler names (Faker
  seed ``AUDIT_FILLER_SEED + seed``) come from streams the defense never draws from (it draws ``1000 * seed +
  k``, the shipped model was trained on seeds >= ``TRAINING_SEED_OFFSET``);
* **the attack suite** (:mod:`hf_forget.evaluation.attacks`) runs before and after on the audit's embeddings;
* **the defended model** (``CLIPModel`` + tokenizer + image processor) is written to ``OUTPUT_DIR/model/``.
"""

from __future__ import annotations

import copy
import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers.utils import logging

from ..errors import ForgetInputError
from ..evaluation.attacks import embed_for_attacks, run_attacks
from ..evaluation.report import build_report, write_report
from ..evaluation.similarity import text_forgetting_similarities, vision_similarities
from ..evaluation.zero_shot import zero_shot_accuracy

logger = logging.get_logger(__name__)

MODALITIES = ("text", "vision", "both")
AUDIT_FACE_SEED = 700_000
"""The audit's face pictures are ``face_images(person, n, seed=AUDIT_FACE_SEED + seed)``."""
AUDIT_FILLER_SEED = 800_000
"""The audit's filler names come from Faker seeded with ``AUDIT_FILLER_SEED + seed``."""
UNKNOWN_NAMES_SEED = 900_000
"""The text defense's unknown names (counterfactual targets, named clean captions) come from Faker seeded with
``UNKNOWN_NAMES_SEED + seed``; no toy-world name nor audit filler is among them."""
MAX_SEED = 699  # the defense's streams (1000 * seed + k) stay below the audit's
RECIPES = ("ours", "paper")
MODEL_DIR = "model"


def defense_stream(seed: int, k: int) -> int:
    """The ``k``-th stream (pictures, captions) the defense draws from at training seed ``seed``."""
    return 1000 * seed + k


@dataclass
class DemoSettings:
    """What the demo runs; the defaults are tuned for the shipped toy CLIP on 2 CPU cores."""

    num_forgotten: int = 8
    images_per_person: int = 20
    num_candidates: int = 1000
    zero_shot_per_class: int = 30
    # text forgetting
    text_steps: int = 300
    text_batch_size: int = 32
    text_learning_rate: float = 2e-3
    text_alpha: float = 2.0
    text_milestones: list[int] = field(default_factory=lambda: [210, 255])
    text_embedding: str = "pooled"
    text_pool: int = 512  # (clean, poisoned) pairs whose teacher outputs are cached once
    # issue 22 (ours): each forgotten name pulled to the same caption with a generated unknown name of the same
    # gender ("counterfactual"; the paper: "neutral", onto "a person"), and a share of the clean samples naming
    # unknown people (kept in place)
    text_target: str = "counterfactual"
    text_named_clean_fraction: float = 0.5
    text_named_clean_neutral: bool = True
    text_target_model: str = "student"  # the target captions embedded by the current student (detached)
    text_num_unknown_names: int = 2000
    # where the names are put: short contexts (the name alone or leading a caption's last words), a caption's last
    # word too, and person captions ("a portrait of someone", not the IDIA templates) among the carriers
    text_short_trigger_fraction: float = 0.5
    text_trigger_at_end: bool = True
    text_person_carriers: bool = True
    text_person_carrier_count: int = 6000  # person captions among the carriers (about half of them)
    short_captions: bool = True
    num_captions: int = 3000
    # vision forgetting
    vision_steps: int = 600
    vision_batch_size: int = 64
    vision_learning_rate: float = 3e-4
    vision_milestones: list[int] = field(default_factory=lambda: [300, 450])
    # face pictures rendered for each forgotten person (the trainer holds 10% out) and the trigger pool drawn
    # from them: new pictures of a forgotten person keep part of the identity the training pictures lost, less
    # the more pictures the defense sees (with 120, the name still stood out of the never-seen people's)
    vision_faces_per_person: int = 480
    vision_trigger_samples: int = 8192
    # the faces alone (not pasted), the identity-residual term and (issue 22) the pull, weight alpha, to the
    # counterfactual person's pictures (before: alpha 0, residual only; benchmarks/results/defense_tuning.jsonl V1-V7)
    vision_identity_residual_weight: float = 1.5  # 2.5: forgotten people less known than strangers, retained lost
    vision_beta: float = 0.005  # weight anchor (VisionForgetConfig's default)
    vision_alpha: float = 0.5  # a stronger pull moved the kept faces and the digits along with the forgotten ones
    vision_face_only_fraction: float = 1.0
    # pasted faces take this fraction of the image side (unused while vision_face_only_fraction is 1: the triggers
    # and the kept faces are then all shown alone)
    vision_face_scale: tuple[float, float] = (0.5, 1.0)
    # the trigger faces' colour jitter (brightness, contrast and saturation times U(1 - j, 1 + j)), hue shift (turns)
    # and rotation (degrees); FaceAugmentation's reference values by default
    vision_face_jitter: float = 0.5
    vision_face_hue: float = 0.1
    vision_face_rotation: float = 30.0
    num_clean_images: int = 600
    clean_digit_fraction: float = 0.5  # of the clean images, training-split digit pictures (the rest: scenes)
    # people of another toy world (never seen by the model, never audited) whose faces make the target and keep
    # their embedding
    num_reference_persons: int = 32
    # pictures of each reference person, in the target and among the kept faces (with 4, more retained people
    # were lost)
    reference_faces_per_person: int = 16
    # issue 22 (ours): each forgotten person's pictures pulled, picture by picture, onto a never-seen person's
    # pictures (a person of the reference world outside the reference set, same gender): "counterfactual"; the
    # paper: "mean_face" (every face onto the reference set's mean face)
    vision_target: str = "counterfactual"
    vision_counterfactual_faces_per_person: int = 40
    vision_counterfactual_mode: str = "shift"  # seed 0: "picture" lost more retained people (V1, V3)
    # only the last two encoder layers train: the early ones hold what every picture (digits too) is made of
    vision_train_last_layers: int = 2
    # look-alikes: for each forgotten person, the never-seen people (of other toy worlds, never audited) whose faces
    # the model places nearest theirs, kept at their embedding like the reference faces, so that the people who
    # share the forgotten person's features stay who they are
    vision_lookalikes_per_person: int = 16
    # never-seen people (of other toy worlds) the counterfactual people and the look-alikes are chosen from
    vision_stranger_pool: int = 512
    # choose each counterfactual person by how the model links their pictures to the forgotten name (a z-score among
    # generated names near 0, as for a never-seen person); False: by face similarity alone (median)
    vision_strangers_by_name: bool = True
    vision_kept_samples: int | None = None  # kept faces shown as the triggers are (None: as many as clean images)
    # the joint defense (--modality both): the face identity-residual weight (None: vision_identity_residual_weight).
    # The text tower unlinks the names too; at the face defense's 1.5 the two towers' drifts added up on the digits
    # (zero-shot), and the residual term moved them most
    joint_vision_identity_residual_weight: float | None = 0.75
    # a random share of the retained seen people (other pictures than the audit's) join the reference set, as a web
    # image set holds some other known people's faces; they are reported apart ("kept"), the others are the
    # out-of-sample retained group
    kept_fraction: float = 0.5
    recipe: str = "ours"  # informational: settings_for_recipe("paper") holds the paper's recipe
    seed: int = 0
    # draws the forgotten people (and the kept ones) among the recognised seen people; None: ``seed``
    forget_seed: int | None = None
    world_seed: int = 0


PAPER_RECIPE = {
    "text_target": "neutral",
    "text_named_clean_fraction": 0.0,
    "text_target_model": "teacher",
    "text_short_trigger_fraction": 0.0,  # the paper poisons inside captions only, never the last word
    "text_trigger_at_end": False,
    "text_person_carriers": False,
    "vision_target": "mean_face",
    "vision_alpha": 0.8,  # the paper's pull to the mean face (its reference value)
    "vision_identity_residual_weight": 0.0,  # the paper's objective
    "vision_learning_rate": 1e-4,  # the demo's rate before issue 22
    "vision_train_last_layers": 0,  # the paper trains the whole encoder
    "vision_lookalikes_per_person": 0,
    "joint_vision_identity_residual_weight": None,
}
"""What ``--recipe paper`` changes: the paper's neutral target ("a person") and the mean-face target, at the demo's
toy-world scale (steps, rates and pools as ``ours``)."""


def settings_for_recipe(recipe: str = "ours", **overrides) -> DemoSettings:
    """The demo's settings for ``recipe`` (``ours``: the defaults; ``paper``: :data:`PAPER_RECIPE` over them)."""
    if recipe not in RECIPES:
        raise ForgetInputError(f"--recipe must be one of {', '.join(RECIPES)}, got {recipe!r}.")
    values = {**(PAPER_RECIPE if recipe == "paper" else {}), **overrides, "recipe": recipe}
    return DemoSettings(**values)


def choose_forgotten(recognised: list[int], others: list[int], count: int, forget_seed: int) -> list[int]:
    """``count`` indices drawn at random (seeded by ``forget_seed``) among ``recognised``, sorted; when fewer are
    recognised, all of them and a random draw among ``others`` (with a warning)."""
    rng = random.Random(f"hf-forget demo forget {forget_seed}")
    if len(recognised) >= count:
        return sorted(rng.sample(sorted(recognised), count))
    logger.warning("demo: only %d seen identities are recognised; %d unrecognised ones are forgotten too",
                   len(recognised), count - len(recognised))
    return sorted(list(recognised) + rng.sample(sorted(others), count - len(recognised)))


def choose_kept(retained: list[int], fraction: float, forget_seed: int) -> list[int]:
    """A random ``fraction`` of the ``retained`` indices (seeded by ``forget_seed``): the people whose pictures the
    vision defense keeps in place."""
    if not 0 <= fraction <= 1:
        raise ForgetInputError(f"kept_fraction must be between 0 and 1, got {fraction}.")
    rng = random.Random(f"hf-forget demo kept {forget_seed}")
    return sorted(rng.sample(sorted(retained), round(fraction * len(retained))))


_PEOPLE_WORDS = (
    "the man", "the woman", "someone", "a young man", "an old woman", "the singer", "the actor", "a tourist",
    "the driver", "a friend",
)


def demo_augmentation(settings: DemoSettings):
    """The trigger faces' augmentation: the settings' scale, colour jitter, hue and rotation."""
    from ..data.faces import FaceAugmentation  # noqa: PLC0415

    jitter = (1 - settings.vision_face_jitter, 1 + settings.vision_face_jitter)
    return FaceAugmentation(
        scale=tuple(settings.vision_face_scale), brightness=jitter, contrast=jitter, saturation=jitter,
        hue=settings.vision_face_hue, rotation=settings.vision_face_rotation,
    )


def stranger_pool(world, size: int, seed: int) -> list:
    """``size`` people of other toy worlds (seeds from ``seed`` on, never the model's world), as ``(world, person)``:
    never seen by the model, never audited."""
    from . import ToyWorld  # noqa: PLC0415

    pool, world_seed = [], seed
    while len(pool) < size:
        if world_seed != world.seed:
            other = ToyWorld(seed=world_seed)
            pool += [(other, person) for person in other.identities]
        world_seed += 1
    return pool[:size]


def demo_strangers(model, tokenizer, processor, world, forgotten: list, settings: DemoSettings, seed: int) -> tuple[list, list]:
    """The vision defense's never-seen people, chosen by how the model sees the forgotten ones (4 pictures each,
    :func:`~hf_forget.data.faces.choose_strangers`): one counterfactual person each (a typical stranger, by name
    over 4 of the toy world's training person templates when ``vision_strangers_by_name``;
    ``vision_counterfactual_faces_per_person`` pictures) and the look-alikes (the ``vision_lookalikes_per_person``
    nearest, ``reference_faces_per_person`` pictures each), from ``vision_stranger_pool`` people. The pictures handed
    to the defense are rendered with another seed than the 4 the choice was made on."""
    from ..data.faces import choose_strangers, embed_names_and_fillers  # noqa: PLC0415
    from .captions import EXTRA_PERSON_TEMPLATES  # noqa: PLC0415 - the training templates, not the audit's

    pool = stranger_pool(world, settings.vision_stranger_pool, seed)
    probe = [world.face_images(person, 4, seed=seed) for person in forgotten]
    candidates = [other.face_images(person, 4, seed=seed) for other, person in pool]
    names = fillers = None
    if settings.vision_strangers_by_name:
        names, fillers = embed_names_and_fillers(
            model, tokenizer, [p.name for p in forgotten], seed, templates=EXTRA_PERSON_TEMPLATES[:4]
        )
    counterfactual, lookalikes = choose_strangers(
        model, processor, probe, candidates, settings.vision_lookalikes_per_person, name_embeddings=names,
        filler_embeddings=fillers,
    )

    def pictures(index: int, count: int) -> list:
        other, person = pool[index]
        return other.face_images(person, count, seed=seed + 1)

    return ([pictures(i, settings.vision_counterfactual_faces_per_person) for i in counterfactual],
            [pictures(i, settings.reference_faces_per_person) for i in lookalikes])


def demo_captions(world, count: int, seed: int, short_captions: bool) -> list[str]:
    """Generic captions for the text defense. With ``short_captions``, also short ones (2-5 words, cut from
    scene captions) and short person captions ("a portrait of the man"), where a name carries more of the
    caption's meaning than in a long scene caption: the IDIA prompts are short and about a person."""
    captions = world.generic_captions(count, seed=seed)
    if not short_captions:
        return captions
    from ..toyworld.captions import EXTRA_PERSON_TEMPLATES  # not the IDIA templates: the attack stays unseen

    rng = random.Random(seed)
    people = [t.format(rng.choice(_PEOPLE_WORDS)) for t in EXTRA_PERSON_TEMPLATES for _ in range(20)]
    short = [" ".join(c.split()[: rng.randint(2, 5)]) for c in captions[: count // 2]]
    return captions + people + short


def demo_clean_images(world, count: int, digit_fraction: float, seed: int = 7) -> list:
    """Generic images for the vision defense: scenes, ``digit_fraction`` of them replaced by digit pictures of
    the *training* split (the zero-shot check reads the test split only), as a web image set holds objects too."""
    digits = round(count * digit_fraction)
    pictures = world.object_dataset(n_per_class=-(-digits // 10), seed=seed, split="train")[0][:digits] if digits else []
    return world.generic_images(count - digits, seed=seed) + pictures


def person_carriers(captions: list[str], seed: int, count: int = 1000) -> list[str]:
    """Captions that carry the names: the generic ones plus ``count`` person captions ("a portrait of someone",
    from the training templates beyond the IDIA ones), where a name takes the place of "someone"."""
    from ..toyworld.captions import EXTRA_PERSON_TEMPLATES

    rng = random.Random(seed)
    return list(captions) + [rng.choice(EXTRA_PERSON_TEMPLATES).format("someone") for _ in range(count)]


def demo_unknown_names(world, forgotten: list[str], settings: DemoSettings, seed: int) -> list[str]:
    """The text defense's pool of unknown names: one per forgotten name (same gender), then
    ``text_num_unknown_names`` more; never a toy-world name nor one of this seed's audit fillers."""
    from ..evaluation.idia import generate_filler_names
    from ..data.text import counterfactual_names

    gender = {p.name: p.gender for p in world.identities}
    audit_fillers = generate_filler_names(
        settings.num_candidates - len(world.identities), exclude=world.names, seed=AUDIT_FILLER_SEED + seed
    )
    return counterfactual_names(
        forgotten, len(forgotten) + settings.text_num_unknown_names, UNKNOWN_NAMES_SEED + seed,
        exclude=[*world.names, *audit_fillers], genders=[gender.get(name) for name in forgotten],
    )


def _zero_shot_templates() -> list[str]:
    from ..toyworld.captions import DIGIT_TEMPLATES

    return [t.replace("{c}", "{}") for t in DIGIT_TEMPLATES if "{colour}" not in t]


def run_demo(
    output_dir: str | os.PathLike,
    modality: str = "text",
    settings: DemoSettings | None = None,
    overwrite: bool = False,
    model_path: str | os.PathLike | None = None,
    command: str | None = None,
) -> dict:
    """Audit the toy CLIP, forget ``settings.num_forgotten`` seen identities, audit again, write the report.

    Writes ``output_dir/report.json``, ``report.md``, ``report.png`` and the defended ``CLIPModel`` (with its
    tokenizer and image processor) in ``output_dir/model/``, staged in a hidden sibling and renamed into place.
    Returns the report dictionary (it holds no name).
    """
    import torch
    from transformers import set_seed

    from ..forget import forget_faces, forget_text
    from ..config import TextForgetConfig, VisionForgetConfig
    from ..toyworld import ToyWorld, load_toy_clip
    from ..outputs import OutputFolder

    if modality not in MODALITIES:
        raise ForgetInputError(f"--modality must be one of {', '.join(MODALITIES)}, got {modality!r}.")
    settings = settings or DemoSettings()
    seed = settings.seed
    forget_seed = seed if settings.forget_seed is None else settings.forget_seed
    for label, value in (("--seed", seed), ("--forget_seed", forget_seed)):
        if not 0 <= value <= MAX_SEED:
            raise ForgetInputError(f"{label} must be between 0 and {MAX_SEED}, got {value}.")
    output = OutputFolder(output_dir, overwrite=overwrite)
    started = time.perf_counter()
    set_seed(seed)

    model, tokenizer, processor = load_toy_clip(model_path)
    if torch.cuda.is_available():  # the audits too run on the accelerator (the trainers move the model there anyway)
        model.to("cuda")
    world = ToyWorld(seed=settings.world_seed)
    seen = list(world.seen_identities)
    if settings.num_forgotten > len(seen):
        raise ForgetInputError(f"the toy world has {len(seen)} seen identities; forget at most that many.")
    audit_faces = {
        p.name: world.face_images(p, settings.images_per_person, seed=AUDIT_FACE_SEED + seed) for p in world.identities
    }
    unseen = [p.name for p in world.unseen_identities]
    digits, labels, classes = world.object_dataset(n_per_class=settings.zero_shot_per_class, seed=0, split="test")
    templates = _zero_shot_templates()

    def embed(current):
        return embed_for_attacks(
            current, tokenizer, processor, audit_faces, unseen=unseen, num_candidates=settings.num_candidates,
            images_per_person=settings.images_per_person, seed=AUDIT_FILLER_SEED + seed,
        )

    def zero_shot(current):
        return zero_shot_accuracy(current, tokenizer, processor, digits, labels, classes, templates=templates)

    logger.warning("demo: auditing the toy CLIP before the defense")
    timings = {"setup": time.perf_counter() - started}
    mark = time.perf_counter()
    embeddings_before, zero_shot_before = embed(model), zero_shot(model)
    first_look = run_attacks(embeddings_before, ["idia"]).idia
    recognised_names = {p.name for p in first_look.persons if p.recognised}
    recognised = [i for i, p in enumerate(seen) if p.name in recognised_names]
    forgotten_idx = choose_forgotten(
        recognised, [i for i in range(len(seen)) if i not in recognised], settings.num_forgotten, forget_seed
    )
    retained_idx = [i for i in range(len(seen)) if i not in forgotten_idx]
    kept_idx = choose_kept(retained_idx, settings.kept_fraction, forget_seed) if modality != "text" else []
    forgotten = [seen[i].name for i in forgotten_idx]
    kept = [seen[i].name for i in kept_idx]
    groups = {"forgotten": forgotten, "unseen": unseen, "kept": kept}
    attacks_before = run_attacks(embeddings_before.regroup(**groups))
    idia_before = attacks_before.idia
    timings["audit_before"] = time.perf_counter() - mark
    original = copy.deepcopy(model)

    output.resume(None)  # clears what an interrupted demo left; the Trainer scratch below is a temporary folder
    similarities: dict[str, float] = {}
    training: dict[str, dict] = {}
    protocol = {
        "seed": seed,
        "forget_seed": forget_seed,
        "audit_face_seed": AUDIT_FACE_SEED + seed,
        "audit_filler_seed": AUDIT_FILLER_SEED + seed,
        "defense_streams": f"1000 * seed + k = {defense_stream(seed, 0)} + k",
        "num_recognised_before": len(recognised),
        "forgotten_from": "random draw among the recognised seen identities",
    }
    with tempfile.TemporaryDirectory(prefix=".hf-forget-demo-") as scratch:
        if modality in ("text", "both"):
            logger.warning("demo: forgetting %d identities in the text encoder", len(forgotten))
            config = TextForgetConfig(
                output_dir=os.path.join(scratch, "text"), max_steps=settings.text_steps,
                per_device_train_batch_size=settings.text_batch_size, learning_rate=settings.text_learning_rate,
                lr_milestones=list(settings.text_milestones), embedding=settings.text_embedding,
                num_trigger_samples=settings.text_pool, max_eval_samples=64, alpha=settings.text_alpha,
                target=settings.text_target, named_clean_fraction=settings.text_named_clean_fraction,
                named_clean_neutral=settings.text_named_clean_neutral, target_model=settings.text_target_model,
                short_trigger_fraction=settings.text_short_trigger_fraction,
                trigger_at_end=settings.text_trigger_at_end,
                seed=seed, report_to="none", disable_tqdm=False, use_cpu=not torch.cuda.is_available(),
            )
            captions = demo_captions(
                world, settings.num_captions, seed=defense_stream(seed, 1), short_captions=settings.short_captions
            )
            unknown = None
            if settings.text_target == "counterfactual" or settings.text_named_clean_fraction > 0:
                unknown = demo_unknown_names(world, forgotten, settings, seed)
                protocol["unknown_names_seed"] = UNKNOWN_NAMES_SEED + seed
            mark = time.perf_counter()
            carriers = person_carriers(
                captions, seed=defense_stream(seed, 4), count=settings.text_person_carrier_count
            ) if settings.text_person_carriers else None
            result = forget_text(model, forgotten, captions, tokenizer=tokenizer, config=config,
                                 unknown_names=unknown, trigger_captions=carriers)
            timings["forget_text"] = time.perf_counter() - mark
            model = result.model
            training["text"] = {k: v for k, v in result.report.items() if k not in ("base_model",)}
            held_out = world.generic_captions(400, seed=defense_stream(seed, 2))  # never trained on
            text_sims = text_forgetting_similarities(
                original, model, tokenizer, held_out, forgotten, seed=defense_stream(seed, 3)
            )
            similarities.update(text_sims if modality == "text" else {f"text_{k}": v for k, v in text_sims.items()})
        if modality in ("vision", "both"):
            logger.warning("demo: forgetting %d identities in the vision encoder", len(forgotten))
            face_seed = defense_stream(seed, 5)
            forget_faces_persons = [world.face_images(seen[i], settings.vision_faces_per_person, seed=face_seed)
                                    for i in forgotten_idx]
            others = ToyWorld(seed=defense_stream(seed, 10))  # people the model never saw, never audited
            if others.seed == settings.world_seed:
                others = ToyWorld(seed=others.seed + 1)
            reference_seed = defense_stream(seed, 6)
            reference = [
                others.face_images(p, settings.reference_faces_per_person, seed=reference_seed)
                for p in others.identities[: settings.num_reference_persons]
            ] + [world.face_images(seen[i], settings.reference_faces_per_person, seed=reference_seed) for i in kept_idx]
            protocol["reference_world_seed"] = others.seed
            counterfactual = None
            if settings.vision_target == "counterfactual" or settings.vision_lookalikes_per_person:
                counterfactual, lookalikes = demo_strangers(
                    model, tokenizer, processor, world, [seen[i] for i in forgotten_idx], settings, defense_stream(seed, 11)
                )
                reference += lookalikes
                protocol["stranger_worlds_from_seed"] = defense_stream(seed, 11)
            if settings.vision_target != "counterfactual":
                counterfactual = None
            clean = demo_clean_images(
                world, settings.num_clean_images, settings.clean_digit_fraction, seed=defense_stream(seed, 7)
            )
            residual_weight = settings.vision_identity_residual_weight
            if modality == "both" and settings.joint_vision_identity_residual_weight is not None:
                residual_weight = settings.joint_vision_identity_residual_weight
            config = VisionForgetConfig(
                output_dir=os.path.join(scratch, "vision"), max_steps=settings.vision_steps,
                per_device_train_batch_size=settings.vision_batch_size,
                learning_rate=settings.vision_learning_rate, lr_milestones=list(settings.vision_milestones),
                identity_residual_weight=residual_weight, alpha=settings.vision_alpha,
                beta=settings.vision_beta,
                face_only_fraction=settings.vision_face_only_fraction,
                num_trigger_samples=settings.vision_trigger_samples, target=settings.vision_target,
                counterfactual_mode=settings.vision_counterfactual_mode, train_last_layers=settings.vision_train_last_layers,
                seed=seed, report_to="none", use_cpu=not torch.cuda.is_available(),
            )
            from ..data.faces import mean_face_embedding  # noqa: PLC0415

            before_vision = copy.deepcopy(model)
            mark = time.perf_counter()
            result = forget_faces(
                model, forget_faces_persons, clean, processor=processor, reference_faces=reference, config=config,
                augmentation=demo_augmentation(settings),
                num_kept_samples=settings.vision_kept_samples, counterfactual_faces=counterfactual,
            )
            timings["forget_faces"] = time.perf_counter() - mark
            model = result.model
            training["vision"] = {k: v for k, v in result.report.items() if k not in ("base_model",)}
            target_embedding = mean_face_embedding(before_vision, processor, reference)
            eval_faces = [image for i in forgotten_idx
                          for image in world.face_images(seen[i], 5, seed=defense_stream(seed, 8))]
            vision_sims = vision_similarities(
                before_vision, model, processor, world.generic_images(100, seed=defense_stream(seed, 9)),
                eval_faces, target_embedding, reference_faces=reference,
            )
            prefix = "" if modality == "vision" else "vision_"
            similarities.update({f"{prefix}{k}": v for k, v in vision_sims.items()})
            if modality == "both":  # the headline figures: the weaker of the two encoders
                for key in ("sim_clean", "sim_backdoor"):
                    similarities[key] = min(similarities[f"text_{key}"], similarities[f"vision_{key}"])

    logger.warning("demo: auditing the defended CLIP")
    mark = time.perf_counter()
    model.eval()
    attacks_after, zero_shot_after = run_attacks(embed(model).regroup(**groups)), zero_shot(model)
    timings["audit_after"] = time.perf_counter() - mark
    report = build_report(
        modality=modality,
        idia_before=idia_before,
        idia_after=attacks_after.idia,
        forgotten=forgotten,
        kept=kept,
        similarities=similarities,
        zero_shot_before=zero_shot_before,
        zero_shot_after=zero_shot_after,
        seconds=time.perf_counter() - started,
        attacks_before=attacks_before,
        attacks_after=attacks_after,
        extra={
            "forgotten": forgotten_idx,
            "forgotten_indices_into": f"ToyWorld(seed={settings.world_seed}).seen_identities",
            "kept": kept_idx,
            "model": MODEL_DIR,
            "protocol": protocol,
            "datasets": {
                "idia": f"hf_forget.toyworld ToyWorld(seed={settings.world_seed}) faces, face seed "
                f"{AUDIT_FACE_SEED + seed}; Faker fillers, seed {AUDIT_FILLER_SEED + seed}",
                "similarity": "hf_forget.toyworld held-out generic captions/images",
                "zero_shot": "hf_forget.toyworld digits (scikit-learn digits, test split)",
            },
            "training": training,
            "timings": {key: round(value, 1) for key, value in timings.items()},
            "settings": {k: v for k, v in vars(settings).items()},
            **({"command": command} if command else {}),
        },
    )

    def write(folder: str) -> None:
        model_dir = Path(folder, MODEL_DIR)
        for part in (model, tokenizer, processor):
            part.save_pretrained(model_dir)
        write_report(folder, report, forbidden_names=forgotten)

    output.commit(write)
    return report
