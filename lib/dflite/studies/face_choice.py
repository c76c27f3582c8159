"""Which box is the face: the capstone's `biggest` rule against dflite's `evidence` rule (data/faces.py) on
synthetic faces of known boxes in 480p-1080p frames before clutter that fires the cascade, and on frames of that
clutter with no face at all (any crop there is a crop of a non-face).

The published table comes from frames the rule was never designed or checked on (`SEED`).

    .venv/bin/python benchmarks/face_choice.py [--profile quick] [--faces 12] [--publish]
"""
from __future__ import annotations

import pandas as pd

from ..analysis.report import table as mdtable
from ..config import Profile
from ..data.synth.sizes import FACE_SIDES, choice_by_size
from ..engine.runs import write_results

NAME = "face_choice"
# The rule was designed on seed 0's frames and checked on seed 3's; seed 1's table then showed one eye pair in
# clutter, and the pair's geometry was tightened on seeds 0 and 3. The published table is seed 4's, seen by none.
SEED = 4


def run(p: Profile, faces: int = 12, seed: int = SEED, progress: bool = True) -> pd.DataFrame:
    """The table for the profile's detector settings and faces of at least its min_size; written to
    data/runs/<profile>/results/face_choice.csv."""
    sides = tuple(s for s in FACE_SIDES if s >= p.extract.min_size)
    table = choice_by_size(p.extract, sides=sides, faces=faces, empty=faces, seed=seed, progress=progress)
    write_results(p.name, NAME, table.set_index("rule"))
    return table


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per rule: frames with a face and the share where the chosen box is the true face, another box or none;
    frames without a face and the share that still gave a crop."""
    face, empty = table[table.face_px > 0], table[table.face_px == 0]
    f = face.groupby("rule", sort=False)[["frames", "true_face", "other_box", "no_box"]].sum()
    e = empty.groupby("rule", sort=False)[["frames", "other_box"]].sum()
    return pd.DataFrame({"face frames": f.frames, "true face": f.true_face / f.frames,
                         "another box": f.other_box / f.frames, "no box": f.no_box / f.frames,
                         "frames without a face": e.frames, "crop made there": e.other_box / e.frames})


def findings(table: pd.DataFrame) -> str:
    """The comparison in words, from the published table."""
    sides = sorted(set(table.face_px) - {0})
    res = ", ".join(dict.fromkeys(table.resolution))
    return ("**Which box is the face** (`benchmarks/face_choice.py`): synthetic faces of known boxes, "
            f"{sides[0]}-{sides[-1]} px (the profile's min_size up), in {res} frames before clutter that fires the "
            "Haar cascade, and frames of that clutter with no face, with the profile's detector settings. "
            "`biggest` is the capstone's rule; `evidence` keeps boxes with a pair of eyes, most confident first "
            "(`ExtractConfig.face_choice`; `dflite detect` uses it):\n\n"
            + mdtable(summary(table).round(3)))
