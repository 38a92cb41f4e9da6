"""The cluster bootstrap by child: one seeded weight per child and replicate, shared by every group.

A child appears in up to `train.test_months` test months, so child-months are not independent:
every interval of the audit resamples *children*. The Poisson bootstrap draws, per replicate,
an independent Poisson(1) count for each child (its number of copies in the resample); all
the child's rows get that count. Because the counts belong to the child, not to a group, one
matrix serves every group, intersection, month and "rest of the population" at once, and a
group's and its complement's replicates come from the same resample (as in a multinomial
bootstrap of the whole population). Weights are generated in fixed blocks of replicates, each
from its own seed, so they do not depend on how the caller chunks the work.

`weighted_sums` turns the weights into per-cell sums for every replicate with one sparse
product per chunk of replicates: (cells x rows) membership times (rows x replicates) weights.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

BLOCK = 8  # replicates per seeded block of weights
MAX_CELLS = 24_000_000  # row weights materialised at a time (bounds memory: ~100 MB of float32)


def child_codes(child_pid) -> tuple[np.ndarray, int]:
    """Each row's child as 0..n-1 (codes in sorted id order, so independent of row order)."""
    codes, uniques = pd.factorize(pd.Series(child_pid).astype(str), sort=True)
    return codes.astype(np.int64), len(uniques)


def poisson_weights(n_children: int, replicates: int, seed: int) -> np.ndarray:
    """(replicates, n_children) uint8 copies of each child per replicate; block b is seeded [seed, b]."""
    weights = np.empty((replicates, n_children), dtype=np.uint8)
    for block, begin in enumerate(range(0, replicates, BLOCK)):
        size = min(BLOCK, replicates - begin)
        rng = np.random.default_rng([seed, block])
        weights[begin : begin + size] = np.minimum(rng.poisson(1.0, size=(size, n_children)), 255)
    return weights


def membership(codes: list[np.ndarray], n_cells: int) -> sparse.csr_matrix:
    """(cells x rows) 0/1 matrix: row r belongs to cell c for each code array (a row may sit in
    one cell per array; -1 = in no cell of that array)."""
    n_rows = len(codes[0]) if codes else 0
    rows = np.concatenate([np.arange(n_rows)[c >= 0] for c in codes]) if codes else np.array([])
    cells = np.concatenate([c[c >= 0] for c in codes]) if codes else np.array([])
    data = np.ones(len(rows), dtype=np.float64)
    return sparse.csr_matrix((data, (cells, rows)), shape=(n_cells, n_rows))


def weighted_sums(
    member: sparse.csr_matrix, values: np.ndarray, child: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, the sum of each value column: the point (k, cells) and every replicate (k, B, cells).

    `values` is (rows, k), `child` each row's child code, `weights` (B, children).
    """
    values = np.asarray(values, dtype=np.float64)
    point = np.asarray(member @ values).T
    replicates = weights.shape[0]
    out = np.empty((values.shape[1], replicates, member.shape[0]))
    chunk = max(1, MAX_CELLS // max(len(child), 1))
    for begin in range(0, replicates, chunk):
        end = min(begin + chunk, replicates)
        row_weights = weights[begin:end, child].T.astype(np.float64)  # (rows, b)
        for k in range(values.shape[1]):
            out[k, begin:end] = np.asarray(member @ (row_weights * values[:, k : k + 1])).T
    return point, out
