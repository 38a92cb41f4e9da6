"""The fairness audit: group metrics, ratios to a reference group with bootstrap CIs, verdicts.

`audit_fairness(predictions, fairness, evaluate)` is pure (no files): `fairness` is
`params.fairness` (`src.config.Fairness`), `evaluate` is `params.evaluate` (its `top_pcts` and
`ece_bins`). Small groups are suppressed, `audit_to_dict` gives fairness.json's content.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import track

from src.atomic import json_numbers
from src.audit.fairness_metrics import (
    CAPACITY,
    CI_LEVEL,
    COMPLEMENTARY,
    PRIMARY_METRICS,
    RATE_METRICS,
    RATIO_METRICS,
    GroupRows,
    audited_attributes,
    bootstrap_group,
    confidence_interval,
    operating_points,
    point_estimates,
    prepare_audit_frame,
    verdict,
)
from src.config import Evaluate, Fairness

log = logging.getLogger(__name__)


@dataclass
class FairnessAudit:
    """Everything the report shows; tidy frames, one row per number."""

    fairness: Fairness  # params.fairness
    evaluate: Evaluate  # params.evaluate: top_pcts and ece_bins
    overall: dict
    groups: (
        pd.DataFrame
    )  # attribute, group, operating_point ("" = threshold-free), metric, value, ci_low, ci_high
    disparities: pd.DataFrame  # attribute, group, reference, operating_point, metric, ratio, ci_low, ci_high, verdict, primary
    suppressed: pd.DataFrame  # attribute, group, reason
    references: dict[str, dict] = field(default_factory=dict)

    def primary(self) -> pd.DataFrame:
        # astype(bool): an empty object column as a key would select no *columns*
        return self.disparities.loc[self.disparities["primary"].astype(bool)]

    def headline(self) -> dict:
        return headline_figures(self)


# ---------------------------------------------------------------------------- the audit


@dataclass
class Measured:
    point: dict[str, np.ndarray]
    samples: dict[str, np.ndarray]


def audit_fairness(
    predictions: pd.DataFrame,
    fairness: Fairness,
    evaluate: Evaluate,
    source: str = "predictions",
) -> FairnessAudit:
    """Group metrics, ratios to the reference group with bootstrap CIs, verdicts and suppressions."""
    frame = prepare_audit_frame(predictions, fairness, source)
    points = operating_points(frame, evaluate.top_pcts)
    weights = np.column_stack(list(points.values()))
    groups_rows, disparity_rows, suppressed_rows, references = [], [], [], {}
    for index, attribute in enumerate(
        _progress(audited_attributes(fairness), "fairness: bootstrap")
    ):
        kept, dropped = split_suppressed(group_sizes(frame, attribute), fairness)
        suppressed_rows += [
            {"attribute": attribute, "group": g, "reason": r} for g, r in dropped.items()
        ]
        reference = choose_reference(attribute, kept, fairness)
        references[attribute] = reference
        measured = _measure_attribute(
            frame, attribute, kept, weights, fairness, evaluate.ece_bins, index
        )
        groups_rows += _group_rows(attribute, measured, list(points))
        if reference["group"] is not None:
            disparity_rows += _disparity_rows(
                attribute, measured, list(points), reference["group"], fairness.tolerance
            )
    return FairnessAudit(
        fairness=fairness,
        evaluate=evaluate,
        overall=_overall(frame, points, evaluate.ece_bins),
        groups=pd.DataFrame(groups_rows, columns=GROUP_COLUMNS),
        disparities=pd.DataFrame(disparity_rows, columns=DISPARITY_COLUMNS),
        suppressed=pd.DataFrame(suppressed_rows, columns=["attribute", "group", "reason"]),
        references=references,
    )


GROUP_COLUMNS = ["attribute", "group", "operating_point", "metric", "value", "ci_low", "ci_high"]
DISPARITY_COLUMNS = [
    "attribute", "group", "reference", "operating_point", "metric", "ratio", "ci_low", "ci_high", "verdict", "primary"
]  # fmt: skip
THRESHOLD_FREE = (
    "n",
    "positives",
    "prevalence",
    "observed_rate",
    "mean_predicted",
    "calibration_ratio",
    "auc_roc",
    "ece",
)


def group_sizes(frame: pd.DataFrame, attribute: str) -> pd.DataFrame:
    """Children and positives per group, largest first (ties alphabetical)."""
    sizes = frame.groupby(attribute, sort=True)["label"].agg(n="size", positives="sum")
    sizes.index = sizes.index.astype(str)
    return (
        sizes.reset_index()
        .sort_values(["n", attribute], ascending=[False, True])
        .set_index(attribute)
    )


def split_suppressed(sizes: pd.DataFrame, fairness: Fairness) -> tuple[list[str], dict[str, str]]:
    """Groups big enough to report (largest first), and the suppressed ones with the rule they fail.

    Complementary suppression: when exactly one group is too small, the smallest other group
    is suppressed too (reason "complementary"), so that no group's counts can be recovered by
    subtracting the reported groups from the overall figures.
    """
    too_few = sizes["n"] < fairness.min_group_size
    too_few_pos = ~too_few & (sizes["positives"] < fairness.min_positives)
    dropped = {g: f"fewer than {fairness.min_group_size} children" for g in sizes.index[too_few]}
    dropped |= {
        g: f"fewer than {fairness.min_positives} positives" for g in sizes.index[too_few_pos]
    }
    kept = [g for g in sizes.index if g not in dropped]
    if len(dropped) == 1 and kept:
        # `overall` and every reported group publish n and positives, so one suppressed
        # group alone is their difference: hide the smallest reported group with it.
        dropped[kept.pop()] = COMPLEMENTARY
    return kept, dict(sorted(dropped.items()))


def choose_reference(attribute: str, kept: list[str], fairness: Fairness) -> dict:
    """The configured reference group, else the largest reported group (`kept` is largest first)."""
    wanted = fairness.reference_groups.get(attribute)
    if wanted is not None and wanted in kept:
        return {"group": wanted, "source": "params"}
    note = {}
    if wanted is not None:
        note = {
            "note": f"configured reference '{wanted}' is absent or suppressed; the largest group is used"
        }
        log.warning("fairness.reference_groups.%s: %s", attribute, note["note"])
    if not kept:
        return {"group": None, "source": "none", "note": "every group is suppressed"}
    return {"group": kept[0], "source": "largest group", **note}


def _measure_attribute(
    frame, attribute, kept, weights, fairness, ece_bins, attribute_index
) -> dict[str, Measured]:
    values = frame[attribute].to_numpy()
    label, score = frame["label"].to_numpy(), frame["score"].to_numpy()
    measured = {}
    for group_index, group in enumerate(sorted(kept)):
        index = np.flatnonzero(values == group)
        rows = GroupRows.build(label[index], score[index], weights[index], ece_bins)
        rng = np.random.default_rng([fairness.bootstrap_seed, attribute_index, group_index])
        measured[group] = Measured(
            point_estimates(rows), bootstrap_group(rows, fairness.bootstrap_replicates, rng)
        )
    return measured


def _group_rows(
    attribute: str, measured: dict[str, Measured], point_names: list[str]
) -> list[dict]:
    rows = []
    for group, m in sorted(measured.items()):
        for metric in THRESHOLD_FREE:
            low, high = (
                confidence_interval(m.samples[metric])
                if metric not in ("n", "positives")
                else (math.nan,) * 2
            )
            rows.append(_row(attribute, group, "", metric, m.point[metric], low, high))
        for column, point in enumerate(point_names):
            for metric in RATE_METRICS:
                low, high = confidence_interval(m.samples[metric][:, column])
                rows.append(
                    _row(attribute, group, point, metric, m.point[metric][column], low, high)
                )
    return rows


def _row(attribute, group, point, metric, value, low, high) -> dict:
    return {"attribute": attribute, "group": group, "operating_point": point, "metric": metric,
            "value": float(value), "ci_low": float(low), "ci_high": float(high)}  # fmt: skip


def _disparity_rows(attribute, measured, point_names, reference, tolerance) -> list[dict]:
    """Ratio to the reference per group, metric and operating point (AUC once: it has no cut-off)."""
    rows = []
    ref = measured[reference]
    for group in sorted(g for g in measured if g != reference):
        for column, point in enumerate(point_names):
            for metric in RATIO_METRICS:
                if metric == "auc_roc" and column > 0:
                    continue
                mine, theirs = measured[group], ref
                ratio = _safe_ratio(
                    _at(mine.point, metric, column), _at(theirs.point, metric, column)
                )
                low, high = confidence_interval(
                    _safe_ratio(
                        _at(mine.samples, metric, column), _at(theirs.samples, metric, column)
                    )
                )
                rows.append({
                    "attribute": attribute, "group": group, "reference": reference, "operating_point": point,
                    "metric": metric, "ratio": ratio, "ci_low": float(low), "ci_high": float(high),
                    "verdict": verdict(ratio, low, high, tolerance),
                    "primary": point == CAPACITY and metric in PRIMARY_METRICS,
                })  # fmt: skip
    return rows


def _at(values: dict[str, np.ndarray], metric: str, column: int) -> np.ndarray:
    """A metric at one operating point (threshold-free metrics have no operating-point axis)."""
    return values[metric] if metric in THRESHOLD_FREE else values[metric][..., column]


def _safe_ratio(numerator, denominator):
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.asarray(numerator, dtype=float) / np.asarray(denominator, dtype=float)
    return float(result) if result.ndim == 0 else result


def _overall(frame: pd.DataFrame, points: dict[str, np.ndarray], ece_bins: int) -> dict:
    weights = np.column_stack(list(points.values()))
    rows = GroupRows.build(frame["label"].to_numpy(), frame["score"].to_numpy(), weights, ece_bins)
    point = point_estimates(rows)
    overall = {name: float(point[name]) for name in THRESHOLD_FREE}
    overall["as_of_months"] = sorted(
        pd.to_datetime(frame["as_of"]).dt.strftime("%Y-%m-%d").unique().tolist()
    )
    overall["operating_points"] = {
        name: {metric: float(point[metric][column]) for metric in RATE_METRICS}
        for column, name in enumerate(points)
    }
    return overall


def _progress(items, description):
    return track(
        items,
        description=description,
        console=Console(stderr=True),
        disable=not sys.stderr.isatty(),
    )


# ---------------------------------------------------------------------------- summaries


def headline_figures(audit: FairnessAudit) -> dict:
    """A small flat dict for `dvc metrics show`: the primary criterion at the watchlist operating point."""
    primary = audit.primary()
    recall = primary.loc[primary["metric"] == "recall", "ratio"].dropna()
    fnr = primary.loc[primary["metric"] == "fnr", "ratio"].dropna()
    return {
        "recall_ratio_min": json_numbers(recall.min()) if len(recall) else None,
        "recall_ratio_max": json_numbers(recall.max()) if len(recall) else None,
        "fnr_ratio_max": json_numbers(fnr.max()) if len(fnr) else None,
        "primary_comparisons": int(len(primary)),
        "primary_outside": int((primary["verdict"] == "outside").sum()),
        "primary_inconclusive": int((primary["verdict"] == "inconclusive").sum()),
        "primary_undefined": int((primary["verdict"] == "undefined").sum()),
        "suppressed_cells": int(len(audit.suppressed)),
    }


def primary_violations(audit: FairnessAudit) -> pd.DataFrame:
    primary = audit.primary()
    return primary[primary["verdict"] == "outside"]


def audit_to_dict(audit: FairnessAudit) -> dict:
    """fairness.json: every number of the audit, NaN as null, floats rounded to 6 digits."""
    f, e = audit.fairness, audit.evaluate
    return json_numbers({
        "settings": {
            "attributes": list(f.attributes), "intersections": [list(p) for p in f.intersections],
            "tolerance": list(f.tolerance), "bootstrap_replicates": f.bootstrap_replicates,
            "bootstrap_seed": f.bootstrap_seed, "ci_level": CI_LEVEL, "min_group_size": f.min_group_size,
            "min_positives": f.min_positives, "top_pcts": list(e.top_pcts), "ece_bins": e.ece_bins,
            "primary_metrics": list(PRIMARY_METRICS), "primary_operating_point": CAPACITY,
        },
        "headline": headline_figures(audit),
        "overall": audit.overall,
        "references": audit.references,
        "groups": audit.groups.to_dict(orient="records"),
        "disparities": audit.disparities.to_dict(orient="records"),
        "suppressed": audit.suppressed.to_dict(orient="records"),
    })  # fmt: skip
