"""The referral matching: invariants as properties, optimality against a brute-force assignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from src.delivery import matching as m
from src.errors import SafetynetError

W = m.Weights(distance=1.0, risk=2.0, secondary=0.5, continuity=1.5)
VILLAGES, SERVICES = ("v1", "v2", "v3"), ("s1", "s2", "s3")


@st.composite
def instances(draw, max_children=12, max_providers=4, counties=("c1", "c2")):
    children = draw(st.integers(0, max_children))
    rows = []
    for i in range(children):
        county, village = draw(st.sampled_from(counties)), draw(st.sampled_from(VILLAGES))
        score = draw(st.sampled_from([0.1, 0.3, 0.3, 0.9]))  # repeats: ties must be broken
        wanted = draw(st.lists(st.sampled_from(SERVICES), min_size=1, max_size=2, unique=True))
        rows += [(f"k{i:02d}", county, f"{county}{village}", score, r, s) for r, s in enumerate(wanted)]
    needs = pd.DataFrame(rows, columns=m.NEED_COLUMNS).astype({"need_rank": int, "score": float})
    providers = []
    for j in range(draw(st.integers(0, max_providers))):
        county = draw(st.sampled_from(counties))
        villages = draw(st.sets(st.sampled_from(VILLAGES), max_size=2))
        providers.append((f"p{j}", county, frozenset(county + v for v in villages),
                          frozenset(draw(st.sets(st.sampled_from(SERVICES), min_size=1))), draw(st.integers(1, 4))))
    frame = pd.DataFrame(providers, columns=m.PROVIDER_COLUMNS)
    return needs, frame.astype({"monthly_capacity": int}) if len(frame) else frame


@settings(max_examples=40, deadline=None)
@given(instances(), st.booleans())
def test_the_plan_reconciles_respects_capacity_and_coverage(instance, fallback):
    needs, providers = instance
    plan = m.match(needs, providers, W, fallback)
    assert len(plan) == len(needs)
    m.check_plan(plan, providers, needs["child_pid"], fallback)  # raises on any violation
    table = m.reconcile(plan)
    assert (table["needs"] == table["matched"] + table["unmet"]).all() and table["needs"].sum() == len(needs)
    expected = needs.groupby(["county_code", "service_code"]).size()
    assert table.set_index(["county_code", "service_code"])["needs"].to_dict() == expected.to_dict()
    used = plan[plan["provider_id"] != ""].groupby("provider_id").size()
    assert (used <= providers.set_index("provider_id").loc[used.index, "monthly_capacity"]).all()
    shuffled = m.match(needs.sample(frac=1, random_state=1), providers.iloc[::-1], W, fallback)
    pd.testing.assert_frame_equal(plan, shuffled)  # deterministic: input order does not matter


def _objective(plan, providers):
    reward = m.BASE_REWARD + W.risk * plan["score"] - W.secondary * plan["need_rank"]
    return float(((W.distance * plan["distance"] - reward) * plan["provider_id"].ne("")).sum())


def _brute_force(needs, providers, fallback):
    """Optimum by linear_sum_assignment on capacity-expanded slots plus one unmet column per need."""
    slots = [(p, j) for p, cap in enumerate(providers["monthly_capacity"]) for j in range(cap)]
    big = 1e9
    cost = np.full((len(needs), len(slots) + len(needs)), big)
    for i, need in enumerate(needs.itertuples()):
        cost[i, len(slots) + i] = 0.0
        for k, (p, _) in enumerate(slots):
            row = providers.iloc[p]
            if row["county_code"] != need.county_code or need.service_code not in row["services"]:
                continue
            d = 0 if need.community_code in row["communities"] else (1 if not row["communities"] else 2)
            if d == 2 and not fallback:
                continue
            cost[i, k] = W.distance * d - (m.BASE_REWARD + W.risk * need.score - W.secondary * need.need_rank)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].sum())


@settings(max_examples=30, deadline=None)
@given(instances(max_children=6, max_providers=3, counties=("c1",)), st.booleans())
def test_the_plan_is_optimal(instance, fallback):
    needs, providers = instance
    plan = m.match(needs, providers, W, fallback)
    assert _objective(plan, providers) == pytest.approx(_brute_force(needs, providers, fallback), abs=1e-3)


def _one_county(scores, capacity, communities=frozenset({"c1v1"})):
    needs = pd.DataFrame({"child_pid": [f"k{i}" for i in range(len(scores))], "county_code": "c1",
                          "community_code": "c1v1", "score": scores, "need_rank": 0, "service_code": "s1"})
    providers = pd.DataFrame({"provider_id": ["p1"], "county_code": ["c1"], "communities": [communities],
                              "services": [frozenset({"s1"})], "monthly_capacity": [capacity]})
    return needs, providers


def test_higher_risk_first_when_capacity_binds_and_ties_go_by_child_pid():
    needs, providers = _one_county([0.2, 0.9, 0.5, 0.5], 2)
    plan = m.match(needs, providers, W, False).set_index("child_pid")
    assert plan["provider_id"].to_dict() == {"k0": "", "k1": "p1", "k2": "p1", "k3": ""}


def test_a_village_provider_is_preferred_to_a_county_wide_one_and_continuity_wins_over_distance():
    needs, village = _one_county([0.5], 1)
    county = village.assign(provider_id="p0", communities=[frozenset()])
    providers = pd.concat([village, county], ignore_index=True)
    assert m.match(needs, providers, W, False)["provider_id"].tolist() == ["p1"]
    continuity = pd.DataFrame({"child_pid": ["k0"], "provider_id": ["p0"]})
    assert m.match(needs, providers, W, False, continuity)["provider_id"].tolist() == ["p0"]


def test_outside_coverage_only_when_the_county_fallback_is_on():
    needs, providers = _one_county([0.5], 1, frozenset({"c1v2"}))
    assert m.match(needs, providers, W, False)["distance"].tolist() == [-1]
    assert m.match(needs, providers, W, True)["distance"].tolist() == [2]


def test_check_plan_names_each_broken_invariant():
    needs, providers = _one_county([0.5, 0.6], 1)
    plan = m.match(needs, providers, W, False)
    with pytest.raises(SafetynetError, match="capacity"):
        m.check_plan(plan.assign(provider_id="p1"), providers, needs["child_pid"], False)
    with pytest.raises(SafetynetError, match="not listed"):
        m.check_plan(plan, providers, needs["child_pid"].iloc[:1], False)
    with pytest.raises(SafetynetError, match="coverage"):
        m.check_plan(plan, providers.assign(communities=[frozenset({"c1v9"})]), needs["child_pid"], False)
