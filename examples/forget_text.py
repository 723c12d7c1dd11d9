"""Forget names in a CLIP text encoder: `hf-forget text` as a script, and its `accelerate launch` entry point.

    python examples/forget_text.py --model_name_or_path DIR --names "Jane Doe,John Roe" \
        --captions captions.txt --output_dir defended

    python examples/forget_text.py --config forget_text.yaml --max_steps 200   # the command line overrides the file
    accelerate launch --mixed_precision bf16 examples/forget_text.py ...      # any Accelerate setup
    accelerate launch -m hf_forget.cli text ...                               # the same, through the package
    torchrun --nproc_per_node 2 examples/forget_text.py --use_cpu ...         # several CPU processes (gloo)

It accepts every TrainingArguments option (--max_steps, --learning_rate, --save_strategy, ...) and the
forgetting settings of TextForgetConfig (--alpha, --beta, --neutral_term, --embedding, --lora_r, ...): see
--help. The options and what runs are those of `hf_forget/cli/text.py` (`make_parser()` and `main()`).
"""

import sys

from hf_forget.cli import run

if __name__ == "__main__":
    sys.exit(run("text", sys.argv[1:]))
