"""Cluster bootstrap: seeded child weights, and collapsed sums equal to the row-by-row sums."""

from __future__ import annotations

import numpy as np

from src.audit.cluster_bootstrap import (
    atom_sums,
    cell_sums,
    child_codes,
    membership,
    poisson_weights,
)


def test_weights_are_seeded_per_block_and_codes_follow_sorted_ids():
    first, again = poisson_weights(50, 20, 5), poisson_weights(50, 20, 5)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, poisson_weights(50, 20, 6))
    np.testing.assert_array_equal(poisson_weights(50, 8, 5), first[:8])  # blocks do not depend on the total
    codes, n = child_codes(["b", "a", "b", "c"])
    assert n == 3 and codes.tolist() == [1, 0, 1, 2]


def test_atom_and_cell_sums_equal_the_weighted_row_sums():
    rng = np.random.default_rng(1)
    rows, children, atoms = 300, 90, 7
    child, atom = rng.integers(0, children, rows), rng.integers(0, atoms, rows)
    values = np.column_stack([rng.random(rows), (rng.random(rows) < 0.2).astype(float)])
    weights = poisson_weights(children, 30, 2)
    point, samples = atom_sums(atom, atoms, values, child, weights)
    row_weights = weights[:, child].astype(float)  # (B, rows): a child's rows share its count
    for k in range(2):
        expected = np.stack([np.bincount(atom, weights=row_weights[b] * values[:, k], minlength=atoms)
                             for b in range(30)])  # fmt: skip
        np.testing.assert_allclose(samples[k], expected)
        np.testing.assert_allclose(point[k], np.bincount(atom, weights=values[:, k], minlength=atoms))
    member = membership([np.array([0, 0, 1, 1, 1, -1, 0])], 2)  # cell 0 = atoms 0,1,6; cell 1 = 2,3,4
    cell_point, cell_samples = cell_sums(member, point, samples)
    np.testing.assert_allclose(cell_point[:, 1], point[:, [2, 3, 4]].sum(axis=1))
    np.testing.assert_allclose(cell_samples[:, :, 0], samples[:, :, [0, 1, 6]].sum(axis=2))
