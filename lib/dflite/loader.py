"""Torch datasets over a crop store: resizing, augmentation, and class-balanced sampling."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler
from torchvision.transforms import v2

from . import paths

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CACHE_BYTES = 1 << 30  # keep decoded crops in memory when a split's crops fit in 1 GiB


def transforms(train: bool, augment: bool = True) -> v2.Compose:
    """uint8 (3, S, S) -> normalised float; training adds flip, small rotation and colour jitter."""
    # No hue jitter: it converts every crop to HSV and back, two thirds of the augmentation's CPU time.
    steps = [v2.RandomHorizontalFlip(), v2.RandomRotation(10), v2.ColorJitter(0.2, 0.2, 0.2)] \
        if train and augment else []
    return v2.Compose(steps + [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def check_input_size(store, input_size: int) -> None:
    """Crops smaller than the model input would be upsampled: refuse, and say how to fix it."""
    have = int(store.config["size"])
    if have < input_size:
        raise ValueError(f"crop store {paths.show(store.root)} holds {have} px crops but the model input is "
                         f"{input_size} px; re-extract with `dflite extract --size {input_size}` (or a profile "
                         "whose extract.size is at least the input size)")


class CropDataset(Dataset):
    """Crops of one split: returns (image (3, S, S) float, label float, row index)."""

    def __init__(self, store, split: str, input_size: int, train: bool = False, augment: bool = True):
        check_input_size(store, input_size)
        self.root = store.root
        self.rows: pd.DataFrame = store.index[store.index["split"] == split].reset_index(drop=True)
        if self.rows.empty:
            raise ValueError(f"crop store {paths.show(store.root)} has no crops in split {split!r}")
        self.size = input_size
        self.transform = transforms(train, augment)
        fits = len(self.rows) * 3 * input_size ** 2 <= CACHE_BYTES
        self.cache: dict | None = {} if fits else None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def labels(self) -> np.ndarray:
        return self.rows["label"].to_numpy()

    def image(self, i: int) -> torch.Tensor:
        """The crop at the model's input size as uint8 (3, S, S), decoded once when cached."""
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        path = self.root / self.rows.at[i, "crop"]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read crop {path}: the crop store is damaged; re-run `dflite extract --force`")
        if bgr.shape[0] != self.size:
            bgr = cv2.resize(bgr, (self.size, self.size), interpolation=cv2.INTER_AREA)
        img = torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1])).permute(2, 0, 1).contiguous()
        if self.cache is not None:
            self.cache[i] = img
        return img

    def __getitem__(self, i: int):
        return self.transform(self.image(i)), torch.tensor(float(self.rows.at[i, "label"])), i


def balanced_indices(labels: np.ndarray, generator: torch.Generator) -> list:
    """One epoch of draws (as many as samples) with real and fake equally likely."""
    counts = np.bincount(labels, minlength=2).astype(float)
    weights = torch.as_tensor(1.0 / counts[labels], dtype=torch.double)
    return list(WeightedRandomSampler(weights, len(labels), replacement=True, generator=generator))


def epoch_indices(dataset: CropDataset, balance: str, generator: torch.Generator, rank: int = 0,
                  world: int = 1) -> list:
    """This process's sample order for one epoch (shared draw, sharded by rank under DDP)."""
    if balance == "sampler":
        order = balanced_indices(dataset.labels, generator)
    else:
        order = torch.randperm(len(dataset), generator=generator).tolist()
    return order[rank::world]


def eval_loader(dataset: CropDataset, batch_size: int, workers: int = 0) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
