"""Dataset adapters: real on-disk layouts -> media records (path, label, method, split, group, ...).

FaceForensics++ and OpenForensics are read exactly as distributed; the synthetic data is written in
those layouts and goes through the same code. A wrong root raises DatasetLayoutError listing what
was expected, so a user can see at once which folder or file is missing.
"""
from __future__ import annotations

import json
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
               for p in sorted(real_dir.glob("*.mp4"))]
    for method in methods:
        vids = root / "manipulated_sequences" / method / compression / "videos"
        for p in sorted(vids.glob("*.mp4")):
            target = p.stem.split("_")[0]
            mask = root / "manipulated_sequences" / method / "masks" / "videos" / p.name
            records.append(MediaRecord(str(p), f"{method}/{p.stem}", 1, method, id_split.get(target, "unlisted"),
                                       target, compression, mask_path=str(mask) if mask.is_file() else ""))
    return records


def inspect_ffpp(root) -> dict:
    """What an FF++ root holds: videos per method and compression, masks, split pairs."""
    root = Path(root)
    _check_ffpp_root(root)
    rows = []
    for comp in FFPP_COMPRESSIONS:
        real = root / "original_sequences" / "youtube" / comp / "videos"
        if real.is_dir():
            rows.append({"method": "original", "compression": comp, "videos": len(list(real.glob("*.mp4")))})
    manip = root / "manipulated_sequences"
    methods = sorted(p.name for p in manip.iterdir() if p.is_dir()) if manip.is_dir() else []
    masks = {}
    for m in methods:
        for comp in FFPP_COMPRESSIONS:
            d = manip / m / comp / "videos"
            if d.is_dir():
                rows.append({"method": m, "compression": comp, "videos": len(list(d.glob("*.mp4")))})
        md = manip / m / "masks" / "videos"
        masks[m] = len(list(md.glob("*.mp4"))) if md.is_dir() else 0
    videos = pd.DataFrame(rows, columns=["method", "compression", "videos"])
    table = videos.pivot(index="method", columns="compression", values="videos").fillna(0).astype(int)
    splits = {}
    for split in ("train", "val", "test"):
        p = root / "splits" / f"{split}.json"
        splits[split] = len(json.loads(p.read_text())) if p.is_file() else None
    return {"videos": table, "masks": masks, "split_pairs": splits}


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
    found = [(folder, p) for folder in CELEBDF_FOLDERS for p in sorted((root / folder).glob("*.mp4"))]
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
    """Resolve a file_name from an annotation file, refusing one that escapes the dataset root."""
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()):
        raise DatasetLayoutError(f"{source}: file_name {rel!r} points outside the dataset root {root}")
    return path


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


def balance(table: pd.DataFrame, value: str = "media_id") -> pd.DataFrame:
    """Rows per method and split, with real and fake totals: for records_frame(...), media.csv or index.csv."""
    counts = table.pivot_table(index="method", columns="split", values=value, aggfunc="count", fill_value=0)
    real = counts.index == "original"
    real_total, fake_total = counts[real].sum(), counts[~real].sum()
    counts.loc["all real"] = real_total
    counts.loc["all fake"] = fake_total
    return counts
