"""The export date: where the export ends, inferred from each table's monthly volumes.

The export date decides which as-of dates exist and which labels count as observed, so one
stray date (a welfare row dated 2026-11-30 in an export that ends 2025-12-31) must not move
it. It is therefore not the latest date in the data but the end of the last month whose
volume is that of a complete month. `base.export_date`, when set, wins: nothing is inferred.

Per table (its contract date column; dates from 1990 up to the day the pipeline runs):

1. Rows per calendar month. From its last month with rows back, the first *normal* month
   ends the table. A month is normal when its rows reach ``share``
   (``ingest.export_date_normal_share``) x the median of the 6 months with rows before it,
   and at least share x ``ingest.export_date_min_month_rows``. A month is judged up to each
   of its dates (its rows up to day d against share x the median rows up to day d of those
   months, so a payment run on the 10th is expected by the 10th; still at least
   share x min_month_rows), so an export cut mid-month counts and a few stray rows never do. A month after calendar months without any row counts only if
   those months were as quiet a year earlier (a season, e.g. no school absences in August);
   without that year of history it does not.
2. The table votes when that median (its usual rows a month, unmoved by stray rows after
   its end or by one busy month) is at least min_month_rows: months smaller than that cannot
   tell a complete month from a few stray rows. The registry (`children`) and its changes
   (`registry_history`) never vote: registrations need not run up to the export. Nor does a table with one month of rows.
3. The table ends at the latest date that passes (its last row there, not the month end).

Across tables: the export date is the latest end among voting tables. A voting table ending
more than ``ingest.export_date_tolerance_days`` before it stops ingest with one line naming
the tables and their dates (fix: set base.export_date), unless the same days a year earlier
were as quiet for that table (school tables over the summer holiday). With no voting table
(a tiny export) the export date is the latest date in the data; with no date at all, today.

Rows dated after the export date are quarantined as ``beyond_export_date:<column>``
(src.data.contract). The inference and its reasons are printed by `safetynet validate` and
written to reports/data_quality.json (`export_date_inference`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from src.data import contract
from src.data.contract import TABLES
from src.data.raw_files import RawFile, iter_text_chunks
from src.data.row_checks import parse_dates
from src.errors import SafetynetError

log = logging.getLogger(__name__)

BASELINE_MONTHS = 6  # the months with rows a month is compared with
MONTH_DAYS = 30.4375
REGISTRY = "children"
REGISTRY_CHANGES = "registry_history"  # like registrations, changes need not run up to the export
NOT_RECORDS = ("school_calendar", "casework_reviews")  # a calendar; reviews come back after a list
SOURCE_PARAMS = "base.export_date"
SOURCE_VOLUMES = "monthly volumes"
SOURCE_LATEST = "latest date"
SOURCE_TODAY = "today"


@dataclass(frozen=True)
class Rule:
    normal_share: float
    min_month_rows: int
    tolerance_days: int

    @classmethod
    def from_params(cls, ingest) -> Rule:
        return cls(
            ingest.export_date_normal_share,
            ingest.export_date_min_month_rows,
            ingest.export_date_tolerance_days,
        )

    def describe(self) -> str:
        return (
            f"per table, the last date of its last month with at least {self.normal_share:g} x "
            f"the median rows of the {BASELINE_MONTHS} months before it (up to the same day of "
            f"the month for a month cut short; never under "
            f"{self.normal_share * self.min_month_rows:g} rows); the export date is the latest of these among tables with "
            f"at least {self.min_month_rows} rows a month, which must agree within "
            f"{self.tolerance_days} days"
        )


@dataclass(frozen=True)
class TableEnd:
    """One table's evidence: where its complete months end, and whether it votes."""

    table: str
    rows: int  # rows with a valid date from 1990 to today
    last_date: dt.date | None
    end: dt.date | None  # None: not judged (see why)
    month_rows: float  # usual rows a month: the median of the 6 months before its end month
    votes: bool
    why: str = ""
    rows_after_today: int = 0

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "rows_after_today": self.rows_after_today,
            "last_date": _iso(self.last_date),
            "end": _iso(self.end),
            "rows_a_month": round(self.month_rows, 1),
            "votes": self.votes,
            "why": self.why,
        }


@dataclass
class ExportDateInference:
    """The export date, where it comes from and why (validate and data_quality.json)."""

    export_date: dt.date
    source: str  # SOURCE_PARAMS, SOURCE_VOLUMES, SOURCE_LATEST or SOURCE_TODAY
    rule: Rule | None = None
    tables: dict[str, TableEnd] = field(default_factory=dict)
    problem: str | None = None  # voting tables that disagree: ingest stops

    def as_dict(self) -> dict:
        out = {"export_date": self.export_date.isoformat(), "source": self.source}
        if self.rule is not None:
            out |= {"rule": self.rule.describe(), **dataclasses.asdict(self.rule)}
            out["tables"] = {t: e.as_dict() for t, e in self.tables.items()}
            out["problem"] = self.problem
        return out

    def headline(self) -> str:
        date = self.export_date.isoformat()
        if self.source == SOURCE_PARAMS:
            return f"Export date {date}: base.export_date in params.yaml (nothing inferred)"
        if self.source == SOURCE_TODAY:
            return f"Export date {date}: today, as the export holds no valid date; set base.export_date"
        if self.source == SOURCE_LATEST:
            return (
                f"Export date {date}: the latest date in the data, as no table has "
                f"{self.rule.min_month_rows} rows a month to judge complete months; "
                f"set base.export_date if it is wrong"
            )
        return f"Export date {date}: inferred from monthly volumes (base.export_date not set)"

    def lines(self) -> list[str]:
        out = [self.headline()]
        if self.source == SOURCE_VOLUMES:
            out.append(f"  rule: {self.rule.describe()}")
        width = max((len(t) for t in self.tables), default=0)
        for table, e in self.tables.items():
            text = f"ends {e.end}, {e.month_rows:,.0f} rows a month" if e.end else "does not vote"
            if e.last_date is not None and e.last_date != e.end:
                text += f", last row {e.last_date}"
            extra = [e.why] if e.why else []
            if e.rows_after_today:
                extra.append(f"{_rows(e.rows_after_today)} dated after today ignored")
            out.append(f"  {table:<{width}}  {text}" + (f" ({'; '.join(extra)})" if extra else ""))
        return out


def given(export_date: dt.date) -> ExportDateInference:
    return ExportDateInference(export_date, SOURCE_PARAMS)


# --------------------------------------------------------------------------- reading


def infer_export_date(
    raw_files: dict[str, RawFile], ingest_params, today: dt.date
) -> ExportDateInference:
    """Read each table's date column once and apply the rule (module docstring).

    A table that cannot be read is skipped here: reading it again reports the problem.
    """
    daily, after = {}, {}
    for table, raw_file in raw_files.items():
        column = TABLES[table].date_column
        if table in NOT_RECORDS or column is None or column not in raw_file.columns:
            continue
        try:
            daily[table], after[table] = count_days(
                raw_file, column, ingest_params.chunk_rows, today
            )
        except SafetynetError:
            continue
    return infer(daily, Rule.from_params(ingest_params), today, after)


def count_days(
    raw_file: RawFile, column: str, chunk_rows: int, today: dt.date
) -> tuple[pd.Series, int]:
    """Rows per date of `column` (valid dates from 1990 to today), and rows dated after today."""
    first = np.datetime64(contract.MIN_DATE, "D")
    counts = np.zeros((today - contract.MIN_DATE).days + 1, dtype=np.int64)
    after = 0
    for chunk in iter_text_chunks(raw_file, chunk_rows, columns=[column]):
        values, ok = parse_dates(chunk[column].str.strip())
        days = (values[ok].to_numpy().astype("datetime64[D]") - first).astype(np.int64)
        days = days[days >= 0]
        after += int((days >= len(counts)).sum())
        counts += np.bincount(days[days < len(counts)], minlength=len(counts))
    found = np.flatnonzero(counts)
    return pd.Series(counts[found], index=pd.DatetimeIndex(first + found)), after


def day_counts(dates) -> pd.Series:
    """Rows per date from a list of dates: the `daily` input of `infer` (for tests and tools)."""
    index = pd.DatetimeIndex(pd.to_datetime(list(dates)))
    return pd.Series(1, index=index).groupby(level=0).sum()


# --------------------------------------------------------------------------- the rule


def infer(
    daily: dict[str, pd.Series], rule: Rule, today: dt.date, after_today: dict | None = None
) -> ExportDateInference:
    """The export date from each table's rows per date (sorted DatetimeIndex -> count)."""
    after_today = after_today or {}
    ends = {
        t: dataclasses.replace(table_end(t, s, rule), rows_after_today=after_today.get(t, 0))
        for t, s in daily.items()
    }
    voters = {t: e for t, e in ends.items() if e.votes}
    if not voters:
        lasts = [e.last_date for e in ends.values() if e.last_date is not None]
        if not lasts:
            log.warning("no valid record date in the export; export date = today (%s)", today)
            return ExportDateInference(today, SOURCE_TODAY, rule, ends)
        return ExportDateInference(max(lasts), SOURCE_LATEST, rule, ends)
    export = max(e.end for e in voters.values())
    behind = []
    for table, e in voters.items():
        if (export - e.end).days <= rule.tolerance_days:
            continue
        start = pd.Timestamp(e.end) + pd.Timedelta(days=1)
        if _quiet_a_year_earlier(daily[table], start, pd.Timestamp(export), e.month_rows, rule):
            note = f"as quiet from {start.date()} to {export} a year earlier: a season"
            ends[table] = dataclasses.replace(e, why="; ".join(filter(None, [e.why, note])))
        else:
            behind.append(table)
    problem = _disagreement(voters, behind, export, rule) if behind else None
    return ExportDateInference(export, SOURCE_VOLUMES, rule, ends, problem)


def table_end(table: str, daily: pd.Series, rule: Rule) -> TableEnd:
    """Where `table`'s complete months end, and whether it votes (module docstring)."""
    rows = int(daily.sum())
    if not rows:
        return TableEnd(table, 0, None, None, 0.0, False, "no dated rows")
    daily = daily[daily > 0].sort_index()
    last = daily.index[-1].date()
    periods = daily.index.to_period("M")
    monthly = daily.groupby(periods).sum()
    overall = float(monthly.median())
    if table in (REGISTRY, REGISTRY_CHANGES):
        why = (
            "the registry: registrations need not run up to the export"
            if table == REGISTRY
            else "registry changes: they need not run up to the export"
        )
        return TableEnd(table, rows, last, None, overall, False, why)
    by_day = _rows_by_day_of_month(daily, periods, monthly.index)
    passed_over = []
    for i in range(len(monthly) - 1, 0, -1):  # the first month has no history to judge it
        month, in_month = monthly.index[i], daily[periods == monthly.index[i]]
        history = slice(max(0, i - BASELINE_MONTHS), i)
        median = float(monthly.iloc[history].median())
        end, reason = None, _unexplained_gap(daily, monthly.index[i - 1], in_month, median, rule)
        if reason is None:
            end = _normal_until(in_month, month, np.median(by_day[history], axis=0), rule)
            need = max(median, rule.min_month_rows)
            reason = f"{_rows(int(monthly.iloc[i]))}, below {rule.normal_share:g} x {need:,.0f}"
        if end is None:
            passed_over.append(f"{month}: {reason}")
        elif median < rule.min_month_rows:
            why = f"{median:g} rows a month before {month}, fewer than ingest.export_date_min_month_rows"
            return TableEnd(table, rows, last, None, median, False, why)
        else:
            return TableEnd(table, rows, last, end.date(), median, True, _passed(passed_over))
    why = (
        "one month of rows: no history to judge it"
        if len(monthly) == 1
        else f"{overall:g} rows a month, fewer than ingest.export_date_min_month_rows"
    )
    return TableEnd(table, rows, last, None, overall, False, why)


def _rows_by_day_of_month(daily: pd.Series, periods, months: pd.PeriodIndex) -> np.ndarray:
    """Rows up to each day of the month (columns 1..31), one row per month with rows."""
    out = np.zeros((len(months), 31))
    np.add.at(out, (months.get_indexer(periods), daily.index.day - 1), daily.to_numpy())
    return out.cumsum(axis=1)


def _normal_until(
    in_month: pd.Series, month: pd.Period, usual_by_day: np.ndarray, rule: Rule
) -> pd.Timestamp | None:
    """The latest date of `month` up to which its rows are normal; None if none.

    Up to day d, its rows are held against the median rows up to day d of the months before
    (pro rata to their own pattern: a payment run on the 10th is expected by the 10th); on
    the month's last day, against their median whole month.
    """
    days = in_month.index.day.to_numpy()
    usual = np.where(days == month.days_in_month, usual_by_day[-1], usual_by_day[days - 1])
    rows = in_month.cumsum().to_numpy()
    normal = rows >= rule.normal_share * np.maximum(usual, rule.min_month_rows)
    hits = np.flatnonzero(normal)
    return in_month.index[hits[-1]] if len(hits) else None


def _unexplained_gap(
    daily: pd.Series, previous: pd.Period, in_month: pd.Series, median: float, rule: Rule
) -> str | None:
    """Why a month (its rows `in_month`) cannot end the table after months without rows;
    None when there are none, or when they were as quiet a year earlier."""
    month = in_month.index[0].to_period("M")
    empty = (month - previous).n - 1
    if empty < 1:
        return None
    start, end = (previous + 1).start_time, (month - 1).end_time.normalize()
    if _quiet_a_year_earlier(daily, start, end, median, rule):
        return None
    return f"{_rows(int(in_month.sum()))} after {_rows(empty, 'month')} without rows"


def _quiet_a_year_earlier(
    daily: pd.Series, start: pd.Timestamp, end: pd.Timestamp, month_rows: float, rule: Rule
) -> bool:
    """Did the table have fewer than share x its usual rows, pro rata, in [start, end] a year
    earlier? False when the table does not go back that far, or for a year or more (no
    season lasts that long)."""
    lo, hi = start - pd.DateOffset(years=1), end - pd.DateOffset(years=1)
    if daily.index[0] > lo or hi >= start:
        return False
    rows = int(daily[(daily.index >= lo) & (daily.index <= hi)].sum())
    days = (end - start).days + 1
    return rows < rule.normal_share * month_rows * days / MONTH_DAYS


def _passed(passed_over: list[str]) -> str:
    if not passed_over:
        return ""
    shown = passed_over[:3] + ([f"{len(passed_over) - 3} more"] if len(passed_over) > 3 else [])
    return "passed over " + ", ".join(shown)


def _disagreement(voters: dict[str, TableEnd], behind: list[str], export, rule: Rule) -> str:
    ends = sorted(voters.values(), key=lambda e: (e.end, e.table), reverse=True)
    ahead = ", ".join(f"{e.table} {e.end}" for e in ends if e.table not in behind)
    late = ", ".join(f"{e.table} {e.end}" for e in ends if e.table in behind)
    earliest = min(voters[t].end for t in behind)
    return (
        f"export date: the tables end more than {rule.tolerance_days} days apart "
        f"(ingest.export_date_tolerance_days): {ahead}, but {late}; fix: set base.export_date "
        f'in params.yaml, quoted (e.g. export_date: "{earliest}", which every table reaches), '
        f"or export all tables again at the same time"
    )


def _rows(n: int, noun: str = "row") -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day is not None else None
