"""Figures the notebooks show: frames beside their fakes and masks, scenes with boxes."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..config import METHODS
from ..data.sources import ffpp
from ..data.video import frame_count, read_frames

# Figures of video frames are photographs to PNG: at the default 100 dpi one takes 300-600 kB of
# base64 in a stored notebook. 60 dpi keeps them readable and under ~150 kB.
FRAME_DPI = 60


def method_grid(ffpp_root, target: str, compression: str = "c23", frame: int = 0, methods=METHODS):
    """One real frame beside each method's fake of the same frame, masks underneath (the last frame where a
    video is shorter than `frame`)."""
    root = Path(ffpp_root)
    real_path = ffpp.real_dir(root, compression) / f"{target}.mp4"
    frame = min(frame, max(frame_count(real_path) - 1, 0))
    real = read_frames(real_path, [frame])[0]
    fig, axes = plt.subplots(2, len(methods) + 1, figsize=(2.1 * (len(methods) + 1), 4.4), dpi=FRAME_DPI)
    axes[0, 0].imshow(real[..., ::-1])
    axes[0, 0].set_title("original", fontsize=9)
    axes[1, 0].set_visible(False)
    for k, method in enumerate(methods, start=1):
        fake_path = next(iter(sorted(ffpp.fake_dir(root, method, compression).glob(f"{target}_*.mp4"))), None)
        axes[0, k].set_title(method, fontsize=9)
        if fake_path is None:
            axes[0, k].text(0.5, 0.5, "missing", ha="center")
            axes[1, k].set_visible(False)
            continue
        axes[0, k].imshow(read_frames(fake_path, [frame])[0][..., ::-1])
        mask_path = ffpp.mask_dir(root, method) / fake_path.name
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

    methods = sorted(index["method"].unique(), key=lambda m: (m != "original", m))
    fig, axes = plt.subplots(2, len(methods), figsize=(1.8 * len(methods), 3.8), squeeze=False, dpi=FRAME_DPI)
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
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)  # beside: over the
    fig.set_figwidth(7)                                                                   # bars it hid one's end
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
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
    sns.lineplot(h, x=x, y="val_auc", hue="model", errorbar="sd", marker="o", ax=axes[0], legend=False)
    sns.lineplot(h, x=x, y="train_loss", hue="model", errorbar="sd", marker="o", ax=axes[1])
    axes[0].axhline(0.5, color="grey", lw=0.8, ls=":")
    axes[0].set(xlabel=f"{x} seen" if x == "images" else x, ylabel="validation AUC", title=title or "validation AUC")
    axes[1].set(xlabel=f"{x} seen" if x == "images" else x, ylabel="training loss (BCE)", title="training loss")
    axes[1].legend(fontsize=8, title=None, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # off the lines
    fig.tight_layout()
    return fig


def method_heatmap(table, title: str = "test AUC per manipulation method", vmin: float = 0.5, vmax: float = 1.0,
                   sd=None, digits: int = 2):
    """Models x methods heatmap of a per-method score table (e.g. studies.baselines.per_method); with `sd` (the
    same shape: the sd over seeds) each cell reads 'mean ± sd', so a difference between cells can be weighed
    against the seeds' spread (a cell with one seed shows its mean alone)."""
    import seaborn as sns

    annot, fmt, row_h = True, f".{digits}f", 0.45
    if sd is not None:
        sd = sd.reindex(index=table.index, columns=table.columns)
        annot = table.map(lambda m: f"{m:.{digits}f}") + sd.map(lambda s: "" if pd.isna(s) else f"\n± {s:.{digits}f}")
        fmt, row_h = "", 0.7
    fig, ax = plt.subplots(figsize=(1.3 * table.shape[1] + 2.5, row_h * table.shape[0] + 1.2))
    sns.heatmap(table, annot=annot, fmt=fmt, vmin=vmin, vmax=vmax, cmap="viridis", cbar=False, ax=ax,
                annot_kws={"fontsize": 9})
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

    `summary` is studies.structured.summary's table (indexed by model, arm, ratio, scope, steps, alpha, match);
    `sweep` the sweep's (scope, steps); the dense student and reference are grey and dashed lines (± sd bands
    over seeds).
    """
    def pick(model, arm, ratio, scope, steps, a):
        return summary.loc[(model, arm, ratio, scope, steps, a, "")]

    fig, axes = plt.subplots(1, 2 if alphas else 1, figsize=(9.0 if alphas else 4.8, 3.2), squeeze=False)
    left, right = axes[0, 0], axes[0, -1] if alphas else None
    for ax in (left, right) if alphas else (left,):
        for model, style in ((student, "-"), (reference, "--")):
            dense = pick(model, "dense", 0.0, "global", 1, 0.0)
            m, sd = float(dense["auc"]), float(np.nan_to_num(dense["auc_sd"]))
            ax.axhspan(m - sd, m + sd, color="grey", alpha=0.2, lw=0)
            ax.axhline(m, color="grey", ls=style, lw=1, label=f"{model} dense")
    # Each line starts at the dense student (0 % pruned), so that a sweep of one ratio (quick) still reads as a
    # change from the dense net; the KD line is nudged right so the two sets of error bars stay apart.
    start = pick(student, "dense", 0.0, "global", 1, 0.0)
    lines = ((0.0, "fine-tuned", "tab:blue"), (alpha, f"+ KD α={alpha:g}", "tab:orange"))
    for k, (a, label, color) in enumerate(lines):
        rows = [start] + [pick(student, "variant", r, *sweep, a) for r in ratios]
        left.errorbar([r * 100 + k * 0.6 for r in (0.0, *ratios)], [r["auc"] for r in rows],
                      yerr=[np.nan_to_num(r["auc_sd"]) for r in rows], marker="o", ms=4, capsize=2, color=color,
                      label=label)
    left.set_xlim(-2, max(ratios) * 100 + 4)
    left.set(xlabel="channels pruned (%)", ylabel="test AUC", title=f"{student}: Taylor pruning + fine-tuning")
    left.legend(fontsize=8, loc="lower left")
    if alphas:  # the alpha sweep on the unpruned student (standard and paper)
        rows = [pick(student, "variant", 0.0, "global", 1, a) for a in alphas]
        right.errorbar(list(alphas), [r["auc"] for r in rows], yerr=[np.nan_to_num(r["auc_sd"]) for r in rows],
                       marker="o", ms=4, capsize=2, color="tab:orange", label=f"{student} + KD")
        right.set(xlabel="KD alpha (0 = no teacher)", ylabel="test AUC", title="distillation, unpruned")
        right.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def cam_grid(images, masks, cams: dict, methods):
    """Notebook 06: one row per method: the crop with its mask outlined, then each model's Grad-CAM with the
    mask's outline (red: high; dark blue everywhere: Grad-CAM found no positive evidence)."""
    n, cols = len(methods), 1 + len(cams)
    fig, axes = plt.subplots(n, cols, figsize=(1.3 * cols, 1.35 * n), squeeze=False, dpi=FRAME_DPI)
    for i, method in enumerate(methods):
        outline, _ = cv2.findContours(masks[i].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        shown = cv2.drawContours(np.ascontiguousarray(images[i]).copy(), outline, -1, (255, 255, 0), 1)
        axes[i, 0].imshow(shown)
        axes[i, 0].set_ylabel(method, fontsize=8)
        for j, (label, maps) in enumerate(cams.items(), start=1):
            # The map alone in 8 colour levels, the mask outlined over it: a map blended over the photo
            # stores at ~4x the size in the notebook, and the crop is in the first column.
            axes[i, j].imshow(maps[i], cmap=plt.get_cmap("jet", 8), vmin=0, vmax=1)
            axes[i, j].contour(masks[i], levels=[0.5], colors="white", linewidths=0.6)
            if i == 0:
                axes[i, j].set_title(label, fontsize=8)
    axes[0, 0].set_title("crop + mask", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def focus_curves(table, score: str = "energy_ratio"):
    """Notebook 06: a Grad-CAM score against the share pruned per model (mean over methods, ± sd over seeds),
    one line per pruned arm or variant from its dense net at 0 %; the dashed line is a uniform map's (1 for
    the energy ratio)."""
    import pandas as pd
    import seaborn as sns

    from .labels import arm

    keys = ["study", "model", "arm", "sparsity", "ratio", "scope", "steps", "alpha", "seed"]
    per_seed = table.groupby(keys, as_index=False, sort=False)[score].mean()
    per_seed["pruned %"] = (per_seed["sparsity"] + per_seed["ratio"]) * 100  # weights (tickets) or channels
    # A line per lottery arm, and per structured variant kind (pruned, pruned + KD) over its ratios.
    per_seed["line"] = [arm(a) if study == "lottery" else "Taylor pruned" + (" + KD" if alpha else "")
                        for study, a, alpha in zip(per_seed.study, per_seed.arm, per_seed.alpha)]
    lines = []
    for (study, model, line), part in per_seed.groupby(["study", "model", "line"], sort=False):
        if (part.arm != "dense").any():
            dense = per_seed[(per_seed.study == study) & (per_seed.model == model) & (per_seed.arm == "dense")]
            lines.append(pd.concat([dense.assign(line=line), part[part.arm != "dense"]]))
    per_seed = pd.concat(lines, ignore_index=True)
    models = list(per_seed["model"].unique())
    fig, axes = plt.subplots(1, len(models), figsize=(3.3 * len(models), 3.0), squeeze=False, sharey=True)
    for ax, model in zip(axes[0], models):
        part = per_seed[per_seed.model == model]
        sns.lineplot(part, x="pruned %", y=score, hue="line", style="line", markers=True, dashes=False,
                     errorbar="sd", err_style="bars", ax=ax)
        if score == "energy_ratio":
            ax.axhline(1.0, color="grey", ls="--", lw=0.8)
        ax.set(title=model, xlabel="sparsity / channels pruned (%)", ylabel=score.replace("_", " "))
        ax.legend(fontsize=8, title=None)
    fig.tight_layout()
    return fig


def transfer_curves(table):
    """Notebook 05: test AUC on the target against sparsity, one panel per direction: the carried ticket,
    the random mask, the ticket found on the target (± sd over seeds), and the target's dense net (band)."""
    import seaborn as sns

    t = table[table.kind.isin(["ticket", "random_mask"])].copy()
    t["arm"] = t.kind.map({"ticket": "carried ticket", "random_mask": "random mask"})
    t.loc[(t.kind == "ticket") & (t.source == t.target), "arm"] = "found on target"
    t["sparsity %"] = t["sparsity"] * 100
    pairs = [p for p in t[["source", "target"]].drop_duplicates().itertuples(index=False) if p.source != p.target]
    if not pairs:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no ticket transfer on this dataset", ha="center", va="center")
        return fig
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 3.1), squeeze=False, sharey=True)
    for ax, (source, target) in zip(axes[0], pairs):
        part = t[(t.target == target) & ((t.source == source) | (t.source == target))]
        dense = table[(table.kind == "dense") & (table.target == target)]["auc"]
        ax.axhspan(dense.mean() - np.nan_to_num(dense.std()), dense.mean() + np.nan_to_num(dense.std()),
                   color="grey", alpha=0.2, lw=0)
        ax.axhline(dense.mean(), color="grey", lw=1)
        sns.lineplot(part, x="sparsity %", y="auc", hue="arm", style="arm", markers=True, dashes=False,
                     errorbar="sd", err_style="bars", ax=ax)
        ax.set(title=f"{source} → {target}", xlabel="sparsity (% of weights pruned)", ylabel="test AUC on target")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7, title=None, loc="lower left")
    fig.tight_layout()
    return fig


def frames_curves(table, metric: str = "auc"):
    """Notebook 07: video AUC against the frames used per video, one panel per compression, a line per
    model and variant (mean over seeds, ± sd bars)."""
    import seaborn as sns

    from .labels import detector

    t = table.assign(detector=[m.replace("efficientnet_", "") + " " + detector(r).replace(" 1-shot", "")
                               for m, (_, r) in zip(table.model, table.iterrows())])
    comps = list(t.compression.unique())
    fig, axes = plt.subplots(1, len(comps), figsize=(4.4 * len(comps), 3.3), squeeze=False, sharey=True)
    for ax, comp in zip(axes[0], comps):
        sns.lineplot(t[t.compression == comp], x="frames", y=metric, hue="detector", style="detector", markers=True,
                     dashes=False, errorbar="sd", err_style="bars", ax=ax, legend=ax is axes[0][-1])
        ax.set(xscale="log", title=comp, xlabel="frames per video (evenly spaced)", ylabel=f"video {metric.upper()}")
        ax.set_xticks(sorted(t.frames.unique()), [str(k) for k in sorted(t.frames.unique())])
    axes[0][-1].legend(fontsize=8, title=None, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def as_jpeg(fig, quality: int = 85):
    """A figure of photographs (video frames, crops) as a JPEG image for a notebook to show, the figure closed:
    PNG keeps their sensor noise losslessly, at several times the bytes in the stored notebook."""
    import io

    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", dpi=fig.dpi, bbox_inches="tight", pil_kwargs={"quality": quality})
    plt.close(fig)
    return Image(data=buf.getvalue(), format="jpeg")


def annotated_frames(examples: dict):
    """Notebook 07: a row of annotated frames per example video ({name: (report, RGB frames)}), the verdict
    in the row title."""
    rows = list(examples.items())
    cols = max(len(frames) for _, (_, frames) in rows)
    # At least each frame's own pixels (160 px frames at 2 in need 80 dpi): the drawn scores must stay readable.
    side = max(frames[0].shape[0] for _, (_, frames) in rows if len(frames))
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.0 * cols, 2.25 * len(rows)), squeeze=False,
                             dpi=max(FRAME_DPI, min(120, side / 2.0)))
    for r, (name, (report, frames)) in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(frames):
                ax.imshow(frames[c])
        score = "" if report["score"] is None else f" {report['score']:.2f}"
        axes[r][0].set_title(f"{name} video {report['input']}: {report['verdict']}{score}", loc="left", fontsize=9)
    fig.tight_layout()
    return fig


def degradation_grid(image, settings: dict):
    """Notebook 08: one crop (RGB) under each degradation at each strength ({family: [(caption, RGB image)]}),
    a row per family."""
    rows = list(settings.items())
    cols = 1 + max(len(v) for _, v in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.5 * cols, 1.6 * len(rows)), squeeze=False, dpi=80)
    for r, (family, shown) in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            caption, im = ("clean", image) if c == 0 else shown[c - 1] if c - 1 < len(shown) else (None, None)
            if im is not None:
                ax.imshow(im)
                ax.set_title(caption, fontsize=8)
        axes[r][0].text(-0.1, 0.5, family, transform=axes[r][0].transAxes, rotation=90, ha="right", va="center",
                        fontsize=9)
    fig.tight_layout()
    return fig


def robustness_curves(curves):
    """Notebook 08: test AUC against each degradation's strength (clean at 0), one panel per degradation, a
    line per net (mean over seeds, ± sd bars); int8 dashed, in its fp32 net's colour."""
    from ..data.degrade import UNITS

    c = curves.reset_index()
    c["net"] = [m.replace("efficientnet_", "") + " " + lab.replace(" 1-shot", "") for m, lab in zip(c.model, c.label)]
    families = list(dict.fromkeys(c.family))
    nets = list(dict.fromkeys(c.net))
    bases = list(dict.fromkeys(n.removesuffix(" int8") for n in nets))
    cols = 4
    fig, axes = plt.subplots(-(-len(families) // cols), cols, figsize=(3.2 * cols, 2.7 * -(-len(families) // cols)),
                             squeeze=False, sharey=True)
    for ax, family in zip(axes.flat, families):
        part = c[c.family == family]
        for net in nets:
            line = part[part.net == net].sort_values("strength")
            colour = f"C{bases.index(net.removesuffix(' int8'))}"
            ax.errorbar(line.strength, line.auc, yerr=line.auc_sd.fillna(0), label=net, color=colour, marker="o",
                        ms=3, lw=1.2, capsize=2, ls="--" if net.endswith("int8") else "-")
        ax.set(title=family, xlabel=UNITS.get(family, "strength"), ylabel="test AUC")
        ax.title.set_fontsize(10)
    for ax in list(axes.flat)[len(families):]:
        ax.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    (list(axes.flat)[-1] if len(families) % cols else fig).legend(handles, names, fontsize=8, loc="center",
                                                                   frameon=False)
    fig.tight_layout()
    return fig
