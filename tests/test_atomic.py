"""Atomic writes leave nothing half-written, and clean what a killed writer left behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from src import atomic


def test_a_writer_removes_what_a_killed_writer_of_the_same_path_left(tmp_path):
    interim = tmp_path / "interim"
    stale_dir = tmp_path / ".interim.x1y2.tmp"  # a killed ingest: a full copy with identity
    stale_dir.mkdir()
    (stale_dir / "identity.parquet").write_bytes(b"names")
    (tmp_path / ".interim.old").mkdir()
    stale_file = tmp_path / ".features.parquet.abc.tmp"
    stale_file.write_bytes(b"half")
    other = tmp_path / ".other.parquet.abc.tmp"  # another output's: not ours to remove
    other.write_bytes(b"x")
    with atomic.atomic_dir(interim) as tmp:
        (tmp / "children.parquet").write_bytes(b"ok")
    with atomic.atomic_path(tmp_path / "features.parquet") as tmp:
        tmp.write_bytes(b"ok")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [".other.parquet.abc.tmp", "features.parquet", "interim"]


def test_a_failed_write_leaves_the_old_output_and_no_temp(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_scratch_lives_in_the_project_and_stale_scratch_is_removed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    stale = tmp_path / ".tmp" / f"duckdb-features-{ended.pid}"  # a killed run's spill
    stale.mkdir(parents=True)
    (stale / "spill.block").write_bytes(b"x")
    running = tmp_path / ".tmp" / f"duckdb-features-{os.getppid()}"  # a concurrent run's
    running.mkdir()
    with atomic.scratch_dir("duckdb-features") as folder:
        assert folder.parent == tmp_path / ".tmp" and folder.name == f"duckdb-features-{os.getpid()}"
        assert not stale.exists() and running.exists()
        (folder / "spill.block").write_bytes(b"x")
    assert list((tmp_path / ".tmp").iterdir()) == [running]
