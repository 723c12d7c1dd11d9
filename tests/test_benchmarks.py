"""Smoke test of benchmarks/run.py pieces: the student-only lower bound and the step timer (seconds)."""

import importlib.util
import os

import torch

from hf_forget.trainers.base import is_norm_layer

from conftest import held_out_captions, training_captions

_RUN = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks", "run.py")


def _run_module():
    spec = importlib.util.spec_from_file_location("benchmarks_run", _RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lower_bound_trains_what_the_trainer_trains_and_step_timer_counts_steps(tiny_text_encoder, tmp_path):
    run = _run_module()
    model, tokenizer = tiny_text_encoder
    config = run.text_config(str(tmp_path), ["Jane Doe"], max_steps=3, per_device_train_batch_size=4,
                             num_trigger_samples=16, max_eval_samples=8, embedding="both")
    trainer = run.make_text_trainer(model, tokenizer, training_captions(200), held_out_captions(20), config)
    timer = run.step_timer()
    trainer.add_callback(timer)
    trainer.train()
    assert len(timer.cpu) == 3 and all(t > 0 for t in timer.cpu)

    from hf_forget.testing import tiny_clip_text_model

    student, _ = tiny_clip_text_model()
    before = {n: p.detach().clone() for n, p in student.named_parameters()}
    wall, cpu = run.lower_bound_run(student, config, trainer.train_dataset, trainer.data_collator, trainer.kinds, 2, 0)
    assert wall > 0 and cpu > 0
    norms = {n for m_name, m in student.named_modules() if is_norm_layer(m) for n, _ in
             ((f"{m_name}.{p}", None) for p, _ in m.named_parameters())}
    changed = {n for n, p in student.named_parameters() if not torch.equal(p, before[n])}
    assert changed and not (changed & norms)  # trained like the trainer's student: norm layers frozen


def test_quick_results_never_overwrite_the_protocol_results():
    run = _run_module()
    assert run.results_dir(quick=False) == run.RESULTS
    assert run.results_dir(quick=True) == os.path.join(run.RESULTS, "quick")
    # every section has a cost for --jobs scheduling and a runner
    assert set(run.SECTION_COST) == set(run.SECTIONS) == set(run.RUNNERS)


def test_merge_tuning_appends_partial_runs_with_their_command_and_checkpoint(tmp_path, monkeypatch):
    import json

    run = _run_module()
    monkeypatch.setattr(run, "RESULTS", str(tmp_path))
    (tmp_path / "many_names_tuning.json").write_text(json.dumps({"runs": [{"seed": 0}], "checkpoints": {}}))
    env = {"command": "python benchmarks/run.py --only many_names --many_seeds 3", "omp_num_threads": "1"}
    partial = {"runs": [{"seed": 3, "idia_tpr_seen_after": 0.5}], "before": {"tpr": 1.0}, "environment": env,
               "settings": {"many_alpha": 4.0, "many_carrier_captions": 3000}}
    (tmp_path / "many_names.partial-3.json").write_text(json.dumps(partial))

    tuning = run.merge_many_names_tuning()

    assert [r["seed"] for r in tuning["runs"]] == [0, 3]
    row = tuning["runs"][1]
    assert row["command"] == "OMP_NUM_THREADS=1 python benchmarks/run.py --only many_names --many_seeds 3"
    assert row["settings"] == {"many_alpha": 4.0, "many_carrier_captions": 3000}  # flags given or not
    assert row["checkpoint"] in tuning["checkpoints"] and tuning["checkpoints"][row["checkpoint"]]["before"] == {"tpr": 1.0}
    assert json.loads((tmp_path / "many_names_tuning.json").read_text()) == tuning
    assert not list(tmp_path.glob("many_names.partial*"))


def test_idia_diagnostics_measure_collapse_and_residual_direction(monkeypatch):
    import torch.nn.functional as F

    from hf_forget.evaluation.idia import IDIA_TEMPLATES

    run = _run_module()
    templates, dim = len(IDIA_TEMPLATES), 8
    basis = torch.eye(dim)
    candidates = ["Ann A", "Bob B", "Cid C", "Dee D"]
    faces = torch.stack([basis[1].expand(3, dim), basis[3].expand(3, dim)])  # two seen persons
    teacher = basis[:4].expand(templates, 4, dim).clone()  # candidate k points along axis k
    neutral = basis[7].expand(templates, dim).clone()
    monkeypatch.setattr(run, "_AUDIT", {"known": [True, True], "faces": faces, "candidates": candidates,
                                        "teacher_text": teacher, "teacher_neutral": neutral})
    student = teacher.clone()
    student[:, 1] = F.normalize(neutral + 0.1 * basis[1], dim=-1)  # forgotten, a residual the original way
    student[:, 2] = neutral  # forgotten, fully collapsed

    d = run.idia_diagnostics(student, targets=[1, 2], forgotten={"Bob B", "Cid C"})

    # person 0 still picks its own (forgotten) name through the residual; person 1 picks Dee D, not forgotten
    assert d["right_rate"] == 0.5 and d["on_forgotten"] == 0.5
    assert abs(d["cos_to_neutral"] - (1 / 1.01 ** 0.5 + 1) / 2) < 1e-3
    assert d["cos_to_neutral_other"] == 0.0  # Ann A and Dee D kept their axes, orthogonal to the neutral one
    assert len(d["per_template"]) == templates and all(t["right_rate"] == 0.5 for t in d["per_template"])
    assert "Bob" not in str(d)  # aggregates only, never a name
