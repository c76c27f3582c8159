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
import os
import shutil
import time
import zlib
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .. import __version__, paths
from ..config import ExtractConfig, override, to_dict
from ..folders import CLI_WAY_OUT, claim, clear, write_json, write_marker, write_png
from ..parallel import imap
from . import video
from .faces import EYE_CASCADE_FILE, crop_square, detect_faces, faces_in_frames, haar_config, iou, load_cascade
from .sources import MediaRecord, get_adapter, group_split
from .store import MARKER, CropStore, is_synthetic, load_store, store_dir
from .updates import (
    LAYOUT,
    IncompleteStoreError,
    drop_stale,
    file_stat,
    listed,
    media_fingerprint,
    parse_shard,
    part_path,
    reuse_official,
    shard_of,
    with_defaults,
)
from .video import VideoError, captured_stderr, decoder_said, read_sampled, sample_frame_indices

__all__ = ["CropStore", "extract", "is_synthetic", "load_store", "parse_shard", "store_dir"]

OWNED = ("crops", "masks", "parts", "index.csv", "masks.csv", "mask_failures.csv", "media.csv", "failures.csv",
         "skipped.csv", "summary.json", MARKER)
STAGES = ("decode", "detect", "crop", "write")
INDEX_COLUMNS = ["media_id", "frame", "face", "label", "method", "split", "group", "compression",
                 "x", "y", "w", "h", "detected", "crop", "source"]


def dataset_records(dataset: str, root, cfg: ExtractConfig) -> list:
    """The adapter's records, with the splits cfg.split_mode asks for."""
    records = get_adapter(dataset).records(root, cfg)
    if cfg.split_mode == "group":
        by_group = group_split([r.group for r in records if r.split != "unlisted"], seed=cfg.seed)
        records = [r if r.split == "unlisted" else MediaRecord(**{**asdict(r), "split": by_group[r.group]})
                   for r in records]
    elif cfg.split_mode not in ("official", "leaky"):
        raise ValueError(f"unknown split_mode {cfg.split_mode!r}; expected official, group or leaky")
    return records


def root_key(root: Path) -> str:
    """Which dataset root a store was made from, without machine paths: the project-relative path, or
    for a root outside the project its folder name and a hash of its full resolved path."""
    shown = paths.show(root)
    if not Path(shown).is_absolute() and shown != Path(root).resolve().name:
        return shown
    return f"{Path(root).resolve().name}@{hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:8]}"


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
    rejected = []
    hits = faces_in_frames(got, frames, cfg, times, rejected)
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
        why = (f"; {len(rejected)} had face boxes the {cfg.face_choice} rule rejected ({rejected[0][1]})"
               if rejected else "")
        result["failure"] = {"reason": "no face", "detail": f"no face in {len(frames)} sampled frames{why}"}
    return result


def process_image(records: list, cfg: ExtractConfig, out: Path, root: Path) -> dict:
    """Crop every annotated face of one image (OpenForensics); optionally check the detector finds it."""
    times = dict.fromkeys(STAGES, 0.0)
    result = {"rows": [], "failure": None, "times": times, "sampled": len(records), "with_face": 0}
    t = time.perf_counter()
    image = cv2.imread(records[0].path, cv2.IMREAD_COLOR)
    times["decode"] += time.perf_counter() - t
    if image is None:
        # A file the annotations list but the root lacks is missing (as a video would be), not undecodable.
        result["failure"] = ({"reason": "undecodable", "detail": "not an image OpenCV can read"}
                             if Path(records[0].path).is_file() else {"reason": "missing", "detail": "no such file"})
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
    part = part_path(out, key)
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
            detail = f"{detail}; decoder said: {decoder_said(err['text'])}"
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


def _assemble(out: Path, jobs: list, skipped: list, cfg: ExtractConfig, dataset: str, root: Path,
              wall: float) -> None:
    rows, failures, media, times = [], [], [], defaultdict(float)
    masks, mask_failures = [], []
    sampled = with_face = 0
    for key, recs in jobs:
        part = json.loads(part_path(out, key).read_text())
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
    reason = get_adapter(dataset).skip_reason
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


def extract(dataset: str, root, out, cfg: ExtractConfig = ExtractConfig(), workers: int | None = None,
            force: bool = False, progress: bool = True, shard: tuple | None = None,
            merge: bool = False, way_out: str = CLI_WAY_OUT) -> CropStore | None:
    """Build, resume, update or reuse the crop store for a dataset root.

    A store remembers its root, settings and a fingerprint of its media (paths, sizes, mtimes,
    labels, splits): another root or other settings are refused (force redoes it); changed media
    are redone and removed ones dropped, the rest reused. shard=(K, N) processes only the media of
    shard K; the run that finds every media done assembles the store (else returns None), and
    merge=True only assembles, failing if some media are not done yet. `way_out`: the advice given if `out`
    was made with other settings.
    """
    root, out = Path(root), Path(out)
    records = dataset_records(dataset, root, cfg)
    want = {"made_by": "dflite", "dataset": dataset, "root": root_key(root), "config": to_dict(cfg)}
    action = claim(out, MARKER, want, force, "dflite extract", normalize=with_defaults, way_out=way_out)
    # One job per video, or per image for image datasets (all faces of an image together).
    grouped: dict = defaultdict(list)
    skipped = []
    for r in records:
        if r.split == "unlisted":  # in no split: not part of the benchmark, but listed in skipped.csv
            skipped.append(r)
        else:
            grouped[r.media_id].append(r)
    jobs = sorted(grouped.items())
    fingerprint = media_fingerprint(jobs, root)
    made = json.loads((out / MARKER).read_text()) if action == "reuse" else {}
    if made.get("media") == fingerprint and made.get("layout") == LAYOUT:
        store = load_store(out)
        store.reused = True
        return store
    if action == "replace":
        clear(out, OWNED)
    mine = {key for key, _ in jobs if shard is None or shard_of(key, shard[1]) == shard[0]}
    if not merge:
        reuse_official(out, cfg, want, mine)
        drop_stale(out, jobs, mine)
    write_marker(out, MARKER, {**want, "complete": False, "version": __version__})
    started = time.perf_counter()
    todo = [] if merge else [(key, recs, cfg, out, root) for key, recs in jobs
                             if key in mine and not part_path(out, key).is_file()]
    if todo:
        # A missing cascade file is the installation's fault, not a media file's: say so once, here, instead of
        # recording every media as failed and assembling an empty store (OpenCV 5.x ships no cascade files).
        load_cascade()
        if cfg.face_choice == "evidence":
            load_cascade(EYE_CASCADE_FILE)
    label = f"extract {dataset}" + (f" shard {shard[0]}/{shard[1]}" if shard else "")
    n_workers = workers or min(os.cpu_count() or 1, 8)
    for _ in imap(_job, todo, n_workers, _init_worker, ordered=False, progress=progress, desc=label, unit="media"):
        pass
    missing = [key for key, _ in jobs if not part_path(out, key).is_file()]
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
