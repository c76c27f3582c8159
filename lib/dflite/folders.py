"""Output folders dflite owns: a marker file says what made them, so nothing else is ever overwritten."""
from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path


class OutputFolderError(ValueError):
    """The output folder cannot be used (a file, unwritable, or someone else's data)."""


CLI_WAY_OUT = "pass --force to redo it, or choose another --out"


def claim(out: Path, marker: str, want: dict, force: bool, command: str, normalize=None,
          way_out: str = CLI_WAY_OUT) -> str:
    """Decide what to do with `out`: 'new', 'resume', 'reuse' or 'replace'; raise if it is not ours.

    `want` is the marker body for the settings asked for; a folder made with other settings is
    only replaced with force, and a non-empty folder without our marker never is. `normalize` maps
    the marker's body to today's form first (e.g. settings added since, at their defaults). `way_out` is the
    advice given with a refusal, one that works where the caller runs (a notebook has no --force).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"{out} is a file, not a folder; choose another --out")
    probe = out if out.exists() else next((p for p in out.parents if p.exists()), Path("/"))
    if not os.access(probe, os.W_OK):
        raise OutputFolderError(f"{probe} is not writable; choose another --out")
    if not out.exists() or not any(out.iterdir()):
        return "new"
    path = out / marker
    if not path.is_file():
        raise OutputFolderError(
            f"{out} is not empty and was not made by `{command}` (no {marker}); "
            "refusing to write into it. Choose an empty or new folder.")
    try:
        have = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise OutputFolderError(f"{path} is not valid JSON; delete the folder by hand if it is yours") from None
    if force:
        return "replace"
    if normalize:
        have = normalize(have)
    refuse_other({k: have.get(k) for k in want}, want, f"{out} holds output of `{command}` that was", way_out)
    return "reuse" if have.get("complete") else "resume"


def refuse_other(have: dict, want: dict, what: str, way_out: str, error=OutputFolderError) -> None:
    """Raise `error` naming every field where what a folder (or file) was made with differs from what is asked
    for, with the way out that works where the user is: the one refusal of crop stores, synthetic sets, runs
    and detection reports."""
    differ = differences(have, want)
    if differ:
        raise error(f"{what} made with other settings ({describe(differ)}); {way_out}")


def remake_advice(out) -> str:
    """The way out of a refused folder that a study generated itself (a notebook cannot pass --force): delete it,
    with the path as seen from where this runs (a notebook runs in notebooks/), and run again."""
    return (f"it is generated, so it can be remade: delete it (in Python: import shutil; "
            f"shutil.rmtree({os.path.relpath(out)!r})) and run this again")


def differences(have: dict, want: dict, prefix: str = "") -> list:
    """[(dotted key, have, want)] where two nested dicts differ."""
    out = []
    for k in sorted(set(have) | set(want)):
        a, b = have.get(k), want.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append((f"{prefix}{k}", a, b))
    return out


def describe(differ: list, limit: int = 6) -> str:
    """'key: folder has X, asked for Y; ...' for a mismatch message (the first `limit` of them)."""
    text = "; ".join(f"{k}: folder has {a!r}, asked for {b!r}" for k, a, b in differ[:limit])
    return text + (f" (and {len(differ) - limit} more)" if len(differ) > limit else "")


def clear(out: Path, owned) -> None:
    """Delete the named top-level entries of a folder we own (and nothing else in it)."""
    for name in owned:
        p = Path(out) / name
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


def write_marker(out: Path, marker: str, body: dict) -> None:
    write_json(Path(out) / marker, body)


@contextmanager
def atomic(path, keep_suffix: bool = False):
    """Yield a temporary path beside `path` and move it into place when the block ends without an error: a
    killed run never leaves half a file that looks finished. The temporary name holds the process id (shards
    may write the same file) and ends in .part, so no glob for the real files finds it; `keep_suffix` keeps
    the suffix last instead, for writers that choose the format by it (ffmpeg)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.part{path.suffix}" if keep_suffix else
                         f"{path.name}.{os.getpid()}.part")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, obj) -> None:
    with atomic(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1))


def write_bytes(path: Path, data: bytes) -> None:
    with atomic(path) as tmp:
        tmp.write_bytes(data)


def write_png(path: Path, img, fast: bool = False) -> None:
    """Encode and write a PNG atomically; `fast` trades file size for speed (lossless either way)."""
    import cv2

    params = [cv2.IMWRITE_PNG_COMPRESSION, 1] if fast else []
    ok, buf = cv2.imencode(".png", img, params)
    if not ok:
        raise ValueError(f"could not encode {path} as PNG")
    write_bytes(path, buf.tobytes())
