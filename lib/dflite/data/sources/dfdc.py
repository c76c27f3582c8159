"""DFDC: part folders of mp4s, each with a metadata.json that labels its videos and names each fake's original."""
from __future__ import annotations

import json
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

EXPECTED = """expected a DFDC root laid out as:
  dfdc_train_part_0/metadata.json, dfdc_train_part_0/aaqaifqrwn.mp4 ..., dfdc_train_part_1/ ...
  metadata.json: {"aaqaifqrwn.mp4": {"label": "REAL" | "FAKE", "original": "<real file>.mp4" | null, ...}}"""

LABELS = {"REAL": 0, "FAKE": 1}


def _dfdc_parts(root: Path) -> list:
    if not root.is_dir():
        raise DatasetLayoutError(f"{root} is not a folder; {EXPECTED}")
    parts = sorted((p for p in root.iterdir() if p.is_dir() and (p / "metadata.json").is_file()),
                   key=lambda p: (len(p.name), p.name))
    if not parts:
        raise DatasetLayoutError(f"{root} has no part folder with a metadata.json; {EXPECTED}")
    return parts


def read_dfdc_metadata(part: Path) -> dict:
    """{file name: (label, original file name)} from one part's metadata.json, checked entry by entry."""
    path = part / "metadata.json"
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetLayoutError(f"{path} is not valid JSON ({e}); {EXPECTED}") from None
    if not isinstance(doc, dict):
        raise DatasetLayoutError(f"{path}: expected an object keyed by file name; {EXPECTED}")
    out = {}
    for name, entry in doc.items():
        if not isinstance(entry, dict) or "label" not in entry:
            raise DatasetLayoutError(f"{path}: entry {name!r} has no 'label' key; expected "
                                     '{"label": "REAL" | "FAKE", "original": ...}')
        if entry["label"] not in LABELS:
            raise DatasetLayoutError(f"{path}: entry {name!r} has label {entry['label']!r}; expected REAL or FAKE")
        original = entry.get("original")
        if entry["label"] == "FAKE" and not original:
            raise DatasetLayoutError(f"{path}: FAKE entry {name!r} has no 'original' key naming its real video")
        out[name] = (LABELS[entry["label"]], original or name)
    return out


def dfdc_records(root, seed: int = 0, val_parts=(), test_parts=()) -> list:
    """Videos listed in each part's metadata.json. Splits: by original video (a fake and its real
    source, i.e. one identity, never in two splits) 70/15/15 seeded over the videos present (listed but absent
    ones, recorded as missing at extraction, must not take a split's share); or, when the user names val and
    test part folders, by part (the rest is train). Files no metadata lists get split "unlisted"."""
    root = Path(root)
    parts = _dfdc_parts(root)
    named = {str(p): "val" for p in val_parts} | {str(p): "test" for p in test_parts}
    known = {p.name for p in parts} | {p.name.rsplit("_", 1)[-1] for p in parts}
    unknown = sorted(set(named) - known)
    if unknown:
        have = ", ".join(p.name for p in parts)
        raise DatasetLayoutError(f"{root}: no part folder {', '.join(unknown)} (have {have})")
    found = []
    for part in parts:
        meta = read_dfdc_metadata(part)
        files = {p.name: p for p in video_files(part)}
        names = media_names(set(meta) | set(files))
        for name in sorted(set(meta) | set(files)):
            label, original = meta.get(name, (0, name))
            path = files.get(name, part / name)  # listed but missing: a recorded failure at extraction
            split = named.get(part.name, named.get(part.name.rsplit("_", 1)[-1], "train")) if named else ""
            if name not in meta:
                split = "unlisted"
            found.append((part.name, names[name], path, label, Path(original).stem, split))
    if not named:
        listed = [(g, Path(path).is_file()) for _, _, path, _, g, split in found if split != "unlisted"]
        present = {g for g, here in listed if here}
        by_group = group_split(present, seed=seed) | group_split({g for g, _ in listed} - present, seed=seed)
        found = [(pn, stem, path, label, g, split or by_group[g]) for pn, stem, path, label, g, split in found]
    return [MediaRecord(str(path), f"{pn}/{stem}", label, "fake" if label else "original", split, g, "")
            for pn, stem, path, label, g, split in found]


def inspect_dfdc(root) -> dict:
    """Videos per part (real / fake), entries whose file is missing, and files no metadata lists."""
    root = Path(root)
    rows, skipped = [], []
    for part in _dfdc_parts(root):
        meta = read_dfdc_metadata(part)
        files = {p.name for p in video_files(part)}
        fake = sum(label for label, _ in meta.values())
        rows.append({"part": part.name, "listed": len(meta), "real": len(meta) - fake, "fake": fake,
                     "missing": len(set(meta) - files)})
        skipped += [{"file": f"{part.name}/{n}", "reason": "not in metadata.json"} for n in sorted(files - set(meta))]
        skipped += [not_video(f"{part.name}/{n}")
                    for n in other_files(part) if n != "metadata.json"]
    return {"parts": pd.DataFrame(rows).set_index("part"), "skipped": skipped_frame(skipped)}


def _inspect(root, cfg) -> Inspection:
    found = inspect_dfdc(root)
    return Inspection({"videos per part": found["parts"]}, {}, found["skipped"])


ADAPTER = Adapter(
    name="dfdc", title="DFDC", media="video", expected=EXPECTED,
    splits="70/15/15 by original video (a fake and its source never in two splits), or named part folders",
    skip_reason="not in its part's metadata.json",
    records=lambda root, cfg: dfdc_records(root, cfg.seed, cfg.dfdc_val_parts, cfg.dfdc_test_parts),
    inspect=_inspect)
