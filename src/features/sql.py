"""Building blocks of the feature SQL (``src/features/queries.py``): small functions that return
SQL fragments, and the code ranks of the "latest event" keys.

Conventions shared by every fragment: an event table is aliased ``e`` with its date in ``e.d``,
the as-of table ``a`` (``a.as_of``), and in the final select the row key ``k`` (``k.as_of``).
"Latest event" keys are ``days_since_1970 * 10 + rank``: ``MAX`` of the key finds the latest
event and, on the same day, the highest rank (``rank_case``); ``key % 10`` gives the rank back
(``decode_case``).
"""

from __future__ import annotations

from src.data.contract import EXIT_REASON, REGISTRY_HISTORY_FIELDS
from src.features.catalogue import DAYS_SINCE_CAP, WINDOWS_DAYS

EPOCH_DAYS = "date_diff('day', DATE '1970-01-01', {col})"

# Event codes -> rank in a latest-event key (higher wins a same-day tie: the restoring event).
BENEFIT_STATUS_RANK = {"suspended": 1, "terminated": 2, "enrolled": 3, "reinstated": 4}
ENROLLMENT_RANK = {
    "dropped_out": 1,
    "suspended": 2,
    "graduated": 3,
    "transferred": 4,
    "enrolled": 5,
    "returned": 6,
}
INSURANCE_RANK = {"insurance_lapsed": 1, "insurance_enrolled": 2}
SCHOOL_TYPE_RANK = {"regular": 1, "special_education": 2, "home_delivery": 3}
REASON_RANK = {reason: i + 1 for i, reason in enumerate(EXIT_REASON)}


# ---------------------------------------------------------------------------- dates and windows


def epoch_days(col: str) -> str:
    return EPOCH_DAYS.format(col=col)


def before(days: int) -> str:
    return f"a.as_of - INTERVAL '{days}' DAY"


def window_start(days: int) -> str:
    """The as-of table's column holding ``as_of - days`` as a DATE (``as_of_table_sql``).

    An event joins and filters on DATE against DATE: ``as_of - INTERVAL`` is a TIMESTAMP, and
    comparing every event row with it casts the row's date (a third of a family's time)."""
    if days not in WINDOWS_DAYS:
        raise ValueError(f"window {days} is not one of the catalogue's {WINDOWS_DAYS}")
    return f"a.from_{days}"


def since(days: int) -> str:
    return f"e.d > {window_start(days)}"


def school_year(col: str) -> str:
    """The school year (starting 1 September) a date falls in."""
    return f"(EXTRACT(YEAR FROM {col}) - CASE WHEN EXTRACT(MONTH FROM {col}) < 9 THEN 1 ELSE 0 END)"


# ---------------------------------------------------------------------------- codes


def in_codes(col: str, codes) -> str:
    return f"{col} IN ({', '.join(repr(c) for c in codes)})"


def rank_case(column: str, ranks: dict[str, int]) -> str:
    whens = " ".join(f"WHEN '{code}' THEN {rank}" for code, rank in ranks.items())
    return f"CASE {column} {whens} END"


def decode_case(expr: str, codes: dict[int, str], default: str) -> str:
    whens = " ".join(f"WHEN {rank} THEN '{code}'" for rank, code in codes.items())
    return f"COALESCE(CASE {expr} {whens} END, '{default}')"


# ---------------------------------------------------------------------------- family aggregates


def absent(days: int, kind: str | None = None, until: int | None = None) -> str:
    cond = [since(days)]
    if kind:
        cond.append(f"e.absence_type = '{kind}'")
    if until:
        cond.append(f"e.d <= {window_start(until)}")
    return f"SUM(e.days) FILTER (WHERE {' AND '.join(cond)})"


def n_events(event: str, days: int) -> str:
    return f"COUNT(*) FILTER (WHERE e.event_type = '{event}' AND {since(days)})"


def concerns(col: str, days: int) -> str:
    return f"COUNT(*) FILTER (WHERE e.{col} = 1 AND {since(days)})"


# ---------------------------------------------------------------------------- feature columns


def observed(days: int, expr: str) -> str:
    """``expr`` where the ``days``-day window lies after the history start, else NULL (NaN)."""
    if days not in WINDOWS_DAYS:
        raise ValueError(f"no history flag for a {days}-day window (windows: {WINDOWS_DAYS})")
    return f"CASE WHEN a.ok_{days} THEN {expr} END"


def days_since(col: str) -> str:
    """Days since ``col`` (capped); without an observed event the cap, or NULL on short history."""
    cap = DAYS_SINCE_CAP
    return (
        f"CAST(CASE WHEN {col} IS NOT NULL THEN LEAST({cap}, date_diff('day', {col}, k.as_of)) "
        f"WHEN a.ok_{cap} THEN {cap} END AS DOUBLE)"
    )


def month_index(col: str) -> str:
    """Months since year 0 of a date's month (year * 12 + month - 1)."""
    return f"(EXTRACT(YEAR FROM {col}) * 12 + EXTRACT(MONTH FROM {col}) - 1)"


def rate(numerator: str, school_days: str) -> str:
    # Capped at 1: overlapping records (a sick half day and an unexcused day) can share a day.
    return f"CASE WHEN in_school AND {school_days} > 0 THEN LEAST(1.0, COALESCE({numerator}, 0) / {school_days}) END"


def count0(col: str) -> str:
    return f"CAST(COALESCE({col}, 0) AS DOUBLE)"


# ---------------------------------------------------------------------------- registry as of t


def registry_ranks(field: str) -> dict[str, int]:
    """Rank (1-9) of each code of a registry field in a change key (days_since_1970 * 10 + rank)."""
    return {code: i + 1 for i, code in enumerate(REGISTRY_HISTORY_FIELDS[field])}


def registry_value(field: str, exported: str) -> str:
    """The field's value in force at as_of (family ``rg``): the new value of the latest change
    on or before as_of, else the old value of the earliest change after it, else ``exported``
    (no change recorded). A disability level comes back as a number."""
    numeric = field == "disability_level"
    whens = " ".join(
        f"WHEN {rank} THEN {code if numeric else repr(code)}"
        for code, rank in registry_ranks(field).items()
    )
    then, before = (f"CASE rg.{field}_{when} % 10 {whens} END" for when in ("then", "before"))
    return f"COALESCE({then}, {before}, {exported})"
