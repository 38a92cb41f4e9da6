"""Need-adjusted units: recall, expected positives, places, need covered, and the plain reading."""

from __future__ import annotations

import pandas as pd
import pytest

from src.audit.fairness_units import capacity_explains, unit_table


def test_unit_table_by_hand_and_capacity_is_told_apart_from_ranking():
    frame = pd.DataFrame({
        "child_pid": list("abcdefgh"), "county_code": ["x"] * 4 + ["y"] * 4,
        "score": [0.8, 0.4, 0.4, 0.4, 0.5, 0.5, 0.5, 0.5], "label": [1, 1, 0, 0, 1, 0, 1, 0],
        "selected": [1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0],
    })  # fmt: skip
    units = unit_table(frame, "county_code").set_index("unit")
    assert units.loc["x", "recall"] == pytest.approx(0.5)
    assert units.loc["x", "expected_positives"] == pytest.approx(2.0)
    assert units.loc["x", "places"] == 1 and units.loc["x", "need_covered"] == pytest.approx(0.5)
    assert units.loc["x", "expected_recall"] == pytest.approx(0.4)
    assert units.loc["x", "ranking_ratio"] == pytest.approx(0.5 / 0.4)
    assert units.loc["y", "need_covered"] == pytest.approx(1.5)
    readings = capacity_explains(units.reset_index(), 0.8)
    assert readings.iloc[0] == "less capacity per need" and readings.iloc[1] == ""
