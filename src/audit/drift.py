"""Pure drift arithmetic for the monitoring stage (src/audit/monitoring.py): no I/O.

PSI (population stability index) of a sample against a reference:
    PSI = sum over bins of (a - e) * ln(a / e)
where e and a are the reference's and the sample's shares of each bin. Bins: for a numeric
feature, the reference's deciles (distinct edges only); for a categorical one, each category
seen in either sample. Unknowns (NaN) are left out of the PSI and reported as their own share:
a window that reaches before the export's history start is unknown by design (early training
months), so counting it as a bin would flag every windowed feature. A share of 0 is floored at
EPSILON so an empty bin on one side gives a large but finite PSI (a bin that empties, e.g. a
source table lost from the export, must show up).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MONITORING_FILE = "monitoring.json"  # in reports/monitoring/; its `alerts` feed the banners
EPSILON = 1e-4  # floor of a bin share in PSI
QUANTILES = np.linspace(0.1, 0.9, 9)  # inner edges: the reference's deciles


def psi_from_counts(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI of two count vectors over the same bins (0 when either side is empty)."""
    expected, actual = np.asarray(expected, dtype="float64"), np.asarray(actual, dtype="float64")
    if expected.sum() <= 0 or actual.sum() <= 0:
        return 0.0
    e = np.maximum(expected / expected.sum(), EPSILON)
    a = np.maximum(actual / actual.sum(), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_counts(reference: np.ndarray, sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts per bin (the reference's known deciles) of the known values of each side."""
    reference, sample = np.asarray(reference, dtype="float64"), np.asarray(sample, dtype="float64")
    known = reference[~np.isnan(reference)]
    edges = np.unique(np.quantile(known, QUANTILES)) if known.size else np.array([])

    def counts(values: np.ndarray) -> np.ndarray:
        values = values[~np.isnan(values)]
        return np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)

    return counts(reference), counts(sample)


def categorical_counts(reference: pd.Series, sample: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Counts per category (union of both sides' known values, sorted) of the reference and the sample."""
    ref, cur = reference.dropna().astype(str), sample.dropna().astype(str)
    index = pd.Index(sorted(set(ref.unique()) | set(cur.unique())))

    def counts(values: pd.Series) -> np.ndarray:
        return np.bincount(index.get_indexer(values), minlength=len(index))

    return counts(ref), counts(cur)


def psi(reference, sample, categorical: bool = False) -> float:
    """PSI of `sample` against `reference` (see the module docstring for the bins)."""
    if categorical:
        expected, actual = categorical_counts(pd.Series(reference), pd.Series(sample))
    else:
        expected, actual = numeric_counts(reference, sample)
    return psi_from_counts(expected, actual)


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame, specs: list[tuple[str, str, bool]],
                  threshold: float) -> list[dict]:  # fmt: skip
    """Per (feature, system, categorical) in `specs`: PSI of current vs reference, the unknown
    share on each side, and whether it is drift; sorted by PSI (desc), feature.

    A feature with a season (a yearly benefit raise moves `payment_amount_change_90d` every
    January) has single months far from the pooled window even when nothing is wrong. So the
    PSI is set beside `psi_usual`, the largest PSI of one reference month (`as_of`) against the
    pooled reference: an alert needs PSI >= `threshold` and above what the training months
    themselves showed."""
    months = [part for _, part in reference.groupby("as_of", sort=True)] if "as_of" in reference else []
    rows = []
    for name, system, categorical in specs:
        ref, cur = reference[name], current[name]
        value = psi(ref, cur, categorical)
        usual = max((psi(ref, month[name], categorical) for month in months), default=0.0)
        rows.append({
            "feature": name, "system": system, "psi": round(value, 6), "psi_usual": round(usual, 6),
            "unknown_share_reference": round(float(ref.isna().mean()) if len(ref) else 0.0, 6),
            "unknown_share_current": round(float(cur.isna().mean()) if len(cur) else 0.0, 6),
            "alert": bool(value >= threshold and value > usual),
        })  # fmt: skip
    return sorted(rows, key=lambda r: (-r["psi"], r["feature"]))


def source_shares(present: pd.DataFrame, scoring_as_of: str, reference_dates: list[str], drop: float) -> list[dict]:
    """Missing-share drift per source table.

    `present` has one row per (table, as_of) with `share`, the share of that month's scored
    children with any record in the table in the look-back window. Per table: the current share
    (scoring month), the reference (mean over `reference_dates`), the relative drop
    1 - current / reference, and an alert when the drop is at least `drop`."""
    rows = []
    for table, group in present.groupby("table", sort=True):
        shares = group.set_index("as_of")["share"]
        current = float(shares.get(scoring_as_of, 0.0))
        ref = shares.reindex(reference_dates).fillna(0.0)
        reference = float(ref.mean()) if len(ref) else 0.0
        relative = 1.0 - current / reference if reference > 0 else 0.0
        rows.append({
            "table": str(table), "share_current": round(current, 6), "share_reference": round(reference, 6),
            "relative_drop": round(relative, 6), "alert": bool(reference > 0 and relative >= drop),
        })  # fmt: skip
    return rows


def score_drift(reference: np.ndarray, current: np.ndarray, psi_threshold: float, mean_shift: float) -> dict:
    """PSI of calibrated scores and the shift of their mean (alert on either threshold)."""
    reference = np.asarray(reference, dtype="float64")
    current = np.asarray(current, dtype="float64")
    reference, current = reference[~np.isnan(reference)], current[~np.isnan(current)]
    value = psi(reference, current)
    ref_mean = float(reference.mean()) if reference.size else 0.0
    cur_mean = float(current.mean()) if current.size else 0.0
    return {
        "psi": round(value, 6), "mean_reference": round(ref_mean, 6), "mean_current": round(cur_mean, 6),
        "mean_shift": round(cur_mean - ref_mean, 6),
        "alert": bool(value >= psi_threshold or abs(cur_mean - ref_mean) >= mean_shift),
    }  # fmt: skip


def realised_vs_expected(predictions: pd.DataFrame, gap: float) -> list[dict]:
    """Per matured month of `predictions` (as_of, score, label, selected): the listed children's
    expected precision (mean calibrated score) beside the realised one (their outcome rate), and
    an alert when they differ by at least `gap` (absolute)."""
    listed = predictions[predictions["selected"].astype(bool)]
    grouped = listed.groupby("as_of", sort=True).agg(
        n_listed=("score", "size"), expected=("score", "mean"), realised=("label", "mean")
    )
    rows = []
    for as_of, row in grouped.iterrows():
        difference = float(row["realised"] - row["expected"])
        rows.append({
            "as_of": pd.Timestamp(as_of).date().isoformat(), "n_listed": int(row["n_listed"]),
            "expected_precision": round(float(row["expected"]), 6),
            "realised_precision": round(float(row["realised"]), 6),
            "difference": round(difference, 6), "alert": bool(abs(difference) >= gap),
        })  # fmt: skip
    return rows
