"""The job graph through submitit (engine.cluster): its local executor runs the same path as SLURM's, a process per
job, each after the jobs it needs, and gives what the local runner gives; a killed job is submitted again, a failing
one recorded with what it needs skipped."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch
from dflite.config import TrainConfig
from dflite.engine import cluster
from dflite.engine.jobs import JobError, run_jobs
from dflite.experiments import lottery
from safetensors.torch import load_file

pytest.importorskip("submitit")
CFG = TrainConfig(input_size=32, epochs=2, epoch_size=64, batch_size=16, warmup_epochs=1)


def _submitted(monkeypatch, data):
    monkeypatch.setenv("DFLITE_DATA", str(data))
    monkeypatch.setenv("DFLITE_EXECUTOR", "submitit-local")
    monkeypatch.setenv("DFLITE_POLL_S", "0.2")


def test_a_two_level_ticket_graph_through_submitit_gives_what_the_local_runner_gives(train_store, tmp_path,
                                                                                     monkeypatch):
    ticket = lottery.Ticket("quick", "cnn5", "tiny", train_store.ref(), CFG, 0, (0.2,))
    jobs = ticket.jobs(("imp", "oneshot"))  # the dense run, then two level-1 runs that need it
    assert {job.needs for job in jobs[1:]} == {(jobs[0].key,)}

    def rows_and_weights(data):
        rows = pd.DataFrame([job.row() for job in jobs])
        weights = {p.relative_to(data): load_file(p) for p in sorted(Path(data).rglob("*.safetensors"))}
        return rows, weights

    monkeypatch.setenv("DFLITE_DATA", str(tmp_path / "local"))
    run_jobs(jobs, workers=1, progress=False)
    local_rows, local_weights = rows_and_weights(tmp_path / "local")

    _submitted(monkeypatch, tmp_path / "cluster")
    run_jobs(jobs, workers=1, progress=False)
    rows, weights = rows_and_weights(tmp_path / "cluster")
    pd.testing.assert_frame_equal(rows, local_rows)
    assert local_weights and weights.keys() == local_weights.keys()
    for name, tensors in weights.items():  # tensor by tensor: the files' metadata hold each run's seconds
        assert tensors.keys() == local_weights[name].keys(), name
        assert all(torch.equal(t, local_weights[name][k]) for k, t in tensors.items()), f"{name}: other weights"
    assert (tmp_path / "cluster" / "submitit").is_dir()  # submitit's job files, beside the runs, not in them


@dataclass
class Toy:
    """A job that writes a file; `mode` makes it die once (a kill: the process exits) or always fail."""

    name: str
    folder: str
    mode: str = "ok"
    needs: tuple = ()

    @property
    def key(self):
        return (self.name,)

    def done(self):
        return (Path(self.folder) / f"{self.name}.done").is_file()

    def train(self):
        folder = Path(self.folder)
        if self.mode == "killed_once" and not (folder / f"{self.name}.tried").is_file():
            (folder / f"{self.name}.tried").touch()
            os._exit(9)
        if self.mode == "fails":
            raise ValueError(f"job {self.name}: a bad input")
        (folder / f"{self.name}.done").write_text("ok")

    def row(self):
        return {"name": self.name}


def test_a_killed_job_runs_again_and_a_failing_one_is_recorded_with_what_needs_it(tmp_path, monkeypatch):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the job's process cannot import this test module
    _submitted(monkeypatch, tmp_path)
    f = str(tmp_path)
    jobs = [Toy("a", f, "killed_once"), Toy("b", f, needs=(("a",),)), Toy("c", f, "fails"),
            Toy("d", f, needs=(("c",),)), Toy("e", f)]
    with pytest.raises(JobError, match=r"job \('c',\) failed: .*failed 2 times.*a bad input.*1 job\(s\) failed, "
                                       r"1 skipped, 3 done"):
        run_jobs(jobs, workers=1, progress=False)
    assert [job.done() for job in jobs] == [True, True, False, False, True]
    record = json.loads((tmp_path / "submitit" / "failed_jobs.json").read_text())
    assert [(r["job"], r["tries"]) for r in record["failed"]] == [("('c',)", 2)] and "a bad input" in \
        record["failed"][0]["said"]
    assert record["skipped"] == [{"job": "('d',)", "needs_failed": "('c',)"}]
    run_jobs(jobs[:2] + jobs[4:], workers=1, progress=False)  # all done: nothing is submitted


def test_the_executor_and_its_parameters_are_checked():
    assert cluster.parameters("slurm_partition=gpu, timeout_min=120,gpus_per_node=1, mem_gb=7.5") == {
        "slurm_partition": "gpu", "timeout_min": 120, "gpus_per_node": 1, "mem_gb": 7.5}
    with pytest.raises(ValueError, match="key=value"):
        cluster.parameters("gpu")
    os.environ["DFLITE_EXECUTOR"] = "kubernetes"
    try:
        with pytest.raises(ValueError, match="DFLITE_EXECUTOR='kubernetes': expected one of local, slurm"):
            cluster.executor_name()
    finally:
        del os.environ["DFLITE_EXECUTOR"]
