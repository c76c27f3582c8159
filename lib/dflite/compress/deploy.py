"""Deployment cost: parameters, size on disk, MACs (Torch-Pruning's counter), CPU latency at batch 1."""
from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from ..nets.models import count_parameters


def count_macs(model: nn.Module, input_size: int) -> int:
    """Multiply-accumulates of one forward pass at batch 1 (torch_pruning.utils.count_ops_and_params)."""
    import torch_pruning as tp

    was_training = model.training
    model.eval()
    macs, _ = tp.utils.count_ops_and_params(model, torch.zeros(1, 3, input_size, input_size))
    model.train(was_training)
    return int(macs)


def size_mb(model: nn.Module) -> float:
    """Size of the model's weights as a safetensors file in MB (10^6 bytes): tensors and header, without
    the metadata a dflite checkpoint adds (the spec of a pruned net would count its layer list)."""
    from safetensors.torch import save

    return len(save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})) / 1e6


def cpu_latency_ms(model: nn.Module, input_size: int, repeats: int = 30, warmup: int = 5, threads: int = 1) -> float:
    """Median wall time of one batch-1 forward pass on the CPU with a fixed number of threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    model = model.to("cpu").eval()
    x = torch.randn(1, 3, input_size, input_size)
    times = []
    try:
        with torch.inference_mode():
            for i in range(warmup + repeats):
                t = time.perf_counter()
                model(x)
                if i >= warmup:
                    times.append(time.perf_counter() - t)
    finally:
        torch.set_num_threads(previous)
    return float(np.median(times) * 1000)


def cost(model: nn.Module, input_size: int, repeats: int = 30) -> dict:
    """One row of the cost table."""
    return {"params": count_parameters(model), "size_mb": round(size_mb(model), 3),
            "mmacs": round(count_macs(model, input_size) / 1e6, 2),
            "cpu_ms": round(cpu_latency_ms(model, input_size, repeats), 2)}
