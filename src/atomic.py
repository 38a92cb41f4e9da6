"""Atomic writes: a killed stage never leaves a half-written file that looks valid.

Everything is written to a temporary sibling (`.<name>.*.tmp`) and moved into place with
os.replace, which is atomic on one filesystem. A stage killed with `kill -9` cannot clean up,
so every writer first removes the temporary siblings a killed writer of the same path left
(DVC never runs two stages at once, so they cannot belong to a live writer). Scratch space
(DuckDB's spill) lives in the project's ignored `.tmp/` folder, never in the system's.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


SCRATCH = Path(".tmp")  # relative to the project root, where DVC runs every stage


def remove_stale(path: Path) -> None:
    """Remove what a killed writer of `path` left beside it."""
    for debris in [*path.parent.glob(f".{path.name}.*.tmp"), path.with_name(f".{path.name}.old")]:
        if debris.is_dir() and not debris.is_symlink():
            shutil.rmtree(debris, ignore_errors=True)
        else:
            debris.unlink(missing_ok=True)


def _running(pid: str) -> bool:
    """Whether a process with this pid is running (a folder name without one counts as not)."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@contextlib.contextmanager
def scratch_dir(name: str) -> Iterator[Path]:
    """A private scratch folder `.tmp/<name>-<pid>`; removed afterwards, and at the start the
    stale ones of killed runs (a pid no longer running; a concurrent run's folder is kept)."""
    SCRATCH.mkdir(exist_ok=True)
    for stale in SCRATCH.glob(f"{name}-*"):
        if not _running(stale.name.rsplit("-", 1)[-1]):
            shutil.rmtree(stale, ignore_errors=True)
    folder = (SCRATCH / f"{name}-{os.getpid()}").absolute()
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(
            tmp, 0o666 & ~_umask()
        )  # mkstemp makes owner-only files; outputs are meant to be shared
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces the folder `path` whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)


def json_numbers(obj, digits: int = 6):
    """Plain JSON values for reports: floats rounded to `digits` (stable diffs), NaN/inf -> null,
    numpy scalars -> Python, dict keys -> str; lists, tuples and dicts are walked."""
    if isinstance(obj, dict):
        return {str(key): json_numbers(value, digits) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_numbers(value, digits) for value in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return round(float(obj), digits) if math.isfinite(obj) else None
    return obj


def write_json(path: str | Path, obj) -> None:
    """Deterministic JSON: sorted keys, fixed indent, UTF-8, trailing newline."""
    write_text(
        path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    )


def write_parquet(path: str | Path, frame: pd.DataFrame) -> None:
    """Parquet without the pandas index, byte-identical for identical frames."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")
