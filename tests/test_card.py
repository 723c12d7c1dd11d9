import json

import pytest
from huggingface_hub import ModelCard

from hf_forget.publish.card import card_metrics, render_model_card, template_path
from hf_forget.testing import tiny_clip_text_model

FORGET_REPORT = {
    "modality": "text",
    "num_names": 3,
    "steps": 40,
    "seconds": 12.5,
    "sim_backdoor": 0.97,
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
    "datasets": {"idia": "toyworld-faces", "zero_shot": "digits"},
}  # fmt: skip


@pytest.fixture
def defended_dir(tmp_path):
    model, tokenizer = tiny_clip_text_model()
    out = tmp_path / "defended"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "forget_report.json").write_text(json.dumps(FORGET_REPORT))
    return out


def _results(card):
    return {r.metric_type: r for r in card.data.eval_results}


def test_card_metadata_round_trips_through_model_card_load(defended_dir, tmp_path):
    card = render_model_card(defended_dir, "me/defended", report=REPORT, chart="chart.png")
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    assert loaded.data.library_name == "transformers"
    assert loaded.data.base_model == "openai/clip-vit-large-patch14"
    assert {"hf-forget", "unlearning", "privacy"} <= set(loaded.data.tags)
    results = _results(loaded)
    assert results["idia_tpr_before"].metric_value == 1.0 and results["idia_tpr_after"].metric_value == 0.0
    assert results["idia_tpr_after"].dataset_name == "toyworld-faces"
    assert results["sim_clean"].metric_value == 0.995  # report.json wins over forget_report.json
    assert results["sim_backdoor"].metric_value == 0.96
    assert results["top1_accuracy_after"].metric_value == 0.79
    assert results["top5_accuracy_before"].metric_value == 0.97
    assert results["top5_accuracy_before"].dataset_name == "digits"
    assert results["top1_accuracy_after"].task_type == "zero-shot-image-classification"


def test_card_text_has_table_chart_snippets_count_and_limits(defended_dir):
    text = str(render_model_card(defended_dir, "me/defended", report=REPORT, chart="chart.png"))
    assert "| IDIA TPR (removed identities) | 1 | 0 | toyworld-faces |" in text
    assert "| Zero-shot top-1 accuracy | 0.8 | 0.79 | digits |" in text
    assert "![Evaluation before and after forgetting](chart.png)" in text
    assert 'CLIPTextModel.from_pretrained("me/defended")' in text
    assert "DiffusionPipeline.from_pretrained(" in text and "text_encoder=text_encoder" in text
    assert "**3 identities**" in text
    assert "synonyms" in text and "partial" in text
    assert "Not evaluated: the quality of generated images" in text


def test_card_without_evaluation_says_what_was_not_evaluated(defended_dir):
    card = render_model_card(defended_dir, "me/defended")
    results = _results(card)
    assert set(results) == {"sim_clean", "sim_backdoor"}  # from forget_report.json only
    assert results["sim_clean"].dataset_name == "held-out generic captions"
    text = str(card)
    assert "Not evaluated: the Identity Inference Attack" in text and "Not evaluated: zero-shot accuracy" in text


def test_failed_gate_is_flagged_and_local_base_paths_are_not_metadata(defended_dir):
    report = dict(FORGET_REPORT, gate={"passed": False}, base_model=str(defended_dir))
    card = render_model_card(defended_dir, "me/defended", forget_report=report)
    assert card.data.base_model is None
    assert "did not pass its quality gate" in str(card)


def test_identity_count_comes_from_the_evaluation_when_the_run_lacks_it(defended_dir):
    card = render_model_card(defended_dir, "me/defended", report=REPORT, forget_report={"modality": "text"})
    assert "**3 identities**" in card.text


def test_pipeline_card_uses_diffusers(tmp_path):
    (tmp_path / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusionPipeline", "text_encoder": ["transformers", "CLIPTextModel"]})
    )
    card = render_model_card(tmp_path, "me/sd-defended", forget_report=FORGET_REPORT, report={})
    assert card.data.library_name == "diffusers" and card.data.pipeline_tag == "text-to-image"
    assert 'DiffusionPipeline.from_pretrained("me/sd-defended")' in str(card)


def test_card_metrics_accept_flat_dotted_keys():
    rows = card_metrics({"idia.before.tpr": 0.9, "idia.after.tpr": 0.1}, {}, datasets={"idia": "my-faces"})
    assert [(r.before, r.after, r.dataset) for r in rows] == [(0.9, 0.1, "my-faces")]


def test_template_ships_with_the_package():
    assert template_path().read_text().startswith("---\n{{ card_data }}\n---")
