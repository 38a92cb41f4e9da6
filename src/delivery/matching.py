"""Needs matched to providers within their monthly capacity: a min-cost flow per county.

A *need* is one listed child x one referred service (`src.delivery.services.referred_codes`:
the services of the reasons shown, the primary first, `need_rank` 0, 1, ...). A provider
(`src.data.contract` table `service_providers`, active on the scoring date) can take a need
when it offers the service and covers the child's village: its `community_codes` list the
village (distance 0), or it serves the whole county (no list; distance 1), or, only with
`referrals.county_fallback`, it is elsewhere in the child's county (distance 2). Each matched
need uses one unit of the provider's `monthly_capacity` (a child referred for two services
to one provider uses two).

The problem, per county, is a min-cost flow: source -> need -> provider -> sink, capacity 1
per need and `monthly_capacity` per provider, and an unmet arc per need. Needs of one *type*
(village, service, continuing provider) reach the same providers at the same costs, and so do
the types of one *class* (types with identical arcs, e.g. every village no local provider of
the service covers); needs of one class with the same reward are one *bucket*. The flow is
solved on classes: one arc per (class, eligible provider) and one variable per bucket, bounded
by its size, which the class's arcs must carry (conservation). Cost per matched need:

    w.distance x distance + (-w.continuity if the provider already serves the child) + tie-breaker
    - (BASE_REWARD + w.risk x risk (to 0.01) - w.secondary x need_rank)

BASE_REWARD exceeds every arc cost, so an unmet need is never preferred to a free slot;
when capacity binds, higher-risk children and primary needs win it. The LP is solved by
`scipy.optimize.linprog` (HiGHS dual simplex); its matrix is a network matrix (totally
unimodular) with integral bounds, so the basic optimum is integral. Ties are broken
deterministically: a tiny cost by provider_id order separates equal providers, and within a
class the matched needs are the highest reward first, then child_pid, given to the class's
providers cheapest (then provider_id) first.

Continuity: `continuity` lists (child_pid, provider_id) pairs already in service. No table
holds them yet: issue 15 adds `casework_reviews`, whose referral outcomes will feed this
hook; until then the stage passes none (`NO_CONTINUITY`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linprog

from src.errors import SafetynetError

BASE_REWARD = 100.0
TIE = 1e-4  # scale of the tie-breaker between providers: far below any weight, above the solver's tolerance
RISK_DECIMALS = 2  # risk priority by the score to 0.01: needs of one class and level share one variable
UNMET = ""  # provider_id of an unmet need
NEED_COLUMNS = ["child_pid", "county_code", "community_code", "score", "need_rank", "service_code"]
PROVIDER_COLUMNS = ["provider_id", "county_code", "communities", "services", "monthly_capacity"]
NO_CONTINUITY = pd.DataFrame({"child_pid": pd.Series([], dtype=str), "provider_id": pd.Series([], dtype=str)})


@dataclass(frozen=True)
class Weights:
    distance: float  # per step: village < whole county < elsewhere in the county
    risk: float  # x the child's calibrated risk
    secondary: float  # x need_rank: the primary need first
    continuity: float  # off the cost of a provider already serving the child


def eligibility(kinds: pd.DataFrame, providers: pd.DataFrame, county_fallback: bool) -> pd.DataFrame:
    """(row of `kinds`, provider row, distance) of every allowed pair, within one county.

    `kinds` has community_code and service_code; `providers` has communities (a frozenset;
    empty = the whole county) and services (a frozenset)."""
    kinds = kinds.reset_index(drop=True)
    rows, cols, dist = [], [], []
    for p, (communities, offered) in enumerate(zip(providers["communities"], providers["services"], strict=True)):
        offers = kinds["service_code"].isin(offered).to_numpy()
        if communities:
            distance = np.where(kinds["community_code"].isin(communities).to_numpy(), 0, 2 if county_fallback else -1)
        else:
            distance = np.ones(len(kinds), dtype=int)
        ok = offers & (distance >= 0)
        rows.append(kinds.index.to_numpy()[ok])
        cols.append(np.full(int(ok.sum()), p))
        dist.append(distance[ok])
    if not rows:
        return pd.DataFrame({"kind": [], "provider": [], "distance": []}, dtype=int)
    frame = pd.DataFrame({"kind": np.concatenate(rows), "provider": np.concatenate(cols), "distance": np.concatenate(dist)})
    return frame.astype(int)


def match_county(needs: pd.DataFrame, providers: pd.DataFrame, continuity: pd.DataFrame, weights: Weights,
                 county_fallback: bool) -> pd.DataFrame:  # fmt: skip
    """provider_id ('' = unmet) and distance (-1 = unmet) per need of one county, needs in input order."""
    needs = needs.reset_index(drop=True)
    providers = providers.sort_values("provider_id", kind="stable").reset_index(drop=True)
    out = pd.DataFrame({"provider_id": UNMET, "distance": -1}, index=needs.index)
    if needs.empty or providers.empty:
        return out
    keyed = needs[["child_pid", "service_code"]].merge(
        continuity.sort_values(["child_pid", "provider_id"]).drop_duplicates("child_pid"), on="child_pid", how="left")["provider_id"].fillna("")  # fmt: skip
    kinds_of = needs[["community_code", "service_code"]].assign(keep=keyed.to_numpy())
    keys = ["community_code", "service_code", "keep"]
    type_id = kinds_of.groupby(keys, sort=True).ngroup().to_numpy()
    types = kinds_of.drop_duplicates().sort_values(keys).reset_index(drop=True)
    base = eligibility(types, providers, county_fallback)
    if base.empty:
        return out
    arc_cost = weights.distance * base["distance"].to_numpy(float) + TIE * base["provider"].to_numpy() / len(providers)
    continuing = types["keep"].to_numpy()[base["kind"]] == providers["provider_id"].to_numpy()[base["provider"]]
    arc_cost = arc_cost - weights.continuity * continuing
    # types reaching the same providers at the same costs are one class; needs of a class with
    # one reward are one bucket (a variable bounded by its size)
    signature = (base["provider"].astype(str) + ":" + pd.Series(arc_cost).round(9).astype(str)).groupby(base["kind"]).agg(",".join)
    class_of_type = np.full(len(types), -1)
    class_of_type[signature.index.to_numpy()] = pd.factorize(signature)[0]
    arcs = base.assign(cost=arc_cost, kind=class_of_type[base["kind"]]).drop_duplicates(["kind", "provider"])
    need_class = class_of_type[type_id]
    reward = (BASE_REWARD + weights.risk * needs["score"].to_numpy(float).round(RISK_DECIMALS)
              - weights.secondary * needs["need_rank"].to_numpy(float))  # fmt: skip
    reachable = need_class >= 0
    bucket, levels = pd.factorize(pd.Series(need_class[reachable]).astype(str) + "/" + pd.Series(reward[reachable]).astype(str))
    sizes = np.bincount(bucket)
    first = np.unique(bucket, return_index=True)[1]
    flow = _solve(arcs, need_class[reachable][first], reward[reachable][first], sizes,
                  providers["monthly_capacity"].to_numpy(float), int(need_class.max()) + 1)  # fmt: skip
    arcs = arcs.assign(flow=flow)[flow > 0].sort_values(["kind", "cost", "provider"])
    order = np.lexsort((needs["child_pid"].to_numpy(), -reward, need_class))
    ids, distances = np.full(len(needs), UNMET, dtype=object), np.full(len(needs), -1)
    starts = np.searchsorted(need_class[order], np.arange(int(need_class.max()) + 1))
    for kind, group in arcs.groupby("kind", sort=False):
        taken = starts[kind]
        for provider, distance, units in zip(group["provider"], group["distance"], group["flow"], strict=True):
            chosen = order[taken:taken + units]
            ids[chosen], distances[chosen] = providers["provider_id"].iat[provider], distance
            taken += units
    return pd.DataFrame({"provider_id": ids, "distance": distances}, index=needs.index)


def _solve(arcs: pd.DataFrame, type_id: np.ndarray, reward: np.ndarray, sizes: np.ndarray,
           capacity: np.ndarray, n_types: int) -> np.ndarray:  # fmt: skip
    """Integral flow on each arc (kind = class): min cost.x - reward.y; per class sum(x) = sum(y);
    per provider sum(x) <= capacity; 0 <= y <= size (one y per bucket of `type_id` class)."""
    n_arcs, n_needs = len(arcs), len(type_id)
    kind, provider, arc_cost = arcs["kind"].to_numpy(), arcs["provider"].to_numpy(), arcs["cost"].to_numpy()
    a_eq = sparse.hstack([
        sparse.csr_matrix((np.ones(n_arcs), (kind, np.arange(n_arcs))), shape=(n_types, n_arcs)),
        sparse.csr_matrix((-np.ones(n_needs), (type_id, np.arange(n_needs))), shape=(n_types, n_needs)),
    ]).tocsr()  # fmt: skip
    a_ub = sparse.csr_matrix((np.ones(n_arcs), (provider, np.arange(n_arcs))), shape=(len(capacity), n_arcs + n_needs))
    bounds = np.column_stack([np.zeros(n_arcs + n_needs), np.r_[np.full(n_arcs, np.inf), sizes]])
    result = linprog(np.r_[arc_cost, -reward], A_ub=a_ub, b_ub=capacity, A_eq=a_eq, b_eq=np.zeros(n_types),
                     bounds=bounds, method="highs-ds")  # fmt: skip
    if result.status != 0:
        raise SafetynetError(f"referrals: the matching LP failed ({result.message})")
    flow = np.rint(result.x[:n_arcs]).astype(int)
    if np.abs(result.x[:n_arcs] - flow).max(initial=0) > 1e-6:
        raise SafetynetError("referrals: the matching LP returned a fractional flow")
    return flow


def match(needs: pd.DataFrame, providers: pd.DataFrame, weights: Weights, county_fallback: bool,
          continuity: pd.DataFrame = NO_CONTINUITY) -> pd.DataFrame:  # fmt: skip
    """`needs` (NEED_COLUMNS) plus provider_id ('' = unmet) and distance, sorted by county,
    child_pid and need_rank; each county is matched on its own."""
    needs = needs[NEED_COLUMNS].sort_values(["county_code", "child_pid", "need_rank"], kind="stable")
    needs = needs.reset_index(drop=True)
    by_county = dict(tuple(providers[PROVIDER_COLUMNS].groupby("county_code", sort=True)))
    parts = []
    for county, rows in needs.groupby("county_code", sort=True).indices.items():
        mine = by_county.get(county, providers.iloc[:0])
        parts.append(match_county(needs.iloc[rows], mine, continuity, weights, county_fallback).set_index(rows))
    matched = pd.concat(parts) if parts else pd.DataFrame({"provider_id": [], "distance": []})
    return needs.join(matched.astype({"distance": int}))


def reconcile(plan: pd.DataFrame) -> pd.DataFrame:
    """needs, matched and unmet per county and service; needs = matched + unmet by construction
    of the counts, which `check_plan` verifies against the plan rows."""
    matched = plan["provider_id"].ne(UNMET)
    counts = plan.assign(matched=matched, unmet=~matched).groupby(["county_code", "service_code"], sort=True)
    table = counts.agg(needs=("child_pid", "size"), matched=("matched", "sum"), unmet=("unmet", "sum"))
    return table.astype(int).reset_index()


def check_plan(plan: pd.DataFrame, providers: pd.DataFrame, listed: pd.Series, county_fallback: bool) -> None:
    """Raise unless: every referral points to a listed child, no provider is over capacity,
    every match is within the provider's county, coverage and services, needs reconcile."""
    problems = []
    if not plan["child_pid"].isin(listed).all():
        problems.append("a referral points to a child who is not listed")
    matched = plan[plan["provider_id"].ne(UNMET)]
    info = providers.set_index("provider_id")
    used = matched.groupby("provider_id").size()
    if not used.index.isin(info.index).all() or (used > info.loc[used.index, "monthly_capacity"]).any():
        problems.append("a provider is over its monthly capacity (or not in the directory)")
    else:
        rows = info.loc[matched["provider_id"]]
        covers = [(not c) or v in c or county_fallback for c, v in zip(rows["communities"], matched["community_code"], strict=True)]
        offers = [s in o for s, o in zip(matched["service_code"], rows["services"], strict=True)]
        if not (np.all(covers) and np.all(offers) and (rows["county_code"].to_numpy() == matched["county_code"].to_numpy()).all()):
            problems.append("a child is matched outside a provider's coverage or services")
    table = reconcile(plan)
    if (table["needs"] != table["matched"] + table["unmet"]).any() or table["needs"].sum() != len(plan):
        problems.append("needs do not reconcile with matched + unmet")
    if problems:
        raise SafetynetError(f"referrals: the plan fails its checks: {'; '.join(problems)}")
