"""The Trainer's own lifecycle: evaluate(), the held-out criterion at eval_steps, schedules, save_model(),
push_to_hub(), logging to tensorboard, and the layering of the package."""

from __future__ import annotations

import ast
import dataclasses
import math
from pathlib import Path

import pytest
from conftest import held_out_captions, training_captions

from hf_forget import ForgetInputError, TextForgetConfig, TextForgetTrainer, VisionForgetConfig, forget_text
from hf_forget.testing import tiny_clip_text_model

NAME = "Ann Example"
SMALL = dict(per_device_train_batch_size=8, num_trigger_samples=64, max_eval_samples=16, disable_tqdm=True,
             report_to="none", learning_rate=1e-3)
PACKAGE = Path(__file__).resolve().parent.parent / "hf_forget"


def trainer(tmp_path, **settings) -> TextForgetTrainer:
    model, tokenizer = tiny_clip_text_model()
    config = TextForgetConfig(output_dir=str(tmp_path / "run"), **{**SMALL, **settings})
    return TextForgetTrainer(model, config, tokenizer, training_captions(200), [NAME],
                             eval_captions=held_out_captions(20))


def test_evaluate_returns_the_held_out_forgetting_metrics(tmp_path):
    metrics = trainer(tmp_path, max_steps=1).evaluate()
    assert {"eval_sim_backdoor", "eval_sim_clean", "eval_sim_targets", "eval_sim_backdoor_hidden"} <= set(metrics)
    assert all(math.isfinite(v) for v in metrics.values())


def test_the_criterion_stops_training_at_an_evaluation_of_eval_steps(tmp_path):
    run = trainer(tmp_path, max_steps=12, stop_at_criterion=True, eval_steps=3, min_sim_backdoor=0.0,
                  min_sim_clean=0.0, learning_rate=1e-2)
    assert run.args.eval_strategy == "steps"
    run.train()
    assert run.stopped_at_criterion == 3 and run.state.global_step == 3
    assert any("eval_sim_backdoor" in log for log in run.state.log_history)


def logged_rates(run) -> list[float]:
    run.train()
    return [log["learning_rate"] for log in run.state.log_history if "learning_rate" in log]


def test_the_paper_multistep_schedule_is_the_default(tmp_path):
    run = trainer(tmp_path, max_steps=6, lr_milestones=[2, 4], lr_gamma=0.5, logging_steps=1)
    assert run.args.lr_scheduler_type == "multistep"
    assert logged_rates(run) == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4])


def test_any_transformers_schedule_and_warmup_work_when_asked(tmp_path):
    from transformers import get_cosine_schedule_with_warmup
    import torch

    run = trainer(tmp_path, max_steps=6, lr_scheduler_type="cosine", warmup_steps=2, logging_steps=1)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    reference = get_cosine_schedule_with_warmup(optimizer, 2, 6)
    expected = []
    for _ in range(6):
        expected.append(reference.get_last_lr()[0])
        optimizer.step()
        reference.step()
    assert logged_rates(run) == pytest.approx(expected)


def test_multistep_with_warmup_ramps_up_first(tmp_path):
    rates = logged_rates(trainer(tmp_path, max_steps=4, lr_milestones=[3], warmup_steps=2, logging_steps=1))
    assert rates == pytest.approx([0.0, 5e-4, 1e-3, 1e-3 * 0.5])


def test_push_to_hub_is_refused_with_a_pointer_to_the_guarded_pusher(tmp_path):
    run = trainer(tmp_path, max_steps=1)
    with pytest.raises(ForgetInputError, match="hf-forget push"):
        run.push_to_hub()


def test_cli_push_to_hub_publishes_through_the_leak_guard(tiny_text_encoder_dir, captions_file, tmp_path,
                                                          monkeypatch):
    import hf_forget.publish

    calls = []
    monkeypatch.setattr(hf_forget.publish, "push_defended", lambda path, repo, **kw: calls.append((path, repo, kw)))
    from hf_forget.cli import main

    code = main(["text", "--model_name_or_path", str(tiny_text_encoder_dir), "--names", NAME,
                 "--captions", str(captions_file), "--output_dir", str(tmp_path / "out"), "--max_steps", "2",
                 "--per_device_train_batch_size", "8", "--num_trigger_samples", "32", "--max_eval_samples", "16",
                 "--disable_tqdm", "true", "--report_to", "none", "--min_sim_clean", "0", "--min_sim_backdoor", "0",
                 "--learning_rate", "1e-2", "--push_to_hub", "--hub_model_id", "me/defended"])  # fmt: skip
    assert code == 0
    (path, repo, kwargs), = calls
    assert Path(path) == tmp_path / "out" and repo == "me/defended" and kwargs["names"] == [NAME]


def test_save_model_writes_the_defended_model_and_its_report(tmp_path):
    run = trainer(tmp_path, max_steps=1)
    run.train()
    run.save_model(str(tmp_path / "saved"))
    files = {p.name for p in (tmp_path / "saved").iterdir()}
    assert {"model.safetensors", "config.json", "forget_report.json", "tokenizer_config.json"} <= files


def test_tensorboard_event_files_reach_the_output(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard comes with the test extra")
    model, tokenizer = tiny_clip_text_model()
    out = tmp_path / "out"
    forget_text(model, [NAME], training_captions(200), tokenizer=tokenizer, output_dir=str(out),
                **{**SMALL, "report_to": "tensorboard", "max_steps": 2, "logging_steps": 1})
    assert list(out.glob("runs/*/events.out.tfevents.*"))


def test_no_saved_setting_or_state_can_hold_a_name(tmp_path):
    model, tokenizer = tiny_clip_text_model()
    out = tmp_path / "out"
    names = ["Zoë Q. Secret", "Jan Hidden"]

    class Stop(RuntimeError):
        pass

    from transformers import TrainerCallback

    class StopAfterCheckpoint(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            raise Stop

    with pytest.raises(Stop):
        forget_text(model, names, training_captions(200), tokenizer=tokenizer, output_dir=str(out),
                    callbacks=[StopAfterCheckpoint()], save_strategy="steps", save_steps=1, max_steps=3, **SMALL)
    checkpoint = next((tmp_path / ".out.incomplete").glob("checkpoint-*"))
    for path in checkpoint.iterdir():
        data = path.read_bytes()
        for word in ("Zoë", "Secret", "Hidden"):
            assert word.encode() not in data and word.encode("utf-16-le") not in data, path.name
    assert not {"names", "aliases"} & {f.name for f in dataclasses.fields(TextForgetConfig)}
    assert not {"names", "aliases"} & {f.name for f in dataclasses.fields(VisionForgetConfig)}


def test_a_string_of_names_is_refused_rather_than_split_into_letters(tmp_path):
    model, tokenizer = tiny_clip_text_model()
    with pytest.raises(ForgetInputError, match="list"):
        forget_text(model, "Jane Doe", training_captions(50), tokenizer=tokenizer, max_steps=1, **SMALL)


def test_modality_both_reaches_every_text_and_vision_setting():
    from hf_forget.cli.forget import TEXT_PREFIX, make_parser, text_run_fields
    from hf_forget.forget import RUN_LEVEL_FIELDS

    options = {a.dest for a in make_parser()._actions}
    vision = {f.name for f in dataclasses.fields(VisionForgetConfig) if f.init}
    assert vision <= options
    text_only = {f.name for f in dataclasses.fields(TextForgetConfig)} - vision
    text_settings = {f.name for f in text_run_fields()}
    assert text_only <= text_settings  # every text-only setting, e.g. identity_residual_weight, forget_variants
    assert {TEXT_PREFIX + name for name in text_settings} <= options
    assert not text_settings & set(RUN_LEVEL_FIELDS)  # those are the run's, set once


# ----------------------------------------------------------------------------------------- layering
def imports_of(path: Path) -> set[str]:
    """Absolute names of the hf_forget modules ``path`` imports (at any depth of the file)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    package = package.removesuffix(".__init__")
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names]
            found.update(n for n in [target, *names] if n.startswith("hf_forget"))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("hf_forget"))
    return found


def module_graph() -> dict[str, set[str]]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph = {}
    for name, path in modules.items():
        targets = set()
        for target in imports_of(path):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


LOWER = ("hf_forget.trainers", "hf_forget.data", "hf_forget.models", "hf_forget.losses")
UPPER = ("hf_forget.forget", "hf_forget.pipelines", "hf_forget.publish", "hf_forget.cli")


def test_lower_layers_never_import_upper_ones():
    for module, targets in module_graph().items():
        if module.startswith(LOWER):
            bad = sorted(t for t in targets if t.startswith(UPPER))
            assert not bad, f"{module} imports {bad}"


def test_the_import_graph_has_no_cycle():
    graph = {k: {t for t in v if t != "hf_forget"} for k, v in module_graph().items() if k != "hf_forget"}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in graph.get(node, ()):
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(target):] + [target]))
            if target not in state:
                visit(target, path + [target])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])
