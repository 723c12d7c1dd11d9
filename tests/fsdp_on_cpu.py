"""`hf-forget` under Accelerate's FSDP on CPU processes (gloo), for tests only.

Accelerate (1.16) turns an FSDP config into plain multi-CPU data parallelism when there is no accelerator
(`AcceleratorState` keeps FSDP to GPU-like devices), while torch's FSDP2 (`fully_shard`) itself runs on CPU
with gloo. This launcher lifts only that device check: the state keeps the FSDP plugin the config asked for,
so `Accelerator.prepare` shards the model exactly as on GPUs. Then it runs `hf-forget` with its arguments:

    accelerate launch --config_file examples/fsdp.yaml --num_processes 2 tests/fsdp_on_cpu.py text ... --use_cpu
"""

import sys

from accelerate import state

_init = state.AcceleratorState.__init__


def _fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs):
    _init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    if fsdp_plugin is not None and self.distributed_type == state.DistributedType.MULTI_CPU:
        self.distributed_type = state.DistributedType.FSDP
        self.fsdp_plugin = fsdp_plugin
        print(f"fsdp_on_cpu: process {self.process_index} shards with FSDP{fsdp_plugin.fsdp_version}", file=sys.stderr)


state.AcceleratorState.__init__ = _fsdp_on_cpu

if __name__ == "__main__":
    from hf_forget.cli import main

    sys.exit(main(sys.argv[1:]))
