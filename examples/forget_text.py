"""Forget names in a CLIP text encoder: `hf-forget text` as a script, for `accelerate launch`.

    python examples/forget_text.py --model_name_or_path DIR --names "Jane Doe,John Roe" \
        --captions captions.txt --output_dir defended

    accelerate launch --mixed_precision bf16 examples/forget_text.py ...   # any Accelerate setup
    torchrun --nproc_per_node 2 examples/forget_text.py --use_cpu ...      # several CPU processes (gloo)

Every option of `hf-forget text --help` works here (`accelerate launch -m hf_forget.cli text ...` is the same).
"""

import sys

from hf_forget.cli import main

if __name__ == "__main__":
    sys.exit(main(["text", *sys.argv[1:]]))
