"""The attack suite on hand-built embeddings whose answer is known, and on a tiny CLIP (embedded once)."""

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from hf_forget.errors import ForgetInputError
from hf_forget.evaluation import attacks as attacks_module
from hf_forget.evaluation.attacks import (
    ATTACKS,
    AttackEmbeddings,
    attack_suite,
    auc,
    embed_for_attacks,
    empty_summary,
    face_spread,
    mean_face_closeness,
    mean_similarity,
    parse_attacks,
    run_attacks,
    top_k_idia,
    true_name_ranks,
    true_name_zscores,
)
from hf_forget.evaluation.idia import IDIA_TEMPLATES, idia_from_embeddings, identity_inference_attack
from hf_forget.testing import tiny_clip_model

T = 3  # templates in the hand-built cases
DIM = 64


# ---------------------------------------------------------------------------------------------------- AUC
def test_auc_of_perfectly_separated_scores_is_one_and_reversed_is_zero():
    assert auc([0.9, 0.8, 0.7], [0.1, 0.2]) == 1.0
    assert auc([0.1, 0.2], [0.9, 0.8, 0.7]) == 0.0


def test_auc_of_identical_distributions_is_one_half():
    assert auc([0.3, 0.3, 0.3], [0.3, 0.3]) == 0.5  # all ties
    assert auc([1, 2, 3, 4], [1, 2, 3, 4]) == 0.5
    rng = random.Random(0)
    same = auc([rng.gauss(0, 1) for _ in range(2000)], [rng.gauss(0, 1) for _ in range(2000)])
    assert abs(same - 0.5) < 0.03


def test_auc_counts_pairs_and_ties_by_the_rank_formula():
    # pairs (pos, neg): (2,1) win, (2,3) loss, (3,1) win, (3,3) tie -> (2 + 0.5) / 4
    assert auc([2, 3], [1, 3]) == pytest.approx(0.625)
    assert auc([], [1.0]) is None and auc([1.0], []) is None


# ------------------------------------------------------------------------------------- rank and z-score
def test_true_name_ranks_count_ties_against_the_true_name():
    scores = torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.3, 0.1], [0.5, 0.5, 0.1]])
    assert true_name_ranks(scores, [0, 0, 0]).tolist() == [1, 2, 2]
    assert true_name_ranks(scores, [2, 2, 1]).tolist() == [3, 3, 2]


def test_true_name_zscores_standardise_over_candidates():
    scores = torch.tensor([[1.0, 0.0, 0.0, -1.0]])  # mean 0, population std sqrt(0.5)
    assert true_name_zscores(scores, [0]).item() == pytest.approx(1 / 0.5**0.5)
    assert true_name_zscores(scores, [1]).item() == pytest.approx(0.0)


def basis(index: int, dim: int = DIM) -> torch.Tensor:
    vector = torch.zeros(dim)
    vector[index] = 1.0
    return vector


def ranked_world(ranks: list[int], groups: list[str], candidates: int = 40, images: int = 4):
    """Candidates along basis vectors (same in every template); person p's true name (candidate p) ranks
    exactly ``ranks[p]`` by mean similarity: ``ranks[p] - 1`` decoys weigh more than the true name."""
    text = torch.stack([torch.stack([basis(c) for c in range(candidates)])] * T)
    faces = []
    for person, rank in enumerate(ranks):
        weights = torch.linspace(0.02, 0.01, candidates)  # distinct small weights: no ties
        decoys = [c for c in range(candidates) if c != person][: rank - 1]
        weights[decoys] = torch.linspace(1.0, 0.9, len(decoys)) if decoys else weights[decoys]
        weights[person] = 0.5
        face = weights @ torch.stack([basis(c) for c in range(candidates)])
        faces.append(torch.stack([face] * images))
    return AttackEmbeddings(
        face_embeds=torch.stack(faces), text_embeds=text, neutral_embeds=torch.stack([basis(DIM - 1)] * T),
        targets=list(range(len(ranks))), groups=groups, forgotten_candidates=[],
    )


def test_rank_attack_counts_true_names_within_the_first_ten():
    ranks = [1, 5, 10, 11, 30, 2, 12, 3]
    groups = ["forgotten"] * 4 + ["retained"] * 2 + ["unseen"] * 2
    result = run_attacks(ranked_world(ranks, groups), "rank_at_10")
    assert result.summary["rank_at_10"] == {"forgotten": 0.75, "retained": 0.5, "unseen": 0.5}
    assert result.details["median_rank"]["forgotten"] == 7.5
    assert result.summary["idia"] == {"forgotten": None, "retained": None, "unseen": None}  # not run


# ----------------------------------------------------------------------------------------- IDIA top-k
def test_top_1_vote_is_the_papers_idia():
    torch.manual_seed(0)
    faces, text = torch.randn(6, 5, DIM), torch.randn(T, 30, DIM)
    targets = [0, 1, 2, 3, 4, 5]
    paper = idia_from_embeddings(faces, text, targets, [True] * 6)
    assert top_k_idia(faces, text, targets, k=1).tolist() == [p.recognised for p in paper.persons]


def test_top_5_vote_finds_a_name_that_wins_some_images_but_not_the_most():
    # per template: a hub filler (1) wins 3 images, the true name (0) 2, another filler (2) 1: the paper's vote
    # picks the hub; the true name is second of the vote, within the top 5
    winners = [1, 1, 1, 0, 0, 2]
    text = torch.stack([torch.stack([basis(c) for c in range(20)])] * T)
    faces = torch.stack([torch.stack([basis(w) for w in winners])])
    assert not idia_from_embeddings(faces, text, [0], [True]).persons[0].recognised
    assert top_k_idia(faces, text, [0], k=5).tolist() == [True]
    assert top_k_idia(faces, text, [0], k=2).tolist() == [True]
    assert top_k_idia(faces, text, [0], k=1).tolist() == [False]
    # ties count against the true name; a name without any vote is never found
    tied = torch.stack([torch.stack([basis(w) for w in [1, 1, 0, 0, 3, 4]])])
    assert top_k_idia(tied, text, [0], k=1).tolist() == [False] and top_k_idia(tied, text, [0], k=2).tolist() == [True]
    assert top_k_idia(faces, text, [5], k=5).tolist() == [False]


# -------------------------------------------------------------------------------------- membership AUC
def membership_world(forgotten_strength: float, unseen_strength: float, persons: int = 6, seed: int = 0):
    """``persons`` forgotten then ``persons`` unseen; each person's faces lean on their own name by a strength."""
    gen = torch.Generator().manual_seed(seed)
    candidates = 2 * persons + 20
    text = F.normalize(torch.randn(T, candidates, DIM, generator=gen), dim=-1)
    names = text.mean(0)
    faces = []
    for person in range(2 * persons):
        strength = forgotten_strength if person < persons else unseen_strength
        noise = torch.randn(4, DIM, generator=gen)
        faces.append(F.normalize(noise, dim=-1) + strength * F.normalize(names[person], dim=0))
    return AttackEmbeddings(
        face_embeds=torch.stack(faces), text_embeds=text, neutral_embeds=torch.randn(T, DIM, generator=gen),
        targets=list(range(2 * persons)), groups=["forgotten"] * persons + ["unseen"] * persons,
        forgotten_candidates=list(range(persons)),
    )


def test_membership_auc_is_one_when_forgotten_people_are_still_linked_to_their_names():
    result = run_attacks(membership_world(3.0, 0.0), "membership_auc")
    assert result.summary["membership_auc"] == 1.0
    assert result.details["mean_zscore"]["forgotten"] > result.details["mean_zscore"]["unseen"]


def test_membership_auc_is_about_one_half_when_forgotten_look_like_never_seen():
    values = [run_attacks(membership_world(0.0, 0.0, persons=20, seed=s), "membership_auc").summary["membership_auc"]
              for s in range(10)]
    assert abs(float(np.mean(values)) - 0.5) < 0.08


# ------------------------------------------------------------------------------------ forget-set detection
def test_text_forget_set_auc_is_one_when_forgotten_names_sit_on_the_neutral_term():
    e = membership_world(0.0, 0.0)
    neutral = F.normalize(torch.randn(T, DIM), dim=-1)
    text = e.text_embeds.clone()
    text[:, :3] = neutral.unsqueeze(1)  # the three forgotten names' prompts = the neutral prompts
    e = AttackEmbeddings(e.face_embeds, text, neutral, e.targets, e.groups, forgotten_candidates=[0, 1, 2])
    result = run_attacks(e, "forget_set_auc_text")
    assert result.summary["forget_set_auc_text"] == 1.0
    assert result.details["neutral_similarity"]["forgotten_min"] == pytest.approx(1.0)
    assert result.summary["forget_set_auc_vision"] is None


def test_text_forget_set_auc_is_about_one_half_for_random_names():
    e = membership_world(0.0, 0.0, persons=20)
    e = AttackEmbeddings(e.face_embeds, torch.randn(T, 400, DIM), torch.randn(T, DIM), e.targets, e.groups,
                         forgotten_candidates=list(range(0, 400, 2)))
    assert abs(run_attacks(e, "forget_set_auc_text").summary["forget_set_auc_text"] - 0.5) < 0.1


def faces_world(forgotten: torch.Tensor, seed: int = 0):
    """3 forgotten persons (their faces given), 5 retained, 8 never seen (each a cluster of pictures, cos ~0.8)."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(13, 1, DIM, generator=gen)
    others = F.normalize(centres + 0.5 * torch.randn(13, forgotten.shape[1], DIM, generator=gen), dim=-1)
    return AttackEmbeddings(
        torch.cat([forgotten, others]), torch.randn(T, 20, DIM, generator=gen), torch.randn(T, DIM, generator=gen),
        targets=list(range(16)), groups=["forgotten"] * 3 + ["retained"] * 5 + ["unseen"] * 8,
        forgotten_candidates=[0, 1, 2],
    )


def test_vision_forget_set_auc_is_one_when_forgotten_faces_collapse_onto_the_mean_face():
    gen = torch.Generator().manual_seed(1)
    mean_face = F.normalize(torch.randn(DIM, generator=gen), dim=0)
    collapsed = mean_face + 0.01 * torch.randn(3, 4, DIM, generator=gen)  # three forgotten persons on one target
    result = run_attacks(faces_world(collapsed), "forget_set_auc_vision")
    assert result.summary["forget_set_auc_vision"] == 1.0  # their pictures cluster tighter than anyone's
    assert result.details["forget_set_auc_vision_vs_all"] == 1.0
    assert result.details["forget_set_auc_vision_mean_face"] == 1.0
    assert face_spread(collapsed).min() > 0.99


def test_vision_forget_set_auc_is_zero_when_forgotten_faces_scatter_and_one_half_when_alike():
    gen = torch.Generator().manual_seed(2)
    scattered = F.normalize(torch.randn(3, 4, DIM, generator=gen), dim=-1)  # no identity left: pictures spread apart
    assert run_attacks(faces_world(scattered), "forget_set_auc_vision").summary["forget_set_auc_vision"] == 0.0
    values = []
    for seed in range(20):  # forgotten pictures drawn as never-seen people's are: no signal on average
        gen = torch.Generator().manual_seed(100 + seed)
        alike = F.normalize(torch.randn(3, 1, DIM, generator=gen) + 0.5 * torch.randn(3, 4, DIM, generator=gen), dim=-1)
        values.append(run_attacks(faces_world(alike, seed), "forget_set_auc_vision").summary["forget_set_auc_vision"])
    assert abs(float(np.mean(values)) - 0.5) < 0.1
    assert mean_face_closeness(scattered).shape == (3,)


def test_auc_is_undefined_for_nan_scores():
    assert auc([float("nan")], [0.1]) is None
    assert face_spread(torch.randn(2, 1, DIM)).isnan().all()  # one picture: no pairs


# ------------------------------------------------------------------------------------------- the suite
def test_summary_has_the_report_shape_and_groups():
    summary = run_attacks(membership_world(3.0, 0.0), "all").summary
    assert list(summary) == list(ATTACKS) and list(empty_summary()) == list(ATTACKS)
    for attack in ("idia", "idia_top5", "rank_at_10"):
        assert set(summary[attack]) == {"forgotten", "retained", "unseen"}
        assert summary[attack]["retained"] is None  # no retained person here
    assert summary["idia"]["forgotten"] == 1.0 and summary["rank_at_10"]["forgotten"] == 1.0
    assert all(isinstance(summary[k], float) for k in ATTACKS[3:])


def test_kept_persons_are_reported_apart():
    groups = ["forgotten", "retained", "kept", "kept", "unseen"]
    result = run_attacks(ranked_world([1, 1, 1, 30, 1], groups), ["rank_at_10"])
    assert result.summary["rank_at_10"] == {"forgotten": 1.0, "retained": 1.0, "unseen": 1.0}
    assert result.details["rank_at_10_kept"] == 0.5 and result.details["num_persons"]["kept"] == 2


def test_attack_names_are_checked():
    assert parse_attacks("all") == list(ATTACKS)
    assert parse_attacks("membership_auc, idia") == ["idia", "membership_auc"]
    with pytest.raises(ForgetInputError, match="unknown attack 'rank'"):
        parse_attacks("idia,rank")
    with pytest.raises(ForgetInputError, match="no attack"):
        parse_attacks(" , ")


@pytest.fixture(scope="module")
def tiny_clip():
    return tiny_clip_model()


def random_faces(count: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(count)]


def test_the_suite_embeds_prompts_once_and_its_idia_is_the_papers(tiny_clip, monkeypatch):
    model, tokenizer, processor = tiny_clip
    faces = {name: random_faces(3, i) for i, name in enumerate(["Ada Quill", "Bo Rinner", "Cy Tamsin", "Di Vomel", "Ed Wystan"])}
    names = list(faces)
    calls = []
    real = attacks_module.embed_idia_inputs

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(attacks_module, "embed_idia_inputs", counting)
    kwargs = dict(num_candidates=30, images_per_person=2, templates=IDIA_TEMPLATES[:4])
    result = attack_suite(model, tokenizer, processor, faces, forgotten=names[:2], unseen=names[3:],
                          candidate_names=["Fay Ornith"], **kwargs)
    assert len(calls) == 1
    paper = identity_inference_attack(model, tokenizer, processor, faces, unseen=names[3:], **kwargs)
    assert [p.recognised for p in result.idia.persons] == [p.recognised for p in paper.persons]
    assert result.details["num_persons"] == {"forgotten": 2, "retained": 1, "unseen": 2, "kept": 0}
    text = repr(result) + str(result.to_dict())
    assert not any(part in text for name in names for part in name.split())


def test_forgotten_names_without_faces_count_for_text_detection_only(tiny_clip):
    model, tokenizer, processor = tiny_clip
    faces = {"Alpha Person": random_faces(2, 0), "Beta Person": random_faces(2, 1)}
    e = embed_for_attacks(model, tokenizer, processor, faces, forgotten=["Gamma Absent"], unseen=["Beta Person"],
                          num_candidates=12, images_per_person=2, templates=IDIA_TEMPLATES[:2])
    assert e.groups == ["retained", "unseen"] and len(e.forgotten_candidates) == 1
    assert e.neutral_embeds.shape == (2, e.text_embeds.shape[-1])
    regrouped = e.regroup(forgotten=["Alpha Person"], unseen=["Beta Person"])
    assert regrouped.groups == ["forgotten", "unseen"] and regrouped.forgotten_candidates == [0]
    assert regrouped.face_embeds is e.face_embeds  # nothing embedded again
    with pytest.raises(ForgetInputError, match="not candidates"):
        e.regroup(forgotten=["Delta Nobody"])
    with pytest.raises(ForgetInputError, match="one group"):
        embed_for_attacks(model, tokenizer, processor, faces, forgotten=["Beta Person"], unseen=["Beta Person"],
                          num_candidates=12, images_per_person=2)


def test_the_attack_scores_stay_on_the_device_of_the_embeddings():
    """Embeddings a user keeps on a GPU: every tensor the scores build follows them (``meta``: any device but the
    CPU, with no GPU here)."""
    from hf_forget.evaluation.idia import idia_decisions, predict_candidates

    faces, texts = torch.randn(3, 4, 8, device="meta"), torch.randn(2, 5, 8, device="meta")
    scores = mean_similarity(faces, texts)
    assert true_name_ranks(scores, [0, 1, 2]).device.type == "meta"
    assert true_name_zscores(scores, [0, 1, 2]).device.type == "meta"
    assert top_k_idia(faces, texts, [0, 1, 2], k=2).device.type == "meta"
    assert face_spread(faces[:, :1]).device.type == "meta"
    predictions = predict_candidates(faces, texts).transpose(1, 2)
    assert idia_decisions(predictions, torch.tensor([0, 1, 2]), 5).recognised.device.type == "meta"
