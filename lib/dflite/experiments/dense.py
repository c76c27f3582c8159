"""Dense runs: a registry model trained with a recipe on a crop store at a seed.

Notebook 02 trains them (stage `baseline`); the structured study's reference, student and teacher and
notebook 07's detectors are the same runs, read back, never retrained.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .. import paths
from ..config import TrainConfig, config_hash
from ..data.store import StoreRef
from ..engine.runs import Run, train_run
from ..engine.train import RunResult, fit, input_size, read_result, seeded_model
from ..nets.models import count_parameters, create_model


def relative(profile: str, run: Run) -> str:
    """A run's folder as results tables show it: relative to data/runs/<profile>/ (no machine paths)."""
    return run.dir.relative_to(paths.runs_dir(profile)).as_posix()


@dataclass(frozen=True)
class Dense:
    """A registry model trained from its seed with `cfg` on `store` (labelled `dataset` in run names)."""

    profile: str
    model: str
    dataset: str
    store: StoreRef
    cfg: TrainConfig
    seed: int
    stage: str = "baseline"
    needs = ()

    @property
    def key(self) -> tuple:
        return ("dense", self.stage, self.model, self.dataset, config_hash(self.cfg), self.store.fingerprint, self.seed)

    @cached_property
    def weight(self) -> float:
        """Rough relative training time (parameters x images x pixels): the long runs start first."""
        images, px = self.cfg.epochs * (self.cfg.epoch_size or 3000), self.cfg.input_size or 224
        return count_parameters(create_model(self.model, input_size=self.cfg.input_size or None)) ** 0.5 * \
            images * px ** 2

    def settings(self) -> dict:
        """The stage's own settings in the run's identity (none for a plain dense run)."""
        return {}

    def data(self):
        """The crop store the run trains on."""
        return self.store.load()

    def run(self) -> Run:
        return train_run(self.profile, self.stage, self.model, self.dataset, self.cfg, self.store, self.seed,
                         input_size(self.cfg, self.model), settings=self.settings())

    def done(self) -> bool:
        return self.run().finished

    def train(self, progress: bool = False) -> RunResult:
        return fit(seeded_model(self.model, self.cfg, self.seed), self.data(), self.cfg, self.run(), progress=progress)

    def result(self) -> RunResult:
        return read_result(self.run())

    def row(self) -> dict:
        r = self.result()
        return {"model": self.model, "seed": self.seed, "input_px": r.input_size,
                "run": relative(self.profile, self.run()), **r.metrics}
