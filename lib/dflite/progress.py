"""Progress bars that read well wherever they are shown.

On a terminal a bar is tqdm's, redrawn in place. Anywhere else (a notebook cell, papermill passing a cell's
output on to the `make reproduce` log, a file) a redrawn bar is a screen of carriage returns or nothing at all,
so there the bar prints one plain line at most every `LINE_EVERY` seconds and a last one when it ends:

    lottery runs: 18/40 (45 %), 04:10 so far, about 05:06 left
"""
from __future__ import annotations

import sys

from tqdm import tqdm

LINE_EVERY = 20.0  # seconds between two lines of one bar off a terminal


class _Lines:
    """A file for tqdm that turns each redraw ("\\r" + bar) into one line and drops blank redraws (a cleared
    bar), so that a log holds whole lines."""

    def __init__(self, stream):
        self.stream, self.last = stream, None

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        count = line.rsplit(", ", 2)[0]  # the line without its times (a description may hold commas)
        if line and count != self.last:  # the closing redraw repeats the last count
            self.stream.write(line + "\n")
            self.last = count

    def flush(self) -> None:
        self.stream.flush()


def _terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream: not a terminal
        return False


def bar(iterable=None, *, desc: str = "", total=None, unit: str = "it", disable: bool = False, leave: bool = True,
        stream=None, **kwargs) -> tqdm:
    """tqdm's bar on a terminal; plain lines elsewhere (see the module's text). Arguments as tqdm's."""
    stream = stream or sys.stderr
    if _terminal(stream):
        return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable, leave=leave, file=stream, **kwargs)
    known = total is not None or hasattr(iterable, "__len__")
    line = "{desc}: {n_fmt}/{total_fmt} ({percentage:.0f} %), {elapsed} so far, about {remaining} left" if known \
        else "{desc}: {n_fmt} {unit}, {elapsed} so far"
    # Off a terminal every bar leaves its last line: a cleared bar says nothing in a log.
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable, leave=True, file=_Lines(stream),
                mininterval=LINE_EVERY, maxinterval=LINE_EVERY, bar_format=line, **kwargs)
