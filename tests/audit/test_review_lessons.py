"""What the reviews teach (src/audit/review_lessons.py, src/audit/reviews.py) on hand-built lists and reviews."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from src.audit import review_lessons, reviews
from tests.params import load_test_params

BANDS = (0.1, 0.25)


def scored() -> pd.DataFrame:
    # one county, two directors, per_caseworker = 2: w1 flags a, b; w2 flags d, e (f is below the cut)
    month = pd.DataFrame({
        "child_pid": list("abcdef"), "score": [0.5, 0.2, 0.05, 0.3, 0.08, 0.01],
        "county_code": "C1", "caseworker_id": ["w1", "w1", "w1", "w2", "w2", "w2"],
        "primary_system": ["education", "medical", "medical", "safety", "education", "medical"],
    })  # fmt: skip
    return pd.concat([month.assign(as_of=pd.Timestamp("2025-11-01")),
                      month.assign(as_of=pd.Timestamp("2025-12-01"))], ignore_index=True)  # fmt: skip


def review_rows() -> pd.DataFrame:
    return pd.DataFrame({
        "child_pid": ["a", "b", "d", "e", "c", "a"],
        "review_date": pd.to_datetime(["2025-11-05", "2025-11-11", "2025-11-03", "2025-11-21", "2025-11-09",
                                       "2025-12-02"]),
        "caseworker_id": "w1",
        "outcome": ["visited_risk", "visited_no_risk", "referred", "unreachable", "visited_risk", "referred"],
        "services": [None, None, "school_follow_up|counselling", None, None, "school_follow_up"],
        "next_review_date": pd.NaT, "provider_id": None,
    })  # fmt: skip


def test_each_review_answers_its_childs_latest_flag():
    report = review_lessons.build(scored(), review_rows(), 2, BANDS)
    assert report["n_reviews"] == 6 and report["n_linked"] == 5 and report["n_unlinked"] == 1  # c was never flagged
    nov = {r["as_of"]: r for r in report["coverage_by_county"]}
    assert nov["2025-11-01"] == {"county_code": "C1", "as_of": "2025-11-01", "flagged": 4, "reviewed": 4, "share": 1.0}
    assert nov["2025-12-01"]["reviewed"] == 1 and nov["2025-12-01"]["share"] == 0.25
    dec = [r for r in report["directors_by_county"] if r["as_of"] == "2025-12-01"][0]
    assert dec == {"county_code": "C1", "as_of": "2025-12-01", "directors": 2, "none_reviewed": 1, "all_reviewed": 0,
                   "median_share": 0.25}  # fmt: skip


def test_days_to_visit_and_confirmed_precision_by_band_by_hand():
    report = review_lessons.build(scored(), review_rows(), 2, BANDS)
    # first reviews after their flag: a 4, b 10, d 2, e 20 (Nov); a 1 (Dec)
    assert report["days_flag_to_review"] == {"n": 5, "median": 4.0, "p25": 2.0, "p75": 10.0}
    bands = {r["band"]: r for r in report["precision_by_band"]}
    # high (>= 0.25): a visited_risk, d referred, a referred -> 3 of 3; medium: b no risk -> 0 of 1;
    # low: e unreachable is not reached
    assert bands["high"]["reached"] == 3 and bands["high"]["confirmed_precision"] == 1.0
    assert bands["high"]["mean_calibrated"] == pytest.approx((0.5 + 0.3 + 0.5) / 3, abs=1e-6)
    assert bands["medium"] == {"band": "medium", "reached": 1, "confirmed": 0, "confirmed_precision": 0.0,
                               "mean_calibrated": 0.2}  # fmt: skip
    assert bands["low"]["reached"] == 0 and bands["low"]["confirmed_precision"] is None
    assert report["services_by_system"] == [
        {"system": "education", "service_code": "school_follow_up", "referrals": 1},
        {"system": "safety", "service_code": "counselling", "referrals": 1},
        {"system": "safety", "service_code": "school_follow_up", "referrals": 1},
    ]
    metrics = review_lessons.metrics_of(report)
    assert metrics["review_coverage"] == pytest.approx(5 / 8) and metrics["confirmed_precision"] == 0.75


def test_no_reviews_says_so(tmp_path):
    interim = tmp_path / "interim"
    interim.mkdir()
    frame = scored()
    frame[["child_pid", "as_of", "score", "primary_system"]].to_parquet(tmp_path / "explanations.parquet")
    frame.drop_duplicates("child_pid")[["child_pid", "county_code", "caseworker_id"]].to_parquet(
        interim / "children.parquet")  # fmt: skip
    metrics = reviews.run(tmp_path / "explanations.parquet", interim, tmp_path / "out", tmp_path / "m.json",
                          load_test_params())  # fmt: skip
    report = json.loads((tmp_path / "out" / "reviews.json").read_text())
    assert not report["has_reviews"] and metrics["reviews"] == 0 and metrics["review_coverage"] == 0.0
    per = load_test_params().base.children_per_caseworker
    assert report["coverage_by_county"][0]["flagged"] == 2 * min(per, 3)  # two directors of three children
    page = (tmp_path / "out" / "index.html").read_text()
    assert 'id="no-reviews"' in page
    review_rows().assign(note="奶奶说<script>").to_parquet(interim / "casework_reviews.parquet")
    reviews.run(tmp_path / "explanations.parquet", interim, tmp_path / "out", tmp_path / "m.json", load_test_params())
    text = (tmp_path / "out" / "reviews.json").read_text() + (tmp_path / "out" / "index.html").read_text()
    assert json.loads((tmp_path / "out" / "reviews.json").read_text())["has_reviews"]
    assert "奶奶" not in text and "<script>" not in text and '"a"' not in text
