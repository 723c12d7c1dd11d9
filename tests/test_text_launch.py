"""`accelerate launch` and multi-process (torchrun, gloo) runs of examples/forget_text.py and `-m hf_forget.cli`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import CLIPTextModel

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "examples" / "forget_text.py")
SMALL = ["--per_device_train_batch_size", "8", "--num_trigger_samples", "64", "--max_eval_samples", "16",
         "--disable_tqdm", "true"]


def _env():
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.mark.slow
def test_accelerate_launch_example(tiny_text_encoder_dir, captions_file, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1", EXAMPLE,
           "--model_name_or_path", str(tiny_text_encoder_dir), "--names", "José Ñúñez,Li Wei",
           "--captions", str(captions_file), "--output_dir", str(out), "--max_steps", "150",
           "--learning_rate", "1e-3", "--save_strategy", "no", "--min_sim_backdoor", "0", "--min_sim_clean", "0", *SMALL]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    CLIPTextModel.from_pretrained(out)


@pytest.mark.slow
def test_two_cpu_processes_train_and_save_once(tiny_text_encoder_dir, captions_file, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", EXAMPLE, "--use_cpu",
           "--model_name_or_path", str(tiny_text_encoder_dir), "--names", "José Ñúñez,Li Wei",
           "--captions", str(captions_file), "--output_dir", str(out), "--max_steps", "10", "--learning_rate", "1e-2",
           "--min_sim_backdoor", "0", "--min_sim_clean", "0", *SMALL]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["steps"] == 10  # one JSON line: only the main process reports
    CLIPTextModel.from_pretrained(out)
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "config.json", "forget_report.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"
    ]


@pytest.mark.slow
def test_accelerate_launch_module(tiny_text_encoder_dir, captions_file, tmp_path):
    """`accelerate launch -m hf_forget.cli text ...`: the package's command under Accelerate, stdout one JSON line."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1", "-m", "hf_forget.cli",
           "text", "--model_name_or_path", str(tiny_text_encoder_dir), "--names", "Li Wei", "--captions",
           str(captions_file), "--output_dir", str(out), "--max_steps", "4", "--learning_rate", "1e-2", "--min_sim_backdoor", "0",
           "--min_sim_clean", "0", *SMALL]  # fmt: skip
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["steps"] == 4
    CLIPTextModel.from_pretrained(out)
