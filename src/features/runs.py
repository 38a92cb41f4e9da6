"""Runs of consecutive events, defined once for the features and the labels.

- School days are numbered in date order (``sd_idx``), so consecutive school days have
  consecutive numbers whatever weekends or breaks lie between them.
- A *streak day* is a school day with a full-day (``days = 1``) unexcused absence, one row
  per child per day however many records it has. A half-day or no unexcused absence on a
  school day breaks a streak; absences on days missing from the calendar are ignored.
  ``longest_unexcused_streak_90d`` and the ``school_dropout`` streak rule both read these runs.
- A *rehab session* is one row per child per day per outcome (``rehab_attended`` or
  ``rehab_missed``): several records of one outcome on one day are one session. When a day
  has both, the attended session comes first, so the day's miss starts a new run.
  ``rehab_missed_streak`` and the ``medical_lapse`` rehab rule both read ``missed_run``.

Every builder returns a SELECT over the relations it is given (a table name or a
parenthesised subquery) and names its key column after the caller's (``child_pid`` in the
labels, ``child_idx`` in the features). Standard SQL: subqueries, window functions, gaps
and islands with ``ROW_NUMBER``.
"""

from __future__ import annotations

# Order of a child's rehab sessions on one day: attended first (see the module docstring).
REHAB_SESSION_RANK = {"rehab_attended": 1, "rehab_missed": 2}


def school_days_sql(calendar: str = "school_calendar") -> str:
    """One row per school day: ``d`` (DATE) and ``sd_idx``, its number in date order from 1."""
    return f"""
        SELECT d, CAST(ROW_NUMBER() OVER (ORDER BY d) AS INTEGER) AS sd_idx
        FROM (SELECT DISTINCT CAST("date" AS DATE) AS d FROM {calendar}) AS cal"""


def streak_days_sql(absences: str, key: str, school_days: str) -> str:
    """(key, d, sd_idx): one row per child per school day with a full-day unexcused absence.

    ``absences`` has columns ``key``, ``absence_date``, ``absence_type`` and ``days``;
    ``school_days`` is a relation shaped like ``school_days_sql``.
    """
    return f"""
        SELECT DISTINCT a.{key}, s.d, s.sd_idx
        FROM {absences} AS a JOIN {school_days} AS s ON s.d = CAST(a.absence_date AS DATE)
        WHERE a.absence_type = 'unexcused' AND a.days = 1"""


def streak_runs_sql(streak_days: str, key: str) -> str:
    """(key, start_idx, end_idx): each run of consecutive streak days (gaps and islands).

    ``streak_days`` is a relation shaped like ``streak_days_sql`` (unique per key and day).
    """
    return f"""
        SELECT {key}, MIN(sd_idx) AS start_idx, MAX(sd_idx) AS end_idx
        FROM (SELECT {key}, sd_idx,
                     sd_idx - ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY sd_idx) AS island
              FROM {streak_days} AS s) AS r
        GROUP BY {key}, island"""


def rehab_sessions_sql(events: str, key: str) -> str:
    """(key, d, event_type, session_no, missed_run): a child's rehab sessions in order.

    ``events`` has columns ``key``, ``event_date`` and ``event_type`` (other event types are
    skipped). ``session_no`` numbers a child's sessions from 1 in (day, attended-first) order;
    ``missed_run`` is the number of missed sessions since the last attended one, counting
    this one (0 on an attended session), so the third miss in a row has ``missed_run = 3``.
    Depends only on the child's sessions up to the row, never on later ones.
    """
    order = " ".join(f"WHEN '{code}' THEN {rank}" for code, rank in REHAB_SESSION_RANK.items())
    codes = ", ".join(f"'{code}'" for code in REHAB_SESSION_RANK)
    return f"""
        SELECT {key}, d, event_type, session_no,
               session_no - COALESCE(MAX(CASE WHEN event_type = 'rehab_attended' THEN session_no END)
                   OVER (PARTITION BY {key} ORDER BY session_no
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), 0) AS missed_run
        FROM (SELECT {key}, d, event_type,
                     ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY d, CASE event_type {order} END)
                         AS session_no
              FROM (SELECT DISTINCT {key}, CAST(event_date AS DATE) AS d, event_type
                    FROM {events} AS e WHERE event_type IN ({codes})) AS s) AS n"""
