"""As-of dates, the cohort at each as-of date, and who is already out of a net (contract rules).

Everything here reads only records dated on or before the as-of date ``t``:

- cohort at ``t``: registered on or before ``t``, born on or before ``t`` and aged 0-17
  (``birth_date + 18 years > t``; a 29 February birthday turns 18 on 28 February, as
  ``+ INTERVAL '18' YEAR`` gives), and no legitimate exit (a welfare ``suspended`` or
  ``terminated`` with a reason in ``LEGITIMATE_EXIT_REASONS``, any benefit) on or before
  ``t``. A legitimate exit is final: a later ``reinstated`` does not bring the child back,
  as the contract words it ("no legitimate exit on or before t").
- already out at ``t``, per net:
  ``basic_living``: some benefit's latest status event on or before ``t`` is a procedural
  ``suspended``/``terminated``; ``reinstated`` or ``enrolled`` for the same benefit restores it
  (benefits are tracked separately: losing dibao is not undone by another benefit).
  ``education``: the child's latest of ``dropped_out`` / ``returned`` / ``enrolled`` on or
  before ``t`` is ``dropped_out``. On the same day, the restoring event wins.

The SQL is standard (CTEs, window functions, ``VALUES``, ``INTERVAL 'n' DAY``) so that a
distributed engine can run it; the queries expect the interim tables (``child_pid``, dates
as timestamps) as views or tables on the connection.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from src.data.contract import LEGITIMATE_EXIT_REASONS, PROCEDURAL_EXIT_REASONS
from src.features.engine import as_engine

NETS = ("basic_living", "education")


def month_starts(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every first-of-month date in ``[first, last]`` (both ends inclusive)."""
    start = pd.Timestamp(first).to_period("M").to_timestamp()
    if start < pd.Timestamp(first):
        start += pd.offsets.MonthBegin(1)
    return [d.date() for d in pd.date_range(start, pd.Timestamp(last), freq="MS")]


def sql_codes(codes: tuple[str, ...] | list[str]) -> str:
    """A SQL ``IN`` list of code literals (codes come from the contract, never from data)."""
    return ", ".join(f"'{code}'" for code in codes)


def sql_timestamp(day: dt.date) -> str:
    return f"TIMESTAMP '{day.isoformat()} 00:00:00'"


def as_of_dates_sql(as_of_dates: list[dt.date]) -> str:
    """The body of a CTE with one ``as_of`` timestamp column (no rows for an empty list)."""
    if not as_of_dates:
        return "SELECT CAST(NULL AS TIMESTAMP) AS as_of WHERE 1 = 0"
    rows = ", ".join(f"({sql_timestamp(d)})" for d in sorted(set(as_of_dates)))
    return f"SELECT as_of FROM (VALUES {rows}) AS v(as_of)"


def first_exits_sql() -> str:
    """(child_pid, first_exit): each child's first legitimate exit, any benefit."""
    return f"""
        SELECT child_pid, MIN(event_date) AS first_exit
        FROM welfare_events
        WHERE event_type IN ('suspended', 'terminated')
          AND reason IN ({sql_codes(LEGITIMATE_EXIT_REASONS)})
        GROUP BY child_pid"""


def cohort_sql(as_of_table: str = "as_of_dates", first_exits: str = "first_exits") -> str:
    """(child_pid, as_of) for every child in the cohort at each as-of date.

    ``first_exits`` is a relation shaped like ``first_exits_sql``."""
    return f"""
    SELECT c.child_pid, a.as_of
    FROM children AS c
    CROSS JOIN {as_of_table} AS a
    LEFT JOIN {first_exits} AS x ON x.child_pid = c.child_pid
    WHERE c.registered_date <= a.as_of
      AND c.birth_date <= a.as_of
      AND c.birth_date + INTERVAL '18' YEAR > a.as_of
      AND (x.first_exit IS NULL OR x.first_exit > a.as_of)
    """


def _status_events_sql() -> str:
    """Exit (is_out = 1) and restore (is_out = 0) events per net and track (benefit or school)."""
    return f"""
    SELECT child_pid, 'basic_living' AS net, benefit AS track, event_date,
           CASE WHEN event_type IN ('suspended', 'terminated') THEN 1 ELSE 0 END AS is_out
    FROM welfare_events
    WHERE (event_type IN ('suspended', 'terminated') AND reason IN ({sql_codes(PROCEDURAL_EXIT_REASONS)}))
       OR event_type IN ('reinstated', 'enrolled')
    UNION ALL
    SELECT child_pid, 'education' AS net, 'school' AS track, event_date,
           CASE WHEN event_type = 'dropped_out' THEN 1 ELSE 0 END AS is_out
    FROM school_enrollment
    WHERE event_type IN ('dropped_out', 'returned', 'enrolled')
    """


def out_spans_sql() -> str:
    """(child_pid, net, out_from, out_until): each span a child is out of a net.

    Each exit opens a span [exit date, next status event of the same track), open-ended
    (``out_until`` NULL) without one; on a tie the restore sorts last, so an exit restored
    the same day opens an empty span.
    """
    return f"""
        SELECT child_pid, net, out_from, out_until
        FROM (
            SELECT child_pid, net, event_date AS out_from, is_out,
                   LEAD(event_date) OVER (
                       PARTITION BY child_pid, net, track ORDER BY event_date, is_out DESC
                   ) AS out_until
            FROM ({_status_events_sql()}) AS s
        ) AS o
        WHERE is_out = 1"""


def already_out_sql(as_of_table: str = "as_of_dates", out_spans: str = "out_spans") -> str:
    """Distinct (child_pid, as_of, net) where the child is out of that net at as_of.

    ``out_spans`` is a relation shaped like ``out_spans_sql``."""
    return f"""
    SELECT DISTINCT o.child_pid, a.as_of, o.net
    FROM {out_spans} AS o
    JOIN {as_of_table} AS a
      ON o.out_from <= a.as_of AND (o.out_until IS NULL OR o.out_until > a.as_of)
    """


def cohort_with_status_sql(as_of_table: str = "as_of_dates") -> str:
    """The cohort with ``already_out`` (0/1) and ``already_out_net`` ("" or nets joined by "|")."""
    return """
    SELECT k.child_pid, k.as_of,
           CASE WHEN b.net IS NULL AND e.net IS NULL THEN 0 ELSE 1 END AS already_out,
           CASE WHEN b.net IS NOT NULL AND e.net IS NOT NULL THEN 'basic_living|education'
                WHEN b.net IS NOT NULL THEN 'basic_living'
                WHEN e.net IS NOT NULL THEN 'education'
                ELSE '' END AS already_out_net
    FROM cohort AS k
    LEFT JOIN out_of_net AS b
      ON b.child_pid = k.child_pid AND b.as_of = k.as_of AND b.net = 'basic_living'
    LEFT JOIN out_of_net AS e
      ON e.child_pid = k.child_pid AND e.as_of = k.as_of AND e.net = 'education'
    """


# What the cohort reads of the interim tables whatever the as-of dates: computed once per run
# by ``prepare_cohort`` (temp tables of these names), or inline in each query.
COHORT_TABLES = {"first_exits": first_exits_sql, "out_spans": out_spans_sql}


def prepare_cohort(con) -> None:
    """Materialise ``COHORT_TABLES`` as temp tables, for ``cohort_ctes(..., prepared=True)``."""
    engine = as_engine(con)
    for name, sql in COHORT_TABLES.items():
        engine.create_table(name, sql())


def cohort_ctes(as_of_dates: list[dt.date], prepared: bool = False) -> str:
    """``WITH`` clause defining as_of_dates, cohort, out_of_net and cohort_status.

    ``prepared``: read ``COHORT_TABLES`` from the temp tables of ``prepare_cohort`` rather than
    computing them here (the same rows: neither depends on the as-of dates)."""
    inputs = "" if prepared else "".join(f"{n} AS ({sql()}),\n" for n, sql in COHORT_TABLES.items())
    return f"""
    WITH {inputs}as_of_dates AS ({as_of_dates_sql(as_of_dates)}),
    cohort AS ({cohort_sql()}),
    out_of_net AS ({already_out_sql()}),
    cohort_status AS ({cohort_with_status_sql()})
    """


def build_cohort(con, as_of_dates: list[dt.date]) -> pd.DataFrame:
    """The cohort at each as-of date: child_pid, as_of, already_out (int8), already_out_net.

    Sorted by as_of, child_pid. ``con`` needs ``children``, ``welfare_events`` and
    ``school_enrollment`` in the interim layout.
    """
    query = f"{cohort_ctes(as_of_dates)} SELECT * FROM cohort_status ORDER BY as_of, child_pid"
    out = as_engine(con).df(query)
    return out.astype(
        {
            "child_pid": "str",
            "as_of": "datetime64[us]",
            "already_out": "int8",
            "already_out_net": "str",
        }
    )
