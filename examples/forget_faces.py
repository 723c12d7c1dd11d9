"""Forget faces in a CLIP vision encoder: `hf-forget vision` as a script, and its `accelerate launch` entry point.

    python examples/forget_faces.py --model_name_or_path DIR --faces faces/ --clean_images images/ \
        --reference_faces other_faces/ --output_dir defended

    python examples/forget_faces.py --config forget_faces.yaml --max_steps 50   # the command line overrides the file
    accelerate launch --mixed_precision bf16 examples/forget_faces.py ...      # any Accelerate setup
    accelerate launch -m hf_forget.cli vision ...                              # the same, through the package
    torchrun --nproc_per_node 2 examples/forget_faces.py --use_cpu ...         # several CPU processes (gloo)

`faces/` holds one subfolder of face images per person to forget (about 30 each); `images/` generic images
the faces are pasted onto; `other_faces/` faces of many other people, whose mean embedding is the target.
It accepts every TrainingArguments option (--max_steps, --learning_rate, --save_strategy, ...) and the
forgetting settings of VisionForgetConfig (--alpha, --beta, --lr_milestones, --lora_r, ...): see --help.
The options and what runs are those of `hf_forget/cli/vision.py` (`make_parser()` and `main()`).
"""

import sys

from hf_forget.cli import run

if __name__ == "__main__":
    sys.exit(run("vision", sys.argv[1:]))
