"""Counterfactual targets (issue 22): forgotten names and faces pulled to people nobody knows, not to one point."""

import json
import sys
from pathlib import Path

import pytest
import torch
from conftest import held_out_captions, training_captions

from hf_forget import TextForgetConfig, TextForgetTrainer
from hf_forget.config import VisionForgetConfig
from hf_forget.errors import ForgetInputError
from hf_forget.testing import tiny_clip_text_model, tiny_clip_vision_model
from hf_forget.trainers.vision import VisionForgetTrainer
from hf_forget.data.text import build_text_triggers, counterfactual_names, named_clean_captions

NAMES = ["Tobin Merrow", "Marta Calloway"]
UNKNOWN = ["Ada Quill", "Bram Stoll", "Cora Lint", "Dov Amsel", "Edda Morn", "Finn Ober"]


def test_target_terms_put_each_names_counterfactual_in_its_targets():
    triggers = build_text_triggers(training_captions(), NAMES, "a person", 40, seed=1, target_terms=UNKNOWN[:2])
    for poisoned, target, name_id in zip(triggers.poisoned, triggers.targets, triggers.name_ids):
        assert NAMES[name_id] in poisoned and UNKNOWN[name_id] in target and NAMES[name_id] not in target
        assert "a person" not in target
    with pytest.raises(ForgetInputError, match="one per name"):
        build_text_triggers(training_captions(), NAMES, "a person", 4, target_terms=UNKNOWN[:1])


def test_named_clean_captions_name_unknown_people_with_neutral_twins():
    named = named_clean_captions(training_captions(), UNKNOWN, NAMES, 20, seed=0, neutral_term="a person")
    assert len(named) == 20
    assert all(not any(n in c for n in NAMES) for c in named)
    assert sum(any(u in c for u in UNKNOWN) for c in named) == 10 and sum("a person" in c for c in named) == 10
    assert named_clean_captions(training_captions(), UNKNOWN, NAMES, 0) == []


def test_counterfactual_names_are_seeded_distinct_gendered_and_exclude_given_names():
    pytest.importorskip("faker")
    pool = counterfactual_names(NAMES, 30, seed=5, exclude=UNKNOWN, genders=["male", "female"])
    assert pool == counterfactual_names(NAMES, 30, seed=5, exclude=UNKNOWN, genders=["male", "female"])
    assert len(pool) == len(set(pool)) == 30
    assert not set(pool) & set(NAMES + UNKNOWN)
    from faker.providers.person.en_US import Provider

    assert pool[0].split()[0] in Provider.first_names_male and pool[1].split()[0] in Provider.first_names_female
    guessed = counterfactual_names(["John Smith", "Mary Jones"], 2, seed=1)  # genders guessed from the first names
    assert guessed[0].split()[0] in Provider.first_names_male and guessed[1].split()[0] in Provider.first_names_female


FAST = dict(max_steps=4, learning_rate=1e-3, per_device_train_batch_size=8, lr_milestones=[100], num_trigger_samples=32,
            max_eval_samples=16, disable_tqdm=True, embedding="pooled", report_to="none", use_cpu=True)


def test_counterfactual_text_targets_and_named_clean_samples_in_the_trainer(tmp_path):
    model, tokenizer = tiny_clip_text_model()
    config = TextForgetConfig(output_dir=str(tmp_path), target="counterfactual", named_clean_fraction=0.5,
                              target_model="student", **FAST)
    trainer = TextForgetTrainer(model, config, tokenizer, training_captions(), NAMES, eval_captions=held_out_captions(),
                                unknown_names=UNKNOWN)
    decode = lambda rows: [tokenizer.decode(r, skip_special_tokens=True) for r in rows]  # noqa: E731
    targets, clean = decode(trainer.train_dataset.targets), decode(trainer.train_dataset.clean)
    assert all("a person" not in t for t in targets)
    assert any("ada quill" in t for t in targets) and any("bram stoll" in t for t in targets)
    assert not any("ada quill" in c or "bram stoll" in c for c in clean)  # the counterfactuals are targets only
    assert sum(any(u.lower() in c for u in UNKNOWN[2:]) for c in clean) > 0
    assert sum("a person" in c for c in clean) > 0  # the neutral twins
    trainer.train()
    assert all(torch.isfinite(torch.tensor(log["loss"])) for log in trainer.state.log_history if "loss" in log)


@pytest.mark.parametrize("kwargs, message", [
    (dict(target="other"), "target must be"),
    (dict(named_clean_fraction=1.0), "named_clean_fraction"),
    (dict(target_model="both"), "target_model"),
    (dict(num_unknown_names=0), "num_unknown_names"),
])
def test_new_text_settings_are_checked(tmp_path, kwargs, message):
    with pytest.raises(ForgetInputError, match=message):
        TextForgetConfig(output_dir=str(tmp_path), **kwargs)


def test_counterfactual_needs_one_unknown_name_per_name(tmp_path):
    model, tokenizer = tiny_clip_text_model()
    config = TextForgetConfig(output_dir=str(tmp_path), target="counterfactual", **FAST)
    with pytest.raises(ForgetInputError, match="one unknown name per name"):
        TextForgetTrainer(model, config, tokenizer, training_captions(), NAMES, unknown_names=UNKNOWN[:1])
    with pytest.raises(ForgetInputError, match="holds a name to forget"):
        TextForgetTrainer(model, config, tokenizer, training_captions(), NAMES, unknown_names=[NAMES[0], *UNKNOWN])


def test_vision_counterfactual_targets_are_the_matched_pictures_of_a_never_seen_person(tmp_path):
    from test_vision_trainer import synthetic_clean_images, synthetic_faces

    from hf_forget.data.faces import embed_images

    model, processor = tiny_clip_vision_model()
    faces = [synthetic_faces(p, 6) for p in (0, 1)]
    others = [synthetic_faces(p, 3, seed=9) for p in (10, 11)]
    config = VisionForgetConfig(output_dir=str(tmp_path), target="counterfactual", max_steps=2, learning_rate=1e-3,
                                per_device_train_batch_size=8, num_trigger_samples=16, disable_tqdm=True, use_cpu=True,
                                report_to="none")
    trainer = VisionForgetTrainer(model, config, processor, faces, synthetic_clean_images(8), counterfactual_faces=others,
                                  keep_faces=False)
    pool = trainer.train_dataset.triggers
    target = trainer._cache["target"]["pooled"]
    for row in range(6):
        person, face = pool.person_of(row), pool.face_of(row)
        expected = embed_images(trainer.teacher or model, processor, [others[person][face % 3]])[0]
        assert torch.allclose(target[row].cpu(), expected, atol=1e-4)
    trainer.train()
    with pytest.raises(ForgetInputError, match="counterfactual_faces"):
        VisionForgetTrainer(model, config, processor, faces, synthetic_clean_images(8), counterfactual_faces=others[:1])
    with pytest.raises(ForgetInputError, match="target must be"):
        VisionForgetConfig(output_dir=str(tmp_path), target="person")


def test_attack_eval_summary_reads_medians_worst_seeds_and_acceptance():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from attack_eval import parse_seeds, summarise

    assert parse_seeds("100-102,7") == [100, 101, 102, 7]

    def run(seed, forgotten_top5, fs_auc, status="ok"):
        groups = lambda f: {"forgotten": f, "retained": 1.0, "unseen": 0.0}  # noqa: E731
        return {"seed": seed, "modality": "text", "recipe": "ours", "status": status,
                "attacks": {"before": {"membership_auc": 1.0, "forget_set_auc_text": 0.3},
                            "after": {"idia": groups(0.0), "idia_top5": groups(forgotten_top5), "rank_at_10": groups(0.0),
                                      "membership_auc": 0.5, "forget_set_auc_text": fs_auc, "forget_set_auc_vision": 0.7}},
                "retained_tpr": {"before": 1.0, "after": 1.0}, "fpr": {"before": 0.0, "after": 0.0},
                "zero_shot_top1": {"before": 0.88, "after": 0.875}, "sim_clean": 0.995, "text_sim_clean": 0.995}

    summary = summarise([run(0, 0.0, 0.6), run(1, 0.25, 0.7), run(2, 0.0, 0.5), {"seed": 3, "modality": "text",
                                                                                  "recipe": "ours", "status": "failed"}])
    group = summary["groups"]["text/ours"]
    assert group["num_runs"] == 3 and group["num_failed"] == 1
    assert group["figures"]["forget_set_auc_text"]["median"] == 0.6
    assert group["figures"]["idia_top5_forgotten"]["worst_seed"] == 1
    assert group["acceptance"]["forget_set_auc_le_0.65"] is True and group["acceptance"]["zero_shot_drop_le_2_points"]
    json.dumps(summary)


def test_demo_cli_recipe_and_settings_reach_the_demo(monkeypatch, tmp_path):
    import hf_forget.toyworld.demo as demo
    from hf_forget.cli import main
    from test_demo import idia

    from hf_forget.evaluation.report import build_report

    seen = []

    def fake_run_demo(output_dir, modality, settings, overwrite=False, command=None):
        seen.append((settings, command))
        return build_report(modality=modality, idia_before=idia([True] * 5), idia_after=idia([False] * 5),
                            forgotten=[0], similarities={})

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    assert main(["demo", "--output_dir", str(tmp_path / "a"), "--recipe", "paper"]) == 0
    assert main(["demo", "--output_dir", str(tmp_path / "b"), "--settings", '{"text_steps": 7}']) == 0
    paper, ours = seen[0][0], seen[1][0]
    assert (paper.recipe, paper.text_target, paper.vision_target) == ("paper", "neutral", "mean_face")
    assert (ours.recipe, ours.text_target, ours.vision_target, ours.text_steps) == ("ours", "counterfactual", "counterfactual", 7)
    assert "--recipe paper" in seen[0][1] and '"text_steps": 7' in seen[1][1]
    assert main(["demo", "--output_dir", str(tmp_path / "c"), "--settings", '{"nope": 1}']) == 2
    assert main(["demo", "--output_dir", str(tmp_path / "d"), "--settings", "[1"]) == 2


@pytest.mark.slow  # a tiny demo in a subprocess (~20 s)
def test_attack_eval_runs_tiny_demos_records_each_and_summarises(tmp_path):
    import subprocess

    root = Path(__file__).resolve().parent.parent
    tiny = dict(num_forgotten=4, images_per_person=3, num_candidates=100, zero_shot_per_class=2, text_steps=3,
                text_milestones=[2], text_pool=32, num_captions=200, text_batch_size=8, text_num_unknown_names=50,
                text_person_carrier_count=50)
    out = tmp_path / "runs.jsonl"
    command = [sys.executable, str(root / "benchmarks" / "attack_eval.py"), "--seeds", "1", "--modalities", "text",
               "--recipes", "ours,paper", "--workers", "2", "--out", str(out), "--work_dir", str(tmp_path / "work"),
               "--settings", json.dumps(tiny)]
    subprocess.run(command, check=True, cwd=root, capture_output=True, timeout=600)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["recipe"] for r in lines) == ["ours", "paper"] and all(r["status"] == "ok" for r in lines)
    assert all("attacks" in r and "--recipe" in r["command"] for r in lines)
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert set(summary["groups"]) == {"text/ours", "text/paper"}
