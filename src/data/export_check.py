"""The one path that reads and checks a raw export, shared by ingest and validate.

`open_export` checks the folder, opens and header-checks every table's file and fixes the
export date (`base.export_date`, else inferred by `src.data.export_date`); `read_tables`
streams the registry, then every other table, through the row checks into a sink per table.
Ingest runs both with ``strict=True`` (the first problem raises) and `InterimSink`s; validate
with ``strict=False`` (problems are recorded in the `ValidationReport` and the other tables
are still checked) and `ExampleSink`s. The verdict is therefore the same by construction:
validate reports a problem exactly where ingest stops. Tables that disagree on where the
export ends are such a problem.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from src.data.contract import REGISTRY_HISTORY, REGISTRY_REFERENCES, TABLES
from src.data.export_date import ExportDateInference, given, infer_export_date
from src.data.interim import IDENTITY_COLUMNS, TableCounts
from src.data.pseudonymise import PidKey, child_pids
from src.data.raw_files import RawFile, find_table_file, iter_text_chunks, open_raw_file
from src.data.reviews_spec import CASEWORK_REVIEWS
from src.data.row_checks import (
    DuplicateFilter,
    Registry,
    chain_failures,
    exported_values,
    first_reasons,
    reason_order,
    validate_rows,
)
from src.data.validation_report import TableCheck, ValidationReport
from src.errors import SafetynetError
from src.spreadsheet import printable

CHILDREN_UNUSABLE = (
    "children unusable: unknown_child, child_quarantined and before_birth were not checked"
)


@dataclass
class OpenExport:
    """An export folder with every table's file opened (or its problem) and the export date."""

    raw_dir: Path
    report: ValidationReport
    raw_files: dict[str, RawFile]
    export_date: dt.date | None
    inference: ExportDateInference | None = None

    @property
    def checks(self) -> dict[str, TableCheck]:
        return {t.table: t for t in self.report.tables}


# --------------------------------------------------------------------------- opening


def open_export(raw_dir, params, strict: bool, today: dt.date | None = None) -> OpenExport:
    """Check the folder, open every table's file and fix the export date.

    strict: the first problem raises SafetynetError; otherwise it is recorded and the
    remaining tables are still opened.
    """
    raw_dir = Path(raw_dir)
    checks = {t: TableCheck(t, spec.required) for t, spec in TABLES.items()}
    report = ValidationReport(str(raw_dir), None, list(checks.values()))
    opened = OpenExport(raw_dir, report, {}, None)
    problem = folder_problem(raw_dir)
    if problem:
        if strict:
            raise SafetynetError(problem)
        report.folder_problem = problem
        return opened
    for table, check in checks.items():
        try:
            path = find_table_file(reviews_folder(raw_dir, params) if table == CASEWORK_REVIEWS else raw_dir, table)
            if path is None:
                continue
            raw_file = open_raw_file(table, path, params.data.encoding)
        except SafetynetError as exc:
            _record(check, exc, strict)
            continue
        opened.raw_files[table] = raw_file
        check.found, check.file, check.encoding = True, path.name, raw_file.encoding
        check.extra_columns = raw_file.extra_columns
        check.columns_renamed = {printable(k): v for k, v in raw_file.renamed.items()}
    fix_export_date(opened, params, strict, today or dt.date.today())
    return opened


def fix_export_date(opened: OpenExport, params, strict: bool, today: dt.date) -> None:
    """`base.export_date`, else the date inferred from the tables' monthly volumes
    (src.data.export_date). Tables that disagree are a problem: strict raises it."""
    if params.base.export_date is not None:
        inference = given(params.base.export_date)
    else:
        inference = infer_export_date(opened.raw_files, params.ingest, today)
    opened.inference, opened.export_date = inference, inference.export_date
    opened.report.export_date = inference.export_date.isoformat()
    opened.report.export_date_inference = inference
    if inference.problem:
        if strict:
            raise SafetynetError(inference.problem)
        opened.report.export_date_problem = inference.problem


def reviews_folder(raw_dir: Path, params) -> Path:
    """Where the casework_reviews file lives: `data.reviews_dir`, else the export folder itself."""
    return Path(params.data.reviews_dir) if params.data.reviews_dir else Path(raw_dir)


def folder_problem(raw_dir: Path) -> str | None:
    if raw_dir.is_dir():
        return None
    what = "is not a folder" if raw_dir.exists() else "does not exist"
    return (
        f"{raw_dir}: the export folder {what}; fix: pass the folder holding the exported tables "
        f"(for ingest, set data.raw_dir in params.yaml)"
    )


# --------------------------------------------------------------------------- reading


def read_tables(
    opened: OpenExport,
    make_sink: Callable[[str, RawFile | None], object],
    chunk_rows: int,
    key: PidKey,
    strict: bool,
    progress=None,
) -> tuple[Registry | None, pd.DataFrame | None]:
    """Every table through the row checks into its sink; (registry, identity rows).

    Each table's counts and example rows land in its TableCheck. Without a usable registry
    the event tables are still checked, without the cross-table checks (noted).
    """
    checks, export_date = opened.checks, opened.export_date
    registry = identity = None
    for table in TABLES:
        raw_file = opened.raw_files.get(table)
        # an absent registry_history writes nothing: features then know the registry is as of export
        absent_ok = not strict or table == REGISTRY_HISTORY
        if raw_file is None and (checks[table].problem or absent_ok):
            continue
        sink = make_sink(table, raw_file)
        try:
            if table == "children":
                counts, registry, identity = ingest_children(
                    raw_file, export_date, chunk_rows, key, sink
                )
            elif table == REGISTRY_HISTORY:
                counts = ingest_history(raw_file, export_date, chunk_rows, registry, sink)
            elif raw_file is not None and TABLES[table].key is not None:
                counts = ingest_lookup(raw_file, table, export_date, chunk_rows, registry, sink)
            elif raw_file is not None:
                counts = ingest_events(
                    raw_file, table, export_date, chunk_rows, registry, sink, progress
                )
            else:
                counts = TableCounts()
        except SafetynetError as exc:
            _record(checks[table], exc, strict)
            continue
        finally:
            sink.close()
        checks[table].counts = counts
        checks[table].examples = getattr(sink, "examples", {})
    if registry is None:
        opened.report.notes.append(CHILDREN_UNUSABLE)
    return registry, identity


def process_chunk(
    raw, table, export_date, registry, dedup, counts, sink
) -> tuple[pd.DataFrame, pd.Series]:
    """Collapse duplicates, validate, and hand quarantined rows to the sink."""
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


def _read_whole(raw_file, chunk_rows) -> pd.DataFrame:
    """A table read whole, as text (its checks span rows: one row per key, chains of changes)."""
    chunks = list(iter_text_chunks(raw_file, chunk_rows))
    return pd.concat(chunks) if chunks else _empty_text_frame(raw_file.contract_columns)


def ingest_children(raw_file, export_date, chunk_rows, key: PidKey, sink):
    """The registry, read whole (one row per child): counts, Registry and identity rows."""
    raw = _read_whole(raw_file, chunk_rows)
    counts = TableCounts()
    accepted, reasons = process_chunk(
        raw, "children", export_date, None, DuplicateFilter(), counts, sink
    )
    quarantined_ids = raw.loc[reasons.index[reasons.notna()], "child_id"]
    registry = Registry.build(
        accepted["child_id"],
        child_pids(accepted["child_id"], key.key),
        quarantined_ids[quarantined_ids.ne("")].unique(),
        accepted["birth_date"],
        exported=exported_values(accepted),
        values={column: accepted[column] for column in REGISTRY_REFERENCES},
    )
    sink.accept(accepted, registry.pids)
    identity = accepted.reindex(columns=list(IDENTITY_COLUMNS)).reset_index(drop=True)
    identity.insert(0, "child_pid", pd.Series(registry.pids.to_pylist(), dtype=str))
    return counts, registry, identity


def ingest_lookup(raw_file, table, export_date, chunk_rows, registry, sink) -> TableCounts:
    """A lookup (caseworkers, communities), read whole so that a repeated key is seen."""
    raw = _read_whole(raw_file, chunk_rows)
    counts = TableCounts()
    accepted, _ = process_chunk(raw, table, export_date, registry, DuplicateFilter(), counts, sink)
    sink.accept(accepted, None)
    return counts


def ingest_events(
    raw_file, table, export_date, chunk_rows, registry, sink, progress=None
) -> TableCounts:
    """One event table (or the calendar), streamed chunk by chunk."""
    counts, dedup = TableCounts(), DuplicateFilter()
    task = progress.add_task(table, total=None) if progress else None
    keyed = "child_id" in TABLES[table].column_names
    for raw in iter_text_chunks(raw_file, chunk_rows):
        accepted, _ = process_chunk(raw, table, export_date, registry, dedup, counts, sink)
        pids = None
        if keyed and registry is not None:
            pids = registry.pids.take(registry.positions(accepted["child_id"]))
        sink.accept(accepted, pids)
        if progress:
            progress.advance(task, len(raw))
    return counts


def ingest_history(raw_file, export_date, chunk_rows, registry, sink) -> TableCounts:
    """registry_history, read whole: its chains of changes are checked across rows."""
    raw = _read_whole(raw_file, chunk_rows)
    counts = TableCounts()
    n_read = len(raw)
    raw = raw[DuplicateFilter().first_seen(raw)]
    parsed, reasons = validate_rows(raw, REGISTRY_HISTORY, export_date, registry)
    chains = chain_failures(parsed, reasons.isna().to_numpy(), registry)
    reasons = reasons.fillna(first_reasons(raw.index, chains, reason_order(REGISTRY_HISTORY)))
    counts.add(n_read, n_read - len(raw), reasons)
    bad = reasons.notna().to_numpy()
    if bad.any():
        sink.reject(raw[bad], reasons[bad])
    accepted = parsed[~bad]
    pids = None
    if registry is not None:
        pids = registry.pids.take(registry.positions(accepted["child_id"]))
    sink.accept(accepted, pids)
    return counts


def _empty_text_frame(columns: Iterable[str]) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([], dtype=str) for c in columns})
    frame.index = pd.RangeIndex(1, 1, name="source_row")
    return frame


def _record(check: TableCheck, exc: SafetynetError, strict: bool) -> None:
    if strict:
        raise exc
    check.problem = str(exc)
