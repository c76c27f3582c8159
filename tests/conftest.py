"""Shared fixtures: a tiny synthetic set generated once per test session, data dir in tmp."""
from __future__ import annotations

import pytest
from dflite.config import SynthConfig, override

TINY = override(SynthConfig(), identities=4, frames=6, of_images=(3, 1, 1, 1), compressions=("c23",))


@pytest.fixture(autouse=True)
def _isolated_data(tmp_path, monkeypatch):
    """Tests never write into the project's data/ folder."""
    monkeypatch.setenv("DFLITE_DATA", str(tmp_path / "data"))


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory):
    from dflite.data.synth import generate

    out = tmp_path_factory.mktemp("synth") / "tiny"
    return generate(out, profile="quick", seed=3, cfg=TINY, workers=1, progress=False)


@pytest.fixture(scope="session")
def train_store(tmp_path_factory):
    """A crop store with train, val and test videos (3 identity pairs), 32 px crops."""
    from dflite.config import ExtractConfig
    from dflite.data.extract import extract
    from dflite.data.synth import generate

    base = tmp_path_factory.mktemp("trainset")
    cfg = override(TINY, identities=6, of_images=(1, 1, 1, 1))
    data = generate(base / "synth", seed=11, cfg=cfg, workers=1, progress=False)
    return extract("ffpp", data.ffpp_root, base / "store", ExtractConfig(frames=4, size=32), workers=1, progress=False)
