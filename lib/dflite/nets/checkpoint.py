"""Weights and training state in safetensors (no pickles), with errors that name the file.

A checkpoint rebuilds its own module: next to the weights, its metadata holds a JSON spec, the
registry name, input size and outputs plus the shape of every conv, batch norm and linear layer.
A structurally pruned net (Torch-Pruning shrinks layers in place) is the registry model with some
layers narrowed. When the spec carries Torch-Pruning's history (compress.structured records it),
`load_model` replays it on a fresh registry model and checks the widths it gives against the spec;
otherwise it narrows the layers the spec names directly. Then it loads the weights. An unstructured
(masked) net is a dense net whose pruned weights are zero: the same file.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..folders import atomic
from .models import create_model


def layer_shapes(model: nn.Module) -> dict:
    """{module name: shape} of every layer whose width pruning can change: conv [in, out, groups],
    batch norm [features], linear [in, out]."""
    shapes = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            shapes[name] = [m.in_channels, m.out_channels, m.groups]
        elif isinstance(m, _BatchNorm):
            shapes[name] = [m.num_features]
        elif isinstance(m, nn.Linear):
            shapes[name] = [m.in_features, m.out_features]
    return shapes


def model_spec(model: nn.Module) -> dict:
    """What rebuilds `model`: its registry spec (from create_model) and its layer shapes."""
    spec = getattr(model, "dflite_spec", None)
    if spec is None:
        raise ValueError(f"{type(model).__name__} was not built by dflite.nets.models.create_model: "
                         "no spec to rebuild it from")
    return {**spec, "layers": layer_shapes(model)}


def _narrow(m: nn.Module, shape: list) -> None:
    """Give one layer new widths (fresh, uninitialised tensors: the checkpoint's weights fill them)."""
    def param(*size):
        return nn.Parameter(torch.empty(*size))
    if isinstance(m, nn.Conv2d):
        m.in_channels, m.out_channels, m.groups = shape
        m.weight = param(m.out_channels, m.in_channels // m.groups, *m.kernel_size)
        if m.bias is not None:
            m.bias = param(m.out_channels)
    elif isinstance(m, _BatchNorm):
        (m.num_features,) = shape
        if m.affine:
            m.weight, m.bias = param(m.num_features), param(m.num_features)
        if m.track_running_stats:
            m.running_mean, m.running_var = torch.zeros(m.num_features), torch.ones(m.num_features)
    elif isinstance(m, nn.Linear):
        m.in_features, m.out_features = shape
        m.weight = param(m.out_features, m.in_features)
        if m.bias is not None:
            m.bias = param(m.out_features)


def build_model(spec: dict) -> nn.Module:
    """The module a spec describes: the registry model with its layers set to the spec's widths.

    A spec with a Torch-Pruning history (compress.structured) is rebuilt by replaying it, and the
    replayed widths must equal the spec's layer shapes; other specs narrow the layers directly.
    """
    model = create_model(spec["name"], num_classes=spec.get("num_classes", 1), input_size=spec.get("input_size"))
    if spec.get("pruning"):
        _replay(model, spec)
    modules = dict(model.named_modules())
    have = layer_shapes(model)
    for name, shape in spec.get("layers", {}).items():
        if name not in modules:
            raise ValueError(f"spec names a layer {name!r} that {spec['name']} does not have")
        if have.get(name) != list(shape):
            _narrow(modules[name], list(shape))
    return model


def _replay(model: nn.Module, spec: dict) -> None:
    """Redo a Torch-Pruning history on a fresh registry model and check the widths it gives."""
    import torch_pruning as tp

    size = model.dflite_spec["input_size"]
    model.eval()  # tracing runs a forward pass; in eval mode it changes no batch-norm statistics
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, 3, size, size))
    try:
        graph.load_pruning_history([list(step) for step in spec["pruning"]])
    except (AttributeError, IndexError, RuntimeError) as e:
        raise ValueError(f"the pruning history does not fit {spec['name']}: {type(e).__name__}: {e}") from None
    model.train()
    have = layer_shapes(model)
    wrong = [n for n, shape in spec.get("layers", {}).items() if have.get(n) != list(shape)]
    if wrong:
        raise ValueError(f"replaying the pruning history of {spec['name']} gives other widths than the spec: "
                         f"{wrong[0]} is {have.get(wrong[0])}, the spec says {spec['layers'][wrong[0]]} "
                         f"({len(wrong)} layers differ)")
    model.dflite_spec = {**model.dflite_spec, "pruning": spec["pruning"]}


def save_model(model: nn.Module, path, **meta) -> None:
    """Weights plus the spec that rebuilds the module (any registry model, pruned or not)."""
    spec = model_spec(model)
    save_weights(model, path, spec["name"], spec=json.dumps(spec), **meta)


def load_model(path) -> tuple:
    """(module, metadata) rebuilt from a save_model checkpoint alone."""
    tensors, meta = _read(path)
    if "spec" not in meta:
        raise ValueError(f"{path} has no model spec (saved by save_weights, not save_model); "
                         "build the model and use load_weights")
    model = build_model(json.loads(meta["spec"]))
    _fill(model, tensors, path, meta["model"])
    return model, meta


def save_weights(model: nn.Module, path, model_name: str, **meta) -> None:
    """Model weights with the architecture name (and anything else) in the file's metadata."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic(path) as tmp:
        save_file(tensors, str(tmp), metadata={"model": model_name, **{k: str(v) for k, v in meta.items()}})


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
    _fill(model, tensors, path, model_name)
    return meta


def _fill(model: nn.Module, tensors: dict, path, model_name: str) -> None:
    own = model.state_dict()
    wrong = [k for k, v in tensors.items() if k in own and own[k].shape != v.shape]
    if wrong:
        k = wrong[0]
        raise ValueError(f"{path} does not fit this {model_name}: {k} is {tuple(tensors[k].shape)} there, "
                         f"{tuple(own[k].shape)} here ({len(wrong)} layers differ; a pruned net? use load_model)")
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path} does not fit {model_name}: missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}")


def save_state(path, optimizer, scheduler, epoch: int, extra_tensors: dict, extra: dict) -> None:
    """Optimizer/scheduler/RNG state for resuming: tensors in safetensors, the rest in JSON metadata."""
    opt = optimizer.state_dict()
    tensors = {f"opt.{pid}.{k}": v.detach().cpu().contiguous() if torch.is_tensor(v) else torch.tensor(v)
               for pid, st in opt["state"].items() for k, v in st.items()}
    tensors.update({k: v.contiguous() for k, v in extra_tensors.items()})
    meta = {"param_groups": json.dumps(opt["param_groups"]), "epoch": str(epoch),
            "scheduler": json.dumps({k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}),
            "extra": json.dumps(extra)}
    with atomic(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


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
