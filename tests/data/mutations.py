"""Mutations of a raw export folder, for the table of hostile cases (test_hostile_exports.py).

Each function returns a `mutate(folder)` callable. Row mutations append new rows (built from
the table's first data row) rather than edit existing ones, so that the expected counts are
exactly the clean export's plus the appended rows, with no cascade to other tables.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

Mutate = Callable[[Path], None]


def _csv(folder: Path, table: str) -> Path:
    return folder / f"{table}.csv"


def _rows(path: Path, encoding: str = "utf-8") -> list[list[str]]:
    with path.open(encoding=encoding, newline="") as fh:
        return list(csv.reader(fh))


def _line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow(cells)
    return out.getvalue()


def nothing() -> Mutate:
    return lambda folder: None


def append_rows(table: str, *changes: dict[str, str]) -> Mutate:
    """One new row per `changes`: the first data row with those values changed."""

    def mutate(folder: Path) -> None:
        header, first = _rows(_csv(folder, table))[:2]
        with _csv(folder, table).open("a", encoding="utf-8", newline="") as fh:
            for change in changes:
                row = dict(zip(header, first, strict=True)) | change
                fh.write(_line([row.get(c, "") for c in header]))

    return mutate


def append_text(table: str, text: str) -> Mutate:
    def mutate(folder: Path) -> None:
        with _csv(folder, table).open("a", encoding="utf-8", newline="") as fh:
            fh.write(text)

    return mutate


def insert_line(table: str, after_line: int, text: str) -> Mutate:
    """`text` as physical line `after_line + 1` (tables without line breaks in values)."""

    def mutate(folder: Path) -> None:
        lines = _csv(folder, table).read_text(encoding="utf-8").splitlines(keepends=True)
        lines.insert(after_line, text)
        _csv(folder, table).write_text("".join(lines), encoding="utf-8")

    return mutate


def event_before_birth(table: str, date_column: str) -> Mutate:
    """A row of `table` for the first child, dated the day before that child's birth."""

    def mutate(folder: Path) -> None:
        children = pd.read_csv(_csv(folder, "children"), dtype=str, keep_default_na=False)
        header, first = _rows(_csv(folder, table))[:2]
        child = children.set_index("child_id").loc[
            dict(zip(header, first, strict=True))["child_id"]
        ]
        day = (pd.Timestamp(child["birth_date"]) - pd.Timedelta(days=1)).date().isoformat()
        append_rows(table, {date_column: day})(folder)

    return mutate


def rename_column(table: str, old: str, new: str) -> Mutate:
    def mutate(folder: Path) -> None:
        path = _csv(folder, table)
        header, rest = path.read_text(encoding="utf-8").split("\n", 1)
        cells = next(csv.reader([header]))
        path.write_text(_line([new if c == old else c for c in cells]) + rest, encoding="utf-8")

    return mutate


def add_column(table: str, name: str, value: str) -> Mutate:
    """An extra column holding `value` in every row."""

    def mutate(folder: Path) -> None:
        rows = _rows(_csv(folder, table))
        text = "".join(_line([*r, name if i == 0 else value]) for i, r in enumerate(rows))
        _csv(folder, table).write_text(text, encoding="utf-8")

    return mutate


def drop_column(table: str, name: str) -> Mutate:
    def mutate(folder: Path) -> None:
        frame = pd.read_csv(_csv(folder, table), dtype=str, keep_default_na=False)
        frame.drop(columns=[name]).to_csv(_csv(folder, table), index=False)

    return mutate


def rewrite(table: str, **to_csv) -> Mutate:
    """The table written again by pandas with `to_csv` options (sep, lineterminator...)."""

    def mutate(folder: Path) -> None:
        frame = pd.read_csv(_csv(folder, table), dtype=str, keep_default_na=False)
        frame.to_csv(_csv(folder, table), index=False, **to_csv)

    return mutate


def transform_bytes(table: str, change: Callable[[bytes], bytes]) -> Mutate:
    def mutate(folder: Path) -> None:
        _csv(folder, table).write_bytes(change(_csv(folder, table).read_bytes()))

    return mutate


def gb18030_bad_byte_after(table: str, size: int) -> Mutate:
    """The table in GB18030, its rows repeated past `size` bytes, then one invalid byte."""

    def mutate(folder: Path) -> None:
        header, body = _csv(folder, table).read_text(encoding="utf-8").split("\n", 1)
        body = body * (size // len(body.encode("gb18030")) + 1)
        data = f"{header}\n{body}".encode("gb18030") + b'"\xff\xff"\n'
        _csv(folder, table).write_bytes(data)

    return mutate


def to_parquet(table: str, change: Callable[[pd.DataFrame], pd.DataFrame] = lambda f: f) -> Mutate:
    def mutate(folder: Path) -> None:
        frame = pd.read_csv(_csv(folder, table), dtype=str, keep_default_na=False)
        change(frame).to_parquet(folder / f"{table}.parquet")
        _csv(folder, table).unlink()

    return mutate


def truncate(table: str, suffix: str = "parquet") -> Mutate:
    def mutate(folder: Path) -> None:
        path = folder / f"{table}.{suffix}"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return mutate


def remove(table: str) -> Mutate:
    return lambda folder: _csv(folder, table).unlink()


def empty(table: str) -> Mutate:
    return lambda folder: _csv(folder, table).write_bytes(b"")


def replace_with(table: str, kind: str) -> Mutate:
    """The table's file replaced by a directory, a FIFO, a symlink loop or a dangling symlink."""

    def mutate(folder: Path) -> None:
        path = _csv(folder, table)
        path.unlink()
        if kind == "directory":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "symlink_loop":
            path.symlink_to(path.name)
        else:
            path.symlink_to(folder / "nowhere.csv")

    return mutate


def delete_folder() -> Mutate:
    return lambda folder: shutil.rmtree(folder)


def folder_is_a_file() -> Mutate:
    def mutate(folder: Path) -> None:
        shutil.rmtree(folder)
        folder.write_text("not a folder", encoding="utf-8")

    return mutate


def shift_dates(table: str, column: str, days: int) -> Mutate:
    """Every `column` date of `table` moved by `days` (a table exported at another time)."""

    def mutate(folder: Path) -> None:
        frame = pd.read_csv(_csv(folder, table), dtype=str, keep_default_na=False)
        moved = pd.to_datetime(frame[column]) + pd.Timedelta(days=days)
        frame[column] = moved.dt.strftime("%Y-%m-%d")
        frame.to_csv(_csv(folder, table), index=False)

    return mutate


def registry_chain(broken: bool) -> Mutate:
    """New guardian_type changes for a child born before 2022 whose guardian_type never changed:
    two changes that do not link up (``broken``), or one that ends off the exported value."""

    def mutate(folder: Path) -> None:
        children = pd.read_csv(_csv(folder, "children"), dtype=str, keep_default_na=False)
        history = pd.read_csv(_csv(folder, "registry_history"), dtype=str, keep_default_na=False)
        changed = set(history.loc[history["field"] == "guardian_type", "child_id"])
        child = children[~children["child_id"].isin(changed) & (children["birth_date"] < "2022")]
        child_id, exported = child.iloc[0][["child_id", "guardian_type"]]
        guardians = ("both_parents", "grandparents", "none", "institution")
        others = [g for g in guardians if g != exported]
        rows = (
            [(others[0], others[1], "2023-03-01"), (others[2], exported, "2023-06-01")]
            if broken
            else [(exported, others[0], "2023-03-01")]
        )
        with _csv(folder, "registry_history").open("a", encoding="utf-8", newline="") as fh:
            for old, new, day in rows:
                fh.write(_line([child_id, "guardian_type", old, new, day]))

    return mutate
