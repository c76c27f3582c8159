"""Celeb-DF v2: real celebrity and YouTube videos, their swaps, and the official test list."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .common import (
    Adapter,
    DatasetLayoutError,
    Inspection,
    MediaRecord,
    group_split,
    media_names,
    not_video,
    other_files,
    skipped_frame,
    video_files,
)

EXPECTED = """expected a Celeb-DF v2 root laid out as:
  Celeb-real/id0_0000.mp4 ..., YouTube-real/00000.mp4 ..., Celeb-synthesis/id0_id1_0000.mp4 ...
  List_of_testing_videos.txt  (lines '<1 real|0 fake> <Folder>/<file>.mp4')"""
FOLDERS = {"Celeb-real": 0, "YouTube-real": 0, "Celeb-synthesis": 1}
TEST_LIST = "List_of_testing_videos.txt"


def _identity(folder: str, stem: str) -> str:
    """id0_0000 -> id0; id0_id1_0000 -> id0 (the target, whose video it is); YouTube 00000 -> yt00000."""
    return f"yt{stem}" if folder == "YouTube-real" else stem.split("_")[0]


def _check_root(root: Path) -> None:
    if not root.is_dir() or not any((root / f).is_dir() for f in FOLDERS):
        raise DatasetLayoutError(f"{root} has none of {', '.join(FOLDERS)}; {EXPECTED}")


def read_celebdf_test_list(root) -> dict:
    """{"Folder/file.mp4": label} from List_of_testing_videos.txt (file: 1 = real, 0 = fake; ours: 1 = fake)."""
    path = Path(root) / TEST_LIST
    if not path.is_file():
        raise DatasetLayoutError(f"missing {path}; {EXPECTED}")
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("0", "1") or parts[1].split("/")[0] not in FOLDERS:
            raise DatasetLayoutError(f"{path} line {n}: {line!r}; expected '<1 real|0 fake> <Folder>/<file>.mp4'")
        out[parts[1]] = 1 - int(parts[0])
    return out


def celebdf_records(root, seed: int = 0, val_fraction: float = 0.15) -> list:
    """Official test list; train/val from the rest, split by identity (id<a> of id<a>_id<b>_NNNN)."""
    root = Path(root)
    _check_root(root)
    test = read_celebdf_test_list(root)
    found = [(folder, p) for folder in FOLDERS for p in video_files(root / folder)]
    rest = [_identity(folder, p.stem) for folder, p in found if f"{folder}/{p.name}" not in test]
    train_val = group_split(rest, (1 - val_fraction, val_fraction), seed, names=("train", "val"))
    names = {folder: media_names(p for f, p in found if f == folder) for folder in FOLDERS}
    records = []
    for folder, p in found:
        rel = f"{folder}/{p.name}"
        group = _identity(folder, p.stem)
        label = FOLDERS[folder]
        if rel in test and test[rel] != label:
            raise DatasetLayoutError(f"{root / TEST_LIST}: {rel} is labelled "
                                     f"{'fake' if test[rel] else 'real'} but lives in {folder}/")
        split = "test" if rel in test else train_val[group]
        records.append(MediaRecord(str(p), f"{folder}/{names[folder][p.name]}", label,
                                   "Celeb-synthesis" if label else "original", split, group, ""))
    return records


def inspect_celebdf(root) -> Inspection:
    """Videos per folder (in the test list or not), test-list entries with no file, and skipped files."""
    root = Path(root)
    _check_root(root)
    test = read_celebdf_test_list(root)
    rows, skipped = [], []
    for folder in FOLDERS:
        files = {p.name for p in video_files(root / folder)}
        listed = {rel.split("/", 1)[1] for rel in test if rel.split("/")[0] == folder}
        rows.append({"folder": folder, "videos": len(files), "test": len(files & listed),
                     "listed_missing": len(listed - files)})
        skipped += [not_video(f"{folder}/{n}") for n in other_files(root / folder)]
    table = pd.DataFrame(rows).set_index("folder")
    return Inspection({"videos per folder": table}, {"test list entries": len(test)}, skipped_frame(skipped))


ADAPTER = Adapter(
    name="celebdf", title="Celeb-DF v2", media="video", expected=EXPECTED,
    splits="the official test list; train and val 85/15 of the other videos, by identity",
    skip_reason="in no split", records=lambda root, cfg: celebdf_records(root, seed=cfg.seed),
    inspect=lambda root, cfg: inspect_celebdf(root))
