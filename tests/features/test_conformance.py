"""The shared conformance export: our cohort and label code must match expected_labels.csv exactly.

The raw CSVs are loaded by a small loader here (not the ingest stage), so this test pins the
label rules alone: child_id is used as child_pid, dates become timestamps, the one exact
duplicate row is collapsed and the school calendar is the contract's default.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from src.config import Label, LabelRules
from src.data.contract import TABLES, default_school_calendar
from src.features.labels import RULES, build_labels

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance"
EXPORT_DATE = dt.date(2024, 12, 31)
AS_OF_DATES = [dt.date(2024, m, 1) for m in (1, 3, 4, 7, 8)]
LABEL = Label(horizon_days=180, dropout_streak_days=10, rules=LabelRules(True, True, True, True))
EVENT_TABLES = (
    "welfare_events",
    "school_enrollment",
    "school_absences",
    "medical_events",
    "casework_visits",
    "protection_events",
)

pytestmark = pytest.mark.skipif(
    not CONFORMANCE.is_dir(), reason="shared conformance folder not present"
)


def read_raw_table(raw_dir: Path, table: str) -> pd.DataFrame:
    """One raw CSV in the interim layout: child_pid, timestamp dates, exact duplicates collapsed."""
    frame = pd.read_csv(raw_dir / f"{table}.csv", dtype=str, keep_default_na=False)
    frame = frame.drop_duplicates().replace("", None)
    for column in TABLES[table].columns:
        if column.kind == "date":
            frame[column.name] = pd.to_datetime(frame[column.name]).astype("datetime64[us]")
        elif column.kind in ("number", "int"):
            frame[column.name] = pd.to_numeric(frame[column.name])
    return frame.rename(columns={"child_id": "child_pid"})


def load_conformance(raw_dir: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    tables = {t: read_raw_table(raw_dir, t) for t in ("children", *EVENT_TABLES)}
    first_year = min(f[TABLES[t].date_column].min() for t, f in tables.items()).year
    tables["school_calendar"] = default_school_calendar(dt.date(first_year, 1, 1), EXPORT_DATE)
    for name, frame in tables.items():
        con.register(name, frame)
    return con


@pytest.fixture(scope="module")
def actual() -> pd.DataFrame:
    con = load_conformance(CONFORMANCE / "raw")
    return build_labels(con, AS_OF_DATES, EXPORT_DATE, LABEL)


@pytest.fixture(scope="module")
def expected() -> pd.DataFrame:
    frame = pd.read_csv(CONFORMANCE / "expected_labels.csv", dtype={"child_id": str})
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[us]")
    return frame.rename(columns={"child_id": "child_pid"})


def test_duplicate_absence_is_in_the_raw_file():
    raw = pd.read_csv(CONFORMANCE / "raw" / "school_absences.csv")
    assert raw.duplicated().sum() == 1


def test_cohort_membership_matches(actual, expected):
    keys = ["as_of", "child_pid"]
    got = actual[keys].sort_values(keys).reset_index(drop=True)
    want = expected[keys].sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)


def test_already_out_matches(actual, expected):
    merged = expected.merge(actual, on=["child_pid", "as_of"], suffixes=("_want", ""))
    assert len(merged) == len(expected)
    assert (merged["already_out"] == merged["already_out_want"]).all()


def test_labels_match_on_rows_not_already_out(actual, expected):
    scored = expected[expected["already_out"] == 0]
    merged = scored.merge(actual, on=["child_pid", "as_of"], suffixes=("_want", ""))
    assert len(merged) == len(scored)
    for column in (*RULES, "label", "label_observed"):
        mismatched = merged.loc[merged[column] != merged[f"{column}_want"], ["child_pid", "as_of"]]
        assert mismatched.empty, f"{column} differs on {mismatched.to_dict('records')}"


def test_already_out_names_the_net(actual):
    out = actual[actual["already_out"] == 1].set_index(["child_pid", "as_of"])["already_out_net"]
    assert out.to_dict() == {
        ("C03", pd.Timestamp("2024-07-01")): "basic_living",
        ("C03", pd.Timestamp("2024-08-01")): "basic_living",
        ("C07", pd.Timestamp("2024-04-01")): "education",
    }
    assert (actual.loc[actual["already_out"] == 0, "already_out_net"] == "").all()


def test_output_dtypes_and_order(actual):
    assert list(actual.columns) == [
        "child_pid",
        "as_of",
        *RULES,
        "label",
        "label_observed",
        "already_out",
        "already_out_net",
    ]
    assert actual["as_of"].dtype == "datetime64[us]"
    assert all(actual[c].dtype == "int8" for c in (*RULES, "label", "already_out"))
    assert actual["label_observed"].dtype == bool
    assert actual.equals(actual.sort_values(["as_of", "child_pid"]))
