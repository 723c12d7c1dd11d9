"""Forget faces in a CLIP vision encoder (CLIPVisionModel, CLIPVisionModelWithProjection or CLIPModel).

    python examples/forget_faces.py --model_name_or_path DIR --faces faces/ --clean_images images/ \
        --reference_faces other_faces/ --output_dir defended

    accelerate launch --mixed_precision bf16 examples/forget_faces.py ...   # any Accelerate setup
    torchrun --nproc_per_node 2 examples/forget_faces.py --use_cpu ...      # several CPU processes (gloo)

`faces/` holds one subfolder of face images per person to forget (about 30 each); `images/` generic
images the faces are pasted onto; `other_faces/` faces of many other people, whose mean embedding is the
target. It accepts every TrainingArguments option (--max_steps, --learning_rate, --save_strategy, ...)
and the forgetting knobs of VisionForgetConfig (--alpha, --beta, --lr_milestones, --lora_r, ...).
"""

import sys

from transformers import HfArgumentParser

from hf_forget import VisionForgetConfig
from hf_forget.vision_api import VisionScriptArguments, run_vision


def main():
    parser = HfArgumentParser((VisionScriptArguments, VisionForgetConfig))
    script_args, config = parser.parse_args_into_dataclasses()
    result = run_vision(script_args, config)
    if config.process_index == 0:
        print({k: v for k, v in result.report.items() if k.startswith(("sim_", "steps", "seconds"))})
    return 0 if result.passed else 3


if __name__ == "__main__":
    sys.exit(main())
