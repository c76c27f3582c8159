"""Run folders: one module names them, claims them, records what made them and writes results tables.

    data/runs/<profile>/<stage>_<model>_<dataset>_<hash8>/seed_<s>/[level_<L>/]

The hash covers the training settings that differ from the defaults, the extraction settings, the
stage's own settings (a lottery level's sparsity, a distillation's alpha) and the fingerprint of
the crop store the run read. `config.json` holds the same identity in full; a folder whose
identity differs from the one asked for is refused with the fields that differ, never reused.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import paths
from ..config import ExtractConfig, TrainConfig, from_dict, non_defaults, stable_hash, to_dict
from ..folders import atomic, refuse_other, write_json

CONFIG = "config.json"
FINISHED = "test_metrics.json"  # written last: its presence means the run is complete


class RunMismatchError(ValueError):
    """A run folder holds a run made with other settings or other data."""


def data_identity(store, dataset: str) -> dict:
    """What a run read: the dataset label, the adapter (kind), synthetic or real, the extraction
    settings and the fingerprint of the crop store's index."""
    return {"dataset": dataset, "kind": store.kind, "synthetic": bool(store.synthetic),
            "fingerprint": store.fingerprint, "extract": store.config}


@dataclass(frozen=True)
class Run:
    """One run folder and the identity it must hold."""

    dir: Path
    identity: dict = field(hash=False)

    @property
    def finished(self) -> bool:
        return (self.dir / FINISHED).is_file()

    def level(self, level: int) -> Run:
        """The sub-run of an iterative study (a pruning round): `level_<L>/` with the level in its identity."""
        return Run(self.dir / f"level_{level}", {**self.identity, "level": level})

    def path(self, name: str) -> Path:
        return self.dir / name

    def claim(self) -> str:
        """'new', 'resume' or 'finished'; RunMismatchError if the folder holds another run, or files
        that are no run at all."""
        have_path = self.dir / CONFIG
        if not have_path.is_file():
            if self.dir.is_dir() and any(p.name != "env.json" and not p.name.startswith("level_")
                                         for p in self.dir.iterdir()):
                raise RunMismatchError(f"{paths.show(self.dir)} holds files but no {CONFIG}: not a dflite run; "
                                       "move it away or choose another profile")
            return "new"
        try:
            have = json.loads(have_path.read_text())
        except json.JSONDecodeError:
            raise RunMismatchError(f"{paths.show(have_path)} is not valid JSON; delete the run folder") from None
        refuse_other(_today(have), _today(self.identity), f"run folder {paths.show(self.dir)} was",
                     "delete it or choose another profile", RunMismatchError)
        return "finished" if self.finished else "resume"

    def start(self, env: dict) -> None:
        """Write config.json (the identity) and env.json (versions, commit, device) of a new or resumed run."""
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json(self.dir / CONFIG, self.identity)
        write_json(self.dir / "env.json", env)


def _today(identity: dict) -> dict:
    """A run's recorded identity with settings added since it was made filled in at their defaults
    (what it was made with: defaults never rename a run), so an upgrade of dflite orphans no run."""
    out = json.loads(json.dumps(identity))
    try:
        if isinstance(out.get("train"), dict):
            out["train"] = to_dict(from_dict(TrainConfig, out["train"]))
        data = out.get("data")
        if isinstance(data, dict) and isinstance(data.get("extract"), dict):
            data["extract"] = to_dict(from_dict(ExtractConfig, data["extract"]))
    except (TypeError, ValueError):  # settings this dflite does not know: compared as they are
        return identity
    return out


def run_hash(cfg: TrainConfig, extract: dict, settings: dict, fingerprint: str) -> str:
    """8 hex digits over the non-default training settings, the extraction settings, the stage's
    settings and the data fingerprint (a new field with a default renames no run)."""
    blob = {"train": non_defaults(cfg), "extract": non_defaults(from_dict(ExtractConfig, extract)), "data": fingerprint}
    if settings:
        blob["settings"] = settings
    return stable_hash(blob)


def train_run(profile: str, stage: str, model: str, dataset: str, cfg: TrainConfig, store, seed: int,
              input_size: int, settings: dict | None = None, folder=None) -> Run:
    """The run of `model` trained with `cfg` on `store` (labelled `dataset`) at `seed`, for `stage`.

    `settings` are the stage's own (e.g. {"sparsity": 0.8, "method": "imp"}): JSON values only.
    `folder` puts the run somewhere else than its named folder (`dflite train --out`).
    """
    settings = json.loads(json.dumps(settings or {}))
    data = data_identity(store, dataset)
    name = f"{stage}_{model}_{dataset}_{run_hash(cfg, data['extract'], settings, data['fingerprint'])}"
    identity = {"stage": stage, "model": model, "input_size": input_size, "seed": seed, "train": to_dict(cfg),
                "data": data, "settings": settings}
    return Run(Path(folder) if folder else paths.runs_dir(profile) / name / f"seed_{seed}", identity)


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; the platform's processor string elsewhere)."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_has_bf16() -> bool:
    """The CPU computes bf16 natively (AVX-512 BF16 or AMX). Elsewhere oneDNN emulates it, often slower than fp32."""
    import torch  # when called, as env_info does

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # private helpers of torch.cpu: absent in some builds
        return False


def versions() -> dict:
    """The versions numbers depend on: Python, the libraries that compute them, and the CPU they ran on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("torch", "torchvision", "timm", "torch-pruning", "grad-cam", "opencv-python-headless", "numpy",
                    "scipy", "scikit-learn", "pandas", "onnxruntime"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return {**out, "cpu": cpu_model(), "cpu_count": os.cpu_count(), "cpu_bf16": cpu_has_bf16()}


def env_info(device, world: int = 1) -> dict:
    """Versions, CPU, commit and device (no host names or paths)."""
    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.ROOT, capture_output=True, text=True,
                                timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {**versions(), "git_commit": commit,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "torch_threads": torch.get_num_threads(), "world_size": world}


def results_path(profile: str, name: str) -> Path:
    return paths.runs_dir(profile) / "results" / f"{name}.csv"


def write_results(profile: str, name: str, table: pd.DataFrame) -> Path:
    """data/runs/<profile>/results/<name>.csv (4 decimals; a missing number is `nan`, an empty id stays empty);
    returns the path. A file that would not change is left as it is, so its time says when its numbers last
    changed (`report.publish` compares it with the reproduce run's)."""
    path = results_path(profile, name)
    text = table.round(4).to_csv(na_rep="nan")
    if path.is_file() and path.read_text() == text:
        return path
    with atomic(path) as tmp:
        tmp.write_text(text)
    return path
