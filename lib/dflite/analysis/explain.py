"""Grad-CAM of a detector's fake logit, scored against the ground-truth manipulation mask of each crop.

Three scores per crop, each with a stated chance level:

- energy ratio: the share of the CAM's energy (sum) inside the mask, divided by the mask's share of
  the crop. 1 = no better than a uniform map; above 1 the CAM concentrates on the manipulated pixels.
- pointing game: whether the CAM's peak lies inside the mask. A map with several equal peaks counts
  the share of its peak pixels inside, so a uniform map scores the mask's area share (chance).
- ROAD combined (pytorch-grad-cam): the drop in the fake logit when the least-relevant pixels are
  removed (noisy linear imputation) minus the drop when the most-relevant are removed, halved and
  averaged over percentiles. It needs no mask and checks the CAM is faithful to the model itself;
  it solves a sparse system per crop and percentile, so it runs on a subset.

The CAMs come from pytorch-grad-cam's GradCAM at the model's registered layer (`nets.models`), with an
explicit target: the single output logit, which is the fake logit for every dflite detector.
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
FAKE = ClassifierOutputTarget(0)  # dflite detectors have one output: the fake logit


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


def layer(model: nn.Module, name: str | None = None) -> nn.Module:
    """The model's Grad-CAM layer: `name`, or the one its registry entry records."""
    name = name or model_info(model.dflite_spec["name"]).gradcam_layer
    return model.get_submodule(name)


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
    """ROAD combined per image (higher: the CAM ranks pixels by what the logit depends on)."""
    torch.manual_seed(seed)  # the imputer adds noise: fix it, so a rerun gives the same scores
    metric = ROADCombined(percentiles=list(percentiles))
    with warnings.catch_warnings():  # NumPy 2 deprecation inside pytorch-grad-cam's imputer, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        scores = metric(normalise(images), cams, [FAKE] * len(images), model.float().eval())
    return np.asarray(scores, dtype=np.float64)


def resize(cams: np.ndarray, size: int) -> np.ndarray:
    """(B, S, S) maps resized to (B, size, size) for display beside crops of another size."""
    return np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_LINEAR) for c in cams])


def mask_scores(cams: np.ndarray, masks: np.ndarray) -> pd.DataFrame:
    """energy_ratio and pointing per crop, from (B, S, S) CAMs and (B, S, S) bool masks."""
    return pd.DataFrame({"energy_ratio": [energy_ratio(c, m) for c, m in zip(cams, masks)],
                         "pointing": [pointing(c, m) for c, m in zip(cams, masks)]})


def read_pairs(root, rows: pd.DataFrame, size: int) -> tuple:
    """The crops and mask crops of `rows` (columns crop, mask; paths in the store `root`) at `size` px:
    (uint8 (B, 3, S, S), bool (B, S, S))."""
    images = torch.stack([read_crop(root / c, size) for c in rows["crop"]])
    masks = np.stack([read_mask(root / m, size) for m in rows["mask"]])
    return images, masks


def explain(model: nn.Module, root, rows: pd.DataFrame, road_rows: int = 0, seed: int = 0) -> pd.DataFrame:
    """`rows` with energy_ratio, pointing, and (for the first `road_rows`) road, for `model` at its input size."""
    images, masks = read_pairs(root, rows, model.dflite_spec["input_size"])
    cams = gradcams(model, images)
    out = pd.concat([rows.reset_index(drop=True), mask_scores(cams, masks)], axis=1)
    out["road"] = np.nan
    if road_rows:
        out.loc[:road_rows - 1, "road"] = road(model, images[:road_rows], cams[:road_rows], seed=seed)
    return out
