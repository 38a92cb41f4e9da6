import pandas as pd
import pytest

from src.linkage import scoring


def test_pairwise_counts_pairs_within_clusters():
    truth = pd.DataFrame(
        {"unique_id": list("abcde"), "person": ["x", "x", "x", "y", "y"], "at_risk": False}
    )
    # predicted: {a,b}, {c,d}, {e}: 1 correct pair (a-b) of 2 predicted; true pairs 3 + 1
    linked = pd.DataFrame({"unique_id": list("abcde"), "child_pid": ["1", "1", "2", "2", "3"]})
    got = scoring.pairwise(linked, truth)
    assert (got["predicted_pairs"], got["true_pairs"], got["correct_pairs"]) == (2, 4, 1)
    assert got["precision"] == pytest.approx(0.5) and got["recall"] == pytest.approx(0.25)


def test_screening_counts_unregistered_at_risk_children_found():
    truth = pd.DataFrame({"unique_id": ["registry:p1", "s:1", "s:2", "h:2", "s:3"],
                          "person": ["C1", "C1", "U1", "U1", "U2"],
                          "at_risk": [True, True, True, True, False]})  # fmt: skip
    linked = pd.DataFrame(
        {"unique_id": truth["unique_id"], "child_pid": ["p1", "p1", "q", "q", "r"]}
    )
    got = scoring.screening(pd.Series(["q", "r"]), linked, truth)
    assert got["unregistered_at_risk"] == 1 and got["found"] == 1
    assert got["recall"] == 1.0 and got["precision"] == 0.5
