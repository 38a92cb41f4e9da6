"""Raw export files -> text: find each table's file, detect its encoding, check its header,
and stream it as chunks of text columns (CSV or Parquet alike).

Every structural problem (missing table, unreadable file, missing column, wrong table)
raises a one-line SafetynetError that names the file, the column and the fix.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from src.data.contract import TABLES
from src.errors import SafetynetError

ENCODINGS = ("utf-8", "utf-8-sig", "gb18030")
SAMPLE_BYTES = 4 << 20  # enough to see a few thousand rows, names included
CSV_BLOCK_BYTES = 16 << 20
ENCODING_FIX = (
    "set data.encoding in params.yaml (utf-8, utf-8-sig or gb18030) or export again as UTF-8"
)


@dataclass(frozen=True)
class RawFile:
    """One table's raw file, checked for readability and header."""

    table: str
    path: Path
    format: str  # "csv" or "parquet"
    encoding: str  # "utf-8", "utf-8-sig", "gb18030", or "parquet"
    columns: tuple[str, ...]

    @property
    def extra_columns(self) -> list[str]:
        known = set(TABLES[self.table].column_names)
        return [c for c in self.columns if c not in known]


def find_table_file(raw_dir: Path, table: str) -> Path | None:
    """`<table>.csv` or `<table>.parquet`; both present is an error (which one is the truth?)."""
    found = [p for p in (raw_dir / f"{table}.csv", raw_dir / f"{table}.parquet") if p.is_file()]
    if len(found) == 2:
        raise SafetynetError(
            f"{found[0]} and {found[1]}: both exist for table '{table}'; fix: keep only one of them"
        )
    if not found and TABLES[table].required:
        raise SafetynetError(
            f"{raw_dir / (table + '.csv')}: required table '{table}' is missing; fix: export it as "
            f"{table}.csv or {table}.parquet into {raw_dir} (columns: {', '.join(TABLES[table].required_columns)})"
        )
    return found[0] if found else None


def detect_encoding(sample: bytes) -> str:
    """utf-8-sig when there is a BOM, utf-8 when the sample decodes strictly, else gb18030."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        codecs.getincrementaldecoder("gb18030")("strict").decode(sample, final=False)
        return "gb18030"
    except UnicodeDecodeError:
        return ""


def read_csv_header(path: Path, sample: bytes, encoding: str) -> list[str]:
    try:
        text = codecs.getincrementaldecoder(encoding)("strict").decode(sample, final=False)
    except UnicodeDecodeError:
        raise SafetynetError(
            f"{path}: cannot be decoded as {encoding}; fix: {ENCODING_FIX}"
        ) from None
    header = next(csv.reader(io.StringIO(text)), None)
    if not header:
        raise SafetynetError(
            f"{path}: empty file, no header row; fix: export it again with a header row"
        )
    return header


def open_raw_file(table: str, path: Path, encoding_setting: str = "auto") -> RawFile:
    """Check that `path` is a readable file of `table` and return its description."""
    if path.suffix == ".parquet":
        try:
            columns = pq.ParquetFile(path).schema_arrow.names
        except (pa.ArrowException, OSError) as exc:
            raise SafetynetError(
                f"{path}: not a readable Parquet file ({type(exc).__name__}); fix: export it again"
            ) from None
        raw = RawFile(table, path, "parquet", "parquet", tuple(columns))
    else:
        with path.open("rb") as fh:
            sample = fh.read(SAMPLE_BYTES)
        encoding = encoding_setting if encoding_setting != "auto" else detect_encoding(sample)
        if not encoding:
            raise SafetynetError(f"{path}: neither UTF-8 nor GB18030 text; fix: {ENCODING_FIX}")
        raw = RawFile(table, path, "csv", encoding, tuple(read_csv_header(path, sample, encoding)))
    check_header(raw.table, list(raw.columns), str(path))
    return raw


def check_header(table: str, columns: list[str], file_name: str) -> None:
    """Raise when the header cannot be the table's: duplicates, another table, a missing column."""
    duplicated = pd.Index(columns)[pd.Index(columns).duplicated()].tolist()
    if duplicated:
        raise SafetynetError(
            f"{file_name}: column '{duplicated[0]}' appears twice in the header; fix: rename or drop one"
        )
    spec = TABLES[table]
    present = set(columns)
    missing = [c for c in spec.required_columns if c not in present]
    identifying = [c for c in spec.required_columns if c != "child_id"]
    other = resembled_table(table, columns)
    if other or (missing and not present & set(identifying)):
        looks = f" (its columns look like the '{other}' table)" if other else ""
        raise SafetynetError(
            f"{file_name}: column '{missing[0] if missing else identifying[0]}' missing: this file is not the "
            f"'{table}' table{looks}; fix: put the {table} export under this name"
            f"{f' and name this file {other}' if other else ''}"
        )
    if missing:
        raise SafetynetError(
            f"{file_name}: required column '{missing[0]}' is missing; fix: add it to the header "
            f"(required for {table}: {', '.join(spec.required_columns)})"
        )


def resembled_table(table: str, columns: list[str]) -> str | None:
    """Another table whose required columns are all present and which matches more columns."""
    present = set(columns)
    own = len(present & set(TABLES[table].column_names))
    for name, spec in TABLES.items():
        if name == table or not set(spec.required_columns) <= present:
            continue
        if len(present & set(spec.column_names)) > own:
            return name
    return None


def iter_text_chunks(
    raw: RawFile, chunk_rows: int, columns: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """The file as text frames of at most `chunk_rows` rows ("" for empty values).

    The index is `source_row`: the 1-based record number after the header.
    """
    start = 1
    pending: list[pa.RecordBatch] = []
    n_pending = 0
    for batch in _record_batches(raw, columns):
        pending.append(batch)
        n_pending += batch.num_rows
        while n_pending >= chunk_rows:
            table = pa.Table.from_batches(pending)
            yield _text_frame(table.slice(0, chunk_rows), start)
            start += chunk_rows
            rest = table.slice(chunk_rows)
            pending, n_pending = rest.to_batches(), rest.num_rows
    if n_pending:
        yield _text_frame(pa.Table.from_batches(pending), start)


def _text_frame(table: pa.Table, start: int) -> pd.DataFrame:
    frame = table.to_pandas()
    for col in frame.columns:
        frame[col] = (
            frame[col].astype(str).fillna("")
            if frame[col].dtype != "str"
            else frame[col].fillna("")
        )
    frame.index = pd.RangeIndex(start, start + len(frame), name="source_row")
    return frame


def _record_batches(raw: RawFile, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
    try:
        if raw.format == "parquet":
            for batch in pq.ParquetFile(raw.path).iter_batches(batch_size=1 << 20, columns=columns):
                yield _parquet_batch_as_text(batch)
        else:
            yield from _csv_reader(raw, columns)
    except pa.ArrowInvalid as exc:
        raise SafetynetError(f"{raw.path}: {_describe_arrow_error(str(exc))}") from None


def _csv_reader(raw: RawFile, columns: list[str] | None) -> pa_csv.CSVStreamingReader:
    # pyarrow skips a UTF-8 BOM itself; other encodings are transcoded through Python codecs.
    encoding = "utf8" if raw.encoding in ("utf-8", "utf-8-sig") else raw.encoding
    return pa_csv.open_csv(
        raw.path,
        read_options=pa_csv.ReadOptions(encoding=encoding, block_size=CSV_BLOCK_BYTES),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types={c: pa.string() for c in raw.columns},
            strings_can_be_null=False,
            include_columns=columns,
        ),
    )


def _parquet_batch_as_text(batch: pa.RecordBatch) -> pa.RecordBatch:
    arrays = []
    for array in batch.columns:
        if pa.types.is_timestamp(array.type):
            array = array.cast(pa.date32(), safe=False)
        arrays.append(array.cast(pa.string()))
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _describe_arrow_error(message: str) -> str:
    """A one-line cause and fix, without echoing the row (it may hold personal data)."""
    fields = re.search(r"Expected (\d+) columns, got (\d+)", message)
    if fields:
        return (
            f"not readable as CSV: a row has {fields.group(2)} fields where the header has "
            f"{fields.group(1)}; fix: quote values that contain commas and export again"
        )
    if "invalid UTF8" in message or "decode" in message.lower():
        column = re.search(r"CSV column #(\d+)", message)
        where = f" (column #{column.group(1)})" if column else ""
        return f"not valid text in the chosen encoding{where}; fix: {ENCODING_FIX}"
    return f"not readable ({message.splitlines()[0][:120]}); fix: export the file again"
