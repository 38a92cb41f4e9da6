"""The context around the primary criterion: every metric per published group, with its ratio to
the overall value.

Rates at each operating point (selection rate, precision, recall, FPR, FNR, FDR, FOR),
prevalence, mean predicted probability and observed / predicted are ratios of sums, so their
cluster-bootstrap intervals come from the same collapsed per-cell sums as the primary criterion
(`src.audit.fairness_cells.measure_cells`, pooled over the test months). AUC and ECE are point
estimates only (no interval): they are context, not verdicts, and resampling a ranking per
group was most of the audit's time at a million children.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from src.audit.fairness_cells import ALL, JOIN, OVERALL, POOLED, grouping_codes, measure_cells
from src.audit.fairness_metrics import (
    RATE_METRICS,
    RATIO_METRICS,
    confidence_interval,
    rates_from_sums,
)

THRESHOLD_FREE = ("n", "positives", "prevalence", "observed_rate", "mean_predicted", "calibration_ratio",
                  "auc_roc", "ece")  # fmt: skip
POINT_ONLY = ("auc_roc", "ece")  # no interval
GROUP_COLUMNS = ["attribute", "group", "operating_point", "metric", "value", "ci_low", "ci_high"]
CONTEXT_COLUMNS = ["attribute", "group", "operating_point", "metric", "ratio", "ci_low", "ci_high"]


def auc_and_ece(label: np.ndarray, score: np.ndarray, codes: np.ndarray, n_groups: int, bins: int):
    """AUC (ties count one half) and ECE (equal-width bins on [0, 1]) per group code."""
    rank = pd.Series(score).groupby(codes).rank(method="average").to_numpy()
    positives = np.bincount(codes, weights=label, minlength=n_groups)
    n = np.bincount(codes, minlength=n_groups).astype(float)
    negatives = n - positives
    rank_sum = np.bincount(codes, weights=rank * label, minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
        where = codes * bins + np.minimum((score * bins).astype(np.int64), bins - 1)
        observed = np.bincount(where, weights=label, minlength=n_groups * bins).reshape(n_groups, bins)
        predicted = np.bincount(where, weights=score, minlength=n_groups * bins).reshape(n_groups, bins)
        ece = np.abs(observed - predicted).sum(axis=1) / n
    return auc, ece


def context_tables(frame, child, weights, shown, reportable, points: dict[str, np.ndarray], bins: int):
    """(groups, context, overall): each metric per published group (pooled) with its interval, its
    ratio to the overall value, and the overall values."""
    names = list(points)
    label, score = frame["label"].to_numpy(dtype=float), frame["score"].to_numpy()
    values = {"n": np.ones(len(frame)), "positives": label, "predicted": score}
    for k, name in enumerate(names):
        values[f"selected_{k}"], values[f"true_pos_{k}"] = points[name], points[name] * label
    rows = frame[[c for c in frame.columns if c in set(a for s in shown for a in s.split(JOIN))]].assign(**values)
    cells = measure_cells(rows, [tuple(s.split(JOIN)) for s in shown], list(values), child, weights, monthly=False)
    stats = {kind: _statistics(data, len(names)) for kind, data in (("point", cells.point), ("samples", cells.samples))}
    point_only = _point_only(frame, cells.index, label, score, bins)
    position = cells.position()
    overall = position[(OVERALL, ALL, POOLED)]
    group_rows, context_rows = [], []
    for i, (grouping, group, _) in enumerate(cells.index.itertuples(index=False, name=None)):
        if grouping == OVERALL or (grouping, group, POOLED) not in reportable:
            continue
        for metric in THRESHOLD_FREE:
            value = point_only[metric][i] if metric in POINT_ONLY else stats["point"][metric][i]
            low, high = ((math.nan,) * 2 if metric in (*POINT_ONLY, "n", "positives")
                         else confidence_interval(stats["samples"][metric][:, i]))  # fmt: skip
            group_rows.append(_row(grouping, group, "", metric, value, low, high))
        for k, name in enumerate(names):
            for metric in RATE_METRICS:
                low, high = confidence_interval(stats["samples"][metric][:, i, k])
                group_rows.append(_row(grouping, group, name, metric, stats["point"][metric][i, k], low, high))
            for metric in RATIO_METRICS:
                if metric == "auc_roc":
                    if k == 0:
                        ratio = _div(point_only["auc_roc"][i], point_only["auc_roc"][overall])
                        context_rows.append(_ratio_row(grouping, group, name, metric, ratio, math.nan, math.nan))
                    continue
                mine, everyone = stats["samples"][metric][:, i, k], stats["samples"][metric][:, overall, k]
                low, high = confidence_interval(_div(mine, everyone))
                ratio = _div(stats["point"][metric][i, k], stats["point"][metric][overall, k])
                context_rows.append(_ratio_row(grouping, group, name, metric, ratio, low, high))
    return (pd.DataFrame(group_rows, columns=GROUP_COLUMNS), pd.DataFrame(context_rows, columns=CONTEXT_COLUMNS),
            _overall(frame, child, stats["point"], point_only, overall, names))  # fmt: skip


def _statistics(data: dict[str, np.ndarray], operating_points: int) -> dict[str, np.ndarray]:
    """Metrics from the sums: threshold-free (..., cells), rates (..., cells, operating points)."""
    n, positives, predicted = data["n"], data["positives"], data["predicted"]
    selected = np.stack([data[f"selected_{k}"] for k in range(operating_points)], axis=-1)
    true_pos = np.stack([data[f"true_pos_{k}"] for k in range(operating_points)], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {"n": n, "positives": positives, "prevalence": positives / n, "observed_rate": positives / n,
               "mean_predicted": predicted / n, "calibration_ratio": positives / predicted}  # fmt: skip
    rates = rates_from_sums(n[..., None], positives[..., None], selected, true_pos)
    return {**out, **{name: rates[name] for name in RATE_METRICS}}


def _point_only(frame, index: pd.DataFrame, label, score, bins) -> dict[str, np.ndarray]:
    """AUC and ECE for every cell of `index` (pooled cells)."""
    out = {m: np.full(len(index), np.nan) for m in POINT_ONLY}
    for grouping, positions in index.groupby("grouping", sort=False).indices.items():
        attributes = tuple(grouping.split(JOIN)) if grouping != OVERALL else ()
        codes, groups = grouping_codes(frame, attributes)
        auc, ece = auc_and_ece(label, score, codes, len(groups), bins)
        lookup = {g: k for k, g in enumerate(groups)}
        for i in positions:
            k = lookup[index["group"].iloc[i]]
            out["auc_roc"][i], out["ece"][i] = auc[k], ece[k]
    return out


def _overall(frame, child, point, point_only, overall: int, names: list[str]) -> dict:
    out = {m: float(point_only[m][overall] if m in POINT_ONLY else point[m][overall]) for m in THRESHOLD_FREE}
    out["n"], out["positives"] = int(round(out["n"])), int(round(out["positives"]))
    out["children"] = int(child.max()) + 1 if len(child) else 0
    out["as_of_months"] = sorted(pd.to_datetime(frame["as_of"]).dt.strftime("%Y-%m-%d").unique().tolist())
    out["operating_points"] = {name: {m: float(point[m][overall, k]) for m in RATE_METRICS}
                               for k, name in enumerate(names)}  # fmt: skip
    return out


def _row(attribute, group, point, metric, value, low, high) -> dict:
    return {"attribute": attribute, "group": group, "operating_point": point, "metric": metric,
            "value": float(value), "ci_low": float(low), "ci_high": float(high)}  # fmt: skip


def _ratio_row(attribute, group, point, metric, ratio, low, high) -> dict:
    return {"attribute": attribute, "group": group, "operating_point": point, "metric": metric,
            "ratio": float(ratio), "ci_low": float(low), "ci_high": float(high)}  # fmt: skip


def _div(numerator, denominator):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(numerator, dtype=float) / np.asarray(denominator, dtype=float)

