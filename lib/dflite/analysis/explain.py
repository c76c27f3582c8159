"""Grad-CAM of a detector's fake logit, scored against the ground-truth manipulation mask of each crop, beside
two baselines that say what chance is on these crops.

Scores per crop:

- energy ratio: the share of the CAM's energy (sum) inside the mask, divided by the mask's share of the crop.
  A uniform map scores 1, but face crops are centre-biased (the manipulated region sits in the middle), so 1
  is not chance here: see the baselines.
- pointing game: whether the CAM's peak lies inside the mask. A map with several equal peaks counts the share
  of its peak pixels inside.
- ROAD combined (pytorch-grad-cam): the drop in the fake *probability* when the least-relevant pixels are
  removed (noisy linear imputation) minus the drop when the most-relevant are removed, halved and averaged
  over percentiles (probability, not logit: models with larger logits would score larger). It needs no mask
  and checks the CAM is faithful to the model itself; it solves a sparse system per crop and percentile, so it
  runs on a subset.

Baselines on the same crops: a model-free centred Gaussian (`centre_prior`, what a map that only knows "the
face is in the middle" scores) and the model's own CAM scored against *shuffled* masks (another crop's mask
of the same method: what the CAM's shape scores without knowing where this crop was manipulated).

The CAM layer is the deepest of the registry's candidates whose map is at least `MIN_MAP` x `MIN_MAP` at the
model's input size (`cam_layer`): at 48-80 px the last feature layer of CNN-5 or EfficientNet is 3 x 3, which
can only say "centre" or "border". pytorch-grad-cam's GradCAM targets the single output logit.
"""
from __future__ import annotations

import warnings

import cv2
import numpy as np
import pandas as pd
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.metrics.road import ROADCombined
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from ..data.loader import normalise, read_crop, read_mask
from ..nets.models import model_info

ROAD_PERCENTILES = (20, 40, 60, 80)  # the share of pixels removed; pytorch-grad-cam's default has 9 (cost)
FAKE = ClassifierOutputTarget(0)  # dflite detectors have one output: the fake logit (what Grad-CAM explains)
MIN_MAP = 6                       # smallest CAM side (at the model's input size) that can localise anything
CENTRE_SIGMA = 0.25               # the centre prior's Gaussian sd, as a share of the crop side


def fake_probability(output: torch.Tensor) -> torch.Tensor:
    """ROAD's target: the fake probability of one output row."""
    return torch.sigmoid(output[..., 0])


def energy_ratio(cam: np.ndarray, mask: np.ndarray) -> float:
    """(CAM energy inside the mask / all CAM energy) / (mask area / crop area); nan when undefined
    (an all-zero CAM, or a mask that is empty or covers the whole crop)."""
    cam, mask = np.asarray(cam, dtype=np.float64), np.asarray(mask, dtype=bool)
    total, area = cam.sum(), mask.mean()
    if total <= 0 or area in (0.0, 1.0):
        return float("nan")
    return float(cam[mask].sum() / total / area)


def pointing(cam: np.ndarray, mask: np.ndarray, tol: float = 1e-6) -> float:
    """Share of the CAM's peak pixels (within `tol` of its maximum) inside the mask; nan for an all-zero CAM."""
    cam, mask = np.asarray(cam, dtype=np.float64), np.asarray(mask, dtype=bool)
    top = cam.max()
    if top <= 0:
        return float("nan")
    peak = cam >= top - tol * top
    return float(mask[peak].mean())


def centre_prior(size: int, sigma: float = CENTRE_SIGMA) -> np.ndarray:
    """A model-free map: an isotropic Gaussian centred on the crop, sd `sigma` x its side, peak 1."""
    ax = (np.arange(size) + 0.5) / size - 0.5
    return np.exp(-(ax[None, :] ** 2 + ax[:, None] ** 2) / (2 * sigma ** 2)).astype(np.float32)


def cam_layer(model: nn.Module, min_side: int = MIN_MAP) -> str:
    """The deepest registered Grad-CAM layer whose output map is at least `min_side` wide at the model's input
    size (the shallowest candidate when none is)."""
    candidates = model_info(model.dflite_spec["name"]).gradcam_layers
    size = model.dflite_spec["input_size"]
    sides = {}

    def record(name):
        def hook(module, inputs, output):  # returns None: the output passes on unchanged
            sides[name] = output.shape[-1]
        return hook
    hooks = [model.get_submodule(n).register_forward_hook(record(n)) for n in candidates]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return next((n for n in candidates if sides.get(n, 0) >= min_side), candidates[-1])


def layer(model: nn.Module, name: str | None = None) -> nn.Module:
    """The model's Grad-CAM layer: `name`, or `cam_layer`'s choice."""
    return model.get_submodule(name or cam_layer(model))


def gradcams(model: nn.Module, images: torch.Tensor, batch_size: int = 32, layer_name: str | None = None) -> np.ndarray:
    """Grad-CAM of the fake logit per image: uint8 or 0..1 float (B, 3, S, S) -> (B, S, S) in 0..1."""
    model = model.float().eval()
    out = []
    with GradCAM(model=model, target_layers=[layer(model, layer_name)]) as cam:
        for start in range(0, len(images), batch_size):
            x = normalise(images[start:start + batch_size])
            out.append(cam(input_tensor=x, targets=[FAKE] * len(x)))
    model.zero_grad(set_to_none=True)  # GradCAM leaves the last batch's gradients on the parameters
    return np.concatenate(out).astype(np.float32)


def road(model: nn.Module, images: torch.Tensor, cams: np.ndarray, percentiles=ROAD_PERCENTILES,
         seed: int = 0) -> np.ndarray:
    """ROAD combined per image on the fake probability (higher: the CAM ranks pixels by what the model's
    verdict depends on)."""
    torch.manual_seed(seed)  # the imputer adds noise: fix it, so a rerun gives the same scores
    metric = ROADCombined(percentiles=list(percentiles))
    with warnings.catch_warnings():  # NumPy 2 deprecation inside pytorch-grad-cam's imputer, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        scores = metric(normalise(images), cams, [fake_probability] * len(images), model.float().eval())
    return np.asarray(scores, dtype=np.float64)


def resize(cams: np.ndarray, size: int) -> np.ndarray:
    """(B, S, S) maps resized to (B, size, size) for display beside crops of another size."""
    return np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_LINEAR) for c in cams])


def mask_scores(cams: np.ndarray, masks: np.ndarray, prefix: str = "") -> pd.DataFrame:
    """energy_ratio and pointing per crop, from (B, S, S) CAMs and (B, S, S) bool masks."""
    return pd.DataFrame({f"{prefix}energy_ratio": [energy_ratio(c, m) for c, m in zip(cams, masks)],
                         f"{prefix}pointing": [pointing(c, m) for c, m in zip(cams, masks)]})


def shuffled(rows: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """For each crop, the position of another crop of the same method whose mask stands in for its own (a
    seeded derangement within each method: every crop gets a mask that is not its own)."""
    rng = np.random.default_rng(seed)
    order = np.arange(len(rows))
    for _, idx in sorted(rows.reset_index(drop=True).groupby("method").groups.items()):
        if len(idx) > 1:
            cycle = np.asarray(idx)[rng.permutation(len(idx))]
            order[cycle] = np.roll(cycle, -1)  # one cycle through a random order: nobody keeps its own mask
    return order


def read_pairs(root, rows: pd.DataFrame, size: int) -> tuple:
    """The crops and mask crops of `rows` (columns crop, mask; paths in the store `root`) at `size` px:
    (uint8 (B, 3, S, S), bool (B, S, S))."""
    images = torch.stack([read_crop(root / c, size) for c in rows["crop"]])
    masks = np.stack([read_mask(root / m, size) for m in rows["mask"]])
    return images, masks


def explain(model: nn.Module, root, rows: pd.DataFrame, road_rows: int = 0, seed: int = 0) -> pd.DataFrame:
    """`rows` with the model's energy_ratio and pointing against each crop's mask and against a shuffled mask
    (shuffled_energy_ratio, shuffled_pointing), and (for the first `road_rows`) road, at the model's input size;
    `layer` and `map_side` say where the CAM came from."""
    images, masks = read_pairs(root, rows, model.dflite_spec["input_size"])
    name = cam_layer(model)
    cams = gradcams(model, images, layer_name=name)
    out = pd.concat([rows.reset_index(drop=True), mask_scores(cams, masks),
                     mask_scores(cams, masks[shuffled(rows, seed)], "shuffled_")], axis=1)
    out["road"] = np.nan
    if road_rows:
        out.loc[:road_rows - 1, "road"] = road(model, images[:road_rows], cams[:road_rows], seed=seed)
    return out.assign(layer=name)


def prior_scores(root, rows: pd.DataFrame, size: int) -> pd.DataFrame:
    """The centre prior's energy_ratio and pointing on each crop's mask at `size` px."""
    _, masks = read_pairs(root, rows, size)
    prior = np.broadcast_to(centre_prior(size), masks.shape)
    return pd.concat([rows.reset_index(drop=True), mask_scores(prior, masks)], axis=1)
