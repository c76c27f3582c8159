"""Structured (channel) pruning: first-order Taylor importance, global or local, 1-shot or K-step, on
Torch-Pruning's dependency graph.

One pruning step takes a trained net, computes fresh gradients on calibration batches (the group Taylor
importance of a channel is |weight x gradient| summed over everything coupled to it, Molchanov et al.
2019: Torch-Pruning's `GroupTaylorImportance`, normalised by each group's mean), chooses channels to remove
and removes each coupled group with Torch-Pruning (a residual's both ends, a depthwise conv and its batch
norm, a squeeze-excite's gate). The output layer keeps its outputs.

The choice is dflite's own, not Torch-Pruning's `MetaPruner`, because MetaPruner cannot keep three
promises the studies need (measured in tests/test_structured.py):

- **Targets are shares of the dense net.** Step k of K takes the net to `target` = k/K of the final share of
  the *dense* net's channels, whatever earlier steps removed, so K steps end where one step does and never
  beyond it. Global: the share of all prunable channels; local: of each layer's.
- **The per-layer cap holds across steps.** No layer keeps fewer than (1 - max_layer_ratio) of its dense
  channels (MetaPruner only stops pruning a layer once it is already below the cap, and counts from the
  width of the net it was built on, so K steps can take a layer lower).
- **Rounding cannot overshoot.** With `round_to`, widths stay multiples of it (CPU kernels work in blocks of
  channels; odd widths measured slower in ONNX Runtime than the dense net, notebook 04): channels go in
  chunks of `round_to`, lowest importance first, and a chunk that would take the net past its target is
  skipped (global), or each layer goes to the allowed width nearest its target (local). MetaPruner rounds
  every layer's width down, which piles up: a 16-channel layer pruned 5 % locally lost half its channels.

`params`: instead of a channel share, prune globally to the largest channel share whose net has at most
that many parameters (bisection on the share): global and local compared at equal size.

The pruned net's architecture travels as Torch-Pruning's pruning history (module name, in/out, channel
indices) in the checkpoint's JSON spec: nets.checkpoint replays it on a fresh registry model and checks the
replayed layer shapes against the spec before loading the weights. Gradients are zeroed before and after
each importance pass (a stale gradient would rank channels by the previous step's net).
"""
from __future__ import annotations

import copy
import functools
import heapq
import math

import pandas as pd
import torch
from torch import nn

from .. import paths
from ..nets.checkpoint import layer_shapes
from ..nets.models import count_parameters, create_model, model_info

SCOPES = ("global", "local")


def step_targets(ratio: float, steps: int) -> list:
    """The share of the dense net's channels removed after each of `steps` equal steps to `ratio`."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return [ratio * (k + 1) / steps for k in range(steps)]


def taylor_gradients(model: nn.Module, batches, loss_fn=None) -> None:
    """Accumulate fresh gradients of the loss over `batches` [(inputs, targets)] into the weights.

    Eval mode: batch-norm statistics stay as trained and dropout is off, so the importance ranks the
    net that will be kept, and two passes over the same batches rank the same.
    """
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    for x, y in batches:
        logits = model(x).float()
        if logits.shape[1] > 1:  # an attribution head: class targets, cross-entropy (its training loss)
            (loss_fn or nn.functional.cross_entropy)(logits, y.long()).backward()
        else:
            (loss_fn or nn.BCEWithLogitsLoss())(logits.squeeze(1), y.float()).backward()
    model.train(was_training)


def dependency_groups(model: nn.Module):
    """Torch-Pruning's dependency graph of `model` and its prunable groups {root layer name: group}."""
    import torch_pruning as tp

    spec = model.dflite_spec
    size = spec["input_size"]
    classifier = model.get_submodule(model_info(spec["name"]).classifier)
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, 3, size, size))
    names = {m: n for n, m in model.named_modules()}
    groups = {}
    for group in graph.get_all_groups(ignored_layers=[classifier], root_module_types=(nn.Conv2d, nn.Linear)):
        root = group[0].dep.target.module
        if isinstance(root, nn.Conv2d) and 1 < root.groups < root.out_channels:
            raise ValueError(f"{names[root]}: grouped convolutions are not supported by dflite's channel choice")
        groups[names[root]] = group
    return graph, groups


def dense_widths(spec: dict) -> dict:
    """Output channels of every conv and linear layer of the dense registry net the spec was pruned from."""
    dense = create_model(spec["name"], num_classes=spec.get("num_classes", 1), input_size=spec["input_size"])
    return {n: shape[1] for n, shape in layer_shapes(dense).items() if len(shape) >= 2}


def _widths(dense: int, floor: int, round_to: int | None) -> list:
    """The widths a layer may have, widest first: multiples of round_to (and its dense width) down to the floor."""
    step = round_to or 1
    allowed = [w for w in range(dense - dense % step, floor - 1, -step) if w >= max(floor, 1)]
    return sorted({dense, *allowed}, reverse=True)


def plan(importance: dict, current: dict, dense: dict, target: float, scope: str, max_layer_ratio: float,
         round_to: int | None) -> dict:
    """{layer: channel indices to remove} taking the net to `target` of the dense net's channels removed.

    importance: {layer: tensor of its current channels' importance}; current/dense: {layer: width}.
    """
    removable = {}  # layer -> the widths it may step down to from its current one
    for name in importance:
        floor = math.ceil((1 - max_layer_ratio) * dense[name] - 1e-9)
        removable[name] = [w for w in _widths(dense[name], floor, round_to) if w < current[name]]
    order = {name: torch.argsort(imp, stable=True) for name, imp in importance.items()}  # least important first
    keep = dict(current)
    if scope == "local":
        for name in importance:
            goal = dense[name] * (1 - target)
            options = [current[name]] + removable[name]
            keep[name] = min(options, key=lambda w, goal=goal: (abs(w - goal), -w))  # nearest; ties keep more
    else:
        total = sum(dense[n] for n in importance)
        budget = round(target * total) - sum(dense[n] - current[n] for n in importance)
        step = {name: 0 for name in importance}  # the next width of each layer: removable[name][step[name]]

        def next_chunk(name):
            width = removable[name][step[name]]
            chunk = order[name][current[name] - keep[name]:current[name] - width]
            return float(importance[name][chunk].mean()), name
        heap = [next_chunk(n) for n in importance if removable[n]]
        heapq.heapify(heap)
        while budget > 0 and heap:
            _, name = heapq.heappop(heap)
            width = removable[name][step[name]]
            if keep[name] - width > budget:
                continue  # a chunk that would take the net past its target: this layer is done
            budget -= keep[name] - width
            keep[name] = width
            step[name] += 1
            if step[name] < len(removable[name]):
                heapq.heappush(heap, next_chunk(name))
    return {name: order[name][:current[name] - keep[name]].tolist() for name in importance
            if keep[name] < current[name]}


def _prune(model: nn.Module, graph, groups: dict, chosen: dict) -> list:
    """Remove the chosen channels group by group; returns the pruning history this added."""
    start = len(graph.pruning_history())
    for name, idxs in chosen.items():
        root = groups[name][0].dep  # as MetaPruner does: a group of just these indices, pruned and recorded once
        graph.get_pruning_group(root.target.module, root.handler, sorted(int(i) for i in idxs)).prune()
    return [[n, bool(out), [int(i) for i in idxs]] for n, out, idxs in graph.pruning_history()[start:]]


def prune_step(model: nn.Module, batches, target: float, scope: str = "global", max_layer_ratio: float = 0.9,
               round_to: int | None = None, params: int | None = None) -> list:
    """Prune `model` in place to `target` of its dense net's prunable channels removed (global: over all layers;
    local: per layer), ranked by group Taylor importance on `batches`, no layer below (1 - max_layer_ratio) of
    its dense width, widths in multiples of `round_to` when given. With `params`, prune globally to the largest
    share whose net has at most that many parameters instead. Returns this step's pruning history
    (JSON-ready) and records it on the model's spec."""
    import torch_pruning as tp

    if scope not in SCOPES:
        raise ValueError(f"unknown pruning scope {scope!r}; expected {' or '.join(SCOPES)}")
    if not 0 <= target < 1:
        raise ValueError(f"the pruning target must be in [0, 1), got {target}")
    spec = getattr(model, "dflite_spec", None)
    if spec is None:
        raise ValueError("prune_step needs a model built by dflite.nets.models.create_model (its spec)")
    if target <= 0 and params is None:
        return []
    taylor_gradients(model, batches)
    was_training = model.training
    model.eval()  # tracing runs a forward pass: in train mode it would move the batch-norm statistics
    graph, groups = dependency_groups(model)
    importance = {name: tp.importance.GroupTaylorImportance()(group).detach().cpu() for name, group in groups.items()}
    model.zero_grad(set_to_none=True)
    dense = dense_widths(spec)
    current = {name: graph.get_out_channels(groups[name][0].dep.target.module) for name in groups}

    def choose(share):
        return plan(importance, current, dense, share, scope, max_layer_ratio, round_to)
    if params is not None:
        if scope != "global":
            raise ValueError("a parameter budget prunes globally")
        target = _share_for_params(model, choose, params)
    history = _prune(model, graph, groups, choose(target))
    model.train(was_training)
    # A copy: the spec dict may be shared with the dense net this one was loaded beside.
    model.dflite_spec = {**spec, "pruning": list(spec.get("pruning", [])) + history}
    return history


def _share_for_params(model: nn.Module, choose, params: int, tol: float = 1e-3) -> float:
    """The largest global channel share whose pruned copy of `model` has at most `params` parameters."""
    def size(share):
        trial = copy.deepcopy(model)
        graph, groups = dependency_groups(trial)
        _prune(trial, graph, groups, choose(share))
        return count_parameters(trial)
    if size(0.0) <= params:
        return 0.0
    low, high = 0.0, 0.95
    while high - low > tol:
        mid = (low + high) / 2
        low, high = (low, mid) if size(mid) <= params else (mid, high)
    return high


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


@functools.lru_cache(maxsize=8)
def dense_reference(name: str, num_classes: int, input_size: int) -> tuple:
    """(dense registry net, the names of its prunable root layers) that a pruned net of this spec came from.
    Built once per architecture: a study's table asks for it once per row. Read it, never change it."""
    dense = create_model(name, num_classes=num_classes, input_size=input_size)
    return dense, tuple(dependency_groups(dense)[1])


@functools.lru_cache(maxsize=16)
def _dense_macs(name: str, num_classes: int, input_size: int, input_px: int) -> int:
    from .deploy import count_macs

    return count_macs(dense_reference(name, num_classes, input_size)[0], input_px)


def removed(model: nn.Module, input_px: int, macs: int | None = None) -> dict:
    """What pruning took from a net against its dense registry net: the shares of prunable channels,
    parameters and MACs removed (`macs`: the net's own at input_px, when the caller has counted them)."""
    from .deploy import count_macs

    spec = model.dflite_spec
    key = (spec["name"], spec.get("num_classes", 1), spec["input_size"])
    dense, roots = dense_reference(*key)
    kept = channels_kept(model, dense).loc[list(roots)]  # the layers pruning targets (coupled layers follow them)
    macs = count_macs(model, input_px) if macs is None else macs
    return {"channels_removed": round(float(1 - kept["kept"].sum() / kept["dense"].sum()), 4),
            "params_removed": round(1 - count_parameters(model) / count_parameters(dense), 4),
            "macs_removed": round(1 - macs / _dense_macs(*key, input_px), 4)}


def calibration_batches(dataset, batch_size: int, count: int, seed: int = 0, balanced: bool = True) -> list:
    """`count` normalised batches of a crop dataset, drawn with a fixed seed (the same on every call); balanced:
    half real and half fake crops in every batch (the test split has five fakes per real video, and a ranking
    made on fakes alone would keep what finds fakes and drop what finds reals)."""
    from ..data.loader import normalise

    g = torch.Generator().manual_seed(seed)
    if balanced:
        labels = torch.tensor(dataset.labels)  # a copy: the split's labels are a read-only view
        real, fake = (torch.nonzero(labels == c).flatten() for c in (0, 1))
        real, fake = real[torch.randperm(len(real), generator=g)], fake[torch.randperm(len(fake), generator=g)]
        half = batch_size // 2
        rest = batch_size - half
        n = min(count, len(real) // max(half, 1), len(fake) // max(rest, 1))
        if n == 0 and count > 0:
            # Fewer real (or fake) crops than half a batch, e.g. a small real-data split: one smaller balanced
            # batch rather than none (ONNX Runtime's calibration fails on no batch with "No data is collected").
            half = rest = min(len(real), len(fake), half)
            if half == 0:
                raise ValueError(f"calibration needs real and fake crops; split of {paths.show(dataset.root)} "
                                 f"has {len(real)} real and {len(fake)} fake")
            n, batch_size = 1, 2 * half
        order = []
        for b in range(n):
            order += real[b * half:(b + 1) * half].tolist() + fake[b * rest:(b + 1) * rest].tolist()
    else:
        order = torch.randperm(len(dataset), generator=g)[: batch_size * count].tolist()
    return [(normalise(x), y) for x, y, _ in dataset.batches(batch_size, order)]
