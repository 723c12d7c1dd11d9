"""Does the shipped toy CLIP's image tower hold digit-shape information? (a diagnostic for issue 3)

    OMP_NUM_THREADS=1 python benchmarks/toy_digit_probe.py [--model_path DIR]

Logistic-regression probes, trained on 600 rendered *training-split* digit pictures and scored on 300
*test-split* ones (``ToyWorld.object_dataset``): on the image tower's pooled output, on its projected
embedding, and, as a reference for what a linear model can read from the pictures themselves, on 16x16
raw-pixel contrast (absolute difference from the picture's mean colour). Chance is 0.10. Writes
``benchmarks/results/toy_digit_probe.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from transformers import CLIPImageProcessorPil, CLIPModel

from hf_forget.encoders import encode_images
from hf_forget.toyworld import ToyWorld, toy_clip_path


def pixel_contrast(images) -> np.ndarray:
    out = []
    for image in images:
        pixels = np.asarray(image.convert("RGB").resize((16, 16)), dtype=np.float32) / 255
        out.append(np.abs(pixels - pixels.reshape(-1, 3).mean(0)).sum(-1).ravel())
    return np.stack(out)


@torch.no_grad()
def tower_features(model, processor, images) -> tuple[np.ndarray, np.ndarray]:
    pixel_values = processor(images=images, return_tensors="pt").pixel_values
    pooled = encode_images(model.vision_model, pixel_values)  # the tower's pooler output
    return pooled.numpy(), encode_images(model, pixel_values).numpy()  # the projected CLIP embedding


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_path", default=str(toy_clip_path()))
    parser.add_argument("--out", default="benchmarks/results/toy_digit_probe.json")
    args = parser.parse_args()
    model = CLIPModel.from_pretrained(args.model_path).eval()
    processor = CLIPImageProcessorPil.from_pretrained(args.model_path)
    world = ToyWorld()
    train, train_labels, _ = world.object_dataset(n_per_class=60, seed=1, split="train")
    test, test_labels, _ = world.object_dataset(n_per_class=30, seed=0, split="test")
    train_pooled, train_projected = tower_features(model, processor, train)
    test_pooled, test_projected = tower_features(model, processor, test)
    features = {
        "image_tower_pooled": (train_pooled, test_pooled),
        "image_embedding_projected": (train_projected, test_projected),
        "raw_pixel_contrast_16x16": (pixel_contrast(train), pixel_contrast(test)),
    }
    result = {
        "command": "OMP_NUM_THREADS=1 python " + " ".join(sys.argv),
        "train_images": len(train), "test_images": len(test), "chance": 0.1,
        "probe_accuracy": {
            name: round(LogisticRegression(max_iter=3000).fit(x, train_labels).score(y, test_labels), 4)
            for name, (x, y) in features.items()
        },
    }
    print(json.dumps(result, indent=2))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
