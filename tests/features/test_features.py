"""Hand-built histories with known feature values, one test per protection system."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from src.config import Features
from src.data.contract import default_school_calendar
from src.errors import SafetynetError
from src.features import catalogue, features
from tests.features.feature_frames import child, connect, features_at, tables, visit
from tests.params import PARAMS_FILE

AS_OF = "2024-07-01"


def school_days(after: str, upto: str) -> int:
    """School days d with after < d <= upto under the contract's default calendar."""
    cal = default_school_calendar(dt.date(2021, 1, 1), dt.date(2025, 12, 31))["date"]
    return int(((cal > pd.Timestamp(after)) & (cal <= pd.Timestamp(upto))).sum())


def welfare(pid, date, event_type, reason=None, amount=None):
    return {
        "child_pid": pid,
        "event_date": date,
        "event_type": event_type,
        "benefit": "dibao",
        "amount_cny": amount,
        "reason": reason,
    }


def test_basic_living_family():
    rows = [
        welfare("a", "2023-01-10", "enrolled"),
        welfare("a", "2023-02-01", "recert_done"),
        welfare("a", "2023-06-15", "payment", amount=500.0),
        *[welfare("a", f"2024-0{m}-15", "payment", amount=500.0) for m in (1, 2, 3)],
        welfare("a", "2024-05-15", "payment", amount=600.0),
        welfare("a", "2024-03-01", "recert_due"),
        welfare("a", "2024-04-01", "suspended", reason="documents_missing"),
        welfare("a", "2024-04-20", "reinstated"),
        welfare("b", "2024-06-01", "suspended", reason="recert_missed"),
        welfare("b", "2024-06-01", "reinstated"),
        welfare("c", "2022-05-01", "terminated", reason="contact_lost"),
        welfare("d", "2024-06-20", "recert_due"),
        welfare("d", "2024-06-25", "recert_done"),
        *[welfare("f", d, "payment", amount=500.0) for d in ("2024-01-10", "2024-02-10", "2024-05-20", "2024-06-24")],
    ]
    f = features_at(tables(children=[child(p) for p in "abcdef"], welfare_events=rows), AS_OF)
    a = f.loc["a"]
    assert a["benefit_status"] == "active"
    assert a["payment_ratio_180d"] == pytest.approx(4 / 6)  # Jan, Feb, Mar, May of 6 months
    assert a["days_since_last_payment"] == 47
    assert a["payment_gap_max_365d"] == 197  # 2023-06-15 -> 2024-01-15, clipped at 2023-07-02
    assert a["payment_amount_change_90d"] == pytest.approx(0.2)
    assert a["payment_delay_90d"] == 0  # paid on the 15th, as all year
    assert f.loc["f", "payment_delay_90d"] == pytest.approx(12)  # (20 + 24) / 2 - 10
    assert a["recert_overdue"] == 1
    assert a["days_since_recert"] == 365  # last recert_done older than a year: capped
    assert a["suspensions_365d"] == 1
    assert a["last_suspension_reason"] == "documents_missing"
    assert f.loc["b", "benefit_status"] == "active"  # reinstated the same day wins
    c = f.loc["c"]
    assert (c["benefit_status"], c["suspensions_365d"], c["last_suspension_reason"]) == (
        "terminated",
        0,
        "none",
    )
    assert c["payment_ratio_180d"] == 0 and c["payment_gap_max_365d"] == 365
    assert (f.loc["d", "recert_overdue"], f.loc["d", "days_since_recert"]) == (0, 6)
    e = f.loc["e"]  # never in the benefit system: unknown, not zero
    assert e["benefit_status"] == "never"
    assert math.isnan(e["payment_ratio_180d"]) and math.isnan(e["payment_gap_max_365d"])
    assert math.isnan(e["payment_delay_90d"])


def absence(pid, date, kind="unexcused", days=1.0):
    return {"child_pid": pid, "absence_date": date, "absence_type": kind, "days": days}


def enrollment(pid, date, event_type, school_type=None, grade=None):
    return {
        "child_pid": pid,
        "event_date": date,
        "school_id": "s1",
        "event_type": event_type,
        "school_type": school_type,
        "grade": grade,
    }


def test_education_family():
    unexcused = ["2024-06-03", "2024-06-04", "2024-06-05", "2024-06-06", "2024-06-07", "2024-06-10"]
    absences = [
        *[absence("a", d) for d in unexcused],  # a weekend inside: still one run of 6 school days
        absence("a", "2024-06-12", "sick", 0.5),
        absence("a", "2024-06-15", "unexcused"),  # a Saturday: not a school day, ignored
        absence("a", "2024-03-04", "excused"),
        absence("b", "2024-06-03"),
        absence("d", "2024-06-03"),
        *[
            absence("e", d)
            for d in [
                "2024-03-28",
                "2024-03-29",
                "2024-04-01",
                "2024-04-02",
                "2024-04-03",
                "2024-04-04",
                "2024-04-05",
            ]
        ],
    ]
    enroll = [
        enrollment("a", "2023-09-01", "enrolled", "regular", 5),
        enrollment("a", "2024-03-01", "transferred", "special_education"),
        enrollment("b", "2023-09-01", "enrolled", "regular", 6),
        enrollment("b", "2024-05-01", "dropped_out"),
    ]
    kids = [child(p) for p in "abcde"]
    f = features_at(
        tables(children=kids, school_absences=absences, school_enrollment=enroll), AS_OF
    )
    sd_90, sd_prev = school_days("2024-04-02", AS_OF), school_days("2024-01-03", "2024-04-02")
    a = f.loc["a"]
    assert (a["enrollment_status"], a["school_type"], a["grade_gap"]) == (
        "enrolled",
        "special_education",
        -1,
    )
    assert a["unexcused_days_90d"] == 6
    assert a["absence_rate_unexcused_90d"] == pytest.approx(6 / sd_90)
    assert a["absence_rate_sick_90d"] == pytest.approx(0.5 / sd_90)
    assert a["absence_rate_excused_90d"] == 0
    assert a["absence_rate_all_90d"] == pytest.approx(6.5 / sd_90)
    assert a["absence_rate_all_30d"] == pytest.approx(6.5 / school_days("2024-06-01", AS_OF))
    assert a["absence_trend_90d"] == pytest.approx(6.5 / sd_90 - 1 / sd_prev)
    assert a["longest_unexcused_streak_90d"] == 6
    assert a["days_since_last_absence"] == 19
    assert (a["school_transfers_365d"], a["school_suspensions_365d"]) == (1, 0)
    b = f.loc["b"]  # dropped out: rates unknown, not zero
    assert b["enrollment_status"] == "dropped_out"
    assert math.isnan(b["absence_rate_all_90d"]) and math.isnan(b["longest_unexcused_streak_90d"])
    c = f.loc["c"]  # no school record at all
    assert (c["enrollment_status"], c["school_type"]) == ("no_record", "unknown")
    assert math.isnan(c["absence_rate_all_90d"]) and math.isnan(c["grade_gap"])
    assert f.loc["d", "absence_rate_all_90d"] == pytest.approx(
        1 / sd_90
    )  # absences show they attend
    assert f.loc["e", "longest_unexcused_streak_90d"] == 3  # run clipped at the window start


def test_streak_running_past_as_of_counts_only_days_up_to_as_of():
    days = ["2024-06-26", "2024-06-27", "2024-06-28", "2024-07-01", "2024-07-02", "2024-07-03"]
    data = tables(children=[child("a")], school_absences=[absence("a", d) for d in days])
    assert (
        features_at(data, AS_OF).loc["a", "longest_unexcused_streak_90d"] == 4
    )  # 26, 27, 28 June, 1 July


def med(pid, date, event_type, cost=None, oop=None, dx=None):
    return {
        "child_pid": pid,
        "event_date": date,
        "event_type": event_type,
        "diagnosis_group": dx,
        "cost_cny": cost,
        "out_of_pocket_cny": oop,
    }


def test_medical_and_mental_health_families():
    rows = [
        med("a", "2023-12-01", "outpatient"),
        med("a", "2024-02-01", "outpatient", 200.0, 100.0),
        med("a", "2024-06-01", "emergency", 1000.0, 300.0),
        med("a", "2023-08-01", "inpatient", 5000.0),
        med("a", "2023-06-01", "inpatient"),
        *[
            med("a", d, t)
            for d, t in [
                ("2024-05-01", "rehab_attended"),
                ("2024-05-08", "rehab_missed"),
                ("2024-05-15", "rehab_missed"),
                ("2024-05-22", "rehab_attended"),
                ("2024-06-05", "rehab_missed"),
                ("2024-06-12", "rehab_missed"),
            ]
        ],
        med("a", "2023-01-01", "insurance_enrolled"),
        med("a", "2024-06-21", "insurance_lapsed"),
        med("a", "2024-06-20", "mental_health", dx="mental"),
        *[med("b", d, "rehab_missed") for d in ("2023-05-01", "2023-05-08", "2023-05-15")],
        med("b", "2024-01-01", "insurance_lapsed"),
        med("b", "2024-02-01", "insurance_enrolled"),
    ]
    f = features_at(tables(children=[child(p) for p in "abc"], medical_events=rows), AS_OF)
    a = f.loc["a"]
    assert (a["outpatient_visits_180d"], a["emergency_visits_180d"], a["inpatient_stays_365d"]) == (
        1,
        1,
        1,
    )
    assert a["rehab_missed_180d"] == 4
    assert a["rehab_attendance_ratio_180d"] == pytest.approx(2 / 6)
    assert a["rehab_missed_streak"] == 2
    assert (a["insurance_status"], a["days_since_insurance_lapse"]) == ("lapsed", 10)
    assert a["out_of_pocket_cny_365d"] == 400
    assert a["out_of_pocket_share_365d"] == pytest.approx(400 / 1200)
    assert (a["mental_health_contacts_180d"], a["days_since_mental_health_contact"]) == (1, 11)
    assert a["mental_diagnosis_events_365d"] == 1
    b = f.loc["b"]
    assert b["rehab_missed_streak"] == 0  # three misses more than a year ago have aged out
    assert (b["insurance_status"], b["days_since_insurance_lapse"]) == ("insured", 182)
    c = f.loc["c"]
    assert c["insurance_status"] == "no_record" and math.isnan(c["rehab_attendance_ratio_180d"])
    assert math.isnan(c["out_of_pocket_share_365d"]) and c["out_of_pocket_cny_365d"] == 0


def test_safety_and_guardianship_families():
    visits = [
        visit("a", "2024-06-01", safety=1, guardianship=1),
        visit("a", "2024-03-01", education=1),
        visit("a", "2024-01-01"),
        visit("a", "2023-12-01", health=1),
        visit("c", "2024-06-20", basic_needs=1, health=1),
        visit("c", "2024-06-20"),
        visit("c", "2022-01-01", safety=1),  # beyond every window, still history
        visit("c", "2024-07-02", safety=1),  # after as_of: unseen
    ]
    prot = [
        {"child_pid": "a", "event_date": d, "event_type": t}
        for d, t in [
            ("2024-01-10", "abuse_report"),
            ("2023-05-01", "neglect_report"),
            ("2024-06-25", "runaway"),
            ("2024-02-01", "guardian_lost"),
        ]
    ]
    kids = [child("a"), child("b", guardian_type="none"), child("c")]
    f = features_at(tables(children=kids, casework_visits=visits, protection_events=prot), AS_OF)
    a = f.loc["a"]
    assert (a["visits_180d"], a["visit_concerns_90d"], a["days_since_last_visit"]) == (2, 1, 30)
    assert (a["visit_concerns_30d"], a["concerns_per_visit"]) == (0, 1.0)  # 4 concerns, 4 visits
    c = f.loc["c"]
    assert (c["visit_concerns_30d"], c["concerns_per_visit"]) == (1, 1.0)  # 3 concerns, 3 visits
    assert (a["visit_concern_safety_180d"], a["visit_concern_guardianship_180d"]) == (1, 1)
    assert (a["visit_concern_education_180d"], a["visit_concern_health_180d"]) == (1, 0)
    assert (a["abuse_reports_365d"], a["neglect_reports_365d"], a["runaways_365d"]) == (1, 0, 1)
    assert (a["guardian_lost_365d"], a["days_since_protection_event"]) == (1, 6)
    b = f.loc["b"]
    assert (b["guardian_type"], b["visits_180d"], b["days_since_last_visit"]) == ("none", 0, 365)
    assert math.isnan(b["concerns_per_visit"])  # never visited: unknown


def test_static_and_audit_columns():
    kids = [
        child("a", disability_level=2),
        child("b", birth_date="2019-07-02", ethnicity=None, sex="m"),
    ]
    f = features_at(tables(children=kids), AS_OF)
    a, b = f.loc["a"], f.loc["b"]
    assert a["age_years"] == pytest.approx(
        (pd.Timestamp(AS_OF) - pd.Timestamp("2012-05-05")).days / 365.25
    )
    assert (a["months_in_registry"], a["disability_level"], a["disability"]) == (54, 2, "disabled")
    assert (a["age_band"], b["age_band"], b["disability"]) == (
        "12-14",
        "0-5",
        "none",
    )  # b turns 5 tomorrow
    assert (b["ethnicity"], b["sex"], b["category"]) == ("unknown", "m", "low_income")


def test_categoricals_carry_fixed_categories_and_numerics_are_float():
    f = features_at(tables(children=[child("a")]), AS_OF)
    for entry in catalogue.CATALOGUE:
        column = f[entry.name]
        if entry.kind == "categorical":
            assert isinstance(column.dtype, pd.CategoricalDtype)
            assert list(column.cat.categories) == list(entry.categories)
        else:
            assert column.dtype == "float64", entry.name


def test_as_of_dates_start_one_month_after_the_history_start():
    """The latest first record of the month-by-month tables starts the history; an enrolment
    carried over from years before the export does not."""
    data = tables(
        history_from=None,
        children=[child("a")],
        school_enrollment=[enrollment("a", "2019-09-01", "enrolled", "regular", 1)],
        casework_visits=[visit("a", "2022-03-17")],
        school_absences=[absence("a", "2023-01-05")],
    )
    params = Features(
        first_as_of=None,
        last_as_of=None,
        windows_days=(30, 90, 180, 365),
        batch_rows=2,
        protected_as_features=False,
        duckdb_memory_gb=1.0,
        registry_as_of_export="exclude",
    )
    con = connect(data)
    assert features.history_start(con) == dt.date(2023, 1, 1)
    dates = features.as_of_dates(con, dt.date(2023, 6, 15), params)
    assert dates == [dt.date(2023, m, 1) for m in range(2, 7)]
    override = features.as_of_dates(
        con, dt.date(2023, 6, 15), dataclasses.replace(params, first_as_of=dt.date(2022, 12, 1))
    )
    assert override[0] == dt.date(2022, 12, 1) and len(override) == 7
    with pytest.raises(SafetynetError, match="all empty"):
        features.as_of_dates(connect(tables(history_from=None, children=[child("a")])),
                             dt.date(2023, 6, 15), params)  # fmt: skip


def test_run_writes_features_and_summary(tmp_path, monkeypatch):
    from src.config import load_params

    data = tables(  # welfare and visits recorded from December 2023: as-of dates from January
        history_from=None,
        children=[child("a"), child("b", birth_date="2015-01-01")],
        welfare_events=[
            welfare("a", "2023-12-10", "enrolled"),
            welfare("a", "2024-02-01", "suspended", reason="contact_lost"),
        ],
        casework_visits=[visit("a", "2023-12-05"), visit("b", "2023-06-01", health=1)],
    )
    interim = tmp_path / "interim"
    interim.mkdir()
    for name, table in data.items():
        table.to_parquet(interim / f"{name}.parquet", index=False)
    truth = pd.DataFrame(
        {"child_pid": ["a", "b"], "as_of": pd.to_datetime(["2024-01-01"] * 2), "p_true": [0.9, 0.1]}
    )
    truth.to_parquet(interim / "truth.parquet", index=False)
    (interim / "manifest.json").write_text(json.dumps({"export_date": "2024-09-30"}))
    params = load_params(PARAMS_FILE, {"features": {"batch_rows": 8}})
    out, summary_path = tmp_path / "features.parquet", tmp_path / "summary.json"
    with pytest.raises(SafetynetError, match="nothing to train on|train.val_months|backtest folds"):
        features.run(interim, out, summary_path, params)  # 9 months cannot hold the split
    assert not out.exists() and not list(tmp_path.glob(".features.parquet.*"))
    monkeypatch.setattr(features, "check_split", lambda *args: None)  # the rest is about features
    summary = features.run(interim, out, summary_path, params)
    frame = pd.read_parquet(out)
    assert len(frame) == 2 * 9 and summary["rows"] == 18  # 2024-01-01 .. 2024-09-01
    assert list(frame.columns[:2]) == ["child_pid", "as_of"]
    assert set(catalogue.feature_names()) <= set(frame.columns)
    assert frame[["as_of", "child_pid"]].equals(
        frame[["as_of", "child_pid"]].sort_values(["as_of", "child_pid"])
    )
    for entry in catalogue.CATALOGUE:  # the fixed categories survive the parquet round trip
        if entry.kind == "categorical":
            assert list(frame[entry.name].cat.categories) == list(entry.categories)
    assert (frame["label"].dtype, frame["label_observed"].dtype, frame["as_of"].dtype) == (
        "int8",
        "bool",
        "datetime64[us]",
    )
    assert set(frame["ethnicity"]) == {"han"} and frame["already_out_net"].dtype == "str"
    assert summary["rows_per_as_of"]["2024-01-01"] == 2
    assert summary["truth_auc"] == 1.0  # a lapses within the horizon of 2024-01-01, b does not
    assert json.loads(summary_path.read_text())["label_rates_observed"]["label"] is not None
    first = out.read_bytes()
    features.run(interim, out, summary_path, params)
    assert out.read_bytes() == first  # byte-identical on a rerun
    assert summary["registry"] == {  # an (empty) registry_history: the registry as of each date
        "history": True, "read": "as_of_each_date", "mode": "exclude", "excluded": []}  # fmt: skip
    (interim / "registry_history.parquet").unlink()
    absent = features.run(interim, out, summary_path, params)["registry"]
    assert absent["read"] == "as_of_export" and absent["excluded"] == ["guardian_type", "category"]
    assert out.read_bytes() == first  # no recorded change: the same features either way


# ---------------------------------------------------------------- history, seasons, schedules


def _windowed_known_with_long_history(frame_row) -> list[str]:
    """Windowed features a child without records has a value for, given a long history."""
    return [
        e.name
        for e in catalogue.CATALOGUE
        if e.window_days and not (isinstance(frame_row[e.name], float) and math.isnan(frame_row[e.name]))
    ]


@pytest.mark.parametrize(
    ("history_from", "months", "known_windows"),
    [
        ("2024-06-20", 1, {30}),
        ("2024-04-01", 3, {30, 90}),
        ("2024-01-31", 6, {30, 90, 180}),
        ("2023-08-05", 11, {30, 90, 180}),
        ("2023-07-01", 12, {30, 90, 180, 365}),
        ("2021-01-01", 12, {30, 90, 180, 365}),  # capped: every window is observed
    ],
)
def test_a_window_reaching_before_the_history_start_is_unknown(history_from, months, known_windows):
    kids = [child("a")]
    school = [enrollment("a", "2023-09-01", "enrolled", "regular", 5)]  # in school: rates defined
    long = features_at(tables(children=kids, school_enrollment=school), AS_OF).loc["a"]
    known = _windowed_known_with_long_history(long)
    assert {"suspensions_365d", "absence_rate_all_30d", "days_since_last_visit"} <= set(known)
    f = features_at(tables(history_from, children=kids, school_enrollment=school), AS_OF).loc["a"]
    assert f["months_of_history"] == months
    for name in known:
        window = catalogue.spec(name).window_days
        value = f[name]
        unknown = value == "unknown" if isinstance(value, str) else math.isnan(value)
        assert unknown == (window not in known_windows), (name, value)
        if not unknown:
            assert value == long[name], name  # the same value as with a long history


def test_an_observed_event_keeps_days_since_and_recert_overdue_known_on_short_history():
    rows = [
        welfare("a", "2024-05-01", "recert_due"),
        welfare("a", "2024-06-10", "suspended", reason="documents_missing"),
    ]
    kids = [child("a"), child("b")]
    f = features_at(
        tables("2024-04-01", children=kids, welfare_events=rows, casework_visits=[visit("a", "2024-06-01")]),
        AS_OF,
    )
    a, b = f.loc["a"], f.loc["b"]
    assert (a["days_since_last_visit"], a["recert_overdue"], a["last_suspension_reason"]) == (
        30,
        1,
        "documents_missing",
    )
    assert math.isnan(a["suspensions_365d"])  # one seen, but the year is not: a lower bound only
    assert math.isnan(b["days_since_last_visit"]) and math.isnan(b["recert_overdue"])
    assert b["last_suspension_reason"] == "unknown"


def test_months_of_history_is_zero_without_any_record_up_to_as_of():
    data = tables(None, children=[child("a")], casework_visits=[visit("a", "2024-08-01")])
    f = features_at(data, AS_OF).loc["a"]
    assert f["months_of_history"] == 0 and math.isnan(f["visits_180d"])


@pytest.mark.parametrize(
    ("registered", "due_events", "expected"),
    [
        ("2020-03-15", [], 243),  # next anniversary month: 2025-03-01
        ("2020-07-20", [], 0),  # due this month, on as_of
        ("2024-06-10", [], 335),  # registered last month: first due a year on, 2025-06-01
        ("2024-07-01", [], 365),  # registered on as_of
        ("2020-03-15", ["2023-05-01", "2024-05-01"], 304),  # the export's schedule: May
        ("2020-03-15", ["2024-07-01"], 0),  # due on as_of itself
    ],
)
def test_days_until_recert_due(registered, due_events, expected):
    rows = [welfare("a", d, "recert_due") for d in due_events]
    f = features_at(tables(children=[child("a", registered_date=registered)], welfare_events=rows), AS_OF)
    assert f.loc["a", "days_until_recert_due"] == expected


def test_days_until_recert_due_mid_month_rolls_to_next_year():
    rows = [welfare("a", "2024-07-01", "recert_due")]
    f = features_at(tables(children=[child("a")], welfare_events=rows), "2024-07-15")
    assert f.loc["a", "days_until_recert_due"] == 351  # 2025-07-01


@pytest.mark.parametrize(
    ("as_of", "period", "month"),
    [
        ("2024-07-01", "term", 7),  # the summer break starts on 10 July
        ("2024-08-01", "holiday", 8),
        ("2024-02-01", "holiday", 2),  # winter break, 15 Jan - 20 Feb
        ("2024-09-01", "term", 9),  # a Sunday: school starts on Monday 2 September
        ("2024-01-01", "term", 1),
    ],
)
def test_school_period_and_month_of_year(as_of, period, month):
    f = features_at(tables(children=[child("a")]), as_of).loc["a"]
    assert (f["school_period"], f["month_of_year"]) == (period, month)


def test_school_period_is_unknown_where_the_calendar_may_have_ended():
    def period(calendar_end: dt.date, as_of: str) -> str:
        calendar = default_school_calendar(dt.date(2021, 1, 1), calendar_end)
        data = tables(children=[child("a")], school_calendar=calendar)
        return features_at(data, as_of).loc["a", "school_period"]

    # the calendar lists school days only: one ending in the summer break ends on 9 July
    assert period(dt.date(2024, 7, 31), "2024-07-01") == "term"
    assert period(dt.date(2024, 7, 31), "2024-08-01") == "unknown"
    assert period(dt.date(2024, 9, 30), "2024-08-01") == "holiday"


def test_a_batch_holds_whole_as_of_dates_for_every_child_within_batch_rows():
    con = connect(tables(history_from=None, children=[child(c) for c in "abc"]))
    features.prepare_tables(con)
    assert features.dates_per_batch(con, 9) == 3  # 3 children x 3 dates
    assert features.dates_per_batch(con, 8) == 2  # whole dates only
    assert features.dates_per_batch(con, 2) == 1  # at least one, however many children
    dates = [dt.date(2024, m, 1) for m in range(1, 8)]
    assert features.batches(dates, 3) == [dates[0:3], dates[3:6], dates[6:7]]


def test_truth_auc_is_the_rank_sum_auc_with_ties_over_eligible_rows_only(tmp_path):
    rng = np.random.default_rng(3)
    n = 5000
    keys = {"child_pid": [f"c{i % 900:04d}" for i in range(n)],
            "as_of": pd.to_datetime("2024-01-01") + pd.to_timedelta(30 * (np.arange(n) // 900), "D")}  # fmt: skip
    p_true = rng.choice(np.linspace(0.01, 0.6, 40), n)  # 40 values: ties everywhere
    frame = pd.DataFrame({**keys, "label": (rng.random(n) < p_true).astype("int8"),
                          "label_observed": rng.random(n) < 0.9, "already_out": (rng.random(n) < 0.1).astype("int8")})  # fmt: skip
    frame.to_parquet(tmp_path / "features.parquet", index=False)
    pd.DataFrame({**keys, "p_true": p_true}).to_parquet(tmp_path / "truth.parquet", index=False)
    eligible = frame["label_observed"] & (frame["already_out"] == 0)
    expected = roc_auc_score(frame.loc[eligible, "label"], p_true[eligible])
    assert features.truth_auc(tmp_path, tmp_path / "features.parquet") == pytest.approx(expected, abs=1e-12)
    frame.assign(label=0).to_parquet(tmp_path / "one_class.parquet", index=False)
    assert features.truth_auc(tmp_path, tmp_path / "one_class.parquet") is None
