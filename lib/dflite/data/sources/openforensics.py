"""OpenForensics: scene images with several faces each, labelled per face in COCO `<Split>_poly.json` files."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ...config import OF_SPLITS
from .common import Adapter, DatasetLayoutError, Inspection, MediaRecord, media_names, skipped_frame

EXPECTED = """expected an OpenForensics root laid out as:
  Train_poly.json, Val_poly.json, Test-Dev_poly.json, Test-Challenge_poly.json  (COCO: images, annotations, categories)
  Images/Train/<name>.jpg, Images/Val/..., Images/Test-Dev/..., Images/Test-Challenge/..."""
SPLIT_NAMES = {"Train": "train", "Val": "val", "Test-Dev": "test", "Test-Challenge": "test-challenge"}


def _load_coco(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetLayoutError(f"{path} is not valid JSON ({e})") from None
    for key in ("images", "annotations", "categories"):
        if key not in doc:
            raise DatasetLayoutError(f"{path} has no {key!r} key; expected COCO keys images, annotations, categories")
    for i, img in enumerate(doc["images"]):
        for key in ("id", "file_name"):
            if key not in img:
                raise DatasetLayoutError(f"{path}: images[{i}] has no {key!r} key")
    for i, ann in enumerate(doc["annotations"]):
        for key in ("image_id", "category_id", "bbox"):
            if key not in ann:
                raise DatasetLayoutError(f"{path}: annotations[{i}] has no {key!r} key")
    return doc


def _inside(root: Path, rel: str, source: Path) -> Path:
    """The listed path of a file_name from an annotation file, refusing one that escapes the dataset root.

    Checked on the path as written ('..' parts), not on where symlinks lead: a root may link its
    images from another disk, and the listed path is what the store records.
    """
    norm = os.path.normpath(rel)
    if os.path.isabs(norm) or norm == ".." or norm.startswith(".." + os.sep):
        raise DatasetLayoutError(f"{source}: file_name {rel!r} points outside the dataset root {root}")
    return root / norm


def openforensics_records(root, split: str = "Train") -> list:
    """One record per annotated face: category 0 Real / 1 Fake, bbox [x, y, w, h] in pixels."""
    root = Path(root)
    if split not in OF_SPLITS:
        raise ValueError(f"unknown OpenForensics split {split!r}; expected one of {', '.join(OF_SPLITS)}")
    path = root / f"{split}_poly.json"
    if not path.is_file():
        raise DatasetLayoutError(f"missing {path}; {EXPECTED}")
    doc = _load_coco(path)
    images = {img["id"]: img for img in doc["images"]}
    # One media id per listed image: two images sharing a stem (a.jpg, a.png) keep their extensions.
    names = media_names(img["file_name"] for img in doc["images"])
    faces_seen: dict = {}
    records = []
    for ann in doc["annotations"]:
        img = images.get(ann["image_id"])
        if img is None:
            raise DatasetLayoutError(f"{path}: annotation {ann.get('id')} refers to missing image {ann['image_id']}")
        file = _inside(root, img["file_name"], path)
        k = faces_seen[img["id"]] = faces_seen.get(img["id"], -1) + 1
        label = int(ann["category_id"])
        records.append(MediaRecord(str(file), f"{split}/{names[file.name]}", label, "fake" if label else "original",
                                   SPLIT_NAMES[split], file.stem, face=k, box=tuple(ann["bbox"])))
    return records


def inspect_openforensics(root, absent: list | None = None) -> pd.DataFrame:
    """Images and faces (real / fake) per split present under an OpenForensics root, and how many listed images
    are not on disk (their paths, relative to the root, are appended to `absent` when given)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"{root} is not a folder; {EXPECTED}")
    rows = []
    for split in OF_SPLITS:
        path = root / f"{split}_poly.json"
        if not path.is_file():
            continue
        doc = _load_coco(path)
        fake = sum(int(a["category_id"]) == 1 for a in doc["annotations"])
        names = {img["file_name"] for img in doc["images"]}
        gone = sorted(n for n in names if not _inside(root, n, path).is_file())
        if absent is not None:
            absent += gone
        rows.append({"split": split, "images": len(doc["images"]), "faces": len(doc["annotations"]),
                     "real": len(doc["annotations"]) - fake, "fake": fake, "missing images": len(gone)})
    if not rows:
        raise DatasetLayoutError(f"{root} holds no <Split>_poly.json; {EXPECTED}")
    return pd.DataFrame(rows).set_index("split")


def _inspect(root, cfg) -> Inspection:
    absent = []
    table = inspect_openforensics(root, absent)
    skipped = skipped_frame([{"file": f, "reason": "listed in its annotation file but not on disk"} for f in absent])
    return Inspection({"images and faces per split": table}, {}, skipped)


def _records(root, cfg) -> list:
    """Every annotated face of every split whose annotation file is present."""
    root = Path(root)
    splits = [s for s in OF_SPLITS if (root / f"{s}_poly.json").is_file()]
    if not splits:
        openforensics_records(root, "Train")  # raises the layout error that lists what was expected
    return [r for split in splits for r in openforensics_records(root, split)]


ADAPTER = Adapter(
    name="openforensics", title="OpenForensics", media="image", expected=EXPECTED,
    splits="the dataset's own Train / Val / Test-Dev (test) / Test-Challenge folders",
    skip_reason="in no split", records=_records,
    inspect=_inspect)
