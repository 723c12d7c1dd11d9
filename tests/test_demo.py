"""The evaluation report (hand-built IDIA results) and the end-to-end `hf-forget demo`."""

import json

import pytest
import torch
from PIL import Image

from hf_forget.evaluation.idia import IDIA_TEMPLATES, idia_from_embeddings
from hf_forget.evaluation.report import build_report, render_markdown, write_report
from hf_forget.evaluation.zero_shot import ZeroShotResult
from hf_forget.publish.leak_guard import NameLeakError

T = len(IDIA_TEMPLATES)
NAMES = ["Ada Quill", "Bo Rinner", "Cy Tamsin", "Di Vomel", "Ed Wystan"]
KNOWN = [True, True, True, False, False]


def idia(recognised: list[bool]):
    """An IDIA result over NAMES where person i is recognised iff recognised[i] (faces on their own name or not)."""
    text = torch.stack([torch.eye(8)] * T)  # candidate c along basis c in every template
    faces = torch.stack([torch.stack([torch.eye(8)[i if hit else 7]] * 2) for i, hit in enumerate(recognised)])
    return idia_from_embeddings(faces, text, targets=range(5), expected_known=KNOWN, names=NAMES)


@pytest.fixture
def report():
    before, after = idia([True, True, False, True, False]), idia([False, True, False, False, False])
    return build_report(
        modality="text", idia_before=before, idia_after=after, forgotten=["Ada Quill"],
        similarities={"sim_clean": 0.995, "sim_backdoor": 0.97, "sim_targets": 0.99},
        zero_shot_before=ZeroShotResult(0.8, 0.95, 100, 10), zero_shot_after=ZeroShotResult(0.79, 0.95, 100, 10),
        seconds=12.34,
    )


def test_report_splits_rates_into_forgotten_retained_and_unseen(report):
    before, after = report["idia"]["before"], report["idia"]["after"]
    assert (before["tpr"], after["tpr"]) == (1.0, 0.0)  # the forgotten person
    assert (before["retained_tpr"], after["retained_tpr"]) == (0.5, 0.5)  # the two other known persons
    assert (before["fpr"], after["fpr"]) == (0.5, 0.0)
    assert (before["num_forgotten"], before["num_retained"], before["num_unseen"]) == (1, 2, 2)
    assert report["sim_clean"] == 0.995 and report["sim_backdoor"] == 0.97
    assert report["zero_shot"]["before"]["top1"] == 0.8 and report["zero_shot"]["after"]["top5"] == 0.95
    assert report["num_forgotten"] == 1 and report["modality"] == "text" and report["seconds"] == 12.3


def test_written_report_has_json_markdown_and_chart_without_names(report, tmp_path):
    paths = write_report(tmp_path / "out", report, forbidden_names=NAMES)
    assert json.loads(paths["json"].read_text()) == report
    assert "| TPR, forgotten identities (n=1) | 100.0% | 0.0% |" in paths["markdown"].read_text()
    with Image.open(paths["chart"]) as chart:
        assert chart.format == "PNG" and chart.size[0] > 600
    text = paths["json"].read_text() + paths["markdown"].read_text()  # (the chart passed the leak guard's PNG scan)
    assert not any(part in text for name in NAMES for part in name.split())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.json", "report.md", "report.png"]


def test_a_report_carrying_a_name_is_refused(report, tmp_path):
    report["note"] = "forgot ada quill"
    with pytest.raises(NameLeakError) as error:
        write_report(tmp_path / "out", report, forbidden_names=["Ada Quill"])
    assert "Ada" not in str(error.value) and "ada" not in str(error.value)


def suite(found: float, auc: float):
    from hf_forget.evaluation.attacks import AttackSuiteResult, empty_summary

    summary = empty_summary()
    for attack in ("idia", "idia_top5", "rank_at_10"):
        summary[attack] = {"forgotten": found, "retained": 0.9, "unseen": 0.05}
    summary.update(membership_auc=auc, forget_set_auc_text=auc, forget_set_auc_vision=None)
    return AttackSuiteResult(summary=summary, details={"num_persons": {"forgotten": 1, "retained": 2, "unseen": 2}})


def test_report_carries_the_attack_suite_in_json_markdown_and_chart(tmp_path):
    before, after = idia([True, True, False, True, False]), idia([False, True, False, False, False])
    report = build_report(
        modality="text", idia_before=before, idia_after=after, forgotten=[0], similarities={"sim_clean": 0.99},
        kept=[2], attacks_before=suite(1.0, 0.97), attacks_after=suite(0.0, 0.55),
    )
    assert report["attacks"]["before"]["rank_at_10"] == {"forgotten": 1.0, "retained": 0.9, "unseen": 0.05}
    assert report["attacks"]["after"]["membership_auc"] == 0.55 and report["attacks"]["after"]["forget_set_auc_vision"] is None
    assert set(report["attacks"]["after"]) == {"idia", "idia_top5", "rank_at_10", "membership_auc",
                                               "forget_set_auc_text", "forget_set_auc_vision"}
    # the kept person (#2) is reported apart from the retained one (#1)
    assert report["idia"]["before"]["num_retained"] == 1 and report["idia"]["before"]["num_kept"] == 1
    markdown = render_markdown(report)
    assert "## Attack suite" in markdown and "| IDIA, top-5 vote | 100.0% | 0.0% |" in markdown
    assert "| membership: forgotten vs never seen (true-name z-score) | 0.9700 | 0.5500 |" in markdown
    assert "whose pictures the defense kept (n=1)" in markdown
    paths = write_report(tmp_path / "out", report, forbidden_names=NAMES)
    assert json.loads(paths["json"].read_text())["attacks"] == report["attacks"]
    with Image.open(paths["chart"]) as chart:
        assert chart.size[0] > 1500  # four panels


def test_markdown_shows_missing_rates_as_dashes(report):
    report["idia"]["before"]["fpr"] = None
    assert "| FPR, never-seen identities (n=2) | – |" in render_markdown(report)


def test_the_forgotten_set_is_a_seeded_draw_among_recognised_people():
    from hf_forget.toyworld.demo import choose_forgotten, choose_kept

    recognised, others = list(range(0, 30)), [30, 31]
    draws = {tuple(choose_forgotten(recognised, others, 8, seed)) for seed in range(10)}
    assert len(draws) == 10  # every forget seed forgets other people
    assert choose_forgotten(recognised, others, 8, 3) == choose_forgotten(recognised, others, 8, 3)
    assert all(set(d) <= set(recognised) and len(d) == 8 and list(d) == sorted(d) for d in draws)
    assert set(choose_forgotten(list(range(5)), [10, 11, 12], 8, 0)) >= set(range(5))  # too few recognised: all + others
    kept = choose_kept(list(range(24)), 0.5, 1)
    assert len(kept) == 12 and kept != choose_kept(list(range(24)), 0.5, 2) and choose_kept(list(range(24)), 0.0, 1) == []


def tiny_settings(**overrides):
    from hf_forget.toyworld.demo import DemoSettings

    return DemoSettings(**{**TINY, **overrides})


TINY = dict(
    num_forgotten=4, images_per_person=3, num_candidates=100, zero_shot_per_class=2, text_steps=3,
    text_milestones=[2], text_pool=32, num_captions=200, text_batch_size=8, vision_steps=2, vision_milestones=[1],
    vision_batch_size=8, vision_faces_per_person=6, vision_trigger_samples=16, num_clean_images=20,
    num_reference_persons=4, reference_faces_per_person=2,
)


@pytest.mark.parametrize("modality", ["text", "vision"])
def test_a_tiny_demo_writes_indices_the_attack_suite_and_a_loadable_model_without_names(modality, tmp_path):
    """The demo's protocol on a few steps (the figures are meaningless; the shape and the guarantees are not)."""
    from transformers import CLIPModel

    from hf_forget.publish.leak_guard import find_leaks
    from hf_forget.toyworld import ToyWorld, load_toy_clip
    from hf_forget.toyworld.demo import run_demo

    output = tmp_path / "demo"
    report = run_demo(output, modality, tiny_settings(seed=1, forget_seed=2))
    world = ToyWorld(seed=0)
    assert len(report["forgotten"]) == 4 and all(0 <= i < len(world.seen_identities) for i in report["forgotten"])
    assert report["protocol"]["forget_seed"] == 2 and report["protocol"]["audit_face_seed"] == 700_001
    assert report["idia"]["before"]["tpr"] == 1.0  # drawn among the recognised
    for side in ("before", "after"):
        attacks = report["attacks"][side]
        assert list(attacks) == ["idia", "idia_top5", "rank_at_10", "membership_auc", "forget_set_auc_text",
                                 "forget_set_auc_vision"]
        assert all(set(attacks[a]) == {"forgotten", "retained", "unseen"} for a in ("idia", "idia_top5", "rank_at_10"))
        assert all(isinstance(attacks[a], float) for a in ("membership_auc", "forget_set_auc_text", "forget_set_auc_vision"))
    counts = report["attack_details"]["before"]["num_persons"]
    if modality == "text":  # no picture entered the defense: every retained person is out of sample
        assert report["kept"] == [] and counts == {"forgotten": 4, "retained": 28, "unseen": 32, "kept": 0}
    else:  # half the retained people's pictures were kept in place: reported apart
        assert len(report["kept"]) == 14 and not set(report["kept"]) & set(report["forgotten"])
        assert counts == {"forgotten": 4, "retained": 14, "unseen": 32, "kept": 14}
        assert report["idia"]["before"]["num_kept"] == 14 and report["idia"]["before"]["num_retained"] == 14
    defended = CLIPModel.from_pretrained(output / "model")
    original = load_toy_clip()[0]
    changed = "text_model" if modality == "text" else "vision_model"
    assert any(not torch.equal(a, b) for (k, a), b in zip(defended.state_dict().items(), original.state_dict().values())
               if k.startswith(changed))
    assert find_leaks(output, world.names) == []  # no name of the world in the report or the model files


@pytest.mark.parametrize("recipe, modality, joint", [("ours", "both", True), ("ours", "vision", False), ("paper", "both", False)])
def test_the_joint_defense_runs_the_face_residual_at_its_joint_weight(monkeypatch, tmp_path, recipe, modality, joint):
    """Joint runs (ours) take ``joint_vision_identity_residual_weight``; face-only runs and the paper's recipe (None)
    the face defense's weight; alpha is the face defense's in every case."""
    import hf_forget.forget
    from hf_forget.toyworld.demo import run_demo, settings_for_recipe

    class Captured(Exception):
        pass

    def capture(model, faces, clean, config=None, **kwargs):
        raise Captured(config.alpha, config.identity_residual_weight)

    monkeypatch.setattr(hf_forget.forget, "forget_faces", capture)
    settings = settings_for_recipe(recipe, **TINY)
    with pytest.raises(Captured) as captured:
        run_demo(tmp_path / "demo", modality, settings)
    residual = settings.joint_vision_identity_residual_weight if joint else settings.vision_identity_residual_weight
    assert captured.value.args == pytest.approx((settings.vision_alpha, residual))
    assert not joint or residual != settings.vision_identity_residual_weight


def test_demo_cli_passes_seeds_and_defaults_the_forget_seed(monkeypatch, tmp_path, capsys):
    import hf_forget.toyworld.demo as demo
    from hf_forget.cli import main

    seen = []

    def fake_run_demo(output_dir, modality, settings, overwrite=False, command=None):
        seen.append((settings.seed, settings.forget_seed, command))
        return build_report(modality=modality, idia_before=idia([True] * 5), idia_after=idia([False] * 5),
                            forgotten=[0], similarities={})

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    assert main(["demo", "--output_dir", str(tmp_path / "a"), "--seed", "3"]) == 0
    assert main(["demo", "--output_dir", str(tmp_path / "b"), "--seed", "3", "--forget_seed", "7"]) == 0
    assert [s[:2] for s in seen] == [(3, 3), (3, 7)]
    assert seen[1][2].endswith("--seed 3 --forget_seed 7 --recipe ours")


def test_demo_seeds_out_of_range_are_refused(tmp_path):
    from hf_forget.errors import ForgetInputError
    from hf_forget.toyworld.demo import run_demo

    with pytest.raises(ForgetInputError, match="--forget_seed must be between 0 and 699"):
        run_demo(tmp_path / "x", "text", tiny_settings(forget_seed=700))
    assert not (tmp_path / "x").exists()


def check_demo_output(output, report, printed):
    """What every full demo run guarantees, whatever its figures: indices only, the suite, a loadable model."""
    from transformers import CLIPModel

    from hf_forget.publish.leak_guard import find_leaks
    from hf_forget.toyworld import ToyWorld

    world = ToyWorld(seed=0)
    assert len(report["forgotten"]) == 8 and set(report["forgotten"]) <= set(range(len(world.seen_identities)))
    assert set(report["attacks"]) == {"before", "after"}
    assert report["attacks"]["before"]["membership_auc"] >= 0.9  # the suite finds the people before the defense
    CLIPModel.from_pretrained(output / "model")
    assert (output / "report.md").is_file() and (output / "report.png").is_file()
    assert find_leaks(output, world.names) == [] and not any(p.name in printed for p in world.identities)


@pytest.mark.slow
def test_demo_forgets_eight_identities_and_keeps_utility(tmp_path, capsys):
    """The paper's acceptance on the shipped toy CLIP, under the issue-22 protocol (about 1-2 minutes on 2 CPU
    cores). The stronger attacks still find the forgotten people (benchmarks/results/attacks_baseline.jsonl):
    they are not asserted here, the defense that beats them is a later step."""
    from hf_forget.cli import main

    output = tmp_path / "demo"
    assert main(["demo", "--output_dir", str(output)]) == 0
    report = json.loads((output / "report.json").read_text())
    before, after = report["idia"]["before"], report["idia"]["after"]
    assert report["num_forgotten"] == 8 and before["num_forgotten"] == 8 and before["num_retained"] == 24
    assert before["tpr"] == 1.0 and after["tpr"] <= 0.05
    assert before["retained_tpr"] - after["retained_tpr"] <= 0.1
    assert before["fpr"] <= 0.1 and after["fpr"] <= 0.1
    assert report["sim_clean"] >= 0.99
    assert report["zero_shot"]["before"]["top1"] - report["zero_shot"]["after"]["top1"] <= 0.02
    check_demo_output(output, report, capsys.readouterr().out)


@pytest.mark.slow
@pytest.mark.parametrize("modality", ["vision", "both"])
def test_demo_forgets_eight_faces_and_keeps_utility(tmp_path, capsys, modality):
    """The face demo under the issue-22 protocol (about 3 minutes each on 2 CPU cores; retained people are out of
    sample: their pictures never entered the defense). Regression bounds with a margin over what the tuning runs
    of this recipe read at seed 0 (benchmarks/results/defense_tuning.jsonl: no forgotten person ranked in the
    top 10, membership AUC about 0.6-0.75, 1 of 12 retained people lost, zero-shot down 1.7 points); the goal
    is issue 22's acceptance, measured on the evaluation seeds (docs/results.md)."""
    from hf_forget.cli import main

    output = tmp_path / modality
    assert main(["demo", "--output_dir", str(output), "--modality", modality]) == 0
    report = json.loads((output / "report.json").read_text())
    before, after = report["idia"]["before"], report["idia"]["after"]
    assert report["modality"] == modality and report["num_forgotten"] == 8
    assert before["num_retained"] == 12 and before["num_kept"] == 12 and len(report["kept"]) == 12
    assert before["tpr"] == 1.0 and after["tpr"] <= (0.125 if modality == "vision" else 0.0)
    assert before["retained_tpr"] - after["retained_tpr"] <= 0.2
    # at most 6 points (18 of the 300 digit pictures); the accuracies are float32 fractions, hence the epsilon
    assert report["zero_shot"]["before"]["top1"] - report["zero_shot"]["after"]["top1"] <= 0.06 + 1e-6
    attacks = report["attacks"]["after"]
    assert attacks["rank_at_10"]["forgotten"] <= 0.25 and attacks["membership_auc"] <= 0.85
    check_demo_output(output, report, capsys.readouterr().out)


def test_missing_optional_extras_say_how_to_install_them(monkeypatch, tmp_path):
    import builtins

    from hf_forget.errors import ForgetInputError
    from hf_forget.evaluation.idia import generate_filler_names
    from hf_forget.evaluation.report import plot_report
    from hf_forget.toyworld.world import _digits

    real = builtins.__import__

    def without_extras(name, *args, **kwargs):
        if name.split(".")[0] in ("sklearn", "matplotlib", "faker"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_extras)
    for call in (lambda: _digits.__wrapped__(), lambda: generate_filler_names(3), lambda: plot_report({}, tmp_path / "c.png")):
        with pytest.raises(ForgetInputError, match=r"pip install 'hf-forget\[demo\]'"):
            call()
