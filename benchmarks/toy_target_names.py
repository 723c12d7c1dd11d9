"""Which names does the vision target Δ (the mean face) itself point at? A diagnostic for vision forgetting.

    OMP_NUM_THREADS=1 python benchmarks/toy_target_names.py [--model_path DIR] [--defended DIR]

The vision defense sends a person's faces towards Δ, the teacher's mean embedding of many people's faces
(here: the 32 unseen identities and the retained seen ones, 4 pictures each, as in ``vision_toyworld.py
--reference_seen``). The IDIA then ranks 1,000 candidate names against each face. For each forgotten identity
(the first 8 seen ones by default, as in ``vision_toyworld.py``; ``--first_forgotten K`` takes the 8 from the
K-th; reported by its index among the seen identities, never by name) this reports

* ``rank_at_target``: the rank of the person's own name at Δ itself (median over the 21 templates; 0 =
  Δ names them), and how many templates Δ names them in;
* ``templates_along_the_way``: on the straight path from the person's (teacher) faces to Δ, at each cosine
  to Δ, how many templates still name them by majority over their 20 audit pictures;
* with ``--defended``, the same audit on a defended toy CLIP: ``cos_to_target`` of their audit faces and
  ``templates_defended``, and ``score_parts``: their mean defended audit face ``s = a Δ + r`` (``a`` its cosine to
  Δ, ``r`` the residual orthogonal to Δ) scored against every name's template-mean prompt embedding, each score
  split into the part Δ gives (``a Δ·T``) and the part the residual gives (``r·T``), for the person's own name and
  for the best-scoring other name (a real identity or a generated filler; never which).

One JSON line per run is appended to --output (counts and ranks only, never a name).
"""

from __future__ import annotations

import argparse
import os
import sys

from jsonl import append_line, checkpoint_identity, forgotten_split, reference_faces

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_path", default=None, help="Toy CLIP folder (default: the shipped one).")
    parser.add_argument("--defended", default=None, help="a defended copy of that toy CLIP (CLIPModel folder)")
    parser.add_argument("--num_forgotten", type=int, default=8)
    parser.add_argument("--first_forgotten", type=int, default=0,
                        help="forget the seen identities first_forgotten, first_forgotten + 1, ... (world order)")
    parser.add_argument("--output", default="benchmarks/results/toy_target_names.jsonl")
    args = parser.parse_args(argv)

    import torch
    import torch.nn.functional as F
    from transformers import CLIPModel

    from hf_forget.evaluation.idia import (
        build_candidates,
        embed_candidate_prompts,
        majority_votes,
    )
    from hf_forget.toyworld import ToyWorld, load_toy_clip, toy_clip_path
    from hf_forget.data.faces import embed_images, mean_face_embedding

    model, tokenizer, processor = load_toy_clip(args.model_path)
    world = ToyWorld(seed=0)
    forgotten, retained = forgotten_split(world, args.first_forgotten, args.num_forgotten)
    candidates = build_candidates([p.name for p in world.identities], 1000)
    reference = reference_faces(world, retained, len(world.unseen_identities), with_retained=True)
    target = F.normalize(mean_face_embedding(model, processor, reference).float().flatten(), dim=0)
    texts = F.normalize(embed_candidate_prompts(model, tokenizer, candidates), dim=-1)  # (templates, candidates, dim)

    def faces(encoder, person):
        images = world.face_images(person, 20, seed=0)  # the audit's pictures
        return F.normalize(embed_images(encoder, processor, images, batch_size=256, device="cpu").float(), dim=-1)

    def templates_naming(embeddings, own: int) -> int:
        predictions = torch.einsum("nd,tcd->tnc", embeddings, texts).argmax(-1)  # (templates, images)
        return int((majority_votes(predictions[None], len(candidates))[0] == own).sum())

    at_target = texts @ target  # (templates, candidates)
    names = F.normalize(texts.mean(0), dim=-1)  # each candidate's template-mean prompt embedding
    names_at_target = names @ target
    num_real = len(world.identities)

    def score_parts(embeddings, own: int) -> dict:
        s = F.normalize(embeddings.mean(0), dim=0)
        a = s @ target
        residual = s - a * target
        target_part, residual_part = a * names_at_target, names @ residual
        total = target_part + residual_part
        best = int(torch.cat([total[:own], total.new_full((1,), -2.0), total[own + 1 :]]).argmax())
        parts = lambda i: {"target_part": round(target_part[i].item(), 4), "residual_part": round(residual_part[i].item(), 4)}
        return {"mean_face_cos_to_target": round(a.item(), 4), "residual_norm": round(residual.norm().item(), 4),
                "own_rank": int((total > total[own]).sum()), "own": parts(own),
                "best_other": {**parts(best), "real_identity": best < num_real}}  # fmt: skip

    defended = CLIPModel.from_pretrained(args.defended).eval() if args.defended else None
    rows = []
    for index, person in enumerate(forgotten):
        own = candidates.index(person.name)
        ranks = (at_target > at_target[:, own : own + 1]).sum(-1).float()
        teacher = faces(model, person)
        path = {}
        for t in (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98):
            mixed = F.normalize((1 - t) * teacher + t * target, dim=-1)
            path[f"{(mixed @ target).mean().item():.3f}"] = templates_naming(mixed, own)
        row = {"seen_index": args.first_forgotten + index, "rank_at_target": ranks.median().item(),
               "templates_at_target": int((ranks == 0).sum()), "templates_along_the_way": path}  # fmt: skip
        if defended is not None:
            student = faces(defended, person)
            row["cos_to_target"] = round((student @ target).mean().item(), 4)
            row["templates_defended"] = templates_naming(student, own)
            row["score_parts"] = score_parts(student, own)
        rows.append(row)
    line = {
        "command": "python benchmarks/toy_target_names.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "toy_checkpoint_sha256": checkpoint_identity(args.model_path or toy_clip_path())[0],
        "defended_sha256": checkpoint_identity(args.defended)[0] if args.defended else None,
        "forgotten": rows,
    }
    append_line(args.output, line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
