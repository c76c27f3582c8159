"""Notebook 00's study: the datasets a profile reads, generated (synthetic) or checked (real), then counted.

`dataset_roots` is the one place a dataset name becomes folders: "synthetic" generates (or reuses) the
built-in set in the FF++ and OpenForensics layouts; a registered real dataset is checked against its
layout (`data.sources`) before anything else runs, so a wrong `data_root` stops the first notebook with
the layout error that lists what was expected.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from .. import paths
from ..config import Profile
from ..data import synth
from ..data.faces import HaarConfig
from ..data.sources import (
    ADAPTERS,
    balance,
    ffpp_records,
    get_adapter,
    inspect_ffpp,
    inspect_openforensics,
    records_frame,
)
from ..data.synth.check import haar_recall
from ..engine.scorecache import cached_frame, file_digest
from ..folders import remake_advice

__all__ = ["DATASETS", "dataset_roots", "detector_recall", "example_target", "ffpp_overview", "inspect",
           "inspect_openforensics", "primary_kind", "run", "shown", "summary"]

DATASETS = ("synthetic", *ADAPTERS)
SYNTHETIC_KINDS = ("ffpp", "openforensics")  # the layouts the synthetic set is written in


def primary_kind(p: Profile) -> str:
    """The kind of crops the video studies train on: FF++ for the synthetic set, else the dataset itself."""
    return "ffpp" if p.dataset == "synthetic" else p.dataset


def dataset_roots(p: Profile) -> dict:
    """{kind: root} of the profile's data: the synthetic set's FF++ and OpenForensics roots (generated or
    reused), or the one real root, checked against its layout."""
    if p.dataset == "synthetic":
        out = paths.synth_dir(p.name)
        made = synth.generate(out, profile=p.name, seed=p.data_seed, progress=False, cfg=p.synth,
                              way_out=remake_advice(out))
        return {"ffpp": made.ffpp_root, "openforensics": made.openforensics_root}
    if p.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {p.dataset!r}; expected one of {', '.join(DATASETS)}")
    if not p.data_root:
        raise ValueError(f"dataset {p.dataset!r} needs data_root: the folder you downloaded it to")
    root = Path(p.data_root)
    get_adapter(p.dataset).inspect(root, p.extract)  # DatasetLayoutError naming the folder and what it lacks
    return {p.dataset: root}


def run(p: Profile) -> dict:
    """The data of the profile, ready: {kind: root} (generated or checked)."""
    return dataset_roots(p)


def shown(roots: dict) -> dict:
    """The roots as printable paths (relative to the project or data folder)."""
    return {k: paths.show(v) for k, v in roots.items()}


def inspect(p: Profile, roots: dict) -> dict:
    """{kind: Inspection} of every root: count tables, facts and the files extraction will skip."""
    return {kind: get_adapter(kind).inspect(root, p.extract) for kind, root in roots.items()}


def ffpp_overview(root, compression: str = "c23") -> tuple:
    """(inspect_ffpp's summary, the records of one compression level, their counts by method and split)."""
    records = ffpp_records(root, compression=compression)
    return inspect_ffpp(root), records, balance(records_frame(records))


def summary(p: Profile, roots: dict) -> pd.DataFrame:
    """Media per split and method of every kind the profile reads (its records as extraction will see them)."""
    frames = [records_frame(get_adapter(kind).records(root, p.extract)).assign(kind=kind)
              for kind, root in roots.items()]
    table = pd.concat(frames, ignore_index=True)
    return table.pivot_table(index=["kind", "method"], columns="split", values="media_id", aggfunc="nunique",
                             fill_value=0)


def example_target(records) -> str:
    """The first real test video's id: the example every notebook shows."""
    return sorted(r.media_id.split("/")[1] for r in records if r.split == "test" and r.label == 0)[0]


def detector_recall(p: Profile, roots: dict, compression: str = "c23",
                    frames_per_video: int = 8) -> pd.DataFrame | None:
    """The profile's Haar settings against the synthetic ground-truth boxes, at full resolution (None for
    real data: it has no boxes)."""
    if p.dataset != "synthetic":
        return None
    cfg = HaarConfig(scale_factor=p.extract.scale_factor, min_neighbors=p.extract.min_neighbors)
    root = Path(roots["ffpp"])
    # Kept under the profile's cache (engine.scorecache), keyed by every file it reads (videos, ground truth).
    read = sorted(f for f in root.rglob("*") if f.is_file() and (f.suffix == ".json" or compression in f.parts))
    key = {"haar": dataclasses.asdict(cfg), "compression": compression, "frames": frames_per_video,
           "files": [(f.relative_to(root).as_posix(), file_digest(f)) for f in read]}
    table = cached_frame(p.name, "detector_recall", key, lambda: haar_recall(
        root, compression, cfg, frames_per_video=frames_per_video).rename_axis("method").reset_index())
    return table.set_index("method").rename_axis(None)

