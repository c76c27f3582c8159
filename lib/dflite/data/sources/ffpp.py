"""FaceForensics++: real and manipulated videos per compression, mask videos, official split pairs.

The one place the FF++ layout is spelled out: the synthetic writer, the figures and the checks build
their paths with `real_dir`, `fake_dir` and `mask_dir`.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...config import METHODS
from .common import (
    Adapter,
    DatasetLayoutError,
    Inspection,
    MediaRecord,
    media_names,
    not_video,
    other_files,
    skipped_frame,
    video_files,
)

COMPRESSIONS = ("raw", "c23", "c40")
EXPECTED = """expected a FaceForensics++ root laid out as:
  original_sequences/youtube/<raw|c23|c40>/videos/000.mp4 ...
  manipulated_sequences/<Deepfakes|Face2Face|FaceSwap|NeuralTextures|FaceShifter>/<comp>/videos/000_003.mp4 ...
  splits/train.json, splits/val.json, splits/test.json  (lists of ["953", "974"] id pairs)"""
SPLITS = ("train", "val", "test")


def real_dir(root, compression: str) -> Path:
    return Path(root) / "original_sequences" / "youtube" / compression / "videos"


def fake_dir(root, method: str, compression: str) -> Path:
    return Path(root) / "manipulated_sequences" / method / compression / "videos"


def mask_dir(root, method: str) -> Path:
    return Path(root) / "manipulated_sequences" / method / "masks" / "videos"


def split_file(root, split: str) -> Path:
    return Path(root) / "splits" / f"{split}.json"


def _check_root(root: Path) -> None:
    if not root.is_dir():
        raise DatasetLayoutError(f"{root} is not a folder; {EXPECTED}")
    if not (root / "original_sequences" / "youtube").is_dir():
        raise DatasetLayoutError(f"{root} has no original_sequences/youtube/ folder; {EXPECTED}")


def read_ffpp_splits(root) -> dict:
    """{video id: split} from splits/{train,val,test}.json; a pair's ids share its split."""
    id_split = {}
    for split in SPLITS:
        path = split_file(root, split)
        if not path.is_file():
            raise DatasetLayoutError(
                f"missing split file {path}; FF++ ships splits/train.json, val.json, test.json "
                f"(from the FaceForensics repository's dataset/splits/); {EXPECTED}")
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
    _check_root(root)
    id_split = read_ffpp_splits(root)
    reals = real_dir(root, compression)
    if not reals.is_dir():
        raise DatasetLayoutError(f"{reals} does not exist (compression {compression!r}); {EXPECTED}")
    files = video_files(reals)
    names = media_names(files)
    records = [MediaRecord(str(p), f"original/{names[p.name]}", 0, "original", id_split.get(p.stem, "unlisted"),
                           p.stem, compression)
               for p in files]
    for method in methods:
        masks = {m.stem: m for m in video_files(mask_dir(root, method))}
        files = video_files(fake_dir(root, method, compression))
        names = media_names(files)
        for p in files:
            target = p.stem.split("_")[0]
            mask = masks.get(p.stem)
            records.append(MediaRecord(str(p), f"{method}/{names[p.name]}", 1, method,
                                       id_split.get(target, "unlisted"), target, compression,
                                       mask_path=str(mask) if mask else ""))
    return records


def inspect_ffpp(root, compression: str = "c23") -> dict:
    """What an FF++ root holds: videos per method and compression, masks, split pairs, and what is skipped."""
    root = Path(root)
    _check_root(root)
    rows, skipped = [], []
    manip = root / "manipulated_sequences"
    methods = sorted(p.name for p in manip.iterdir() if p.is_dir()) if manip.is_dir() else []
    folders = [("original", comp, real_dir(root, comp)) for comp in COMPRESSIONS]
    folders += [(m, comp, fake_dir(root, m, comp)) for m in methods for comp in COMPRESSIONS]
    for method, comp, d in folders:
        if d.is_dir():
            rows.append({"method": method, "compression": comp, "videos": len(video_files(d))})
            skipped += [not_video(str((d / name).relative_to(root))) for name in other_files(d)]
    masks = {m: len(video_files(mask_dir(root, m))) for m in methods}
    videos = pd.DataFrame(rows, columns=["method", "compression", "videos"])
    table = videos.pivot(index="method", columns="compression", values="videos").fillna(0).astype(int)
    splits = {s: len(json.loads(split_file(root, s).read_text())) if split_file(root, s).is_file() else None
              for s in SPLITS}
    if all(v is not None for v in splits.values()) and real_dir(root, compression).is_dir():
        skipped += [{"file": str(Path(r.path).relative_to(root)), "reason": "in no split file"}
                    for r in ffpp_records(root, methods, compression) if r.split == "unlisted"]
    return {"videos": table, "masks": masks, "split_pairs": splits, "skipped": skipped_frame(skipped)}


def _inspect(root, cfg) -> Inspection:
    found = inspect_ffpp(root, cfg.compression)
    return Inspection({"videos per method and compression": found["videos"]},
                      {"mask videos": found["masks"], "split pairs": found["split_pairs"]}, found["skipped"])


ADAPTER = Adapter(
    name="ffpp", title="FaceForensics++", media="video", expected=EXPECTED,
    splits="the official splits/*.json id pairs: a pair's real videos and both its fakes share a split",
    skip_reason="in no split file (splits/*.json)",
    records=lambda root, cfg: ffpp_records(root, cfg.methods, cfg.compression), inspect=_inspect,
    masks=True, compressions=COMPRESSIONS)
