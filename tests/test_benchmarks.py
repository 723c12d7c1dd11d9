"""Smoke tests of benchmarks/: the harness, the sections' pieces and the run.py driver (seconds, tiny models)."""

import importlib
import json
import os

import pytest
import torch

from hf_forget.trainers.base import is_norm_layer

from conftest import held_out_captions, training_captions

BENCHMARKS = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks"))


@pytest.fixture
def bench(monkeypatch):
    """The benchmark modules, imported as the scripts import each other (``benchmarks/`` on the path)."""
    monkeypatch.syspath_prepend(BENCHMARKS)

    class Modules:
        def __getattr__(self, name):
            return importlib.import_module(name)

    return Modules()


def test_lower_bound_trains_what_the_trainer_trains_and_step_timer_counts_steps(bench, tiny_text_encoder, tmp_path):
    harness = bench.harness
    model, tokenizer = tiny_text_encoder
    config = harness.text_config(str(tmp_path), max_steps=3, per_device_train_batch_size=4, num_trigger_samples=16,
                                 max_eval_samples=8, embedding="both")
    trainer = harness.make_text_trainer(model, tokenizer, ["Jane Doe"], training_captions(200), held_out_captions(20),
                                        config)
    timer = harness.step_timer()
    trainer.add_callback(timer)
    trainer.train()
    assert len(timer.cpu) == 3 and all(t > 0 for t in timer.cpu) and timer.ended is not None

    from hf_forget.testing import tiny_clip_text_model

    student, _ = tiny_clip_text_model()
    before = {n: p.detach().clone() for n, p in student.named_parameters()}
    wall, cpu = bench.overhead.lower_bound_run(student, config, trainer.train_dataset, trainer.data_collator,
                                               trainer.kinds, 2, 0)
    assert wall > 0 and cpu > 0
    norms = {n for m_name, m in student.named_modules() if is_norm_layer(m) for n, _ in
             ((f"{m_name}.{p}", None) for p, _ in m.named_parameters())}
    changed = {n for n, p in student.named_parameters() if not torch.equal(p, before[n])}
    assert changed and not (changed & norms)  # trained like the trainer's student: norm layers frozen


def test_run_forget_text_passes_the_names_as_data_and_times_training_only(bench, tiny_text_encoder, tmp_path):
    harness = bench.harness
    model, tokenizer = tiny_text_encoder
    config = harness.text_config(str(tmp_path), max_steps=2, per_device_train_batch_size=4, num_trigger_samples=16,
                                 max_eval_samples=8, embedding="pooled")
    assert not getattr(config, "names", None)  # names never travel in the benchmark's config
    timer = harness.step_timer()
    started = harness.clock()
    result = harness.run_forget_text(model, tokenizer, ["Jane Doe", "John Roe"], training_captions(200),
                                     held_out_captions(20), config, callbacks=[timer])
    assert result.report["steps"] == 2 and result.report["num_names"] == 2 and "sim_clean" in result.report
    assert 0 < harness.elapsed(started, timer.ended)[0] <= harness.elapsed(started)[0]
    assert not list(tmp_path.iterdir())  # nothing written


def test_every_section_is_a_script_over_the_harness_and_quick_results_stay_apart(bench):
    harness, run = bench.harness, bench.run
    assert harness.results_dir(quick=False) == harness.RESULTS
    assert harness.results_dir(quick=True) == os.path.join(harness.RESULTS, "quick")
    assert list(run.SECTIONS) == ["overhead", "scaling", "criterion", "memory", "vision", "many_names"]
    for name, module in run.SECTIONS.items():
        assert module.NAME == name and isinstance(module.COST, int)
        assert all(callable(getattr(module, f)) for f in ("make_parser", "main", "run", "rows"))
        args = module.make_parser().parse_args(["--quick"])
        assert args.quick and args.repeats == 3
        path = os.path.join(harness.results_dir(quick=name != "many_names"), f"{name}.json")
        with open(path, encoding="utf-8") as handle:  # the stored results still read: the formats are kept
            assert module.rows(json.load(handle))
    table = run.table_from_results(quick=True)
    assert table.startswith("| measure | value |") and "a. overhead ratio" in table and "e. vision" in table


def test_run_py_passes_each_section_its_options_old_spellings_included(bench):
    run = bench.run
    parser = run.make_parser()
    argv = ["--only", "many_names", "--many_seeds", "0", "--many_residual", "3", "--no-many_full_steps",
            "--embeddings", "pooled", "--toy_lr", "1e-3", "--repeats", "4"]
    args, rest = parser.parse_known_args(argv)
    sections = run.section_args(argv, rest, parser)
    many = sections["many_names"]
    assert args.only == ["many_names"] and args.repeats == many.repeats == 4
    assert many.many_seeds == [0] and many.many_residual == 3 and many.many_full_steps is False
    assert many == bench.many_names.make_parser().parse_args(["--seeds", "0", "--residual", "3", "--no-full_steps",
                                                              "--repeats", "4"])
    assert sections["overhead"].embeddings == ["pooled"]
    assert sections["scaling"].toy_lr == sections["criterion"].toy_lr == 1e-3
    with pytest.raises(SystemExit):
        argv = ["--many_seen_repeats", "16"]  # gone: it needed the library's name check patched
        run.section_args(argv, parser.parse_known_args(argv)[1], parser)


def test_merge_tuning_appends_partial_runs_with_their_command_and_checkpoint(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench.harness, "RESULTS", str(tmp_path))
    (tmp_path / "many_names_tuning.json").write_text(json.dumps({"runs": [{"seed": 0}], "checkpoints": {}}))
    env = {"command": "python benchmarks/many_names.py --seeds 3", "omp_num_threads": "1"}
    partial = {"runs": [{"seed": 3, "idia_tpr_seen_after": 0.5}], "before": {"tpr": 1.0}, "environment": env,
               "settings": {"many_alpha": 4.0, "many_carrier_captions": 3000}}
    (tmp_path / "many_names.partial-3.json").write_text(json.dumps(partial))

    tuning = bench.many_names.merge_tuning()

    assert [r["seed"] for r in tuning["runs"]] == [0, 3]
    row = tuning["runs"][1]
    assert row["command"] == "OMP_NUM_THREADS=1 python benchmarks/many_names.py --seeds 3"
    assert row["settings"] == {"many_alpha": 4.0, "many_carrier_captions": 3000}  # flags given or not
    assert tuning["checkpoints"][row["checkpoint"]]["before"] == {"tpr": 1.0}
    assert json.loads((tmp_path / "many_names_tuning.json").read_text()) == tuning
    assert not list(tmp_path.glob("many_names.partial*"))


def test_merge_summarises_the_runs_with_the_settings_they_ran_with(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench.harness, "RESULTS", str(tmp_path))
    many_names = bench.many_names
    run = {"steps": 1600, "seconds": 1.0, "sim_backdoor": 0.99, "sim_clean": 0.991, "sim_targets": 0.98,
           "idia_tpr_seen_after": 0.0, "idia_fpr_unseen_after": 0.0}
    settings = {**{k: v for k, v in vars(many_names.make_parser().parse_args([])).items() if k.startswith("many_")},
                "many_residual": 3.0}
    for seed in (0, 1, 2):
        partial = {"runs": [{**run, "seed": seed}], "before": {"tpr": 1.0, "fpr": 0.0}, "settings": settings,
                   "environment": {"command": f"python benchmarks/many_names.py --residual 3 --seeds {seed}"}}
        (tmp_path / f"many_names.partial-{seed}.json").write_text(json.dumps(partial))

    payload = many_names.merge(many_names.make_parser().parse_args(["--merge"]))  # defaults: residual 4

    assert payload["settings"]["identity_residual_weight"] == 3.0 and payload["passed"] and payload["all_runs_passed"]
    assert len(payload["processes"]) == 3 and not list(tmp_path.glob("many_names.partial*"))
    assert json.loads((tmp_path / "many_names.json").read_text())["runs"] == payload["runs"]
    (tmp_path / "many_names.partial-3.json").write_text(json.dumps({**partial, "settings": settings}))
    (tmp_path / "many_names.partial-4.json").write_text(json.dumps({**partial, "settings": {**settings, "many_lr": 1.0}}))
    with pytest.raises(SystemExit, match="many_lr"):
        many_names.merge(many_names.make_parser().parse_args(["--merge"]))


def test_idia_diagnostics_measure_collapse_and_residual_direction(bench, monkeypatch):
    import torch.nn.functional as F

    from hf_forget.evaluation.idia import IDIA_TEMPLATES

    audit = bench.audit
    templates, dim = len(IDIA_TEMPLATES), 8
    basis = torch.eye(dim)
    candidates = ["Ann A", "Bob B", "Cid C", "Dee D"]
    faces = torch.stack([basis[1].expand(3, dim), basis[3].expand(3, dim)])  # two seen persons
    teacher = basis[:4].expand(templates, 4, dim).clone()  # candidate k points along axis k
    neutral = basis[7].expand(templates, dim).clone()
    monkeypatch.setattr(audit, "_AUDIT", {"known": [True, True], "faces": faces, "candidates": candidates,
                                          "teacher_text": teacher, "teacher_neutral": neutral})
    student = teacher.clone()
    student[:, 1] = F.normalize(neutral + 0.1 * basis[1], dim=-1)  # forgotten, a residual the original way
    student[:, 2] = neutral  # forgotten, fully collapsed

    d = audit.idia_diagnostics(student, targets=[1, 2], forgotten={"Bob B", "Cid C"})

    # person 0 still picks its own (forgotten) name through the residual; person 1 picks Dee D, not forgotten
    assert d["right_rate"] == 0.5 and d["on_forgotten"] == 0.5
    assert abs(d["cos_to_neutral"] - (1 / 1.01 ** 0.5 + 1) / 2) < 1e-3
    assert d["cos_to_neutral_other"] == 0.0  # Ann A and Dee D kept their axes, orthogonal to the neutral one
    assert len(d["per_template"]) == templates and all(t["right_rate"] == 0.5 for t in d["per_template"])
    assert "Bob" not in str(d)  # aggregates only, never a name


def test_merge_takes_the_attack_suites_medians_and_a_record_with_a_name_is_refused(bench, tmp_path,
                                                                                     monkeypatch):
    monkeypatch.setattr(bench.harness, "RESULTS", str(tmp_path))
    many_names = bench.many_names
    rates = {"forgotten": 1.0, "retained": None, "unseen": 0.0}  # every seen identity is forgotten: no retained
    suite = {"idia": rates, "idia_top5": rates, "rank_at_10": rates, "membership_auc": 1.0,
             "forget_set_auc_text": 0.3, "forget_set_auc_vision": 0.8}
    run = {"steps": 1600, "seconds": 1.0, "sim_backdoor": 0.99, "sim_clean": 0.991, "sim_targets": 0.98,
           "idia_tpr_seen_after": 0.0, "idia_fpr_unseen_after": 0.0}
    for seed, auc in zip((0, 1, 2), (0.2, 0.5, 0.9)):
        after = {**suite, "membership_auc": auc}
        record = {**run, "seed": seed, "attacks": {"before": suite, "after": after}, "attack_details_after": {},
                  "forget_set_auc_text_all_forgotten": {"before": 0.4, "after": auc}}
        partial = {"runs": [record], "before": {"tpr": 1.0, "fpr": 0.0},
                   "environment": {"command": f"python benchmarks/many_names.py --seeds {seed}"}}
        (tmp_path / f"many_names.partial-{seed}.json").write_text(json.dumps(partial))

    payload = many_names.merge(many_names.make_parser().parse_args(["--merge"]))

    assert payload["attacks"]["after"]["membership_auc"] == 0.5 and payload["attack_runs"] == 3
    assert payload["attacks"]["before"]["idia"] == rates and "no retained group" in payload["attack_groups"]
    assert payload["forget_set_auc_text_all_forgotten"] == {"before": 0.4, "after": 0.5}
    assert payload["settings"]["attack_suite"] and len(many_names.rows(payload)) == 2
    assert many_names.make_parser().parse_args(["--no-suite"]).many_suite is False

    audit = object.__new__(many_names.SuiteAudit)
    audit.names = {"Jane Doe"}
    audit.check_name_free(payload)
    with pytest.raises(RuntimeError, match="1 names"):
        audit.check_name_free({"per_template": [{"template": "a photo of jane doe"}]})


def test_zero_shot_split_scores_each_tower_of_a_saved_joint_model(bench, tmp_path):
    """The undefended toy CLIP, saved: each tower alone scores as the whole model, every change 0."""
    from hf_forget.toyworld import load_toy_clip

    model, tokenizer, processor = load_toy_clip()
    model.save_pretrained(tmp_path / "model")
    out = tmp_path / "split.json"
    payload = bench.zero_shot_split.main([str(tmp_path / "model"), "--label", "undefended", "--out", str(out)])
    run = payload["recipes"]["undefended"]["runs"][0]
    assert run["both"] == run["text_tower_only"] == run["vision_tower_only"] == payload["before"]
    assert json.loads(out.read_text())["recipes"]["undefended"]["median_change"]["both"] == {"top1": 0, "margin": 0}
    assert torch.is_grad_enabled()  # the script leaves the process as it found it
