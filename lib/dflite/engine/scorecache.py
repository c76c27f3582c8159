"""Scores a study computed from finished runs, kept so that re-executing its notebook does not score them again.

Notebooks 07 and 08 spend most of a re-execution (make test's nbval after `make reproduce`, `dflite reproduce` over
trained runs) scoring thousands of crops with dozens of nets that have not changed. `cached(...)` keeps those
arrays in data/runs/<profile>/cache/<name>.safetensors with a key over everything they depend on: the study's
settings, each net's weights (sha256), the input pixels (sha256), dflite's own source code and the libraries'
versions. The same key reads the arrays back bit for bit; any other key scores again and replaces the file (the
cache is dflite's own, never a user's file), so a stale score is never reused.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .. import paths
from ..folders import atomic
from .runs import versions

KEY = "dflite_key"


@lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 over dflite's own source files: a score made by other code is not this code's score."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def file_digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def text_digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def array_digest(*arrays) -> str:
    """sha256 over arrays' shapes, dtypes and bytes (crops in memory: the pixels the nets score)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.data)
    return h.hexdigest()[:16]


def cached(profile: str, name: str, key: dict, compute: Callable[[], dict]) -> dict:
    """{name: array} from `compute()`, or from data/runs/<profile>/cache/<name>.safetensors when its key is `key`
    plus this code and these library versions. `key` must name everything else the arrays depend on (settings,
    weights, inputs)."""
    return cached_at(paths.runs_dir(profile) / "cache" / f"{name}.safetensors", key, compute)


def cached_at(path: Path, key: dict, compute: Callable[[], dict]) -> dict:
    """`cached` in the file `path`."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    full = hashlib.sha256(json.dumps({**key, "code": code_digest(), "versions": versions()}, sort_keys=True,
                                     default=str).encode()).hexdigest()
    if path.is_file():
        try:
            with safe_open(str(path), "np") as f:
                if (f.metadata() or {}).get(KEY) == full:
                    return {k: f.get_tensor(k) for k in f.keys()}
        except Exception:  # noqa: BLE001 - a damaged cache file is scored again and replaced
            pass
    arrays = {k: np.ascontiguousarray(v) for k, v in compute().items()}
    with atomic(path, keep_suffix=True) as tmp:
        save_file(arrays, str(tmp), metadata={KEY: full})
    return arrays


def cached_frame(profile: str, name: str, key: dict, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """`cached` for a table: each column kept as an array (text columns as their JSON), read back with the same
    columns, order and dtypes, every float bit for bit."""
    def arrays() -> dict:
        frame = compute()
        # text columns: their dtype's name (object, or pandas' str), numeric columns: None (the array keeps it)
        text = [None if frame[c].dtype.kind in "biuf" else str(frame[c].dtype) for c in frame.columns]
        out = {"columns": _text([[str(c), t] for c, t in zip(frame.columns, text)])}
        for i, (column, dtype) in enumerate(zip(frame.columns, text)):
            out[f"c{i}"] = frame[column].to_numpy() if dtype is None else _text(frame[column].tolist())
        return out

    got = cached(profile, name, key, arrays)
    columns = json.loads(got["columns"].tobytes())
    return pd.DataFrame({c: got[f"c{i}"] if dtype is None else pd.Series(json.loads(got[f"c{i}"].tobytes()),
                                                                         dtype=dtype)
                         for i, (c, dtype) in enumerate(columns)})


def _text(values: list) -> np.ndarray:
    return np.frombuffer(json.dumps(values).encode(), dtype=np.uint8)
