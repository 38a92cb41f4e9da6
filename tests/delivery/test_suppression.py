"""Small-cell suppression: the fairness rule, with complementary suppression per county."""

from __future__ import annotations

import pandas as pd

from src.delivery.suppression import COMPLEMENTARY, suppress


def test_small_cells_are_blanked_and_a_lone_one_takes_the_smallest_other_with_it():
    table = pd.DataFrame({"county_code": ["a", "a", "a", "b", "b", "c"], "needs": [40, 5, 31, 3, 2, 50],
                          "unmet": [10, 1, 0, 3, 2, 7]})  # fmt: skip
    out = suppress(table, "needs", "county_code", ["needs", "unmet"], 30)
    assert out["suppressed"].tolist() == ["", "fewer than 30 children", COMPLEMENTARY, "fewer than 30 children",
                                          "fewer than 30 children", ""]  # fmt: skip
    assert out["needs"].isna().tolist() == [False, True, True, True, True, False]
    assert out["unmet"].isna().equals(out["needs"].isna()) and out.loc[0, "unmet"] == 10


def test_nothing_is_suppressed_when_every_cell_is_large_enough():
    table = pd.DataFrame({"county_code": ["a", "b"], "needs": [30, 99]})
    out = suppress(table, "needs", "county_code", ["needs"], 30)
    assert out["suppressed"].eq("").all() and out["needs"].tolist() == [30, 99]
