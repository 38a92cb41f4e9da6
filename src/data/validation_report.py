"""What `validate_export` reports about an export folder: per-table checks, verdict, exit code.

`safetynet validate` exits with `ValidationReport.exit_code` (documented in `EXIT_CODES_HELP`):
0 when the export conforms, 1 when ingest would run but quarantine rows, 2 when ingest would
stop on a folder or file problem, or on tables that end on different dates
(src.data.export_date). Everything printed passes through `printable`, so a column name
holding a terminal escape sequence is shown escaped, never interpreted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from src.data.contract import TABLES
from src.data.export_date import ExportDateInference
from src.data.headers import printable
from src.data.interim import TableCounts
from src.linkage.persons_spec import table_mode

EXIT_CLEAN = 0
EXIT_QUARANTINE = 1
EXIT_NOT_INGESTIBLE = 2
EXIT_CODES_HELP = (
    "Exit codes: 0 = the export conforms to the data contract; "
    "1 = ingestible, but some rows would be quarantined; "
    "2 = not ingestible (a missing or unreadable folder, file or column, or tables that end "
    "on different dates)."
)

ABSENT_OPTIONAL = {
    "school_calendar": "default calendar used",
    "caseworkers": "watchlists show child directors by code",
    "communities": "watchlists show villages by code",
    "service_providers": "no referral plan: watchlists show the generic service",
    "persons": "no other department's records: nothing to link or screen",
    "department_events": "no other department's records: nothing to screen",
}


@dataclass
class TableCheck:
    """One contract table as validate saw it: file, counts, example source rows or a problem."""

    table: str
    required: bool
    found: bool = False
    file: str | None = None
    encoding: str | None = None
    counts: TableCounts = field(default_factory=TableCounts)
    examples: dict[str, list[int]] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    columns_renamed: dict[str, str] = field(default_factory=dict)
    problem: str | None = None


@dataclass
class ValidationReport:
    """What ingest would do with an export folder; nothing is written."""

    raw_dir: str
    export_date: str | None
    tables: list[TableCheck]
    notes: list[str] = field(default_factory=list)
    folder_problem: str | None = None
    export_date_inference: ExportDateInference | None = None
    export_date_problem: str | None = None  # tables that disagree on where the export ends

    @property
    def problems(self) -> list[str]:
        found = [self.folder_problem] if self.folder_problem else []
        found += [self.export_date_problem] if self.export_date_problem else []
        return found + [t.problem for t in self.tables if t.problem]

    @property
    def ingestible(self) -> bool:
        """No structural problem: ingest would run (possibly quarantining rows)."""
        return not self.problems

    @property
    def ok(self) -> bool:
        """The export conforms: ingestible and not a single row would be quarantined."""
        return self.ingestible and all(t.counts.rows_quarantined == 0 for t in self.tables)

    @property
    def exit_code(self) -> int:
        if not self.ingestible:
            return EXIT_NOT_INGESTIBLE
        return EXIT_CLEAN if self.ok else EXIT_QUARANTINE

    @property
    def verdict(self) -> str:
        if self.ok:
            return "OK: conforms to the data contract"
        if self.ingestible:
            return "INGESTIBLE, with rows to quarantine"
        return "NOT INGESTIBLE: fix the problems above"

    def render(self) -> str:
        lines = [f"Export {self.raw_dir}  (export date {self.export_date or 'unknown'})", ""]
        if self.folder_problem:
            lines.append(f"[problem] {self.folder_problem}")
        else:
            if self.export_date_inference is not None:
                lines += [*self.export_date_inference.lines(), ""]
            if self.export_date_problem:
                lines.append(f"[problem] {self.export_date_problem}")
            for t in self.tables:
                lines += _render_table(t)
        lines += [f"note: {n}" for n in self.notes]
        lines += ["", f"{self.verdict} (exit code {self.exit_code})"]
        return "\n".join(printable(line) for line in lines)


def _render_table(t: TableCheck) -> list[str]:
    if t.problem:
        return [f"[problem] {t.table}: {t.problem}"]
    if not t.found:
        absent = ABSENT_OPTIONAL.get(t.table, "empty")
        return [f"[absent]  {t.table} (optional; {absent})"]
    c = t.counts
    lines = [
        f"[found]   {t.table}: {t.file} ({t.encoding}), {c.rows_read} rows: {c.rows_accepted} accepted, "
        f"{c.rows_quarantined} quarantined, {c.duplicates_collapsed} duplicates collapsed",
        f"            mode: {table_mode(TABLES[t.table].column_names)}",
    ]
    for reason, n in sorted(c.by_reason.items()):
        rows = ", ".join(map(str, t.examples.get(reason, [])))
        lines.append(f"            {reason}: {n} (e.g. source rows {rows})")
    for cell, name in t.columns_renamed.items():
        lines.append(f"            column '{cell}' read as '{name}'")
    if t.extra_columns:
        names = ", ".join(printable(c) for c in t.extra_columns)
        lines.append(f"            extra columns (ignored, values not read): {names}")
    return lines
