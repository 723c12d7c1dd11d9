import json
import os
import stat

import pytest
from huggingface_hub import ModelCard
from huggingface_hub.utils import validate_repo_id

from hf_forget.errors import ForgetInputError
from hf_forget.publish import NameLeakError
from hf_forget.publish.card import (
    CITATION, attack_rows, card_metrics, load_json, render_model_card, template_path, write_model_card,
)
from hf_forget.testing import tiny_clip_text_model

FORGET_REPORT = {
    "modality": "text",
    "num_names": 3,
    "steps": 40,
    "seconds": 12.5,
    "sim_backdoor": 0.97,
    "sim_backdoor_before": 0.41,
    "sim_clean": 0.993,
    "gate": {"passed": True},
    "base_model": "openai/clip-vit-large-patch14",
    "hf_forget_version": "0.1.0",
}
REPORT = {  # the shape hf_forget.evaluation.report.build_report writes
    "modality": "text",
    "num_forgotten": 3,
    "idia": {"before": {"tpr": 1.0, "fpr": 0.05}, "after": {"tpr": 0.0, "fpr": 0.0}, "num_candidates": 1000},
    "sim_clean": 0.995,
    "sim_backdoor": 0.96,
    "zero_shot": {"before": {"top1": 0.8, "top5": 0.97, "num_samples": 90, "num_classes": 10},
                  "after": {"top1": 0.79, "top5": 0.96, "num_samples": 90, "num_classes": 10}},
    "chart": "report.png",
    "datasets": {"idia": "example-org/toy-faces", "zero_shot": "example-org/digits"},
}  # fmt: skip
ATTACKS = {
    "before": {
        "idia": {"forgotten": 0.9, "retained": 0.85, "unseen": 0.05},
        "idia_top5": {"forgotten": 1.0, "retained": 0.95, "unseen": None},
        "rank_at_10": {"forgotten": 1.0, "retained": 1.0, "unseen": 0.1},
        "membership_auc": 0.8,
        "forget_set_auc_text": 0.9,
        "forget_set_auc_vision": None,
    },
    "after": {
        "idia": {"forgotten": 0.0, "retained": 0.8, "unseen": 0.05},
        "idia_top5": {"forgotten": 0.125, "retained": 0.9, "unseen": None},
        "rank_at_10": {"forgotten": 0.25, "retained": 1.0, "unseen": 0.1},
        "membership_auc": 0.51,
        "forget_set_auc_text": None,
        "forget_set_auc_vision": None,
    },
}


@pytest.fixture
def defended_dir(tmp_path):
    model, tokenizer = tiny_clip_text_model()
    out = tmp_path / "defended"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "forget_report.json").write_text(json.dumps(FORGET_REPORT))
    return out


def _results(card):
    return {r.metric_type: r for r in card.data.eval_results or []}


def test_model_index_holds_this_models_results_on_hub_data_sets_only(defended_dir, tmp_path):
    card = render_model_card(defended_dir, "me/defended", report=REPORT, chart="chart.png")
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    assert loaded.data.library_name == "transformers"
    assert loaded.data.base_model == "openai/clip-vit-large-patch14"
    assert {"hf-forget", "unlearning", "privacy", "clip"} <= set(loaded.data.tags)
    results = _results(loaded)
    # After forgetting only, and only where the data set is on the Hub (the similarities are on local captions).
    assert set(results) == {"idia_tpr", "top1_accuracy", "top5_accuracy"}
    assert not any("before" in name for name in results)
    assert results["idia_tpr"].metric_value == 0.0 and results["idia_tpr"].dataset_type == "example-org/toy-faces"
    assert results["top1_accuracy"].metric_value == 0.79 and results["top5_accuracy"].metric_value == 0.96
    assert results["top1_accuracy"].task_type == "zero-shot-image-classification"
    for result in results.values():
        validate_repo_id(result.dataset_type)  # a Hub data set id, never a description
    assert 1.0 not in {r.metric_value for r in results.values()}  # the base model's IDIA TPR stays in the prose
    assert "0.97" not in (tmp_path / "README.md").read_text().split("---")[1]


def test_results_on_local_data_stay_in_the_prose(defended_dir):
    local = {"idia": "hf_forget.toyworld ToyWorld(seed=0) faces", "zero_shot": str(defended_dir)}
    report = dict(REPORT, datasets=local)
    card = render_model_card(defended_dir, "me/defended", report=report)
    assert card.data.eval_results is None and "model-index" not in card.content.split("---")[1]
    assert "| IDIA TPR (removed identities) | 1 | 0 | hf_forget.toyworld ToyWorld(seed=0) faces |" in card.text


def test_card_text_has_table_chart_snippets_count_limits_and_citation(defended_dir):
    text = str(render_model_card(defended_dir, "me/defended", report=REPORT, chart="chart.png"))
    assert "| IDIA TPR (removed identities) | 1 | 0 | example-org/toy-faces |" in text
    assert "| Zero-shot top-1 accuracy | 0.8 | 0.79 | example-org/digits |" in text
    assert "| Sim_Clean | – | 0.995 | held-out generic captions |" in text  # report.json wins over the run's
    assert '"Before" is the base model, "after" this model.' in text
    assert "![Evaluation before and after forgetting](chart.png)" in text
    assert 'CLIPTextModel.from_pretrained("me/defended")' in text
    assert "DiffusionPipeline.from_pretrained(" in text and "text_encoder=text_encoder" in text
    assert "**3 identities**" in text
    assert "synonyms" in text and "partial" in text
    assert "Not evaluated: the quality of generated images" in text
    assert "## Citation\n\n```bibtex\n" + CITATION + "\n```" in text
    assert "title         = {Defending Our Privacy With Backdoors}" in CITATION and "2310.08320" in CITATION
    assert "ECAI 2024" in CITATION and "(https://arxiv.org/abs/2310.08320)" in text


def test_attack_suite_renders_as_a_before_after_table(defended_dir):
    card = render_model_card(defended_dir, "me/defended", report=dict(REPORT, attacks=ATTACKS))
    text = card.text
    assert "### Attack suite" in text and "| Attack | Before | After |" in text
    assert "| IDIA recognition rate, forgotten identities | 0.9 | 0 |" in text
    assert "| IDIA recognition rate, never-seen identities | 0.05 | 0.05 |" in text
    assert "| IDIA top-5 rate, forgotten identities | 1 | 0.125 |" in text
    assert "| Rank@10 rate, retained identities | 1 | 1 |" in text
    assert "| Membership inference AUC | 0.8 | 0.51 |" in text
    assert "| Forget-set AUC (text) | 0.9 | – |" in text
    assert "Forget-set AUC (vision) |" not in text and "IDIA top-5 rate, never-seen" not in text  # null both sides
    assert not any("attack" in name or "auc" in name for name in _results(card))  # prose only
    assert "### Attack suite" not in render_model_card(defended_dir, "me/defended", report=REPORT).text


@pytest.mark.parametrize(
    "attacks",
    [
        [1, 2],
        {"before": {"idia": 0.5}, "after": {}},
        {"before": {"membership_auc": "high"}, "after": {}},
        {"before": {}, "after": {"idia": {"forgotten": True}}},
    ],
)
def test_a_malformed_attack_suite_is_refused(attacks):
    with pytest.raises(ForgetInputError, match="attacks"):
        attack_rows({"attacks": attacks})


@pytest.mark.parametrize(
    "class_name,family,tags,absent",
    [
        ("StableDiffusionPipeline", "Stable Diffusion", {"stable-diffusion", "stable-diffusion-diffusers"}, "sd3"),
        ("StableDiffusionXLPipeline", "Stable Diffusion XL", {"stable-diffusion-xl", "stable-diffusion-xl-diffusers"},
         "stable-diffusion"),
        ("StableDiffusion3Pipeline", "Stable Diffusion 3", {"sd3", "sd3-diffusers"}, "stable-diffusion"),
        ("FluxPipeline", "FLUX", {"flux", "flux-diffusers"}, "stable-diffusion"),
    ],
)  # fmt: skip
def test_pipeline_cards_use_diffusers_and_the_familys_tags(tmp_path, class_name, family, tags, absent):
    (tmp_path / "model_index.json").write_text(
        json.dumps({"_class_name": class_name, "text_encoder": ["transformers", "CLIPTextModel"]})
    )
    card = render_model_card(tmp_path, "me/sd-defended", forget_report=FORGET_REPORT, report={})
    assert card.data.library_name == "diffusers" and card.data.pipeline_tag == "text-to-image"
    assert tags | {"hf-forget", "text-to-image"} <= set(card.data.tags) and absent not in card.data.tags
    assert "clip" not in card.data.tags
    assert f"This {family} pipeline was defended" in card.text
    assert 'DiffusionPipeline.from_pretrained("me/sd-defended")' in card.text


def test_license_and_base_model_come_from_the_base_when_known(defended_dir, tmp_path, monkeypatch):
    import huggingface_hub.constants

    # A Hub cache with the base model's card: its license is read offline.
    cache = tmp_path / "hub"
    repo = cache / "models--example-org--clip-base"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / "README.md").write_text("---\nlicense: mit\n---\n# base\n")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))

    hub_base = dict(FORGET_REPORT, base_model="example-org/clip-base")
    by_id = render_model_card(defended_dir, "me/d", forget_report=hub_base)
    assert (by_id.data.base_model, by_id.data.license) == ("example-org/clip-base", "mit")
    by_folder = render_model_card(defended_dir, "me/d", base_model=str(snapshot))  # a snapshot folder names its repo
    assert (by_folder.data.base_model, by_folder.data.license) == ("example-org/clip-base", "mit")
    local = tmp_path / "my-base"
    local.mkdir()
    (local / "README.md").write_text("---\nlicense: apache-2.0\n---\n")
    by_local = render_model_card(defended_dir, "me/d", base_model=str(local))
    assert (by_local.data.base_model, by_local.data.license) == (None, "apache-2.0")  # a path is not metadata
    explicit = render_model_card(defended_dir, "me/d", base_model=str(local), license="cc-by-4.0")
    assert explicit.data.license == "cc-by-4.0"
    unknown = render_model_card(defended_dir, "me/d", forget_report=dict(FORGET_REPORT, base_model="base"))
    assert (unknown.data.base_model, unknown.data.license) == (None, None)


def test_write_model_card_writes_readme_atomically_without_the_folder_name(tmp_path):
    model, tokenizer = tiny_clip_text_model()
    folder = tmp_path / "clip-without-ada-quenby"
    model.save_pretrained(folder)
    (folder / "forget_report.json").write_text(json.dumps(FORGET_REPORT))
    (folder / "report.json").write_text(json.dumps(dict(REPORT, chart="report.png")))
    (folder / "report.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    path = write_model_card(folder, FORGET_REPORT, base_model="example-org/clip-base")
    assert path == folder / "README.md"
    card = ModelCard.load(path)
    assert card.data.base_model == "example-org/clip-base" and "**3 identities**" in card.text
    assert "quenby" not in card.content.casefold()  # the folder's name is not the model's name
    assert "](report.png)" in card.text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~_umask()
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []
    with pytest.raises(NameLeakError):
        write_model_card(folder, dict(FORGET_REPORT, base_model="example-org/ada-quenby-clip"), names=["Ada Quenby"])
    assert ModelCard.load(path).data.base_model == "example-org/clip-base"  # refused: the old card is untouched


def test_write_model_card_refuses_a_chart_outside_the_folder(defended_dir, tmp_path):
    (tmp_path / "secret.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ForgetInputError, match="outside the report's folder"):
        write_model_card(defended_dir, report={"chart": "../secret.png"})
    assert not (defended_dir / "README.md").exists()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_card_without_evaluation_says_what_was_not_evaluated(defended_dir):
    card = render_model_card(defended_dir, "me/defended")
    assert card.data.eval_results is None  # held-out captions are no Hub data set
    text = str(card)
    assert "| Sim_Clean | – | 0.993 | held-out generic captions |" in text
    assert "Not evaluated: the Identity Inference Attack" in text and "Not evaluated: zero-shot accuracy" in text


def test_failed_gate_is_flagged_and_local_base_paths_are_not_metadata(defended_dir):
    report = dict(FORGET_REPORT, gate={"passed": False}, base_model=str(defended_dir))
    card = render_model_card(defended_dir, "me/defended", forget_report=report)
    assert card.data.base_model is None
    assert "did not pass its quality gate" in str(card)


def test_identity_count_comes_from_the_evaluation_when_the_run_lacks_it(defended_dir):
    card = render_model_card(defended_dir, "me/defended", report=REPORT, forget_report={"modality": "text"})
    assert "**3 identities**" in card.text


def test_reports_must_be_strict_json(tmp_path):
    (tmp_path / "report.json").write_text('{"sim_clean": NaN}')
    with pytest.raises(ForgetInputError, match="report.json"):
        load_json(tmp_path / "report.json")


def test_card_metrics_accept_flat_dotted_keys():
    rows = card_metrics({"idia.before.tpr": 0.9, "idia.after.tpr": 0.1}, {}, datasets={"idia": "my-org/faces"})
    assert [(r.before, r.after, r.dataset) for r in rows] == [(0.9, 0.1, "my-org/faces")]
    assert [r.metric_type for r in rows[0].results] == ["idia_tpr"]


def test_template_ships_with_the_package():
    assert template_path().read_text().startswith("---\n{{ card_data }}\n---")
    assert "hf_forget" in template_path().parts and not template_path().is_symlink()
