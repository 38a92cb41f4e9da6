"""The export date rule (src/data/export_date.py), on rows per date built here: stray rows,
truncated and cut-short months, seasons, tables that disagree, sparse and empty tables."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from src.data.export_check import open_export
from src.data.export_date import (
    SOURCE_LATEST,
    SOURCE_PARAMS,
    SOURCE_TODAY,
    SOURCE_VOLUMES,
    Rule,
    count_days,
    day_counts,
    infer,
)
from src.data.ingest import validate_export
from src.data.raw_files import open_raw_file
from src.errors import SafetynetError
from tests.data.conftest import VALID_ROWS, write_csv, write_export

RULE = Rule(normal_share=0.5, min_month_rows=20, tolerance_days=45)
TODAY = dt.date(2026, 12, 1)
END = dt.date(2025, 12, 31)


def span(start: str, end: str, per_day: float = 40, seed: int | None = None) -> pd.Series:
    """Rows per date from start to end: `per_day` each day, or Poisson(per_day) with a seed."""
    days = pd.date_range(start, end, freq="D")
    if seed is None:
        counts = np.full(len(days), per_day, dtype=np.int64)
    else:
        counts = np.random.default_rng(seed).poisson(per_day, len(days))
    return pd.Series(counts, index=days)[counts > 0]


def plus(daily: pd.Series, *dates: str) -> pd.Series:
    """`daily` with one more row on each of `dates`."""
    return daily.add(day_counts(dates), fill_value=0).astype(np.int64).sort_index()


def thin(daily: pd.Series, start: str, share: float) -> pd.Series:
    """Only `share` of the rows from `start` on (a month still being entered)."""
    late = daily.index >= pd.Timestamp(start)
    return daily.where(~late, (daily * share).round().astype(np.int64))


def school(start: str, end: str, per_day: float = 30) -> pd.Series:
    """Weekdays outside 15 Jan-20 Feb and 10 Jul-31 Aug, like school absences."""
    daily = span(start, end, per_day)
    md = daily.index.month * 100 + daily.index.day
    holiday = ((md >= 115) & (md <= 220)) | ((md >= 710) & (md <= 831))
    return daily[(daily.index.dayofweek < 5) & ~holiday]


def run(**tables: pd.Series):
    return infer(tables, RULE, TODAY)


# --------------------------------------------------------------------------- one table


@pytest.mark.parametrize(("per_day", "seed"), [(40, None), (1, 1), (3, 2), (40, 3), (400, 4)])
def test_a_clean_table_ends_on_its_last_day(per_day, seed):
    daily = span("2023-01-01", "2025-12-31", per_day, seed)
    result = run(welfare_events=daily)
    last = daily.index[-1].date()  # 30 Dec when Poisson(1) gave 31 Dec no row
    assert (result.export_date, result.source, result.problem) == (last, SOURCE_VOLUMES, None)
    assert result.tables["welfare_events"].votes and last >= dt.date(2025, 12, 28)


def test_one_stray_row_months_later_is_passed_over():
    result = run(welfare_events=plus(span("2023-01-01", "2025-12-31"), "2026-11-30"))
    welfare = result.tables["welfare_events"]
    assert result.export_date == welfare.end == END
    assert welfare.last_date == dt.date(2026, 11, 30)
    assert "passed over 2026-11: 1 row after 10 months without rows" in welfare.why


def test_stray_rows_right_after_the_end_are_passed_over():
    result = run(welfare_events=plus(span("2023-01-01", "2025-12-31"), *["2026-01-01"] * 5))
    assert result.export_date == END
    assert "2026-01: 5 rows, below 0.5 x" in result.tables["welfare_events"].why


def test_stray_rows_in_many_months_do_not_make_a_table_sparse():
    strays = [f"{y}-{m:02d}-28" for y in (2026, 2027, 2028) for m in range(1, 13)]
    result = run(welfare_events=plus(span("2023-01-01", "2025-12-31"), *strays))
    assert result.export_date == END and result.tables["welfare_events"].votes


def test_a_gap_of_a_year_or_more_is_never_a_season():
    daily = pd.concat([span("2023-01-01", "2024-12-31"), span("2026-02-01", "2026-02-28")])
    result = run(welfare_events=daily)
    assert result.export_date == dt.date(2024, 12, 31)
    assert "2026-02: 1,120 rows after 13 months without rows" in result.tables["welfare_events"].why


def test_a_truncated_last_month_is_not_complete():
    daily = thin(span("2023-01-01", "2025-12-31"), "2025-12-01", 0.3)
    result = run(welfare_events=daily, casework_visits=daily)
    assert result.export_date == dt.date(2025, 11, 30)
    assert "passed over 2025-12: 372 rows, below 0.5 x 1,220" in result.tables["welfare_events"].why


def test_an_export_cut_mid_month_ends_on_its_last_day():
    cut = span("2023-01-01", "2025-12-10")
    assert run(welfare_events=cut).export_date == dt.date(2025, 12, 10)
    assert run(welfare_events=plus(cut, "2025-12-28")).export_date == dt.date(2025, 12, 10)


def test_a_month_is_judged_by_its_own_pattern_of_days():
    """A payment run on the 10th: a month cut on the 12th counts, one at 30% does not."""
    daily = span("2023-01-01", "2025-12-31", 5)
    runs = day_counts(pd.date_range("2023-01-10", "2025-12-10", freq="MS") + pd.Timedelta(days=9))
    payments = daily.add(runs * 1000, fill_value=0).astype(np.int64)
    assert run(welfare_events=payments).export_date == END
    cut = payments[payments.index <= "2025-12-12"]
    assert run(welfare_events=cut).export_date == dt.date(2025, 12, 12)
    assert run(welfare_events=thin(payments, "2025-12-01", 0.3)).export_date == dt.date(
        2025, 11, 30
    )


# --------------------------------------------------------------------------- across tables


def test_tables_that_disagree_stop_with_one_line_naming_them_and_the_fix():
    result = run(
        welfare_events=span("2023-01-01", "2025-12-31"),
        medical_events=span("2023-01-01", "2025-12-31"),
        casework_visits=span("2023-01-01", "2025-06-30"),
    )
    assert result.problem == (
        "export date: the tables end more than 45 days apart (ingest.export_date_tolerance_days): "
        "welfare_events 2025-12-31, medical_events 2025-12-31, but casework_visits 2025-06-30; "
        'fix: set base.export_date in params.yaml, quoted (e.g. export_date: "2025-06-30", which '
        "every table reaches), or export all tables again at the same time"
    )


def test_tables_within_the_tolerance_agree_on_the_latest_end():
    result = run(
        welfare_events=span("2023-01-01", "2025-12-31"),
        casework_visits=span("2023-01-01", "2025-11-20"),
    )
    assert (result.export_date, result.problem) == (END, None)
    assert result.tables["casework_visits"].end == dt.date(2025, 11, 20)


@pytest.mark.parametrize("end", ["2025-08-31", "2025-09-30", "2025-02-28", "2025-07-31"])
def test_a_season_is_no_disagreement(end):
    """School absences stop from 10 Jul to 31 Aug and from 15 Jan to 20 Feb."""
    result = run(welfare_events=span("2023-01-01", end), school_absences=school("2023-01-01", end))
    assert (result.export_date.isoformat(), result.problem) == (end, None)
    if end == "2025-08-31":
        assert "a year earlier: a season" in result.tables["school_absences"].why
    if end == "2025-09-30":  # September counts after an August without rows
        assert result.tables["school_absences"].end == dt.date(2025, 9, 30)


def test_without_a_year_of_history_a_long_holiday_is_a_disagreement():
    end = "2025-08-31"
    result = run(welfare_events=span("2024-10-01", end), school_absences=school("2024-10-01", end))
    assert "school_absences 2025-07-09" in result.problem


def test_empty_sparse_and_registry_tables_do_not_vote():
    result = run(
        children=span("2019-01-01", "2026-06-30", 50),  # registrations need not end anywhere
        welfare_events=span("2023-01-01", "2025-12-31"),
        protection_events=span("2023-01-01", "2026-03-31", 0.2, seed=5),
        casework_visits=pd.Series(dtype=np.int64),
    )
    assert (result.export_date, result.problem) == (END, None)
    assert [t for t, e in result.tables.items() if e.votes] == ["welfare_events"]
    assert result.tables["casework_visits"].why == "no dated rows"
    assert "fewer than ingest.export_date_min_month_rows" in result.tables["protection_events"].why
    assert "registry" in result.tables["children"].why


def test_without_a_voting_table_the_export_date_is_the_latest_date():
    result = run(
        welfare_events=day_counts(["2024-01-02"]), casework_visits=day_counts(["2024-03-04"])
    )
    assert (result.export_date, result.source) == (dt.date(2024, 3, 4), SOURCE_LATEST)
    assert "set base.export_date if it is wrong" in result.headline()


def test_without_any_date_the_export_date_is_today():
    for daily in ({}, {"welfare_events": pd.Series(dtype=np.int64)}):
        result = infer(daily, RULE, TODAY)
        assert (result.export_date, result.source) == (TODAY, SOURCE_TODAY)


def test_the_inference_is_reported_as_json_and_lines():
    result = run(welfare_events=plus(span("2023-01-01", "2025-12-31"), "2026-11-30"))
    block = json.loads(json.dumps(result.as_dict()))
    assert block["export_date"] == "2025-12-31" and block["source"] == SOURCE_VOLUMES
    assert block["normal_share"] == 0.5 and block["tolerance_days"] == 45
    assert block["tables"]["welfare_events"]["last_date"] == "2026-11-30"
    assert block["tables"]["welfare_events"]["end"] == "2025-12-31"
    text = "\n".join(result.lines())
    assert "rule: per table, the last date of its last month" in text
    assert "welfare_events  ends 2025-12-31, 1,220 rows a month, last row 2026-11-30" in text


# --------------------------------------------------------------------------- reading and params


def test_count_days_keeps_valid_dates_up_to_today(tmp_path):
    dates = ["2024-01-02", "2024-01-02", "1989-12-31", "2024-02-30", "", "2031-01-01", "2024-03-04"]
    rows = [{**VALID_ROWS["welfare_events"], "event_date": d} for d in dates]
    raw_file = open_raw_file("welfare_events", write_csv(tmp_path / "welfare_events.csv", rows))
    daily, after = count_days(raw_file, "event_date", 3, dt.date(2025, 6, 1))
    assert daily.to_dict() == {pd.Timestamp("2024-01-02"): 2, pd.Timestamp("2024-03-04"): 1}
    assert after == 1


def test_base_export_date_wins(tmp_path, params):
    welfare = [
        VALID_ROWS["welfare_events"],
        {**VALID_ROWS["welfare_events"], "event_date": "2026-11-30"},
    ]
    raw = write_export(tmp_path / "raw", {"welfare_events": welfare})
    opened = open_export(raw, params, strict=True)
    assert opened.export_date == dt.date(2024, 12, 31) and opened.inference.source == SOURCE_PARAMS
    assert opened.inference.as_dict() == {"export_date": "2024-12-31", "source": "base.export_date"}
    text = validate_export(raw, params).render()
    assert "Export date 2024-12-31: base.export_date in params.yaml (nothing inferred)" in text
    assert "beyond_export_date:event_date: 1 (e.g. source rows 2)" in text


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("export_date_normal_share", 0, "ingest.export_date_normal_share must be in (0, 1]"),
        ("export_date_normal_share", 1.5, "ingest.export_date_normal_share must be in (0, 1]"),
        ("export_date_min_month_rows", 0, "ingest.export_date_min_month_rows must be at least 1"),
        ("export_date_tolerance_days", -1, "ingest.export_date_tolerance_days must be at least 0"),
    ],
)
def test_bad_rule_params_stop_at_load(make_params, key, value, message):
    with pytest.raises(SafetynetError, match=message.replace("(", r"\(").replace("]", r"\]")):
        make_params(ingest={key: value})
