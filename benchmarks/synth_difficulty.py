"""Is the synthetic data learnable but not trivial? A small CNN on ground-truth face crops.

Trains a 3-block CNN briefly on the quick set's train split (ground-truth boxes, 8 frames a video)
and prints test AUC and accuracy per method for c23 and c40. Chance is 0.5 AUC; a useful dataset
lands clearly above it and clearly below 1.0, with methods of different difficulty.

    .venv/bin/python benchmarks/synth_difficulty.py [--profile quick] [--epochs 25]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from dflite import paths, sources
from dflite.faces import crop_square
from dflite.synth import generate
from dflite.video import read_frames
from sklearn.metrics import roc_auc_score
from torch import nn


def gt_crops(ffpp_root: Path, records, frames: int, size: int):
    xs, ys, methods, splits = [], [], [], []
    for r in records:
        kind, stem = r.media_id.split("/")
        gt = json.loads((ffpp_root / "ground_truth" / kind / f"{stem}.json").read_text())
        idx = np.linspace(0, gt["frames"] - 1, frames).round().astype(int)
        for f, frame in zip(idx, read_frames(r.path, idx)):
            xs.append(crop_square(frame, gt["boxes"][f], 1.3, size))
            ys.append(r.label)
            methods.append(r.method)
            splits.append(r.split)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 255  # (N, 3, H, W)
    return x, torch.tensor(ys, dtype=torch.float32), np.array(methods), np.array(splits)


def small_cnn() -> nn.Module:
    def block(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))
    return nn.Sequential(block(3, 16), block(16, 32), block(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(64, 1))


def train_eval(x, y, methods, splits, epochs: int, seed: int = 0) -> pd.DataFrame:
    torch.manual_seed(seed)
    tr, te = splits == "train", splits == "test"
    model = small_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    pos_weight = ((y[tr] == 0).sum() / (y[tr] == 1).sum()).clone()  # 5 fakes per real video
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    xt, yt = x[tr], y[tr]
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(xt), generator=g).split(64):
            opt.zero_grad()
            loss_fn(model(xt[idx]).squeeze(1), yt[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        scores = torch.sigmoid(model(x[te]).squeeze(1)).numpy()
    y_te, m_te = y[te].numpy(), methods[te]
    rows = []
    real = m_te == "original"
    for m in ["original"] + sorted(set(m_te) - {"original"}):
        sel = m_te == m
        acc = float(((scores[sel] > 0.5) == y_te[sel]).mean())
        auc = float("nan") if m == "original" else roc_auc_score(y_te[sel | real], scores[sel | real])
        rows.append({"method": m, "frames": int(sel.sum()), "acc": acc, "auc_vs_real": auc})
    bal = np.mean([((scores[real] > 0.5) == 0).mean(), ((scores[~real] > 0.5) == 1).mean()])
    rows.append({"method": "all", "frames": len(y_te), "acc": float(bal), "auc_vs_real": roc_auc_score(y_te, scores)})
    return pd.DataFrame(rows).set_index("method")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(2)
    data = generate(paths.synth_dir(args.profile), profile=args.profile, progress=True)
    for comp in ("c23", "c40"):
        started = time.perf_counter()
        recs = [r for r in sources.ffpp_records(data.ffpp_root, compression=comp) if r.split in ("train", "test")]
        x, y, methods, splits = gt_crops(data.ffpp_root, recs, args.frames, args.size)
        table = train_eval(x, y, methods, splits, args.epochs)
        print(f"\n{comp}: small CNN, {args.epochs} epochs on {int((splits == 'train').sum())} train crops "
              f"({time.perf_counter() - started:.0f} s); acc for 'all' is balanced accuracy")
        print(table.round(3).to_string())


if __name__ == "__main__":
    main()
