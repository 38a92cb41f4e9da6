"""Simulated child directors: outcomes from the truth, filled XLSX the import reads, interventions."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from src.data.synthetic import reviews
from src.delivery import review_import, watchlist
from src.delivery.wording import TEXT
from src.errors import SafetynetError
from tests.delivery import explain_fixtures as fx
from tests.params import load_test_params

LOOP = load_test_params().synthetic.review_loop


def loop(**shares):
    return type(LOOP)(**{**vars(LOOP), **shares})


def test_outcomes_follow_the_shares_and_the_true_risk():
    p = np.repeat([0.05, 0.6], 20_000)
    outcome = reviews.draw_outcomes(p, loop(visit_share=0.7, unreachable_share=0.1, referral_share=0.5),
                                    np.random.default_rng(1))  # fmt: skip
    reviewed = outcome != ""
    assert abs(reviewed.mean() - 0.7) < 0.01
    assert abs((outcome[reviewed] == "unreachable").mean() - 0.1) < 0.01
    for value, part in ((0.05, p == 0.05), (0.6, p == 0.6)):
        reached = part & reviewed & (outcome != "unreachable")
        confirmed = np.isin(outcome[reached], ["visited_risk", "referred"])
        assert abs(confirmed.mean() - value) < 3 * np.sqrt(value * (1 - value) / reached.sum())
        assert abs((outcome[reached][confirmed] == "referred").mean() - 0.5) < 0.03
    assert not np.isin(outcome, ["already_known"]).any()


def test_referrals_become_interventions_from_the_next_month():
    decisions = pd.DataFrame({"child_id": ["C1", "C2", "C3"], "outcome": ["referred", "visited_risk", "referred"],
                              "review_date": pd.to_datetime(["2025-06-30", "2025-06-02", "2025-12-01"])})  # fmt: skip
    out = reviews.interventions_of(decisions, 0.6)
    assert out.to_dict("list") == {"child_id": ["C1", "C3"], "month": ["2025-07-01", "2026-01-01"],
                                   "hazard_ratio": [0.6, 0.6]}  # fmt: skip


@pytest.fixture
def lists(tmp_path, monkeypatch):
    """Written watchlists (fixture pids are sha256(child_id)), their params and each listed child's p_true."""
    fx.use_small_catalogue(monkeypatch)
    expl_path, interim, _, _ = fx.write_inputs(tmp_path)
    monkeypatch.setattr(
        watchlist,
        "read_promotion",
        lambda models: {"passed": True, "reason": "ok", "model_digest": "m"},
    )
    monkeypatch.setattr(
        review_import,
        "child_pids",
        lambda ids, key: np.array([fx.pid(i) for i in ids], dtype=object),
    )
    params = fx.params(data__raw_dir=str(tmp_path / "export"))
    out = tmp_path / "watchlists"
    watchlist.run(expl_path, tmp_path / "contributions.parquet", tmp_path / "models", fx.served_dir(tmp_path),
                  interim, out, params)  # fmt: skip
    cols = TEXT["zh"]["columns"]
    rows = pd.concat([pd.read_csv(p, dtype=str) for p in out.glob("*/watchlist.csv")])
    truth = pd.DataFrame(
        {"child_id": rows[cols["child_id"]], "as_of": pd.to_datetime(rows[cols["list_date"]])}
    )
    truth["p_true"] = [
        int(hashlib.sha256(c.encode()).hexdigest(), 16) % 2 * 1.0 for c in truth["child_id"]
    ]
    return sorted(out.glob("*/watchlist.xlsx")), params, truth.drop_duplicates(), rows


def test_filled_lists_import_into_the_contract_table_as_drawn(lists):
    paths, params, truth, rows = lists
    until = pd.Timestamp(truth["as_of"].max()) + pd.Timedelta(days=40)
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    drawn = reviews.fill_watchlists(paths, truth, loop(visit_share=0.8), until.date(), seed=3)
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths] != digests
    sections = TEXT["zh"]["sections"]
    visit = rows[
        rows[TEXT["zh"]["columns"]["section"]].isin([sections[s] for s in reviews.VISIT_SECTIONS])
    ]
    assert 0 < len(drawn) < len(visit) and set(drawn["child_id"]) <= set(
        visit[TEXT["zh"]["columns"]["child_id"]]
    )
    reached = drawn[drawn["outcome"] != "unreachable"]
    assert (reached["outcome"].isin(["visited_risk", "referred"]) == (reached["p_true"] == 1)).all()
    assert (drawn["review_date"] < until).all() and (
        drawn["review_date"] >= until - pd.Timedelta(days=28)
    ).all()
    summary = review_import.run(paths, params)
    assert summary["errors"] == 0
    table = pd.read_csv(summary["target"], dtype=str, keep_default_na=False)
    got = (
        table[["child_id", "outcome", "review_date"]].sort_values("child_id").reset_index(drop=True)
    )
    want = drawn.assign(review_date=drawn["review_date"].dt.strftime("%Y-%m-%d"))[got.columns]
    pd.testing.assert_frame_equal(got, want.sort_values("child_id").reset_index(drop=True))
    assert table["note"].str.startswith("模拟复核记录：").all()


@pytest.mark.parametrize(
    "key, value", [("visit_share", 1.5), ("unreachable_share", -0.1), ("referral_hazard_ratio", 0)]
)
def test_review_loop_params_are_checked_at_load(key, value):
    with pytest.raises(SafetynetError, match="synthetic.review_loop"):
        load_test_params({"synthetic": {"review_loop": {key: value}}})


@pytest.mark.slow
@pytest.mark.parametrize("ratio", [0.3, 1.0])
def test_a_referral_lowers_the_referred_childrens_outcome_rate_against_comparable_ones(ratio):
    """Common random numbers: children not referred keep their outcomes; the referred fall out
    less than the confirmed-but-not-referred (the same selection) only when the ratio is < 1."""
    params = load_test_params({"synthetic": {"n_children": 10_000, "months": 24,
                                             "review_loop": {"referral_hazard_ratio": ratio}}})  # fmt: skip
    effect = reviews.referral_effect(params, 12, 0.1, seed=1)
    referred, comparable = effect["referred"], effect["confirmed_not_referred"]
    for group in ("confirmed_not_referred", "not_listed"):
        assert effect[group]["treated"] == effect[group]["untreated"]
    assert (
        referred["children"] > 150
        and abs(referred["mean_p_true"] - comparable["mean_p_true"]) < 0.05
    )
    pooled = (referred["treated"] + comparable["treated"]) / 2
    z = (comparable["treated"] - referred["treated"]) / np.sqrt(
        pooled * (1 - pooled) * 2 / referred["children"]
    )
    if ratio < 1:
        assert z > 3 and referred["treated"] < referred["untreated"]
    else:
        assert referred["treated"] == referred["untreated"] and abs(z) < 3
