"""The built-in synthetic forensic dataset: FF++-style videos and OpenForensics-style scenes.

``generate(out, profile)`` writes both under ``out/ffpp`` and ``out/openforensics`` with ground-truth
face boxes and manipulation masks, deterministically for a seed. A marker file records what made the
folder, so a finished set is reused, an interrupted one resumes, and a folder dflite did not make is
never touched.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import cv2

from ... import __version__
from ...config import OF_SPLITS, SynthConfig, to_dict
from ...folders import CLI_WAY_OUT, OutputFolderError, claim, clear, write_marker
from ...parallel import imap
from ..sources import inspect_ffpp, inspect_openforensics
from . import ffpp, openforensics

__all__ = ["MARKER", "OutputFolderError", "SynthSummary", "generate"]

MARKER = "dflite_synth.json"
OWNED = ("ffpp", "openforensics", MARKER)  # everything generate() writes at the top level


@dataclass
class SynthSummary:
    """What a synthetic dataset folder holds (the same whether just made or reused)."""

    root: Path
    ffpp: dict
    openforensics: object  # DataFrame: images/faces per split

    @property
    def ffpp_root(self) -> Path:
        return self.root / "ffpp"

    @property
    def openforensics_root(self) -> Path:
        return self.root / "openforensics"


def _marker_body(cfg: SynthConfig, seed: int, profile: str) -> dict:
    return {"made_by": "dflite", "profile": profile, "seed": seed, "config": to_dict(cfg)}


def _ffpp_job(args):
    root, seed, t, cfg = args
    ffpp.render_target(root, seed, t, cfg)


def _of_job(args):
    root, seed, split, i, cfg = args
    openforensics.render_image(root, seed, split, i, cfg)


def _init_worker():
    cv2.setNumThreads(1)  # processes give the parallelism; threads inside would oversubscribe


def generate(out, profile: str = "quick", seed: int = 0, force: bool = False, workers: int | None = None,
             progress: bool = True, cfg: SynthConfig | None = None, way_out: str = CLI_WAY_OUT) -> SynthSummary:
    """Write (or reuse) the synthetic FF++ and OpenForensics sets under `out`, made with `cfg` (the quick
    profile's when None); `profile` names the profile the set is for in its marker. `way_out`: the advice
    given if `out` was made with other settings."""
    out = Path(out)
    cfg = cfg or SynthConfig()
    if cfg.identities < 2 or cfg.identities % 2:
        raise ValueError(f"identities must be an even number >= 2 (FF++ fakes pair them), got {cfg.identities}")
    want = _marker_body(cfg, seed, profile)
    action = claim(out, MARKER, want, force, "dflite synth", way_out=way_out)
    if action == "replace":
        clear(out, OWNED)
    if action != "reuse":
        write_marker(out, MARKER, {**want, "complete": False, "version": __version__})
        started = time.perf_counter()
        ff_root, of_root = out / "ffpp", out / "openforensics"
        jobs = [(_ffpp_job, (ff_root, seed, t, cfg)) for t in range(cfg.identities)]
        jobs += [(_of_job, (of_root, seed, split, i, cfg))
                 for split, n in zip(OF_SPLITS, cfg.of_images) for i in range(n)]
        n_workers = workers or min(os.cpu_count() or 1, 8)
        for fn in (_ffpp_job, _of_job):
            for _ in imap(fn, [a for f, a in jobs if f is fn], n_workers, _init_worker, ordered=False, chunksize=2,
                          progress=progress, desc=f"synth {'ffpp' if fn is _ffpp_job else 'openforensics'}",
                          unit="item"):
                pass
        ffpp.write_splits(ff_root, seed, cfg)
        for split, n in zip(OF_SPLITS, cfg.of_images):
            openforensics.write_annotations(of_root, seed, split, n)
        seconds = round(time.perf_counter() - started, 1)
        write_marker(out, MARKER, {**want, "complete": True, "version": __version__, "seconds": seconds})
    return SynthSummary(root=out, ffpp=inspect_ffpp(out / "ffpp"),
                        openforensics=inspect_openforensics(out / "openforensics"))
