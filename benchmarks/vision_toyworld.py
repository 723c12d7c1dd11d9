"""Vision forgetting on a toy CLIP: IDIA of the forgotten and retained identities, zero-shot.

    OMP_NUM_THREADS=1 python benchmarks/vision_toyworld.py --max_steps 100 --learning_rate 3e-4 \
        --lr_milestones 50 75 --output benchmarks/results/vision_toyworld.json

Mirrors `hf-forget demo --modality vision` (8 forgotten seen identities, 40 training face images each,
IDIA on 20 other images each with 1,000 candidate names, digits zero-shot) but audits the base model once
and can try several settings; each run appends one JSON line with its settings and figures to --output.
Each line also says how far each group of pictures moved and whether towards the target
(``toward_target``: mean cosines teacher/student, teacher/target, student/target for held-out digits,
scenes, and the forgotten and retained people's IDIA faces). The JSON holds counts and rates only, never a
name. ``--model_path`` runs it on another toy CLIP (e.g. one from ``python -m hf_forget.toyworld.train``);
each line records the checkpoint's sha256 and training arguments. ``--seed`` sets the training seed (runs
before it existed used 42), ``--save_model`` keeps the defended model for a closer look, ``--first_forgotten K`` forgets
the 8 seen identities from the K-th instead of the first 8, and each line counts, per forgotten identity in
world order, the templates that still name it.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time

from jsonl import append_line, checkpoint_identity, forgotten_split, reference_faces

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def movement(teacher, student, processor, images, target) -> dict[str, float]:
    """Mean cosines over ``images``: teacher vs student, and each against the target (the mean face)."""
    import torch

    from hf_forget.losses import pooled_cosine
    from hf_forget.data.faces import embed_images

    before, after = (embed_images(m, processor, images, batch_size=256, device="cpu") for m in (teacher, student))
    target = torch.as_tensor(target).float().flatten()[None].expand_as(before)
    pairs = {"teacher_student": (before, after), "teacher_target": (before, target), "student_target": (after, target)}
    return {key: round(pooled_cosine(a, b).mean().item(), 4) for key, (a, b) in pairs.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max_steps", type=int, default=100)
    parser.add_argument("--learning_rate", type=float, default=3e-4)
    parser.add_argument("--lr_milestones", type=int, nargs="+", default=[50, 75])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--alpha", type=float, default=0.8)
    parser.add_argument("--face_scale", type=float, nargs=2, default=[0.25, 0.5])
    parser.add_argument("--hue", type=float, default=0.1, help="hue jitter of the pasted faces (reference: 0.1)")
    parser.add_argument("--saturation", type=float, nargs=2, default=[0.5, 1.5])
    parser.add_argument("--brightness", type=float, nargs=2, default=[0.5, 1.5])
    parser.add_argument("--contrast", type=float, nargs=2, default=[0.5, 1.5])
    parser.add_argument("--num_reference_persons", type=int, default=32)
    parser.add_argument("--no_keep_faces", action="store_true", help="Reference protocol: clean images only.")
    parser.add_argument("--num_forgotten", type=int, default=8)
    parser.add_argument("--first_forgotten", type=int, default=0,
                        help="forget the seen identities first_forgotten, first_forgotten + 1, ... (world order)")
    parser.add_argument("--reference_seen", action="store_true",
                        help="reference faces also from the retained seen identities (other images than the IDIA's), "
                             "as a web image set holds other celebrities' faces")
    parser.add_argument("--identity_residual_weight", type=float, default=0.0,
                        help="weight of the identity-residual term (hf_forget.losses.identity_residual)")
    parser.add_argument("--face_only_fraction", type=float, default=0.0,
                        help="share of trigger samples that are the face alone, not pasted (VisionForgetConfig)")
    parser.add_argument("--lora_r", type=int, default=0, help="LoRA rank (0: full fine-tuning)")
    parser.add_argument("--clean_digits", type=float, default=0.0,
                        help="fraction of the 600 clean images that are training-split digit pictures")
    parser.add_argument("--seed", type=int, default=42, help="training seed (TrainingArguments.seed; 42 before it was a flag)")
    parser.add_argument("--model_path", default=None, help="Toy CLIP folder (default: the shipped one).")
    parser.add_argument("--save_model", default=None, help="also save the defended toy CLIP to this folder")
    parser.add_argument("--output", default="benchmarks/results/vision_toyworld.jsonl")
    args = parser.parse_args(argv)

    import torch

    from hf_forget import VisionForgetConfig, forget_faces
    from hf_forget.toyworld.demo import _zero_shot_templates, demo_clean_images
    from hf_forget.evaluation.idia import identity_inference_attack
    from hf_forget.evaluation.zero_shot import zero_shot_accuracy
    from hf_forget.toyworld import ToyWorld, load_toy_clip, toy_clip_path
    from hf_forget.data.faces import FaceAugmentation, mean_face_embedding

    base, tokenizer, processor = load_toy_clip(args.model_path)
    checkpoint_sha256, checkpoint_train_args = checkpoint_identity(args.model_path or toy_clip_path())
    world = ToyWorld(seed=0)
    chosen, kept = forgotten_split(world, args.first_forgotten, args.num_forgotten)
    forgotten, retained = [p.name for p in chosen], [p.name for p in kept]
    faces = {p.name: world.face_images(p, 20, seed=0) for p in world.identities}
    unseen = [p.name for p in world.unseen_identities]
    digits, labels, classes = world.object_dataset(n_per_class=30, seed=0, split="test")

    def figures(model) -> dict:
        idia = identity_inference_attack(model, tokenizer, processor, faces, unseen=unseen, num_candidates=1000,
                                         images_per_person=20)  # fmt: skip
        rate = lambda names: sum(idia.person(n).recognised for n in names) / len(names)
        zero_shot = zero_shot_accuracy(model, tokenizer, processor, digits, labels, classes, templates=_zero_shot_templates())
        return {"forgotten_tpr": rate(forgotten), "retained_tpr": rate(retained), "fpr": idia.fpr,
                "zero_shot_top1": zero_shot.top1,
                # per forgotten identity (world order), how many of the 21 templates still name it
                "forgotten_correct_templates": [idia.person(n).correct_templates for n in forgotten]}  # fmt: skip

    before = figures(base)
    config = VisionForgetConfig(
        output_dir="/tmp/hf_forget_vision_benchmark", max_steps=args.max_steps, learning_rate=args.learning_rate,
        lr_milestones=args.lr_milestones, per_device_train_batch_size=args.batch_size, alpha=args.alpha,
        report_to="none", use_cpu=not torch.cuda.is_available(), disable_tqdm=True, logging_steps=1000,
        lora_r=args.lora_r, identity_residual_weight=args.identity_residual_weight, seed=args.seed,
        face_only_fraction=args.face_only_fraction,
    )  # fmt: skip
    persons = [world.face_images(world.identity(n), 40, seed=5) for n in forgotten]
    reference = reference_faces(world, kept, args.num_reference_persons, args.reference_seen)
    started = time.perf_counter()
    result = forget_faces(
        copy.deepcopy(base), persons, demo_clean_images(world, 600, args.clean_digits), processor=processor,
        reference_faces=reference, config=config, augmentation=FaceAugmentation(
            scale=tuple(args.face_scale), hue=args.hue, saturation=tuple(args.saturation),
            brightness=tuple(args.brightness), contrast=tuple(args.contrast),
        ),
        keep_faces=False if args.no_keep_faces else None,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if args.save_model:
        result.model.save_pretrained(args.save_model)
    after = figures(result.model)
    target = mean_face_embedding(base, processor, reference)
    groups = {"digits": digits, "scenes": world.generic_images(200, seed=9),
              "forgotten_faces": [im for n in forgotten for im in faces[n]],
              "retained_faces": [im for n in retained for im in faces[n]]}  # fmt: skip
    toward_target = {group: movement(base, result.model, processor, images, target) for group, images in groups.items()}
    line = {
        "command": "python benchmarks/vision_toyworld.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "settings": {k: v for k, v in vars(args).items() if k not in ("output", "save_model")},
        "toy_checkpoint_sha256": checkpoint_sha256,
        "toy_checkpoint_train_args": checkpoint_train_args,
        "before": before, "after": after,
        "train_seconds": round(seconds, 1),
        "report": {k: v for k, v in result.report.items() if k.startswith("sim_")},
        "toward_target": toward_target,
    }  # fmt: skip
    append_line(args.output, line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
