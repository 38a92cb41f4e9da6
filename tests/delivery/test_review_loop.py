"""The review loop's core on hand-built cases: cooldown, escalation, follow-up, coverage, continuity."""

from __future__ import annotations

import pandas as pd

from src.delivery import review_loop
from src.delivery.capacity import director_cut

EXPORT = pd.Timestamp("2024-06-30")


def reviews(rows):
    frame = pd.DataFrame(rows, columns=["child_pid", "review_date", "outcome", "next_review_date", "provider_id"])
    frame["review_date"] = pd.to_datetime(frame["review_date"])
    frame["next_review_date"] = pd.to_datetime(frame["next_review_date"])
    return frame.assign(caseworker_id="W", services="")


def at_risk(scores, previous):
    n = len(scores)
    return pd.DataFrame({"child_pid": [f"p{i}" for i in range(n)], "county_code": "110101", "caseworker_id": "W",
                         "score": scores, "previous_score": previous})  # fmt: skip


def test_flags_follow_the_latest_review_and_the_params():
    frame = at_risk([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [0.9, 0.70, 0.68, 0.6, None, 0.4])
    table = reviews([
        ("p0", "2024-06-10", "visited_no_risk", None, None),   # cooled: 20 days, no rise
        ("p1", "2024-06-10", "visited_no_risk", None, None),   # rose by 0.10 >= 0.05: not cooled
        ("p2", "2024-03-01", "visited_no_risk", None, None),   # 121 days > 60: not cooled
        ("p3", "2024-05-01", "unreachable", None, None),       # escalated ...
        ("p3", "2024-04-01", "visited_no_risk", None, None),   # ... the later review wins, not file order
        ("p4", "2024-06-01", "referred", "2024-07-15", "P1"),  # follow-up due before 2024-07-30
        ("p5", "2024-06-01", "referred", "2024-08-15", "P2"),  # not due yet
    ])  # fmt: skip
    flags = review_loop.review_flags(frame, table, EXPORT, cooldown_days=60, override=0.05)
    assert flags["review_flag"].tolist() == ["cooldown", "", "", "escalated", "follow_up", ""]
    assert flags["review_priority"].tolist() == [-1, 0, 0, 1, 0, 0]
    assert flags["last_review"].tolist()[3] == "2024-05-01" and flags["last_outcome"].tolist()[3] == "unreachable"


def test_escalated_first_and_cooled_never_above_the_cut():
    frame = at_risk([0.9, 0.8, 0.2, 0.7], [0.9, 0.8, 0.2, 0.7])
    table = reviews([("p0", "2024-06-10", "visited_no_risk", None, None), ("p2", "2024-06-01", "unreachable", None, None)])
    ranked = director_cut(frame.join(review_loop.review_flags(frame, table, EXPORT, 60, 0.05)), 2)
    assert ranked["child_pid"].tolist() == ["p2", "p1", "p3", "p0"]
    assert ranked["above_cut"].tolist() == [True, True, False, False]
    ranked = director_cut(frame.join(review_loop.review_flags(frame, table, EXPORT, 60, 0.05)), 4)
    assert not ranked.set_index("child_pid").at["p0", "above_cut"]  # a free slot is not taken by a cooled child


def test_coverage_counts_last_months_list_reviewed_in_the_month_to_the_export():
    previous = pd.DataFrame({"county_code": "110101", "caseworker_id": ["W", "W", "W", "V"],
                             "child_pid": ["p0", "p1", "p2", "p3"], "above_cut": [True, True, False, True]})  # fmt: skip
    table = reviews([("p0", "2024-06-05", "visited_risk", None, None), ("p1", "2024-05-20", "visited_risk", None, None),
                     ("p2", "2024-06-05", "visited_risk", None, None)])  # fmt: skip
    cov = review_loop.coverage(previous, table, EXPORT)
    assert cov.loc[("110101", "W")].tolist() == [2, 1, 0.5] and cov.loc[("110101", "V")].tolist() == [1, 0, 0.0]


def test_continuity_is_the_latest_referral_with_a_provider():
    table = reviews([("p0", "2024-06-01", "referred", None, "P1|P2"), ("p1", "2024-05-01", "referred", None, "P3"),
                     ("p1", "2024-06-01", "visited_no_risk", None, None), ("p2", "2024-06-01", "referred", None, None)])  # fmt: skip
    pairs = review_loop.continuity(table)
    assert pairs.values.tolist() == [["p0", "P1"], ["p0", "P2"]]


def test_list_ref_depends_on_child_and_date():
    refs = review_loop.list_ref(pd.Series(["a" * 64, "b" * 64]), "2024-06-01")
    assert refs.str.len().tolist() == [16, 16] and refs.iat[0] != refs.iat[1]
    assert refs.iat[0] != review_loop.list_ref(pd.Series(["a" * 64]), "2024-05-01").iat[0]
