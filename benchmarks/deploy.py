"""Deployment speed goals as ratios against dense EfficientNet-B0 timed in the same run.

P1: the best compressed detector against dense B0 in B0's fastest runtime (torch, ONNX Runtime fp32,
    ORT int8), batch 1, 224 px, 2 threads: goal >= 3x with the AUC loss's 95 % CI (bootstrap over test
    identities) within 1 pt (capstone: 2.07x at -2.2 pt).
P2: the deployment path (pruned + distilled Lite0 in its fastest ORT form; int8 only where it wins)
    against dense B0 in PyTorch eager: goal >= 10x, the same accuracy condition.

Reads the trained runs of notebook 04 (run `make reproduce` first), exports and quantises the final
table's models again, scores each runtime on the test split and times every model in every runtime in
this one process. Nothing is written to the results folder.

    .venv/bin/python benchmarks/deploy.py [--profile quick] [--repeats 50]
"""
from __future__ import annotations

import argparse

import pandas as pd
from dflite import config
from dflite.studies import structured


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--data-root", default="")
    ap.add_argument("--repeats", type=int, default=50, help="timed batch-1 passes per measurement (median)")
    args = ap.parse_args()
    p = config.resolve(args.profile, dataset=args.dataset, data_root=args.data_root)
    path = structured.results_file(p)
    if not path.is_file():
        raise SystemExit(f"no {path.name} for profile {args.profile}: run notebook 04 first (make reproduce)")
    p = config.override(p, structured=config.override(p.structured, latency_repeats=args.repeats,
                                                      latency_threads=(p.structured.report_threads,)))
    table = pd.read_csv(path)  # the runs notebook 04 trained, with their test metrics and folders
    deployed, scores = structured.deploy(p, table, progress=True, write=False)
    pd.set_option("display.width", 200)
    print(f"\nbatch-1 latency (ms): {args.repeats} passes per model in 5 interleaved rounds")
    print(structured.latency_table(deployed).to_string())
    goals = structured.speed_goals(p, deployed, scores, write=False)
    print()
    for goal, g in goals.iterrows():
        print(f"{goal}: {g.model} in {g.runtime}: {g.ms:.2f} ms against {g.reference} {g.reference_ms:.2f} ms "
              f"-> {g.speed_up:.2f}x (goal {g.target}); AUC loss {g.auc_loss:+.4f} "
              f"[{g.loss_ci_low:+.4f}, {g.loss_ci_high:+.4f}]; met: {g.met}")


if __name__ == "__main__":
    main()
