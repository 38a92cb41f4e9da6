"""Raw export (data.raw_dir) -> typed, validated, pseudonymised tables in data/interim/.

Every raw row ends in exactly one place: accepted (interim parquet), quarantined
(quarantine/<table>.csv, with one machine-readable reason), or collapsed as an exact
duplicate of an earlier row. reports/data_quality.json reconciles the three per table.

This is the stage module: `run` ingests, `validate_export` checks without writing. Both go
through the same reading and checking path, `src.data.export_check` (strict for ingest: the
first problem stops it), so they cannot disagree on a verdict. The row checks and the order
of quarantine reasons are in `src.data.row_checks`; interim and quarantine outputs, counts and
sinks in `src.data.interim`; the validation report and exit codes in `src.data.validation_report`.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path

import pyarrow as pa_arrow
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import Progress

from src.atomic import atomic_dir, write_json
from src.data import contract
from src.data.contract import TABLES
from src.data.export_check import OpenExport, open_export, read_tables
from src.data.interim import (
    ExampleSink,
    InterimSink,
    interim_schema,
    write_manifest,
    write_truth,
)
from src.data.pseudonymise import PidKey, load_pid_key
from src.data.validation_report import TableCheck, ValidationReport

log = logging.getLogger(__name__)

TRUTH_FILE = "truth.parquet"
VALIDATE_KEY = PidKey(b"validate: nothing is written", "development")


# --------------------------------------------------------------------------- run


def run(raw_dir, interim_dir, quality_path, params) -> dict:
    """Ingest the raw export into interim_dir and write the data-quality report."""
    raw_dir, interim_dir = Path(raw_dir), Path(interim_dir)
    key = load_pid_key()
    opened = open_export(raw_dir, params, strict=True)
    export_date = opened.export_date
    log.info("ingest %s: %s; pid key %s", raw_dir, opened.inference.headline(), key.status)
    quality = {
        "export_date": export_date.isoformat(),
        "export_date_inference": opened.inference.as_dict(),
        "pid_key": key.status,
        "tables": {},
    }
    with atomic_dir(interim_dir) as out, _progress() as progress:
        registry = _write_tables(opened, out, params.ingest.chunk_rows, key, progress)
        quality["tables"] = {c.table: _table_quality(c) for c in opened.report.tables}
        if "school_calendar" not in opened.raw_files:
            _write_default_calendar(out, export_date)
            quality["tables"]["school_calendar"]["default_calendar"] = True
        truth_rows = write_truth(raw_dir / TRUTH_FILE, out, registry, key)
        if truth_rows is not None:
            quality["truth_rows"] = truth_rows
        manifest = write_manifest(out, export_date, key)
    write_json(quality_path, quality)
    return {"export_date": export_date.isoformat(), "pid_key": key.status, "rows": manifest["rows"]}


def _write_tables(opened: OpenExport, out: Path, chunk_rows: int, key: PidKey, progress):
    def make_sink(table, raw_file):
        columns = raw_file.contract_columns if raw_file else TABLES[table].column_names
        return InterimSink(out, table, columns, raw_file.path.name if raw_file else "", key)

    registry, identity = read_tables(opened, make_sink, chunk_rows, key, True, progress)
    pq.write_table(
        pa_arrow.Table.from_pandas(
            identity, schema=interim_schema("identity"), preserve_index=False
        ),
        out / "identity.parquet",
        compression="zstd",
    )
    return registry


def _write_default_calendar(out: Path, export_date: dt.date) -> None:
    first_date = _earliest_record_date(out)
    calendar = contract.default_school_calendar(dt.date(first_date.year, 1, 1), export_date)
    pq.write_table(
        pa_arrow.Table.from_pandas(
            calendar, schema=interim_schema("school_calendar"), preserve_index=False
        ),
        out / "school_calendar.parquet",
        compression="zstd",
    )


def _earliest_record_date(out: Path) -> dt.date:
    earliest = None
    for table, spec in TABLES.items():
        path = out / f"{table}.parquet"
        # no date (the lookups) or an absent registry_history: nothing to date
        if table == "school_calendar" or spec.date_column is None or not path.exists():
            continue
        column = pq.read_table(path, columns=[spec.date_column])[
            spec.date_column
        ]
        low = pc.min(column).as_py()
        if low is not None and (earliest is None or low < earliest):
            earliest = low
    return earliest.date() if earliest is not None else contract.MIN_DATE


def _table_quality(check: TableCheck) -> dict:
    check.counts.check_reconciles(check.table)
    return {
        "found": check.found,
        "file": check.file,
        "encoding": check.encoding,
        **check.counts.as_dict(),
        "extra_columns": check.extra_columns,
        "columns_renamed": check.columns_renamed,
        "reconciles": True,
    }


def _progress() -> Progress:
    return Progress(console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty())


# --------------------------------------------------------------------------- validate


def validate_export(raw_dir, params) -> ValidationReport:
    """Run every ingest check on `raw_dir` without writing; problems are listed, not raised."""
    opened = open_export(raw_dir, params, strict=False)
    if opened.report.folder_problem is None:
        read_tables(
            opened, lambda table, raw_file: ExampleSink(), params.ingest.chunk_rows,
            VALIDATE_KEY, False,
        )  # fmt: skip
    return opened.report
