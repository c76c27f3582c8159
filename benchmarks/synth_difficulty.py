"""Is the synthetic data calibrated? The quick recipe's detectors on c23 and c40, a shortcut probe, difficulty.

Trains each model with the profile's own recipe (`Profile.recipe`) and seeds on the
profile's crop stores (the runs are notebook 02's: finished ones are read back), then prints one
table, mean ± sd over seeds:

- test frame AUC on c23 and c40, and how much c40 loses;
- per-method AUC (that method's fakes against all real crops): lowest, highest and their spread;
- a shortcut probe: logistic regression on global per-crop statistics (per-channel mean and std, PNG
  bytes of the crop), which must stay near chance (the artifacts live inside the face, not in them);
- CNN-5 at difficulty 0.25 / 0.5 / 0.75 (a synthetic set per difficulty).

    .venv/bin/python benchmarks/synth_difficulty.py [--profile quick] [--seeds 0,1,2]
        [--models cnn5,resnet18,meso4,efficientnet_b0,efficientnet_lite0] [--difficulties 0.25,0.5,0.75]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from dflite import paths
from dflite.config import override, resolve
from dflite.data import synth
from dflite.data.extract import extract, store_dir
from dflite.studies import baselines, crop_store
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def crop_statistics(store) -> pd.DataFrame:
    """Per crop: mean and std of each channel and the PNG's size in bytes (global, not local, cues)."""
    rows = []
    import cv2

    for rel in store.index["crop"]:
        path = store.root / rel
        img = cv2.imread(str(path)).astype(np.float32)
        rows.append([*img.mean((0, 1)), *img.std((0, 1)), path.stat().st_size])
    return pd.DataFrame(rows, columns=["b", "g", "r", "sd_b", "sd_g", "sd_r", "png_bytes"])


def probe_auc(store) -> float:
    """Test AUC of a logistic regression on crop_statistics (trained on the train split)."""
    x, y, split = crop_statistics(store).to_numpy(), store.index["label"].to_numpy(), store.index["split"].to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=1000))
    model.fit(x[split == "train"], y[split == "train"])
    return float(roc_auc_score(y[split == "test"], model.predict_proba(x[split == "test"])[:, 1]))


def run_table(p, store, models, seeds, dataset=None) -> pd.DataFrame:
    """Train what is missing; then auc and per-method AUCs, one row per run (model, seed)."""
    rows = []
    for job in baselines.train(p, baselines.jobs(p, store, models=models, seeds=seeds, dataset=dataset), True):
        r = job.row()
        per = {k[4:]: v for k, v in r.items() if k.startswith("auc_")}
        rows.append({"model": job.model, "seed": job.seed, "auc": r["auc"], **per})
    return pd.DataFrame(rows)


def ms(values) -> str:
    values = pd.Series(values, dtype=float)
    return f"{values.mean():.3f} ± {values.std():.3f}" if len(values) > 1 else f"{values.mean():.3f}"


def difficulty_store(p, difficulty: float):
    """A synthetic set and its crop store at another difficulty (own folders, the same seed)."""
    tag = f"{p.name}-difficulty-{difficulty:g}"
    data = synth.generate(paths.data_dir() / "synth" / tag, profile=p.name,
                          cfg=override(p.synth, difficulty=difficulty), progress=True)
    out = store_dir(p.name, "ffpp", p.extract).with_name(f"ffpp_difficulty-{difficulty:g}")
    return extract("ffpp", data.ffpp_root, out, p.extract, workers=p.workers, progress=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--models", default="cnn5,resnet18,meso4,efficientnet_b0,efficientnet_lite0")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--difficulties", default="0.25,0.5,0.75", help="'' to skip the sweep")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(2)
    models, seeds = args.models.split(","), tuple(int(s) for s in args.seeds.split(","))
    started = time.perf_counter()
    p = resolve(args.profile, workers=args.workers)
    stores = {c: crop_store(p, compression=c, progress=True) for c in ("c23", "c40")}
    tables = {c: run_table(p, s, models, seeds) for c, s in stores.items()}
    rows = []
    for model in models:
        c23, c40 = (tables[c][tables[c]["model"] == model] for c in ("c23", "c40"))
        per = c23.drop(columns=["model", "seed", "auc"]).mean()
        rows.append({"model": model, "c23 AUC": ms(c23["auc"]), "c40 AUC": ms(c40["auc"]),
                     "c23 - c40": f"{c23['auc'].mean() - c40['auc'].mean():.3f}",
                     "worst method": f"{per.idxmin()} {per.min():.3f}",
                     "best method": f"{per.idxmax()} {per.max():.3f}",
                     "spread": f"{per.max() - per.min():.3f}"})
    print(f"\n{args.profile} profile, test split, frame AUC, mean ± sd over seeds {list(seeds)}")
    print(pd.DataFrame(rows).to_string(index=False))
    per_method = tables["c23"].drop(columns=["seed"]).groupby("model", sort=False).mean().drop(columns="auc")
    print("\nper-method AUC on c23 (that method's fakes against all real crops), mean over seeds")
    print(per_method.round(3).to_string())
    print(f"\nshortcut probe (logistic regression on per-crop channel mean/std and PNG bytes), test AUC: "
          f"c23 {probe_auc(stores['c23']):.3f}, c40 {probe_auc(stores['c40']):.3f}")
    if args.difficulties:
        rows = []
        for d in (float(x) for x in args.difficulties.split(",")):
            default = d == p.synth.difficulty
            store = stores["c23"] if default else difficulty_store(p, d)
            table = run_table(p, store, ["cnn5"], seeds, None if default else f"synthetic-d{d:g}")
            rows.append({"difficulty": d, "CNN-5 c23 AUC": ms(table["auc"])})
        print("\nCNN-5 against the synthetic difficulty (higher = fainter artifacts)")
        print(pd.DataFrame(rows).to_string(index=False))
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
