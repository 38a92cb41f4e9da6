"""Month-start as-of dates, the cohort rules and the already-out flags, on tiny histories.

The leakage property (records after t never change the cohort or already_out at t) is
checked together with the labels in test_labels.py, on the same random histories.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from src.data.contract import LEGITIMATE_EXIT_REASONS, PROCEDURAL_EXIT_REASONS
from src.features.cohort import build_cohort, month_starts
from src.features.labels import build_labels
from tests.features.history_db import child, history, label_params

T = dt.date(2024, 3, 1)


def status(con, as_of: dt.date = T) -> tuple[int, str] | None:
    """(already_out, already_out_net) of child X at as_of, or None when X is not in the cohort."""
    out = build_cohort(con, [as_of])
    rows = out[out["child_pid"] == "X"]
    if rows.empty:
        return None
    return int(rows["already_out"].iloc[0]), rows["already_out_net"].iloc[0]


IN, OUT_BASIC, OUT_EDUCATION = (0, ""), (1, "basic_living"), (1, "education")


# --- month_starts -----------------------------------------------------------------------------


def test_month_starts_rounds_the_first_date_up():
    assert month_starts(dt.date(2024, 1, 15), dt.date(2024, 4, 1)) == [
        dt.date(2024, 2, 1),
        dt.date(2024, 3, 1),
        dt.date(2024, 4, 1),
    ]


def test_month_starts_includes_both_ends_and_crosses_years():
    got = month_starts(dt.date(2023, 11, 1), dt.date(2024, 2, 29))
    assert got == [
        dt.date(2023, 11, 1),
        dt.date(2023, 12, 1),
        dt.date(2024, 1, 1),
        dt.date(2024, 2, 1),
    ]


def test_month_starts_is_empty_when_no_month_starts_in_the_span():
    assert month_starts(dt.date(2024, 1, 2), dt.date(2024, 1, 31)) == []
    assert month_starts(dt.date(2024, 3, 1), dt.date(2024, 2, 1)) == []


# --- cohort rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "in_cohort"),
    [
        ("2006-03-01", False),  # turns 18 on t
        ("2006-03-02", True),  # 17 until tomorrow
        ("2024-03-01", True),  # born on t: aged 0
        ("2024-03-02", False),  # not born yet
    ],
)
def test_aged_0_to_17_on_t(birth, in_cohort):
    con = history([child("X", birth=birth, registered="2000-01-01")])
    assert (status(con) is not None) is in_cohort


@pytest.mark.parametrize(
    ("registered", "in_cohort"), [("2024-02-29", True), ("2024-03-01", True), ("2024-03-02", False)]
)
def test_registered_on_or_before_t(registered, in_cohort):
    assert (status(history([child("X", registered=registered)])) is not None) is in_cohort


@pytest.mark.parametrize("reason", LEGITIMATE_EXIT_REASONS)
@pytest.mark.parametrize("event_type", ["suspended", "terminated"])
def test_legitimate_exit_on_or_before_t_leaves_the_cohort(reason, event_type):
    con = history([child("X")], welfare=[("X", T, event_type, reason)])
    assert status(con) is None
    assert status(con, dt.date(2024, 2, 1)) == IN


def test_legitimate_exit_is_final_even_if_reinstated():
    welfare = [
        ("X", "2024-01-10", "suspended", "income_above_line"),
        ("X", "2024-02-10", "reinstated", None),
    ]
    assert status(history([child("X")], welfare=welfare)) is None


@pytest.mark.parametrize("reason", PROCEDURAL_EXIT_REASONS)
def test_procedural_exit_stays_in_the_cohort_as_already_out(reason):
    con = history([child("X")], welfare=[("X", "2024-02-10", "terminated", reason)])
    assert status(con) == OUT_BASIC


# --- already_out: basic living ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        ("2024-02-01", IN),
        ("2024-03-10", OUT_BASIC),
        ("2024-03-24", OUT_BASIC),
        ("2024-03-25", IN),
        ("2024-04-01", IN),
    ],
)
def test_reinstated_benefit_is_no_longer_out(as_of, expected):
    welfare = [
        ("X", "2024-03-10", "suspended", "recert_missed"),
        ("X", "2024-03-25", "reinstated", None),
    ]
    assert status(history([child("X")], welfare=welfare), dt.date.fromisoformat(as_of)) == expected


def test_re_enrolment_in_the_same_benefit_restores_it():
    welfare = [
        ("X", "2024-01-10", "terminated", "contact_lost"),
        ("X", "2024-02-10", "enrolled", None),
    ]
    assert status(history([child("X")], welfare=welfare)) == IN


def test_reinstated_the_same_day_is_not_out():
    welfare = [("X", T, "suspended", "documents_missing"), ("X", T, "reinstated", None)]
    assert status(history([child("X")], welfare=welfare)) == IN


def test_benefits_are_tracked_separately():
    welfare = [
        ("X", "2024-01-10", "suspended", "recert_missed", "dibao"),
        ("X", "2024-02-10", "reinstated", None, "disability_subsidy"),
    ]
    assert status(history([child("X")], welfare=welfare)) == OUT_BASIC


def test_a_second_suspension_after_reinstatement_is_out_again():
    welfare = [
        ("X", "2023-10-10", "suspended", "recert_missed"),
        ("X", "2023-11-10", "reinstated", None),
        ("X", "2024-02-10", "suspended", "contact_lost"),
    ]
    con = history([child("X")], welfare=welfare)
    assert [
        status(con, dt.date(2023, m, 1) if m > 9 else dt.date(2024, m, 1)) for m in (11, 12, 3)
    ] == [
        OUT_BASIC,
        IN,
        OUT_BASIC,
    ]


# --- already_out: education -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        ("2024-03-04", IN),
        ("2024-03-05", OUT_EDUCATION),
        ("2024-04-01", OUT_EDUCATION),
        ("2024-05-06", IN),
    ],
)
def test_dropped_out_until_returned(as_of, expected):
    enrollment = [
        ("X", "2023-09-01", "enrolled"),
        ("X", "2024-03-05", "dropped_out"),
        ("X", "2024-05-06", "returned"),
    ]
    assert (
        status(history([child("X")], enrollment=enrollment), dt.date.fromisoformat(as_of))
        == expected
    )


def test_enrolled_again_after_dropping_out_is_back_in():
    enrollment = [("X", "2023-12-01", "dropped_out"), ("X", "2024-02-01", "enrolled")]
    assert status(history([child("X")], enrollment=enrollment)) == IN


def test_out_of_both_nets_names_both():
    con = history(
        [child("X")],
        welfare=[("X", "2024-01-10", "terminated", "contact_lost")],
        enrollment=[("X", "2024-02-01", "dropped_out")],
    )
    assert status(con) == (1, "basic_living|education")


def test_an_unexcused_streak_alone_does_not_make_a_child_already_out():
    days = pd.date_range("2024-02-21", periods=14, freq="B")
    absences = [("X", d, "unexcused", 1.0) for d in days]
    assert status(history([child("X")], absences=absences)) == IN


# --- the frame itself -------------------------------------------------------------------------


def test_build_cohort_agrees_with_build_labels_and_is_sorted():
    con = history(
        [child("X"), child("A", registered="2024-02-15"), child("B", birth="2006-02-10")],
        welfare=[("X", "2024-01-10", "terminated", "contact_lost")],
    )
    as_of_dates = [dt.date(2024, 3, 1), dt.date(2024, 1, 1)]
    cohort = build_cohort(con, as_of_dates)
    labels = build_labels(con, as_of_dates, dt.date(2025, 1, 1), label_params())
    columns = ["child_pid", "as_of", "already_out", "already_out_net"]
    pd.testing.assert_frame_equal(cohort, labels[columns])
    assert cohort[["child_pid", "as_of"]].astype(str).values.tolist() == [
        ["B", "2024-01-01"],
        ["X", "2024-01-01"],
        ["A", "2024-03-01"],
        ["X", "2024-03-01"],
    ]
    assert cohort["already_out"].dtype == "int8" and cohort["as_of"].dtype == "datetime64[us]"
