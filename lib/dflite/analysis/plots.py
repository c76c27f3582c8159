"""Figures the notebooks show: frames beside their fakes and masks, scenes with boxes."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np

from ..config import METHODS
from ..data.video import read_frames

# Figures of video frames are photographs to PNG: at the default 100 dpi one takes 300-600 kB of
# base64 in a stored notebook. 60 dpi keeps them readable and under ~150 kB.
FRAME_DPI = 60


def method_grid(ffpp_root, target: str, compression: str = "c23", frame: int = 0, methods=METHODS):
    """One real frame beside each method's fake of the same frame, masks underneath."""
    root = Path(ffpp_root)
    real = read_frames(root / "original_sequences" / "youtube" / compression / "videos" / f"{target}.mp4", [frame])[0]
    fig, axes = plt.subplots(2, len(methods) + 1, figsize=(2.1 * (len(methods) + 1), 4.4), dpi=FRAME_DPI)
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
    fig, ax = plt.subplots(figsize=(6, 6 * img.shape[0] / img.shape[1]), dpi=FRAME_DPI)
    ax.imshow(img[..., ::-1])
    ax.set_title(f"{split}: {Path(image['file_name']).name} (green real, red fake)", fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    return fig


def crops_with_boxes(store_root, index, dataset_root, per_method: int = 1, seed: int = 0):
    """Per method: the frame with the detected box drawn, and the stored crop beside it."""
    from ..data.video import read_frames

    methods = sorted(index["method"].unique(), key=lambda m: (m != "original", m))
    fig, axes = plt.subplots(2, len(methods), figsize=(1.8 * len(methods), 3.8), squeeze=False, dpi=FRAME_DPI - 15)
    for k, method in enumerate(methods):
        row = index[index["method"] == method].sample(per_method, random_state=seed).iloc[0]
        source = Path(dataset_root) / row["source"]
        frame = read_frames(source, [row["frame"]])[0] if source.suffix == ".mp4" else cv2.imread(str(source))
        frame = frame.copy()
        cv2.rectangle(frame, (row["x"], row["y"]), (row["x"] + row["w"], row["y"] + row["h"]), (0, 220, 0), 2)
        axes[0, k].imshow(frame[..., ::-1])
        axes[0, k].set_title(method, fontsize=9)
        axes[1, k].imshow(cv2.imread(str(Path(store_root) / row["crop"]))[..., ::-1])
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("frame + box", fontsize=9)
    axes[1, 0].set_ylabel("crop", fontsize=9)
    fig.tight_layout()
    return fig


def stage_seconds(summaries: dict):
    """Horizontal stacked bars: seconds per preprocessing stage, one bar per dataset."""
    names = list(summaries)
    stages = list(next(iter(summaries.values()))["stage_seconds"])
    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.5 * len(names)))
    left = np.zeros(len(names))
    for stage in stages:
        vals = np.array([summaries[n]["stage_seconds"][stage] for n in names])
        ax.barh(names, vals, left=left, label=stage)
        left += vals
    ax.set_xlabel("CPU seconds, summed over workers")
    ax.legend(ncol=len(stages), fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def recall_by_size(table, min_size: int, title: str = ""):
    """Detector recall against face side, one line per frame resolution; the dashed line is min_size."""
    fig, ax = plt.subplots(figsize=(6, 3))
    for res, g in table.groupby("resolution", sort=False):
        ax.plot(g["face_px"], g["recall"], marker="o", label=res)
    ax.axvline(min_size, color="grey", ls="--", lw=1)
    ax.text(min_size, 0.02, f" min_size {min_size}", color="grey", fontsize=8)
    ax.set_xlabel("face side in the frame (px)")
    ax.set_ylabel("recall (IoU >= 0.4)")
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def training_curves(history, title: str = ""):
    """Validation AUC and training loss against images seen, one line per model (mean ± sd over seeds)."""
    import pandas as pd
    import seaborn as sns

    h = pd.DataFrame(history)
    x = "images" if "images" in h else "epoch"  # models have their own budgets: images seen compares them
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    sns.lineplot(h, x=x, y="val_auc", hue="model", errorbar="sd", marker="o", ax=axes[0], legend=False)
    sns.lineplot(h, x=x, y="train_loss", hue="model", errorbar="sd", marker="o", ax=axes[1])
    axes[0].axhline(0.5, color="grey", lw=0.8, ls=":")
    axes[0].set(xlabel=f"{x} seen" if x == "images" else x, ylabel="validation AUC", title=title or "validation AUC")
    axes[1].set(xlabel=f"{x} seen" if x == "images" else x, ylabel="training loss (BCE)", title="training loss")
    axes[1].legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def method_heatmap(table, title: str = "test AUC per manipulation method"):
    """Models x methods heatmap of a per-method score table (e.g. studies.baselines.per_method)."""
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(1.3 * table.shape[1] + 2.5, 0.45 * table.shape[0] + 1.2))
    sns.heatmap(table, annot=True, fmt=".2f", vmin=0.5, vmax=1.0, cmap="viridis", cbar=False, ax=ax)
    ax.set(title=title, xlabel="", ylabel="")
    fig.tight_layout()
    return fig


ARM_STYLE = {"imp": ("IMP (ticket)", "C0", "o"), "oneshot": ("one-shot", "C1", "s"),
             "random_reinit": ("random reinit", "C2", "^"), "random_mask": ("random mask", "C3", "v")}


def sparsity_curves(summary, metrics=("auc", "acc")):
    """Test metric against sparsity, one panel per model (and dataset) and metric, one line per arm
    with ± sd over seeds as error bars; the dense net is the grey band (mean ± sd) at 0 %."""
    s = summary.reset_index()
    pairs = list(s[["model", "dataset"]].drop_duplicates().itertuples(index=False))
    fig, axes = plt.subplots(len(metrics), len(pairs), figsize=(3.6 * len(pairs) + 0.6, 2.8 * len(metrics)),
                             squeeze=False, sharex=True)
    for col, (model, dataset) in enumerate(pairs):
        g = s[(s.model == model) & (s.dataset == dataset)]
        dense = g[g.arm == "dense"]
        for row, metric in enumerate(metrics):
            ax = axes[row, col]
            if not dense.empty:
                m, sd = float(dense[metric].iloc[0]), float(np.nan_to_num(dense[f"{metric}_sd"].iloc[0]))
                ax.axhspan(m - sd, m + sd, color="grey", alpha=0.25, lw=0)
                ax.axhline(m, color="grey", lw=1, label="dense")
            for k, (arm, (label, color, marker)) in enumerate(ARM_STYLE.items()):
                a = g[g.arm == arm].sort_values("sparsity")
                if a.empty:
                    continue
                x = a["sparsity"] * 100 + (k - 1.5) * 0.8  # nudge the arms apart so error bars stay readable
                ax.errorbar(x, a[metric], yerr=a[f"{metric}_sd"].fillna(0), color=color, marker=marker, ms=4,
                            lw=1.2, capsize=2, label=label)
            ax.set_ylabel(f"test {metric.upper()}")
            if row == 0:
                ax.set_title(f"{model} · {dataset}", fontsize=10)
            if row == len(metrics) - 1:
                ax.set_xlabel("sparsity (% of weights pruned)")
    axes[0, -1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def slimming_curves(summary, student: str, reference: str, ratios, alphas, alpha: float, sweep: tuple):
    """Notebook 04: test AUC against the pruning ratio (fine-tuned, and with KD) and against the KD alpha.

    `summary` is studies.structured.summary's table (model, variant rows); `sweep` the sweep's (scope,
    steps); the dense student and reference are grey and dashed lines (± sd bands over seeds).
    """
    from ..compress.slimming import Variant

    s = summary.loc[student]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.2))
    for ax in (left, right):
        for model, style in ((student, "-"), (reference, "--")):
            dense = summary.loc[(model, "dense")]
            m, sd = float(dense["auc"]), float(np.nan_to_num(dense["auc_sd"]))
            ax.axhspan(m - sd, m + sd, color="grey", alpha=0.2, lw=0)
            ax.axhline(m, color="grey", ls=style, lw=1, label=f"{model} dense")
    for a, label, color in ((0.0, "fine-tuned", "tab:blue"), (alpha, f"+ KD α={alpha:g}", "tab:orange")):
        rows = s.loc[[Variant(r, *sweep, a).label for r in ratios]]
        left.errorbar([r * 100 for r in ratios], rows["auc"], yerr=rows["auc_sd"].fillna(0), marker="o", ms=4,
                      capsize=2, color=color, label=label)
    rows = s.loc[[Variant(0.0, alpha=a).label for a in alphas]]
    right.errorbar(list(alphas), rows["auc"], yerr=rows["auc_sd"].fillna(0), marker="o", ms=4, capsize=2,
                   color="tab:orange", label=f"{student} + KD")
    left.set(xlabel="channels pruned (%)", ylabel="test AUC", title=f"{student}: Taylor pruning + fine-tuning")
    right.set(xlabel="KD alpha (0 = no teacher)", ylabel="test AUC", title="distillation, unpruned")
    left.legend(fontsize=7, loc="lower left")
    right.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig
