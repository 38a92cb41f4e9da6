"""The shared conformance export: our cohort and label code must match expected_labels.csv exactly.

The export goes through the real ingest stage (which collapses the one exact duplicate and
supplies the contract's default school calendar), then build_labels; pseudonyms are mapped
back to the export's child_ids through identity.parquet for the comparison.

The export is tiny and starts late: its welfare table goes back to 2020 but its school
absences and medical records start in January 2024, so by default its as-of dates would
start in February 2024, after the first expected one. Its as-of dates are therefore always given explicitly
(``features.first_as_of``), and the features build at every one of them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from src.config import load_params
from src.data import ingest
from src.features import catalogue
from src.features.features import as_of_dates, compute_features, open_interim, prepare_tables
from src.features.labels import RULES, build_labels
from tests.params import PARAMS_FILE

ROOT = Path(__file__).resolve().parents[2]

CONFORMANCE = Path(__file__).resolve().parents[1] / "fixtures" / "conformance"
EXPORT_DATE = dt.date(2024, 12, 31)
AS_OF_DATES = [dt.date(2024, m, 1) for m in (1, 3, 4, 7, 8)]


@pytest.fixture(scope="module")
def params():
    return load_params(
        PARAMS_FILE,
        overrides={"base": {"export_date": EXPORT_DATE.isoformat()}, "data": {"encoding": "auto"}},
    )


@pytest.fixture(scope="module")
def interim(tmp_path_factory, params):
    interim = tmp_path_factory.mktemp("conformance") / "interim"
    ingest.run(CONFORMANCE / "raw", interim, interim.parent / "data_quality.json", params)
    return interim


@pytest.fixture(scope="module")
def actual(interim, params) -> pd.DataFrame:
    """The project's own path: ingest the raw export, then build labels over the interim tables."""
    labels = build_labels(open_interim(interim), AS_OF_DATES, EXPORT_DATE, params.label)
    identity = pd.read_parquet(interim / "identity.parquet", columns=["child_pid", "child_id"])
    # compare on the export's own ids: map the keyed pseudonyms back through identity.parquet
    labels["child_pid"] = labels["child_pid"].map(
        dict(zip(identity["child_pid"], identity["child_id"], strict=True))
    )
    return labels


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


def test_days_to_outcome_is_the_first_event_in_the_horizon(actual, params):
    """Missing exactly when the label is 0; otherwise 1..horizon days (an event on as_of is past)."""
    days = actual["days_to_outcome"]
    assert (days.isna() == (actual["label"] == 0)).all()
    assert days.dropna().between(1, params.label.horizon_days).all()
    by_row = actual.set_index(["child_pid", "as_of"])["days_to_outcome"]
    # hand-counted from raw/: C01 suspended 2024-03-10 (2024 is a leap year); C09 lapsed 2024-01-15
    assert by_row[("C01", pd.Timestamp("2024-01-01"))] == 31 + 29 + 9
    assert by_row[("C01", pd.Timestamp("2024-03-01"))] == 9
    assert by_row[("C09", pd.Timestamp("2024-01-01"))] == 14


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
        "days_to_outcome",
        "label_observed",
        "already_out",
        "already_out_net",
    ]
    assert actual["as_of"].dtype == "datetime64[us]"
    assert actual["days_to_outcome"].dtype == "float64"
    assert all(actual[c].dtype == "int8" for c in (*RULES, "label", "already_out"))
    assert actual["label_observed"].dtype == bool


def test_default_as_of_dates_start_after_the_history_start_so_the_dates_are_given(interim, params):
    con = open_interim(interim)
    assert as_of_dates(con, EXPORT_DATE, params.features)[0] == dt.date(2024, 2, 1)
    given = dataclasses.replace(params.features, first_as_of=AS_OF_DATES[0])
    assert as_of_dates(con, EXPORT_DATE, given)[0] == AS_OF_DATES[0]


def test_features_build_at_every_conformance_date(interim, params):
    con = open_interim(interim)
    labels = build_labels(con, AS_OF_DATES, EXPORT_DATE, params.label)
    prepare_tables(con)
    frame = compute_features(con, labels)
    assert len(frame) == len(labels) and set(catalogue.feature_names()) <= set(frame.columns)
    history = frame.groupby("as_of")["months_of_history"].first()
    assert history.is_monotonic_increasing and history.iloc[0] < history.iloc[-1]
