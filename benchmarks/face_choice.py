"""Which box is the face: the capstone's `biggest` rule against the `evidence` rule on faces of known boxes in
480p-1080p frames with clutter that fires the cascade, and on frames without a face (dflite.studies.face_choice).

Writes data/runs/<profile>/results/face_choice.csv and prints it with a summary; --publish also copies it to
results/<profile>/, where the README's findings read it. Seed 4 by default: frames the rule was never designed on.

    .venv/bin/python benchmarks/face_choice.py [--profile quick] [--faces 12] [--seed 4] [--publish]
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
from dflite import config, paths
from dflite.studies import face_choice, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--faces", type=int, default=12, help="frames per resolution and face size (and without a face)")
    ap.add_argument("--seed", type=int, default=face_choice.SEED)
    ap.add_argument("--publish", action="store_true", help="also write results/<profile>/face_choice.csv")
    args = ap.parse_args()
    p = config.resolve(args.profile)
    started = time.perf_counter()
    table = face_choice.run(p, args.faces, args.seed, progress=True)
    pd.set_option("display.width", 220)
    print(table.to_string(index=False))
    print(f"\n{face_choice.summary(table).round(3).to_string()}\n[{time.perf_counter() - started:.0f} s]")
    if args.publish:
        print("published:", paths.show(report.publish_table(p, "face_choice")))


if __name__ == "__main__":
    main()
