"""Raw export (data.raw_dir) -> typed, validated, pseudonymised tables in data/interim/.

Every raw row ends in exactly one place: accepted (interim parquet), quarantined
(quarantine/<table>.csv, with one machine-readable reason), or collapsed as an exact
duplicate of an earlier row. reports/data_quality.json reconciles the three per table.

A quarantined row gets the FIRST reason that applies, in this fixed order
(`reason_order`), so that counts by reason add up to the quarantined total:

1. parse failures, by column in contract order: ``malformed_date:<col>``, ``malformed_number:<col>``
2. column checks, by column in contract order, each column's checks in the order
   ``missing_required, unknown_code, invalid_format, out_of_range, future_date, date_before_1990``
3. row rules of the contract (``ROW_RULES`` order), e.g. ``amount_required:amount_cny``
4. cross-table checks: ``duplicate_child_id`` (children), then ``unknown_child`` and
   ``child_quarantined`` (event tables)

Values are read as text first. Empty (or all-blank) values are missing. Codes, dates and
numbers are stripped of surrounding blanks; ids and free text are kept as typed.

Quarantine files hold the raw row as typed (formula-neutralised, src.spreadsheet) so that an
analyst can fix the export, with one exception: a non-empty ``name`` or ``id_number`` is
replaced by ``<withheld: personal data>`` (an empty one stays empty). ``child_id`` and
``source_row`` locate the row in the export, where the original values still are.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import Progress

from src.atomic import atomic_dir, write_json
from src.data import contract
from src.data.contract import DATE, INT, NUMBER, ROW_RULES, TABLES, build_schema
from src.data.pseudonymise import PidKey, child_pids, load_pid_key
from src.data.raw_files import RawFile, find_table_file, iter_text_chunks, open_raw_file
from src.errors import SafetynetError
from src.spreadsheet import neutralise_formulas

log = logging.getLogger(__name__)

COLUMN_CHECKS = (
    "missing_required",
    "unknown_code",
    "invalid_format",
    "out_of_range",
    "future_date",
    "date_before_1990",
)
EVENT_TABLES = tuple(
    t for t, s in TABLES.items() if "child_id" in s.column_names and t != "children"
)
IDENTITY_COLUMNS = ("child_id", "name", "id_number")
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
NUMBER_PATTERN = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
PERSONAL_COLUMNS = ("name", "id_number")  # withheld from quarantine files
WITHHELD = "<withheld: personal data>"
EXAMPLES_PER_REASON = 5
TRUTH_FILE = "truth.parquet"


# --------------------------------------------------------------------------- parsing


def reason_order(table: str) -> list[str]:
    """Every reason a row of `table` can get, first-wins order (see module docstring)."""
    spec = TABLES[table]
    order = [
        f"malformed_{'date' if c.kind == DATE else 'number'}:{c.name}"
        for c in spec.columns
        if c.kind in (DATE, INT, NUMBER)
    ]
    order += [f"{check}:{c.name}" for c in spec.columns for check in COLUMN_CHECKS]
    order += [f"{name}:{column}" for name, (column, _) in ROW_RULES.get(table, {}).items()]
    if table == "children":
        order.append("duplicate_child_id")
    elif "child_id" in spec.column_names:
        order += ["unknown_child", "child_quarantined"]
    return order


def parse_text(raw: pd.DataFrame, table: str) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Text columns -> contract dtypes, plus a mask of malformed values per parse reason.

    Optional columns absent from the file become all-missing columns.
    """
    parsed, malformed = {}, {}
    for col in TABLES[table].columns:
        text = raw[col.name] if col.name in raw else pd.Series("", index=raw.index, dtype=str)
        if col.kind in (DATE, INT, NUMBER):
            stripped = text.str.strip()
            blank = stripped.eq("")
            values, ok = (parse_dates if col.kind == DATE else parse_numbers)(
                stripped, col.kind == INT
            )
            malformed[f"malformed_{'date' if col.kind == DATE else 'number'}:{col.name}"] = (
                ~blank & ~ok
            )
            parsed[col.name] = values
        else:
            value = text.str.strip() if col.kind == contract.CODE else text
            parsed[col.name] = value.where(text.str.strip().ne(""))
    return pd.DataFrame(parsed, index=raw.index), malformed


def parse_dates(text: pd.Series, _integer: bool = False) -> tuple[pd.Series, pd.Series]:
    """Strict YYYY-MM-DD: a real calendar date written with exactly that shape."""
    arr = _arrow_text(text)
    shaped = pc.if_else(pc.match_substring_regex(arr, DATE_PATTERN), arr, None)
    try:  # fast path: arrow's ISO cast, which fails as a whole on any impossible date
        days = (
            shaped.cast(pa_arrow.date32())
            .cast(pa_arrow.timestamp("us"))
            .to_numpy(zero_copy_only=False)
        )
        values = pd.Series(days, index=text.index, dtype="datetime64[us]")
    except pa_arrow.ArrowInvalid:  # e.g. 2024-02-30 somewhere in the chunk: pandas per value
        # positional: to_pandas() has a 0-based index, text.index is source_row (1-based)
        shaped_text = pd.Series(shaped.to_pandas().to_numpy(), index=text.index, dtype=str)
        values = pd.to_datetime(shaped_text, format="%Y-%m-%d", errors="coerce").astype(
            "datetime64[us]"
        )
    return values, values.notna()


def parse_numbers(text: pd.Series, integer: bool) -> tuple[pd.Series, pd.Series]:
    """Finite decimal numbers (1, -2.5, 1e3); for integer columns also a whole value ("3", "3.0")."""
    arr = _arrow_text(text)
    shaped = pc.if_else(pc.match_substring_regex(arr, NUMBER_PATTERN), arr, None)
    values = pd.Series(
        pc.cast(shaped, pa_arrow.float64()).to_numpy(zero_copy_only=False), index=text.index
    )
    ok = np.isfinite(values)
    if integer:
        ok &= values.eq(np.floor(values))
        return values.where(ok).round().astype("Int64"), ok
    return values.where(ok), ok


def _arrow_text(text: pd.Series) -> pa_arrow.Array:
    arr = pa_arrow.array(text, type=pa_arrow.large_string(), from_pandas=True)
    return arr.combine_chunks() if isinstance(arr, pa_arrow.ChunkedArray) else arr


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Registry:
    """The accepted children (id -> pid by position) and the ids whose rows were quarantined.

    Arrow hash look-ups: a million ids cost ~50 ms per chunk, without copying to Python objects.
    """

    ids: pa_arrow.Array
    pids: pa_arrow.Array
    quarantined: pa_arrow.Array

    @classmethod
    def build(cls, ids, pids, quarantined=()) -> Registry:
        def as_text(v):
            return pa_arrow.array(np.asarray(v, dtype=object), type=pa_arrow.large_string())  # noqa: E731

        return cls(
            as_text(ids),
            pa_arrow.array(np.asarray(pids, dtype=object), type=pa_arrow.string()),
            as_text(quarantined),
        )

    def positions(self, child_ids: pd.Series) -> np.ndarray:
        """Row of each id in the registry, -1 when absent."""
        found = pc.index_in(_arrow_text(child_ids), value_set=self.ids)
        return pc.fill_null(found, -1).to_numpy(zero_copy_only=False)

    def is_quarantined(self, child_ids: pd.Series) -> np.ndarray:
        return pc.is_in(_arrow_text(child_ids), value_set=self.quarantined).to_numpy(
            zero_copy_only=False
        )


def contract_failures(
    parsed: pd.DataFrame, table: str, export_date: dt.date
) -> dict[str, pd.Index]:
    """Source rows failing each pandera check of the contract, keyed by `<check>:<column>`."""
    try:
        build_schema(table, export_date).validate(parsed, lazy=True)
        return {}
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    column_level = cases["schema_context"].eq("Column")
    reasons = np.where(
        column_level, cases["check"] + ":" + cases["column"].astype(str), cases["check"]
    )
    known = set(reason_order(table))
    unknown = sorted(set(reasons) - known)
    if unknown:  # a dtype or column failure: our own parsing is broken, not the data
        raise RuntimeError(f"{table}: unexpected schema failure {unknown[0]}")
    found = pd.DataFrame({"reason": reasons, "row": cases["index"].to_numpy()})
    return {r: pd.Index(rows.unique()) for r, rows in found.groupby("reason")["row"]}


def cross_table_failures(parsed: pd.DataFrame, table: str, registry: Registry | None) -> dict:
    """duplicate_child_id within the registry; unknown_child / child_quarantined for events."""
    ids = parsed["child_id"]
    if table == "children":
        return {"duplicate_child_id": ids.notna() & ids.duplicated(keep=False)}
    if registry is None or "child_id" not in parsed:
        return {}
    known = registry.positions(ids) >= 0
    quarantined = registry.is_quarantined(ids)
    return {
        "unknown_child": ids.notna() & ~known & ~quarantined,
        "child_quarantined": ids.notna() & quarantined,
    }


def first_reasons(index: pd.Index, failures: dict, order: list[str]) -> pd.Series:
    """One reason per row: the first failing one in `order` (missing = valid)."""
    reasons = pd.Series(pd.NA, index=index, dtype="str")
    for reason in order:
        if reason not in failures:
            continue
        hit = failures[reason]
        mask = hit.to_numpy(bool) if isinstance(hit, pd.Series) else index.isin(hit)
        reasons = reasons.mask(mask & reasons.isna().to_numpy(), reason)
    return reasons


def validate_rows(
    raw: pd.DataFrame, table: str, export_date: dt.date, registry: Registry | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """Parsed values and the quarantine reason of each raw text row (missing = accepted)."""
    parsed, failures = parse_text(raw, table)
    failures |= contract_failures(parsed, table, export_date)
    if "child_id" in parsed:
        failures |= cross_table_failures(parsed, table, registry)
    return parsed, first_reasons(raw.index, failures, reason_order(table))


# --------------------------------------------------------------------------- duplicates


class DuplicateFilter:
    """Exact duplicate rows (all raw text columns) across chunks, by 64-bit row hash.

    The hashes seen so far are kept sorted (8 bytes a row). A false collision needs two
    different rows with the same 64-bit hash: about 3e-5 for 36 million rows in one table.
    """

    def __init__(self) -> None:
        self.seen = np.empty(0, dtype=np.uint64)

    def first_seen(self, raw: pd.DataFrame) -> np.ndarray:
        hashes = pd.util.hash_pandas_object(raw, index=False).to_numpy()
        keep = ~pd.Series(hashes).duplicated().to_numpy()
        if len(self.seen):
            pos = np.searchsorted(self.seen, hashes).clip(max=len(self.seen) - 1)
            keep &= self.seen[pos] != hashes
        new = np.sort(hashes[keep])
        self.seen = np.sort(
            np.concatenate([self.seen, new]), kind="stable"
        )  # merges two sorted runs
        return keep


# --------------------------------------------------------------------------- outputs


def interim_dtypes(table: str) -> dict[str, str]:
    """Pandas dtypes of data/interim/<table>.parquet (docs/architecture.md)."""
    if table == "identity":
        return {c: "str" for c in ("child_pid", *IDENTITY_COLUMNS)}
    if table == "truth":
        return {"child_pid": "str", "as_of": "datetime64[us]", "p_true": "float64"}
    kinds = {DATE: "datetime64[us]", INT: "Int64", NUMBER: "float64"}
    dtypes = {"child_pid": "str"} if "child_id" in TABLES[table].column_names else {}
    for col in TABLES[table].columns:
        if col.name not in IDENTITY_COLUMNS:
            dtypes[col.name] = (
                "int8" if col.name in contract.CONCERNS else kinds.get(col.kind, "str")
            )
    return dtypes


def interim_schema(table: str) -> pa_arrow.Schema:
    """Arrow schema (plain `string`) carrying the pandas metadata, so readers get Int64 back."""
    empty = pd.DataFrame({c: pd.Series([], dtype=d) for c, d in interim_dtypes(table).items()})
    pandas_schema = pa_arrow.Schema.from_pandas(empty, preserve_index=False)
    fields = [
        pa_arrow.field(
            f.name, pa_arrow.string() if pa_arrow.types.is_large_string(f.type) else f.type
        )
        for f in pandas_schema
    ]
    return pa_arrow.schema(fields, metadata=pandas_schema.metadata)


def interim_table(
    accepted: pd.DataFrame, table: str, pids: pa_arrow.Array | None
) -> pa_arrow.Table:
    """Accepted parsed rows in interim form: child_pid instead of identity, contract dtypes."""
    schema = interim_schema(table)
    frame = accepted.drop(columns=[c for c in IDENTITY_COLUMNS if c in accepted]).reset_index(
        drop=True
    )
    for col in contract.CONCERNS:
        if col in frame:
            frame[col] = frame[col].astype("int8")
    if pids is None:
        return pa_arrow.Table.from_pandas(frame, schema=schema, preserve_index=False)
    rest = pa_arrow.schema([f for f in schema if f.name != "child_pid"])
    out = pa_arrow.Table.from_pandas(frame, schema=rest, preserve_index=False)
    return out.add_column(
        0, schema.field("child_pid"), pids.cast(pa_arrow.string())
    ).replace_schema_metadata(schema.metadata)


def withhold_personal(raw: pd.DataFrame) -> pd.DataFrame:
    """`raw` with each non-empty name / id_number replaced by WITHHELD (empty stays empty)."""
    out = raw.copy()
    for col in PERSONAL_COLUMNS:
        if col in out:
            typed = out[col].notna() & out[col].astype("string").str.strip().ne("")
            out[col] = out[col].mask(typed.fillna(False).astype(bool), WITHHELD)
    return out


def quarantine_frame(raw: pd.DataFrame, reasons: pd.Series) -> pd.DataFrame:
    """The raw text row (personal data withheld, formulas neutralised) + `reason` + `source_row`.

    A raw column that is itself named `reason` or `source_row` (welfare_events has
    `reason`) is kept as `raw_<name>`.
    """
    out = (
        withhold_personal(raw)
        .apply(neutralise_formulas)
        .rename(columns=lambda c: f"raw_{c}" if c in ("reason", "source_row") else c)
    )
    out["reason"] = reasons.to_numpy()
    out["source_row"] = raw.index.to_numpy()
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- counting


@dataclass
class TableCounts:
    rows_read: int = 0
    rows_accepted: int = 0
    duplicates_collapsed: int = 0
    by_reason: Counter = field(default_factory=Counter)

    def add(self, n_read: int, n_duplicates: int, reasons: pd.Series) -> None:
        self.rows_read += n_read
        self.duplicates_collapsed += n_duplicates
        self.rows_accepted += int(reasons.isna().sum())
        self.by_reason.update(reasons.dropna().value_counts().to_dict())

    @property
    def rows_quarantined(self) -> int:
        return sum(self.by_reason.values())

    def check_reconciles(self, table: str) -> None:
        """rows read = accepted + quarantined + duplicates, or the stage is wrong and must stop."""
        total = self.rows_accepted + self.rows_quarantined + self.duplicates_collapsed
        if self.rows_read != total:
            raise RuntimeError(f"{table}: {self.rows_read} rows read but {total} accounted for")

    def as_dict(self) -> dict:
        return {
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted,
            "rows_quarantined": {
                "total": self.rows_quarantined,
                "by_reason": dict(sorted(self.by_reason.items())),
            },
            "duplicates_collapsed": self.duplicates_collapsed,
        }


# --------------------------------------------------------------------------- sinks


class InterimSink:
    """Writes accepted rows to parquet and quarantined rows to CSV, chunk by chunk."""

    def __init__(self, out_dir: Path, table: str, raw_columns: Iterable[str]) -> None:
        self.table = table
        self.path = out_dir / f"{table}.parquet"
        self.writer = pq.ParquetWriter(self.path, interim_schema(table), compression="zstd")
        quarantine_dir = out_dir / "quarantine"
        quarantine_dir.mkdir(exist_ok=True)
        self.quarantine = (quarantine_dir / f"{table}.csv").open(
            "w", encoding="utf-8-sig", newline=""
        )
        header = quarantine_frame(
            pd.DataFrame(columns=list(raw_columns), dtype=str), pd.Series([], dtype=str)
        )
        header.to_csv(self.quarantine, index=False, lineterminator="\n")

    def accept(self, table: pa_arrow.Table) -> None:
        self.writer.write_table(table)

    def reject(self, raw: pd.DataFrame, reasons: pd.Series) -> None:
        if len(raw):
            quarantine_frame(raw, reasons).to_csv(
                self.quarantine, index=False, header=False, lineterminator="\n"
            )

    def close(self) -> None:
        self.writer.close()
        self.quarantine.close()


class ExampleSink:
    """Writes nothing; keeps the first few source rows per reason for validate_export."""

    def __init__(self) -> None:
        self.examples: dict[str, list[int]] = {}

    def accept(self, table: pa_arrow.Table) -> None:
        pass

    def reject(self, raw: pd.DataFrame, reasons: pd.Series) -> None:
        for reason, rows in reasons.groupby(reasons, sort=False).groups.items():
            kept = self.examples.setdefault(reason, [])
            kept.extend(int(r) for r in rows[: EXAMPLES_PER_REASON - len(kept)])

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- table processing


def process_chunk(
    raw, table, export_date, registry, dedup, counts, sink
) -> tuple[pd.DataFrame, pd.Series]:
    """Collapse duplicates, validate, and hand accepted and quarantined rows to the sink."""
    n_read = len(raw)
    first = dedup.first_seen(raw)
    if not first.all():
        raw = raw[first]
    parsed, reasons = validate_rows(raw, table, export_date, registry)
    counts.add(n_read, n_read - len(raw), reasons)
    bad = reasons.notna().to_numpy()
    if not bad.any():
        return parsed, reasons
    sink.reject(raw[bad], reasons[bad])
    return parsed[~bad], reasons


def ingest_children(raw_file, export_date, chunk_rows, key: PidKey, sink, out_dir=None):
    """The registry, read whole (one row per child): counts, Registry and identity rows."""
    chunks = list(iter_text_chunks(raw_file, chunk_rows))
    raw = pd.concat(chunks) if chunks else _empty_text_frame(raw_file.columns)
    counts = TableCounts()
    accepted, reasons = process_chunk(
        raw, "children", export_date, None, DuplicateFilter(), counts, sink
    )
    quarantined_ids = raw.loc[reasons.index[reasons.notna()], "child_id"]
    registry = Registry.build(
        accepted["child_id"],
        child_pids(accepted["child_id"], key.key),
        quarantined_ids[quarantined_ids.ne("")].unique(),
    )
    sink.accept(interim_table(accepted, "children", registry.pids))
    identity = accepted.reindex(columns=list(IDENTITY_COLUMNS)).reset_index(drop=True)
    identity.insert(0, "child_pid", pd.Series(registry.pids.to_pylist(), dtype=str))
    return counts, registry, identity


def ingest_events(
    raw_file, table, export_date, chunk_rows, registry, sink, progress=None
) -> TableCounts:
    """One event table (or the calendar), streamed chunk by chunk."""
    counts, dedup = TableCounts(), DuplicateFilter()
    task = progress.add_task(table, total=None) if progress else None
    for raw in iter_text_chunks(raw_file, chunk_rows):
        accepted, _ = process_chunk(raw, table, export_date, registry, dedup, counts, sink)
        has_pid = registry is not None and "child_id" in accepted
        pids = registry.pids.take(registry.positions(accepted["child_id"])) if has_pid else None
        sink.accept(interim_table(accepted, table, pids))
        if progress:
            progress.advance(task, len(raw))
    return counts


def _empty_text_frame(columns: Iterable[str]) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([], dtype=str) for c in columns})
    frame.index = pd.RangeIndex(1, 1, name="source_row")
    return frame


# --------------------------------------------------------------------------- export date


def infer_export_date(raw_files: dict[str, RawFile], chunk_rows: int, today: dt.date) -> dt.date:
    """The latest valid record date not after `today` (the calendar file is not a record)."""
    latest = None
    for table, raw_file in raw_files.items():
        if table == "school_calendar":
            continue
        date_columns = [
            c.name for c in TABLES[table].columns if c.kind == DATE and c.name in raw_file.columns
        ]
        for chunk in iter_text_chunks(raw_file, chunk_rows, columns=date_columns):
            for col in date_columns:
                values, _ = parse_dates(chunk[col].str.strip())
                values = values[
                    (values >= pd.Timestamp(contract.MIN_DATE)) & (values <= pd.Timestamp(today))
                ]
                if len(values) and (latest is None or values.max() > latest):
                    latest = values.max()
    if latest is None:
        log.warning("no valid record date in the export; export date = today (%s)", today)
        return today
    return latest.date()


# --------------------------------------------------------------------------- run


def locate_export(raw_dir: Path, encoding: str) -> dict[str, RawFile]:
    """Every contract table's file, opened and header-checked (structural errors raise)."""
    if not raw_dir.is_dir():
        raise SafetynetError(
            f"{raw_dir}: raw export folder not found; fix: set data.raw_dir in params.yaml"
        )
    found = {}
    for table in TABLES:
        path = find_table_file(raw_dir, table)
        if path is not None:
            found[table] = open_raw_file(table, path, encoding)
    return found


def run(raw_dir, interim_dir, quality_path, params) -> dict:
    """Ingest the raw export into interim_dir and write the data-quality report."""
    raw_dir, interim_dir = Path(raw_dir), Path(interim_dir)
    key = load_pid_key()
    raw_files = locate_export(raw_dir, params.data.encoding)
    chunk_rows = params.ingest.chunk_rows
    export_date = params.base.export_date or infer_export_date(
        raw_files, chunk_rows, dt.date.today()
    )
    log.info("ingest %s: export date %s, pid key %s", raw_dir, export_date, key.status)
    quality = {"export_date": export_date.isoformat(), "pid_key": key.status, "tables": {}}
    with atomic_dir(interim_dir) as out, _progress() as progress:
        registry = _write_tables(
            raw_files, out, export_date, chunk_rows, key, quality["tables"], progress
        )
        truth_rows = _write_truth(raw_dir / TRUTH_FILE, out, registry, key)
        if truth_rows is not None:
            quality["truth_rows"] = truth_rows
        manifest = _write_manifest(out, export_date, key)
    write_json(quality_path, quality)
    return {"export_date": export_date.isoformat(), "pid_key": key.status, "rows": manifest["rows"]}


def _write_tables(raw_files, out, export_date, chunk_rows, key, quality, progress) -> Registry:
    sink = InterimSink(out, "children", raw_files["children"].columns)
    counts, registry, identity = ingest_children(
        raw_files["children"], export_date, chunk_rows, key, sink
    )
    sink.close()
    quality["children"] = _table_quality(raw_files["children"], counts)
    pq.write_table(
        pa_arrow.Table.from_pandas(
            identity, schema=interim_schema("identity"), preserve_index=False
        ),
        out / "identity.parquet",
        compression="zstd",
    )
    for table in [t for t in TABLES if t != "children"]:
        raw_file = raw_files.get(table)
        columns = raw_file.columns if raw_file else TABLES[table].column_names
        sink = InterimSink(out, table, columns)
        counts = TableCounts()
        if raw_file is not None:
            counts = ingest_events(
                raw_file, table, export_date, chunk_rows, registry, sink, progress
            )
        sink.close()
        quality[table] = _table_quality(raw_file, counts)
    first_date = _earliest_record_date(out)
    if "school_calendar" not in raw_files:
        calendar = contract.default_school_calendar(dt.date(first_date.year, 1, 1), export_date)
        pq.write_table(
            pa_arrow.Table.from_pandas(
                calendar, schema=interim_schema("school_calendar"), preserve_index=False
            ),
            out / "school_calendar.parquet",
            compression="zstd",
        )
        quality["school_calendar"]["default_calendar"] = True
    return registry


def _earliest_record_date(out: Path) -> dt.date:
    earliest = None
    for table, spec in TABLES.items():
        if table == "school_calendar":
            continue
        column = pq.read_table(out / f"{table}.parquet", columns=[spec.date_column])[
            spec.date_column
        ]
        low = pa_arrow.compute.min(column).as_py()
        if low is not None and (earliest is None or low < earliest):
            earliest = low
    return earliest.date() if earliest is not None else contract.MIN_DATE


def _table_quality(raw_file: RawFile | None, counts: TableCounts) -> dict:
    counts.check_reconciles(raw_file.table if raw_file else "?")
    return {
        "found": raw_file is not None,
        "file": raw_file.path.name if raw_file else None,
        "encoding": raw_file.encoding if raw_file else None,
        **counts.as_dict(),
        "extra_columns": raw_file.extra_columns if raw_file else [],
        "reconciles": True,
    }


def _write_truth(path: Path, out: Path, registry: Registry, key: PidKey) -> int | None:
    """Generator truth with child_pid instead of child_id (only tests and benchmarks read it)."""
    if not path.is_file():
        return None
    source = pq.ParquetFile(path)
    missing = [c for c in ("child_id", "as_of", "p_true") if c not in source.schema_arrow.names]
    if missing:
        raise SafetynetError(
            f"{path}: column '{missing[0]}' missing; fix: regenerate the synthetic data"
        )
    rows = 0
    with pq.ParquetWriter(
        out / "truth.parquet", interim_schema("truth"), compression="zstd"
    ) as writer:
        for batch in source.iter_batches(
            batch_size=1 << 21, columns=["child_id", "as_of", "p_true"]
        ):
            ids = batch.column("child_id").to_pandas().astype(str)
            truth = pa_arrow.table(
                {
                    "child_pid": _pids_for_any(ids, registry, key),
                    "as_of": batch.column("as_of").cast(pa_arrow.timestamp("us")),
                    "p_true": batch.column("p_true").cast(pa_arrow.float64()),
                },
                schema=interim_schema("truth"),
            )
            writer.write_table(truth)
            rows += truth.num_rows
    return rows


def _pids_for_any(ids: pd.Series, registry: Registry, key: PidKey) -> pa_arrow.Array:
    """Registry pids, hashing directly the (rare) ids outside the accepted registry."""
    pos = registry.positions(ids)
    if (pos >= 0).all():
        return registry.pids.take(pos)
    pids = np.asarray(child_pids(ids, key.key), dtype=object)
    return pa_arrow.array(pids, type=pa_arrow.string())


def _write_manifest(out: Path, export_date: dt.date, key: PidKey) -> dict:
    files = sorted(out.glob("*.parquet"))
    manifest = {
        "export_date": export_date.isoformat(),
        "pid_key": key.status,
        "rows": {p.stem: pq.ParquetFile(p).metadata.num_rows for p in files},
        "sha256": {p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in files},
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return manifest


def _progress() -> Progress:
    return Progress(console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty())


# --------------------------------------------------------------------------- validate


@dataclass
class TableCheck:
    table: str
    required: bool
    found: bool = False
    file: str | None = None
    encoding: str | None = None
    counts: TableCounts = field(default_factory=TableCounts)
    examples: dict[str, list[int]] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    problem: str | None = None


@dataclass
class ValidationReport:
    """What ingest would do with an export folder; nothing is written."""

    raw_dir: str
    export_date: str | None
    tables: list[TableCheck]
    notes: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [t.problem for t in self.tables if t.problem]

    @property
    def ingestible(self) -> bool:
        """No structural problem: ingest would run (possibly quarantining rows)."""
        return not self.problems

    @property
    def ok(self) -> bool:
        """The export conforms: ingestible and not a single row would be quarantined."""
        return self.ingestible and all(t.counts.rows_quarantined == 0 for t in self.tables)

    def render(self) -> str:
        lines = [f"Export {self.raw_dir}  (export date {self.export_date or 'unknown'})", ""]
        for t in self.tables:
            lines += _render_table(t)
        lines += [f"note: {n}" for n in self.notes]
        verdict = (
            "OK: conforms to the data contract"
            if self.ok
            else (
                "INGESTIBLE, with rows to quarantine"
                if self.ingestible
                else "NOT INGESTIBLE: fix the problems above"
            )
        )
        return "\n".join([*lines, "", verdict])


def _render_table(t: TableCheck) -> list[str]:
    if t.problem:
        return [f"[problem] {t.table}: {t.problem}"]
    if not t.found:
        return [
            f"[absent]  {t.table} (optional; {'default calendar used' if t.table == 'school_calendar' else 'empty'})"
        ]
    c = t.counts
    lines = [
        f"[found]   {t.table}: {t.file} ({t.encoding}), {c.rows_read} rows: {c.rows_accepted} accepted, "
        f"{c.rows_quarantined} quarantined, {c.duplicates_collapsed} duplicates collapsed"
    ]
    for reason, n in sorted(c.by_reason.items()):
        rows = ", ".join(map(str, t.examples.get(reason, [])))
        lines.append(f"            {reason}: {n} (e.g. source rows {rows})")
    if t.extra_columns:
        lines.append(f"            extra columns (ignored): {', '.join(t.extra_columns)}")
    return lines


def validate_export(raw_dir, params) -> ValidationReport:
    """Run every ingest check on `raw_dir` without writing; problems are listed, not raised."""
    raw_dir = Path(raw_dir)
    checks = {t: TableCheck(t, spec.required) for t, spec in TABLES.items()}
    raw_files = _open_for_validation(raw_dir, params.data.encoding, checks)
    notes = []
    try:
        export_date = params.base.export_date or infer_export_date(
            raw_files, params.ingest.chunk_rows, dt.date.today()
        )
    except SafetynetError as exc:
        return ValidationReport(str(raw_dir), None, list(checks.values()), [str(exc)])
    registry = _validate_children(raw_files, checks, export_date, params.ingest.chunk_rows)
    if registry is None:
        notes.append("children unusable: unknown_child / child_quarantined not checked")
    for table, raw_file in raw_files.items():
        if table == "children":
            continue
        sink = ExampleSink()
        try:
            checks[table].counts = ingest_events(
                raw_file, table, export_date, params.ingest.chunk_rows, registry, sink
            )
            checks[table].examples = sink.examples
        except SafetynetError as exc:
            checks[table].problem = str(exc)
    return ValidationReport(str(raw_dir), export_date.isoformat(), list(checks.values()), notes)


def _open_for_validation(
    raw_dir: Path, encoding: str, checks: dict[str, TableCheck]
) -> dict[str, RawFile]:
    raw_files = {}
    for table, check in checks.items():
        try:
            path = find_table_file(raw_dir, table)
            if path is None:
                continue
            raw_file = open_raw_file(table, path, encoding)
        except SafetynetError as exc:
            check.problem = str(exc)
            continue
        raw_files[table] = raw_file
        check.found, check.file, check.encoding = True, path.name, raw_file.encoding
        check.extra_columns = raw_file.extra_columns
    return raw_files


def _validate_children(raw_files, checks, export_date, chunk_rows) -> Registry | None:
    if "children" not in raw_files:
        return None
    sink = ExampleSink()
    try:
        counts, registry, _ = ingest_children(
            raw_files["children"], export_date, chunk_rows, PidKey(b"validate", "development"), sink
        )
    except SafetynetError as exc:
        checks["children"].problem = str(exc)
        return None
    checks["children"].counts, checks["children"].examples = counts, sink.examples
    return registry
