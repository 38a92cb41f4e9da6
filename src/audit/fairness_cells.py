"""Recall at the watchlist cut, and recording rates, for every cell at once, with cluster-bootstrap replicates.

A cell is a group of one grouping (an attribute, or a pair "a|b" of attributes, or the
overall "") in one month or pooled over the test months (month ""). Every estimate is a
ratio of sums, so per cell and replicate the audit keeps the sums of a few columns: `positives`
(the outcome), `caught` (outcome and on the list), `score` and `listed_score` (the calibrated
probabilities, all and on the list) and one column per recording source (records in the window
before the as-of date, on the child-months that later had the outcome). The
replicates reuse the children's Poisson weights (`src.audit.cluster_bootstrap`), so a group's
complement ("the rest") is the overall cell minus the group, replicate by replicate.

Pure: frames and arrays in, frames and arrays out.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from src.audit.cluster_bootstrap import atom_sums, cell_sums, membership

JOIN = "|"  # joins the attributes (and values) of a pair: "hukou|sex", "rural|f"
OVERALL = ""  # the grouping name of the whole population
ALL = "all"  # its single group
POOLED = ""  # the month of a cell pooled over the test months
SERVED_WORSE, SERVED_BETTER = "served worse", "served better"
WITHIN, CANNOT_TELL = "within tolerance", "cannot tell"
FLOOR = 1e-3  # ratios below this count as this in the log-scale shortfall test
VERDICTS = (SERVED_WORSE, SERVED_BETTER, WITHIN, CANNOT_TELL)  # the summary counts in this order


@dataclass
class Cells:
    """Cell index (grouping, group, month) and per value column the point and replicate sums;
    also the atoms the cells are made of (for sums within strata, `strata_sums`)."""

    index: pd.DataFrame  # grouping, group, month; row i = cell i
    point: dict[str, np.ndarray]  # column -> (cells,)
    samples: dict[str, np.ndarray]  # column -> (B, cells)
    atoms: pd.DataFrame  # one row per atom: the value of every attribute used (and month)
    member: sparse.csr_matrix  # (cells x atoms)
    atom_point: dict[str, np.ndarray]  # column -> (atoms,)
    atom_samples: dict[str, np.ndarray]  # column -> (B, atoms)

    def position(self) -> dict[tuple[str, str, str], int]:
        return {key: i for i, key in enumerate(self.index.itertuples(index=False, name=None))}

    def overall_positions(self) -> np.ndarray:
        """Per cell, the position of the overall cell of the same month."""
        pos = self.position()
        return np.array([pos[(OVERALL, ALL, month)] for month in self.index["month"]])


def grouping_name(attributes: tuple[str, ...]) -> str:
    return JOIN.join(attributes)


def grouping_codes(frame: pd.DataFrame, attributes: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Each row's group code in a grouping and the group labels ("x", "x|y" or "all"), sorted."""
    if not attributes:
        return np.zeros(len(frame), dtype=np.int64), [ALL]
    combined = np.zeros(len(frame), dtype=np.int64)
    labels = [np.array([""], dtype=object)]
    for attribute in attributes:
        codes, uniques = pd.factorize(frame[attribute].astype(str), sort=True)
        combined = combined * len(uniques) + codes
        labels = [
            np.array([f"{p}{JOIN}{u}" if p else str(u) for p in labels[0] for u in uniques], dtype=object)
        ]
    present, inverse = np.unique(combined, return_inverse=True)
    names = labels[0][present].tolist()
    order = np.argsort(names, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[inverse.ravel()], [names[i] for i in order]


def atom_codes(rows: pd.DataFrame, keys: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Each row's atom (its combination of `keys`' values) and one row of values per atom, sorted."""
    combined = np.zeros(len(rows), dtype=np.int64)
    for key in keys:
        codes, uniques = pd.factorize(rows[key].astype(str), sort=True)
        if (int(combined.max(initial=0)) + 1) * len(uniques) >= 2**62:  # re-number to stay in int64
            combined = np.unique(combined, return_inverse=True)[1].ravel().astype(np.int64)
        combined = combined * len(uniques) + codes
    present, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    atoms = rows.iloc[first][keys].astype(str).reset_index(drop=True)
    return inverse.ravel().astype(np.int64), atoms


def measure_cells(
    rows: pd.DataFrame,
    groupings: list[tuple[str, ...]],
    columns: list[str],
    child: np.ndarray,
    weights: np.ndarray,
    monthly: bool = True,
) -> Cells:
    """Sums of `columns` per cell (every grouping, pooled and, if `monthly`, per month) and replicate.

    `rows` holds child-months with a `month` column ("YYYY-MM") and the grouping attributes;
    `child` is each row's child code into `weights`.
    """
    attributes = list(dict.fromkeys(a for g in groupings for a in g))
    atom, atoms = atom_codes(rows, [*attributes, "month"] if monthly else attributes)
    months = sorted(atoms["month"].unique().tolist()) if monthly else []
    month_code = pd.Categorical(atoms["month"], categories=months).codes.astype(np.int64) if monthly else None
    codes, index, offset = [], [], 0
    for grouping in [(), *[g for g in groupings if g]]:
        name = grouping_name(grouping)
        key_codes, groups = grouping_codes(atoms, grouping)
        codes.append(offset + key_codes)
        index += [(name, str(g), POOLED) for g in groups]
        offset += len(groups)
        if monthly:
            codes.append(offset + key_codes * len(months) + month_code)
            index += [(name, str(g), m) for g in groups for m in months]
            offset += len(groups) * len(months)
    member = membership(codes, offset)
    values = rows[columns].to_numpy(dtype=np.float64) if len(rows) else np.zeros((0, len(columns)))
    a_point, a_samples = atom_sums(atom, len(atoms), values, child, weights)
    point, samples = cell_sums(member, a_point, a_samples)
    return Cells(
        index=pd.DataFrame(index, columns=["grouping", "group", "month"]),
        point={c: point[k] for k, c in enumerate(columns)},
        samples={c: samples[k] for k, c in enumerate(columns)},
        atoms=atoms, member=member,
        atom_point={c: a_point[k] for k, c in enumerate(columns)},
        atom_samples={c: a_samples[k] for k, c in enumerate(columns)},
    )  # fmt: skip


def strata_sums(cells: Cells, column: str, strata: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A column's sums per cell within each stratum (a combination of `strata` attributes):
    point (cells, K) and replicates (B, cells, K); no strata = one stratum."""
    codes, labels = grouping_codes(cells.atoms, tuple(a for a in strata if a in cells.atoms.columns))
    n_strata = len(labels)
    coo = cells.member.tocoo()
    split = sparse.csr_matrix(
        (coo.data, (coo.row * n_strata + codes[coo.col], coo.col)),
        shape=(cells.member.shape[0] * n_strata, cells.member.shape[1]),
    )
    point = np.asarray(split @ cells.atom_point[column]).reshape(-1, n_strata)
    samples = np.asarray(split @ cells.atom_samples[column].T).T  # (B, cells*K)
    return point, samples.reshape(samples.shape[0], -1, n_strata)


def _div(numerator, denominator):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(numerator, dtype=float) / np.asarray(denominator, dtype=float)


def rate_and_reference(
    cells: Cells, numerator: str, denominator: str, reference: np.ndarray
) -> dict[str, np.ndarray]:
    """Per cell, rate = numerator / denominator and the reference's rate, point and replicates.

    `reference[i]` is the position of cell i's reference cell, or -1 for "the rest" (the
    overall cell of the same month minus cell i).
    """
    overall = cells.overall_positions()
    out = {}
    for kind, data in (("point", cells.point), ("samples", cells.samples)):
        num, den = data[numerator], data[denominator]
        ref_num = np.where(reference >= 0, num[..., reference], num[..., overall] - num)
        ref_den = np.where(reference >= 0, den[..., reference], den[..., overall] - den)
        out[kind] = _div(num, den)
        out[f"reference_{kind}"] = _div(ref_num, ref_den)
    return out


def interval(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over replicates (axis 0), ignoring undefined replicates."""
    tail = (1 - level) / 2 * 100
    samples = np.where(np.isfinite(samples), samples, np.nan)
    with np.errstate(all="ignore"), _quiet():
        return (np.nanpercentile(samples, tail, axis=0), np.nanpercentile(samples, 100 - tail, axis=0))


def ratio_with_interval(rates: dict[str, np.ndarray], level: float) -> dict[str, np.ndarray]:
    """Ratio of each cell's rate to its reference's, with the percentile interval of the replicates."""
    ratio = _div(rates["point"], rates["reference_point"])
    low, high = interval(_div(rates["samples"], rates["reference_samples"]), level)
    return {"ratio": ratio, "ci_low": low, "ci_high": high}


def verdict(ratio: float, low: float, high: float, tolerance: tuple[float, float]) -> str:
    """served worse / served better: the whole interval is beyond the tolerance band's edge;
    within tolerance: the whole interval is inside the band; cannot tell: anything else."""
    if not all(np.isfinite(v) for v in (ratio, low, high)):
        return CANNOT_TELL
    lo_edge, hi_edge = tolerance
    if high < lo_edge:
        return SERVED_WORSE
    if low > hi_edge:
        return SERVED_BETTER
    if low >= lo_edge and high <= hi_edge:
        return WITHIN
    return CANNOT_TELL


def shortfall_p_values(ratio: np.ndarray, samples: np.ndarray, margin: float) -> np.ndarray:
    """One-sided p-value of "the ratio is at least `margin`" per cell (a shortfall that matters).

    On the log scale, d = log(ratio) - log(margin) has its standard error from the cluster
    bootstrap replicates (`samples`, (B, cells)); p = Phi(d / se). Ratios are floored at
    `FLOOR` (a group with none caught has a finite log). A cell without a usable estimate or
    error gets p = 1.
    """
    with np.errstate(all="ignore"), _quiet():
        log_samples = np.log(np.where(np.isfinite(samples), np.maximum(samples, FLOOR), np.nan))
        se = np.nanstd(log_samples, axis=0, ddof=1)
        z = (np.log(np.maximum(np.asarray(ratio, dtype=float), FLOOR)) - math.log(margin)) / se
    p = np.array([0.5 * math.erfc(-v / math.sqrt(2)) if np.isfinite(v) else 1.0 for v in np.atleast_1d(z)])
    return np.where(np.atleast_1d(se) > 0, p, 1.0)


def benjamini_hochberg(p_values: np.ndarray, fdr: float) -> np.ndarray:
    """Which hypotheses the Benjamini-Hochberg step-up procedure rejects at false discovery rate `fdr`."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(p, kind="stable")
    passed = p[order] <= fdr * np.arange(1, m + 1) / m
    rejected = np.zeros(m, dtype=bool)
    if passed.any():
        rejected[order[: np.flatnonzero(passed).max() + 1]] = True
    return rejected


@contextlib.contextmanager
def _quiet():
    """Silence numpy's all-NaN-slice warnings (an undefined interval is NaN, on purpose)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield
