"""A study's job graph on a cluster: each job a process that trains one run and writes its folder, submitted through
submitit (SLURM, or submitit's local executor), each after the jobs it needs.

The single-machine runner (`engine.jobs.run_graph`'s process pool) stays the default. The environment chooses,
so that notebooks run by papermill, `dflite reproduce` and the CLI all follow it without a new parameter:

    DFLITE_EXECUTOR=slurm DFLITE_SLURM="slurm_partition=gpu,timeout_min=240,gpus_per_node=1,cpus_per_task=8" \\
        dflite reproduce --profile standard

`DFLITE_EXECUTOR`: local (default) | slurm | submitit-local (submitit's local executor: a process per job on this
machine, the same path as SLURM's; the tests use it). `DFLITE_SLURM`: submitit parameters as key=value pairs
(numbers are read as numbers). Submitit's own job files (how a job travels to its process: pickles, logs) go to
data/submitit/; the runs themselves are written where the local runner writes them, so a graph can be resumed by
either runner. A job that fails or is killed is submitted once more; if it fails again it is recorded in
data/submitit/failed_jobs.json with what submitit saw, the jobs that need it are recorded as skipped, the rest of
the graph runs on, and a JobError names the first failure at the end.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from .. import paths
from ..progress import bar as progress_bar

EXECUTORS = ("local", "slurm", "submitit-local")


def executor_name() -> str:
    name = os.environ.get("DFLITE_EXECUTOR", "local") or "local"
    if name not in EXECUTORS:
        raise ValueError(f"DFLITE_EXECUTOR={name!r}: expected one of {', '.join(EXECUTORS)}")
    return name


def parameters(text: str | None = None) -> dict:
    """`DFLITE_SLURM`'s "key=value,key=value" as submitit parameters, numbers as numbers."""
    text = os.environ.get("DFLITE_SLURM", "") if text is None else text
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"DFLITE_SLURM: expected key=value pairs separated by commas, got {item!r}")
        try:
            out[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            out[key.strip()] = value.strip()
    return out


def make_executor(name: str, folder, params: dict | None = None):
    """A submitit executor for `name` (slurm | submitit-local) writing its job files under `folder`."""
    import submitit

    cluster = {"slurm": "slurm", "submitit-local": "local"}[name]
    executor = submitit.AutoExecutor(folder=Path(folder) / "%j", cluster=cluster)
    executor.update_parameters(**{"timeout_min": 240, "name": "dflite", **(params or {})})
    return executor


def _said(error: BaseException | None) -> str:
    """What went wrong, in one line: the last line of the job's traceback (submitit's message wraps it between rules
    of dashes and ends with its log files' paths, which stay out of the record), else its message's first line."""
    parts = str(error).split("-" * 22)
    lines = [line.strip() for line in (parts[1] if len(parts) > 2 else parts[0]).splitlines() if line.strip()]
    return (lines[-1] if len(parts) > 2 else lines[0] if lines else type(error).__name__)[:400]


def run_graph_submitted(fn: Callable, jobs: dict, needs: dict, executor, *, order: Callable, parallel: int = 64,
                        retries: int = 1, poll: float = 5.0, progress: bool = True, desc: str = "jobs",
                        record: Path | None = None) -> None:
    """Submit fn(job) for every {key: job} once every key in needs[key] is done, at most `parallel` at a time;
    `order(keys)` sorts the ready keys (engine.jobs: the longest chain first). See the module's docstring for
    what a failure does."""
    from .jobs import JobError

    left, done, running, tries = dict(jobs), set(), {}, {}
    failed: dict = {}   # key -> what submitit said
    skipped: dict = {}  # key -> the failed key it needed
    bar = progress_bar(total=len(jobs), desc=desc, disable=not progress or not jobs)

    def submit(key):
        tries[key] = tries.get(key, 0) + 1
        running[key] = executor.submit(fn, jobs[key])

    while left or running:
        for key in [k for k in left if needs[k] & (set(failed) | set(skipped))]:
            skipped[key] = sorted(needs[key] & (set(failed) | set(skipped)), key=str)[0]
            del left[key]
        for key in order([k for k in left if needs[k] <= done])[:max(parallel - len(running), 0)]:
            del left[key]
            submit(key)
        if not running:
            if left:
                raise RuntimeError(f"jobs wait on each other: {sorted(map(str, left))}")
            break
        time.sleep(poll)
        for key, handle in list(running.items()):
            if not handle.done():
                continue
            del running[key]
            error = handle.exception()
            if error is None:
                done.add(key)
                bar.update()
            elif tries[key] <= retries:
                submit(key)  # killed (pre-empted, out of time) or failed: once more
            else:
                failed[key] = _said(error)
    bar.close()
    if failed:
        if record is not None:
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps(
                {"failed": [{"job": str(k), "tries": tries[k], "said": v} for k, v in failed.items()],
                 "skipped": [{"job": str(k), "needs_failed": str(v)} for k, v in skipped.items()]}, indent=1) + "\n")
        first = next(iter(failed))
        raise JobError(first, RuntimeError(f"failed {tries[first]} times ({failed[first]}); {len(failed)} job(s) "
                                           f"failed, {len(skipped)} skipped, {len(done)} done"
                                           + (f"; see {paths.show(record)}" if record is not None else "")))


def submitted_folder() -> Path:
    return paths.data_dir() / "submitit"
