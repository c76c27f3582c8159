"""Crops of a store as tensors: one uint8 tensor per split, batched augmentation, class-balanced draws.

A split's crops are decoded once into a (N, 3, S, S) uint8 tensor (when they fit in memory), and a
training batch is augmented as one tensor on the training device: per-sample flips and colour jitter
in a few batched ops instead of a transform call per image in the main process.
"""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import WeightedRandomSampler

from .. import paths
from ..config import ATTRIBUTION_CLASSES

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CACHE_BYTES = 4 << 30  # hold a split's decoded crops in memory when they fit in 4 GiB
# No rotation: resampling a rotated crop blurs away the fine traces (checkerboards, gratings, seams)
# a detector should learn; real frames are not rotated either, since faces are found upright.
JITTER = 0.2           # augmentation: brightness, contrast and saturation factors in [1 - J, 1 + J]


def check_input_size(store, input_size: int) -> None:
    """Crops smaller than the model input would be upsampled: refuse, and say how to fix it."""
    have = int(store.config["size"])
    if have < input_size:
        raise ValueError(f"crop store {paths.show(store.root)} holds {have} px crops but the model input is "
                         f"{input_size} px; re-extract with `dflite extract --size {input_size}` (or a profile "
                         "whose extract.size is at least the input size)")


class CropDataset:
    """Crops of one split at the model's input size; `batch(idx)` gives (uint8 (B, 3, S, S), targets (B,)).

    target "label": real 0 / fake 1 as float (one output, BCE); "method": the index of the crop's method in
    config.ATTRIBUTION_CLASSES (real first, then each manipulation method; one output each, cross-entropy).
    """

    def __init__(self, store, split: str, input_size: int, target: str = "label"):
        check_input_size(store, input_size)
        self.root = store.root
        self.rows: pd.DataFrame = store.index[store.index["split"] == split].reset_index(drop=True)
        if self.rows.empty:
            raise ValueError(f"crop store {paths.show(store.root)} has no crops in split {split!r}")
        self.size = input_size
        self.target = target
        if target == "label":
            self.targets = torch.tensor(self.rows["label"].to_numpy(), dtype=torch.float32)
        elif target == "method":
            self.targets = torch.tensor(method_classes(self.rows, store.root), dtype=torch.long)
        else:
            raise ValueError(f"unknown training target {target!r}; expected label or method")
        fits = len(self.rows) * 3 * input_size ** 2 <= CACHE_BYTES
        self.images = None  # (N, 3, S, S) uint8 once decoded; None: decoded per batch (too large to hold)
        if fits:
            self.images = torch.stack([self.image(i) for i in range(len(self.rows))])

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def labels(self) -> np.ndarray:
        return self.rows["label"].to_numpy()

    @property
    def strata(self) -> np.ndarray:
        """What balanced draws balance: real and fake, or (target "method") every class."""
        return self.labels if self.target == "label" else self.targets.numpy()

    def image(self, i: int) -> torch.Tensor:
        """The crop at the model's input size as uint8 (3, S, S)."""
        if self.images is not None:
            return self.images[i]
        return read_crop(self.root / self.rows.at[i, "crop"], self.size)

    def batch(self, idx) -> tuple:
        idx = torch.as_tensor(idx, dtype=torch.long)
        x = self.images[idx] if self.images is not None else torch.stack([self.image(int(i)) for i in idx])
        return x, self.targets[idx]

    def batches(self, batch_size: int, order=None):
        """(uint8 images, labels, indices) in `order` (default: dataset order), batch_size at a time."""
        order = torch.arange(len(self)) if order is None else torch.as_tensor(order, dtype=torch.long)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            yield (*self.batch(idx), idx)


def method_classes(rows: pd.DataFrame, root) -> np.ndarray:
    """Each row's class index in ATTRIBUTION_CLASSES: real crops are class 0 whatever their method column says."""
    classes = ATTRIBUTION_CLASSES
    known = {m: i for i, m in enumerate(classes)}
    fake = rows["label"].to_numpy() == 1
    other = sorted(set(rows.loc[fake, "method"].astype(str)) - set(classes[1:]))
    if other:
        raise ValueError(f"crop store {paths.show(root)} has fakes of method(s) {', '.join(other)}, which the "
                         f"attribution head does not know (it names {', '.join(classes[1:])})")
    return np.where(fake, rows["method"].astype(str).map(known).fillna(0).to_numpy(), 0).astype(np.int64)


def _read(path, flags: int, what: str) -> np.ndarray:
    image = cv2.imread(str(path), flags)
    if image is None:
        raise ValueError(f"cannot read {what} {paths.show(path)}: the crop store is damaged; "
                         "re-run `dflite extract --force`")
    return image


def read_crop(path, size: int) -> torch.Tensor:
    """A stored crop at `size` px as RGB uint8 (3, S, S)."""
    bgr = _read(path, cv2.IMREAD_COLOR, "crop")
    if bgr.shape[0] != size:
        bgr = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1])).permute(2, 0, 1).contiguous()


def bgr_batch(images, size: int) -> torch.Tensor:
    """BGR uint8 crops (a list, or an (N, S, S, 3) array) as RGB uint8 (N, 3, size, size), each resized as
    `read_crop` resizes a stored crop."""
    resized = [cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) if im.shape[0] != size else im
               for im in images]
    batch = np.stack(resized) if resized else np.zeros((0, size, size, 3), np.uint8)
    return torch.from_numpy(np.ascontiguousarray(batch[..., ::-1])).permute(0, 3, 1, 2).contiguous()


def score_crops(score, crops, size: int, chunk: int = 512) -> np.ndarray:
    """score(uint8 (B, 3, size, size)) -> (B,) over BGR crops, resized a chunk at a time (a paper-size test set at one
    input size would be gigabytes at once)."""
    if not len(crops):
        return np.zeros(0)
    return np.concatenate([score(bgr_batch(crops[k:k + chunk], size)) for k in range(0, len(crops), chunk)])


def read_mask(path, size: int) -> np.ndarray:
    """A stored manipulation-mask crop at `size` px as bool (S, S): the pixels more than half manipulated."""
    grey = _read(path, cv2.IMREAD_GRAYSCALE, "mask crop").astype(np.float32) / 255
    if grey.shape[0] != size:
        grey = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)
    return grey > 0.5


_HELD: dict = {}  # (store root, split, size, rows hash) -> CropDataset, the last three a process used


def split_dataset(store, split: str, input_size: int, target: str = "label") -> CropDataset:
    """CropDataset of a split, kept for the next call in this process: a worker that trains many short
    runs on one store (lottery levels, pruning steps) decodes its crops once, not once per run."""
    rows = store.index[store.index["split"] == split]
    # Keyed by the split's rows themselves: a store object may carry an edited index (tests, subsets).
    key = (str(store.root), split, input_size, target,
           int(pd.util.hash_pandas_object(rows[["crop", "label", "method"]]).sum()))
    if key not in _HELD:
        if len(_HELD) >= 3:  # one store's three splits: a paper-size split may be gigabytes
            _HELD.pop(next(iter(_HELD)))
        _HELD[key] = CropDataset(store, split, input_size, target)
    return _HELD[key]


def normalise(x: torch.Tensor) -> torch.Tensor:
    """uint8 or 0..1 float (B, 3, S, S) -> ImageNet-normalised float."""
    x = x.float() / 255 if x.dtype == torch.uint8 else x
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def _grey(x: torch.Tensor) -> torch.Tensor:  # (B, 3, S, S) -> (B, 1, S, S), ITU-R 601 luma as torchvision
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Batched horizontal flips and colour jitter of uint8 (B, 3, S, S); returns normalised float.

    Every random draw comes from `generator` (on the CPU), so a batch is augmented identically on any
    device for the same seed.
    """
    b = x.shape[0]
    draws = torch.rand(b, 4, generator=generator)  # flip, brightness, contrast, saturation
    flip = (draws[:, 0] < 0.5).to(x.device).view(b, 1, 1, 1)
    bright, contrast, sat = ((1 + (draws[:, k] * 2 - 1) * JITTER).to(x.device).view(b, 1, 1, 1) for k in (1, 2, 3))
    x = x.float() / 255
    x = torch.where(flip, x.flip(3), x)
    x = (x * bright).clamp(0, 1)
    x = (contrast * x + (1 - contrast) * _grey(x).mean((2, 3), keepdim=True)).clamp(0, 1)
    x = (sat * x + (1 - sat) * _grey(x)).clamp(0, 1)
    return normalise(x)


def balanced_indices(labels: np.ndarray, generator: torch.Generator, n: int = 0) -> list:
    """n draws (default: as many as samples) with every class (real and fake, or each method) equally likely."""
    counts = np.bincount(labels, minlength=2).astype(float)
    weights = torch.as_tensor(1.0 / counts[labels], dtype=torch.double)
    return list(WeightedRandomSampler(weights, n or len(labels), replacement=True, generator=generator))


def epoch_indices(dataset: CropDataset, balance: str, generator: torch.Generator, rank: int = 0,
                  world: int = 1, size: int = 0) -> list:
    """This process's sample order for one epoch of `size` images (0 = the dataset's size), drawn
    once for all processes and sharded by rank under DDP."""
    size = size or len(dataset)
    if balance == "sampler":
        order = balanced_indices(dataset.strata, generator, size)
    else:  # shuffled passes over the data, as many as `size` needs
        passes = -(-size // len(dataset))
        order = torch.cat([torch.randperm(len(dataset), generator=generator) for _ in range(passes)])[:size].tolist()
    return order[rank::world]
