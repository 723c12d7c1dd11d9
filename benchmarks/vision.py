"""e. vision: seconds per step of 128 clean + 128 trigger images on the toy CLIP's vision tower.

    OMP_NUM_THREADS=1 python benchmarks/vision.py [--quick]

Face augmentation and pasting (data loading) included. Writes results/vision.json. (Vision forgetting's
outcome, the IDIA and zero-shot, is vision_toyworld.py's.)
"""

from __future__ import annotations

import copy
import sys
import tempfile

from harness import median, quiet_settings, section_main, section_parser, step_timer, write

NAME = "vision"
COST = 0  # rough relative cost: with run.py --jobs, the costliest sections start first


def make_parser():
    return section_parser(sys.modules[__name__])


def run(args, env) -> dict:
    from transformers import set_seed

    from hf_forget.config import VisionForgetConfig
    from hf_forget.toyworld import IMAGE_SIZE, ToyWorld, load_toy_clip
    from hf_forget.trainers.vision import VisionForgetTrainer

    model, _, processor = load_toy_clip()
    world = ToyWorld(seed=0)
    faces = [world.face_images(p, 10, seed=5) for p in world.seen_identities[:8]]
    reference = [world.face_images(p, 4, seed=6) for p in world.unseen_identities[:16]]
    clean = world.generic_images(256, seed=7)
    steps = 4 if args.quick else 10
    per_step, wall_per_step = [], []
    for seed in range(args.repeats):
        with tempfile.TemporaryDirectory() as scratch:
            config = VisionForgetConfig(
                output_dir=scratch, max_steps=steps, per_device_train_batch_size=128, num_trigger_samples=256,
                max_eval_samples=32, seed=seed, **quiet_settings(),
            )
            set_seed(seed)
            timer = step_timer()
            trainer = VisionForgetTrainer(copy.deepcopy(model), config, processor, faces, clean,
                                          reference_faces=reference, callbacks=[timer])
            trainer.train()
            per_step.append(median(timer.cpu[1:]))
            wall_per_step.append(median(timer.wall[1:]))
            print(f"  vision seed {seed}: cpu {per_step[-1]:.3f} s/step", flush=True)
    payload = {
        "cpu_seconds_per_step": round(median(per_step), 3),
        "wall_seconds_per_step": round(median(wall_per_step), 3),
        "runs_cpu": [round(x, 3) for x in per_step],
        "model": "toy-world CLIP vision tower (shipped checkpoint)",
        "resolution": IMAGE_SIZE,
        "batch": "128 clean + 128 trigger images",
        "steps": steps,
        "note": "median over steps 2.. (the first warms up) of the time from one step's end to the next: face "
                "augmentation and pasting (data loading) included",
    }
    write("vision", payload, env)
    return payload


def rows(payload: dict) -> list[tuple[str, str]]:
    return [(f"e. vision toy CLIP, 128+128 images at {payload['resolution']} px: s/step",
             f"{payload['cpu_seconds_per_step']:.3f}")]


def main(argv=None) -> int:
    return section_main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
