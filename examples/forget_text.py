"""Forget names in a CLIP text encoder.

    python examples/forget_text.py --model_name_or_path DIR --names "Jane Doe,John Roe" \
        --captions captions.txt --output_dir defended

    accelerate launch --mixed_precision bf16 examples/forget_text.py ...   # any Accelerate setup
    torchrun --nproc_per_node 2 examples/forget_text.py --use_cpu ...      # several CPU processes (gloo)

It accepts every TrainingArguments option (--max_steps, --learning_rate, --save_strategy, ...) and the
forgetting knobs of TextForgetConfig (--alpha, --beta, --neutral_term, --embedding, --lora_r, ...).
"""

import sys

from transformers import HfArgumentParser

from hf_forget import TextForgetConfig, TextScriptArguments, run_text


def main():
    parser = HfArgumentParser((TextScriptArguments, TextForgetConfig))
    script_args, config = parser.parse_args_into_dataclasses()
    result = run_text(script_args, config)
    if config.process_index == 0:
        print({k: v for k, v in result.report.items() if k.startswith(("sim_", "steps", "seconds"))})
    return 0 if result.passed else 3


if __name__ == "__main__":
    sys.exit(main())
