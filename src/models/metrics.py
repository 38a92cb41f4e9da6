"""The one metric registry: every metric is `fn(y_true, score, **context) -> float`.

Names say what a metric is (dssg/triage style), so `compute(name, ...)` parses them:

- `auc_roc`, `auc_pr` (average precision), `brier`, `ece` (expected calibration error)
- `precision@5_pct`, `recall@200_abs`, `lift@10_pct`: the top 5 % / top 200 / top 10 %
- `precision_at_k`, `recall_at_k`, `lift_at_k`: the top k, k = the watchlist capacity
- `list_stability`: mean Jaccard index of the top-k lists of consecutive periods (months)

Context (keyword arguments; unknown keys are ignored, so one context serves every metric):

- `groups`: one label per row (the as-of month). The top of a list is chosen *within* each
  group and cut-off metrics are pooled over groups: precision = sum of expected true
  positives / sum of list sizes; recall = sum of expected true positives / all positives.
- `k`: the capacity, an int for every group or a mapping group -> int (needed by `*_at_k`).
- `ids`: one id per row (child_pid), needed by `list_stability`.
- `periods`: one label per row (the as-of month), optional for `list_stability`: when the
  lists are finer than a period (one per child director and month), a period's list is the union of
  its groups' lists, and consecutive periods are compared. Default: the groups themselves.
- `ece_bins`: number of equal-width bins on [0, 1] for `ece` (default 10).
- `positions`: `tie_positions(score, groups)` of this very score and grouping, optional: the
  cut-off metrics then reuse that one ranking instead of sorting again (at a million
  children, the sort is most of their cost).

Cut-off sizes: `N_abs` keeps min(N, group size) rows; `P_pct` keeps ceil(P/100 x group size).

Ties at a cut-off are resolved as the expected value under uniform random tie-breaking, in
closed form, so that no metric depends on row order. In a group, let `a` rows score strictly
above a row's score and `b` rows (itself included) share it. With a list of size k the row
is selected with probability clip((k - a) / b, 0, 1): 1 above the cut, 0 below it, and
(k - a) / b for each of the b tied rows when the cut splits their tie. The expected number
of true positives is the sum of these probabilities over the positives, exactly.
`list_stability` uses the same probabilities: with independent tie-breaking per month,
E|A and B| = sum_i p_i(A) p_i(B), and the Jaccard index is reported as
E|A and B| / (k_A + k_B - E|A and B|), exact whenever neither cut splits a tie.

`auc_roc` counts tied positive/negative pairs as one half (the Mann-Whitney statistic, the
same expected value). `auc_pr` is scikit-learn's average precision: rows with equal scores
form one threshold. A metric that is undefined on its input (e.g. AUC with one class) is NaN.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from scipy.stats import rankdata

Metric = Callable[..., float]

_CUTOFF_NAME = re.compile(r"^(precision|recall|lift)@(\d+(?:\.\d+)?)_(pct|abs)$")
_CAPACITY_NAME = re.compile(r"^(precision|recall|lift)_at_k$")


# ---------------------------------------------------------------- input checks


def _arrays(y_true, score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype="float64")
    s = np.asarray(score, dtype="float64")
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"y_true {y.shape} and score {s.shape} must be 1-d and of equal length")
    if np.isnan(s).any():
        raise ValueError(f"score has {int(np.isnan(s).sum())} NaN values; every row needs a score")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y_true must be 0/1")
    return y, s


def _probabilities(score: np.ndarray) -> np.ndarray:
    if score.size and (score.min() < 0.0 or score.max() > 1.0):
        raise ValueError("this metric needs probabilities in [0, 1]; the score is a ranking only")
    return score


def _group_codes(groups, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer code per row and the sorted distinct group labels."""
    if groups is None:
        return np.zeros(n, dtype="int64"), np.array([None], dtype=object)
    values = groups.to_numpy() if isinstance(groups, pd.Series) else np.asarray(groups)
    codes, labels = pd.factorize(values, sort=True)
    if len(codes) != n:
        raise ValueError(f"groups has {len(codes)} rows, score has {n}")
    if (codes < 0).any():
        raise ValueError("groups must not contain missing values")
    return codes.astype("int64"), np.asarray(pd.Index(labels), dtype=object)


# ---------------------------------------------------------------- the tie-aware top-k core

# A size rule maps (group labels, group row counts) to the wanted list size per group.
SizeRule = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _capacity_rule(k) -> SizeRule:
    """k for every group (an int) or per group (a mapping group -> int)."""
    if not isinstance(k, Mapping):
        return lambda labels, counts: np.full(len(counts), int(k))

    def per_group(labels, counts):
        missing = [g for g in labels.tolist() if g not in k]
        if missing:
            raise ValueError(f"k has no list size for group {missing[0]!r}")
        return np.array([int(k[g]) for g in labels.tolist()])

    return per_group


def pct_rule(pct: float) -> SizeRule:
    # round() first so that 5 % of 200 is 10, not ceil(10.000000000000002) = 11
    return lambda labels, counts: np.ceil(np.round(counts * pct / 100.0, 9)).astype("int64")


def _sizes(rule: SizeRule, codes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    counts = np.bincount(codes, minlength=len(labels))
    return np.minimum(np.asarray(rule(labels, counts), dtype="int64"), counts)


def group_list_sizes(groups, n: int, rule: SizeRule) -> dict:
    """The list size per group under `rule`, capped at each group's row count."""
    codes, labels = _group_codes(groups, n)
    return dict(zip(labels.tolist(), _sizes(rule, codes, labels).tolist(), strict=True))


def list_sizes(k, groups, n: int) -> dict:
    """List size per group for a capacity k (an int, or a mapping group -> int), capped at group size."""
    return group_list_sizes(groups, n, _capacity_rule(k))


def _tie_positions(score: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # One sort by (group, score descending); a tie is a run of equal (group, score) pairs.
    order = np.lexsort((-score, codes))
    s, c = score[order], codes[order]
    index = np.arange(len(s))
    new_group = np.r_[True, c[1:] != c[:-1]]
    new_tie = new_group | np.r_[True, s[1:] != s[:-1]]
    group_start = np.maximum.accumulate(np.where(new_group, index, 0))
    tie_start = np.maximum.accumulate(np.where(new_tie, index, 0))
    tie_id = np.cumsum(new_tie) - 1
    above, tied = np.empty(len(s)), np.empty(len(s))
    above[order] = tie_start - group_start
    tied[order] = np.bincount(tie_id)[tie_id]
    return above, tied


def tie_positions(score, groups=None) -> tuple[np.ndarray, np.ndarray]:
    """Per row: rows of its group scoring strictly higher (a), and rows sharing its score (b)."""
    s = np.asarray(score, dtype="float64")
    return _tie_positions(s, _group_codes(groups, len(s))[0])


def selection_probability(score, *, k, groups=None, positions=None) -> np.ndarray:
    """Probability that each row is in the top k of its group under random tie-breaking.

    `k` is an int or a mapping group -> list size (capped at the group's size). Pass
    `positions=tie_positions(score, groups)` to reuse the ranking for many k.
    """
    s = np.asarray(score, dtype="float64")
    codes, labels = _group_codes(groups, len(s))
    return _probability(s, codes, _sizes(_capacity_rule(k), codes, labels), positions)


def _probability(score, codes, sizes, positions=None) -> np.ndarray:
    above, tied = positions if positions is not None else _tie_positions(score, codes)
    return np.clip((sizes[codes] - above) / tied, 0.0, 1.0)


def _cutoff_metric(kind: str, rule: SizeRule) -> Metric:
    def metric(y_true, score, **context) -> float:
        y, s = _arrays(y_true, score)
        codes, labels = _group_codes(context.get("groups"), len(s))
        sizes = _sizes(rule, codes, labels)
        hits = float(_probability(s, codes, sizes, context.get("positions")) @ y)
        selected, positives = float(sizes.sum()), float(y.sum())
        precision = hits / selected if selected else math.nan
        if kind == "precision":
            return precision
        if kind == "recall":
            return hits / positives if positives else math.nan
        return precision / (positives / len(y)) if positives else math.nan

    return metric


def _capacity_metric(kind: str) -> Metric:
    def metric(y_true, score, **context) -> float:
        if "k" not in context:
            raise ValueError(f"{kind}_at_k needs the capacity: pass k=<int or mapping>")
        return _cutoff_metric(kind, _capacity_rule(context["k"]))(y_true, score, **context)

    return metric


def top_k_curve(y_true, score, ks, groups=None) -> pd.DataFrame:
    """Precision and recall when every group's list holds k rows, for each k in `ks` (tie-aware)."""
    y, s = _arrays(y_true, score)
    codes, labels = _group_codes(groups, len(s))
    counts = np.bincount(codes, minlength=len(labels))
    positions = _tie_positions(s, codes)
    rows = []
    for k in ks:
        sizes = np.minimum(int(k), counts)
        hits = float(_probability(s, codes, sizes, positions) @ y)
        rows.append((int(k), hits / sizes.sum(), hits / y.sum() if y.sum() else math.nan))
    return pd.DataFrame(rows, columns=["k", "precision_at_k", "recall_at_k"])


# ---------------------------------------------------------------- threshold-free metrics


def auc_roc(y_true, score, **_) -> float:
    """Area under the ROC curve (Mann-Whitney; ties count one half)."""
    y, s = _arrays(y_true, score)
    positives = y.sum()
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = rankdata(s, method="average")
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def auc_pr(y_true, score, **_) -> float:
    """Average precision: sum over distinct thresholds of (recall step) x precision."""
    y, s = _arrays(y_true, score)
    positives = y.sum()
    if positives == 0:
        return math.nan
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), len(s) - 1]
    true_pos = np.cumsum(y_sorted)[last_of_tie]
    precision = true_pos / (last_of_tie + 1)
    recall = true_pos / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def brier(y_true, score, **_) -> float:
    """Mean squared difference between the probability and the 0/1 outcome."""
    y, s = _arrays(y_true, score)
    return float(np.mean((_probabilities(s) - y) ** 2)) if len(y) else math.nan


def calibration_table(y_true, score, n_bins: int = 10) -> pd.DataFrame:
    """Equal-width bins on [0, 1] (bin b = [b/n, (b+1)/n), the last one closed); non-empty bins."""
    y, s = _arrays(y_true, score)
    s = _probabilities(s)
    bins = np.minimum((s * n_bins).astype("int64"), n_bins - 1)
    frame = pd.DataFrame({"bin": bins, "p": s, "y": y})
    table = frame.groupby("bin").agg(
        n=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean")
    )
    table = table.reset_index()
    table["lower"] = table["bin"] / n_bins
    table["upper"] = (table["bin"] + 1) / n_bins
    return table[["bin", "lower", "upper", "n", "mean_predicted", "observed_rate"]]


def ece(y_true, score, *, ece_bins: int = 10, **_) -> float:
    """Expected calibration error: sum over bins of (bin share) x |mean predicted - observed|."""
    table = calibration_table(y_true, score, ece_bins)
    if table.empty:
        return math.nan
    weights = table["n"] / table["n"].sum()
    return float((weights * (table["mean_predicted"] - table["observed_rate"]).abs()).sum())


def observed_to_predicted(y_true, score, **_) -> float:
    """Observed rate / mean predicted probability: 1 when calibrated in the large; below 1 the
    list over-states risk (says "55 %" where 40 % is true), above 1 it under-states it."""
    y, s = _arrays(y_true, score)
    predicted = float(np.mean(_probabilities(s))) if len(y) else math.nan
    return float(np.mean(y)) / predicted if len(y) and predicted > 0 else math.nan


# ---------------------------------------------------------------- list stability


def jaccard_between_groups(score, *, k, groups, ids, periods=None, positions=None) -> dict:
    """Jaccard index of the top-k lists of each period and the period before it (sorted order).

    The top k is chosen within each group; a period's list is the union of its groups' lists
    (periods default to the groups). Keyed by the later period. Tied cuts use inclusion
    probabilities (see module docstring).
    """
    s = np.asarray(score, dtype="float64")
    pi = selection_probability(s, k=k, groups=groups, positions=positions)
    periods = groups if periods is None else periods
    period, labels = _group_codes(periods, len(s))
    values = ids.to_numpy() if isinstance(ids, pd.Series) else np.asarray(ids)
    if len(values) != len(s):
        raise ValueError(f"ids has {len(values)} rows, score has {len(s)}")
    child, children = pd.factorize(values)  # then sorted: faster than factorize(sort=True)
    rank = np.empty(len(children), dtype="int64")
    rank[np.argsort(np.asarray(children), kind="stable")] = np.arange(len(children))
    child = rank[child]
    if len(np.unique(child.astype("int64") * len(labels) + period)) != len(s):
        raise ValueError("list_stability needs each id at most once per period")
    # sorted id x period, 0 where an id is absent: the pivot table this replaced, summed alike
    matrix = np.zeros((len(children), len(labels)))
    matrix[child, period] = pi
    overlap = (matrix[:, 1:] * matrix[:, :-1]).sum(axis=0)
    sizes = matrix.sum(axis=0)
    union = sizes[1:] + sizes[:-1] - overlap
    values = np.divide(overlap, union, out=np.full_like(overlap, np.nan), where=union > 0)
    return dict(zip(pd.Index(labels[1:]).tolist(), values.tolist(), strict=True))


def list_stability(y_true, score, **context) -> float:
    """Mean Jaccard index of the top-k lists of consecutive periods (default: groups); NaN if < 2."""
    _arrays(y_true, score)
    for key in ("k", "groups", "ids"):
        if context.get(key) is None:
            raise ValueError(f"list_stability needs {key}=...")
    pairs = jaccard_between_groups(
        score,
        k=context["k"],
        groups=context["groups"],
        ids=context["ids"],
        periods=context.get("periods"),
        positions=context.get("positions"),
    )
    return float(np.mean(list(pairs.values()))) if pairs else math.nan


# ---------------------------------------------------------------- the registry

FIXED: dict[str, Metric] = {
    "auc_roc": auc_roc,
    "auc_pr": auc_pr,
    "brier": brier,
    "ece": ece,
    "precision_at_k": _capacity_metric("precision"),
    "recall_at_k": _capacity_metric("recall"),
    "lift_at_k": _capacity_metric("lift"),
    "list_stability": list_stability,
    "observed_to_predicted": observed_to_predicted,
}
PROBABILITY_METRICS = frozenset({"brier", "ece", "observed_to_predicted"})
CAPACITY_METRICS = frozenset({"precision_at_k", "recall_at_k", "lift_at_k"})  # need k=


def resolve(name: str) -> Metric:
    """The metric function for a registry name (fixed, or `<kind>@<N>_abs` / `<kind>@<P>_pct`)."""
    if name in FIXED:
        return FIXED[name]
    match = _CUTOFF_NAME.match(name)
    if not match:
        raise KeyError(
            f"unknown metric '{name}'; use one of {', '.join(FIXED)} or "
            "precision|recall|lift@<N>_abs / @<P>_pct"
        )
    kind, value, unit = match.group(1), float(match.group(2)), match.group(3)
    if unit == "abs":
        return _cutoff_metric(kind, _capacity_rule(int(value)))
    if not 0 < value <= 100:
        raise KeyError(f"metric '{name}': a percentage must be in (0, 100]")
    return _cutoff_metric(kind, pct_rule(value))


def compute(name: str, y_true, score, **context) -> float:
    """Compute a metric by name, e.g. compute("precision@5_pct", y, s, groups=months)."""
    return resolve(name)(y_true, score, **context)


def format_pct(pct: float) -> str:
    """1.0 -> '1', 2.5 -> '2.5' (the number in a `_pct` name)."""
    return f"{pct:g}"


def standard_names(top_pcts=(1, 5, 10)) -> list[str]:
    """The metrics every scorer is evaluated on (stability excluded; it needs ids)."""
    names = ["auc_roc", "auc_pr", "brier", "ece", "observed_to_predicted", "precision_at_k",
             "recall_at_k", "lift_at_k"]  # fmt: skip
    for pct in top_pcts:
        names += [f"{kind}@{format_pct(pct)}_pct" for kind in ("precision", "recall", "lift")]
    return names
