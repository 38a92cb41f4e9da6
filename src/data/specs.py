"""The building blocks of the data contract (src.data.contract): column kinds, column and table specs."""

from __future__ import annotations

from dataclasses import dataclass

# Column kinds: how a raw text value is parsed before the row rules run.
ID, TEXT, CODE, DATE, INT, NUMBER = "id", "text", "code", "date", "int", "number"
LIST_SEPARATOR = "|"  # a column with list=True holds several values, e.g. "a|b"


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str
    required: bool
    codes: tuple | None = None  # with list=True: every listed value must be one of these
    min_value: float | None = None
    max_value: float | None = None
    pattern: str | None = None
    plausible_max: float | None = None  # above: implausible_amount (bounds above)
    personal: bool = False  # personal data: kept only in identity.parquet and watchlists
    # Lookups: a value must be one of the accepted registry's values of this children column
    # (quarantine reason `not_in_children:<column>`).
    registry_column: str | None = None
    list: bool = False  # LIST_SEPARATOR-joined values (codes or text), blanks around each ignored
    future_ok: bool = False  # a date that may lie after the export date (the end of a contract)


@dataclass(frozen=True)
class TableSpec:
    name: str
    required: bool
    columns: tuple[ColumnSpec, ...]
    date_column: str | None  # the record date that decides what a feature may see
    key: str | None = None  # lookups: unique per row (quarantine reason `duplicate_id:<key>`)
    # a key may repeat over time: rows of one key whose (from, to) periods overlap are
    # `overlapping_duplicate:<key>` instead of `duplicate_id:<key>` (missing = open-ended)
    period: tuple[str, str] | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)
