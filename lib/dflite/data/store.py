"""The crop store as read back: its index, media, failures and settings, and a light picklable reference to it.

    data/crops/<profile>/[synthetic_]<dataset>_<hash8>/  store.json, index.csv, media.csv, failures.csv,
        summary.json, masks.csv, crops/<media id>/<frame>_<face>.png, masks/...

`StoreRef` is what a training job carries to a worker process: the root and the identity a run records
(dataset adapter, synthetic or real, index fingerprint, extraction settings); `load()` reads the store once
per process.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from .. import paths
from ..config import ExtractConfig, config_hash
from .synth import MARKER as SYNTH_MARKER

MARKER = "store.json"


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
    reused: bool = False    # `extract` found it finished and did nothing (its summary's timings are the old run's)

    @property
    def fingerprint(self) -> str:
        """12 hex digits of index.csv: which crops, labels, splits and boxes (a run records what it read)."""
        return hashlib.sha256((self.root / "index.csv").read_bytes()).hexdigest()[:12]

    def ref(self) -> StoreRef:
        return StoreRef(str(self.root), self.kind, self.synthetic, self.fingerprint, self.config)


@dataclass(frozen=True)
class StoreRef:
    """A finished crop store by reference: what a run's identity records of it, and where to load it from."""

    root: str
    kind: str
    synthetic: bool
    fingerprint: str
    config: dict = field(hash=False)

    def load(self) -> CropStore:
        """The store (read once per process); refused if its index changed since this reference was taken."""
        store = _load_cached(self.root, self.fingerprint)
        if store.fingerprint != self.fingerprint:
            raise RuntimeError(f"crop store {paths.show(self.root)} changed while its runs were planned "
                               f"(index {store.fingerprint}, expected {self.fingerprint}); run the study again")
        return store


@lru_cache(maxsize=4)
def _load_cached(root: str, fingerprint: str) -> CropStore:
    return load_store(root)


def store_dir(profile: str, dataset: str, cfg: ExtractConfig, synthetic: bool = False) -> Path:
    """data/crops/<profile>/[synthetic_]<dataset>_<hash8>: a store per dataset, origin and extraction settings
    (the synthetic FF++ set and a real FF++ download never share a folder)."""
    return paths.data_dir() / "crops" / profile / f"{'synthetic_' if synthetic else ''}{dataset}_{config_hash(cfg)}"


def _synth_marker(root) -> Path:
    return Path(root).resolve().parent / SYNTH_MARKER  # a generated set's roots sit one level below its marker


def is_synthetic(root) -> bool:
    """A dataset root inside a set `dflite synth` generated."""
    return _synth_marker(root).is_file()


def synthetic_profile(root) -> str | None:
    """The profile name a `dflite synth` set was made for (quick, quick-data1, ...), from its marker; None for a
    root that is not inside one. A store of it lives under that name, beside the notebooks' own."""
    return json.loads(_synth_marker(root).read_text()).get("profile") if is_synthetic(root) else None


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
