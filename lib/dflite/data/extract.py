"""Face-crop extraction: media records -> a crop store (crops, index.csv, failures.csv, summary.json).

A fake video with a manipulation mask video (FF++'s `masks/videos`, which the synthetic set writes
too) also gets, for every face crop, the mask cropped with the same box: `masks/` and `masks.csv`
(crop, mask), beside the index so the index, and the fingerprint runs are keyed by, stay as they were.

Parallel over videos (processes) and resumable: each video's result is written as one part file
after its crops, so a killed run redoes at most the videos in flight and ends with the same index
as an uninterrupted one. A bad video is recorded in failures.csv and skipped; the job goes on.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
import time
import zlib
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from .. import __version__, paths
from ..config import OF_SPLITS, ExtractConfig, config_hash, from_dict, override, stable_hash, to_dict
from ..folders import claim, clear, write_json, write_marker, write_png
from . import video
from .faces import HaarConfig, crop_square, detect_faces, detect_near, iou
from .sources import MediaRecord, celebdf_records, dfdc_records, ffpp_records, group_split, openforensics_records
from .synth import MARKER as SYNTH_MARKER
from .video import VideoError, captured_stderr, read_sampled, sample_frame_indices

MARKER = "store.json"
OWNED = ("crops", "masks", "parts", "index.csv", "masks.csv", "mask_failures.csv", "media.csv", "failures.csv",
         "skipped.csv", "summary.json", MARKER)
LAYOUT = 2  # 2: mask crops of fakes with a mask video; a store of layout 1 gets them on its next extract
DATASETS = ("ffpp", "openforensics", "celebdf", "dfdc")
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
    masks: pd.DataFrame = None  # crop -> its manipulation mask crop (fakes with a mask video only)

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
                      max_side=cfg.detect_max_side, min_box=cfg.min_box)


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
    elif dataset == "dfdc":
        records = dfdc_records(root, cfg.seed, cfg.dfdc_val_parts, cfg.dfdc_test_parts)
    else:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    if cfg.split_mode == "group":
        by_group = group_split([r.group for r in records if r.split != "unlisted"], seed=cfg.seed)
        records = [r if r.split == "unlisted" else MediaRecord(**{**asdict(r), "split": by_group[r.group]})
                   for r in records]
    elif cfg.split_mode not in ("official", "leaky"):
        raise ValueError(f"unknown split_mode {cfg.split_mode!r}; expected official, group or leaky")
    return records


def _part_path(out: Path, media_id: str) -> Path:
    return out / "parts" / (media_id.replace("/", "__") + ".json")


def listed(path, root: Path) -> str:
    """A media file's path as the dataset lists it, relative to the root (symlinks not followed)."""
    return Path(os.path.relpath(path, root)).as_posix()


def root_key(root: Path) -> str:
    """Which dataset root a store was made from, without machine paths: the project-relative path, or
    for a root outside the project its folder name and a hash of its full resolved path."""
    shown = paths.show(root)
    if not Path(shown).is_absolute() and shown != Path(root).resolve().name:
        return shown
    return f"{Path(root).resolve().name}@{hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:8]}"


def file_stat(path) -> list:
    """[size, mtime in ns] of a media file ([] when missing): a changed file is redone."""
    try:
        st = os.stat(path)
    except OSError:
        return []
    return [st.st_size, st.st_mtime_ns]


def scrub(text: str, root: Path) -> str:
    """Error text without machine paths: the dataset root and the project folder are cut out."""
    for base in sorted({str(Path(root).resolve()), str(Path(root).absolute()), str(paths.ROOT)}, key=len,
                       reverse=True):
        text = text.replace(base + os.sep, "").replace(base, ".")
    return text


def _row(r: MediaRecord, frame: int, face: int, box, detected: bool, crop: Path, out: Path, root: Path) -> dict:
    x, y, w, h = (int(round(v)) for v in box)
    return {"media_id": r.media_id, "frame": frame, "face": face, "label": r.label, "method": r.method,
            "split": r.split, "group": r.group, "compression": r.compression, "x": x, "y": y, "w": w, "h": h,
            "detected": int(detected), "crop": str(crop.relative_to(out)),
            "source": listed(r.path, root)}


def _mask_frames(r: MediaRecord, got: list, result: dict) -> dict:
    """{frame index: grey uint8 mask} of the sampled frames from a fake's mask video ({} without one).

    A mask video that is missing frames or will not decode costs the masks, not the crops: the reason
    goes into the result's mask_failure (mask_failures.csv)."""
    result["masks"] = []
    if not r.mask_path:
        return {}
    result["mask_failure"] = None
    try:
        have, frames = read_sampled(r.mask_path, got)
    except VideoError as e:
        result["mask_failure"] = f"{e.reason}: {e.detail}"
        return {}
    if len(have) < len(got):
        result["mask_failure"] = f"mask video has {len(have)} of the {len(got)} sampled frames"
    return {i: f if f.ndim == 2 else f[..., 1] for i, f in zip(have, frames)}  # H.264 grey: any channel


def faces_in_frames(got: list, frames: list, cfg: ExtractConfig, times: dict) -> list:
    """The face step `extract` and `detect` share, in memory: per sampled frame the biggest face (searched
    near the previous sampled frame's first) or every face, as [(frame index, face number, box, crop)].
    Adds the seconds spent to times["detect"] and times["crop"]."""
    haar = haar_config(cfg)
    tracking = cfg.track and not cfg.all_faces
    previous, hits = None, []
    for idx, frame in zip(got, frames):
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        t = time.perf_counter()
        boxes = detect_near(frame, previous, haar) if tracking else detect_faces(frame, haar)
        times["detect"] += time.perf_counter() - t
        if len(boxes) == 0:
            continue
        previous = boxes[0]
        for k, box in enumerate(boxes if cfg.all_faces else boxes[:1]):
            t = time.perf_counter()
            hits.append((idx, k, box, crop_square(frame, box, cfg.expand, cfg.size)))
            times["crop"] += time.perf_counter() - t
    return hits


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
    t = time.perf_counter()
    masks = _mask_frames(r, got, result)
    times["decode"] += time.perf_counter() - t
    hits = faces_in_frames(got, frames, cfg, times)
    result["with_face"] = len({idx for idx, *_ in hits})
    for idx, k, box, crop in hits:
        path = out / "crops" / r.media_id / f"{idx:05d}_{k}.png"
        t = time.perf_counter()
        write_png(path, crop, fast=True)
        if idx in masks:
            # Same box, same expansion; resampling blurs the edge, so threshold back to 0/255.
            mask_path = out / "masks" / r.media_id / f"{idx:05d}_{k}.png"
            mask = crop_square(masks[idx], box, cfg.expand, cfg.size)
            write_png(mask_path, np.where(mask > 127, 255, 0).astype(np.uint8), fast=True)
            result["masks"].append([str(path.relative_to(out)), str(mask_path.relative_to(out))])
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
    """Worker entry: one video or one image; any error becomes a recorded failure, never a crash.

    The media's crop folder is emptied first (a killed run may have left part of it) and removed
    again when the item fails, so no crop is ever without an index row. FFmpeg's and OpenCV's
    messages on stderr are captured and go into the failure's detail instead of the terminal.
    """
    key, records, cfg, out, root = args
    part = _part_path(out, key)
    if part.is_file():
        return key
    crops, masks = out / "crops" / key, out / "masks" / key
    for folder in (crops, masks):
        if folder.exists():
            shutil.rmtree(folder)
    stat = file_stat(records[0].path)
    with captured_stderr() as err:
        try:
            if records[0].face >= 0:
                result = process_image(records, cfg, out, root)
            else:
                result = process_video(records[0], cfg, out, root)
        except Exception as e:  # a bad item is recorded and skipped; the rest of the job goes on
            result = {"rows": [], "failure": {"reason": "error", "detail": f"{type(e).__name__}: {e}"},
                      "times": dict.fromkeys(STAGES, 0.0), "sampled": 0, "with_face": 0}
    if result["failure"]:
        for folder in (crops, masks):
            if folder.exists():
                shutil.rmtree(folder)
        result["rows"], result["masks"] = [], []
        detail = result["failure"].get("detail", "")
        if err["text"].strip():
            detail = f"{detail}; decoder said: {' | '.join(err['text'].split())}"
        result["failure"] = {"media_id": key, "path": listed(records[0].path, root), **result["failure"],
                             "detail": scrub(detail, root)[:400]}
    result.update(media_id=key, stat=stat, layout=LAYOUT)
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


RELABEL = ("label", "method", "split", "group", "compression")
SKIP_REASONS = {"ffpp": "in no split file (splits/*.json)", "dfdc": "not in its part's metadata.json"}


def _assemble(out: Path, jobs: list, skipped: list, cfg: ExtractConfig, dataset: str, root: Path,
              wall: float) -> None:
    rows, failures, media, times = [], [], [], defaultdict(float)
    masks, mask_failures = [], []
    sampled = with_face = 0
    for key, recs in jobs:
        part = json.loads(_part_path(out, key).read_text())
        # Labels and splits come from today's records: a changed split file needs no re-extraction.
        by_face = {r.face: r for r in recs}
        for row in part["rows"]:
            r = by_face.get(row["face"], recs[0])
            row.update({k: getattr(r, k) for k in RELABEL})
        rows += part["rows"]
        images = recs[0].face >= 0
        fake_faces = sum(r.label for r in recs)
        first = next((r for r in recs if r.label), recs[0])  # an image is fake if any of its faces is
        media.append({"media_id": key, "method": first.method, "label": first.label, "split": first.split,
                      "faces_real": len(recs) - fake_faces if images else "",
                      "faces_fake": fake_faces if images else "",
                      "sampled": part["sampled"], "with_face": part["with_face"], "crops": len(part["rows"]),
                      "failure": part["failure"]["reason"] if part["failure"] else ""})
        if part["failure"]:
            failures.append(part["failure"])
        masks += part.get("masks", [])
        if part.get("mask_failure"):
            mask_failures.append({"media_id": key, "path": listed(recs[0].mask_path, root),
                                  "reason": scrub(part["mask_failure"], root)[:400]})
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
    pd.DataFrame(masks, columns=["crop", "mask"]).sort_values("crop").to_csv(out / "masks.csv", index=False)
    pd.DataFrame(mask_failures, columns=["media_id", "path", "reason"]).to_csv(out / "mask_failures.csv",
                                                                               index=False)
    reason = SKIP_REASONS.get(dataset, "in no split")
    pd.DataFrame([{"media_id": r.media_id, "path": listed(r.path, root), "reason": reason} for r in skipped],
                 columns=["media_id", "path", "reason"]).to_csv(out / "skipped.csv", index=False)
    write_json(out / "summary.json", {
        "media": len(jobs), "failed": len(failures), "skipped": len(skipped), "crops": len(index),
        "sampled": sampled, "with_face": with_face, "mask_crops": len(masks), "mask_failures": len(mask_failures),
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
    masks = pd.read_csv(out / "masks.csv") if (out / "masks.csv").is_file() else pd.DataFrame(columns=["crop", "mask"])
    return CropStore(out, pd.read_csv(out / "index.csv", dtype={"group": str, "compression": str}),
                     pd.read_csv(out / "media.csv", keep_default_na=False), pd.read_csv(out / "failures.csv"),
                     json.loads((out / "summary.json").read_text()), made["config"], made.get("dataset", ""),
                     bool(made.get("synthetic")), masks)


class IncompleteStoreError(RuntimeError):
    """A merge was asked for while some media have no result yet (shards still running or not started)."""


def parse_shard(text: str) -> tuple:
    """'K/N' -> (K, N) with 0 <= K < N: shard K of N (0-based, like a SLURM array task id)."""
    try:
        k, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected K/N, e.g. 0/4 (shard K of N, K from 0 to N-1)") from None
    if not (n >= 1 and 0 <= k < n):
        raise ValueError(f"--shard {text!r}: expected 0 <= K < N")
    return k, n


def shard_of(media_id: str, n: int) -> int:
    """Which of n shards a media belongs to: by a hash of its id, so adding media moves no other."""
    return zlib.crc32(media_id.encode()) % n


def _media_fingerprint(jobs: list, root: Path) -> str:
    """What the store was made from: every media's listed path, size, mtime, labels and splits."""
    return stable_hash([[key, listed(recs[0].path, root), file_stat(recs[0].path),
                         [[r.face, r.label, r.split, r.group] for r in recs]] for key, recs in jobs])


def _reuse_official(out: Path, cfg: ExtractConfig, want: dict, mine: set) -> int:
    """A store that differs from a finished one only in split_mode gets that store's per-media results
    (crops hard-linked): splits are applied when the index is assembled, so the crops are the same ones.
    _drop_stale then checks them like its own. Saves the leakage ablation a second extraction."""
    if cfg.split_mode == "official":
        return 0
    official = override(cfg, split_mode="official")
    sibling = out.parent / out.name.replace(config_hash(cfg), config_hash(official))
    marker = sibling / MARKER
    made = json.loads(marker.read_text()) if marker.is_file() else {}
    if not made.get("complete") or made.get("config") != to_dict(official) or made.get("root") != want["root"]:
        return 0
    reused = 0
    for key in sorted(mine):
        src, dst = _part_path(sibling, key), _part_path(out, key)
        if dst.is_file() or not src.is_file():
            continue
        for folder in ("crops", "masks"):
            for f in sorted((sibling / folder / key).glob("*.png")):
                target = out / folder / key / f.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.unlink(missing_ok=True)
                try:
                    os.link(f, target)
                except OSError:  # another file system, or no hard links there
                    shutil.copy2(f, target)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)  # last: a part file marks the media done
        reused += 1
    return reused


def _drop_stale(out: Path, jobs: list, mine) -> int:
    """Delete results of media that changed on disk (size or mtime) or left the dataset; returns how many."""
    keys = {key for key, _ in jobs}
    dropped = 0
    parts = out / "parts"
    for part in sorted(parts.glob("*.json")) if parts.is_dir() else []:
        key = json.loads(part.read_text()).get("media_id")
        if key is None:  # from an older dflite: cannot be traced to its media, so redo it
            part.unlink()
            dropped += 1
        elif key not in keys:
            shutil.rmtree(out / "crops" / key, ignore_errors=True)
            part.unlink(missing_ok=True)
            dropped += 1
    for key, recs in jobs:
        part = _part_path(out, key)
        if key in mine and part.is_file():
            made = json.loads(part.read_text())
            # Changed on disk, or made before mask crops existed while this media has a mask video.
            if made.get("stat") != file_stat(recs[0].path) or (recs[0].mask_path and made.get("layout") != LAYOUT):
                part.unlink()  # _job empties its crop folder before redoing it
                dropped += 1
    return dropped


def _today(marker: dict) -> dict:
    """A store marker with settings added since it was made filled in at their defaults (which is what
    it was made with), so an upgrade of dflite does not orphan every store."""
    try:
        return {**marker, "config": to_dict(from_dict(ExtractConfig, marker.get("config") or {}))}
    except (TypeError, ValueError):  # settings this dflite does not know: compared as they are
        return marker


def extract(dataset: str, root, out, cfg: ExtractConfig = ExtractConfig(), workers: int | None = None,
            force: bool = False, progress: bool = True, shard: tuple | None = None,
            merge: bool = False) -> CropStore | None:
    """Build, resume, update or reuse the crop store for a dataset root.

    A store remembers its root, settings and a fingerprint of its media (paths, sizes, mtimes,
    labels, splits): another root or other settings are refused (force redoes it); changed media
    are redone and removed ones dropped, the rest reused. shard=(K, N) processes only the media of
    shard K; the run that finds every media done assembles the store (else returns None), and
    merge=True only assembles, failing if some media are not done yet.
    """
    root, out = Path(root), Path(out)
    records = dataset_records(dataset, root, cfg)
    want = {"made_by": "dflite", "dataset": dataset, "root": root_key(root), "config": to_dict(cfg)}
    action = claim(out, MARKER, want, force, "dflite extract", normalize=_today)
    # One job per video, or per image for image datasets (all faces of an image together).
    grouped: dict = defaultdict(list)
    skipped = []
    for r in records:
        if r.split == "unlisted":  # in no split: not part of the benchmark, but listed in skipped.csv
            skipped.append(r)
        else:
            grouped[r.media_id].append(r)
    jobs = sorted(grouped.items())
    fingerprint = _media_fingerprint(jobs, root)
    made = json.loads((out / MARKER).read_text()) if action == "reuse" else {}
    if made.get("media") == fingerprint and made.get("layout") == LAYOUT:
        return load_store(out)
    if action == "replace":
        clear(out, OWNED)
    mine = {key for key, _ in jobs if shard is None or shard_of(key, shard[1]) == shard[0]}
    if not merge:
        _reuse_official(out, cfg, want, mine)
        _drop_stale(out, jobs, mine)
    write_marker(out, MARKER, {**want, "complete": False, "version": __version__})
    started = time.perf_counter()
    todo = [] if merge else [(key, recs, cfg, out, root) for key, recs in jobs
                             if key in mine and not _part_path(out, key).is_file()]
    label = f"extract {dataset}" + (f" shard {shard[0]}/{shard[1]}" if shard else "")
    n_workers = max(1, min(workers or min(os.cpu_count() or 1, 8), len(todo) or 1))
    with tqdm(total=len(todo), desc=label, unit="media", disable=not progress) as bar:
        if n_workers > 1:
            # spawn, not fork: forking a process that already runs OpenCV or tqdm threads can deadlock.
            with mp.get_context("spawn").Pool(n_workers, initializer=_init_worker) as pool:
                for _ in pool.imap_unordered(_job, todo, chunksize=1):
                    bar.update()
        else:
            for a in todo:
                _job(a)
                bar.update()
    missing = [key for key, _ in jobs if not _part_path(out, key).is_file()]
    if missing:
        if merge:
            raise IncompleteStoreError(
                f"{paths.show(out)}: {len(missing)} of {len(jobs)} media have no result yet (e.g. {missing[0]}); "
                "run the remaining shards (or extract without --shard) first")
        return None  # other shards still to finish; the last one to end assembles
    _assemble(out, jobs, skipped, cfg, dataset, root, time.perf_counter() - started)
    write_marker(out, MARKER, {**want, "complete": True, "version": __version__, "synthetic": is_synthetic(root),
                               "media": fingerprint, "layout": LAYOUT})
    return load_store(out)
