"""Dataset adapters: real on-disk layouts -> media records (path, label, method, split, group, ...).

FaceForensics++ and OpenForensics are read exactly as distributed; the synthetic data is written in
those layouts and goes through the same code. A wrong root raises DatasetLayoutError listing what
was expected, so a user can see at once which folder or file is missing.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from ..config import METHODS, OF_SPLITS

FFPP_COMPRESSIONS = ("raw", "c23", "c40")
FFPP_EXPECTED = """expected a FaceForensics++ root laid out as:
  original_sequences/youtube/<raw|c23|c40>/videos/000.mp4 ...
  manipulated_sequences/<Deepfakes|Face2Face|FaceSwap|NeuralTextures|FaceShifter>/<comp>/videos/000_003.mp4 ...
  splits/train.json, splits/val.json, splits/test.json  (lists of ["953", "974"] id pairs)"""
OF_EXPECTED = """expected an OpenForensics root laid out as:
  Train_poly.json, Val_poly.json, Test-Dev_poly.json, Test-Challenge_poly.json  (COCO: images, annotations, categories)
  Images/Train/<name>.jpg, Images/Val/..., Images/Test-Dev/..., Images/Test-Challenge/..."""
CELEBDF_EXPECTED = """expected a Celeb-DF v2 root laid out as:
  Celeb-real/id0_0000.mp4 ..., YouTube-real/00000.mp4 ..., Celeb-synthesis/id0_id1_0000.mp4 ...
  List_of_testing_videos.txt  (lines '<1 real|0 fake> <Folder>/<file>.mp4')"""
CELEBDF_FOLDERS = {"Celeb-real": 0, "YouTube-real": 0, "Celeb-synthesis": 1}
OF_SPLIT_NAMES = {"Train": "train", "Val": "val", "Test-Dev": "test", "Test-Challenge": "test-challenge"}


DFDC_EXPECTED = """expected a DFDC root laid out as:
  dfdc_train_part_0/metadata.json, dfdc_train_part_0/aaqaifqrwn.mp4 ..., dfdc_train_part_1/ ...
  metadata.json: {"aaqaifqrwn.mp4": {"label": "REAL" | "FAKE", "original": "<real file>.mp4" | null, ...}}"""
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")  # containers read wherever a layout holds videos


class DatasetLayoutError(ValueError):
    """A dataset root or annotation file is not in the layout the adapter reads."""


def video_files(folder: Path) -> list:
    """The videos in a folder, in any container dflite reads (symlinks included, as listed)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTS and not p.name.startswith("."))


def other_files(folder: Path) -> list:
    """Files in a video folder that are not videos dflite reads (skipped, and counted by inspect)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() not in VIDEO_EXTS)


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


# --- FaceForensics++ ---------------------------------------------------------------------------

def _check_ffpp_root(root: Path) -> None:
    if not root.is_dir():
        raise DatasetLayoutError(f"{root} is not a folder; {FFPP_EXPECTED}")
    if not (root / "original_sequences" / "youtube").is_dir():
        raise DatasetLayoutError(f"{root} has no original_sequences/youtube/ folder; {FFPP_EXPECTED}")


def read_ffpp_splits(root) -> dict:
    """{video id: split} from splits/{train,val,test}.json; a pair's ids share its split."""
    root = Path(root)
    id_split = {}
    for split in ("train", "val", "test"):
        path = root / "splits" / f"{split}.json"
        if not path.is_file():
            raise DatasetLayoutError(
                f"missing split file {path}; FF++ ships splits/train.json, val.json, test.json "
                f"(from the FaceForensics repository's dataset/splits/); {FFPP_EXPECTED}")
        try:
            pairs = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise DatasetLayoutError(
                f"{path} is not valid JSON ({e}); expected a list of [\"953\", \"974\"] pairs") from None
        if not isinstance(pairs, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(v, str) for v in p) for p in pairs):
            raise DatasetLayoutError(f"{path}: expected a list of id pairs like [\"953\", \"974\"]")
        for a, b in pairs:
            id_split[a] = id_split[b] = split
    return id_split


def ffpp_records(root, methods=METHODS, compression: str = "c23") -> list:
    """Real and fake videos of one compression, with official splits; fakes carry their mask video."""
    root = Path(root)
    _check_ffpp_root(root)
    id_split = read_ffpp_splits(root)
    real_dir = root / "original_sequences" / "youtube" / compression / "videos"
    if not real_dir.is_dir():
        raise DatasetLayoutError(f"{real_dir} does not exist (compression {compression!r}); {FFPP_EXPECTED}")
    records = [MediaRecord(str(p), f"original/{p.stem}", 0, "original", id_split.get(p.stem, "unlisted"),
                           p.stem, compression)
               for p in video_files(real_dir)]
    for method in methods:
        vids = root / "manipulated_sequences" / method / compression / "videos"
        masks = {m.stem: m for m in video_files(root / "manipulated_sequences" / method / "masks" / "videos")}
        for p in video_files(vids):
            target = p.stem.split("_")[0]
            mask = masks.get(p.stem)
            records.append(MediaRecord(str(p), f"{method}/{p.stem}", 1, method, id_split.get(target, "unlisted"),
                                       target, compression, mask_path=str(mask) if mask else ""))
    return records


def inspect_ffpp(root, compression: str = "c23") -> dict:
    """What an FF++ root holds: videos per method and compression, masks, split pairs, and what is skipped."""
    root = Path(root)
    _check_ffpp_root(root)
    rows, skipped = [], []
    real = root / "original_sequences" / "youtube"
    folders = [("original", comp, real / comp / "videos") for comp in FFPP_COMPRESSIONS]
    manip = root / "manipulated_sequences"
    methods = sorted(p.name for p in manip.iterdir() if p.is_dir()) if manip.is_dir() else []
    folders += [(m, comp, manip / m / comp / "videos") for m in methods for comp in FFPP_COMPRESSIONS]
    for method, comp, d in folders:
        if d.is_dir():
            rows.append({"method": method, "compression": comp, "videos": len(video_files(d))})
            skipped += [{"file": str((d / name).relative_to(root)), "reason": "not a video container dflite reads "
                         f"({' '.join(VIDEO_EXTS)})"} for name in other_files(d)]
    masks = {m: len(video_files(manip / m / "masks" / "videos")) for m in methods}
    videos = pd.DataFrame(rows, columns=["method", "compression", "videos"])
    table = videos.pivot(index="method", columns="compression", values="videos").fillna(0).astype(int)
    splits = {}
    for split in ("train", "val", "test"):
        p = root / "splits" / f"{split}.json"
        splits[split] = len(json.loads(p.read_text())) if p.is_file() else None
    if all(v is not None for v in splits.values()):
        real_dir = root / "original_sequences" / "youtube" / compression / "videos"
        if real_dir.is_dir():
            skipped += [{"file": str(Path(r.path).relative_to(root)), "reason": "in no split file"}
                        for r in ffpp_records(root, methods, compression) if r.split == "unlisted"]
    return {"videos": table, "masks": masks, "split_pairs": splits,
            "skipped": pd.DataFrame(skipped, columns=["file", "reason"])}


# --- Celeb-DF v2 -------------------------------------------------------------------------------

def _celebdf_identity(folder: str, stem: str) -> str:
    """id0_0000 -> id0; id0_id1_0000 -> id0 (the target, whose video it is); YouTube 00000 -> yt00000."""
    return f"yt{stem}" if folder == "YouTube-real" else stem.split("_")[0]


def read_celebdf_test_list(root) -> dict:
    """{"Folder/file.mp4": label} from List_of_testing_videos.txt (file: 1 = real, 0 = fake; ours: 1 = fake)."""
    path = Path(root) / "List_of_testing_videos.txt"
    if not path.is_file():
        raise DatasetLayoutError(f"missing {path}; {CELEBDF_EXPECTED}")
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("0", "1") or parts[1].split("/")[0] not in CELEBDF_FOLDERS:
            raise DatasetLayoutError(f"{path} line {n}: {line!r}; expected '<1 real|0 fake> <Folder>/<file>.mp4'")
        out[parts[1]] = 1 - int(parts[0])
    return out


def celebdf_records(root, seed: int = 0, val_fraction: float = 0.15) -> list:
    """Official test list; train/val from the rest, split by identity (id<a> of id<a>_id<b>_NNNN)."""
    root = Path(root)
    if not root.is_dir() or not any((root / f).is_dir() for f in CELEBDF_FOLDERS):
        raise DatasetLayoutError(f"{root} has none of {', '.join(CELEBDF_FOLDERS)}; {CELEBDF_EXPECTED}")
    test = read_celebdf_test_list(root)
    found = [(folder, p) for folder in CELEBDF_FOLDERS for p in video_files(root / folder)]
    rest = [_celebdf_identity(folder, p.stem) for folder, p in found if f"{folder}/{p.name}" not in test]
    train_val = group_split(rest, (1 - val_fraction, val_fraction), seed, names=("train", "val"))
    records = []
    for folder, p in found:
        rel = f"{folder}/{p.name}"
        group = _celebdf_identity(folder, p.stem)
        label = CELEBDF_FOLDERS[folder]
        if rel in test and test[rel] != label:
            raise DatasetLayoutError(f"{root / 'List_of_testing_videos.txt'}: {rel} is labelled "
                                     f"{'fake' if test[rel] else 'real'} but lives in {folder}/")
        split = "test" if rel in test else train_val[group]
        records.append(MediaRecord(str(p), f"{folder}/{p.stem}", label, "Celeb-synthesis" if label else "original",
                                   split, group, ""))
    return records


# --- OpenForensics -----------------------------------------------------------------------------

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
        raise DatasetLayoutError(f"missing {path}; {OF_EXPECTED}")
    doc = _load_coco(path)
    images = {img["id"]: img for img in doc["images"]}
    faces_seen: dict = {}
    records = []
    for ann in doc["annotations"]:
        img = images.get(ann["image_id"])
        if img is None:
            raise DatasetLayoutError(f"{path}: annotation {ann.get('id')} refers to missing image {ann['image_id']}")
        file = _inside(root, img["file_name"], path)
        k = faces_seen[img["id"]] = faces_seen.get(img["id"], -1) + 1
        label = int(ann["category_id"])
        records.append(MediaRecord(str(file), f"{split}/{file.stem}", label, "fake" if label else "original",
                                   OF_SPLIT_NAMES[split], file.stem, face=k, box=tuple(ann["bbox"])))
    return records


def inspect_openforensics(root) -> pd.DataFrame:
    """Images and faces (real / fake) per split present under an OpenForensics root."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"{root} is not a folder; {OF_EXPECTED}")
    rows = []
    for split in OF_SPLITS:
        path = root / f"{split}_poly.json"
        if not path.is_file():
            continue
        doc = _load_coco(path)
        fake = sum(int(a["category_id"]) == 1 for a in doc["annotations"])
        rows.append({"split": split, "images": len(doc["images"]), "faces": len(doc["annotations"]),
                     "real": len(doc["annotations"]) - fake, "fake": fake})
    if not rows:
        raise DatasetLayoutError(f"{root} holds no <Split>_poly.json; {OF_EXPECTED}")
    return pd.DataFrame(rows).set_index("split")


# --- DFDC ---------------------------------------------------------------------------------------

DFDC_LABELS = {"REAL": 0, "FAKE": 1}


def _dfdc_parts(root: Path) -> list:
    if not root.is_dir():
        raise DatasetLayoutError(f"{root} is not a folder; {DFDC_EXPECTED}")
    parts = sorted((p for p in root.iterdir() if p.is_dir() and (p / "metadata.json").is_file()),
                   key=lambda p: (len(p.name), p.name))
    if not parts:
        raise DatasetLayoutError(f"{root} has no part folder with a metadata.json; {DFDC_EXPECTED}")
    return parts


def read_dfdc_metadata(part: Path) -> dict:
    """{file name: (label, original file name)} from one part's metadata.json, checked entry by entry."""
    path = part / "metadata.json"
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetLayoutError(f"{path} is not valid JSON ({e}); {DFDC_EXPECTED}") from None
    if not isinstance(doc, dict):
        raise DatasetLayoutError(f"{path}: expected an object keyed by file name; {DFDC_EXPECTED}")
    out = {}
    for name, entry in doc.items():
        if not isinstance(entry, dict) or "label" not in entry:
            raise DatasetLayoutError(f"{path}: entry {name!r} has no 'label' key; expected "
                                     '{"label": "REAL" | "FAKE", "original": ...}')
        if entry["label"] not in DFDC_LABELS:
            raise DatasetLayoutError(f"{path}: entry {name!r} has label {entry['label']!r}; expected REAL or FAKE")
        original = entry.get("original")
        if entry["label"] == "FAKE" and not original:
            raise DatasetLayoutError(f"{path}: FAKE entry {name!r} has no 'original' key naming its real video")
        out[name] = (DFDC_LABELS[entry["label"]], original or name)
    return out


def dfdc_records(root, seed: int = 0, val_parts=(), test_parts=()) -> list:
    """Videos listed in each part's metadata.json. Splits: by original video (a fake and its real
    source, i.e. one identity, never in two splits) 70/15/15 seeded; or, when the user names val and
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
        for name in sorted(set(meta) | set(files)):
            label, original = meta.get(name, (0, name))
            path = files.get(name, part / name)  # listed but missing: a recorded failure at extraction
            split = named.get(part.name, named.get(part.name.rsplit("_", 1)[-1], "train")) if named else ""
            if name not in meta:
                split = "unlisted"
            found.append((part.name, Path(name).stem, path, label, Path(original).stem, split))
    if not named:
        by_group = group_split([g for *_, g, split in found if split != "unlisted"], seed=seed)
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
        skipped += [{"file": f"{part.name}/{n}", "reason": "not a video container dflite reads"}
                    for n in other_files(part) if n != "metadata.json"]
    return {"parts": pd.DataFrame(rows).set_index("part"), "skipped": pd.DataFrame(skipped, columns=["file", "reason"])}


def balance(table: pd.DataFrame, value: str = "media_id") -> pd.DataFrame:
    """Rows per method and split, with real and fake totals: for records_frame(...), media.csv or index.csv."""
    counts = table.pivot_table(index="method", columns="split", values=value, aggfunc="count", fill_value=0)
    real = counts.index == "original"
    real_total, fake_total = counts[real].sum(), counts[~real].sum()
    counts.loc["all real"] = real_total
    counts.loc["all fake"] = fake_total
    return counts
