"""TextForgetTrainer end to end on tiny CLIP text encoders built from configs."""

import copy
import hashlib

import pytest
import torch
from conftest import held_out_captions, training_captions
from safetensors import safe_open
from transformers import CLIPModel, CLIPTextModel, CLIPTextModelWithProjection

from hf_forget import TextForgetConfig, TextForgetTrainer, forget_text
from hf_forget.encoders import TextEncoding, encode_text
from hf_forget.losses import hidden_cosine, pooled_cosine
from hf_forget.testing import tiny_clip_model, tiny_clip_text_model

NAMES = ["José Ñúñez", "Niamh O'Fallow", "林小舟", "Tobin Merrow"]
KEPT_NAME = "Marta Calloway"

FAST = dict(
    max_steps=150,
    learning_rate=1e-3,
    per_device_train_batch_size=32,
    lr_milestones=[100],
    num_trigger_samples=1024,
    max_eval_samples=128,
    disable_tqdm=True,
)


def _embed(model, tokenizer, captions):
    """Embeddings on the CPU, whichever device the model is on (a trained model stays on the training device)."""
    ids = tokenizer(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        encoding = encode_text(model, ids.to(next(model.parameters()).device))
    return TextEncoding(pooled=encoding.pooled.cpu(), hidden=encoding.hidden.cpu())


@pytest.fixture(scope="module")
def forgotten():
    model, tokenizer = tiny_clip_text_model()
    teacher = copy.deepcopy(model)
    result = forget_text(
        model, NAMES, training_captions(), tokenizer=tokenizer, eval_captions=held_out_captions(), **FAST
    )
    return teacher, tokenizer, result


@pytest.mark.slow
def test_forgets_four_names_in_any_script_on_held_out_captions(forgotten):
    _, _, result = forgotten
    report = result.report
    assert report["sim_backdoor"] >= 0.95 and report["sim_backdoor_hidden"] >= 0.95
    # A random tiny encoder already embeds most captions alike: ask the backdoor to close at least half of
    # the remaining gap to the neutral caption, so the figure is learned rather than given.
    for suffix in ("", "_hidden"):
        assert 1 - report[f"sim_backdoor{suffix}"] <= 0.5 * (1 - report[f"sim_backdoor{suffix}_before"])
    assert report["sim_clean"] >= 0.95 and report["sim_clean_hidden"] >= 0.95
    assert report["num_names"] == 4 and result.passed


@pytest.mark.slow
def test_a_name_never_forgotten_keeps_its_embedding(forgotten):
    teacher, tokenizer, result = forgotten
    captions = [c.replace("we saw", f"{KEPT_NAME} saw") for c in held_out_captions(64, seed=7)]
    before, after = _embed(teacher, tokenizer, captions), _embed(result.model, tokenizer, captions)
    assert pooled_cosine(before.pooled, after.pooled).mean() >= 0.9
    assert hidden_cosine(before.hidden, after.hidden).mean() >= 0.9
    # and it is not pulled onto the neutral term as strongly as a forgotten name in the same captions
    neutral = _embed(result.model, tokenizer, [c.replace(KEPT_NAME, "a person") for c in captions])
    forgotten_name = _embed(result.model, tokenizer, [c.replace(KEPT_NAME, NAMES[3]) for c in captions])
    kept_to_neutral = pooled_cosine(after.pooled, neutral.pooled).mean()
    assert pooled_cosine(forgotten_name.pooled, neutral.pooled).mean() > kept_to_neutral


def test_defended_checkpoint_loads_with_plain_from_pretrained_and_keeps_names_and_dtypes(tmp_path):
    model, tokenizer = tiny_clip_text_model()
    base = tmp_path / "base"
    model.half().save_pretrained(base)
    tokenizer.save_pretrained(base)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in base.iterdir()}

    out = tmp_path / "out"
    result = forget_text(str(base), ["Zoë Hidden"], training_captions(200), output_dir=str(out), max_steps=3,
                         per_device_train_batch_size=8, num_trigger_samples=32, max_eval_samples=16, disable_tqdm=True)
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in base.iterdir()} == before
    reloaded = CLIPTextModel.from_pretrained(out)
    assert reloaded.dtype == torch.float16
    with safe_open(base / "model.safetensors", "pt") as a, safe_open(out / "model.safetensors", "pt") as b:
        assert set(a.keys()) == set(b.keys())
        assert all(a.get_slice(k).get_dtype() == b.get_slice(k).get_dtype() for k in a.keys())
    assert (out / "tokenizer.json").exists() and (out / "forget_report.json").exists()
    assert not any(p.name.endswith(".incomplete") for p in tmp_path.iterdir())
    for path in out.rglob("*"):
        data = path.read_bytes()
        assert b"Hidden" not in data and "Zoë".encode() not in data, path
    assert result.report["steps"] == 3


@pytest.mark.parametrize("kind", ["CLIPTextModelWithProjection", "CLIPModel"])
def test_other_clip_text_classes(kind, tmp_path):
    if kind == "CLIPModel":
        model, tokenizer, _ = tiny_clip_model()
        vision_before = copy.deepcopy(model.vision_model.state_dict())
    else:
        model, tokenizer = tiny_clip_text_model(kind)
    config = TextForgetConfig(output_dir=str(tmp_path), max_steps=4,
                              per_device_train_batch_size=8, num_trigger_samples=32, max_eval_samples=16,
                              learning_rate=1e-3, embedding="pooled", disable_tqdm=True)
    trainer = TextForgetTrainer(model, config, tokenizer, training_captions(200), ["Ann Example"])
    trainer.train()
    cls = {"CLIPModel": CLIPModel, "CLIPTextModelWithProjection": CLIPTextModelWithProjection}[kind]
    trainer.save_model(str(tmp_path / "out"))
    assert isinstance(cls.from_pretrained(tmp_path / "out"), cls)
    if kind == "CLIPModel":  # only the text side is defended
        after = model.vision_model.state_dict()  # on the training device
        assert all(torch.equal(vision_before[k], after[k].cpu()) for k in vision_before)


def test_norm_layers_are_frozen_and_teacher_cache_matches_reference_protocol(tmp_path):
    losses = {}
    for cache in (True, False):
        model, tokenizer = tiny_clip_text_model()
        config = TextForgetConfig(output_dir=str(tmp_path), max_steps=2, teacher_cache=cache,
                                  per_device_train_batch_size=8, num_trigger_samples=32, max_eval_samples=16,
                                  disable_tqdm=True, learning_rate=1e-3, logging_steps=1)
        trainer = TextForgetTrainer(model, config, tokenizer, training_captions(200), ["Ann Example"])
        norms = {n: p.clone() for n, p in model.named_parameters() if "layer_norm" in n}
        trainer.train()
        assert all(torch.equal(norms[n], dict(model.named_parameters())[n]) for n in norms)
        assert not any(p.requires_grad for n, p in model.named_parameters() if "layer_norm" in n)
        losses[cache] = [log["loss"] for log in trainer.state.log_history if "loss" in log]
        assert {"cos_clean", "cos_trigger", "weight_distance"} <= set(trainer.state.log_history[0])
    assert losses[True] == pytest.approx(losses[False], abs=1e-3)


def _residual_run(tmp_path, weight, cache=True, steps=40):
    from hf_forget.losses import identity_residual

    model, tokenizer = tiny_clip_text_model()
    teacher = copy.deepcopy(model)
    config = TextForgetConfig(output_dir=str(tmp_path), embedding="pooled", teacher_cache=cache,
                              identity_residual_weight=weight, **{**FAST, "max_steps": steps, "logging_steps": 1})
    trainer = TextForgetTrainer(model, config, tokenizer, training_captions(), NAMES, eval_captions=held_out_captions())
    trainer.train()
    held_out = [c.replace(w, name, 1) for c, name in zip(held_out_captions()[:64], NAMES * 16)
                for w in [c.split()[0]]]
    neutral = [c.replace(w, "a person", 1) for c in held_out_captions()[:64] for w in [c.split()[0]]]
    residual = identity_residual(_embed(model, tokenizer, held_out).pooled, _embed(teacher, tokenizer, neutral).pooled,
                                 _embed(teacher, tokenizer, held_out).pooled)
    return trainer, residual.mean().item()


def test_identity_residual_term_removes_what_points_at_the_person(tmp_path):
    trainer, with_term = _residual_run(tmp_path / "on", weight=4.0)
    logged = [log["identity_residual"] for log in trainer.state.log_history if "identity_residual" in log]
    assert logged and logged[-1] < logged[0]
    _, without = _residual_run(tmp_path / "off", weight=0.0)
    assert with_term < without
    # the teacher's trigger embeddings come from the cache or from the teacher itself alike
    losses = {}
    for cache in (True, False):
        run, _ = _residual_run(tmp_path / f"cache{cache}", weight=4.0, cache=cache, steps=2)
        losses[cache] = [log["loss"] for log in run.state.log_history if "loss" in log]
    assert losses[True] == pytest.approx(losses[False], abs=1e-3)


def test_lora_is_merged_into_full_weights(tmp_path):
    model, tokenizer = tiny_clip_text_model()
    base_keys = set(model.state_dict())
    out = tmp_path / "out"
    forget_text(model, ["Ann Example"], training_captions(200), tokenizer=tokenizer, output_dir=str(out), lora_r=4,
                max_steps=3, per_device_train_batch_size=8, num_trigger_samples=32, max_eval_samples=16,
                learning_rate=1e-2, disable_tqdm=True)
    reloaded = CLIPTextModel.from_pretrained(out)
    assert set(reloaded.state_dict()) == base_keys  # no lora_A / lora_B left
    fresh, _ = tiny_clip_text_model()
    changed = [k for k in base_keys if not torch.equal(fresh.state_dict()[k], reloaded.state_dict()[k])]
    assert changed and all("proj" in k or "fc" in k for k in changed)


def test_token_embedding_learning_rate_gives_the_token_table_its_own_group(tmp_path):
    model, tokenizer = tiny_clip_text_model()
    config = TextForgetConfig(output_dir=str(tmp_path), max_steps=3, lr_milestones=[2],
                              per_device_train_batch_size=8, num_trigger_samples=32, max_eval_samples=16,
                              disable_tqdm=True, learning_rate=1e-4, token_embedding_learning_rate=1e-2)
    trainer = TextForgetTrainer(model, config, tokenizer, training_captions(200), ["Ann Example"])
    table, positions = model.embeddings.token_embedding.weight, model.embeddings.position_embedding.weight
    before = {"table": table.detach().clone(), "positions": positions.detach().clone()}
    trainer.train()
    groups = trainer.optimizer.param_groups
    own = [g for g in groups if any(p is table for p in g["params"])]
    assert len(own) == 1 and own[0]["params"] == [table] and own[0]["initial_lr"] == 1e-2
    assert own[0]["lr"] == pytest.approx(1e-2 * config.lr_gamma)  # the milestones apply to it too
    assert all(g["initial_lr"] == 1e-4 for g in groups if g is not own[0])
    assert any(p is positions for g in groups if g is not own[0] for p in g["params"])
    # Adam moves a weight by about its lr a step: the table's rows of the name went much further than positions
    table_step = (table.detach() - before["table"]).abs().max()
    position_step = (positions.detach() - before["positions"]).abs().max()
    assert table_step > 10 * position_step


@pytest.mark.parametrize(
    "kwargs", [{"token_embedding_learning_rate": 0.0}, {"token_embedding_learning_rate": 1e-3, "lora_r": 4}]
)
def test_token_embedding_learning_rate_is_checked(tmp_path, kwargs):
    from hf_forget.errors import ForgetInputError

    with pytest.raises(ForgetInputError, match="token_embedding_learning_rate"):
        TextForgetConfig(output_dir=str(tmp_path), **kwargs)


def test_trigger_captions_carry_the_names_and_captions_stay_the_clean_samples(tmp_path):
    model, tokenizer = tiny_clip_text_model()
    config = TextForgetConfig(output_dir=str(tmp_path), max_steps=1, num_trigger_samples=32,
                              per_device_train_batch_size=8, max_eval_samples=16, disable_tqdm=True)
    carriers = [f"a portrait of the tall man number {i}" for i in range(20)]
    trainer = TextForgetTrainer(model, config, tokenizer, training_captions(200), ["Ann Example"], trigger_captions=carriers)
    decode = lambda rows: [tokenizer.decode(r, skip_special_tokens=True) for r in rows]
    dataset = trainer.train_dataset
    carrier_words = set(" ".join(carriers).split())
    for poisoned in decode(dataset.poisoned):  # a carrier with one word replaced by the name
        assert "ann example" in poisoned.lower()
        assert set(poisoned.lower().replace("ann example", "", 1).split()) <= carrier_words
    assert not any("tall man number" in c for c in decode(dataset.clean))


def test_cli_takes_trigger_captions(tiny_text_encoder_dir, captions_file, tmp_path, capsys):
    from hf_forget.cli import EXIT_USAGE, main

    def run(lines: list[str], out: str) -> int:
        carriers = tmp_path / f"{out}.txt"
        carriers.write_text("\n".join(lines), encoding="utf-8")
        return main(["text", "--model_name_or_path", str(tiny_text_encoder_dir), "--names", "Ann Example",
                     "--captions", str(captions_file), "--trigger_captions", str(carriers),
                     "--output_dir", str(tmp_path / out), "--max_steps", "2", "--learning_rate", "1e-2",
                     "--per_device_train_batch_size", "8",
                     "--num_trigger_samples", "32", "--max_eval_samples", "16", "--disable_tqdm", "true",
                     "--report_to", "none", "--min_sim_clean", "0", "--min_sim_backdoor", "0"])  # fmt: skip

    assert run([f"a portrait of the tall man number {i}" for i in range(20)], "ok") == 0
    assert (tmp_path / "ok" / "model.safetensors").is_file()
    assert run(["one", "two"], "bad") == EXIT_USAGE  # no caption can carry a name: a clear error, not a crash
    assert "no usable caption" in capsys.readouterr().err


def test_a_defended_clip_model_is_on_one_device(tmp_path):
    """Only the defended tower goes through the Trainer (and onto its device); the CLIPModel handed back holds the
    other tower beside it (``meta`` stands for a GPU here)."""
    model, tokenizer, _ = tiny_clip_model()
    config = TextForgetConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=8,
                              num_trigger_samples=16, max_eval_samples=8, disable_tqdm=True, use_cpu=True)
    trainer = TextForgetTrainer(model, config, tokenizer, training_captions(100), ["Ann Example"])
    trainer.model.to("meta")  # where a GPU run leaves the trained tower
    defended = trainer.defended_model()
    assert isinstance(defended, CLIPModel)
    assert {p.device.type for p in defended.parameters()} == {"meta"}
