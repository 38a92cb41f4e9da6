"""The one capacity definition shared by the watchlist and evaluate stages."""

from __future__ import annotations

import pandas as pd

from src.delivery.capacity import NO_DIRECTOR, director_cut, list_capacity


def test_one_list_per_director_and_month_with_capacity_per_caseworker():
    scored = pd.DataFrame(
        {
            "as_of": pd.to_datetime(["2025-01-01"] * 5 + ["2025-02-01"] * 2),
            "county_code": ["A", "A", "A", "B", "C", "A", "B"],
            "caseworker_id": ["x", "x", "y", "z", None, "x", None],
        }
    )
    capacity = list_capacity(scored, per_caseworker=5)
    assert capacity.name == "capacity" and capacity.dtype == "int64"
    jan, feb = pd.Timestamp("2025-01-01"), pd.Timestamp("2025-02-01")
    assert capacity.to_dict() == {
        (jan, "A", "x"): 5,  # two of x's children, one list
        (jan, "A", "y"): 5,
        (jan, "B", "z"): 5,
        (jan, "C", NO_DIRECTOR): 0,  # children no director looks after: nobody's list
        (feb, "A", "x"): 5,
        (feb, "B", NO_DIRECTOR): 0,
    }
    by_county = list_capacity(scored, per_caseworker=5, keys=["as_of", "county_code"])
    assert by_county.to_dict() == {
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


def test_each_director_gets_their_own_top_n_ties_by_child_pid():
    frame = pd.DataFrame(
        {
            "county_code": ["A"] * 7 + ["B"],
            "caseworker_id": ["x", "x", "x", "y", "y", None, None, "x"],
            "score": [0.9, 0.5, 0.5, 0.1, 0.05, 0.99, 0.2, 0.01],
            "child_pid": ["p1", "p3", "p2", "p4", "p5", "p6", "p7", "p8"],
        }
    )
    ranked = director_cut(frame, per_caseworker=2)
    assert ranked["child_pid"].tolist() == ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"]
    assert ranked["director_rank"].tolist() == [1, 2, 3, 1, 2, 1, 2, 1]
    # x's tie at the cut goes to the smaller child_pid; y's low scores still get y's slots;
    # the highest-risk child without a director is never above a cut
    assert ranked["above_cut"].tolist() == [True, True, False, True, True, False, False, True]
    # at most the county capacity: B's director has one child for two slots
    assert ranked["above_cut"].sum() == list_capacity(frame, 2, keys=["county_code"]).sum() - 1


def test_no_director_written_as_empty_text_is_on_no_list():
    frame = pd.DataFrame({"county_code": ["A", "A", "A"], "caseworker_id": ["x", NO_DIRECTOR, None],
                          "score": [0.1, 0.9, 0.8], "child_pid": ["a", "b", "c"]})  # fmt: skip
    ranked = director_cut(frame, per_caseworker=5)
    assert ranked.loc[ranked["above_cut"], "child_pid"].tolist() == ["a"]
