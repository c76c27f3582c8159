"""Weights and training state in safetensors (no pickles), with errors that name the file."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn


def save_weights(model: nn.Module, path, model_name: str, **meta) -> None:
    """Model weights with the architecture name (and anything else) in the file's metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".part")
    save_file(tensors, str(tmp), metadata={"model": model_name, **{k: str(v) for k, v in meta.items()}})
    tmp.replace(path)


def _read(path) -> tuple:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        return load_file(str(path)), meta
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{path} is not a readable safetensors checkpoint (corrupted or truncated?): {e}") from None


def load_weights(model: nn.Module, path, model_name: str) -> dict:
    """Load weights saved by save_weights into `model`; refuse another architecture's checkpoint."""
    tensors, meta = _read(path)
    saved = meta.get("model")
    if saved and saved != model_name:
        raise ValueError(f"{path} holds {saved} weights, not {model_name}")
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path} does not fit {model_name}: missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}")
    return meta


def save_state(path, optimizer, scheduler, epoch: int, extra_tensors: dict, extra: dict) -> None:
    """Optimizer/scheduler/RNG state for resuming: tensors in safetensors, the rest in JSON metadata."""
    opt = optimizer.state_dict()
    tensors = {f"opt.{pid}.{k}": v.detach().cpu().contiguous() if torch.is_tensor(v) else torch.tensor(v)
               for pid, st in opt["state"].items() for k, v in st.items()}
    tensors.update({k: v.contiguous() for k, v in extra_tensors.items()})
    meta = {"param_groups": json.dumps(opt["param_groups"]), "epoch": str(epoch),
            "scheduler": json.dumps({k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}),
            "extra": json.dumps(extra)}
    tmp = Path(str(path) + ".part")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def load_state(path, optimizer, scheduler) -> tuple:
    """Restore what save_state wrote; returns (epoch, extra tensors, extra dict)."""
    tensors, meta = _read(path)
    state: dict = {}
    other = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
        else:
            other[key] = v
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    sched = scheduler.state_dict()
    sched.update(json.loads(meta["scheduler"]))
    scheduler.load_state_dict(sched)
    return int(meta["epoch"]), other, json.loads(meta["extra"])
