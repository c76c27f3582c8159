"""Recipe choice on validation: every recipe the profile's notebooks train with, against its learning rate
halved and doubled (and, where it trains in bf16 on the CPU, its fp32 twin), over seeds, ranked by validation AUC.

Writes data/runs/<profile>/results/recipe_search.csv and prints it; --publish also copies it to
results/<profile>/, where the README's findings and tests/test_tuning.py read it. The test split is not read.
Candidate runs are stage `tune`: a second call reads them back.

    .venv/bin/python benchmarks/recipe_search.py [--profile quick] [--seeds 0,1,2] [--publish]
"""
from __future__ import annotations

import argparse

import pandas as pd
from dflite import config, paths
from dflite.studies import report, tuning


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds every candidate is trained at")
    ap.add_argument("--publish", action="store_true", help="also write results/<profile>/recipe_search.csv")
    args = ap.parse_args()
    p = config.resolve(args.profile)
    table = tuning.run(p, tuple(int(s) for s in args.seeds.split(",")), progress=True)
    pd.set_option("display.width", 220)
    print(table.round(4).to_string(index=False))
    if args.publish:
        print("published:", paths.show(report.publish_table(p, "recipe_search")))
    off = tuning.disagreements(table)
    print("\nthe profile's recipes are the chosen ones" if not off else
          "\nchosen candidates the profile does not use yet: " + "; ".join(off))


if __name__ == "__main__":
    main()
