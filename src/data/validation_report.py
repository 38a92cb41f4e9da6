"""What `validate_export` reports about an export folder: per-table checks and their rendering."""

from __future__ import annotations

from dataclasses import dataclass, field

from src.data.interim import TableCounts


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
