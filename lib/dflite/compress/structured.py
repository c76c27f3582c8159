"""Structured (channel) pruning with Torch-Pruning: Taylor importance, global or local, 1-shot or K-step.

One pruning step takes a trained net, computes fresh gradients on a few calibration batches (the
first-order Taylor importance of a channel group is |weight x gradient|, Molchanov et al. 2019),
removes the least important channel groups and hands the narrower net back for fine-tuning. The
output layer is kept (`ignored_layers`); Torch-Pruning's dependency graph removes coupled channels
together (a residual's both ends, a depthwise conv and its batch norm, a squeeze-excite's gate).

K-step pruning is K such steps, each followed by fine-tuning; each step is its own engine run, so a
killed study resumes at the step it stopped in. Step k of K takes the net to k/K of the final
ratio: its pruner is built on the already narrower net, with the share of the *remaining* channels
that reaches that target (for global pruning the target is counted over all prunable channels,
for local pruning per layer; see `step_ratio`).

Pitfalls handled here: pruning replaces parameter objects (the engine builds a new optimizer for
every run, so no optimizer holds stale tensors); gradients are zeroed before and after each
importance pass (a stale gradient would rank channels by the previous step's net); and rounding can
leave a thin layer with a channel or two (`channels_kept` lists the width kept per layer and
`thinnest` names the narrowest; `max_layer_ratio` caps any layer's pruned share). `round_to` keeps
every width a multiple of 8 or 16: CPU kernels work in blocks of channels, and odd widths measured
slower in ONNX Runtime than the dense net (notebook 04, "Aligned widths run faster").

The pruned net's architecture travels as Torch-Pruning's pruning history (module name, in/out,
channel indices) in the checkpoint's JSON spec: nets.checkpoint replays it on a fresh registry
model and checks the replayed layer shapes against the spec before loading the weights.
"""
from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from ..nets.checkpoint import layer_shapes
from ..nets.models import model_info

SCOPES = ("global", "local")


def step_ratio(target: float, done: float) -> float:
    """The share of the remaining channels one step removes to go from `done` to `target` pruned
    (both as shares of the dense net's channels)."""
    if not 0 <= done <= target < 1:
        raise ValueError(f"pruning ratios must satisfy 0 <= done ({done}) <= target ({target}) < 1")
    return (target - done) / (1 - done)


def step_targets(ratio: float, steps: int) -> list:
    """The ratio after each of `steps` equal steps to `ratio` (Torch-Pruning's linear schedule)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return [ratio * (k + 1) / steps for k in range(steps)]


def taylor_gradients(model: nn.Module, batches, loss_fn=None) -> None:
    """Accumulate fresh gradients of the loss over `batches` [(inputs, targets)] into the weights.

    Eval mode: batch-norm statistics stay as trained and dropout is off, so the importance ranks the
    net that will be kept, and two passes over the same batches rank the same.
    """
    loss_fn = loss_fn or nn.BCEWithLogitsLoss()
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    for x, y in batches:
        loss_fn(model(x).float().squeeze(1), y.float()).backward()
    model.train(was_training)


def prune_step(model: nn.Module, batches, ratio: float, scope: str = "global", max_layer_ratio: float = 0.9,
               round_to: int | None = None) -> list:
    """Remove `ratio` of the prunable channels of `model` in place, ranked by group Taylor importance
    on `batches` (global: across layers; local: within each layer), no layer losing more than
    `max_layer_ratio` of its channels, widths kept in multiples of `round_to` when given. Returns this
    step's pruning history (JSON-ready) and records it on the model's spec."""
    import torch_pruning as tp

    if scope not in SCOPES:
        raise ValueError(f"unknown pruning scope {scope!r}; expected {' or '.join(SCOPES)}")
    spec = getattr(model, "dflite_spec", None)
    if spec is None:
        raise ValueError("prune_step needs a model built by dflite.nets.models.create_model (its spec)")
    if ratio <= 0:
        return []
    size = spec["input_size"]
    classifier = model.get_submodule(model_info(spec["name"]).classifier)
    taylor_gradients(model, batches)
    was_training = model.training
    model.eval()  # tracing runs a forward pass: in train mode it would move the batch-norm statistics
    pruner = tp.pruner.MetaPruner(
        model, torch.zeros(1, 3, size, size), importance=tp.importance.GroupTaylorImportance(),
        global_pruning=scope == "global", pruning_ratio=ratio, max_pruning_ratio=max_layer_ratio,
        ignored_layers=[classifier], round_to=round_to)
    pruner.step()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    history = [[name, bool(out), [int(i) for i in idxs]] for name, out, idxs in pruner.pruning_history()]
    # A copy: the spec dict may be shared with the dense net this one was loaded beside.
    model.dflite_spec = {**spec, "pruning": list(spec.get("pruning", [])) + history}
    return history


def channels_kept(model: nn.Module, dense: nn.Module) -> pd.DataFrame:
    """Per conv and linear layer: output channels of the dense net, kept, and the share kept."""
    have, was = layer_shapes(model), layer_shapes(dense)
    rows = []
    for name, shape in was.items():
        if name in have and len(shape) >= 2:  # conv [in, out, groups] and linear [in, out]
            out_was, out_now = shape[1], have[name][1]
            rows.append({"layer": name, "dense": out_was, "kept": out_now, "share": round(out_now / out_was, 3)})
    return pd.DataFrame(rows).set_index("layer")


def thinnest(model: nn.Module, dense: nn.Module) -> dict:
    """The layer with the smallest share of its channels kept (where pruning bit hardest)."""
    table = channels_kept(model, dense)
    pruned = table[table["kept"] < table["dense"]]
    if pruned.empty:
        return {"layer": "", "kept": 0, "dense": 0, "share": 1.0}
    name = pruned["share"].idxmin()
    return {"layer": name, **pruned.loc[name].to_dict()}


def calibration_batches(dataset, batch_size: int, count: int, seed: int = 0) -> list:
    """`count` normalised batches of a crop dataset, drawn with a fixed seed (the same on every call)."""
    from ..data.loader import normalise

    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[: batch_size * count]
    return [(normalise(x), y) for x, y, _ in dataset.batches(batch_size, order.tolist())]
