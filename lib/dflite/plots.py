"""Figures the notebooks show: frames beside their fakes and masks, scenes with boxes."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np

from .config import METHODS
from .video import read_frames


def method_grid(ffpp_root, target: str, compression: str = "c23", frame: int = 0, methods=METHODS):
    """One real frame beside each method's fake of the same frame, masks underneath."""
    root = Path(ffpp_root)
    real = read_frames(root / "original_sequences" / "youtube" / compression / "videos" / f"{target}.mp4", [frame])[0]
    fig, axes = plt.subplots(2, len(methods) + 1, figsize=(2.1 * (len(methods) + 1), 4.4))
    axes[0, 0].imshow(real[..., ::-1])
    axes[0, 0].set_title("original", fontsize=9)
    axes[1, 0].set_visible(False)
    for k, method in enumerate(methods, start=1):
        vids = root / "manipulated_sequences" / method
        fake_path = next(iter(sorted((vids / compression / "videos").glob(f"{target}_*.mp4"))), None)
        axes[0, k].set_title(method, fontsize=9)
        if fake_path is None:
            axes[0, k].text(0.5, 0.5, "missing", ha="center")
            axes[1, k].set_visible(False)
            continue
        axes[0, k].imshow(read_frames(fake_path, [frame])[0][..., ::-1])
        mask_path = vids / "masks" / "videos" / fake_path.name
        if mask_path.is_file():
            axes[1, k].imshow(read_frames(mask_path, [frame])[0][..., 0], cmap="gray", vmin=0, vmax=255)
        else:
            axes[1, k].set_visible(False)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1, 1].set_ylabel("mask", fontsize=9)
    fig.tight_layout()
    return fig


def scene_with_boxes(of_root, split: str = "Val", image_index: int = 0):
    """An OpenForensics image with its annotated faces: green real, red fake, polygon outline."""
    root = Path(of_root)
    doc = json.loads((root / f"{split}_poly.json").read_text())
    image = doc["images"][image_index]
    img = cv2.imread(str(root / image["file_name"]))
    if img is None:
        raise ValueError(f"cannot read {root / image['file_name']}")
    for ann in doc["annotations"]:
        if ann["image_id"] != image["id"]:
            continue
        colour = (0, 0, 230) if ann["category_id"] == 1 else (0, 200, 0)
        x, y, w, h = (int(round(v)) for v in ann["bbox"])
        cv2.rectangle(img, (x, y), (x + w, y + h), colour, 2)
        for poly in ann.get("segmentation") or []:
            pts = np.asarray(poly, np.float32).reshape(-1, 2).round().astype(np.int32)
            cv2.polylines(img, [pts], True, (230, 230, 0), 1)
    fig, ax = plt.subplots(figsize=(6, 6 * img.shape[0] / img.shape[1]))
    ax.imshow(img[..., ::-1])
    ax.set_title(f"{split}: {Path(image['file_name']).name} (green real, red fake)", fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    return fig
