"""Face-crop extraction: media records -> a crop store (crops, index.csv, failures.csv, summary.json).

Parallel over videos (processes) and resumable: each video's result is written as one part file
after its crops, so a killed run redoes at most the videos in flight and ends with the same index
as an uninterrupted one. A bad video is recorded in failures.csv and skipped; the job goes on.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import time
import zlib
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import pandas as pd
from tqdm import tqdm

from .. import __version__, paths
from ..config import OF_SPLITS, ExtractConfig, config_hash, override, to_dict
from ..folders import claim, clear, write_json, write_marker, write_png
from . import video
from .faces import HaarConfig, crop_square, detect_faces, detect_near, iou
from .sources import MediaRecord, celebdf_records, ffpp_records, group_split, openforensics_records
from .synth import MARKER as SYNTH_MARKER
from .video import VideoError, read_sampled, sample_frame_indices

MARKER = "store.json"
OWNED = ("crops", "parts", "index.csv", "media.csv", "failures.csv", "summary.json", MARKER)
DATASETS = ("ffpp", "openforensics", "celebdf")
STAGES = ("decode", "detect", "crop", "write")
INDEX_COLUMNS = ["media_id", "frame", "face", "label", "method", "split", "group", "compression",
                 "x", "y", "w", "h", "detected", "crop", "source"]


@dataclass
class CropStore:
    """A finished crop store, as read back from disk."""

    root: Path
    index: pd.DataFrame     # one row per crop
    media: pd.DataFrame     # one row per video/image: frames sampled, frames with a face, crops
    failures: pd.DataFrame  # one row per media that gave no crop, with the reason
    summary: dict
    config: dict            # the ExtractConfig it was made with (store.json)
    kind: str = ""          # the dataset adapter it read: ffpp | openforensics | celebdf
    synthetic: bool = False  # read from a set dflite generated (not real data)

    @property
    def fingerprint(self) -> str:
        """12 hex digits of index.csv: which crops, labels, splits and boxes (a run records what it read)."""
        return hashlib.sha256((self.root / "index.csv").read_bytes()).hexdigest()[:12]


def store_dir(profile: str, dataset: str, cfg: ExtractConfig, synthetic: bool = False) -> Path:
    """data/crops/<profile>/[synthetic_]<dataset>_<hash8>: a store per dataset, origin and extraction settings
    (the synthetic FF++ set and a real FF++ download never share a folder)."""
    return paths.data_dir() / "crops" / profile / f"{'synthetic_' if synthetic else ''}{dataset}_{config_hash(cfg)}"


def is_synthetic(root) -> bool:
    """A dataset root inside a set `dflite synth` generated (its marker sits one level up)."""
    return (Path(root).resolve().parent / SYNTH_MARKER).is_file()


def haar_config(cfg: ExtractConfig) -> HaarConfig:
    return HaarConfig(scale_factor=cfg.scale_factor, min_neighbors=cfg.min_neighbors, min_size=cfg.min_size,
                      max_side=cfg.detect_max_side)


def dataset_records(dataset: str, root, cfg: ExtractConfig) -> list:
    """The records to extract, with the splits cfg.split_mode asks for."""
    if dataset == "ffpp":
        records = ffpp_records(root, cfg.methods, cfg.compression)
    elif dataset == "openforensics":
        records = [r for split in OF_SPLITS if (Path(root) / f"{split}_poly.json").is_file()
                   for r in openforensics_records(root, split)]
        if not records:
            openforensics_records(root, "Train")  # raises the layout error that lists what was expected
    elif dataset == "celebdf":
        records = celebdf_records(root, seed=cfg.seed)
    else:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    if cfg.split_mode == "group":
        by_group = group_split([r.group for r in records], seed=cfg.seed)
        records = [MediaRecord(**{**asdict(r), "split": by_group[r.group]}) for r in records]
    elif cfg.split_mode not in ("official", "leaky"):
        raise ValueError(f"unknown split_mode {cfg.split_mode!r}; expected official, group or leaky")
    return records


def _part_path(out: Path, media_id: str) -> Path:
    return out / "parts" / (media_id.replace("/", "__") + ".json")


def _row(r: MediaRecord, frame: int, face: int, box, detected: bool, crop: Path, out: Path, root: Path) -> dict:
    x, y, w, h = (int(round(v)) for v in box)
    return {"media_id": r.media_id, "frame": frame, "face": face, "label": r.label, "method": r.method,
            "split": r.split, "group": r.group, "compression": r.compression, "x": x, "y": y, "w": w, "h": h,
            "detected": int(detected), "crop": str(crop.relative_to(out)),
            "source": str(Path(r.path).resolve().relative_to(root.resolve()))}


def process_video(r: MediaRecord, cfg: ExtractConfig, out: Path, root: Path) -> dict:
    """Sample, decode, detect, crop and write one video; returns its rows, failure and stage times."""
    times = dict.fromkeys(STAGES, 0.0)
    result = {"rows": [], "failure": None, "times": times, "sampled": 0, "with_face": 0}
    t = time.perf_counter()
    try:
        def wanted(n):
            return sample_frame_indices(n, cfg.sampling, cfg.frames, r.label, r.media_id, cfg.seed)

        got, frames = read_sampled(r.path, wanted)
    except VideoError as e:
        result["failure"] = {"reason": e.reason, "detail": e.detail}
        return result
    times["decode"] += time.perf_counter() - t
    if not frames:
        result["failure"] = {"reason": "no frames", "detail": "the container holds no decodable frame"}
        return result
    result["sampled"] = len(frames)
    haar = haar_config(cfg)
    tracking = cfg.track and not cfg.all_faces
    previous = None
    for idx, frame in zip(got, frames):
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        t = time.perf_counter()
        boxes = detect_near(frame, previous, haar) if tracking else detect_faces(frame, haar)
        times["detect"] += time.perf_counter() - t
        if len(boxes) == 0:
            continue
        previous = boxes[0]
        result["with_face"] += 1
        for k, box in enumerate(boxes if cfg.all_faces else boxes[:1]):
            t = time.perf_counter()
            crop = crop_square(frame, box, cfg.expand, cfg.size)
            times["crop"] += time.perf_counter() - t
            path = out / "crops" / r.media_id / f"{idx:05d}_{k}.png"
            t = time.perf_counter()
            write_png(path, crop, fast=True)
            times["write"] += time.perf_counter() - t
            result["rows"].append(_row(r, idx, k, box, True, path, out, root))
    if not result["rows"]:
        result["failure"] = {"reason": "no face", "detail": f"no face in {len(frames)} sampled frames"}
    return result


def process_image(records: list, cfg: ExtractConfig, out: Path, root: Path) -> dict:
    """Crop every annotated face of one image (OpenForensics); optionally check the detector finds it."""
    times = dict.fromkeys(STAGES, 0.0)
    result = {"rows": [], "failure": None, "times": times, "sampled": len(records), "with_face": 0}
    t = time.perf_counter()
    image = cv2.imread(records[0].path, cv2.IMREAD_COLOR)
    times["decode"] += time.perf_counter() - t
    if image is None:
        result["failure"] = {"reason": "undecodable", "detail": "not an image OpenCV can read"}
        return result
    dets = []
    if cfg.of_detect:
        # Scene faces range from tiny to huge: full resolution, down to the cascade's own 24 px window.
        t = time.perf_counter()
        dets = detect_faces(image, override(haar_config(cfg), min_size=24, max_side=0))
        times["detect"] += time.perf_counter() - t
    for r in records:
        found = bool(cfg.of_detect and any(iou(d, r.box) >= 0.4 for d in dets))
        result["with_face"] += found
        t = time.perf_counter()
        crop = crop_square(image, r.box, cfg.expand, cfg.size)
        times["crop"] += time.perf_counter() - t
        path = out / "crops" / r.media_id / f"00000_{r.face}.png"
        t = time.perf_counter()
        write_png(path, crop, fast=True)
        times["write"] += time.perf_counter() - t
        result["rows"].append(_row(r, 0, r.face, r.box, found, path, out, root))
    return result


def _job(args) -> str:
    """Worker entry: one video or one image; any error becomes a recorded failure, never a crash."""
    key, records, cfg, out, root = args
    part = _part_path(out, key)
    if part.is_file():
        return key
    try:
        if records[0].face >= 0:
            result = process_image(records, cfg, out, root)
        else:
            result = process_video(records[0], cfg, out, root)
    except Exception as e:  # a bad item is recorded and skipped; the rest of the job goes on
        result = {"rows": [], "failure": {"reason": "error", "detail": f"{type(e).__name__}: {e}"[:300]},
                  "times": dict.fromkeys(STAGES, 0.0), "sampled": 0, "with_face": 0}
    if result["failure"]:
        result["failure"] = {"media_id": key, "path": str(Path(records[0].path).name), **result["failure"]}
    write_json(part, result)
    return key


def _init_worker():
    # One process per core: OpenCV's and FFmpeg's own threads would only fight them.
    cv2.setNumThreads(1)
    video.DECODE_THREADS = 1


def _leaky_split(rows: pd.DataFrame, seed: int) -> pd.Series:
    """Frame-level split for the leakage ablation: frames of one video land in different splits."""
    keys = rows["media_id"] + "#" + rows["frame"].astype(str) + "#" + rows["face"].astype(str)
    u = keys.map(lambda k: (zlib.crc32(f"{seed}/{k}".encode()) % 1000) / 1000)
    return pd.cut(u, [-1, 0.7, 0.85, 1.0], labels=["train", "val", "test"]).astype(str)


def _assemble(out: Path, jobs: list, cfg: ExtractConfig, wall: float) -> None:
    rows, failures, media, times = [], [], [], defaultdict(float)
    sampled = with_face = 0
    for key, recs in jobs:
        part = json.loads(_part_path(out, key).read_text())
        rows += part["rows"]
        media.append({"media_id": key, "method": recs[0].method, "label": recs[0].label, "split": recs[0].split,
                      "sampled": part["sampled"], "with_face": part["with_face"], "crops": len(part["rows"]),
                      "failure": part["failure"]["reason"] if part["failure"] else ""})
        if part["failure"]:
            failures.append(part["failure"])
        for k, v in part["times"].items():
            times[k] += v
        sampled += part["sampled"]
        with_face += part["with_face"]
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS).sort_values(["media_id", "frame", "face"], kind="stable")
    if cfg.split_mode == "leaky":
        index["split"] = _leaky_split(index, cfg.seed).values
    index.to_csv(out / "index.csv", index=False)
    pd.DataFrame(media).to_csv(out / "media.csv", index=False)
    pd.DataFrame(failures, columns=["media_id", "path", "reason", "detail"]).sort_values("media_id").to_csv(
        out / "failures.csv", index=False)
    write_json(out / "summary.json", {
        "media": len(jobs), "failed": len(failures), "crops": len(index),
        "sampled": sampled, "with_face": with_face,
        "detection_rate": round(with_face / sampled, 4) if sampled else None,
        "stage_seconds": {k: round(times[k], 2) for k in STAGES},
        "wall_seconds": round(wall, 2),
        "crops_per_second": round(len(index) / wall, 1) if wall > 0 else None,
    })


def load_store(out) -> CropStore:
    """Read a finished crop store; a clear error if it is missing or unfinished."""
    out = Path(out)
    marker = out / MARKER
    made = json.loads(marker.read_text()) if marker.is_file() else {}
    if not made.get("complete"):
        raise FileNotFoundError(f"no finished crop store at {paths.show(out)}: run `dflite extract` "
                                "(or notebook 01) first")
    return CropStore(out, pd.read_csv(out / "index.csv", dtype={"group": str, "compression": str}),
                     pd.read_csv(out / "media.csv", keep_default_na=False), pd.read_csv(out / "failures.csv"),
                     json.loads((out / "summary.json").read_text()), made["config"], made.get("dataset", ""),
                     bool(made.get("synthetic")))


def extract(dataset: str, root, out, cfg: ExtractConfig = ExtractConfig(), workers: int | None = None,
            force: bool = False, progress: bool = True) -> CropStore:
    """Build (or reuse, or resume) the crop store for a dataset root."""
    root, out = Path(root), Path(out)
    records = dataset_records(dataset, root, cfg)
    want = {"made_by": "dflite", "dataset": dataset, "root": paths.show(root), "config": to_dict(cfg)}
    action = claim(out, MARKER, want, force, "dflite extract")
    if action == "reuse":
        return load_store(out)
    if action == "replace":
        clear(out, OWNED)
    write_marker(out, MARKER, {**want, "complete": False, "version": __version__})
    # One job per video, or per image for image datasets (all faces of an image together).
    grouped: dict = defaultdict(list)
    for r in records:
        if r.split == "unlisted":
            continue  # FF++ videos in no split file: not part of the benchmark
        grouped[r.media_id].append(r)
    jobs = sorted(grouped.items())
    started = time.perf_counter()
    args = [(key, recs, cfg, out, root) for key, recs in jobs]
    n_workers = max(1, workers or min(os.cpu_count() or 1, 8))
    with tqdm(total=len(args), desc=f"extract {dataset}", unit="media", disable=not progress) as bar:
        if n_workers > 1:
            # spawn, not fork: forking a process that already runs OpenCV or tqdm threads can deadlock.
            with mp.get_context("spawn").Pool(n_workers, initializer=_init_worker) as pool:
                for _ in pool.imap_unordered(_job, args, chunksize=1):
                    bar.update()
        else:
            for a in args:
                _job(a)
                bar.update()
    _assemble(out, jobs, cfg, time.perf_counter() - started)
    write_marker(out, MARKER, {**want, "complete": True, "version": __version__, "synthetic": is_synthetic(root)})
    return load_store(out)

