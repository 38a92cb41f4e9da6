"""Interim tables + as-of dates -> the outcome labels of every cohort row (contract rules).

For a child in the cohort at ``t`` a rule is 1 when one of its events falls in the horizon
``(t, t + horizon_days]``: an event on ``t`` itself is past, one on ``t + horizon_days`` counts.

- ``benefit_lapse``: welfare ``suspended``/``terminated`` with a procedural reason.
- ``school_dropout``: enrollment ``dropped_out``, or the day a run of full-day (``days = 1``)
  unexcused absences reaches ``dropout_streak_days`` consecutive *school* days (days missing
  from ``school_calendar``, such as weekends and breaks, are skipped; a school day with only a
  half-day or no unexcused absence breaks the run; absences on non-school days are ignored).
  One event per run.
- ``medical_lapse``: ``insurance_lapsed``, or the third ``rehab_missed`` in a row with no
  ``rehab_attended`` between (the run may start before ``t``; one event per run, at the third
  miss). Rehab events are de-duplicated per day; on the same day ``rehab_attended`` sorts first.
- ``protection_crisis``: ``guardian_lost`` or ``emergency_placement``.

``label`` is 1 when any enabled rule is 1; a rule switched off in params has no column and
does not feed ``label``. ``label_observed`` is ``as_of + horizon_days <= export_date``.

Rows that are already out of a net (``already_out = 1``) get their labels computed by the
same rules as every other row; downstream stages (train, evaluate, watchlist) are the ones
that set them aside, so nothing is hidden in this table.

The SQL is standard (CTEs, window functions, gaps-and-islands with ``ROW_NUMBER``), run by
DuckDB and returned as pandas via ``.df()``.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from src.config import Label
from src.data.contract import PROCEDURAL_EXIT_REASONS
from src.errors import SafetynetError
from src.features.cohort import cohort_ctes, sql_codes, sql_timestamp

RULES = ("benefit_lapse", "school_dropout", "medical_lapse", "protection_crisis")
REHAB_MISSES_IN_A_ROW = 3  # the contract's "three rehab_missed in a row"


def benefit_lapse_sql(label: Label) -> str:
    return f"""
    SELECT child_pid, event_date FROM welfare_events
    WHERE event_type IN ('suspended', 'terminated') AND reason IN ({sql_codes(PROCEDURAL_EXIT_REASONS)})
    """


def nth_of_run_sql(source: str, n: int) -> str:
    """Rows of ``source`` (child_pid, event_date, idx) that are the n-th of a run of consecutive idx.

    ``idx`` is unique per child. A row is the n-th when the row n - 1 back is idx - (n - 1) and
    the row n back is not idx - n: one sort and two LAGs, cheaper than numbering islands.
    """
    return f"""
    SELECT child_pid, event_date FROM (
        SELECT child_pid, event_date, idx,
               LAG(idx, {n - 1}) OVER w AS idx_run_start,
               LAG(idx, {n}) OVER w AS idx_before_run
        FROM ({source}) AS numbered
        WINDOW w AS (PARTITION BY child_pid ORDER BY idx)
    ) AS runs
    WHERE idx_run_start = idx - {n - 1}
      AND (idx_before_run IS NULL OR idx_before_run <> idx - {n})
    """


def school_dropout_sql(label: Label) -> str:
    """Dropped-out events plus the day each unexcused streak reaches the threshold.

    ``idx`` is the school-day number (ROW_NUMBER over the calendar), so consecutive school
    days have consecutive numbers whatever weekends or breaks lie between them. Only days
    that can matter for the as-of dates at hand are read: from ``streak`` school days before
    the first school day after the earliest as-of date (a day further back can only decide
    that a run started earlier) up to the latest as-of date + horizon (LAG only looks back).
    """
    streak = int(label.dropout_streak_days)
    full_days = f"""
    SELECT DISTINCT a.child_pid, a.absence_date AS event_date, d.idx
    FROM school_absences AS a
    JOIN (
        SELECT "date" AS school_day, ROW_NUMBER() OVER (ORDER BY "date") AS idx
        FROM (SELECT DISTINCT "date" FROM school_calendar) AS cal
    ) AS d ON d.school_day = a.absence_date
    WHERE a.absence_type = 'unexcused' AND a.days = 1
      AND d.idx >= (
          SELECT COUNT(*) FROM (SELECT DISTINCT "date" FROM school_calendar) AS cal
          WHERE "date" <= (SELECT MIN(as_of) FROM as_of_dates)
      ) + 1 - {streak}
      AND d.school_day <= (SELECT MAX(as_of) FROM as_of_dates) + INTERVAL '{int(label.horizon_days)}' DAY
    """
    return f"""
    SELECT child_pid, event_date FROM school_enrollment WHERE event_type = 'dropped_out'
    UNION ALL
    {nth_of_run_sql(full_days, streak)}
    """


def medical_lapse_sql(label: Label) -> str:
    """Insurance lapses plus the third miss of every run of rehab misses.

    ``idx`` numbers a child's rehab sessions (attended and missed) in date order, so misses
    with consecutive numbers had no attended session between them.
    """
    misses = """
    SELECT child_pid, event_date, idx FROM (
        SELECT child_pid, event_date, event_type,
               ROW_NUMBER() OVER (PARTITION BY child_pid ORDER BY event_date, event_type) AS idx
        FROM (
            SELECT DISTINCT child_pid, event_date, event_type FROM medical_events
            WHERE event_type IN ('rehab_attended', 'rehab_missed')
        ) AS rehab
    ) AS sessions
    WHERE event_type = 'rehab_missed'
    """
    return f"""
    SELECT child_pid, event_date FROM medical_events WHERE event_type = 'insurance_lapsed'
    UNION ALL
    {nth_of_run_sql(misses, REHAB_MISSES_IN_A_ROW)}
    """


def protection_crisis_sql(label: Label) -> str:
    return """
    SELECT child_pid, event_date FROM protection_events
    WHERE event_type IN ('guardian_lost', 'emergency_placement')
    """


RULE_SQL = {
    "benefit_lapse": benefit_lapse_sql,
    "school_dropout": school_dropout_sql,
    "medical_lapse": medical_lapse_sql,
    "protection_crisis": protection_crisis_sql,
}


def outcome_events_sql(label: Label) -> str:
    """(child_pid, rule, event_date) for every enabled rule (an empty result if none is).

    Meant for a query that also defines the ``as_of_dates`` CTE (the streak rule reads it to
    skip absences that cannot matter).
    """
    parts = [
        f"SELECT child_pid, '{rule}' AS rule, event_date FROM ({RULE_SQL[rule](label)}) AS {rule}"
        for rule in label.rules.enabled()
    ]
    if not parts:
        return "SELECT child_pid, 'none' AS rule, registered_date AS event_date FROM children WHERE 1 = 0"
    return "\nUNION ALL\n".join(parts)


def check_label_params(label: Label) -> None:
    """Horizon and streak must be positive whole numbers of days."""
    for key in ("horizon_days", "dropout_streak_days"):
        value = getattr(label, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SafetynetError(
                f"params.yaml: label.{key} must be a whole number >= 1, got {value!r}"
            )


def labels_query(as_of_dates: list[dt.date], export_date: dt.date, label: Label) -> str:
    """One query: cohort and status (cohort.py), outcome hits per as-of date, and the labels."""
    horizon = f"INTERVAL '{int(label.horizon_days)}' DAY"
    rules = label.rules.enabled()
    rule_columns = "".join(f",\n COALESCE(h.{rule}, 0) AS {rule}" for rule in rules)
    any_rule = " + ".join(f"COALESCE(h.{rule}, 0)" for rule in rules) or "0"
    pivot = "".join(
        f",\n MAX(CASE WHEN rule = '{rule}' THEN 1 ELSE 0 END) AS {rule}" for rule in rules
    )
    return f"""
    {cohort_ctes(as_of_dates)},
    outcome_events AS ({outcome_events_sql(label)}),
    hits AS (
        SELECT e.child_pid, a.as_of{pivot}
        FROM outcome_events AS e
        JOIN as_of_dates AS a
          ON e.event_date > a.as_of AND e.event_date <= a.as_of + {horizon}
        GROUP BY e.child_pid, a.as_of
    )
    SELECT k.child_pid, k.as_of{rule_columns},
           CASE WHEN {any_rule} > 0 THEN 1 ELSE 0 END AS label,
           CASE WHEN k.as_of + {horizon} <= {sql_timestamp(export_date)} THEN TRUE ELSE FALSE END
               AS label_observed,
           k.already_out, k.already_out_net
    FROM cohort_status AS k
    LEFT JOIN hits AS h ON h.child_pid = k.child_pid AND h.as_of = k.as_of
    ORDER BY k.as_of, k.child_pid
    """


def build_labels(
    con: duckdb.DuckDBPyConnection,
    as_of_dates: list[dt.date],
    export_date: dt.date,
    label: Label,
) -> pd.DataFrame:
    """One row per (child_pid, as_of) in the cohort with the label columns, sorted by as_of, child_pid.

    Columns: child_pid, as_of (datetime64[us]), one int8 column per enabled rule, label (int8),
    label_observed (bool), already_out (int8), already_out_net (str). ``con`` holds the interim
    tables as views or tables (children, welfare_events, school_calendar, school_enrollment,
    school_absences, medical_events, protection_events).
    """
    check_label_params(label)
    out = con.sql(labels_query(as_of_dates, export_date, label)).df()
    int8_columns = [*label.rules.enabled(), "label", "already_out"]
    return out.astype(
        {
            "child_pid": "str",
            "as_of": "datetime64[us]",
            **dict.fromkeys(int8_columns, "int8"),
            "label_observed": "bool",
            "already_out_net": "str",
        }
    )
