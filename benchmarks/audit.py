"""IDIA on the toy world, for the sections that forget toy-world identities (criterion, many_names).

The face embeddings and the candidate names are computed once a process (text forgetting leaves the vision
tower unchanged); each audit re-embeds the candidate prompts only. Results are aggregates, never a name.
"""

from __future__ import annotations

_AUDIT = {}


def toy_audit(model, forgotten: list[str] | None = None) -> dict:
    """IDIA on the toy world: 32 seen + 32 unseen identities, 20 images each, 1,000 candidate names, 21
    templates (as ``identity_inference_attack``; text forgetting leaves the vision tower unchanged, so the
    face embeddings are computed once and only the candidate prompts are re-embedded).

    With ``forgotten`` (the names a run forgot), also ``diagnostics`` (:func:`idia_diagnostics`): aggregates
    only, never a name.
    """
    from hf_forget.evaluation.idia import build_candidates, embed_candidate_prompts, idia_from_embeddings
    from hf_forget.toyworld import ToyWorld, load_toy_clip
    from hf_forget.data.faces import embed_images

    if not _AUDIT:
        world = ToyWorld(seed=0)
        clip, tokenizer, processor = load_toy_clip()
        names = [p.name for p in world.identities]
        images = [image for p in world.identities for image in world.face_images(p, 20, seed=0)]
        faces = embed_images(clip.eval(), processor, images, batch_size=64)
        _AUDIT.update(
            tokenizer=tokenizer, names=names, faces=faces.reshape(len(names), 20, -1),
            vision=[p.detach().clone() for p in clip.vision_model.parameters()],
            candidates=build_candidates(names, 1000),
            known=[p.name not in {u.name for u in world.unseen_identities} for p in world.identities],
            teacher=clip,
        )
    assert all(torch_equal(a, b) for a, b in zip(_AUDIT["vision"], model.vision_model.parameters()))
    model.eval()
    text = embed_candidate_prompts(model, _AUDIT["tokenizer"], _AUDIT["candidates"])
    targets = [_AUDIT["candidates"].index(n) for n in _AUDIT["names"]]
    result = idia_from_embeddings(_AUDIT["faces"], text, targets=targets, expected_known=_AUDIT["known"])
    out = {"tpr": result.tpr, "fpr": result.fpr}
    if forgotten is not None:
        if "teacher_text" not in _AUDIT:  # only runs that ask for diagnostics pay for the teacher's prompts
            teacher = _AUDIT["teacher"]
            _AUDIT["teacher_text"] = embed_candidate_prompts(teacher, _AUDIT["tokenizer"], _AUDIT["candidates"])
            _AUDIT["teacher_neutral"] = embed_candidate_prompts(teacher, _AUDIT["tokenizer"], ["a person"])[:, 0]
        out["diagnostics"] = idia_diagnostics(text, targets, set(forgotten))
    return out


def idia_diagnostics(text, targets: list[int], forgotten: set[str]) -> dict:
    """Why the IDIA still recognises forgotten people: aggregates over the seen identities (no names).

    - ``right_rate``: share of (image, template) predictions that are the person's own name (the IDIA
      takes a per-template majority; one right template in 21 makes a person recognised);
    - ``on_forgotten``: share of those predictions that fall on a forgotten candidate;
    - ``cos_to_neutral``: cosine of a forgotten seen name's prompt to the teacher's "a person" prompt, and
      ``cos_to_neutral_other`` the same for candidates that were not forgotten (the fillers);
    - ``residual_alignment``: cosine between the student's and the teacher's residuals (prompt minus the
      neutral prompt): near 1, what is left of a name still points the way the original did;
    - ``per_template``: ``right_rate`` and ``cos_to_neutral`` for each template.
    """
    import torch
    import torch.nn.functional as F

    from hf_forget.evaluation.idia import IDIA_TEMPLATES, predict_candidates

    seen = [i for i, known in enumerate(_AUDIT["known"]) if known]
    own = torch.tensor([targets[i] for i in seen])
    predictions = predict_candidates(_AUDIT["faces"][seen], text).transpose(1, 2)  # (persons, templates, images)
    right = predictions == own[:, None, None]
    is_forgotten = torch.tensor([c in forgotten for c in _AUDIT["candidates"]])
    neutral = F.normalize(_AUDIT["teacher_neutral"], dim=-1)[:, None]  # (templates, 1, dim)
    student, teacher = F.normalize(text, dim=-1), F.normalize(_AUDIT["teacher_text"], dim=-1)
    seen_forgotten = own[is_forgotten[own]]
    cos_seen = (student[:, seen_forgotten] * neutral).sum(-1)  # (templates, names)
    other = ~is_forgotten
    residual = F.cosine_similarity(student[:, seen_forgotten] - neutral, teacher[:, seen_forgotten] - neutral, dim=-1)

    def r(x) -> float:
        return round(float(x), 4)

    return {
        "right_rate": r(right.float().mean()),
        "on_forgotten": r(is_forgotten[predictions].float().mean()),
        "cos_to_neutral": r(cos_seen.mean()) if len(seen_forgotten) else None,
        "cos_to_neutral_other": r((student[:, other] * neutral).sum(-1).mean()) if other.any() else None,
        "residual_alignment": r(residual.mean()) if len(seen_forgotten) else None,
        "per_template": [
            {"template": t.format("<name>"), "right_rate": r(right[:, k].float().mean()),
             "cos_to_neutral": r(cos_seen[k].mean()) if len(seen_forgotten) else None}
            for k, t in enumerate(IDIA_TEMPLATES)
        ],
    }


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a.detach(), b.detach()))
