"""What every dataset adapter shares: the media record, the adapter and inspection shapes, file listing,
group splits and balance tables."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")  # containers read wherever a layout holds videos


class DatasetLayoutError(ValueError):
    """A dataset root or annotation file is not in the layout the adapter reads."""


@dataclass(frozen=True)
class MediaRecord:
    """One video (or, for image datasets, one annotated face) to extract crops from."""

    path: str                 # the video or image file
    media_id: str             # unique within a dataset: "original/000", "Deepfakes/000_003", "Train/9c54..."
    label: int                # 0 real, 1 fake
    method: str               # "original", a manipulation method, or "fake" when the dataset does not say
    split: str                # train / val / test (/ test-challenge), or "unlisted"
    group: str                # identity or source video: never in two splits
    compression: str = ""     # c23, c40, raw (videos); "" for images
    face: int = -1            # index of the face within an image (image datasets), -1 for videos
    box: tuple = ()           # annotated [x, y, w, h] (image datasets)
    mask_path: str = ""       # per-frame manipulation mask video, when the dataset has one


@dataclass
class Inspection:
    """What `inspect` found under a root: count tables, single facts, and every file extraction will skip."""

    tables: dict                                  # name -> DataFrame of counts
    facts: dict = field(default_factory=dict)     # name -> value (mask videos, split pairs, ...)
    skipped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["file", "reason"]))


@dataclass(frozen=True)
class Adapter:
    """One dataset as dflite reads it."""

    name: str                 # registry key, CLI choice and notebook `dataset` value
    title: str                # its published name
    media: str                # video | image: one record per video, or per annotated face of an image
    expected: str             # the expected layout, shown in every layout error
    splits: str               # how train / val / test are made
    skip_reason: str          # why a file in the layout is left out of every split ("unlisted" records)
    records: Callable         # (root, ExtractConfig) -> [MediaRecord]
    inspect: Callable         # (root, ExtractConfig) -> Inspection; raises DatasetLayoutError on a wrong root
    masks: bool = False       # ships per-frame manipulation masks (Grad-CAM scoring needs them)
    compressions: tuple = ()  # compression levels it ships, where it has several


def video_files(folder: Path) -> list:
    """The videos in a folder, in any container dflite reads (symlinks included, as listed)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTS and not p.name.startswith("."))


def media_names(names) -> dict:
    """{file name: its part of a media id}: the stem, or the whole name where two files in one folder share a
    stem (004.mp4 and 004.avi become 004.mp4 and 004.avi, never one id that loses a video)."""
    names = [Path(n).name for n in names]
    stems = [Path(n).stem for n in names]
    return {n: n if stems.count(s) > 1 else s for n, s in zip(names, stems)}


def other_files(folder: Path) -> list:
    """Files in a video folder that are not videos dflite reads (skipped, and counted by inspect)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() not in VIDEO_EXTS)


def not_video(file: str) -> dict:
    return {"file": file, "reason": f"not a video container dflite reads ({' '.join(VIDEO_EXTS)})"}


def skipped_frame(rows: list) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["file", "reason"])


def group_split(groups, fractions=(0.7, 0.15, 0.15), seed: int = 0, names=("train", "val", "test")) -> dict:
    """{group: split}: whole groups (identities, source videos) go to one split, deterministically."""
    import numpy as np

    uniq = sorted(set(groups))
    order = np.random.default_rng([seed, 7]).permutation(len(uniq))
    bounds = np.cumsum(np.asarray(fractions) / sum(fractions)) * len(uniq)
    out = {}
    for rank, k in enumerate(order):
        out[uniq[k]] = names[int(np.searchsorted(bounds, rank, side="right"))]
    return out


def records_frame(records) -> pd.DataFrame:
    return pd.DataFrame([asdict(r) for r in records])


def balance(table: pd.DataFrame, value: str = "media_id") -> pd.DataFrame:
    """Rows per method and split, with real and fake totals: for records_frame(...), media.csv or index.csv."""
    counts = table.pivot_table(index="method", columns="split", values=value, aggfunc="count", fill_value=0)
    real = counts.index == "original"
    real_total, fake_total = counts[real].sum(), counts[~real].sum()
    counts.loc["all real"] = real_total
    counts.loc["all fake"] = fake_total
    return counts
