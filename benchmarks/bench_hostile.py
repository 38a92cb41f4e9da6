"""Issue 11's hostile set: about 100 bad exports run through `safetynet validate` and `ingest`.

    .venv/bin/python benchmarks/bench_hostile.py                 # the ~110 default cases, 2 workers
    .venv/bin/python benchmarks/bench_hostile.py --extended      # plus 65 variants (175 in all)
    .venv/bin/python benchmarks/bench_hostile.py --only tab_welfare,stray_2026_11_30_welfare
    .venv/bin/python benchmarks/bench_hostile.py --json /tmp/hostile.json --keep /tmp/hostile

Run on demand, never inside a test (tests/data/test_hostile_exports.py is the fast table the
suite runs). A clean export is generated once (tests/params.test.yaml, 400 children, 24
months: it carries the generator's own injected defects, so the clean export validates with
exit code 1); every case copies it, applies one mutation and runs both commands as
subprocesses, exactly as a user would:

    .venv/bin/python -m src.cli --params tests/params.test.yaml validate DIR
    .venv/bin/python -m src.cli --params P ingest --raw DIR --interim OUT --quality OUT.json

(P: tests/params.test.yaml with data.raw_dir = DIR, plus the case's overrides; a case with
overrides validates with P too). Per case it reports validate's exit code (0 clean, 1 ingestible
with rows to quarantine, 2 not ingestible) and message, ingest's outcome, whether reconciliation
held, and a verdict. A case is BAD when any of these holds:

- a traceback or an `error (SomeException)` line reaches the user, or a command hangs;
- validate and ingest disagree (0/1 but ingest fails, 2 but ingest succeeds, or different
  counts or export dates);
- a failure message names no file;
- "OK" (or ingestible) for a broken file, a row defect accepted without a quarantine reason,
  or rows silently lost or changed by a benign variant (each case states what it expects);
- reconciliation fails: per table rows read != kept + quarantined + duplicates collapsed, or
  data_quality.json disagrees with the interim parquet / quarantine CSV row counts;
- personal data (names, id numbers, raw child_ids of the generated children table, values
  planted by the case such as extra-column values) in data/interim/quarantine/, manifest.json
  or the data-quality report;
- a raw control character in validate's or ingest's output, or in a quarantine CSV header or
  cell; an un-neutralised formula (= + - @ TAB CR) in a quarantine CSV header or cell;
- the inferred export date moved from the clean export's (a stray future-dated row must not
  move it), unless the case says it may.

Softer findings (a benign variant rejected with a clear message, personal data echoed on the
console, ingest's message absent from validate's, a table emptied yet ingestible, an empty
column name printed as nothing) are printed as notes and do not make a case bad. The script
always exits 0: it measures, it does not gate.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
csv.field_size_limit(sys.maxsize)  # the 20 MiB cell case

from src import spreadsheet  # noqa: E402
from src.config import load_params  # noqa: E402
from src.data import generate  # noqa: E402
from tests.data import mutations  # noqa: E402
from tests.data.mutations import _csv, _line, _rows  # noqa: E402 - the test table's CSV helpers

PYTHON = str(ROOT / ".venv" / "bin" / "python")
TEST_PARAMS = ROOT / "tests" / "params.test.yaml"
GEN_OVERRIDES = {"synthetic": {"n_children": 400, "months": 24}}
TIMEOUT_S = 180
MAX_JOBS = 2

SECRET = "SECRET-13800138000"  # the value of every planted extra column: must never be written
ESC = "\x1b[31mred\x1b[0m"
FORMULA = '=HYPERLINK("http://evil","x")'
NEW_CHILD = {"child_id": "C99999999", "name": "泄露测试", "id_number": "110101201001010011"}
NEW_CHILD_SECRETS = tuple(NEW_CHILD.values())
C, W, CAL, E, A, M, V, P = (
    "children",
    "welfare_events",
    "school_calendar",
    "school_enrollment",
    "school_absences",
    "medical_events",
    "casework_visits",
    "protection_events",
)
TODAY = dt.date.today()
FORMULA_START = re.compile(spreadsheet.FORMULA_START)
PLAIN_NUMBER = re.compile(spreadsheet.PLAIN_NUMBER)
NO_DAC = [  # root reads any file: drop the capabilities that let it, so chmod 000 bites
    "setpriv",
    "--bounding-set",
    "-dac_override,-dac_read_search",
    "--inh-caps",
    "-dac_override,-dac_read_search",
]


# --------------------------------------------------------------------------- mutations


class Mut:
    """A mutation of an export folder plus the one-line text that reproduces it."""

    def __init__(self, fn: Callable[[Path], None], text: str) -> None:
        self.fn, self.text = fn, text

    def __call__(self, folder: Path) -> None:
        self.fn(folder)

    def __add__(self, other: Mut) -> Mut:
        return Mut(lambda f: (self(f), other(f)), f"{self.text}; then {other.text}")


def _frame(folder: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(_csv(folder, table), dtype=str, keep_default_na=False)


def _show(value: str) -> str:
    """repr of a value, a very long one abridged (the 20 MiB cell)."""
    return repr(value) if len(value) <= 80 else f"{value[:10]!r}... ({len(value)} chars)"


def nothing() -> Mut:
    return Mut(lambda f: None, "no change")


def append_rows(table: str, *changes: dict, where: dict | None = None) -> Mut:
    """One new row per change: the first data row (matching `where`) with those values changed."""

    def fn(folder: Path) -> None:
        header, *rows = _rows(_csv(folder, table))
        base = next(
            r
            for r in rows
            if all(dict(zip(header, r, strict=True))[k] == v for k, v in (where or {}).items())
        )
        with _csv(folder, table).open("a", encoding="utf-8", newline="") as fh:
            for change in changes:
                row = dict(zip(header, base, strict=True)) | change
                fh.write(_line([row.get(c, "") for c in header]))

    base = f"the first row with {where}" if where else "the first data row"
    shown = "; ".join(
        "{" + ", ".join(f"{k!r}: {_show(v)}" for k, v in c.items()) + "}" if c else "no change"
        for c in changes
    )
    return Mut(fn, f"append to {table}.csv {base} with {shown}")


def append_text(table: str, text: str) -> Mut:
    def fn(folder: Path) -> None:
        with _csv(folder, table).open("a", encoding="utf-8", newline="") as fh:
            fh.write(text)

    return Mut(fn, f"append {text!r} to {table}.csv")


def insert_line(table: str, after_line: int, text: str) -> Mut:
    def fn(folder: Path) -> None:
        lines = _csv(folder, table).read_text(encoding="utf-8").splitlines(keepends=True)
        lines.insert(after_line, text)
        _csv(folder, table).write_text("".join(lines), encoding="utf-8")

    return Mut(fn, f"insert {text!r} as line {after_line + 1} of {table}.csv")


def event_before_birth(table: str, date_column: str) -> Mut:
    def fn(folder: Path) -> None:
        children = _frame(folder, C).set_index("child_id")
        header, first = _rows(_csv(folder, table))[:2]
        birth = children.loc[dict(zip(header, first, strict=True))["child_id"], "birth_date"]
        day = (pd.Timestamp(birth) - pd.Timedelta(days=1)).date().isoformat()
        append_rows(table, {date_column: day})(folder)

    return Mut(
        fn,
        f"append to {table}.csv the first data row with {date_column} = the day before that child's birth",
    )


def rename_column(table: str, old: str, new: str) -> Mut:
    def fn(folder: Path) -> None:
        path = _csv(folder, table)
        header, rest = path.read_text(encoding="utf-8").split("\n", 1)
        cells = next(csv.reader([header]))
        path.write_text(_line([new if c == old else c for c in cells]) + rest, encoding="utf-8")

    return Mut(fn, f"rename header cell {old!r} of {table}.csv to {new!r}")


def add_column(table: str, name: str, value: str) -> Mut:
    def fn(folder: Path) -> None:
        rows = _rows(_csv(folder, table))
        text = "".join(_line([*r, name if i == 0 else value]) for i, r in enumerate(rows))
        _csv(folder, table).write_text(text, encoding="utf-8")

    return Mut(
        fn,
        f"add to {table}.csv an extra column {name[:60]!r}{'...' if len(name) > 60 else ''} = {value!r} in every row",
    )


def drop_column(table: str, name: str) -> Mut:
    def fn(folder: Path) -> None:
        _frame(folder, table).drop(columns=[name]).to_csv(_csv(folder, table), index=False)

    return Mut(fn, f"drop column {name!r} from {table}.csv")


def rewrite(table: str, **to_csv) -> Mut:
    def fn(folder: Path) -> None:
        _frame(folder, table).to_csv(_csv(folder, table), index=False, **to_csv)

    return Mut(
        fn,
        f"rewrite {table}.csv with pandas to_csv({', '.join(f'{k}={v!r}' for k, v in to_csv.items())})",
    )


def transform_bytes(table: str, change: Callable[[bytes], bytes], text: str) -> Mut:
    def fn(folder: Path) -> None:
        _csv(folder, table).write_bytes(change(_csv(folder, table).read_bytes()))

    return Mut(fn, f"{table}.csv: {text}")


def reencode(table: str, encoding: str) -> Mut:
    return transform_bytes(
        table, lambda b: b.decode("utf-8").encode(encoding), f"re-encoded as {encoding}"
    )


def big_with_bad_byte(table: str, encoding: str, size: int) -> Mut:
    """The table re-encoded, its rows repeated past `size` bytes, then its first data row again
    with the byte 0xFF (invalid in UTF-8 and GB18030) at the end of its first field."""

    def fn(folder: Path) -> None:
        header, body = _csv(folder, table).read_text(encoding="utf-8").split("\n", 1)
        bad = body.split("\n", 1)[0].encode(encoding).replace(b'","', b'\xff","', 1) + b"\n"
        body = body * (size // len(body.encode(encoding)) + 1)
        _csv(folder, table).write_bytes(f"{header}\n{body}".encode(encoding) + bad)

    return Mut(
        fn,
        f"{table}.csv in {encoding}, its rows repeated past {size >> 20} MiB, then its first data "
        f"row appended with byte 0xFF after the first field",
    )


def truncate_mid_row(table: str) -> Mut:
    """Cut the file right after the first field of a row halfway through."""

    def fn(folder: Path) -> None:
        data = _csv(folder, table).read_bytes()
        start = data.index(b"\n", len(data) // 2) + 1
        cut = data.index(b",", start) + 1
        _csv(folder, table).write_bytes(data[:cut])

    return Mut(fn, f"truncate {table}.csv halfway, in the middle of a row (after its first field)")


def truncate_file(table: str, suffix: str = "parquet") -> Mut:
    def fn(folder: Path) -> None:
        path = folder / f"{table}.{suffix}"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return Mut(fn, f"truncate {table}.{suffix} to half its bytes")


def binary(table: str, n: int = 50_000) -> Mut:
    def fn(folder: Path) -> None:
        _csv(folder, table).write_bytes(bytes(((i * 7919 + 13) * 31) % 256 for i in range(n)))

    return Mut(fn, f"replace {table}.csv with {n} bytes of binary garbage")


def to_parquet(
    table: str, change: Callable[[pd.DataFrame], object] = lambda f: f, text: str = ""
) -> Mut:
    """The table as <table>.parquet (the CSV removed); `change` may return a frame or an arrow table."""

    def fn(folder: Path) -> None:
        out = change(_frame(folder, table))
        if isinstance(out, pa.Table):
            pq.write_table(out, folder / f"{table}.parquet")
        else:
            out.to_parquet(folder / f"{table}.parquet")
        _csv(folder, table).unlink()

    return Mut(fn, f"convert {table}.csv to {table}.parquet{': ' + text if text else ''}")


def remove(table: str, suffix: str = "csv") -> Mut:
    return Mut(lambda f: (f / f"{table}.{suffix}").unlink(), f"rm {table}.{suffix}")


def empty(table: str) -> Mut:
    return Mut(lambda f: _csv(f, table).write_bytes(b""), f"truncate {table}.csv to 0 bytes")


def header_only(table: str) -> Mut:
    def fn(folder: Path) -> None:
        path = _csv(folder, table)
        path.write_text(path.read_text(encoding="utf-8").split("\n", 1)[0] + "\n", encoding="utf-8")

    return Mut(fn, f"keep only the header line of {table}.csv")


def headerless(table: str) -> Mut:
    def fn(folder: Path) -> None:
        path = _csv(folder, table)
        path.write_text(path.read_text(encoding="utf-8").split("\n", 1)[1], encoding="utf-8")

    return Mut(fn, f"delete the header line of {table}.csv (the first data row becomes the header)")


def replace_with(table: str, kind: str) -> Mut:
    return Mut(mutations.replace_with(table, kind), f"replace {table}.csv with a {kind.replace('_', ' ')}")


def symlink_elsewhere(table: str) -> Mut:
    def fn(folder: Path) -> None:
        target = folder.parent / f"elsewhere-{table}.csv"
        shutil.move(_csv(folder, table), target)
        _csv(folder, table).symlink_to(target)

    return Mut(fn, f"move {table}.csv outside the folder and symlink it back")


def unreadable(table: str) -> Mut:
    return Mut(
        lambda f: _csv(f, table).chmod(0),
        f"chmod 000 {table}.csv (commands run without CAP_DAC_OVERRIDE when root)",
    )


def also_parquet(table: str) -> Mut:
    def fn(folder: Path) -> None:
        _frame(folder, table).to_parquet(folder / f"{table}.parquet")

    return Mut(fn, f"write {table}.parquet beside {table}.csv (both present)")


def rename_file(table: str, new_name: str) -> Mut:
    return Mut(lambda f: _csv(f, table).rename(f / new_name), f"mv {table}.csv {new_name}")


def add_file(name: str, data: bytes) -> Mut:
    return Mut(lambda f: (f / name).write_bytes(data), f"add a stray file {name}")


def delete_folder() -> Mut:
    return Mut(lambda f: shutil.rmtree(f), "the export folder does not exist (rm -r DIR)")


def folder_is_a_file() -> Mut:
    def fn(folder: Path) -> None:
        shutil.rmtree(folder)
        folder.write_text("not a folder", encoding="utf-8")

    return Mut(fn, "DIR is a regular file, not a folder")


def empty_folder() -> Mut:
    def fn(folder: Path) -> None:
        shutil.rmtree(folder)
        folder.mkdir()

    return Mut(fn, "DIR is an empty folder")


def drop_rows_after(table: str, column: str, last: str) -> Mut:
    def fn(folder: Path) -> None:
        frame = _frame(folder, table)
        frame[frame[column] <= last].to_csv(_csv(folder, table), index=False)

    return Mut(fn, f"drop the rows of {table}.csv with {column} > {last}")


# --------------------------------------------------------------------------- parquet variants


def _arrow_with(frame: pd.DataFrame, **columns: pa.Array) -> pa.Table:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for name, array in columns.items():
        table = table.set_column(table.column_names.index(name), name, array)
    return table


def _decimal_amounts(f: pd.DataFrame) -> pa.Table:
    values = [Decimal(v) if v else None for v in f["amount_cny"]]
    return _arrow_with(f, amount_cny=pa.array(values, type=pa.decimal128(18, 2)))


def _duplicate_names(f: pd.DataFrame) -> pa.Table:
    arrays = [pa.array(f[c]) for c in f.columns] + [pa.array(f["event_type"])]
    return pa.Table.from_arrays(arrays, names=[*f.columns, "event_type"])


def _tz_birth(f: pd.DataFrame) -> pd.DataFrame:
    return f.assign(birth_date=pd.to_datetime(f["birth_date"]).dt.tz_localize("Asia/Shanghai"))


# --------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    """expect: "reject" (validate 2, ingest fails), "rows" (validate 1; `delta` added to the
    clean counts of one table), "same" (every count as in the clean export), "any" (no
    expectation beyond the general checks)."""

    name: str
    mutate: Mut
    expect: str
    table: str | None = None
    delta: dict = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    unreadable: bool = False
    params: dict = field(default_factory=dict)
    date_may_move: bool = False


def _cases() -> list[Case]:
    nc = dict(NEW_CHILD)
    pay = {"event_type": "payment"}
    # fmt: off
    cases = [
        Case("clean", nothing(), "same"),
        # ---------------------------------------------------------------- the folder
        Case("missing_folder", delete_folder(), "reject"),
        Case("folder_is_a_file", folder_is_a_file(), "reject"),
        Case("empty_folder", empty_folder(), "reject"),
        Case("stray_files_in_folder", add_file("notes.txt", b"hello\n") + add_file(".children.csv.swp", b"\x00\x01"), "same"),
        Case("table_file_upper_case_name", rename_file(C, "Children.CSV"), "reject"),
        Case("table_file_gzipped_name", rename_file(W, "welfare_events.csv.gz"), "reject"),
        # ---------------------------------------------------------------- missing / empty / truncated / binary
        Case("missing_children", remove(C), "reject"),
        Case("missing_welfare", remove(W), "reject"),
        Case("missing_medical", remove(M), "reject"),
        Case("missing_protection_optional", remove(P), "any"),
        Case("missing_calendar_optional", remove(CAL), "any"),
        Case("empty_children", empty(C), "reject"),
        Case("empty_welfare", empty(W), "reject"),
        Case("empty_absences", empty(A), "reject"),
        Case("empty_protection_optional", empty(P), "any"),
        Case("header_only_children", header_only(C), "any"),
        Case("header_only_welfare", header_only(W), "any"),
        Case("headerless_children", headerless(C), "reject"),
        Case("headerless_welfare", headerless(W), "reject"),
        Case("truncated_children", truncate_mid_row(C), "reject"),
        Case("truncated_welfare", truncate_mid_row(W), "reject"),
        Case("truncated_visits", truncate_mid_row(V), "reject"),
        Case("binary_children", binary(C), "reject"),
        Case("binary_welfare", binary(W), "reject"),
        Case("binary_calendar_optional", binary(CAL), "reject"),
        # ---------------------------------------------------------------- not a regular file
        Case("fifo_children", replace_with(C, "fifo"), "reject"),
        Case("fifo_welfare", replace_with(W, "fifo"), "reject"),
        Case("fifo_protection_optional", replace_with(P, "fifo"), "reject"),
        Case("symlink_loop_children", replace_with(C, "symlink_loop"), "reject"),
        Case("symlink_loop_protection_optional", replace_with(P, "symlink_loop"), "reject"),
        Case("dangling_symlink_welfare", replace_with(W, "dangling"), "reject"),
        Case("symlink_to_file_elsewhere", symlink_elsewhere(W), "same"),
        Case("directory_children", replace_with(C, "directory"), "reject"),
        Case("directory_calendar_optional", replace_with(CAL, "directory"), "reject"),
        Case("unreadable_children", unreadable(C), "reject", unreadable=True),
        Case("unreadable_protection_optional", unreadable(P), "reject", unreadable=True),
        Case("csv_and_parquet_both", also_parquet(W), "reject"),
        # ---------------------------------------------------------------- delimiters, quoting, line ends
        Case("tab_welfare", rewrite(W, sep="\t"), "reject"),
        Case("tab_children", rewrite(C, sep="\t"), "reject"),
        Case("semicolon_children", rewrite(C, sep=";"), "reject"),
        Case("semicolon_visits", rewrite(V, sep=";"), "reject"),
        Case("pipe_medical", rewrite(M, sep="|"), "reject"),
        Case("excel_sep_line", transform_bytes(W, lambda b: b"sep=,\n" + b, "prefix the line 'sep=,'"), "reject"),
        Case("comment_line_first", transform_bytes(W, lambda b: b"# exported 2025-01-02 by system X\n" + b, "prefix a '# exported ...' comment line"), "reject"),
        Case("unterminated_quote_end", append_text(W, '"C00000001","2023-03-01","payment,dibao,1,\n'), "reject"),
        Case("unterminated_quote_middle", insert_line(W, 10, '"C00000001","2023-03-01","payment,dibao,1,\n'), "reject"),
        Case("too_many_fields", append_text(W, ",".join(["x"] * 15) + "\n"), "reject"),
        Case("too_few_fields", insert_line(W, 2, "C00000001,2023-01-01,payment\n"), "reject"),
        Case("whitespace_only_line", insert_line(W, 5, "   \n"), "any"),
        Case("bare_cr_in_value", append_text(W, "C00000001,2023-01-01,pay\rment,dibao,1,\n"), "any"),
        Case("cr_only_line_ends", transform_bytes(W, lambda b: b.replace(b"\n", b"\r"), "every LF replaced by CR"), "same"),
        Case("crlf_line_ends", transform_bytes(C, lambda b: b.replace(b"\n", b"\r\n"), "every LF replaced by CRLF"), "same"),
        Case("mixed_line_ends", transform_bytes(V, lambda b: b.replace(b'0"\n', b'0"\r\n', 500), "the first 500 line ends CRLF, the rest LF"), "same"),
        Case("trailing_blank_lines", append_text(W, "\n\n\n"), "same"),
        Case("comma_only_row", append_text(W, ",,,,,\n"), "rows", W, {"missing_required:child_id": 1}),
        Case("header_repeated_mid_file", append_text(W, '"child_id","event_date","event_type","benefit","amount_cny","reason"\n'), "rows", W, {"malformed_date:event_date": 1}),
        Case("file_appended_to_itself", transform_bytes(W, lambda b: b + b.split(b"\n", 1)[1], "its data rows appended again"), "any"),
        Case("huge_cell_20mb", append_rows(E, {"school_id": "X" * (20 << 20), "event_type": "bogus"}), "any"),
        Case("quoted_newline_in_value", append_rows(E, {"school_id": "P52\n2423024", "event_type": "bogus"}), "rows", E, {"unknown_code:event_type": 1}),
        # ---------------------------------------------------------------- encodings
        Case("bom_children", transform_bytes(C, lambda b: codecs.BOM_UTF8 + b, "UTF-8 BOM prepended"), "same"),
        Case("double_bom_children", transform_bytes(C, lambda b: codecs.BOM_UTF8 * 2 + b, "two UTF-8 BOMs prepended"), "any"),
        Case("gb18030_children", reencode(C, "gb18030"), "same"),
        Case("gbk_children", reencode(C, "gbk"), "same"),
        Case("gb18030_invalid_byte_after_4mb", big_with_bad_byte(C, "gb18030", 5 << 20), "reject"),
        Case("utf8_invalid_byte_after_4mb", big_with_bad_byte(W, "utf-8", 5 << 20), "reject"),
        Case("invalid_byte_early", transform_bytes(W, lambda b: b.replace(b'"dibao"', b'"dib\xe9"', 1), "the first '\"dibao\"' -> b'\"dib\\xe9\"' (Latin-1 byte, invalid in UTF-8 and GB18030)"), "reject"),
        Case("latin1_byte_read_as_gb18030", transform_bytes(W, lambda b: b.replace(b"dibao", b"dib\xe9o", 1), "the first 'dibao' -> b'dib\\xe9o' (a Latin-1 byte that happens to be valid GB18030)"), "rows", W, {"accepted": -1, "unknown_code:benefit": 1}),
        Case("utf16_children", reencode(C, "utf-16"), "reject"),
        Case("big5_children", transform_bytes(C, lambda b: b.decode("utf-8").encode("big5", "replace"), "re-encoded as big5"), "any"),
        Case("forced_utf8_on_gb18030", reencode(C, "gb18030"), "reject", params={"data": {"encoding": "utf-8"}}),
        Case("nul_byte_in_value", append_rows(W, {"event_type": "pay\x00ment"}), "rows", W, {"unknown_code:event_type": 1}),
        # ---------------------------------------------------------------- headers
        Case("header_Name", rename_column(C, "name", "Name"), "same"),
        Case("header_padded_child_id", rename_column(C, "child_id", " child_id "), "same"),
        Case("header_CHILD_ID_events", rename_column(W, "child_id", "CHILD_ID"), "same"),
        Case("header_inner_blank", rename_column(W, "event_date", "Event Date"), "same"),
        Case("header_zero_width_space", rename_column(C, "sex", "\u200bsex"), "same"),
        Case("header_near_miss_birthdate", rename_column(C, "birth_date", "birthdate"), "reject"),
        Case("header_near_miss_chlid_id", rename_column(W, "child_id", "chlid_id"), "reject"),
        Case("header_near_miss_optional", rename_column(C, "id_number", "id_numbr"), "reject"),
        Case("missing_required_column_sex", drop_column(C, "sex"), "reject"),
        Case("missing_required_column_child_id", drop_column(W, "child_id"), "reject"),
        Case("missing_optional_column_ethnicity", drop_column(C, "ethnicity"), "any"),
        Case("duplicate_header_by_case", rename_column(C, "sex", "NAME"), "reject"),
        Case("duplicate_header_exact", rename_column(W, "benefit", "event_type"), "reject"),
        Case("columns_reordered", Mut(lambda f: _frame(f, V).iloc[:, ::-1].to_csv(_csv(f, V), index=False), "casework_visits.csv with its columns in reverse order"), "same"),
        Case("empty_header_cell_extra", transform_bytes(W, lambda b: b.replace(b"\n", b",\n"), "a trailing comma on every line (an extra column with an empty name)"), "same"),
        Case("extra_column_mother_phone", add_column(C, "mother_phone", SECRET) + append_rows(C, nc | {"sex": "x"}), "rows", C, {"unknown_code:sex": 1}, secrets=(SECRET, *NEW_CHILD_SECRETS)),
        Case("extra_column_name_in_events", add_column(W, "name", "张伟伟") + append_rows(W, {"event_type": "bogus"}), "rows", W, {"unknown_code:event_type": 1}, secrets=("张伟伟",)),
        Case("extra_column_guardian_id", add_column(C, "guardian_id_number", "110101198001010099") + append_rows(C, nc | {"sex": "x"}), "rows", C, {"unknown_code:sex": 1}, secrets=("110101198001010099", *NEW_CHILD_SECRETS)),
        Case("column_name_formula", add_column(W, FORMULA, SECRET) + append_rows(W, {"event_type": "bogus"}), "rows", W, {"unknown_code:event_type": 1}, secrets=(SECRET,)),
        Case("column_name_plus_at_minus", add_column(W, "+cmd", SECRET) + add_column(W, "@SUM(A1)", SECRET) + add_column(W, "-2+3", SECRET) + append_rows(W, {"event_type": "bogus"}), "rows", W, {"unknown_code:event_type": 1}, secrets=(SECRET,)),
        Case("column_name_escape_sequence", add_column(W, ESC, SECRET) + append_rows(W, {"event_type": "bogus"}), "rows", W, {"unknown_code:event_type": 1}, secrets=(SECRET,)),
        Case("column_name_newline_and_cr", add_column(W, "bad\r\nname", SECRET), "same", secrets=(SECRET,)),
        Case("column_name_bidi_override", add_column(W, "abc\u202edcba", SECRET), "same", secrets=(SECRET,)),
        Case("column_name_very_long", add_column(W, "x" * 100_000, SECRET), "same", secrets=(SECRET,)),
        Case("column_name_empty_quoted", add_column(W, "", SECRET), "same", secrets=(SECRET,)),
        # ---------------------------------------------------------------- formula and control values
        Case("formula_in_code", append_rows(W, {"event_type": "=1+1"}), "rows", W, {"unknown_code:event_type": 1}),
        Case("formula_in_free_text_quarantined", append_rows(E, {"school_id": FORMULA, "event_type": "bogus"}), "rows", E, {"unknown_code:event_type": 1}),
        Case("at_formula_in_children", append_rows(C, nc | {"community_code": "@SUM(A1)", "sex": "x"}), "rows", C, {"unknown_code:sex": 1}, secrets=NEW_CHILD_SECRETS),
        Case("minus_formula_in_visit", append_rows(V, {"caseworker_id": "-1+2", "mode": "bogus"}), "rows", V, {"unknown_code:mode": 1}),
        Case("tab_formula_in_value", append_rows(E, {"school_id": "\t=1+1", "event_type": "bogus"}), "rows", E, {"unknown_code:event_type": 1}),
        Case("formula_in_accepted_row", append_rows(E, {"school_id": "=1+1"}), "rows", E, {"accepted": 1}),
        Case("escape_in_quarantined_value", append_rows(E, {"school_id": ESC, "event_type": "bogus"}), "rows", E, {"unknown_code:event_type": 1}),
        Case("cr_in_quoted_value", append_rows(W, {"event_type": "pay\rment"}), "rows", W, {"unknown_code:event_type": 1}),
        # ---------------------------------------------------------------- numbers
        Case("amount_1e12", append_rows(W, {"amount_cny": "1e12"}, where=pay), "rows", W, {"implausible_amount:amount_cny": 1}),
        Case("amount_1e309_overflow", append_rows(W, {"amount_cny": "1e309"}, where=pay), "rows", W, {"malformed_number:amount_cny": 1}),
        Case("amount_nan", append_rows(W, {"amount_cny": "NaN"}, where=pay), "rows", W, {"malformed_number:amount_cny": 1}),
        Case("amount_thousands_separator", append_rows(W, {"amount_cny": "1,000"}, where=pay), "rows", W, {"malformed_number:amount_cny": 1}),
        Case("amount_fullwidth_digits", append_rows(W, {"amount_cny": "１０００"}, where=pay), "rows", W, {"malformed_number:amount_cny": 1}),
        Case("amount_negative", append_rows(W, {"amount_cny": "-50"}, where=pay), "rows", W, {"out_of_range:amount_cny": 1}),
        Case("cost_1e12", append_rows(M, {"cost_cny": "1e12", "out_of_pocket_cny": ""}), "rows", M, {"implausible_amount:cost_cny": 1}),
        Case("cost_negative", append_rows(M, {"cost_cny": "-1", "out_of_pocket_cny": ""}), "rows", M, {"out_of_range:cost_cny": 1}),
        Case("out_of_pocket_above_cost", append_rows(M, {"cost_cny": "100", "out_of_pocket_cny": "200"}), "rows", M, {"out_of_pocket_above_cost:out_of_pocket_cny": 1}),
        Case("disability_1e12", append_rows(C, nc | {"disability_level": "1e12"}), "rows", C, {"out_of_range:disability_level": 1}, secrets=NEW_CHILD_SECRETS),
        Case("grade_1e12", append_rows(E, {"grade": "1e12"}), "rows", E, {"out_of_range:grade": 1}),
        Case("absence_days_1e12", append_rows(A, {"days": "1e12"}), "rows", A, {"unknown_code:days": 1}),
        Case("concern_2", append_rows(V, {"concern_safety": "2"}), "rows", V, {"out_of_range:concern_safety": 1}),
        # ---------------------------------------------------------------- plausibility: births
        Case("welfare_before_birth", event_before_birth(W, "event_date"), "rows", W, {"before_birth:event_date": 1}),
        Case("visit_before_birth", event_before_birth(V, "visit_date"), "rows", V, {"before_birth:visit_date": 1}),
        Case("medical_before_birth", event_before_birth(M, "event_date"), "rows", M, {"before_birth:event_date": 1}),
        Case("absence_before_birth", event_before_birth(A, "absence_date"), "rows", A, {"before_birth:absence_date": 1}),
        Case("registered_before_birth", append_rows(C, nc | {"birth_date": "2015-01-02", "registered_date": "2015-01-01"}), "rows", C, {"before_birth:registered_date": 1}, secrets=NEW_CHILD_SECRETS),
        # ---------------------------------------------------------------- dates
        Case("date_far_future_2999", append_rows(W, {"event_date": "2999-01-01"}), "rows", W, {"future_date:event_date|beyond_export_date:event_date": 1}),
        Case("date_9999_12_31", append_rows(V, {"visit_date": "9999-12-31"}), "rows", V, {"future_date:visit_date|beyond_export_date:visit_date": 1}),
        Case("birth_date_future", append_rows(C, nc | {"birth_date": "2999-06-01"}), "rows", C, {"future_date:birth_date|beyond_export_date:birth_date": 1}, secrets=NEW_CHILD_SECRETS),
        Case("date_far_past_1900", append_rows(W, {"event_date": "1900-01-01"}), "rows", W, {"date_before_1990:event_date": 1}),
        Case("date_year_0001", append_rows(M, {"event_date": "0001-01-01"}), "rows", M, {"date_before_1990:event_date": 1}),
        Case("birth_date_1989", append_rows(C, nc | {"birth_date": "1989-12-31"}), "rows", C, {"date_before_1990:birth_date": 1}, secrets=NEW_CHILD_SECRETS),
        Case("date_feb_30", append_rows(W, {"event_date": "2024-02-30"}), "rows", W, {"malformed_date:event_date": 1}),
        Case("date_slashes", append_rows(V, {"visit_date": "2024/01/15"}), "rows", V, {"malformed_date:visit_date": 1}),
        Case("date_dotted_dmy", append_rows(A, {"absence_date": "15.01.2024"}), "rows", A, {"malformed_date:absence_date": 1}),
        Case("date_no_padding", append_rows(W, {"event_date": "2024-1-5"}), "rows", W, {"malformed_date:event_date": 1}),
        Case("date_with_time", append_rows(M, {"event_date": "2024-01-15T00:00:00"}), "rows", M, {"malformed_date:event_date": 1}),
        Case("date_excel_serial", append_rows(W, {"event_date": "45306"}), "rows", W, {"malformed_date:event_date": 1}),
        Case("date_padded_blanks", append_rows(W, {"event_date": " 2023-03-01 "}), "rows", W, {"accepted": 1}),
        Case("date_empty_required", append_rows(V, {"visit_date": ""}), "rows", V, {"missing_required:visit_date": 1}),
        # ---------------------------------------------------------------- the export date
        Case("stray_2026_11_30_welfare", append_rows(W, {"event_date": "2026-11-30"}), "any"),
        Case("stray_2025_06_30_visit", append_rows(V, {"visit_date": "2025-06-30"}), "any"),
        Case("stray_today_medical", append_rows(M, {"event_date": TODAY.isoformat()}), "any"),
        Case("stray_tomorrow_welfare", append_rows(W, {"event_date": (TODAY + dt.timedelta(days=1)).isoformat()}), "rows", W, {"future_date:event_date|beyond_export_date:event_date": 1}),
        Case("stray_2026_11_30_calendar", append_text(CAL, '"2026-11-30"\n'), "any"),
        Case("stray_registered_2026_11_30", append_rows(C, nc | {"registered_date": "2026-11-30"}), "any", secrets=NEW_CHILD_SECRETS),
        Case("last_month_missing_in_welfare", drop_rows_after(W, "event_date", "2024-11-30"), "any", date_may_move=True),
        # ---------------------------------------------------------------- codes, ids, duplicates
        Case("unknown_code_case", append_rows(W, {"event_type": "Payment"}), "rows", W, {"unknown_code:event_type": 1}),
        Case("unknown_code_chinese_sex", append_rows(C, nc | {"sex": "男"}), "rows", C, {"unknown_code:sex": 1}, secrets=NEW_CHILD_SECRETS),
        Case("code_with_blanks", append_rows(W, {"benefit": " dibao ", "event_date": "2023-03-02"}), "rows", W, {"accepted": 1}),
        Case("county_code_traversal", append_rows(C, nc | {"county_code": "../../etc"}), "rows", C, {"invalid_format:county_code": 1}, secrets=NEW_CHILD_SECRETS),
        Case("duplicate_row", append_rows(W, {}), "rows", W, {"duplicates": 1}),
        Case("duplicate_row_x3", append_rows(V, {}, {}, {}), "rows", V, {"duplicates": 3}),
        Case("duplicate_child_id_different_data", append_rows(C, {"name": "泄露测试", "sex": "f" }), "any", secrets=("泄露测试",)),
        Case("unknown_child_id", append_rows(W, {"child_id": "C99999998"}), "rows", W, {"unknown_child": 1}, secrets=("C99999998",)),
        Case("child_id_lower_case", append_rows(W, {"child_id": "c00000001"}), "rows", W, {"unknown_child": 1}, secrets=("c00000001",)),
        Case("child_id_leading_blank", append_rows(W, {"child_id": " C00000001"}), "rows", W, {"invalid_format:child_id": 1}),
        Case("child_id_too_long", append_rows(W, {"child_id": "C" * 40}), "rows", W, {"invalid_format:child_id": 1}, secrets=("C" * 40,)),
        Case("child_id_is_a_name", append_rows(W, {"child_id": "王小明"}), "rows", W, {"invalid_format:child_id": 1}, secrets=("王小明",)),
        Case("child_id_missing", append_rows(M, {"child_id": ""}), "rows", M, {"missing_required:child_id": 1}),
        # ---------------------------------------------------------------- parquet
        Case("parquet_children_valid", to_parquet(C), "same"),
        Case("parquet_list_column", to_parquet(W, lambda f: f.assign(benefit=[[b] for b in f["benefit"]]), "benefit as a list<string> column"), "reject"),
        Case("parquet_struct_column", to_parquet(W, lambda f: f.assign(event_type=[{"v": b} for b in f["event_type"]]), "event_type as a struct column"), "reject"),
        Case("parquet_list_extra_column", to_parquet(W, lambda f: f.assign(tags=[["a", "b"]] * len(f)), "an extra list<string> column 'tags'"), "same"),
        Case("parquet_float_amounts", to_parquet(W, lambda f: f.assign(amount_cny=pd.to_numeric(f["amount_cny"])), "amount_cny as float64"), "same"),
        Case("parquet_decimal_amounts", to_parquet(W, _decimal_amounts, "amount_cny as decimal128(18, 2)"), "same"),
        Case("parquet_int_disability", to_parquet(C, lambda f: f.assign(disability_level=f["disability_level"].astype("int64")), "disability_level as int64"), "same"),
        Case("parquet_timestamp_dates", to_parquet(W, lambda f: f.assign(event_date=pd.to_datetime(f["event_date"], errors="coerce", format="%Y-%m-%d")), "event_date as timestamp (unparseable dates -> null)"), "any"),
        Case("parquet_tz_birth_dates", to_parquet(C, _tz_birth, "birth_date as timestamp[tz=Asia/Shanghai]"), "any"),
        Case("parquet_bool_concerns", to_parquet(V, lambda f: f.assign(concern_safety=f["concern_safety"].eq("1")), "concern_safety as bool"), "any"),
        Case("parquet_category_codes", to_parquet(W, lambda f: f.assign(event_type=f["event_type"].astype("category")), "event_type as dictionary (category)"), "same"),
        Case("parquet_binary_names", to_parquet(C, lambda f: _arrow_with(f, name=pa.array([n.encode() for n in f["name"]], pa.binary())), "name as binary"), "same"),
        Case("parquet_duplicate_column_names", to_parquet(W, _duplicate_names, "event_type twice"), "reject"),
        Case("parquet_missing_required_column", to_parquet(M, lambda f: f.drop(columns=["event_type"]), "without event_type"), "reject"),
        Case("parquet_zero_rows_optional", to_parquet(P, lambda f: f.iloc[:0], "zero rows"), "any"),
        Case("parquet_truncated_children", to_parquet(C) + truncate_file(C), "reject"),
        Case("parquet_truncated_welfare", to_parquet(W) + truncate_file(W), "reject"),
        Case("csv_named_parquet", rename_file(W, "welfare_events.parquet"), "reject"),
        Case("parquet_named_csv", Mut(lambda f: (_frame(f, M).to_parquet(f / "m.parquet"), (f / "m.parquet").rename(_csv(f, M))), "medical_events.csv holds Parquet bytes"), "reject"),
    ]
    # fmt: on
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), [n for n, k in Counter(names).items() if k > 1]
    return cases


EXTENDED = frozenset(  # run only with --extended: variants of a default case
    """
    table_file_gzipped_name missing_medical empty_absences truncated_visits
    binary_calendar_optional fifo_welfare semicolon_visits tab_children comment_line_first
    mixed_line_ends gbk_children big5_children header_CHILD_ID_events header_near_miss_chlid_id
    extra_column_guardian_id column_name_bidi_override minus_formula_in_visit amount_nan
    amount_thousands_separator cost_negative concern_2 grade_1e12 medical_before_birth
    absence_before_birth date_9999_12_31 birth_date_1989 date_dotted_dmy date_excel_serial
    date_with_time date_empty_required duplicate_row_x3 child_id_too_long child_id_missing
    parquet_binary_names parquet_zero_rows_optional parquet_truncated_welfare
    parquet_int_disability parquet_category_codes header_only_welfare headerless_welfare
    disability_1e12 out_of_pocket_above_cost code_with_blanks child_id_lower_case
    table_file_upper_case_name dangling_symlink_welfare pipe_medical excel_sep_line
    trailing_blank_lines file_appended_to_itself double_bom_children header_inner_blank
    columns_reordered formula_in_accepted_row unknown_code_chinese_sex parquet_decimal_amounts
    empty_welfare binary_welfare whitespace_only_line utf8_invalid_byte_after_4mb
    header_zero_width_space tab_formula_in_value absence_days_1e12 date_year_0001
    date_no_padding
    """.split()  # noqa: SIM905 - one name per word reads better than 65 quoted strings
)


# --------------------------------------------------------------------------- running


def run_cmd(args: list[str], unreadable: bool) -> dict:
    env = os.environ | {"SAFETYNET_PID_KEY": "bench-hostile-key", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("SAFETYNET_DEBUG", None)
    prefix = NO_DAC if unreadable and os.geteuid() == 0 else []
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [*prefix, PYTHON, "-m", "src.cli", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out, err = None, exc.stdout or b"", exc.stderr or b""
    return {
        "rc": rc,
        "stdout": out.decode("utf-8", "backslashreplace"),
        "stderr": err.decode("utf-8", "backslashreplace"),
        "seconds": round(time.perf_counter() - start, 2),
    }


def write_params(path: Path, raw_dir: Path, overrides: dict) -> None:
    raw = yaml.safe_load(TEST_PARAMS.read_text(encoding="utf-8"))
    raw["data"]["raw_dir"] = str(raw_dir)
    for section, values in overrides.items():
        raw[section] |= values
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


FOUND = re.compile(
    r"^\[found\]\s+(\w+): .*?, (\d+) rows: (\d+) accepted, (\d+) quarantined, (\d+) duplicates collapsed$"
)
REASON = re.compile(r"^\s{4,}(\S+): (\d+) \(e\.g\. source rows")


def parse_validate(text: str) -> dict:
    """Export date, per-table counts (as data_quality.json spells them), problems, verdict."""
    out = {"export_date": None, "tables": {}, "problems": [], "verdict": None}
    date = re.search(r"\(export date ([^)]+)\)", text.split("\n", 1)[0])
    out["export_date"] = date.group(1) if date else None
    current = None
    for line in text.splitlines():
        found = FOUND.match(line)
        if found:
            t, read, acc, q, dup = found.groups()
            current = out["tables"][t] = {
                "rows_read": int(read),
                "rows_accepted": int(acc),
                "rows_quarantined": {"total": int(q), "by_reason": {}},
                "duplicates_collapsed": int(dup),
            }
            continue
        reason = REASON.match(line)
        if reason and current is not None:
            current["rows_quarantined"]["by_reason"][reason.group(1)] = int(reason.group(2))
            continue
        if line.startswith("[problem]"):
            out["problems"].append(line)
        if line.startswith("[absent]"):
            t = line.split()[1]
            out["tables"][t] = {"absent": True}
        if re.search(r"\(exit code \d\)$", line):
            out["verdict"] = line
        if not line.startswith(" "):
            current = None
    return out


def counts_of(table_quality: dict) -> dict:
    return {
        "rows_read": table_quality["rows_read"],
        "rows_accepted": table_quality["rows_accepted"],
        "rows_quarantined": {
            "total": table_quality["rows_quarantined"]["total"],
            "by_reason": dict(table_quality["rows_quarantined"]["by_reason"]),
        },
        "duplicates_collapsed": table_quality["duplicates_collapsed"],
    }


def expected_counts(clean: dict, delta: dict, got: dict | None = None) -> dict:
    """The clean counts plus `delta`. A reason written "a|b" may be either (the first that `got`
    shows with that increase): a date after the export date is `future_date` or, since the
    export-date work, `beyond_export_date`."""
    delta = {_resolve(k, n, clean, got): n for k, n in delta.items()}
    dups, accepted = delta.pop("duplicates", 0), delta.pop("accepted", 0)
    by_reason = Counter(clean["rows_quarantined"]["by_reason"])
    by_reason.update(delta)
    return {
        "rows_read": clean["rows_read"] + dups + accepted + sum(delta.values()),
        "rows_accepted": clean["rows_accepted"] + accepted,
        "rows_quarantined": {
            "total": sum(by_reason.values()),
            "by_reason": dict(sorted(by_reason.items())),
        },
        "duplicates_collapsed": clean["duplicates_collapsed"] + dups,
    }


def _resolve(key: str, n: int, clean: dict, got: dict | None) -> str:
    options = key.split("|")
    if got:
        base, seen = clean["rows_quarantined"]["by_reason"], got["rows_quarantined"]["by_reason"]
        for option in options:
            if seen.get(option, 0) - base.get(option, 0) == n:
                return option
    return options[0]


def _names_a_file(message: str, folder: Path) -> bool:
    return str(folder) in message or re.search(r"\w\.(csv|parquet)\b", message, re.I) is not None


def _controls(text: str, allowed: str = "\n") -> list[str]:
    return sorted(
        {repr(ch) for ch in text if unicodedata.category(ch) == "Cc" and ch not in allowed}
    )


def _is_formula(cell: str) -> bool:
    return bool(FORMULA_START.match(cell)) and not PLAIN_NUMBER.fullmatch(cell)


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error")]


def check_outputs(
    out: Path, quality_path: Path, quality: dict, pii: set[str], secrets: tuple
) -> tuple[list[str], list[str]]:
    """(reconciliation failures, leak/neutralising failures) of a successful ingest."""
    recon, leaks = [], []
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for table, q in quality["tables"].items():
        total = q["rows_quarantined"]["total"]
        if q["rows_read"] != q["rows_accepted"] + total + q["duplicates_collapsed"]:
            recon.append(
                f"{table}: read {q['rows_read']} != accepted {q['rows_accepted']} + quarantined {total} + duplicates {q['duplicates_collapsed']}"
            )
        if total != sum(q["rows_quarantined"]["by_reason"].values()):
            recon.append(f"{table}: quarantined total {total} != sum by reason")
        if q.get("reconciles") is not True:
            recon.append(f"{table}: reconciles = {q.get('reconciles')!r}")
        parquet_rows = manifest["rows"].get(table)
        if not q.get("default_calendar") and parquet_rows != q["rows_accepted"]:
            recon.append(
                f"{table}: {parquet_rows} rows in {table}.parquet but rows_accepted {q['rows_accepted']}"
            )
        qpath = out / "quarantine" / f"{table}.csv"
        n_quarantine = max(0, len(_rows(qpath, "utf-8-sig")) - 1) if qpath.exists() else 0
        if n_quarantine != total:
            recon.append(
                f"{table}: {n_quarantine} rows in quarantine/{table}.csv but rows_quarantined {total}"
            )
    identity_rows = manifest["rows"].get("identity")
    if (
        "children" in quality["tables"]
        and identity_rows != quality["tables"]["children"]["rows_accepted"]
    ):
        recon.append(
            f"identity.parquet has {identity_rows} rows, children accepted {quality['tables']['children']['rows_accepted']}"
        )

    texts = {
        p: p.read_text(encoding="utf-8-sig") for p in sorted((out / "quarantine").glob("*.csv"))
    }
    texts[quality_path] = quality_path.read_text(encoding="utf-8")
    texts[out / "manifest.json"] = json.dumps(manifest)
    for path, text in texts.items():
        found = sorted(s for s in (*pii, *secrets) if s and s in text)
        if found:
            leaks.append(
                f"personal/planted data in {path.name}: {', '.join(found[:3])}{' ...' if len(found) > 3 else ''} ({len(found)} values)"
            )
    for path in sorted((out / "quarantine").glob("*.csv")):
        rows = _rows(path, "utf-8-sig")
        for i, row in enumerate(rows):
            where = "header" if i == 0 else f"row {i}"
            for cell in row:
                if _controls(cell, allowed=""):
                    leaks.append(
                        f"raw control character {_controls(cell, '')} in quarantine/{path.name} {where}"
                    )
                    break
                if _is_formula(cell):
                    leaks.append(
                        f"un-neutralised formula {cell[:40]!r} in quarantine/{path.name} {where}"
                    )
                    break
    return recon, leaks


def run_case(case: Case, clean_dir: Path, work: Path, clean: dict | None, pii: set[str]) -> dict:
    case_dir = work / case.name
    case_dir.mkdir(parents=True)
    folder = case_dir / "exp"
    shutil.copytree(clean_dir, folder, symlinks=True)
    case.mutate(folder)
    params_path = case_dir / "params.yaml"
    write_params(params_path, folder, case.params)
    out, quality_path = case_dir / "interim", case_dir / "data_quality.json"
    validate_params = params_path if case.params else TEST_PARAMS
    v = run_cmd(["--params", str(validate_params), "validate", str(folder)], case.unreadable)
    g = run_cmd(
        [
            "--params",
            str(params_path),
            "ingest",
            "--raw",
            str(folder),
            "--interim",
            str(out),
            "--quality",
            str(quality_path),
        ],
        case.unreadable,
    )
    parsed = parse_validate(v["stdout"])
    bad, notes = [], []
    result = {
        "name": case.name,
        "repro": case.mutate.text,
        "expect": case.expect,
        "validate": v,
        "ingest": g,
        "validate_parsed": parsed,
        "reconciled": None,
    }

    # 1. tracebacks, exception-typed errors, hangs
    for label, r in (("validate", v), ("ingest", g)):
        text = r["stdout"] + r["stderr"]
        if r["rc"] is None:
            bad.append(f"{label} hung (killed after {TIMEOUT_S} s)")
        if "Traceback (most recent call last)" in text:
            bad.append(f"{label}: a traceback reached the user")
        typed = [line for line in text.splitlines() if re.match(r"error \(\w+\)", line)]
        if typed:
            bad.append(f"{label}: {typed[0][:160]}")
        if r["rc"] not in (None, 0, 1, 2):
            bad.append(f"{label}: unexpected exit code {r['rc']}")

    # 2. validate and ingest agree
    ingest_ok = g["rc"] == 0
    quality = (
        json.loads(quality_path.read_text(encoding="utf-8"))
        if ingest_ok and quality_path.exists()
        else None
    )
    if v["rc"] in (0, 1) and not ingest_ok:
        bad.append(f"validate said {v['rc']} (ingestible) but ingest failed")
    if v["rc"] == 2 and ingest_ok:
        bad.append("validate said 2 (not ingestible) but ingest succeeded")
    if ingest_ok and quality is None:
        bad.append("ingest succeeded without writing the data-quality report")
    if not ingest_ok and out.exists():
        bad.append("ingest failed but left a partial interim folder")
    if v["rc"] is not None and parsed["verdict"] is None:
        bad.append("validate printed no verdict line")
    elif v["rc"] is not None and f"(exit code {v['rc']})" not in parsed["verdict"]:
        bad.append(
            f"validate's verdict line {parsed['verdict']!r} disagrees with its exit code {v['rc']}"
        )
    if quality is not None and v["rc"] in (0, 1):
        for table, q in quality["tables"].items():
            seen = parsed["tables"].get(table, {})
            if seen.get("absent"):
                if q["rows_read"]:
                    bad.append(f"{table}: validate says absent, ingest read {q['rows_read']} rows")
            elif counts_of(q) != seen:
                bad.append(
                    f"{table}: validate's counts {seen} differ from data_quality.json {counts_of(q)}"
                )
        if quality["export_date"] != parsed["export_date"]:
            bad.append(
                f"export date: validate {parsed['export_date']}, ingest {quality['export_date']}"
            )
    ingest_errors = _error_lines(g["stderr"])
    if not ingest_ok and ingest_errors:
        message = re.sub(r"^error( \(\w+\))?: ", "", ingest_errors[0]).replace(
            "  [rerun with --debug for details]", ""
        )
        if message not in v["stdout"]:
            notes.append("ingest's error message is not among validate's problems")

    # 3. messages name a file
    if v["rc"] == 2:
        for problem in parsed["problems"] or [v["stdout"] + v["stderr"]]:
            if not _names_a_file(problem, folder):
                bad.append(f"validate: a message names no file: {problem[:160]!r}")
    if g["rc"] not in (0, None):
        message = ingest_errors[0] if ingest_errors else g["stderr"][-300:]
        if not _names_a_file(message, folder):
            bad.append(f"ingest: the message names no file: {message[:160]!r}")
        if not ingest_errors:
            bad.append("ingest failed without an error line")

    # 4. control characters in console output; formula-like lines in validate output
    for label, r in (("validate", v), ("ingest", g)):
        found = _controls(r["stdout"] + r["stderr"])
        if found:
            bad.append(f"{label} output holds raw control characters {found}")
    if any(_is_formula(line) for line in v["stdout"].splitlines() if line):
        bad.append("a validate output line starts like a spreadsheet formula")
    if re.search(r"values not read\): *(,|$)|values not read\):.*(, ,|, *$)", v["stdout"], re.M):
        notes.append("an empty column name is printed as nothing in the extra-columns list")
    console_leak = sorted(
        s for s in (*pii, *case.secrets) if s in v["stdout"] + v["stderr"] + g["stderr"]
    )
    if console_leak:
        notes.append(f"personal/planted data echoed on the console: {', '.join(console_leak[:3])}")

    # 5. reconciliation, leaks and neutralising in the outputs
    if quality is not None:
        recon, leaks = check_outputs(out, quality_path, quality, pii, case.secrets)
        result["reconciled"] = not recon
        bad += [f"reconciliation: {r}" for r in recon]
        bad += leaks
        result["quality_tables"] = {t: counts_of(q) for t, q in quality["tables"].items()}
        result["export_date"] = quality["export_date"]

    # 6. the export date
    date_now = (
        quality["export_date"]
        if quality
        else (parsed["export_date"] if v["rc"] in (0, 1) else None)
    )
    if (
        clean is not None
        and date_now
        and date_now != clean["export_date"]
        and not case.date_may_move
    ):
        bad.append(f"export date moved from {clean['export_date']} to {date_now}")

    # 7. what the case expects (and tables emptied yet ingestible)
    if clean is not None and v["rc"] in (0, 1):
        for table, c in parsed["tables"].items():
            if "absent" not in c and not c["rows_read"] and clean["tables"][table]["rows_read"]:
                notes.append(f"{table} has no rows, yet the export is ingestible (exit {v['rc']})")
    counts = result.get("quality_tables") or {
        t: c for t, c in parsed["tables"].items() if "absent" not in c
    }
    if clean is not None and v["rc"] is not None:
        if case.expect in ("reject", "rows") and v["rc"] == 0:
            bad.append('validate says "OK" (exit 0) for a broken file')
        if case.expect == "reject" and v["rc"] == 1:
            bad.append("broken file accepted as ingestible (validate 1)")
        if case.expect == "rows" and v["rc"] == 2:
            notes.append("rejected a file expected to be ingestible with quarantined rows")
        if case.expect == "same" and v["rc"] == 2:
            notes.append("rejected a benign variant expected to read like the clean export")
        if case.expect == "rows" and v["rc"] == 1:
            got = counts.get(case.table)
            want = expected_counts(clean["tables"][case.table], case.delta, got)
            if got != want:
                bad.append(f"{case.table}: expected {_short(want)}, got {_short(got)}")
            for table, c in clean["tables"].items():
                if table != case.table and counts.get(table) != c:
                    bad.append(
                        f"{table} changed: expected {_short(c)}, got {_short(counts.get(table))}"
                    )
        if case.expect == "same" and v["rc"] in (0, 1) and clean.get("rc") is not None:
            if v["rc"] != clean["rc"]:
                bad.append(f"validate exit {v['rc']}, the clean export gives {clean['rc']}")
            for table, c in clean["tables"].items():
                if counts.get(table) != c:
                    bad.append(
                        f"{table}: rows changed silently: expected {_short(c)}, got {_short(counts.get(table))}"
                    )
            if quality is not None and clean.get("identity"):
                identity = pd.read_parquet(out / "identity.parquet")
                got_id = {c: int(identity[c].notna().sum()) for c in ("name", "id_number")}
                if got_id != clean["identity"]:
                    bad.append(f"identity.parquet: non-empty {got_id}, clean {clean['identity']}")

    result["bad"], result["notes"] = list(dict.fromkeys(bad)), notes
    result["ingest_outcome"] = _ingest_outcome(g, quality)
    result["validate_message"] = _validate_message(v, parsed, clean)
    return result


def _short(c: dict | None) -> str:
    if not c:
        return repr(c)
    reasons = ", ".join(f"{k}={n}" for k, n in c["rows_quarantined"]["by_reason"].items())
    return (
        f"read {c['rows_read']}, accepted {c['rows_accepted']}, dup {c['duplicates_collapsed']}, "
        f"quarantined {c['rows_quarantined']['total']} [{reasons}]"
    )


def _ingest_outcome(g: dict, quality: dict | None) -> str:
    if g["rc"] is None:
        return "hung"
    if g["rc"] == 0 and quality is not None:
        return f"ok (export date {quality['export_date']})"
    lines = _error_lines(g["stderr"]) or [
        g["stderr"].strip().splitlines()[-1] if g["stderr"].strip() else ""
    ]
    return f"failed rc={g['rc']}: {lines[0].replace('  [rerun with --debug for details]', '')}"


def _validate_message(v: dict, parsed: dict, clean: dict | None) -> str:
    if v["rc"] is None:
        return "hung"
    if parsed["problems"]:
        return " | ".join(p.removeprefix("[problem] ") for p in parsed["problems"])
    parts = [parsed["verdict"] or (v["stdout"] + v["stderr"]).strip()[-200:]]
    if clean is not None:
        for table, c in parsed["tables"].items():
            base = clean["tables"].get(table, {})
            if "absent" in c:
                if base:
                    parts.append(f"{table} absent")
                continue
            if c != base:
                extra = Counter(c["rows_quarantined"]["by_reason"])
                extra.subtract(base.get("rows_quarantined", {}).get("by_reason", {}))
                changed = ", ".join(f"{k} {n:+d}" for k, n in extra.items() if n)
                parts.append(
                    f"{table}: read {c['rows_read'] - base.get('rows_read', 0):+d}, "
                    f"dup {c['duplicates_collapsed'] - base.get('duplicates_collapsed', 0):+d}"
                    f"{', ' + changed if changed else ''}"
                )
    notes = [
        line.strip()
        for line in v["stdout"].splitlines()
        if "read as" in line or "extra columns" in line or line.startswith("note:")
    ]
    return " | ".join(parts + notes[:3])


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=MAX_JOBS, help="parallel cases (at most 2)")
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument(
        "--extended", action="store_true", help=f"also the {len(EXTENDED)} variant cases"
    )
    parser.add_argument("--keep", type=Path, help="keep every case folder under this folder")
    parser.add_argument("--json", type=Path, help="write every result (full outputs) here")
    args = parser.parse_args()
    jobs = max(1, min(args.jobs, MAX_JOBS))

    cases = _cases()
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {c.name for c in cases}
        if unknown:
            parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")
        cases = [c for c in cases if c.name in wanted or c.name == "clean"]
    elif not args.extended:
        cases = [c for c in cases if c.name not in EXTENDED]

    root = Path(tempfile.mkdtemp(prefix="bench_hostile_")) if args.keep is None else args.keep
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        clean_dir = root / "clean"
        shutil.rmtree(clean_dir, ignore_errors=True)  # never a stale export from an older run
        generate.run(clean_dir, load_params(TEST_PARAMS, GEN_OVERRIDES))
        children = pd.read_csv(clean_dir / "children.csv", dtype=str, keep_default_na=False)
        pii = {
            *children["child_id"],
            *children["id_number"],
            *(n for n in children["name"] if len(n) >= 2),
        }
        pii.discard("")
        work = root / "cases"
        if work.exists():
            shutil.rmtree(work)

        control = next(c for c in cases if c.name == "clean")
        clean_result = run_case(control, clean_dir, work, None, pii)
        tables = clean_result.get("quality_tables")
        if clean_result["validate"]["rc"] not in (0, 1) or not tables:
            print("the clean export does not validate and ingest; stopping", file=sys.stderr)
            print(
                clean_result["validate"]["stdout"],
                clean_result["validate"]["stderr"],
                clean_result["ingest"]["stderr"],
                file=sys.stderr,
            )
            return 0
        identity = pd.read_parquet(work / "clean" / "interim" / "identity.parquet")
        clean = {
            "rc": clean_result["validate"]["rc"],
            "export_date": clean_result["export_date"],
            "tables": tables,
            "identity": {c: int(identity[c].notna().sum()) for c in ("name", "id_number")},
        }
        results = [clean_result]  # checked like every case, its own counts being the reference
        print(
            f"clean export: validate exit {clean['rc']}, export date {clean['export_date']}, {len(cases)} cases, {jobs} workers"
        )
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {
                pool.submit(run_case, c, clean_dir, work, clean, pii): c
                for c in cases
                if c.name != "clean"
            }
            for future in as_completed(futures):
                case = futures[future]
                try:
                    r = future.result()
                except Exception as exc:  # noqa: BLE001 - a broken case is reported, not fatal
                    r = {
                        "name": case.name,
                        "repro": case.mutate.text,
                        "bad": [],
                        "error": f"benchmark error (a bug here, not a verdict): {type(exc).__name__}: {exc}",
                        "notes": [],
                        "validate": {"rc": None},
                        "ingest_outcome": "-",
                        "validate_message": "-",
                        "reconciled": None,
                    }
                results.append(r)
                mark = "ERR " if r.get("error") else "BAD " if r["bad"] else "ok  "
                print(
                    f"{mark} {r['name']:<36} validate={r['validate']['rc']} ingest={r['ingest_outcome'][:60]}",
                    flush=True,
                )
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)

    order = {c.name: i for i, c in enumerate(cases)}
    results.sort(key=lambda r: order.get(r["name"], 1e9))
    report(results, time.perf_counter() - started)
    if args.json:
        args.json.write_text(
            json.dumps(results, indent=1, ensure_ascii=False, default=str), encoding="utf-8"
        )
    return 0


def report(results: list[dict], seconds: float) -> None:
    print("\n" + "=" * 100)
    for r in results:
        verdict = "ERROR" if r.get("error") else "BAD" if r["bad"] else "well"
        recon = {True: "held", False: "FAILED", None: "-"}[r.get("reconciled")]
        print(f"\n[{verdict}] {r['name']}  ({r['repro']})")
        print(f"    validate: exit {r['validate']['rc']}: {r['validate_message'][:400]}")
        print(f"    ingest:   {r['ingest_outcome'][:400]}")
        print(f"    reconciliation: {recon}")
        for b in r["bad"]:
            print(f"    BAD: {b[:400]}")
        for n in r["notes"]:
            print(f"    note: {n[:300]}")
        if r.get("error"):
            print(f"    {r['error'][:400]}")
    bad = [r for r in results if r["bad"]]
    errors = [r for r in results if r.get("error")]
    ingested = [r for r in results if r.get("reconciled") is not None]
    print("\n" + "=" * 100)
    print(
        f"tried: {len(results)}   handled well: {len(results) - len(bad) - len(errors)}   "
        f"bad: {len(bad)}   benchmark errors: {len(errors)}   reconciliation held: "
        f"{sum(r['reconciled'] for r in ingested)}/{len(ingested)} successful ingests   "
        f"({seconds:.0f} s)"
    )
    if bad:
        print("\nbad cases:")
        for r in bad:
            more = f" (+{len(r['bad']) - 1} more)" if len(r["bad"]) > 1 else ""
            print(f"  - {r['name']}: {r['bad'][0][:200]}{more}")
    for r in errors:
        print(f"  ! {r['name']}: {r['error'][:200]}")


if __name__ == "__main__":
    sys.exit(main())
