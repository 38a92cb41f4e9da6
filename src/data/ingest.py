"""Raw export (data.raw_dir) -> typed, validated, pseudonymised tables in data/interim/.

Every raw row ends in exactly one place: accepted (interim parquet), quarantined
(quarantine/<table>.csv, with one machine-readable reason), or collapsed as an exact
duplicate of an earlier row. reports/data_quality.json reconciles the three per table.

This is the stage module: `run` ingests, `validate_export` runs the same reading and checking
path (`ingest_children`, `ingest_events`) without writing. The row checks and the order of
quarantine reasons are in `src.data.row_checks`; interim and quarantine outputs, counts and
sinks in `src.data.interim`; the validation report in `src.data.validation_report`.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa_arrow
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import Progress

from src.atomic import atomic_dir, write_json
from src.data import contract
from src.data.contract import DATE, TABLES
from src.data.interim import (
    IDENTITY_COLUMNS,
    ExampleSink,
    InterimSink,
    TableCounts,
    interim_schema,
    interim_table,
    write_manifest,
    write_truth,
)
from src.data.pseudonymise import PidKey, child_pids, load_pid_key
from src.data.raw_files import RawFile, find_table_file, iter_text_chunks, open_raw_file
from src.data.row_checks import DuplicateFilter, Registry, parse_dates, validate_rows
from src.data.validation_report import TableCheck, ValidationReport
from src.errors import SafetynetError

log = logging.getLogger(__name__)

TRUTH_FILE = "truth.parquet"


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
        truth_rows = write_truth(raw_dir / TRUTH_FILE, out, registry, key)
        if truth_rows is not None:
            quality["truth_rows"] = truth_rows
        manifest = write_manifest(out, export_date, key)
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
        low = pc.min(column).as_py()
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


def _progress() -> Progress:
    return Progress(console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty())


# --------------------------------------------------------------------------- validate


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
