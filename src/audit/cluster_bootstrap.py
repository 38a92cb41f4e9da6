"""The cluster bootstrap by child: one seeded weight per child and replicate, shared by every group.

A child appears in up to `train.test_months` test months, so child-months are not independent:
every interval of the audit resamples *children*. The Poisson bootstrap draws, per replicate,
an independent Poisson(1) count for each child (its number of copies in the resample); all
the child's rows get that count. Because the counts belong to the child, not to a group, one
matrix serves every group, intersection, month and "rest of the population" at once, and a
group's and its complement's replicates come from the same resample (as in a multinomial
bootstrap of the whole population). Weights are generated in fixed blocks of replicates, each
from its own seed, so they do not depend on how the caller chunks the work.

Everything the audit estimates is a ratio of sums, so the replicates only need per-cell sums.
`atom_sums` collapses the rows first: an *atom* is one combination of every audited attribute
(and month), so every cell is a union of atoms. Per value column, one sparse (atoms x children)
matrix of the children's row sums times the (children x replicates) weights gives every atom's
replicate sums; `cell_sums` then adds atoms up into cells with a small sparse product. The cost
is (non-zero values) x replicates, in chunks of replicates that bound memory.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

BLOCK = 8  # replicates per seeded block of weights
MAX_CELLS = 32_000_000  # child weights materialised at a time (bounds memory: ~256 MB of float64)


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
    """(cells x items) 0/1 matrix: item r belongs to cell c for each code array (an item may sit in
    one cell per array; -1 = in no cell of that array)."""
    n_items = len(codes[0]) if codes else 0
    items = np.concatenate([np.arange(n_items)[c >= 0] for c in codes]) if codes else np.array([])
    cells = np.concatenate([c[c >= 0] for c in codes]) if codes else np.array([])
    data = np.ones(len(items), dtype=np.float64)
    return sparse.csr_matrix((data, (cells, items)), shape=(n_cells, n_items))


def atom_sums(
    atom: np.ndarray, n_atoms: int, values: np.ndarray, child: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per atom, the sum of each value column: the point (k, atoms) and every replicate (k, B, atoms).

    `atom` is each row's atom code, `values` (rows, k), `child` each row's child code into
    `weights` (B, children). A replicate's sum is sum over rows of weight[child] x value.
    """
    values = np.asarray(values, dtype=np.float64).reshape(len(atom), -1)
    replicates, n_children = weights.shape
    k = values.shape[1]
    matrices = []
    for column in range(k):
        nonzero = np.flatnonzero(values[:, column])
        matrices.append(sparse.csr_matrix(
            (values[nonzero, column], (atom[nonzero], child[nonzero])), shape=(n_atoms, n_children)
        ))  # fmt: skip
    point = np.stack([np.asarray(m.sum(axis=1)).ravel() for m in matrices]) if k else np.zeros((0, n_atoms))
    samples = np.empty((k, replicates, n_atoms))
    chunk = max(1, MAX_CELLS // max(n_children, 1))
    for begin in range(0, replicates, chunk):
        end = min(begin + chunk, replicates)
        block = np.ascontiguousarray(weights[begin:end].T, dtype=np.float64)  # (children, b)
        for column, matrix in enumerate(matrices):
            samples[column, begin:end] = (matrix @ block).T
    return point, samples


def cell_sums(member: sparse.csr_matrix, point: np.ndarray, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Atom sums -> cell sums: (k, cells) and (k, B, cells) through the (cells x atoms) membership."""
    k, replicates, n_atoms = samples.shape
    cell_point = np.asarray(member @ point.T).T if k else np.zeros((0, member.shape[0]))
    stacked = samples.transpose(2, 0, 1).reshape(n_atoms, k * replicates)
    cell_samples = np.asarray(member @ stacked).reshape(member.shape[0], k, replicates).transpose(1, 2, 0)
    return cell_point, np.ascontiguousarray(cell_samples)
