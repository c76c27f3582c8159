"""Run a graph of training jobs, each after the jobs it needs, a few at a time in spawned processes.

A study with dependent runs (a lottery ticket's level L needs level L-1) hands over every job with
the keys it waits for. Jobs whose work is already on disk are skipped by the caller; the rest run in
`workers` processes (in this process when 1), the longest chain first. When a job fails, nothing new
starts, the running jobs finish (their checkpoints survive for the next call) and the first error is
raised with the job it came from.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context

from tqdm import tqdm


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


def run_graph(fn: Callable, jobs: dict, needs: dict | None = None, workers: int = 2, progress: bool = True,
              desc: str = "jobs") -> None:
    """Call fn(job) for every {key: job} once every key in needs[key] is done.

    `fn` must be importable (a module-level function) and `job` picklable: spawned workers get both.
    A key in needs that is not in `jobs` counts as done (its work was found on disk).
    """
    needs = {k: {d for d in (needs or {}).get(k, ()) if d in jobs} for k in jobs}
    memo: dict = {}
    left, done, running = dict(jobs), set(), {}
    bar = tqdm(total=len(jobs), desc=desc, disable=not progress)

    def ready():
        keys = [k for k in left if needs[k] <= done]
        return sorted(keys, key=lambda k: -_depth(k, needs, memo))

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
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:  # spawn: see extract.py
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


def run_missing(fn: Callable, plans, done: Callable, workers: int = 2, progress: bool = True,
                desc: str = "jobs") -> None:
    """Run the jobs of every (jobs, needs) plan in `plans` whose work is not on disk yet (`done(job)` is
    False), each after what it needs: `workers` processes on the CPU, one on a GPU (a run there has
    the whole device)."""
    import torch

    jobs, needs = {}, {}
    for planned, waits in plans:
        todo = {k: job for k, job in planned.items() if not done(job)}
        jobs.update(todo)
        needs.update({k: waits[k] for k in todo})
    run_graph(fn, jobs, needs, workers=1 if torch.cuda.is_available() else workers, progress=progress, desc=desc)
