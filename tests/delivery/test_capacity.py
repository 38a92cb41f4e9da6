"""The one capacity definition shared by the watchlist and evaluate stages."""

from __future__ import annotations

import pandas as pd

from src.delivery.capacity import list_capacity


def test_capacity_per_county_and_month_counts_distinct_caseworkers():
    scored = pd.DataFrame(
        {
            "as_of": pd.to_datetime(["2025-01-01"] * 5 + ["2025-02-01"] * 2),
            "county_code": ["A", "A", "A", "B", "C", "A", "B"],
            "caseworker_id": ["x", "x", "y", "z", None, "x", None],
        }
    )
    capacity = list_capacity(scored, per_caseworker=5)
    assert capacity.name == "capacity" and capacity.dtype == "int64"
    assert capacity.to_dict() == {
        (pd.Timestamp("2025-01-01"), "A"): 10,
        (pd.Timestamp("2025-01-01"), "B"): 5,
        (pd.Timestamp("2025-01-01"), "C"): 0,  # no caseworker at all: capacity 0
        (pd.Timestamp("2025-02-01"), "A"): 5,
        (pd.Timestamp("2025-02-01"), "B"): 0,
    }


def test_capacity_of_one_snapshot_by_county_only():
    scored = pd.DataFrame({"county_code": ["A", "B", "A"], "caseworker_id": ["x", "y", "z"]})
    capacity = list_capacity(scored, per_caseworker=3, keys=["county_code"])
    assert capacity.to_dict() == {"A": 6, "B": 3}
