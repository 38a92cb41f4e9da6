"""Generator and ingest agree: ingest quarantines exactly the injected defect rows, with the
injected reasons, and collapses exactly the injected duplicates (issue #2)."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest

from src.config import load_params
from src.data import contract as c
from src.data import generate, ingest
from src.data.row_checks import parse_dates
from src.data.synthetic.export import DEFECT_COLUMNS
from tests.params import PARAMS_FILE

RATES = {  # raised so that every kind hits every table, even protection_events
    "duplicate": 0.04,
    "unknown_code": 0.03,
    "malformed_date": 0.03,
    "future_date": 0.03,
    "unknown_child": 0.03,
    "negative_amount": 0.03,
    "missing_required": 0.03,
}


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """(injected manifest, data-quality report, quarantine folder) of a small export."""
    root = tmp_path_factory.mktemp("agree")
    params = load_params(
        PARAMS_FILE,
        {"synthetic": {"n_children": 400, "months": 15, "defects": RATES}},
    )
    generate.run(root / "synthetic", params)
    ingest.run(root / "synthetic", root / "interim", root / "data_quality.json", params)
    injected = json.loads((root / "synthetic" / "injected_defects.json").read_text())["tables"]
    quality = json.loads((root / "data_quality.json").read_text())["tables"]
    return injected, quality, root / "interim" / "quarantine"


def test_every_kind_is_injected_into_every_table(export):
    injected, _, _ = export
    for table, entry in injected.items():
        kinds = {d["kind"] for d in entry["defects"]}
        assert kinds == {"duplicate", *DEFECT_COLUMNS[table]}, table
        assert all(d["count"] > 0 for d in entry["defects"]), table


# the generator writes no casework_reviews yet: they come back through `safetynet reviews import`
GENERATED = [t for t in c.TABLES if t != "casework_reviews"]


@pytest.mark.parametrize("table", GENERATED)
def test_quarantine_counts_equal_injected_counts(export, table):
    injected, quality, _ = export
    expected = Counter()
    for d in injected[table]["defects"]:
        expected[d["reason"]] += d["count"]
    duplicates = expected.pop("duplicate")
    assert quality[table]["duplicates_collapsed"] == duplicates
    assert quality[table]["rows_quarantined"]["by_reason"] == dict(expected)
    assert quality[table]["rows_accepted"] == injected[table]["rows_clean"]


@pytest.mark.parametrize("table", [t for t in GENERATED if t != "school_calendar"])
def test_quarantined_rows_are_the_injected_rows(export, table):
    """Row by row: ingest's source_row is 1-based, the manifest's first_row 0-based."""
    injected, _, quarantine = export
    expected = {
        d["first_row"] + 1 + i: d["reason"]
        for d in injected[table]["defects"]
        if d["kind"] != "duplicate"
        for i in range(d["count"])
    }
    got = pd.read_csv(quarantine / f"{table}.csv", dtype=str, keep_default_na=False)
    assert dict(zip(got["source_row"].astype(int), got["reason"], strict=True)) == expected


def test_impossible_date_parses_in_place():
    """An impossible but well-shaped date (2024-02-30) sends the chunk to the slow path, which
    once shifted every date in the chunk by one row (source_row index starts at 1)."""
    text = pd.Series(["2024-01-05", "2024-02-30", "2024-03-07", ""], index=pd.RangeIndex(1, 5))
    values, ok = parse_dates(text)
    assert ok.tolist() == [True, False, True, False]
    assert values[1] == pd.Timestamp("2024-01-05") and values[3] == pd.Timestamp("2024-03-07")
