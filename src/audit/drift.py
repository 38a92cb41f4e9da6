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


def bin_codes(reference, sample, categorical: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    """The bin of every value of the reference and the sample (-1 for an unknown) and the number
    of bins: the reference's known deciles, or the categories of either side (sorted)."""
    if categorical:
        ref, cur = pd.Series(reference), pd.Series(sample)
        known = ref.dropna().astype(str), cur.dropna().astype(str)
        index = pd.Index(sorted(set(known[0].unique()) | set(known[1].unique())))
        codes = []
        for values, strings in zip((ref, cur), known, strict=True):
            code = np.full(len(values), -1, dtype="int64")
            code[values.notna().to_numpy()] = index.get_indexer(strings)
            codes.append(code)
        return codes[0], codes[1], len(index)
    reference, sample = np.asarray(reference, dtype="float64"), np.asarray(sample, dtype="float64")
    known = reference[~np.isnan(reference)]
    edges = np.unique(np.quantile(known, QUANTILES)) if known.size else np.array([])
    codes = [np.where(np.isnan(v), -1, np.searchsorted(edges, v, side="right")) for v in (reference, sample)]
    return codes[0], codes[1], edges.size + 1


def counts(reference, sample, categorical: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Counts per bin (see bin_codes) of the known values of the reference and of the sample."""
    ref, cur, n_bins = bin_codes(reference, sample, categorical)
    return _count(ref, n_bins), _count(cur, n_bins)


def _count(codes: np.ndarray, n_bins: int) -> np.ndarray:
    return np.bincount(codes[codes >= 0], minlength=n_bins)


def psi(reference, sample, categorical: bool = False) -> float:
    """PSI of `sample` against `reference` (see the module docstring for the bins)."""
    return psi_from_counts(*counts(reference, sample, categorical))


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame, specs: list[tuple[str, str, bool]],
                  threshold: float) -> list[dict]:  # fmt: skip
    """Per (feature, system, categorical) in `specs`: PSI of current vs reference, the unknown
    share on each side, and whether it is drift; sorted by PSI (desc), feature.

    A feature with a season (a yearly benefit raise moves `payment_amount_change_90d` every
    January) has single months far from the pooled window even when nothing is wrong. So the
    PSI is set beside `psi_usual`, the largest PSI of one reference month (`as_of`) against the
    pooled reference: an alert needs PSI >= `threshold` and above what the training months
    themselves showed. Each value is binned once; a month's counts are a slice of one bincount."""
    month = pd.factorize(reference["as_of"], sort=True)[0] if "as_of" in reference else None
    rows = []
    for name, system, categorical in specs:
        ref, cur = reference[name], current[name]
        ref_bin, cur_bin, n_bins = bin_codes(ref, cur, categorical)
        expected = _count(ref_bin, n_bins)
        value = psi_from_counts(expected, _count(cur_bin, n_bins))
        usual = 0.0
        if month is not None and len(month):
            known = ref_bin >= 0
            by_month = np.bincount(month[known] * n_bins + ref_bin[known], minlength=(month.max() + 1) * n_bins)
            usual = max(psi_from_counts(expected, m) for m in by_month.reshape(-1, n_bins))
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
