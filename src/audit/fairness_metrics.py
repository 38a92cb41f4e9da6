"""The pure core of the fairness audit: input checks, operating points, rate formulas, intervals.

Everything here works on arrays and frames; the knobs come from `params.fairness` and
`params.evaluate` (`src.config.Fairness`, `src.config.Evaluate`). The audit itself (groups,
suppression, reference groups, ratios) is `src.audit.fairness_audit`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from src.config import Fairness
from src.errors import SafetynetError
from src.models import metrics

CAPACITY = "capacity"  # the operating point the watchlists use: top k = caseworker capacity
PRIMARY_METRIC = "recall"  # the one primary criterion: recall at the watchlist cut (FNR = 1 - recall is context)
RATE_METRICS = ("selection_rate", "precision", "recall", "fpr", "fnr", "fdr", "for")
RATIO_METRICS = (*RATE_METRICS, "auc_roc")
CI_LEVEL = 0.95
REQUIRED_COLUMNS = ("child_pid", "as_of", "score", "label", "selected")
UNKNOWN = "unknown"
JOIN = "|"  # joins the attributes (and values) of an intersection: "hukou|sex", "rural|f"


def single_attributes(fairness: Fairness) -> tuple[str, ...]:
    """fairness.attributes, then any attribute only an intersection names."""
    extra = (a for pair in fairness.intersections for a in pair)
    return tuple(dict.fromkeys([*fairness.attributes, *extra]))


def canonical_pairs(fairness: Fairness) -> list[tuple[str, str]]:
    """The configured intersections, each in `single_attributes` order (as discovery names them)."""
    order = {a: i for i, a in enumerate(single_attributes(fairness))}
    pairs = [tuple(sorted(pair, key=order.__getitem__)) for pair in fairness.intersections]
    return list(dict.fromkeys(pairs))


def audited_attributes(fairness: Fairness) -> list[str]:
    """The single attributes, then each configured intersection as "a|b"."""
    return [*single_attributes(fairness), *(JOIN.join(pair) for pair in canonical_pairs(fairness))]


# ---------------------------------------------------------------------------- preparation


def prepare_audit_frame(
    predictions: pd.DataFrame, fairness: Fairness, source: str = "predictions"
) -> pd.DataFrame:
    """Validate the predictions and add one string column per audited attribute (missing -> 'unknown')."""
    needed = [*REQUIRED_COLUMNS, *single_attributes(fairness)]
    missing = sorted(set(needed) - set(predictions.columns))
    if missing:
        raise SafetynetError(
            f"{source}: missing column(s) {', '.join(missing)}; the evaluate stage writes them "
            "(or remove them from fairness.attributes / fairness.intersections in params.yaml)"
        )
    if predictions.empty:
        raise SafetynetError(f"{source}: no rows; the test period has no observed labels")
    score = pd.to_numeric(predictions["score"], errors="coerce").to_numpy(dtype=float)
    if np.isnan(score).any() or (score < 0).any() or (score > 1).any():
        raise SafetynetError(
            f"{source}: column score must be probabilities in [0, 1] with no missing values"
        )
    label = pd.to_numeric(predictions["label"], errors="coerce")
    if not label.isin([0, 1]).all():
        raise SafetynetError(f"{source}: column label must be 0 or 1 on every row")
    selected = pd.to_numeric(predictions["selected"].astype("float64"), errors="coerce")
    if not selected.isin([0, 1]).all():
        raise SafetynetError(f"{source}: column selected must be true/false on every row")
    as_of = pd.to_datetime(predictions["as_of"])
    frame = pd.DataFrame(
        {
            "child_pid": predictions["child_pid"].astype(str).to_numpy(),
            "as_of": as_of.to_numpy(),
            "month": as_of.dt.strftime("%Y-%m").to_numpy(),
            "score": score,
            "label": label.to_numpy(dtype="int8"),
            "selected": selected.to_numpy(dtype=float),
        }
    )
    for attribute in single_attributes(fairness):
        frame[attribute] = _as_group_labels(predictions[attribute])
    for pair in canonical_pairs(fairness):
        frame[JOIN.join(pair)] = frame[pair[0]].str.cat(frame[pair[1]], sep=JOIN)
    if "caseworker_id" in predictions.columns:
        frame["caseworker_id"] = predictions["caseworker_id"].fillna("").astype(str).to_numpy()
    return frame


def _as_group_labels(column: pd.Series) -> np.ndarray:
    text = column.astype("string").str.strip()
    return text.mask(text.isna() | (text == ""), UNKNOWN).astype(str).to_numpy()


def selection_weights(as_of: np.ndarray, score: np.ndarray, pct: float) -> np.ndarray:
    """Chance of being in the top pct% of its as-of month, under uniform random tie-breaking.

    k = ceil(pct / 100 x month size), as in the metric registry's `precision@P_pct`. Rows tied
    at the cut-off share the remaining places, so no group's expected count depends on row order.
    """
    k = metrics.group_list_sizes(as_of, len(as_of), metrics.pct_rule(pct))
    return metrics.selection_probability(score, k=k, groups=as_of)


def operating_points(frame: pd.DataFrame, top_pcts: tuple[float, ...]) -> dict[str, np.ndarray]:
    """Selection weights per operating point: the watchlist's own, then each fixed percentage."""
    points = {CAPACITY: frame["selected"].to_numpy(dtype=float)}
    for pct in top_pcts:
        points[f"top_{pct:g}_pct"] = selection_weights(
            frame["as_of"].to_numpy(), frame["score"].to_numpy(), pct
        )
    return points


# ---------------------------------------------------------------------------- metric formulas


def rates_from_sums(n, positives, selected, true_pos) -> dict:
    """Confusion-matrix rates from four sums; works on scalars and on bootstrap arrays alike.

    `selected` and `true_pos` may be fractional (expected counts under random tie-breaking).
    Undefined rates (0 / 0) are NaN.
    """
    n, positives, selected, true_pos = (
        np.asarray(v, dtype=float) for v in (n, positives, selected, true_pos)
    )
    false_pos = selected - true_pos
    false_neg = positives - true_pos
    negatives = n - positives
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "selection_rate": selected / n,
            "precision": true_pos / selected,
            "recall": true_pos / positives,
            "fpr": false_pos / negatives,
            "fnr": false_neg / positives,
            "fdr": false_pos / selected,
            "for": false_neg / (n - selected),
        }


def confidence_interval(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval along axis 0, ignoring undefined (NaN) replicates; infinities are capped."""
    tail = (1 - CI_LEVEL) / 2 * 100
    samples = np.clip(samples, -1e9, 1e9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN slice is an undefined interval
        return np.nanpercentile(samples, tail, axis=0), np.nanpercentile(
            samples, 100 - tail, axis=0
        )
