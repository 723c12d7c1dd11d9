"""An attack suite: does a (defended) CLIP still link people to their names, or reveal who was forgotten?

The paper's IDIA (:mod:`.idia`) is one attack; a defense that only defeats it may still leave each forgotten
person findable by a slightly stronger attacker, or make the list of forgotten people readable from the model.
The suite runs, on one set of embeddings (faces and candidate prompts are embedded once per model):

* ``idia``: the paper's Identity Inference Attack (top-1 majority vote per template, tau templates right);
* ``idia_top5``: the same vote read at top 5: a template is right when the true name has votes and fewer than 5
  other candidates have as many (the paper's attack is this at top 1: a unique plurality);
* ``rank_at_10``: the true name ranks among the 10 best candidates by mean similarity over all of a person's
  pictures and all templates (mean of the cosines = dot product of the mean face and mean prompt directions);
* ``membership_auc``: the true name's z-score (its mean similarity standardised over all candidates of that
  person) separates forgotten from never-seen people: AUC, forgotten positive (0.5: indistinguishable; a value
  far below 0.5 separates them too, the other way round);
* ``forget_set_auc_text``: forgotten names vs every other candidate, by the mean over templates of the cosine
  between a name's prompt and the same prompt with the neutral term ("a person"), forgotten positive;
* ``forget_set_auc_vision``: the faces-only analogue: forgotten persons vs never-seen persons (the text test's
  negatives are nearly all never-seen names; a forgotten face cannot be asked to look like a known one), by how
  tightly a person's pictures cluster (their mean pairwise cosine), forgotten positive. Forgetting changes what a
  face means, whichever way: a recipe that pulls every forgotten face onto one target (the paper's mean face)
  makes their pictures cluster tighter than a never-seen person's (AUC near 1); a recipe that removes the
  identity can scatter them (AUC near 0). Both are leaks. The details add the same AUC against everyone else
  (``forget_set_auc_vision_vs_all``) and, by closeness to the mean face of everyone audited (an attacker's
  estimate of a mean-face target), against never-seen persons (``forget_set_auc_vision_mean_face``).

Rates are reported per group: ``forgotten``, ``retained`` (known, not forgotten and, in the demo, never used by
the defense), ``unseen`` (never seen by the model); persons of the group ``kept`` (known people whose pictures the
defense used to keep them) are reported apart in the details. Results hold rates and counts, never a name.

AUCs use the rank formula (Mann-Whitney U / (n_pos * n_neg), ties count one half): no scikit-learn needed.

Example:
```python
>>> auc([0.9, 0.8], [0.1, 0.2, 0.3])
1.0
>>> auc([1.0, 0.0], [1.0, 0.0])
0.5
```
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from PIL import Image
from transformers.utils import logging

from ..errors import ForgetInputError
from .idia import (
    DEFAULT_IMAGES_PER_PERSON,
    DEFAULT_NUM_CANDIDATES,
    DEFAULT_SEED,
    IDIA_TEMPLATES,
    IDIAResult,
    embed_idia_inputs,
    idia_from_embeddings,
    predict_candidates,
)

logger = logging.get_logger(__name__)

GROUPS: tuple[str, ...] = ("forgotten", "retained", "unseen")
"""The groups every per-person rate is reported for (``kept`` persons are reported apart)."""
KEPT = "kept"
ATTACKS: tuple[str, ...] = (
    "idia",
    "idia_top5",
    "rank_at_10",
    "membership_auc",
    "forget_set_auc_text",
    "forget_set_auc_vision",
)
"""The attacks of the suite, in the order of the report."""
PER_GROUP_ATTACKS = ATTACKS[:3]
NEUTRAL_TERM = "a person"
TOP_K = 5
MAX_RANK = 10


def parse_attacks(spec: str | Sequence[str] | None) -> list[str]:
    """``"all"`` or a comma-separated list (or a sequence) of attack names -> the list, in :data:`ATTACKS` order."""
    if spec is None:
        return []
    parts = [p.strip() for p in (spec.split(",") if isinstance(spec, str) else spec) if p and p.strip()]
    if "all" in parts:
        return list(ATTACKS)
    unknown = [p for p in parts if p not in ATTACKS]
    if unknown or not parts:
        raise ForgetInputError(
            f"unknown attack {unknown[0]!r}: pass 'all' or a comma list of {', '.join(ATTACKS)}."
            if unknown else f"no attack given: pass 'all' or a comma list of {', '.join(ATTACKS)}."
        )
    return [a for a in ATTACKS if a in parts]


# --------------------------------------------------------------------------------------------------------
# Statistics on tensors
# --------------------------------------------------------------------------------------------------------
def auc(positives: Iterable[float], negatives: Iterable[float]) -> float | None:
    """Area under the ROC curve of a score separating ``positives`` from ``negatives`` (higher = positive).

    The rank formula: average ranks over both samples (ties share their mean rank), then
    ``(sum of positive ranks - n_pos (n_pos + 1) / 2) / (n_pos n_neg)``. ``None`` when a side is empty or a
    score is NaN.
    """
    pos = [float(v) for v in positives]
    neg = [float(v) for v in negatives]
    if not pos or not neg or any(math.isnan(v) for v in pos + neg):
        return None
    values = pos + neg
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        start = end + 1
    n_pos, n_neg = len(pos), len(neg)
    return (sum(ranks[:n_pos]) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def mean_similarity(face_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
    """``(persons, candidates)``: the mean cosine over a person's images and all templates of each candidate.

    Args:
        face_embeds: ``(persons, images, dim)``; text_embeds: ``(templates, candidates, dim)``.
    """
    faces = F.normalize(face_embeds.float(), dim=-1).mean(1)
    texts = F.normalize(text_embeds.float(), dim=-1).mean(0)
    return faces @ texts.T


def true_name_ranks(scores: torch.Tensor, targets: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """Rank (1 = best) of each person's own candidate among all candidates; ties count against the true name."""
    targets = torch.as_tensor(targets, dtype=torch.long, device=scores.device)
    own = scores.gather(1, targets.unsqueeze(1))
    return (scores >= own).sum(1)


def true_name_zscores(scores: torch.Tensor, targets: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """Each person's true-name score standardised over all candidates of that person (population std)."""
    targets = torch.as_tensor(targets, dtype=torch.long, device=scores.device)
    own = scores.gather(1, targets.unsqueeze(1)).squeeze(1)
    std = scores.std(1, unbiased=False).clamp_min(1e-12)
    return (own - scores.mean(1)) / std


def top_k_idia(
    face_embeds: torch.Tensor, text_embeds: torch.Tensor, targets: Sequence[int] | torch.Tensor, k: int = TOP_K, tau: int = 1
) -> torch.Tensor:
    """Recognised flags ``(persons,)`` of the IDIA read at top ``k`` of its majority vote.

    As in the paper, each image votes for its most similar candidate, per template. A template is right when the
    true name has votes and fewer than ``k`` other candidates have at least as many (ties count against the true
    name); a person is recognised when at least ``tau`` templates are right. ``k=1`` is the paper's attack (a
    unique plurality); a larger ``k`` also finds a name that wins some images but not the most.
    """
    if k < 1 or tau < 1:
        raise ForgetInputError(f"k and tau must be at least 1, got k={k}, tau={tau}.")
    predictions = predict_candidates(face_embeds, text_embeds).transpose(1, 2)  # (persons, templates, images)
    counts = torch.zeros(*predictions.shape[:2], text_embeds.shape[1], dtype=torch.long, device=predictions.device)
    counts.scatter_add_(-1, predictions.long(), torch.ones_like(predictions, dtype=torch.long))
    targets = torch.as_tensor(targets, dtype=torch.long, device=counts.device)
    own = counts.gather(-1, targets.view(-1, 1, 1).expand(-1, counts.shape[1], 1))
    rivals = (counts >= own).sum(-1) - 1  # other candidates with at least the true name's votes
    right = (own.squeeze(-1) > 0) & (rivals < k)
    return right.sum(-1) >= tau


def neutral_similarity(text_embeds: torch.Tensor, neutral_embeds: torch.Tensor) -> torch.Tensor:
    """``(candidates,)``: mean over templates of cos(template with the name, same template with the neutral term).

    Args:
        text_embeds: ``(templates, candidates, dim)``; neutral_embeds: ``(templates, dim)``.
    """
    texts = F.normalize(text_embeds.float(), dim=-1)
    neutral = F.normalize(neutral_embeds.float(), dim=-1)
    return torch.einsum("tcd,td->tc", texts, neutral).mean(0)


def mean_face_closeness(face_embeds: torch.Tensor) -> torch.Tensor:
    """``(persons,)``: mean cosine of a person's pictures to the mean face of everyone audited.

    The mean face is the normalised mean over persons of each person's mean (normalised) picture direction,
    what an attacker can estimate without the defender's reference faces.
    """
    faces = F.normalize(face_embeds.float(), dim=-1)
    mean_face = F.normalize(F.normalize(faces.mean(1), dim=-1).mean(0), dim=-1)
    return (faces @ mean_face).mean(1)


def face_spread(face_embeds: torch.Tensor) -> torch.Tensor:
    """``(persons,)``: how tightly a person's pictures cluster: their mean pairwise cosine (self-pairs excluded;
    NaN with a single picture)."""
    faces = F.normalize(face_embeds.float(), dim=-1)
    images = faces.shape[1]
    if images < 2:
        return torch.full((faces.shape[0],), float("nan"), device=faces.device)
    gram = faces @ faces.transpose(1, 2)
    return (gram.sum((1, 2)) - images) / (images * (images - 1))


# --------------------------------------------------------------------------------------------------------
# Embeddings, computed once per model
# --------------------------------------------------------------------------------------------------------
def _check_groups(forgotten: set, unseen: set, kept: set) -> None:
    if (forgotten & unseen) or (forgotten & kept) or (unseen & kept):
        raise ForgetInputError("a person is in two of forgotten, unseen and kept: each person belongs to one group.")


def _group(name: str, forgotten: set, unseen: set, kept: set) -> str:
    return "forgotten" if name in forgotten else "unseen" if name in unseen else KEPT if name in kept else "retained"


@dataclass
class AttackEmbeddings:
    """Everything the suite scores, for one model. Names stay in memory (``repr`` hides them).

    ``groups[i]`` is the group of evaluated person ``i`` (``forgotten``, ``retained``, ``unseen`` or ``kept``);
    ``forgotten_candidates`` are the candidate indices of the forgotten names (with or without faces).
    """

    face_embeds: torch.Tensor  # (persons, images, dim)
    text_embeds: torch.Tensor  # (templates, candidates, dim)
    neutral_embeds: torch.Tensor  # (templates, dim): each template with the neutral term
    targets: list[int]
    groups: list[str]
    forgotten_candidates: list[int]
    evaluated: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    neutral_term: str = NEUTRAL_TERM
    names: list[str] = field(default_factory=list, repr=False)
    skipped_names: list[str] = field(default_factory=list, repr=False)
    candidates: list[str] = field(default_factory=list, repr=False)

    def regroup(self, forgotten: Iterable[str] = (), unseen: Iterable[str] = (), kept: Iterable[str] = ()) -> AttackEmbeddings:
        """The same embeddings with other groups (e.g. the forgotten set, drawn after a first audit). Forgotten
        names must be candidates already (:func:`embed_for_attacks` puts every person with faces among them)."""
        forgotten, unseen, kept = list(dict.fromkeys(forgotten)), set(unseen), set(kept)
        if not self.candidates:
            raise ForgetInputError("these embeddings carry no candidate names: embed them with embed_for_attacks.")
        missing = [n for n in forgotten if n not in self.candidates]
        if missing:
            raise ForgetInputError(f"{len(missing)} forgotten names are not candidates: embed again with them.")
        _check_groups(set(forgotten), unseen, kept)
        gone = set(forgotten)
        groups = [_group(n, gone, unseen, kept) for n in self.names]
        return replace(self, groups=groups, forgotten_candidates=[self.candidates.index(n) for n in forgotten])

    def __post_init__(self) -> None:
        persons = self.face_embeds.shape[0]
        if len(self.targets) != persons or len(self.groups) != persons:
            raise ForgetInputError("targets and groups need one entry per person.")
        unknown = set(self.groups) - {*GROUPS, KEPT}
        if unknown:
            raise ForgetInputError(f"unknown group {sorted(unknown)[0]!r}: use {', '.join((*GROUPS, KEPT))}.")
        if self.neutral_embeds.shape[0] != self.text_embeds.shape[0]:
            raise ForgetInputError("neutral_embeds needs one row per template.")


def embed_for_attacks(
    model,
    tokenizer,
    image_processor,
    faces: Mapping[str, Sequence[Image.Image]],
    *,
    forgotten: Iterable[str] = (),
    unseen: Iterable[str] = (),
    kept: Iterable[str] = (),
    candidate_names: Sequence[str] = (),
    fillers: Sequence[str] | None = None,
    num_candidates: int = DEFAULT_NUM_CANDIDATES,
    templates: Sequence[str] = IDIA_TEMPLATES,
    images_per_person: int = DEFAULT_IMAGES_PER_PERSON,
    seed: int = DEFAULT_SEED,
    neutral_term: str = NEUTRAL_TERM,
    batch_size: int = 1024,
) -> AttackEmbeddings:
    """Embed, once, what every attack of the suite needs from ``model``.

    Args:
        faces: person name -> face images (persons with fewer than ``images_per_person`` are skipped).
        forgotten: names of forgotten persons (in ``faces``, or names only: those count for the text
            forget-set detection alone); unseen: persons in ``faces`` the model never saw; kept: known persons
            in ``faces`` whose pictures the defense used (reported apart). Every other person is ``retained``.
        candidate_names, fillers, num_candidates, templates, seed: the IDIA's candidates (see
            :func:`~hf_forget.evaluation.idia.identity_inference_attack`); fillers come from Faker with ``seed``.
        neutral_term: what the forget-set detection compares a name's prompts to.
    """
    forgotten, unseen, kept = list(dict.fromkeys(forgotten)), set(unseen), set(kept)
    for label, members in (("unseen", unseen), ("kept", kept)):
        if members - set(faces):
            raise ForgetInputError(f"{len(members - set(faces))} '{label}' persons have no faces: pass their face images too.")
    _check_groups(set(forgotten), unseen, kept)
    if not neutral_term or not neutral_term.strip():
        raise ForgetInputError("the neutral term is empty: pass e.g. 'a person'.")
    inputs, neutral = embed_idia_inputs(
        model, tokenizer, image_processor, faces, candidate_names=[*candidate_names, *forgotten], fillers=fillers,
        num_candidates=num_candidates, templates=templates, images_per_person=images_per_person, seed=seed,
        batch_size=batch_size, extra_prompts=[t.format(neutral_term) for t in templates],
    )
    gone = set(forgotten)
    groups = [_group(n, gone, unseen, kept) for n in inputs.names]
    return AttackEmbeddings(
        face_embeds=inputs.face_embeds,
        text_embeds=inputs.text_embeds,
        neutral_embeds=neutral,
        targets=inputs.targets,
        groups=groups,
        forgotten_candidates=[inputs.candidates.index(n) for n in forgotten],
        evaluated=list(inputs.evaluated),
        skipped=list(inputs.skipped),
        neutral_term=neutral_term,
        names=list(inputs.names),
        skipped_names=list(inputs.skipped_names),
        candidates=list(inputs.candidates),
    )


# --------------------------------------------------------------------------------------------------------
# The suite
# --------------------------------------------------------------------------------------------------------
def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _rate(flags: Sequence[bool]) -> float | None:
    return _round(sum(bool(f) for f in flags) / len(flags)) if len(flags) else None


def empty_summary() -> dict:
    """The report's shape with every figure ``None``."""
    return {
        **{attack: {group: None for group in GROUPS} for attack in PER_GROUP_ATTACKS},
        **{attack: None for attack in ATTACKS[len(PER_GROUP_ATTACKS):]},
    }


@dataclass
class AttackSuiteResult:
    """The suite's verdict on one model.

    ``summary`` has the report's shape: ``{"idia": {group: rate}, "idia_top5": {...}, "rank_at_10": {...},
    "membership_auc": x, "forget_set_auc_text": x, "forget_set_auc_vision": x}`` (``None`` where not run or not
    defined); ``details`` holds counts, the ``kept`` group, medians and the second face statistic; ``idia`` is
    the paper's attack per person (names in memory only, as :class:`~hf_forget.evaluation.idia.IDIAResult`).
    """

    summary: dict
    details: dict
    idia: IDIAResult | None = None

    def to_dict(self) -> dict:
        return {"summary": self.summary, "details": self.details}


def run_attacks(
    embeddings: AttackEmbeddings,
    attacks: str | Sequence[str] = "all",
    *,
    tau: int = 1,
    top_k: int = TOP_K,
    max_rank: int = MAX_RANK,
) -> AttackSuiteResult:
    """Run the chosen attacks (``"all"`` or names from :data:`ATTACKS`) on precomputed embeddings."""
    chosen = parse_attacks(attacks)
    e = embeddings
    groups = e.groups
    members = {g: [i for i, group in enumerate(groups) if group == g] for g in (*GROUPS, KEPT)}
    summary, details = empty_summary(), {
        "num_persons": {g: len(members[g]) for g in (*GROUPS, KEPT)},
        "num_skipped": len(e.skipped),
        "num_forgotten_names": len(e.forgotten_candidates),
        "num_candidates": int(e.text_embeds.shape[1]),
        "num_templates": int(e.text_embeds.shape[0]),
        "images_per_person": int(e.face_embeds.shape[1]),
        "tau": tau,
        "top_k": top_k,
        "max_rank": max_rank,
        "neutral_term": e.neutral_term,
        "attacks": chosen,
    }

    def per_group(flags: Sequence[bool]) -> tuple[dict, float | None]:
        return {g: _rate([flags[i] for i in members[g]]) for g in GROUPS}, _rate([flags[i] for i in members[KEPT]])

    idia_result = None
    if "idia" in chosen:
        idia_result = idia_from_embeddings(
            e.face_embeds, e.text_embeds, e.targets, [g != "unseen" for g in groups], tau=tau,
            names=e.names or None, indices=e.evaluated or None,
        )
        idia_result.skipped, idia_result.skipped_names = list(e.skipped), list(e.skipped_names)
        summary["idia"], details["idia_kept"] = per_group([p.recognised for p in idia_result.persons])
    if "idia_top5" in chosen:
        recognised = top_k_idia(e.face_embeds, e.text_embeds, e.targets, k=top_k, tau=tau).tolist()
        summary["idia_top5"], details["idia_top5_kept"] = per_group(recognised)
    if {"rank_at_10", "membership_auc"} & set(chosen):
        scores = mean_similarity(e.face_embeds, e.text_embeds)
        if "rank_at_10" in chosen:
            ranks = true_name_ranks(scores, e.targets).tolist()
            summary["rank_at_10"], details["rank_at_10_kept"] = per_group([r <= max_rank for r in ranks])
            details["median_rank"] = {
                g: (float(statistics.median([ranks[i] for i in members[g]])) if members[g] else None)
                for g in (*GROUPS, KEPT)
            }
        if "membership_auc" in chosen:
            z = true_name_zscores(scores, e.targets).tolist()
            summary["membership_auc"] = _round(auc([z[i] for i in members["forgotten"]], [z[i] for i in members["unseen"]]))
            details["mean_zscore"] = {
                g: (_round(statistics.fmean([z[i] for i in members[g]])) if members[g] else None) for g in (*GROUPS, KEPT)
            }
    if "forget_set_auc_text" in chosen:
        similarity = neutral_similarity(e.text_embeds, e.neutral_embeds).tolist()
        gone = set(e.forgotten_candidates)
        forgotten = [similarity[c] for c in sorted(gone)]
        others = [s for c, s in enumerate(similarity) if c not in gone]
        summary["forget_set_auc_text"] = _round(auc(forgotten, others))
        details["neutral_similarity"] = {
            "forgotten_min": _round(min(forgotten)) if forgotten else None,
            "others_max": _round(max(others)) if others else None,
        }
    if "forget_set_auc_vision" in chosen:
        tightness, closeness = face_spread(e.face_embeds).tolist(), mean_face_closeness(e.face_embeds).tolist()
        forgotten = members["forgotten"]
        others = [i for i in range(len(groups)) if i not in set(forgotten)]
        pick = lambda values, people: [values[i] for i in people]  # noqa: E731
        summary["forget_set_auc_vision"] = _round(auc(pick(tightness, forgotten), pick(tightness, members["unseen"])))
        details["forget_set_auc_vision_vs_all"] = _round(auc(pick(tightness, forgotten), pick(tightness, others)))
        details["forget_set_auc_vision_mean_face"] = _round(
            auc(pick(closeness, forgotten), pick(closeness, members["unseen"]))
        )
    return AttackSuiteResult(summary=summary, details=details, idia=idia_result)


def attack_suite(
    model,
    tokenizer,
    image_processor,
    faces: Mapping[str, Sequence[Image.Image]],
    *,
    attacks: str | Sequence[str] = "all",
    forgotten: Iterable[str] = (),
    unseen: Iterable[str] = (),
    kept: Iterable[str] = (),
    tau: int = 1,
    **embed_kwargs,
) -> AttackSuiteResult:
    """Embed once (:func:`embed_for_attacks`) and run the attacks (:func:`run_attacks`) on one CLIP.

    Example:
    ```python
    from hf_forget.evaluation.attacks import attack_suite

    result = attack_suite(model, tokenizer, processor, faces, forgotten=["Jane Doe"], unseen=never_seen)
    result.summary["rank_at_10"]["forgotten"], result.summary["membership_auc"]
    ```
    """
    embeddings = embed_for_attacks(
        model, tokenizer, image_processor, faces, forgotten=forgotten, unseen=unseen, kept=kept, **embed_kwargs
    )
    result = run_attacks(embeddings, attacks, tau=tau)
    logger.info("attack suite: %s", result.summary)
    return result
