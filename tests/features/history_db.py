"""Tiny hand-built histories in the interim layout, registered on an in-memory DuckDB connection.

Shared by the cohort and label tests. Rows are plain tuples, dates ISO strings or dates:
welfare (pid, date, event_type, reason[, benefit]), enrollment (pid, date, event_type),
absences (pid, date, absence_type, days), medical and protection (pid, date, event_type).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
from hypothesis import strategies as st

from src.config import Label, LabelRules
from src.data.contract import default_school_calendar

CALENDAR_START, CALENDAR_END = dt.date(2019, 1, 1), dt.date(2026, 12, 31)

COLUMNS = {
    "children": (
        "child_pid",
        "sex",
        "birth_date",
        "ethnicity",
        "hukou",
        "county_code",
        "community_code",
        "caseworker_id",
        "category",
        "disability_level",
        "guardian_type",
        "registered_date",
    ),
    "welfare_events": ("child_pid", "event_date", "event_type", "benefit", "amount_cny", "reason"),
    "school_enrollment": (
        "child_pid",
        "event_date",
        "school_id",
        "event_type",
        "school_type",
        "grade",
    ),
    "school_absences": ("child_pid", "absence_date", "school_id", "absence_type", "days"),
    "medical_events": (
        "child_pid",
        "event_date",
        "event_type",
        "diagnosis_group",
        "cost_cny",
        "out_of_pocket_cny",
    ),
    "protection_events": ("child_pid", "event_date", "event_type"),
}
DATE_COLUMNS = {"birth_date", "registered_date", "event_date", "absence_date"}
NUMBER_COLUMNS = {
    "amount_cny",
    "days",
    "cost_cny",
    "out_of_pocket_cny",
    "disability_level",
    "grade",
}


def label_params(horizon: int = 180, streak: int = 10, **rules: bool) -> Label:
    """Label params with every rule on unless switched off by keyword."""
    switches = {
        name: rules.get(name, True)
        for name in ("benefit_lapse", "school_dropout", "medical_lapse", "protection_crisis")
    }
    return Label(horizon_days=horizon, dropout_streak_days=streak, rules=LabelRules(**switches))


def child(pid: str, birth: str = "2012-05-05", registered: str = "2020-01-01") -> dict:
    return {
        "child_pid": pid,
        "sex": "f",
        "birth_date": birth,
        "ethnicity": "han",
        "hukou": "rural",
        "county_code": "110101",
        "community_code": "110101001",
        "caseworker_id": "CW1",
        "category": "low_income",
        "disability_level": 0,
        "guardian_type": "grandparents",
        "registered_date": registered,
    }


def _frame(table: str, records: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS[table]))
    for column in frame.columns:
        if column in DATE_COLUMNS:
            frame[column] = pd.to_datetime(frame[column]).astype("datetime64[us]")
        elif column in NUMBER_COLUMNS:
            frame[column] = pd.to_numeric(frame[column]).astype("float64")
        else:
            frame[column] = frame[column].astype("str")
    return frame


def tables_from_rows(children, welfare=(), enrollment=(), absences=(), medical=(), protection=()):
    """Interim frames from the compact row tuples described in the module docstring."""
    return {
        "children": _frame("children", list(children)),
        "welfare_events": _frame(
            "welfare_events",
            [
                {
                    "child_pid": r[0],
                    "event_date": r[1],
                    "event_type": r[2],
                    "reason": r[3],
                    "benefit": r[4] if len(r) > 4 else "dibao",
                }
                for r in welfare
            ],
        ),
        "school_enrollment": _frame(
            "school_enrollment",
            [
                {"child_pid": r[0], "event_date": r[1], "event_type": r[2], "school_id": "S1"}
                for r in enrollment
            ],
        ),
        "school_absences": _frame(
            "school_absences",
            [
                {
                    "child_pid": r[0],
                    "absence_date": r[1],
                    "absence_type": r[2],
                    "days": r[3],
                    "school_id": "S1",
                }
                for r in absences
            ],
        ),
        "medical_events": _frame(
            "medical_events",
            [{"child_pid": r[0], "event_date": r[1], "event_type": r[2]} for r in medical],
        ),
        "protection_events": _frame(
            "protection_events",
            [{"child_pid": r[0], "event_date": r[1], "event_type": r[2]} for r in protection],
        ),
    }


def connect(
    tables: dict[str, pd.DataFrame], calendar: pd.DataFrame | None = None
) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory connection with every interim table registered as a view."""
    con = duckdb.connect()
    if calendar is None:
        calendar = default_school_calendar(CALENDAR_START, CALENDAR_END)
    for name, frame in {**tables, "school_calendar": calendar}.items():
        con.register(name, frame)
    return con


def history(children, calendar: pd.DataFrame | None = None, **rows) -> duckdb.DuckDBPyConnection:
    return connect(tables_from_rows(children, **rows), calendar)


# --- hypothesis: random histories over 2023-01-01 + [0, SPAN_DAYS] ----------------------------

ORIGIN = dt.date(2023, 1, 1)
SPAN_DAYS = 900
PIDS = ("A", "B", "C")


def day(offset: int) -> dt.date:
    return ORIGIN + dt.timedelta(days=offset)


def _event(dates: st.SearchStrategy[int], codes: list[str]) -> st.SearchStrategy[tuple]:
    return st.tuples(st.sampled_from(PIDS), dates, st.sampled_from(codes), st.just(None))


@st.composite
def random_event_rows(draw, near: int | None = None) -> dict[str, list[tuple]]:
    """Random event rows per table, as (pid, date, code, ...) tuples; absences come in runs.

    With ``near``, about half the dates fall in the three days after it, to probe the
    boundaries of the leakage tests.
    """
    dates = st.integers(0, SPAN_DAYS)
    if near is not None:
        dates = st.one_of(dates, st.integers(near + 1, near + 3))
    welfare = draw(
        st.lists(
            st.tuples(
                st.sampled_from(PIDS),
                dates,
                st.sampled_from(["suspended", "terminated", "reinstated", "enrolled", "payment"]),
                st.sampled_from(
                    ["recert_missed", "contact_lost", "moved_away", "income_above_line"]
                ),
                st.sampled_from(["dibao", "orphan_allowance"]),
            ),
            max_size=8,
        )
    )
    enrollment = draw(
        st.lists(_event(dates, ["enrolled", "dropped_out", "returned", "transferred"]), max_size=6)
    )
    runs = draw(
        st.lists(
            st.tuples(
                st.sampled_from(PIDS),
                dates,
                st.integers(1, 16),
                st.sampled_from(["unexcused", "unexcused", "sick"]),
                st.sampled_from([1.0, 1.0, 1.0, 0.5]),
            ),
            max_size=5,
        )
    )
    medical = draw(
        st.lists(
            _event(
                dates,
                [
                    "rehab_missed",
                    "rehab_missed",
                    "rehab_attended",
                    "insurance_lapsed",
                    "outpatient",
                ],
            ),
            max_size=12,
        )
    )
    protection = draw(
        st.lists(
            _event(dates, ["guardian_lost", "emergency_placement", "abuse_report"]), max_size=4
        )
    )
    return {
        "welfare": [
            (p, day(d), t, r if t in ("suspended", "terminated") else None, b)
            for p, d, t, r, b in welfare
        ],
        "enrollment": [(p, day(d), t) for p, d, t, _ in enrollment],
        "absences": [
            (p, day(d + i), kind, days) for p, d, length, kind, days in runs for i in range(length)
        ],
        "medical": [(p, day(d), t) for p, d, t, _ in medical],
        "protection": [(p, day(d), t) for p, d, t, _ in protection],
    }


@st.composite
def random_children(draw) -> list[dict]:
    births = draw(st.lists(st.integers(-6600, 300), min_size=len(PIDS), max_size=len(PIDS)))
    registrations = draw(st.lists(st.integers(-400, 400), min_size=len(PIDS), max_size=len(PIDS)))
    return [
        child(pid, birth=day(b).isoformat(), registered=day(max(r, b)).isoformat())
        for pid, b, r in zip(PIDS, births, registrations, strict=True)
    ]


def splice_after(base: dict[str, list[tuple]], other: dict[str, list[tuple]], cut: dt.date) -> dict:
    """``base`` up to and including ``cut``, then ``other``'s rows dated after ``cut``."""
    return {
        table: [r for r in rows if r[1] <= cut] + [r for r in other[table] if r[1] > cut]
        for table, rows in base.items()
    }
