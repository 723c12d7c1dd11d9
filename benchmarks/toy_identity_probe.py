"""How well does a toy CLIP's image tower tell people apart from one picture? (a diagnostic for issue 4)

    OMP_NUM_THREADS=1 python benchmarks/toy_identity_probe.py [--model_path DIR] [--out FILE]

Vision forgetting moves one person's faces and must leave everyone else's in place: that needs an image
tower whose features separate people picture by picture, not only after the IDIA's majority vote over 20
pictures. Logistic-regression probes, trained on 40 pictures of each of the 32 seen identities (image seed 5)
and scored on 20 others each (seed 0, the IDIA's pictures), on the tower's pooled output, on the projected
embedding and, as a reference for what a linear model reads from the pictures themselves, on 16x16 RGB
pixels:

* ``identity_top1``: 32-way identity of a single picture (chance 1/32);
* ``forgotten_vs_retained``: the 8 identities `vision_toyworld.py` forgets against the 24 it keeps (balanced
  accuracy, chance 0.5): what the student would have to tell apart to move the first and not the others.

Appends one JSON line (the checkpoint's sha256 and training arguments, accuracies; no names) to ``--out``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from jsonl import append_line, checkpoint_identity
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from toy_digit_probe import tower_features

from hf_forget.toyworld import ToyWorld, load_toy_clip, toy_clip_path


def features(model, processor, images) -> dict[str, np.ndarray]:
    """The tower's features (``toy_digit_probe.py``, a sibling script) and raw 16x16 RGB pixels."""
    pooled, projected = tower_features(model, processor, images)
    pixels = np.stack([np.asarray(im.convert("RGB").resize((16, 16)), dtype=np.float32).ravel() / 255 for im in images])
    return {"image_tower_pooled": pooled, "image_embedding_projected": projected, "raw_pixels_16x16": pixels}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_path", default=None, help="Toy CLIP folder (default: the shipped one).")
    parser.add_argument("--num_forgotten", type=int, default=8)
    parser.add_argument("--out", default="benchmarks/results/toy_identity_probe.jsonl")
    args = parser.parse_args(argv)
    folder = args.model_path or str(toy_clip_path())
    model, _, processor = load_toy_clip(folder)
    sha256, train_args = checkpoint_identity(folder)
    world = ToyWorld(seed=0)
    seen = list(world.seen_identities)
    train = [features(model, processor, world.face_images(p, 40, seed=5)) for p in seen]
    test = [features(model, processor, world.face_images(p, 20, seed=0)) for p in seen]
    y_train = np.repeat(np.arange(len(seen)), 40)
    y_test = np.repeat(np.arange(len(seen)), 20)
    accuracy: dict[str, dict[str, float]] = {}
    for name in train[0]:
        x_train = np.concatenate([r[name] for r in train])
        x_test = np.concatenate([r[name] for r in test])
        top1 = LogisticRegression(C=10, max_iter=5000).fit(x_train, y_train).score(x_test, y_test)
        forgotten = LogisticRegression(C=10, max_iter=5000, class_weight="balanced").fit(x_train, y_train < args.num_forgotten)
        split = balanced_accuracy_score(y_test < args.num_forgotten, forgotten.predict(x_test))
        accuracy[name] = {"identity_top1": round(float(top1), 4), "forgotten_vs_retained": round(float(split), 4)}
    result = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/toy_identity_probe.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "toy_checkpoint_sha256": sha256,
        "train_args": train_args,
        "identities": len(seen), "train_pictures_each": 40, "test_pictures_each": 20, "num_forgotten": args.num_forgotten,
        "chance": {"identity_top1": round(1 / len(seen), 4), "forgotten_vs_retained": 0.5},
        "probe_accuracy": accuracy,
    }  # fmt: skip
    append_line(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
