"""The four outcome rules, the composite label and label_observed, on tiny hand-built histories."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from src.data.contract import (
    LEGITIMATE_EXIT_REASONS,
    PROCEDURAL_EXIT_REASONS,
    default_school_calendar,
)
from src.features import catalogue
from src.features.cohort import month_starts
from src.features.labels import RULES, build_labels, prepare_labels
from tests.features.history_db import (
    CALENDAR_END,
    CALENDAR_START,
    child,
    connect,
    day,
    history,
    label_params,
    random_children,
    random_event_rows,
    splice_after,
    tables_from_rows,
)

T = dt.date(2024, 3, 1)  # the as-of date of most tests
EXPORT = dt.date(2025, 12, 31)
LABEL = label_params()


def labels_at(con, as_of: dt.date = T, label=LABEL, export: dt.date = EXPORT) -> dict:
    """The label row of child X at as_of, as a plain dict (KeyError if X is not in the cohort)."""
    out = build_labels(con, [as_of], export, label)
    rows = out[out["child_pid"] == "X"].to_dict("records")
    assert len(rows) == 1, f"X is not in the cohort at {as_of}"
    return rows[0]


def after(days: int, start: dt.date = T) -> dt.date:
    return start + dt.timedelta(days=days)


def unexcused(dates, days: float = 1.0) -> list[tuple]:
    return [("X", d, "unexcused", days) for d in dates]


def school_days(first: str, n: int) -> list[pd.Timestamp]:
    """The first n default school days from `first` on."""
    calendar = default_school_calendar(dt.date.fromisoformat(first), CALENDAR_END)["date"]
    return list(calendar.iloc[:n])


# --- benefit_lapse ----------------------------------------------------------------------------


@pytest.mark.parametrize("reason", PROCEDURAL_EXIT_REASONS)
@pytest.mark.parametrize("event_type", ["suspended", "terminated"])
def test_procedural_exit_in_horizon_is_a_benefit_lapse(reason, event_type):
    con = history([child("X")], welfare=[("X", after(30), event_type, reason)])
    row = labels_at(con)
    assert (row["benefit_lapse"], row["label"]) == (1, 1)


@pytest.mark.parametrize("reason", LEGITIMATE_EXIT_REASONS)
def test_legitimate_exit_is_no_lapse(reason):
    con = history([child("X")], welfare=[("X", after(30), "terminated", reason)])
    assert labels_at(con)["benefit_lapse"] == 0


def test_reinstated_benefit_lapses_again_only_on_a_new_suspension():
    welfare = [
        ("X", "2024-03-10", "suspended", "recert_missed"),
        ("X", "2024-03-25", "reinstated", None),
        ("X", "2024-09-01", "suspended", "documents_missing"),
    ]
    con = history([child("X")], welfare=welfare)
    assert labels_at(con, dt.date(2024, 3, 1))["benefit_lapse"] == 1
    assert labels_at(con, dt.date(2024, 4, 1))["benefit_lapse"] == 1  # the September one
    assert labels_at(con, dt.date(2024, 9, 1))["benefit_lapse"] == 0


def test_other_welfare_events_are_no_lapse():
    rows = [
        ("X", after(d), t, None) for d, t in [(5, "payment"), (6, "recert_due"), (7, "reinstated")]
    ]
    assert labels_at(history([child("X")], welfare=rows))["label"] == 0


# --- horizon boundaries (both sides) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(-1, 0), (0, 0), (1, 1), (180, 1), (181, 0)],
)
def test_horizon_is_open_at_t_and_closed_at_t_plus_horizon(offset, expected):
    con = history([child("X")], protection=[("X", after(offset), "guardian_lost")])
    assert labels_at(con)["protection_crisis"] == expected


@pytest.mark.parametrize(("offset", "expected"), [(30, 1), (31, 0)])
def test_horizon_comes_from_params(offset, expected):
    con = history([child("X")], welfare=[("X", after(offset), "suspended", "contact_lost")])
    assert labels_at(con, label=label_params(horizon=30))["benefit_lapse"] == expected


# --- school_dropout ---------------------------------------------------------------------------


def test_dropped_out_event_is_a_dropout():
    con = history([child("X")], enrollment=[("X", after(10), "dropped_out")])
    assert labels_at(con)["school_dropout"] == 1


def test_ten_school_days_across_a_weekend_is_a_dropout():
    days = school_days("2024-03-04", 10)  # Mon 4 Mar .. Fri 15 Mar
    con = history([child("X")], absences=unexcused(days))
    assert labels_at(con)["school_dropout"] == 1


def test_nine_days_is_not_a_dropout():
    con = history([child("X")], absences=unexcused(school_days("2024-03-04", 9)))
    assert labels_at(con)["school_dropout"] == 0


def test_a_half_day_breaks_the_run():
    days = school_days("2024-03-04", 15)
    absences = unexcused(days[:7]) + unexcused(days[7:8], 0.5) + unexcused(days[8:])
    con = history([child("X")], absences=absences)
    assert labels_at(con)["school_dropout"] == 0


def test_a_school_day_without_absence_breaks_the_run():
    days = school_days("2024-03-04", 12)
    con = history([child("X")], absences=unexcused(days[:5] + days[6:]))
    assert labels_at(con)["school_dropout"] == 0


def test_excused_and_sick_days_do_not_count():
    days = school_days("2024-03-04", 10)
    absences = unexcused(days[:9]) + [("X", days[9], "sick", 1.0)]
    assert labels_at(history([child("X")], absences=absences))["school_dropout"] == 0


def test_a_run_across_the_winter_break_counts():
    days = school_days("2024-01-08", 10)  # 8-12 Jan, then 21-27 Feb after the break
    assert days[5] == pd.Timestamp("2024-02-21")
    con = history([child("X")], absences=unexcused(days))
    assert labels_at(con, dt.date(2024, 1, 1))["school_dropout"] == 1


def test_a_run_across_a_holiday_missing_from_the_calendar_counts():
    calendar = default_school_calendar(CALENDAR_START, CALENDAR_END)
    national_day = (calendar["date"] >= "2024-10-01") & (calendar["date"] <= "2024-10-07")
    calendar = calendar[~national_day].reset_index(drop=True)
    days = pd.to_datetime(["2024-09-24", "2024-09-25", "2024-09-26", "2024-09-27", "2024-09-30"])
    days = list(days) + list(
        pd.to_datetime(["2024-10-08", "2024-10-09", "2024-10-10", "2024-10-11", "2024-10-14"])
    )
    con = connect(tables_from_rows([child("X")], absences=unexcused(days)), calendar)
    assert labels_at(con, dt.date(2024, 9, 1))["school_dropout"] == 1
    default = history(
        [child("X")], absences=unexcused(days)
    )  # default calendar: 1-7 Oct are school days
    assert labels_at(default, dt.date(2024, 9, 1))["school_dropout"] == 0


def test_absence_on_a_non_school_day_is_ignored():
    days = school_days("2024-03-04", 10)
    saturday = pd.Timestamp("2024-03-09")
    con = history([child("X")], absences=unexcused(days[:5] + [saturday] + days[5:9]))
    assert labels_at(con)["school_dropout"] == 0  # 9 school days; the Saturday adds nothing


@pytest.mark.parametrize(("as_of", "expected"), [("2024-03-14", 1), ("2024-03-15", 0)])
def test_streak_event_date_is_the_day_it_reaches_the_threshold(as_of, expected):
    days = school_days("2024-03-04", 14)  # reaches 10 on Fri 15 Mar, continues after
    con = history([child("X")], absences=unexcused(days))
    assert labels_at(con, dt.date.fromisoformat(as_of))["school_dropout"] == expected


def test_streak_length_comes_from_params():
    con = history([child("X")], absences=unexcused(school_days("2024-03-04", 3)))
    assert labels_at(con, label=label_params(streak=3))["school_dropout"] == 1
    assert labels_at(con, label=label_params(streak=4))["school_dropout"] == 0


def test_duplicate_absence_rows_count_once():
    days = school_days("2024-03-04", 9)
    con = history([child("X")], absences=unexcused(days) + unexcused(days[:3]))
    assert labels_at(con)["school_dropout"] == 0


def test_labels_do_not_depend_on_which_as_of_dates_are_asked_together():
    days = school_days("2024-02-21", 25)  # one long run: reaches 10 on 5 Mar, goes on to 26 Mar
    half_days = unexcused(school_days("2024-04-08", 12)[:6]) + unexcused(
        school_days("2024-04-16", 6), 0.5
    )
    con = history([child("X")], absences=unexcused(days) + half_days)
    as_of_dates = [dt.date(2024, 2, 20) + dt.timedelta(days=3 * i) for i in range(15)]
    together = build_labels(con, as_of_dates, EXPORT, label_params(horizon=20))
    alone = pd.concat(
        [build_labels(con, [d], EXPORT, label_params(horizon=20)) for d in as_of_dates]
    )
    pd.testing.assert_frame_equal(together, alone.reset_index(drop=True))
    assert together["school_dropout"].tolist() == [1] * 5 + [0] * 10  # up to 3 Mar
    prepare_labels(con, as_of_dates, label_params(horizon=20))  # what the stage does, once a run
    batched = pd.concat(
        [
            build_labels(con, as_of_dates[i : i + 4], EXPORT, label_params(horizon=20), True)
            for i in range(0, len(as_of_dates), 4)
        ]
    )
    pd.testing.assert_frame_equal(together, batched.reset_index(drop=True))


# --- medical_lapse ----------------------------------------------------------------------------


def rehab(*pairs: tuple[str, str]) -> list[tuple]:
    return [("X", d, f"rehab_{kind}") for d, kind in pairs]


def test_three_misses_in_a_row_is_a_lapse():
    con = history(
        [child("X")],
        medical=rehab(("2024-03-04", "missed"), ("2024-03-11", "missed"), ("2024-03-18", "missed")),
    )
    assert labels_at(con)["medical_lapse"] == 1


def test_an_attended_session_between_breaks_the_run():
    sessions = rehab(
        ("2024-03-04", "missed"),
        ("2024-03-11", "missed"),
        ("2024-03-13", "attended"),
        ("2024-03-18", "missed"),
    )
    assert labels_at(history([child("X")], medical=sessions))["medical_lapse"] == 0


@pytest.mark.parametrize(
    ("as_of", "expected"), [("2024-02-01", 1), ("2024-03-10", 1), ("2024-03-18", 0)]
)
def test_rehab_run_may_start_before_t_and_counts_at_the_third_miss(as_of, expected):
    sessions = rehab(
        ("2024-02-26", "missed"),
        ("2024-03-04", "missed"),
        ("2024-03-18", "missed"),
        ("2024-03-25", "missed"),
    )
    con = history([child("X")], medical=sessions)
    assert labels_at(con, dt.date.fromisoformat(as_of))["medical_lapse"] == expected


def test_insurance_lapse_is_a_medical_lapse():
    con = history([child("X")], medical=[("X", after(90), "insurance_lapsed")])
    assert labels_at(con)["medical_lapse"] == 1


# --- protection_crisis ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [("guardian_lost", 1), ("emergency_placement", 1), ("abuse_report", 0), ("runaway", 0)],
)
def test_protection_crisis_events(event_type, expected):
    con = history([child("X")], protection=[("X", after(3), event_type)])
    assert labels_at(con)["protection_crisis"] == expected


# --- composite, switched-off rules, label_observed --------------------------------------------


def test_rule_names_match_the_catalogue():
    assert RULES == catalogue.RULE_COLUMNS


def test_switched_off_rule_has_no_column_and_does_not_feed_the_label():
    con = history(
        [child("X")],
        protection=[("X", after(3), "guardian_lost")],
        medical=[("X", after(3), "insurance_lapsed")],
    )
    off = label_params(protection_crisis=False)
    row = labels_at(con, label=off)
    assert "protection_crisis" not in row
    assert (row["medical_lapse"], row["label"]) == (1, 1)
    only_protection_off = label_params(protection_crisis=False, medical_lapse=False)
    row = labels_at(con, label=only_protection_off)
    assert "medical_lapse" not in row and row["label"] == 0


def test_all_rules_off_leaves_a_zero_label():
    con = history([child("X")], protection=[("X", after(3), "guardian_lost")])
    label = label_params(
        benefit_lapse=False, school_dropout=False, medical_lapse=False, protection_crisis=False
    )
    out = build_labels(con, [T], EXPORT, label)
    assert list(out.columns) == [
        "child_pid",
        "as_of",
        "label",
        "days_to_outcome",
        "label_observed",
        "already_out",
        "already_out_net",
    ]
    assert out["label"].tolist() == [0]


def test_label_is_any_rule():
    con = history(
        [child("X"), child("Y")],
        welfare=[("X", after(3), "suspended", "contact_lost")],
        enrollment=[("X", after(4), "dropped_out")],
    )
    out = build_labels(con, [T], EXPORT, LABEL).set_index("child_pid")
    assert out.loc["X", ["benefit_lapse", "school_dropout", "medical_lapse", "label"]].tolist() == [
        1,
        1,
        0,
        1,
    ]
    assert out.loc["Y", "label"] == 0


@pytest.mark.parametrize(("export_offset", "observed"), [(179, False), (180, True), (181, True)])
def test_label_observed_needs_the_whole_horizon_before_export(export_offset, observed):
    con = history([child("X")])
    assert labels_at(con, export=after(export_offset))["label_observed"] is observed


def test_empty_as_of_list_gives_an_empty_frame_with_the_columns():
    out = build_labels(history([child("X")]), [], EXPORT, LABEL)
    assert out.empty
    assert list(out.columns) == [
        "child_pid",
        "as_of",
        *RULES,
        "label",
        "days_to_outcome",
        "label_observed",
        "already_out",
        "already_out_net",
    ]
    assert out["as_of"].dtype == "datetime64[us]" and out["label"].dtype == "int8"


def test_already_out_rows_keep_their_computed_labels():
    welfare = [
        ("X", "2024-02-01", "suspended", "recert_missed"),
        ("X", "2024-05-01", "terminated", "contact_lost"),
    ]
    row = labels_at(history([child("X")], welfare=welfare))
    assert (row["already_out"], row["already_out_net"], row["benefit_lapse"]) == (
        1,
        "basic_living",
        1,
    )


# --- property: records after a cut-off date never change what is computed before it -----------

AS_OF_DATES = month_starts(day(0), day(900))
COHORT_COLUMNS = ["child_pid", "as_of", "already_out", "already_out_net"]


MONTH_START_OFFSETS = [(d - day(0)).days for d in AS_OF_DATES]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    children=random_children(),
    base=random_event_rows(),
    horizon=st.sampled_from([30, 180]),
    streak=st.sampled_from([2, 3, 10]),
    data=st.data(),
)
def test_records_after_a_date_never_change_what_was_known_before(
    children, base, horizon, streak, data
):
    """Replacing every record dated after `cut` keeps the labels at t when t + horizon <= cut,
    and the cohort and already_out at t when t <= cut. (About 7 s: 30 random histories, two
    builds each; this is the leakage guarantee of the labels, so it stays.)

    The cut is often an as-of date or an as-of date + horizon, and the replacement records
    often fall just after it, where an off-by-one leak would show.
    """
    on_boundary = st.builds(
        lambda start, shift: start + shift,
        st.sampled_from(MONTH_START_OFFSETS),
        st.sampled_from([0, horizon]),
    )
    cut = data.draw(st.one_of(st.integers(0, 900), on_boundary), label="cut")
    other = data.draw(random_event_rows(near=cut), label="other")
    label = label_params(horizon=horizon, streak=streak)
    cut_date = day(cut)
    before = build_labels(history(children, **base), AS_OF_DATES, EXPORT, label)
    changed = build_labels(
        history(children, **splice_after(base, other, cut_date)), AS_OF_DATES, EXPORT, label
    )

    def up_to(frame: pd.DataFrame, last: dt.date) -> pd.DataFrame:
        return frame[frame["as_of"] <= pd.Timestamp(last)].reset_index(drop=True)

    pd.testing.assert_frame_equal(
        up_to(before, cut_date)[COHORT_COLUMNS], up_to(changed, cut_date)[COHORT_COLUMNS]
    )
    labels_known = cut_date - dt.timedelta(days=horizon)
    pd.testing.assert_frame_equal(up_to(before, labels_known), up_to(changed, labels_known))
