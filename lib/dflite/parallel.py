"""Process pools: every parallel step of dflite (synthesis, extraction, training jobs, Grad-CAM, video faces)
runs its items through here, in spawned worker processes.

Spawn, not fork: forking a process that already runs OpenCV, FFmpeg or tqdm threads can deadlock, and a
spawned worker starts from a clean interpreter on every platform. Work items and the function must be
picklable (a module-level function and plain data).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from .progress import bar as progress_bar


def spawn_pool(workers: int, initializer: Callable | None = None) -> ProcessPoolExecutor:
    """A pool of `workers` spawned processes (for callers that submit and wait themselves)."""
    return ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=initializer)


def imap(fn: Callable, items: Iterable, workers: int, initializer: Callable | None = None, ordered: bool = True,
         chunksize: int = 1, progress: bool = False, desc: str = "", unit: str = "it") -> Iterator:
    """fn(item) for every item: in this process when `workers` <= 1 or there is one item (the initializer then
    does not run: it tunes worker processes), else in `workers` spawned processes, in order or as they finish.
    A tqdm bar counts finished items when `progress` is set."""
    items = list(items)
    bar = progress_bar(total=len(items), desc=desc, unit=unit, disable=not progress or not items)
    try:
        if workers <= 1 or len(items) <= 1:
            for item in items:
                yield fn(item)
                bar.update()
            return
        with get_context("spawn").Pool(min(workers, len(items)), initializer=initializer) as pool:
            mapped = pool.imap(fn, items, chunksize) if ordered else pool.imap_unordered(fn, items, chunksize)
            for out in mapped:
                yield out
                bar.update()
    finally:
        bar.close()
