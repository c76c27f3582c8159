"""Unstructured pruning masks: which conv and linear weights a sparse net keeps.

A `Mask` holds one 0/1 tensor per prunable weight (every conv and linear weight; the output layer
optional). Magnitude pruning removes the smallest |w| still kept until an exact count of weights is
gone, over all layers at once (global) or layer by layer; a mask only ever shrinks. A random mask
keeps as many weights per layer as another mask, at random places (the random-pruning control).
Masks are saved in safetensors (uint8) with their settings in the metadata.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from .. import paths
from ..config import stable_hash
from ..folders import atomic
from ..nets.models import count_parameters, model_info

PRUNABLE = (nn.Conv2d, nn.Linear)


def prunable_weights(model: nn.Module, classifier: bool = True) -> dict:
    """{parameter name: weight} of every conv and linear layer, in module order; without the output
    layer (the registry's `classifier`) when `classifier` is False."""
    output = model_info(model.dflite_spec["name"]).classifier if not classifier else None
    return {f"{name}.weight": m.weight for name, m in model.named_modules()
            if isinstance(m, PRUNABLE) and name != output}


class Mask:
    """{weight name: bool tensor}, True where the weight is kept."""

    def __init__(self, keep: dict):
        self.keep = {k: v.detach().to("cpu", torch.bool) for k, v in keep.items()}

    @classmethod
    def dense(cls, model: nn.Module, classifier: bool = True) -> Mask:
        return cls({k: torch.ones_like(w, dtype=torch.bool) for k, w in prunable_weights(model, classifier).items()})

    def __eq__(self, other) -> bool:
        return isinstance(other, Mask) and self.keep.keys() == other.keep.keys() and \
            all(torch.equal(v, other.keep[k]) for k, v in self.keep.items())

    @property
    def total(self) -> int:
        """Prunable weights, kept or not."""
        return sum(v.numel() for v in self.keep.values())

    @property
    def kept(self) -> int:
        return sum(int(v.sum()) for v in self.keep.values())

    @property
    def sparsity(self) -> float:
        """Share of the prunable weights pruned."""
        return 1 - self.kept / self.total

    def within(self, other: Mask) -> bool:
        """Every weight this mask keeps is kept by `other` (masks shrink level by level)."""
        same = self.keep.keys() == other.keep.keys()
        return same and all(not (v & ~other.keep[k]).any() for k, v in self.keep.items())

    def fingerprint(self) -> str:
        """8 hex digits of the kept positions: part of the identity of a run trained under this mask."""
        blob = {k: stable_hash(v.flatten().to(torch.uint8).numpy().tobytes().hex()) for k, v in self.keep.items()}
        return stable_hash(blob)

    def apply(self, model: nn.Module) -> None:
        """Zero the pruned weights in place (after every optimizer step, and after rewinding)."""
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, keep in self.keep.items():
                w = params[name]
                w.mul_(keep.to(w.device, w.dtype))

    def after_step(self, model: nn.Module, step: int) -> None:
        """The engine hook (`Hooks(after_step=mask.after_step)`): pruned weights stay exactly 0."""
        self.apply(model)

    def params_left(self, model: nn.Module) -> int:
        """Parameters the masked model still has: all of them minus the pruned weights."""
        return count_parameters(model) - (self.total - self.kept)

    def report(self) -> pd.DataFrame:
        """Per layer: weights, kept, sparsity; a last row `total`."""
        rows = [{"layer": k, "weights": v.numel(), "kept": int(v.sum())} for k, v in self.keep.items()]
        rows.append({"layer": "total", "weights": self.total, "kept": self.kept})
        table = pd.DataFrame(rows).set_index("layer")
        table["sparsity"] = 1 - table["kept"] / table["weights"]
        return table

    def save(self, path, meta: dict | None = None) -> None:
        with atomic(path) as tmp:
            save_file({k: v.to(torch.uint8).contiguous() for k, v in self.keep.items()}, str(tmp),
                      metadata={"dflite_mask": json.dumps(meta or {})})

    @classmethod
    def load(cls, path) -> Mask:
        try:
            with safe_open(str(path), framework="pt") as f:
                if "dflite_mask" not in (f.metadata() or {}):
                    raise ValueError(f"{paths.show(path)} is a safetensors file but no dflite mask")
                return cls({k: f.get_tensor(k) for k in f.keys()})
        except (SafetensorError, OSError) as e:
            raise ValueError(f"cannot read mask {paths.show(path)}: {e}") from None

    def check(self, model: nn.Module) -> None:
        """Refuse a mask made for another architecture (names or shapes differ)."""
        params = dict(model.named_parameters())
        for k, v in self.keep.items():
            if k not in params or params[k].shape != v.shape:
                have = tuple(params[k].shape) if k in params else "missing"
                raise ValueError(f"mask layer {k} {tuple(v.shape)} does not fit the model ({have})")


def _prune_counts(mask: Mask, target: float, scope: str) -> dict | int:
    if scope == "global":
        return round(target * mask.total)
    if scope == "layerwise":
        return {k: round(target * v.numel()) for k, v in mask.keep.items()}
    raise ValueError(f"unknown pruning scope {scope!r}; expected global or layerwise")


def magnitude_prune(model: nn.Module, mask: Mask, target: float, scope: str = "global") -> Mask:
    """The mask that prunes exactly round(target x weights) of the prunable weights (per layer when
    layerwise), removing the smallest |w| among those `mask` still keeps. Ties go to the earlier weight."""
    if not 0 <= target < 1:
        raise ValueError(f"target sparsity must be in [0, 1), got {target}")
    if target < mask.sparsity - 1e-9:
        raise ValueError(f"target sparsity {target:.3f} is below the mask's {mask.sparsity:.3f}: masks only shrink")
    params = dict(model.named_parameters())
    weights = {k: params[k].detach().cpu().abs().flatten() for k in mask.keep}
    counts = _prune_counts(mask, target, scope)
    if scope == "layerwise":
        keep = {}
        for k, w in weights.items():
            flat = mask.keep[k].flatten()
            keep[k] = _drop_smallest(w, flat, counts[k] - int((~flat).sum())).view_as(mask.keep[k])
        return Mask(keep)
    names = list(weights)
    flat_w = torch.cat([weights[k] for k in names])
    flat_keep = torch.cat([mask.keep[k].flatten() for k in names])
    flat = _drop_smallest(flat_w, flat_keep, counts - int((~flat_keep).sum()))
    out, start = {}, 0
    for k in names:
        n = mask.keep[k].numel()
        out[k] = flat[start:start + n].view_as(mask.keep[k])
        start += n
    return Mask(out)


def _drop_smallest(w: torch.Tensor, keep: torch.Tensor, n: int) -> torch.Tensor:
    """`keep` with its n smallest-|w| kept entries dropped (a stable sort: ties by position)."""
    keep = keep.clone()
    if n <= 0:
        return keep
    score = torch.where(keep, w.double(), torch.full_like(w, float("inf"), dtype=torch.float64))
    order = torch.sort(score, stable=True).indices[:n]
    keep[order] = False
    return keep


def random_mask(like: Mask, generator: torch.Generator) -> Mask:
    """A mask with as many kept weights per layer as `like`, at places drawn from `generator`."""
    keep = {}
    for k, v in like.keep.items():
        flat = torch.zeros(v.numel(), dtype=torch.bool)
        flat[torch.randperm(v.numel(), generator=generator)[:int(v.sum())]] = True
        keep[k] = flat.view_as(v)
    return Mask(keep)


STUDY_LEVELS = (0.2, 0.4, 0.6, 0.8)


def schedule(kind: str = "study", levels: int = 4, rate: float = 0.2) -> tuple:
    """Sparsity after each pruning level.

    study: the lottery-ticket study's 20/40/60/80 % (prune 20 %, 25 %, 1/3 and 1/2 of what remains);
    classic: `rate` of the remaining weights per level (Frankle & Carbin), 20, 36, 48.8, ... %.
    """
    if kind == "study":
        if levels > len(STUDY_LEVELS):
            raise ValueError(f"the study schedule has {len(STUDY_LEVELS)} levels, asked for {levels}")
        return STUDY_LEVELS[:levels]
    if kind == "classic":
        return tuple(round(1 - (1 - rate) ** level, 6) for level in range(1, levels + 1))
    raise ValueError(f"unknown schedule {kind!r}; expected study or classic")


def pack_sparse(model: nn.Module, mask: Mask) -> dict:
    """The model's weights stored sparsely: for each masked weight its kept values and a 1-bit mask
    (`<name>.values`, `<name>.bits`, `<name>.shape`); every other tensor as it is."""
    out = {}
    for name, t in model.state_dict().items():
        t = t.detach().cpu()
        if name in mask.keep:
            keep = mask.keep[name].flatten()
            out[f"{name}.values"] = t.flatten()[keep].contiguous()
            out[f"{name}.bits"] = torch.from_numpy(np.packbits(keep.numpy()))
            out[f"{name}.shape"] = torch.tensor(t.shape, dtype=torch.int64)
        else:
            out[name] = t.contiguous()
    return out


def unpack_sparse(packed: dict) -> dict:
    """pack_sparse's tensors back to a dense state dict."""
    state = {}
    for key, t in packed.items():
        if key.endswith((".bits", ".shape")):
            continue
        if key.endswith(".values"):
            name = key[:-len(".values")]
            shape = tuple(packed[f"{name}.shape"].tolist())
            n = int(np.prod(shape))
            keep = torch.from_numpy(np.unpackbits(packed[f"{name}.bits"].numpy())[:n].astype(bool))
            dense = torch.zeros(n, dtype=t.dtype)
            dense[keep] = t
            state[name] = dense.view(shape)
        else:
            state[key] = t
    return state


def sparse_size_mb(model: nn.Module, mask: Mask) -> float:
    """Size in MB (10^6 bytes) of the weights stored sparsely as a safetensors file."""
    from safetensors.torch import save

    return len(save(pack_sparse(model, mask))) / 1e6
