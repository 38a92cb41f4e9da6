"""The latent risk model: a three-state monthly Markov chain per child, and its exact p_true.

States: 0 stable, 1 strained, 2 crisis. A child's hazard multiplier h (category, age band,
disability, guardian type, hukou and a frailty term) scales the moves towards crisis and the
monthly outcome probability q(state). Outcomes and legitimate exits never feed back into the
chain, which is what makes p_true exact (see `p_true`).

Two calendar effects, both known in advance from the month and the registry, so p_true stays
exact:

- prevalence drift (`synthetic.prevalence_drift`): every child's log hazard moves by the same
  seeded, mean-reverting random walk (`drift_path`: a normal step of sd = the param each month),
  so the share of children with an outcome drifts month to month; 0 switches it off;
- seasonal recertification (`synthetic.recert_hazard_ratio`): recertification is annual, due
  in the child's registration anniversary month once the child has been registered for more
  than 300 days (`recert_due_month`). In that month and the next (when a missed one turns
  into a suspension) the outcome probability is multiplied by the ratio; 1 switches it off.

Interventions (optional, `hazard`): a referral multiplies a child's h by a ratio from a month on
(src/data/synthetic/interventions.py); without them the terms are exactly today's.
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
MAX_OUTCOME_PROB = 0.9
DRIFT_PERSISTENCE = 0.9  # share of last month's drift that carries over (mean reversion)
RECERT_MIN_DAYS = 300  # a recertification falls due only after this many days in the registry
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


def recert_due_month(registered: np.ndarray, month_start: np.datetime64) -> np.ndarray:
    """True where a recertification falls due in the month starting at `month_start`.

    Annual, in the registration anniversary month, once registered more than RECERT_MIN_DAYS.
    """
    month = np.datetime64(month_start, "D")
    anniversary = (registered.astype("datetime64[M]").astype(np.int64) % 12) == (
        month.astype("datetime64[M]").astype(np.int64) % 12
    )
    return anniversary & ((month - registered).astype(np.int64) > RECERT_MIN_DAYS)


def recert_window(registered: np.ndarray, month_start: np.datetime64) -> np.ndarray:
    """True in the month a recertification falls due and in the month after it."""
    month = np.datetime64(month_start, "M")
    previous = (month - 1).astype("datetime64[D]")
    return recert_due_month(registered, month.astype("datetime64[D]")) | recert_due_month(
        registered, previous
    )


def drift_path(months: int, step_sd: float, rng) -> np.ndarray:
    """Log-hazard shift per month from the first: a mean-reverting random walk from 0.

    x_0 = 0, x_k = DRIFT_PERSISTENCE * x_(k-1) + step_sd * N(0, 1): each month moves by about
    step_sd, and the pull back to 0 keeps a long span from wandering off (stationary sd
    step_sd / sqrt(1 - DRIFT_PERSISTENCE^2), about 2.3 x step_sd).
    """
    steps = step_sd * rng.standard_normal(max(months, 1))
    path = np.zeros(max(months, 1))
    for k in range(1, len(path)):
        path[k] = DRIFT_PERSISTENCE * path[k - 1] + steps[k]
    return path


@dataclass(frozen=True)
class MonthTerms:
    """The model's terms for one calendar month, per child."""

    transition: np.ndarray  # (n, 3, 3) P[s, s'] from this month to the next
    outcome: np.ndarray  # (n, 3) outcome probability this month by state
    exit: np.ndarray  # (n,) legitimate-exit probability this month
    allowed: np.ndarray  # (n,) False from the month the child turns 18


class RiskModel:
    """Child-level hazard terms of the chain; month terms depend on age, so on the month.

    `drift` is the log-hazard shift of each month from `first_month` on (months past its end
    keep its last value); `recert_ratio` multiplies the outcome probability in each child's
    recertification window (`recert_window`).
    """

    def __init__(
        self,
        registry: Registry,
        rng,
        first_month: np.datetime64 | None = None,
        drift: np.ndarray | None = None,
        recert_ratio: float = 1.0,
        hazard=None,
    ):
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
        self.registered = registry.registered
        self.first_month = np.datetime64(
            first_month if first_month is not None else "1970-01", "M"
        )
        self.drift = np.zeros(1) if drift is None else np.asarray(drift, dtype=float)
        self.recert_ratio = recert_ratio
        self.hazard = hazard
        self.exit_by_reason = np.stack(
            [
                np.array([EXIT_HAZARD[r].get(c, 0.0) for c in CATEGORY])[registry.category]
                for r in EXIT_HAZARD
            ]
        )

    @property
    def exit_reasons(self) -> list[int]:
        return [EXIT_REASON.index(r) for r in EXIT_HAZARD]

    def month_drift(self, month_start: np.datetime64) -> float:
        """The log-hazard shift of the month starting at `month_start`."""
        k = int((np.datetime64(month_start, "M") - self.first_month).astype(np.int64))
        return float(self.drift[min(max(k, 0), len(self.drift) - 1)])

    def terms(
        self, month_start: np.datetime64, next_start: np.datetime64, rows=slice(None)
    ) -> MonthTerms:
        age = (month_start - self.birth[rows]).astype(np.int64) / 365.25
        band = np.searchsorted(AGE_BAND_EDGES, age, side="right")
        log_h = self.log_h_static[rows] + np.asarray(AGE_LOG_HAZARD)[band] + self.month_drift(month_start)
        if self.hazard is not None:  # added last: without interventions h is bit for bit today's
            log_h = log_h + self.hazard.log_ratio(month_start)[rows]
        h = np.exp(log_h)
        season = np.where(recert_window(self.registered[rows], month_start), self.recert_ratio, 1.0)
        outcome = OUTCOME_PROB[None, :] * (np.sqrt(h) * season)[:, None]
        return MonthTerms(
            transition=transition_matrices(h),
            outcome=np.minimum(outcome, MAX_OUTCOME_PROB),
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
    # 1 - u can round to -2e-16 where u is 1 up to the last bit: a probability stays in [0, 1]
    return np.clip(1.0 - u[np.arange(len(states)), states], 0.0, 1.0)
