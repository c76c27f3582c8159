"""Notebook 00's study: the datasets a profile reads, generated (synthetic) or checked (real), then counted.

`dataset_roots` is the one place a dataset name becomes folders: "synthetic" generates (or reuses)
the built-in set, a real dataset is checked against its layout before anything else runs, so a
wrong `data_root` stops the first notebook with the layout error that lists what was expected.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import paths
from ..data import synth
from ..data.faces import HaarConfig
from ..data.sources import balance, ffpp_records, inspect_ffpp, inspect_openforensics, records_frame
from ..data.synth.check import haar_recall

__all__ = ["DATASETS", "dataset_roots", "detector_recall", "example_target", "ffpp_overview", "inspect_openforensics",
           "shown"]

DATASETS = ("synthetic", "ffpp", "openforensics")


def dataset_roots(dataset: str, data_root: str = "", profile: str = "quick", seed: int = 0) -> dict:
    """{"ffpp": root or None, "openforensics": root or None}; "synthetic" generates (or reuses) the set."""
    if dataset == "synthetic":
        summary = synth.generate(paths.synth_dir(profile), profile=profile, seed=seed, progress=False)
        return {"ffpp": summary.ffpp_root, "openforensics": summary.openforensics_root}
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    if not data_root:
        raise ValueError(f"dataset {dataset!r} needs data_root: the folder you downloaded it to")
    root = Path(data_root)
    # Check the layout now: the adapters raise DatasetLayoutError naming the folder and what it lacks.
    (inspect_ffpp if dataset == "ffpp" else inspect_openforensics)(root)
    return {"ffpp": root if dataset == "ffpp" else None, "openforensics": root if dataset == "openforensics" else None}


def shown(roots: dict) -> dict:
    """The roots as printable paths (relative to the project or data folder)."""
    return {k: paths.show(v) if v else None for k, v in roots.items()}


def ffpp_overview(root, compression: str = "c23") -> tuple:
    """(inspect_ffpp's summary, the records of one compression level, their counts by method and split)."""
    records = ffpp_records(root, compression=compression)
    return inspect_ffpp(root), records, balance(records_frame(records))


def example_target(records) -> str:
    """The first real test video's id: the example every notebook shows."""
    return sorted(r.media_id.split("/")[1] for r in records if r.split == "test" and r.label == 0)[0]


def detector_recall(roots: dict, dataset: str, compression: str = "c23",
                    frames_per_video: int = 8) -> pd.DataFrame | None:
    """Haar recall against the synthetic ground-truth boxes (None for real data: it has no boxes)."""
    if dataset != "synthetic":
        return None
    return haar_recall(roots["ffpp"], compression, HaarConfig(scale_factor=1.1, min_neighbors=5),
                       frames_per_video=frames_per_video)
