"""Scale-out through Accelerate: a two-tower CLIPModel trains data-parallel (each process runs the tower through
DDP's forward), to the weights of a single-process run on the same global batch."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import CLIPModel, CLIPTextModelWithProjection, CLIPVisionModelWithProjection

from hf_forget.config import TextForgetConfig
from hf_forget.encoders import clip_tower, with_tower
from hf_forget.testing import tiny_clip_model
from hf_forget.trainers.text import TextForgetTrainer

from conftest import training_captions

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "examples" / "forget_text.py")


def _env():
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_a_tower_shares_the_clip_models_modules_and_goes_back_into_it():
    clip, _, _ = tiny_clip_model()
    for modality, cls, parts in (("text", CLIPTextModelWithProjection, ("text_model", "text_projection")),
                                 ("vision", CLIPVisionModelWithProjection, ("vision_model", "visual_projection"))):
        tower = clip_tower(clip, modality)
        assert type(tower) is cls and all(getattr(tower, p) is getattr(clip, p) for p in parts)
        assert not any(p.is_meta for p in tower.parameters())
        assert with_tower(clip, tower, modality) is clip  # trained in place: nothing to put back
        replaced = copy.deepcopy(tower)
        merged = with_tower(clip, replaced, modality)
        assert merged is not clip and all(getattr(merged, p) is getattr(replaced, p) for p in parts)
        other = "vision_model" if modality == "text" else "text_model"
        assert torch.equal(getattr(merged, other).embeddings.position_embedding.weight,
                           getattr(clip, other).embeddings.position_embedding.weight)  # fmt: skip


def test_clip_model_with_lora_trains_the_tower_and_saves_a_merged_clip_model(tmp_path):
    """The Trainer's model is the tower (its forward is what DDP wraps); LoRA is merged into the saved CLIPModel,
    whose vision tower is the base's."""
    model, tokenizer, _ = tiny_clip_model()
    base = copy.deepcopy(model.state_dict())
    config = TextForgetConfig(output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=8, lora_r=4,
                              num_trigger_samples=32, max_eval_samples=16, learning_rate=1e-2, embedding="pooled",
                              disable_tqdm=True, report_to="none")  # fmt: skip
    trainer = TextForgetTrainer(model, config, tokenizer, training_captions(200), ["Ann Example"])
    assert type(trainer.model.get_base_model()) is CLIPTextModelWithProjection
    trainer.train()
    trainer.save_model(str(tmp_path / "out"))
    saved = CLIPModel.from_pretrained(tmp_path / "out").state_dict()
    assert not any("lora" in key for key in saved)
    assert all(torch.equal(saved[k], v) for k, v in base.items() if k.startswith(("vision_model.", "visual_projection")))
    changed = {k for k, v in base.items() if not torch.equal(saved[k], v)}
    assert changed and all(k.startswith(("text_model.encoder.", "text_projection.")) for k in changed), sorted(changed)


def _run(cmd, out):
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return load_file(out / "model.safetensors")


@pytest.mark.slow
def test_two_processes_defend_a_clip_model_to_the_single_process_weights(tmp_path):
    """torchrun, 2 CPU processes (gloo) x 8 samples vs 1 process x 16: same global batches, same weights.

    Every tensor agrees to float tolerance but the attention key biases: their gradient is zero in exact
    arithmetic (softmax ignores a shift shared by all keys), so AdamW turns float noise, which differs with the
    reduction order, into steps of the learning rate's size; they are compared to that size."""
    clip, tokenizer, processor = tiny_clip_model()
    base_dir = tmp_path / "clip"
    for part in (clip, tokenizer, processor):
        part.save_pretrained(base_dir)
    (tmp_path / "captions.txt").write_text("\n".join(training_captions(400)), encoding="utf-8")
    common = ["--use_cpu", "--model_name_or_path", str(base_dir), "--names", "Ada Quenby,Bo Marlowe", "--captions",
              str(tmp_path / "captions.txt"), "--max_steps", "6", "--learning_rate", "1e-3", "--num_trigger_samples",
              "64", "--max_eval_samples", "16", "--disable_tqdm", "true", "--save_strategy", "no", "--report_to", "none",
              "--stop_at_criterion", "false", "--min_sim_backdoor", "0", "--min_sim_clean", "0"]  # fmt: skip
    one, two = tmp_path / "one", tmp_path / "two"
    single = _run([sys.executable, EXAMPLE, *common, "--per_device_train_batch_size", "16", "--output_dir", str(one)], one)
    double = _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", EXAMPLE, *common,
                   "--per_device_train_batch_size", "8", "--output_dir", str(two)], two)  # fmt: skip
    base = load_file(base_dir / "model.safetensors")
    assert set(single) == set(double) == set(base)
    moved = max((single[k] - base[k]).abs().max().item() for k in base)
    assert moved > 1e-3  # the run trained
    for key in base:
        tolerance = 1e-3 if key.endswith("k_proj.bias") else 1e-6
        torch.testing.assert_close(double[key], single[key], atol=tolerance, rtol=0, msg=key)
        if key.startswith(("vision_model.", "visual_projection.")):
            assert torch.equal(double[key], base[key]), key


@pytest.mark.slow
def test_fsdp_shards_a_pipelines_encoders_to_the_data_parallel_weights(tmp_path):
    """examples/fsdp.yaml (FSDP2) on 2 CPU processes (gloo; tests/fsdp_on_cpu.py lifts Accelerate's GPU-only check)
    defends a FLUX pipeline, CLIP and T5 (tied embedding) sharded, to the weights of plain data parallelism on the
    same batches; the main process gathers each encoder and writes a pipeline that loads and generates.

    ``beta 0``: under FSDP the weight anchor compares against the unsharded parameters it snapshotted before
    sharding, so its term is 0 there (a known gap of the anchor, see the trainer)."""
    from diffusers import DiffusionPipeline

    from test_sd3_flux import CLI_RUN, NAMES, _captions, build_flux

    base = build_flux(tmp_path / "flux")
    (tmp_path / "captions.txt").write_text("\n".join(_captions(100)), encoding="utf-8")
    args = ["text", "--pipeline", str(base), "--names", ",".join(NAMES), "--captions", str(tmp_path / "captions.txt"),
            *CLI_RUN, "--beta", "0", "--use_cpu", "--save_strategy", "no"]  # fmt: skip
    fsdp, ddp = tmp_path / "fsdp", tmp_path / "ddp"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ROOT / "examples" / "fsdp.yaml"),
              "--num_processes", "2", str(ROOT / "tests" / "fsdp_on_cpu.py")]  # fmt: skip
    proc = subprocess.run([*launch, *args, "--output_dir", str(fsdp)], env=_env(), capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "process 1 shards with FSDP2" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "hf_forget.cli",
                           *args, "--output_dir", str(ddp)], env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for component in ("text_encoder", "text_encoder_2"):
        sharded, replicated = (load_file(out / component / "model.safetensors") for out in (fsdp, ddp))
        trained = load_file(base / component / "model.safetensors")
        assert set(sharded) == set(replicated) == set(trained)
        assert max((replicated[k] - trained[k]).abs().max().item() for k in trained) > 1e-3
        for key in trained:
            torch.testing.assert_close(sharded[key], replicated[key], atol=1e-6, rtol=0, msg=f"{component} {key}")
    pipe = DiffusionPipeline.from_pretrained(fsdp)
    image = pipe("a photo", num_inference_steps=1, height=16, width=16, output_type="np", max_sequence_length=32).images
    assert image.shape == (1, 16, 16, 3)
