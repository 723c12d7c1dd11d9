"""Which tower of a defended toy CLIP costs zero-shot accuracy: each saved joint model scored as it is, with its text
tower alone (the original vision tower) and with its vision tower alone, on the demo's digit test pictures.

Besides top-1 (300 pictures: one picture is 0.33 points), the mean margin of the true class's logit over the best
other class (logits = 100 x cosine) moves smoothly with how far the towers drifted, which makes it the better
statistic to compare recipes on a handful of seeds.

    hf-forget demo --modality both --seed S --output_dir RUN ...   # or attack_eval.py --keep_outputs
    python benchmarks/zero_shot_split.py --label J0 RUN_A/model RUN_B/model ... --out benchmarks/results/zero_shot_split.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys

import torch
import torch.nn.functional as F

from hf_forget.evaluation.zero_shot import class_embeddings, topk_accuracy


@torch.no_grad()
def image_embeddings(vision, processor, digits) -> torch.Tensor:
    from hf_forget.data.faces import embed_images

    return F.normalize(embed_images(vision, processor, digits, 64), dim=-1)


def scores(classes: torch.Tensor, images: torch.Tensor, labels: torch.Tensor) -> dict:
    logits = 100 * images @ classes.T
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.scatter(1, labels[:, None], float("-inf")).max(1).values
    return {"top1": round(100 * topk_accuracy(logits, labels, ks=(1,))[1], 2),
            "margin": round((true - others).mean().item(), 3)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="folders of defended CLIPModels (a demo's OUTPUT_DIR/model)")
    parser.add_argument("--label", required=True, help="the recipe the models come from")
    parser.add_argument("--out", default=None, help="JSON file; the label's rows are replaced")
    args = parser.parse_args(argv)

    from transformers import CLIPModel

    from hf_forget.toyworld import ToyWorld, load_toy_clip
    from hf_forget.toyworld.demo import DemoSettings, _zero_shot_templates

    original, tokenizer, processor = load_toy_clip()
    original.eval()
    digits, labels, classes = ToyWorld(seed=0).object_dataset(
        n_per_class=DemoSettings.zero_shot_per_class, seed=0, split="test"
    )
    labels, templates = torch.tensor(labels), _zero_shot_templates()
    original_classes = class_embeddings(original, tokenizer, classes, templates)
    original_images = image_embeddings(original, processor, digits)
    before = scores(original_classes, original_images, labels)
    rows = []
    for path in args.models:
        model = CLIPModel.from_pretrained(path).eval()
        text, images = class_embeddings(model, tokenizer, classes, templates), image_embeddings(model, processor, digits)
        row = {"model": path, "both": scores(text, images, labels),
               "text_tower_only": scores(text, original_images, labels),
               "vision_tower_only": scores(original_classes, images, labels)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {part: {stat: round(statistics.median(r[part][stat] - before[stat] for r in rows), 3)
                      for stat in ("top1", "margin")} for part in ("both", "text_tower_only", "vision_tower_only")}
    payload = {}
    if args.out and os.path.exists(args.out):
        with open(args.out) as handle:
            payload = json.load(handle)
    payload["before"] = before
    command = shlex.join(["python", "benchmarks/zero_shot_split.py", *(sys.argv[1:] if argv is None else argv)])
    payload.setdefault("recipes", {})[args.label] = {"median_change": summary, "runs": rows, "command": command}
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(payload, handle, indent=1)
    print(json.dumps({"label": args.label, "before": before, "median_change": summary}))
    return payload


if __name__ == "__main__":
    main()
