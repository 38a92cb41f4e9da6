"""Test predictions -> group metrics, disparity ratios with bootstrap CIs and verdicts: reports/fairness/.

The pure core is `audit_fairness(predictions, settings)`; `run()` reads the predictions, writes
fairness.json, index.html, the PNG figures and the flat headline JSON, and logs them to the
model's MLflow run.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from src.atomic import json_numbers
from src.errors import SafetynetError

log = logging.getLogger(__name__)

CAPACITY = "capacity"  # the operating point the watchlists use: top k = caseworker capacity
PRIMARY_METRICS = ("recall", "fnr")
RATE_METRICS = ("selection_rate", "precision", "recall", "fpr", "fnr", "fdr", "for")
RATIO_METRICS = (*RATE_METRICS, "auc_roc")
CI_LEVEL = 0.95
REQUIRED_COLUMNS = ("as_of", "score", "label", "selected")
UNKNOWN = "unknown"
COMPLEMENTARY = "complementary"  # suppressed only to protect another suppressed group
JOIN = "|"  # joins the attributes (and values) of an intersection: "hukou|sex", "rural|f"


@dataclass(frozen=True)
class AuditSettings:
    """The knobs of the audit (from params.fairness and params.evaluate)."""

    attributes: tuple[str, ...] = ("sex",)
    intersections: tuple[tuple[str, ...], ...] = ()
    reference_groups: dict[str, str] = field(default_factory=dict)
    tolerance: tuple[float, float] = (0.8, 1.25)
    replicates: int = 200
    seed: int = 7
    min_group_size: int = 30
    min_positives: int = 5
    top_pcts: tuple[float, ...] = (1.0, 5.0, 10.0)
    ece_bins: int = 10

    @classmethod
    def from_params(cls, params) -> AuditSettings:
        fp = params.fairness
        if len(fp.tolerance) != 2 or not 0 < fp.tolerance[0] < 1 < fp.tolerance[1]:
            raise SafetynetError(
                f"params.yaml: fairness.tolerance must be [low, high] with 0 < low < 1 < high, got {list(fp.tolerance)}"
            )
        for pair in fp.intersections:
            if len(pair) != 2:
                raise SafetynetError(
                    f"params.yaml: fairness.intersections entries must name two attributes, got {list(pair)}"
                )
        return cls(
            attributes=tuple(fp.attributes),
            intersections=tuple(tuple(p) for p in fp.intersections),
            reference_groups=dict(fp.reference_groups),
            tolerance=(float(fp.tolerance[0]), float(fp.tolerance[1])),
            replicates=fp.bootstrap_replicates,
            seed=fp.bootstrap_seed,
            min_group_size=fp.min_group_size,
            min_positives=fp.min_positives,
            top_pcts=tuple(params.evaluate.top_pcts),
            ece_bins=params.evaluate.ece_bins,
        )

    def audited_attributes(self) -> list[str]:
        return [*self.attributes, *(JOIN.join(pair) for pair in self.intersections)]


@dataclass
class FairnessAudit:
    """Everything the report shows; tidy frames, one row per number."""

    settings: AuditSettings
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


# ---------------------------------------------------------------------------- preparation


def prepare_audit_frame(
    predictions: pd.DataFrame, settings: AuditSettings, source: str = "predictions"
) -> pd.DataFrame:
    """Validate the predictions and add one string column per audited attribute (missing -> 'unknown')."""
    needed = [
        *REQUIRED_COLUMNS,
        *settings.attributes,
        *(a for p in settings.intersections for a in p),
    ]
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
    frame = pd.DataFrame(
        {
            "as_of": pd.to_datetime(predictions["as_of"]).to_numpy(),
            "score": score,
            "label": label.to_numpy(dtype="int8"),
            "selected": selected.to_numpy(dtype=float),
        }
    )
    for attribute in dict.fromkeys(needed[len(REQUIRED_COLUMNS) :]):
        frame[attribute] = _as_group_labels(predictions[attribute])
    for pair in settings.intersections:
        frame[JOIN.join(pair)] = frame[pair[0]].str.cat(frame[pair[1]], sep=JOIN)
    return frame


def _as_group_labels(column: pd.Series) -> np.ndarray:
    text = column.astype("string").str.strip()
    return text.mask(text.isna() | (text == ""), UNKNOWN).astype(str).to_numpy()


def selection_weights(as_of: np.ndarray, score: np.ndarray, pct: float) -> np.ndarray:
    """Chance of being in the top pct% of its as-of month, under uniform random tie-breaking.

    k = ceil(pct / 100 x month size), as in the metric registry's `precision@P_pct`. Rows tied
    at the cut-off share the remaining places, so no group's expected count depends on row order.
    """
    from src.models import metrics

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


def _bin_index(score: np.ndarray, bins: int) -> np.ndarray:
    return np.minimum((np.asarray(score) * bins).astype(np.int64), bins - 1)


# ---------------------------------------------------------------------------- group statistics


@dataclass(frozen=True)
class GroupRows:
    """One group's rows sorted by score, and the per-row values that every metric sums."""

    label: np.ndarray
    values: (
        np.ndarray
    )  # (n, c): label, score, m weights, m weights*label, bins onehot*label, bins onehot*score
    tie_starts: np.ndarray  # first row of each run of equal scores (for the AUC)
    operating_points: int
    ece_bins: int

    @classmethod
    def build(
        cls, label: np.ndarray, score: np.ndarray, weights: np.ndarray, ece_bins: int
    ) -> GroupRows:
        order = np.argsort(score, kind="stable")
        label, score, weights = label[order].astype(float), score[order], weights[order]
        onehot = np.eye(ece_bins)[_bin_index(score, ece_bins)]
        values = np.column_stack(
            [
                label,
                score,
                weights,
                weights * label[:, None],
                onehot * label[:, None],
                onehot * score[:, None],
            ]
        )
        starts = np.flatnonzero(np.r_[True, np.diff(score) != 0])
        return cls(label, values, starts, weights.shape[1], ece_bins)

    @property
    def size(self) -> int:
        return len(self.label)


def group_statistics(rows: GroupRows, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric for each row of `counts` (how often each child is drawn; all ones = the group).

    Threshold-free metrics have shape (b,), rate metrics (b, m) for m operating points. AUC counts
    ties one half; ECE uses equal-width bins on [0, 1]: sum of |observed - predicted| per bin / n.
    """
    m, bins = rows.operating_points, rows.ece_bins
    sums = counts @ rows.values
    n, pos, pred = counts.sum(axis=1), sums[:, 0], sums[:, 1]
    observed_bins = sums[:, 2 + 2 * m : 2 + 2 * m + bins]
    predicted_bins = sums[:, 2 + 2 * m + bins :]
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = {
            "n": n,
            "positives": pos,
            "prevalence": pos / n,
            "observed_rate": pos / n,
            "mean_predicted": pred / n,
            "calibration_ratio": pos / pred,
            "ece": np.abs(observed_bins - predicted_bins).sum(axis=1) / n,
            "auc_roc": _weighted_auc(counts, rows.label, rows.tie_starts),
        }
    rates = rates_from_sums(
        n[:, None], pos[:, None], sums[:, 2 : 2 + m], sums[:, 2 + m : 2 + 2 * m]
    )
    stats.update({name: rates[name] for name in RATE_METRICS})
    return stats


def _weighted_auc(counts: np.ndarray, label: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """AUC of each row of `counts` over score-sorted children, ties counted one half."""
    pos = np.add.reduceat(counts * label, starts, axis=1)
    neg = np.add.reduceat(counts * (1 - label), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    with np.errstate(divide="ignore", invalid="ignore"):
        return (pos * (below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))


def point_estimates(rows: GroupRows) -> dict[str, np.ndarray]:
    """The group's own metrics: scalars for threshold-free ones, (m,) arrays for rates."""
    return {
        name: value[0] for name, value in group_statistics(rows, np.ones((1, rows.size))).items()
    }


def bootstrap_group(
    rows: GroupRows, replicates: int, rng: np.random.Generator, max_cells: int = 4_000_000
) -> dict[str, np.ndarray]:
    """Resample the group's children with replacement `replicates` times; all metrics at once.

    Vectorised: each chunk of replicates is a count matrix (draws per child) multiplied by the
    per-row value matrix; chunks bound memory to about `max_cells` counts.
    """
    n = rows.size
    chunk = max(1, max_cells // max(n, 1))
    parts = []
    for begin in range(0, replicates, chunk):
        size = min(chunk, replicates - begin)
        draws = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        counts = np.bincount(draws.ravel(), minlength=size * n).reshape(size, n).astype(float)
        parts.append(group_statistics(rows, counts))
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def confidence_interval(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval along axis 0, ignoring undefined (NaN) replicates; infinities are capped."""
    tail = (1 - CI_LEVEL) / 2 * 100
    samples = np.clip(samples, -1e9, 1e9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN slice is an undefined interval
        return np.nanpercentile(samples, tail, axis=0), np.nanpercentile(
            samples, 100 - tail, axis=0
        )


def verdict(ratio: float, low: float, high: float, tolerance: tuple[float, float]) -> str:
    """within / outside / inconclusive (the interval spans an edge of the band) / undefined."""
    if not np.isfinite(ratio) or not (np.isfinite(low) and np.isfinite(high)):
        return "undefined"
    lo_edge, hi_edge = tolerance
    if low >= lo_edge and high <= hi_edge:
        return "within"
    if high < lo_edge or low > hi_edge:
        return "outside"
    return "inconclusive"


# ---------------------------------------------------------------------------- the audit


@dataclass
class Measured:
    point: dict[str, np.ndarray]
    samples: dict[str, np.ndarray]


def audit_fairness(
    predictions: pd.DataFrame, settings: AuditSettings, source: str = "predictions"
) -> FairnessAudit:
    """Group metrics, ratios to the reference group with bootstrap CIs, verdicts and suppressions."""
    frame = prepare_audit_frame(predictions, settings, source)
    points = operating_points(frame, settings.top_pcts)
    weights = np.column_stack(list(points.values()))
    groups_rows, disparity_rows, suppressed_rows, references = [], [], [], {}
    for index, attribute in enumerate(
        _progress(settings.audited_attributes(), "fairness: bootstrap")
    ):
        kept, dropped = split_suppressed(group_sizes(frame, attribute), settings)
        suppressed_rows += [
            {"attribute": attribute, "group": g, "reason": r} for g, r in dropped.items()
        ]
        reference = choose_reference(attribute, kept, settings)
        references[attribute] = reference
        measured = _measure_attribute(frame, attribute, kept, weights, settings, index)
        groups_rows += _group_rows(attribute, measured, list(points))
        if reference["group"] is not None:
            disparity_rows += _disparity_rows(
                attribute, measured, list(points), reference["group"], settings
            )
    return FairnessAudit(
        settings=settings,
        overall=_overall(frame, points, settings.ece_bins),
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


def split_suppressed(
    sizes: pd.DataFrame, settings: AuditSettings
) -> tuple[list[str], dict[str, str]]:
    """Groups big enough to report (largest first), and the suppressed ones with the rule they fail.

    Complementary suppression: when exactly one group is too small, the smallest other group
    is suppressed too (reason "complementary"), so that no group's counts can be recovered by
    subtracting the reported groups from the overall figures.
    """
    too_few = sizes["n"] < settings.min_group_size
    too_few_pos = ~too_few & (sizes["positives"] < settings.min_positives)
    dropped = {g: f"fewer than {settings.min_group_size} children" for g in sizes.index[too_few]}
    dropped |= {
        g: f"fewer than {settings.min_positives} positives" for g in sizes.index[too_few_pos]
    }
    kept = [g for g in sizes.index if g not in dropped]
    if len(dropped) == 1 and kept:
        # `overall` and every reported group publish n and positives, so one suppressed
        # group alone is their difference: hide the smallest reported group with it.
        dropped[kept.pop()] = COMPLEMENTARY
    return kept, dict(sorted(dropped.items()))


def choose_reference(attribute: str, kept: list[str], settings: AuditSettings) -> dict:
    """The configured reference group, else the largest reported group (`kept` is largest first)."""
    wanted = settings.reference_groups.get(attribute)
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
    frame, attribute, kept, weights, settings, attribute_index
) -> dict[str, Measured]:
    values = frame[attribute].to_numpy()
    label, score = frame["label"].to_numpy(), frame["score"].to_numpy()
    measured = {}
    for group_index, group in enumerate(sorted(kept)):
        index = np.flatnonzero(values == group)
        rows = GroupRows.build(label[index], score[index], weights[index], settings.ece_bins)
        rng = np.random.default_rng([settings.seed, attribute_index, group_index])
        measured[group] = Measured(
            point_estimates(rows), bootstrap_group(rows, settings.replicates, rng)
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


def _disparity_rows(attribute, measured, point_names, reference, settings) -> list[dict]:
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
                    "verdict": verdict(ratio, low, high, settings.tolerance),
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
    from rich.console import Console
    from rich.progress import track

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
    s = audit.settings
    return json_numbers({
        "settings": {
            "attributes": list(s.attributes), "intersections": [list(p) for p in s.intersections],
            "tolerance": list(s.tolerance), "bootstrap_replicates": s.replicates, "bootstrap_seed": s.seed,
            "ci_level": CI_LEVEL, "min_group_size": s.min_group_size, "min_positives": s.min_positives,
            "top_pcts": list(s.top_pcts), "ece_bins": s.ece_bins,
            "primary_metrics": list(PRIMARY_METRICS), "primary_operating_point": CAPACITY,
        },
        "headline": headline_figures(audit),
        "overall": audit.overall,
        "references": audit.references,
        "groups": audit.groups.to_dict(orient="records"),
        "disparities": audit.disparities.to_dict(orient="records"),
        "suppressed": audit.suppressed.to_dict(orient="records"),
    })  # fmt: skip


# ---------------------------------------------------------------------------- I/O


def run(predictions_path, models_dir, out_dir, headline_path, params) -> dict:
    """Read the test predictions, write the fairness report and headline, log them to MLflow."""
    from src.atomic import atomic_dir, write_json
    from src.audit.fairness_report import render_report

    predictions_path, out_dir = Path(predictions_path), Path(out_dir)
    if not predictions_path.exists():
        raise SafetynetError(
            f"{predictions_path}: not found; run the evaluate stage first (dvc repro evaluate)"
        )
    settings = AuditSettings.from_params(params)
    audit = audit_fairness(
        pd.read_parquet(predictions_path), settings, source=str(predictions_path)
    )
    report = audit_to_dict(audit)
    with atomic_dir(out_dir) as tmp:
        (tmp / "fairness.json").write_text(
            json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        render_report(report, tmp)
    write_json(headline_path, report["headline"])
    log_to_mlflow(Path(models_dir), out_dir, report["headline"])
    _log_summary(report["headline"])
    violations = primary_violations(audit)
    if params.fairness.fail_on_violation and len(violations):
        listed = "; ".join(
            f"{r.metric} ratio {r.ratio:.2f} for {r.attribute}={r.group}"
            for r in violations.itertuples()
        )
        raise SafetynetError(
            f"fairness: {len(violations)} primary comparison(s) outside tolerance {list(settings.tolerance)} "
            f"({listed}); see {out_dir / 'index.html'} (set fairness.fail_on_violation: false to report only)"
        )
    return report["headline"]


def _log_summary(headline: dict) -> None:
    log.info(
        "fairness: %d primary comparisons, %d outside, %d inconclusive; %d cells suppressed",
        headline["primary_comparisons"], headline["primary_outside"], headline["primary_inconclusive"],
        headline["suppressed_cells"],
    )  # fmt: skip


def log_to_mlflow(models_dir: Path, out_dir: Path, headline: dict) -> bool:
    """Attach the report to the model's training run; warn and skip when there is no such run."""
    summary_path = models_dir / "train_summary.json"
    run_id = None
    if summary_path.exists():
        run_id = json.loads(summary_path.read_text(encoding="utf-8")).get("run_id")
    if not run_id:
        log.warning("fairness: no MLflow run_id in %s; report not logged to MLflow", summary_path)
        return False
    import mlflow

    from src.models.tracking import configure_tracking

    try:
        configure_tracking()
        with mlflow.start_run(run_id=run_id):
            mlflow.log_metrics(
                {f"fairness_{k}": float(v) for k, v in headline.items() if v is not None}
            )
            mlflow.log_artifacts(str(out_dir), artifact_path="fairness")
    except mlflow.exceptions.MlflowException as exc:
        log.warning(
            "fairness: MLflow run %s not available (%s); report not logged",
            run_id,
            exc.message[:200],
        )
        return False
    return True
