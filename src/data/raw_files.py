"""Raw export files -> text: find each table's file, detect its encoding, check its header,
and stream it as chunks of text columns (CSV or Parquet alike).

Every structural problem (missing table, unreadable file, missing column, wrong table)
raises a one-line SafetynetError that names the file, the column and the fix. Only the
contract's columns are read: values of extra columns are never loaded (their names are
reported). Header matching is in `src.data.headers`, read failures in `src.data.read_errors`.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from src.data.contract import TABLES
from src.data.headers import check_delimiter, normalise_header
from src.data.read_errors import ENCODING_FIX, read_error, unsupported_column
from src.errors import SafetynetError
from src.spreadsheet import printable

ENCODINGS = ("utf-8", "utf-8-sig", "gb18030")
SAMPLE_BYTES = 4 << 20  # enough to see a few thousand rows, names included
CSV_BLOCK_BYTES = 16 << 20


@dataclass(frozen=True)
class RawFile:
    """One table's raw file, checked for readability and header.

    `columns` are the header's names with contract columns matched (see src.data.headers);
    `source_columns` the cells as typed; `renamed` maps each cell read under another name.
    """

    table: str
    path: Path
    format: str  # "csv" or "parquet"
    encoding: str  # "utf-8", "utf-8-sig", "gb18030", or "parquet"
    columns: tuple[str, ...]
    source_columns: tuple[str, ...] = ()
    renamed: dict[str, str] = field(default_factory=dict)

    @property
    def contract_columns(self) -> list[str]:
        known = set(TABLES[self.table].column_names)
        return [c for c in self.columns if c in known]

    @property
    def extra_columns(self) -> list[str]:
        """Names of the columns outside the contract, control characters escaped."""
        known = set(TABLES[self.table].column_names)
        return [printable(c) for c in self.columns if c not in known]

    def source_name(self, column: str) -> str:
        return dict(zip(self.columns, self.source_columns or self.columns, strict=True))[column]


def find_table_file(raw_dir: Path, table: str) -> Path | None:
    """`<table>.csv` or `<table>.parquet`; both present is an error (which one is the truth?).

    A name that exists but is no regular readable file (a directory, a FIFO, a dangling or
    looping symlink) is an error too, also for an optional table: it was found, not absent.
    """
    found = [
        p for p in (raw_dir / f"{table}.csv", raw_dir / f"{table}.parquet") if os.path.lexists(p)
    ]
    if len(found) == 2:
        raise SafetynetError(
            f"{found[0]} and {found[1]}: both exist for table '{table}'; fix: keep only one of them"
        )
    if not found and TABLES[table].required:
        raise SafetynetError(
            f"{raw_dir / (table + '.csv')}: required table '{table}' is missing; fix: export it as "
            f"{table}.csv or {table}.parquet into {raw_dir} (columns: {', '.join(TABLES[table].required_columns)})"
        )
    if found:
        _check_regular_file(found[0], table)
    return found[0] if found else None


def _check_regular_file(path: Path, table: str) -> None:
    try:
        mode = path.stat().st_mode
    except OSError as exc:  # dangling symlink, symlink loop, no permission on a parent
        kind = "a symlink loop" if exc.errno == 40 else f"{type(exc).__name__}: {exc.strerror}"
        raise SafetynetError(
            f"{path}: table '{table}' was found but could not be read ({kind}); "
            f"fix: replace it with the exported file, or remove it"
        ) from None
    if not stat.S_ISREG(mode):
        kind = (
            "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
            "not a regular file"
        )  # fmt: skip
        raise SafetynetError(
            f"{path}: table '{table}' was found but could not be read (it is {kind}); "
            f"fix: replace it with the exported file, or remove it"
        )


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
    try:  # newline="": a header ended by CR alone is a header, not a broken field
        header = next(csv.reader(io.StringIO(text, newline="")), None)
    except csv.Error as exc:
        raise SafetynetError(
            f"{path}: the header row is not readable as CSV ({printable(exc)}); "
            f"fix: export it again as CSV with a plain header row"
        ) from None
    if not header:
        raise SafetynetError(
            f"{path}: empty file, no header row; fix: export it again with a header row"
        )
    check_delimiter(header, str(path))
    if header[0].startswith("\ufeff"):  # a BOM under a forced utf-8: pyarrow drops it too
        header[0] = header[0][1:]
    return header


def open_raw_file(table: str, path: Path, encoding_setting: str = "auto") -> RawFile:
    """Check that `path` is a readable file of `table` and return its description."""
    if path.suffix == ".parquet":
        try:
            source = pq.ParquetFile(path).schema_arrow
        except (pa.ArrowException, OSError) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, pa.ArrowException):
                raise read_error(path, "parquet", exc) from None
            raise SafetynetError(
                f"{path}: not a readable Parquet file ({type(exc).__name__}); fix: export it again"
            ) from None
        header, fmt, encoding = source.names, "parquet", "parquet"
    else:
        try:
            with path.open("rb") as fh:
                sample = fh.read(SAMPLE_BYTES)
        except OSError as exc:
            raise read_error(path, "", exc) from None
        encoding = encoding_setting if encoding_setting != "auto" else detect_encoding(sample)
        if not encoding:
            raise SafetynetError(f"{path}: neither UTF-8 nor GB18030 text; fix: {ENCODING_FIX}")
        header, fmt = read_csv_header(path, sample, encoding), "csv"
    columns, renamed = normalise_header(table, list(header), str(path))
    if fmt == "parquet":
        _check_parquet_types(path, source, columns, table)
    return RawFile(table, path, fmt, encoding, columns, tuple(header), renamed)


def _check_parquet_types(path: Path, schema: pa.Schema, columns: tuple, table: str) -> None:
    known = set(TABLES[table].column_names)
    for name, arrow_field in zip(columns, schema, strict=True):
        kind = arrow_field.type
        if name in known and (pa.types.is_nested(kind) or pa.types.is_dictionary(kind)):
            if pa.types.is_dictionary(kind) and not pa.types.is_nested(kind.value_type):
                continue
            raise unsupported_column(path, arrow_field.name, str(kind))


def iter_text_chunks(
    raw: RawFile, chunk_rows: int, columns: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """The file's contract columns (or `columns`) as text frames of at most `chunk_rows` rows
    ("" for empty values). The index is `source_row`: the 1-based record number after the header.
    """
    start = 1
    pending: list[pa.RecordBatch] = []
    n_pending = 0
    for batch in _record_batches(raw, columns if columns is not None else raw.contract_columns):
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


def _record_batches(raw: RawFile, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """Batches of `columns` (contract names) as text, whatever the file calls them."""
    source = [raw.source_name(c) for c in columns]
    try:
        if raw.format == "parquet":
            batches = pq.ParquetFile(raw.path).iter_batches(batch_size=1 << 20, columns=source)
            for batch in batches:
                yield _parquet_batch_as_text(batch, columns)
        else:
            for batch in _csv_reader(raw, source):
                yield pa.RecordBatch.from_arrays(batch.columns, names=columns)
    except (pa.ArrowException, OSError, UnicodeDecodeError, ValueError) as exc:
        raise read_error(raw.path, raw.encoding, exc) from None


def _csv_reader(raw: RawFile, source: list[str]) -> pa_csv.CSVStreamingReader:
    # pyarrow skips a UTF-8 BOM itself; other encodings are transcoded through Python codecs.
    encoding = "utf8" if raw.encoding in ("utf-8", "utf-8-sig") else raw.encoding
    return pa_csv.open_csv(
        raw.path,
        read_options=pa_csv.ReadOptions(encoding=encoding, block_size=CSV_BLOCK_BYTES),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types={c: pa.string() for c in source},
            strings_can_be_null=False,
            include_columns=source,
        ),
    )


def _parquet_batch_as_text(batch: pa.RecordBatch, names: list[str]) -> pa.RecordBatch:
    arrays = []
    for array in batch.columns:
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        if pa.types.is_timestamp(array.type):
            array = array.cast(pa.date32(), safe=False)
        arrays.append(array.cast(pa.string()))
    return pa.RecordBatch.from_arrays(arrays, names=names)
