"""Jobs and their runner: every training run of a study is a job of one small protocol, and `run_jobs` trains
what is missing, each after the jobs it needs, a few at a time in spawned processes.

A job (`Job`) is a picklable object with

- `key`: a tuple naming its run within the graph (two jobs with one key are one run, trained once);
- `needs`: the keys of the jobs whose finished runs it builds on (a lottery level needs the level before);
- `done()`: its run is finished on disk;
- `train()`: train it (or read it back when finished) and return its `RunResult`;
- `row()`: its row of the study's results table, read from the finished run;
- optionally `weight`: a rough cost, so that among jobs ready at once the longest start first.

Jobs whose work is on disk are not run; the rest run in `workers` processes (in this process when 1; one on
a GPU, where a run has the whole device), the longest chain first. When a job fails, nothing new starts, the
running jobs finish (their checkpoints survive for the next call) and the first error is raised with the
key of the job it came from.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from typing import Protocol

from ..parallel import spawn_pool
from ..progress import bar as progress_bar


class Job(Protocol):
    key: tuple
    needs: tuple

    def done(self) -> bool: ...

    def train(self): ...

    def row(self) -> dict: ...


class JobError(RuntimeError):
    """A job of a graph failed; `key` names it."""

    def __init__(self, key, error: BaseException):
        super().__init__(f"job {key} failed: {type(error).__name__}: {error}")
        self.key = key


def _depth(key, needs: dict, memo: dict) -> int:
    """Jobs in the longest chain that starts at `key` and goes through what waits on it."""
    if key not in memo:
        after = [k for k, deps in needs.items() if key in deps]
        memo[key] = 1 + max((_depth(k, needs, memo) for k in after), default=0)
    return memo[key]


def graph_needs(jobs: dict, needs: dict | None) -> dict:
    """{key: the keys it waits on}, only those among `jobs` (the others' work is on disk)."""
    return {k: {d for d in (needs or {}).get(k, ()) if d in jobs} for k in jobs}


def ordering(jobs: dict, needs: dict, weight: Callable | None = None) -> Callable:
    """A function that sorts ready keys: the longest chain first, then the heaviest by `weight(job)`, then the
    order given."""
    memo: dict = {}
    return lambda keys: sorted(keys, key=lambda k: (-_depth(k, needs, memo), -(weight(jobs[k]) if weight else 0)))


def run_graph(fn: Callable, jobs: dict, needs: dict | None = None, *, workers: int, progress: bool = True,
              desc: str = "jobs", weight: Callable | None = None) -> None:
    """Call fn(job) for every {key: job} once every key in needs[key] is done.

    `fn` must be importable (a module-level function) and `job` picklable: spawned workers get both.
    A key in needs that is not in `jobs` counts as done (its work was found on disk). Among ready jobs the
    longest chain goes first, then the heaviest by `weight(job)`, then the order given.
    """
    needs = graph_needs(jobs, needs)
    order = ordering(jobs, needs, weight)
    left, done, running = dict(jobs), set(), {}
    bar = progress_bar(total=len(jobs), desc=desc, disable=not progress or not jobs)

    def ready():
        return order([k for k in left if needs[k] <= done])

    if workers <= 1:
        while left:
            keys = ready()
            if not keys:
                raise RuntimeError(f"jobs wait on each other: {sorted(map(str, left))}")
            key = keys[0]
            try:
                fn(left.pop(key))
            except Exception as e:  # noqa: BLE001 - re-raised with the job's key
                raise JobError(key, e) from e
            done.add(key)
            bar.update()
        bar.close()
        return
    failed = None
    with spawn_pool(workers) as pool:
        while left or running:
            while failed is None and len(running) < workers and (keys := ready()):
                key = keys[0]
                running[pool.submit(fn, left.pop(key))] = key
            if not running:
                if failed is None:
                    raise RuntimeError(f"jobs wait on each other: {sorted(map(str, left))}")
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                key = running.pop(future)
                error = future.exception()
                if error is not None:
                    failed = failed or (key, error)
                else:
                    done.add(key)
                    bar.update()
    bar.close()
    if failed is not None:
        raise JobError(*failed) from failed[1]


def train_job(job: Job) -> None:
    """Worker entry: train one job (its result stays on disk; nothing travels back but errors)."""
    job.train()


def job_weight(job) -> float:
    return getattr(job, "weight", 0)


def unique(jobs) -> dict:
    """{key: job}, the first job of each key (a run several arms share is one job)."""
    out: dict = {}
    for job in jobs:
        out.setdefault(job.key, job)
    return out


def run_jobs(jobs, workers: int, progress: bool = True, desc: str = "runs") -> None:
    """Train every job whose run is not finished, each after the jobs it needs (those already finished count as
    done): `workers` processes on the CPU, one on a GPU; or each job submitted to a cluster when DFLITE_EXECUTOR
    says so (engine.cluster)."""
    import torch

    from . import cluster

    todo = {k: job for k, job in unique(jobs).items() if not job.done()}
    needs = {k: set(job.needs) for k, job in todo.items()}
    name = cluster.executor_name()
    if name != "local":
        if todo:
            waits, folder = graph_needs(todo, needs), cluster.submitted_folder()
            executor = cluster.make_executor(name, folder, cluster.parameters())
            cluster.run_graph_submitted(train_job, todo, waits, executor, order=ordering(todo, waits, job_weight),
                                        progress=progress, desc=desc, record=folder / "failed_jobs.json",
                                        poll=float(os.environ.get("DFLITE_POLL_S", 5)))
        return
    run_graph(train_job, todo, needs, workers=1 if torch.cuda.is_available() else workers, progress=progress,
              desc=desc, weight=job_weight)
