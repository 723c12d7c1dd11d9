"""The speed benchmarks run, small, on the CPU: the host-overhead benchmark (a trainer step against a plain student
step, near-zero arithmetic) and the GPU benchmark's smoke mode (``bash benchmarks/gpu.sh --device cpu ...``)."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(ROOT, "benchmarks")

# What the test asserts. The full benchmark (benchmarks/results/host_overhead.json) measures 1.08-1.11 on a 2-core
# machine (issue 23's target: 1.10), and the same Trainer running the plain loop's loss (`floor_ratio`) 1.07: the
# Trainer's own per-step machinery. Single runs spread by +-0.01 and a busy machine moves the median, so the bound on
# the ratio sits a little above the target, and the bound on what the forgetting adds to the Trainer (ratio /
# floor_ratio, about 1.01-1.02) catches a per-step cost of the old kind (a walk over the module tree or the 146
# tensors: +0.1; padding every row, the anchor through autograd: +0.2-0.3) whatever the Trainer's own cost.
HOST_OVERHEAD_BOUND = 1.15
FORGETTING_OVER_TRAINER_BOUND = 1.05


def _module(name):
    sys.path.insert(0, BENCHMARKS)
    try:
        spec = importlib.util.spec_from_file_location(name, os.path.join(BENCHMARKS, f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(BENCHMARKS)


def test_host_overhead_of_a_step_is_close_to_the_plain_student_loop(tmp_path):
    out = tmp_path / "host_overhead.json"
    payload = _module("host_overhead").main(
        ["--steps", "30", "--warmup", "5", "--repeats", "3", "--no_breakdown", "--out", str(out)]
    )
    assert json.loads(out.read_text()) == payload
    assert len(payload["runs"]) == len(payload["floor_runs"]) == 3
    assert payload["setting"]["model"].endswith("146 trained tensors")
    assert payload["ratio"] <= HOST_OVERHEAD_BOUND, payload["runs"]
    assert payload["ratio"] / payload["floor_ratio"] <= FORGETTING_OVER_TRAINER_BOUND, payload


def test_host_overhead_breakdown_names_the_parts_of_a_step(tmp_path):
    module = _module("host_overhead")
    args = module.parse_args(["--steps", "6", "--warmup", "2"])
    from hf_forget.testing import sized_clip_text_model

    base, tokenizer = sized_clip_text_model("skeleton")
    data = (base, tokenizer, ["Quorin Vellast"], module.gpu_speed.generic_captions(60, 1),
            module.gpu_speed.generic_captions(10, 2))
    parts = module.breakdown_run(*data, args, str(tmp_path))
    assert {"student forward", "anchor forward", "backward", "gradient clipping", "optimizer.step()", "step"} <= set(
        parts["trainer_ms"])
    assert {"backward", "optimizer.step()", "step"} <= set(parts["loop_ms"])
    assert all(v >= 0 for v in parts["trainer_ms"].values())
    import torch

    assert torch.Tensor.backward.__module__ == "torch._tensor"  # the timing wrapper is gone


def test_gpu_benchmark_smoke_mode_runs_every_part_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "STEPS": "3", "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        ["bash", os.path.join(BENCHMARKS, "gpu.sh"), "--device", "cpu", "--size", "tiny", "--names", "4", "--batch",
         "4", "--pool", "16", "--captions", "200", "--criterion_steps", "2", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["runs"]) == {"default", "student_only", "reference", "criterion"}
    assert result["runs"]["student_only"]["steps"] == result["runs"]["default"]["steps"] == 3
    assert result["ratio"] == pytest.approx(
        result["runs"]["default"]["seconds"] / result["runs"]["student_only"]["seconds"], abs=0.01)
    assert result["setup_seconds"] > 0 and result["time_to_criterion"]["criterion_steps"] == 2
    assert result["syncs"] is None  # counted with CUDA only
    profiled = result["profile"]  # a few steps of both loops under torch.profiler (on the CPU: the ops' CPU time)
    assert profiled["time"] == "cpu ops" and profiled["steps"] == 4
    for loop in ("default", "student_only"):
        assert profiled[loop]["busy_ms_per_step"] > 0 and profiled[loop]["wall_ms_per_step"] > 0
        assert profiled[loop]["top"] and all(row["ms_per_step"] > 0 for row in profiled[loop]["top"])
    written = out.read_text()
    assert not any(part in written for name in _module("gpu_speed").invented_names(4) for part in name.split())


def test_invented_names_are_distinct_and_captions_generic():
    module = _module("gpu_speed")
    names = module.invented_names(64)
    assert len(set(names)) == 64 and all(len(n.split()) == 2 for n in names)
    captions = module.generic_captions(50, seed=1)
    assert len(captions) == 50 and all(c.startswith("a ") for c in captions)
    assert module.generic_captions(50, seed=1) == captions


def test_sync_count_reads_the_sync_debug_warnings_of_the_steps_after_the_first(monkeypatch):
    """On the CPU, stand-ins for CUDA's sync debug mode: each step in the counted window warns once."""
    import warnings

    import torch

    from hf_forget import TextForgetTrainer
    from hf_forget.testing import sized_clip_text_model

    module = _module("gpu_speed")
    mode = {"on": False}
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", lambda m: mode.update(on=m not in (0, "default")))
    real = TextForgetTrainer.compute_loss

    def compute_loss(self, *args, **kwargs):
        if mode["on"]:
            warnings.warn("called a synchronizing CUDA operation", UserWarning)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(TextForgetTrainer, "compute_loss", compute_loss)
    args = module.parse_args(["--device", "cpu", "--batch", "4", "--pool", "16", "--names", "2"])
    base, tokenizer = sized_clip_text_model("tiny")
    data = (base, tokenizer, module.invented_names(2), module.generic_captions(100, 1), module.generic_captions(20, 2))
    counted = module.count_syncs("default", *data, args, steps=6, warmup=2)
    assert counted["steps"] == 4 and counted["syncs"] == 4 and counted["syncs_per_step"] == 1.0
    assert counted["where"] and not mode["on"]


def test_the_profile_counts_each_kernel_once_on_a_gpu():
    """On CUDA a CPU op carries its kernels' device time too: only the kernels' own events are summed."""
    from types import SimpleNamespace

    import torch
    from torch.autograd import DeviceType

    module = _module("gpu_speed")

    def event(key, kind, device_us, cpu_us=5.0, count=2):
        return SimpleNamespace(key=key, device_type=kind, self_device_time_total=device_us, self_cpu_time_total=cpu_us,
                               count=count, is_user_annotation=False)

    events = [event("aten::mm", DeviceType.CPU, 300.0), event("gemm_kernel", DeviceType.CUDA, 300.0),
              event("aten::add_", DeviceType.CPU, 0.0), event("add_kernel", DeviceType.CUDA, 100.0)]
    profiler = SimpleNamespace(key_averages=lambda: events)
    on_gpu = module._busiest(profiler, 2, torch.device("cuda"))
    assert on_gpu["busy_ms_per_step"] == 0.2 and on_gpu["calls_per_step"] == 2.0
    assert [row["name"] for row in on_gpu["top"]] == ["gemm_kernel", "add_kernel"]
    on_cpu = module._busiest(profiler, 2, torch.device("cpu"))
    assert on_cpu["busy_ms_per_step"] == 0.01 and len(on_cpu["top"]) == 4


@pytest.mark.parametrize("script", ["gpu.sh", "gpu_check.sh", "gpu_wheels.sh"])
def test_the_device_scripts_parse(script):
    """The GPU call runs these once, on a machine lent for minutes: a syntax error there would cost the whole call."""
    proc = subprocess.run(["bash", "-n", os.path.join(BENCHMARKS, script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
