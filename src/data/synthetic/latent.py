"""The latent risk model: a three-state monthly Markov chain per child, and its exact p_true.

States: 0 stable, 1 strained, 2 crisis. A child's hazard multiplier h (category, age band,
disability, guardian type, hukou and a frailty term) scales the moves towards crisis and the
monthly outcome probability q(state). Outcomes and legitimate exits never feed back into the
chain, which is what makes p_true exact (see `p_true`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from src.data.contract import CATEGORY, EXIT_REASON, GUARDIAN_TYPE
from src.data.synthetic.registry import Registry

STATES = ("stable", "strained", "crisis")
CATEGORY_LOG_HAZARD = {
    "orphan": 0.35,
    "de_facto_unsupported": 0.55,
    "left_behind": 0.15,
    "low_income": 0.0,
    "extreme_poverty": 0.40,
    "disabled": 0.30,
    "seriously_ill": 0.35,
    "other": -0.40,
}
GUARDIAN_LOG_HAZARD = {
    "both_parents": -0.2,
    "single_parent": 0.1,
    "grandparents": 0.2,
    "other_relatives": 0.3,
    "institution": -0.3,
    "none": 0.7,
}
AGE_BAND_EDGES = (6, 12, 15)  # bands 0-5, 6-11, 12-14, 15-17
AGE_LOG_HAZARD = (-0.6, -0.2, 0.3, 0.7)
SEVERE_DISABILITY_LOG_HAZARD = 0.2  # disability_level >= 3
RURAL_LOG_HAZARD = 0.1
FRAILTY_SD = 0.6
# Monthly transition probabilities at h = 1; moves towards crisis scale with h.
STABLE_TO_STRAINED, STABLE_TO_CRISIS = 0.030, 0.004
STRAINED_TO_CRISIS, STRAINED_TO_STABLE = 0.08, 0.15
CRISIS_TO_STRAINED, CRISIS_TO_STABLE = 0.15, 0.04
OUTCOME_PROB = np.array([0.0015, 0.012, 0.09])  # per month by state, times sqrt(h)
# Legitimate exits per month (independent of the state): reason -> {category: probability}.
EXIT_HAZARD = {
    "moved_away": dict.fromkeys(CATEGORY, 0.0015),
    "income_above_line": {"low_income": 0.004, "extreme_poverty": 0.002, "left_behind": 0.002},
    "adopted": {"orphan": 0.004, "de_facto_unsupported": 0.001},
    "deceased": {"seriously_ill": 0.0008, "disabled": 0.0002},
}


def month_starts(start: np.datetime64, count: int) -> np.ndarray:
    """The first day of `count` consecutive months from `start`'s month, as datetime64[D]."""
    return (start.astype("datetime64[M]") + np.arange(count)).astype("datetime64[D]")


@dataclass(frozen=True)
class MonthTerms:
    """The model's terms for one calendar month, per child."""

    transition: np.ndarray  # (n, 3, 3) P[s, s'] from this month to the next
    outcome: np.ndarray  # (n, 3) outcome probability this month by state
    exit: np.ndarray  # (n,) legitimate-exit probability this month
    allowed: np.ndarray  # (n,) False from the month the child turns 18


class RiskModel:
    """Child-level hazard terms of the chain; month terms depend on age, so on the month."""

    def __init__(self, registry: Registry, rng):
        cat = np.array([CATEGORY_LOG_HAZARD[c] for c in CATEGORY])[registry.category]
        guard = np.array([GUARDIAN_LOG_HAZARD[g] for g in GUARDIAN_TYPE])[registry.guardian]
        self.log_h_static = (
            cat
            + guard
            + SEVERE_DISABILITY_LOG_HAZARD * (registry.disability >= 3)
            + RURAL_LOG_HAZARD * (registry.hukou == 0)
            + FRAILTY_SD * rng.standard_normal(registry.n)
        )
        self.birth = registry.birth
        self.turns_18 = registry.turns_18
        self.exit_by_reason = np.stack(
            [
                np.array([EXIT_HAZARD[r].get(c, 0.0) for c in CATEGORY])[registry.category]
                for r in EXIT_HAZARD
            ]
        )

    @property
    def exit_reasons(self) -> list[int]:
        return [EXIT_REASON.index(r) for r in EXIT_HAZARD]

    def terms(
        self, month_start: np.datetime64, next_start: np.datetime64, rows=slice(None)
    ) -> MonthTerms:
        age = (month_start - self.birth[rows]).astype(np.int64) / 365.25
        band = np.searchsorted(AGE_BAND_EDGES, age, side="right")
        h = np.exp(self.log_h_static[rows] + np.asarray(AGE_LOG_HAZARD)[band])
        return MonthTerms(
            transition=transition_matrices(h),
            outcome=np.minimum(OUTCOME_PROB[None, :] * np.sqrt(h)[:, None], 0.9),
            exit=self.exit_by_reason[:, rows].sum(axis=0),
            allowed=(next_start - 1) < self.turns_18[rows],
        )


def transition_matrices(h: np.ndarray) -> np.ndarray:
    """(n, 3, 3) monthly transition matrices for hazard multipliers h."""
    p = np.zeros((len(h), 3, 3))
    p[:, 0, 1] = np.minimum(STABLE_TO_STRAINED * h, 0.4)
    p[:, 0, 2] = np.minimum(STABLE_TO_CRISIS * h, 0.2)
    p[:, 1, 2] = np.minimum(STRAINED_TO_CRISIS * h, 0.5)
    p[:, 1, 0] = np.minimum(STRAINED_TO_STABLE / np.sqrt(h), 0.45)
    p[:, 2, 1] = CRISIS_TO_STRAINED
    p[:, 2, 0] = CRISIS_TO_STABLE
    idx = np.arange(3)
    p[:, idx, idx] = 1.0 - p.sum(axis=2)
    return p


def stationary_states(transition: np.ndarray, rng) -> np.ndarray:
    """One draw per child from (approximately) the stationary law of its chain."""
    dist = np.tile([1.0, 0.0, 0.0], (len(transition), 1))
    for _ in range(60):
        dist = np.einsum("ni,nij->nj", dist, transition)
    return draw_categorical(dist, rng)


def next_states(states: np.ndarray, transition: np.ndarray, rng) -> np.ndarray:
    return draw_categorical(transition[np.arange(len(states)), states], rng)


def draw_categorical(probs: np.ndarray, rng) -> np.ndarray:
    """One draw per row of a (n, k) probability matrix."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cdf[:, -1:]
    return (u >= cdf).sum(axis=1).clip(0, probs.shape[1] - 1).astype(np.int8)


def horizon_weights(as_of: np.datetime64, starts: np.ndarray, horizon_days: int) -> np.ndarray:
    """Share of each month's days inside (as_of, as_of + horizon]; starts has one extra entry."""
    first = np.maximum(starts[:-1], as_of + 1)
    last = np.minimum(starts[1:] - 1, as_of + horizon_days)
    inside = (last - first).astype(np.int64) + 1
    return np.clip(inside / (starts[1:] - starts[:-1]).astype(np.int64), 0.0, 1.0)


def p_true(states: np.ndarray, terms: list[MonthTerms], weights: np.ndarray) -> np.ndarray:
    """P(an outcome in the horizon | state at as-of), by backward recursion over the months.

    u_k(s) = e_k + (1 - e_k) (1 - w_k a_k q_k(s)) sum_s' P_k(s, s') u_{k+1}(s'), u = 1 past the
    horizon: a legitimate exit (prob e_k) ends the record, an outcome date is uniform over the
    month's days (so w_k, the month's share inside the horizon, prorates it exactly), a_k is 0
    from the month of the 18th birthday.
    """
    u = np.ones((len(states), 3))
    for t, w in zip(reversed(terms), reversed(weights), strict=True):
        carry = np.einsum("nij,nj->ni", t.transition, u)
        no_event = 1.0 - w * (t.allowed[:, None] * t.outcome)
        u = t.exit[:, None] + (1.0 - t.exit[:, None]) * no_event * carry
    return 1.0 - u[np.arange(len(states)), states]
