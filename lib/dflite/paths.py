"""Where things live: every project path comes from here, anchored at this file, never the cwd."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # lib/dflite/paths.py -> project root
NOTEBOOKS = ROOT / "notebooks"
FIGURES = ROOT / "figures"


def data_dir() -> Path:
    """The data folder; DFLITE_DATA moves it (tests point it at a temporary folder)."""
    return Path(os.environ.get("DFLITE_DATA") or ROOT / "data").resolve()


def synth_dir(profile: str) -> Path:
    return data_dir() / "synth" / profile


# Each notebook's last `dflite reproduce` time, beside a profile's results files (written by reproduce.run).
TIMINGS = "timings.csv"
EXECUTED = "executed.json"  # when each notebook last ran for `dflite reproduce` (reproduce.mark_executed)


def runs_dir(profile: str) -> Path:
    return data_dir() / "runs" / profile


def show(path) -> str:
    """A path for printing: relative to the project (or data) root, so outputs carry no machine names."""
    p = Path(path).resolve()
    for base, prefix in ((data_dir().resolve(), "data"), (ROOT, "")):
        try:
            rel = p.relative_to(base)
        except ValueError:
            continue
        return str(Path(prefix) / rel) if prefix else str(rel)
    return p.name if p.is_absolute() else str(path)
