"""Keeping a crop store up to date: shards of one extraction, media changed on disk or gone, a store's settings
read with the defaults of settings added since, and a split-mode sibling that reuses a finished store's crops.
"""
from __future__ import annotations

import json
import os
import shutil
import zlib
from pathlib import Path

from ..config import ExtractConfig, config_hash, from_dict, override, stable_hash, to_dict
from .store import MARKER

LAYOUT = 2  # 2: mask crops of fakes with a mask video; a store of layout 1 gets them on its next extract


def part_path(out: Path, media_id: str) -> Path:
    """Where one media's result is recorded (written last: its presence means the media is done)."""
    return out / "parts" / (media_id.replace("/", "__") + ".json")


def listed(path, root: Path) -> str:
    """A media file's path as the dataset lists it, relative to the root (symlinks not followed)."""
    return Path(os.path.relpath(path, root)).as_posix()


def file_stat(path) -> list:
    """[size, mtime in ns] of a media file ([] when missing): a changed file is redone."""
    try:
        st = os.stat(path)
    except OSError:
        return []
    return [st.st_size, st.st_mtime_ns]


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


def media_fingerprint(jobs: list, root: Path) -> str:
    """What the store was made from: every media's listed path, size, mtime, labels and splits."""
    return stable_hash([[key, listed(recs[0].path, root), file_stat(recs[0].path),
                         [[r.face, r.label, r.split, r.group] for r in recs]] for key, recs in jobs])


def reuse_official(out: Path, cfg: ExtractConfig, want: dict, mine: set) -> int:
    """A store that differs from a finished one only in split_mode gets that store's per-media results
    (crops hard-linked): splits are applied when the index is assembled, so the crops are the same ones.
    drop_stale then checks them like its own. Saves the leakage ablation a second extraction."""
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
        src, dst = part_path(sibling, key), part_path(out, key)
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


def drop_stale(out: Path, jobs: list, mine) -> int:
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
        part = part_path(out, key)
        if key in mine and part.is_file():
            made = json.loads(part.read_text())
            # Changed on disk, or made before mask crops existed while this media has a mask video.
            if made.get("stat") != file_stat(recs[0].path) or (recs[0].mask_path and made.get("layout") != LAYOUT):
                part.unlink()  # _job empties its crop folder before redoing it
                dropped += 1
    return dropped


def with_defaults(marker: dict) -> dict:
    """A store marker with settings added since it was made filled in at their defaults (which is what
    it was made with), so an upgrade of dflite does not orphan every store."""
    try:
        return {**marker, "config": to_dict(from_dict(ExtractConfig, marker.get("config") or {}))}
    except (TypeError, ValueError):  # settings this dflite does not know: compared as they are
        return marker
