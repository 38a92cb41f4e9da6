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
``days_to_outcome`` is the number of days from ``as_of`` to the first event of an enabled
rule in the horizon (missing when there is none): a label over any shorter horizon, as far
as the export has observed it (the nowcast of ``src/models/nowcast.py`` reads it).

Rows that are already out of a net (``already_out = 1``) get their labels computed by the
same rules as every other row; downstream stages (train, evaluate, watchlist) are the ones
that set them aside, so nothing is hidden in this table.

Streaks and rehab runs come from ``src/features/runs.py``, which the features read too, so a
label and the feature that tracks its run mean the same thing. The SQL is standard (CTEs,
window functions, gaps-and-islands with ``ROW_NUMBER``), run by DuckDB or Spark
(``src/features/engine.py``) and returned as pandas.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from src.config import Label
from src.data.contract import PROCEDURAL_EXIT_REASONS
from src.features.cohort import (
    as_of_dates_sql,
    cohort_ctes,
    prepare_cohort,
    sql_codes,
    sql_timestamp,
)
from src.features.engine import as_engine
from src.features.runs import (
    rehab_sessions_sql,
    school_days_sql,
    streak_days_sql,
    streak_runs_sql,
)

RULES = ("benefit_lapse", "school_dropout", "medical_lapse", "protection_crisis")
REHAB_MISSES_IN_A_ROW = 3  # the contract's "three rehab_missed in a row"


def benefit_lapse_sql(label: Label) -> str:
    return f"""
    SELECT child_pid, event_date FROM welfare_events
    WHERE event_type IN ('suspended', 'terminated') AND reason IN ({sql_codes(PROCEDURAL_EXIT_REASONS)})
    """


def school_dropout_sql(label: Label) -> str:
    """Dropped-out events plus the day each unexcused streak reaches the threshold.

    Streaks are the runs of ``src/features/runs.py`` (full-day unexcused absences on
    consecutive school days), shared with ``longest_unexcused_streak_90d``. A run of at
    least ``streak`` days reaches the threshold on its ``streak``-th school day. Only days
    that can matter for the as-of dates at hand are read: from ``streak`` school days before
    the first school day after the earliest as-of date (a run cut there reaches the threshold
    on or before that as-of date, outside every horizon) up to the latest as-of date + horizon.
    """
    streak = int(label.dropout_streak_days)
    school_days = f"({school_days_sql()})"
    first_idx = f"(SELECT COUNT(*) FROM {school_days} AS c WHERE c.d <= (SELECT MIN(as_of) FROM as_of_dates))"
    last_day = f"(SELECT MAX(as_of) FROM as_of_dates) + INTERVAL '{int(label.horizon_days)}' DAY"
    days = f"""(
        SELECT * FROM ({streak_days_sql("school_absences", "child_pid", school_days)}) AS all_days
        WHERE sd_idx >= {first_idx} + 1 - {streak} AND d <= {last_day}
    )"""
    return f"""
    SELECT child_pid, event_date FROM school_enrollment WHERE event_type = 'dropped_out'
    UNION ALL
    SELECT r.child_pid, s.d AS event_date
    FROM ({streak_runs_sql(days, "child_pid")}) AS r
    JOIN {school_days} AS s ON s.sd_idx = r.start_idx + {streak - 1}
    WHERE r.end_idx - r.start_idx + 1 >= {streak}
    """


def medical_lapse_sql(label: Label) -> str:
    """Insurance lapses plus the third miss of every run of rehab misses.

    Sessions and runs are those of ``src/features/runs.py`` (one session per child, day and
    outcome; attended first on a shared day), shared with ``rehab_missed_streak``.
    """
    return f"""
    SELECT child_pid, event_date FROM medical_events WHERE event_type = 'insurance_lapsed'
    UNION ALL
    SELECT child_pid, d AS event_date FROM ({rehab_sessions_sql("medical_events", "child_pid")}) AS sessions
    WHERE event_type = 'rehab_missed' AND missed_run = {REHAB_MISSES_IN_A_ROW}
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


def prepare_labels(con, as_of_dates: list[dt.date], label: Label) -> None:
    """Materialise what every batch of as-of dates reads, once per run: the cohort's tables
    (``cohort.prepare_cohort``) and ``outcome_events`` for all of ``as_of_dates``.

    Then ``build_labels(..., prepared=True)`` on any subset of those dates gives the labels it
    gives unprepared: the streak rule's cut before the first as-of date only drops runs whose
    threshold day is on or before it (``school_dropout_sql``), outside every horizon.
    """
    prepare_cohort(con)
    as_engine(con).create_table(
        "outcome_events",
        f"WITH as_of_dates AS ({as_of_dates_sql(as_of_dates)}) {outcome_events_sql(label)}",
    )


def labels_query(
    as_of_dates: list[dt.date], export_date: dt.date, label: Label, prepared: bool = False
) -> str:
    """One query: cohort and status (cohort.py), outcome hits per as-of date, and the labels.

    ``prepared``: read the tables of ``prepare_labels`` rather than computing them here."""
    horizon = f"INTERVAL '{int(label.horizon_days)}' DAY"
    rules = label.rules.enabled()
    rule_columns = "".join(f",\n COALESCE(h.{rule}, 0) AS {rule}" for rule in rules)
    any_rule = " + ".join(f"COALESCE(h.{rule}, 0)" for rule in rules) or "0"
    pivot = "".join(
        f",\n MAX(CASE WHEN rule = '{rule}' THEN 1 ELSE 0 END) AS {rule}" for rule in rules
    )
    return f"""
    {cohort_ctes(as_of_dates, prepared)},
    {"" if prepared else f"outcome_events AS ({outcome_events_sql(label)}),"}
    hits AS (
        SELECT e.child_pid, a.as_of{pivot},
               MIN(DATE_DIFF('day', a.as_of, e.event_date)) AS days_to_outcome
        FROM outcome_events AS e
        JOIN as_of_dates AS a
          ON e.event_date > a.as_of AND e.event_date <= a.as_of + {horizon}
        GROUP BY e.child_pid, a.as_of
    )
    SELECT k.child_pid, k.as_of{rule_columns},
           CASE WHEN {any_rule} > 0 THEN 1 ELSE 0 END AS label,
           h.days_to_outcome,
           CASE WHEN k.as_of + {horizon} <= {sql_timestamp(export_date)} THEN TRUE ELSE FALSE END
               AS label_observed,
           k.already_out, k.already_out_net
    FROM cohort_status AS k
    LEFT JOIN hits AS h ON h.child_pid = k.child_pid AND h.as_of = k.as_of
    ORDER BY k.as_of, k.child_pid
    """


def build_labels(
    con,
    as_of_dates: list[dt.date],
    export_date: dt.date,
    label: Label,
    prepared: bool = False,
) -> pd.DataFrame:
    """One row per (child_pid, as_of) in the cohort with the label columns, sorted by as_of, child_pid.

    Columns: child_pid, as_of (datetime64[us]), one int8 column per enabled rule, label (int8),
    days_to_outcome (float64, NaN without an event in the horizon), label_observed (bool),
    already_out (int8), already_out_net (str). ``con`` holds the interim
    tables as views or tables (children, welfare_events, school_calendar, school_enrollment,
    school_absences, medical_events, protection_events); with ``prepared``, also the tables
    of ``prepare_labels`` for a superset of ``as_of_dates`` and the same ``label``.
    """
    out = as_engine(con).df(labels_query(as_of_dates, export_date, label, prepared))
    int8_columns = [*label.rules.enabled(), "label", "already_out"]
    return out.astype(
        {
            "child_pid": "str",
            "as_of": "datetime64[us]",
            **dict.fromkeys(int8_columns, "int8"),
            "days_to_outcome": "float64",
            "label_observed": "bool",
            "already_out_net": "str",
        }
    )
