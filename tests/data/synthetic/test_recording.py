"""The measurement-bias knob records the group's signals as biased, and nobody else's."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from src.data.synthetic.base import draw_rows
from src.data.synthetic.recording import RecordingBias

RATE = np.array([0.025, 0.06, 0.14])
TYPE_P = np.array([[0.6, 0.3, 0.1], [0.45, 0.25, 0.3], [0.3, 0.2, 0.5]])
N = 60_000


def rows(seed=0):
    """N records: hukou 0/1, county 0/1, latent state 0/1/2, drawn types (0 sick, 1 excused, 2 unexcused)."""
    rng = np.random.default_rng(seed)
    registry = SimpleNamespace(hukou=rng.integers(0, 2, N), county=rng.integers(0, 2, N))
    state = rng.integers(0, 3, N)
    kind = draw_rows(TYPE_P[state], rng)
    return registry, np.arange(N), state, kind


def bias(mode, sources=("school_absences", "casework_visits", "welfare_payments")):
    return RecordingBias(0, 1.0, mode, np.random.default_rng(1), np.array([True, False]), sources)


def test_conceal_records_the_cells_at_risk_absences_as_a_stable_childs():
    registry, child, state, kind = rows()
    recorded_kind, kept = bias("conceal").absences(registry, child, state, kind, RATE, TYPE_P, 1, 2)
    cell = (registry.hukou == 0) & (registry.county == 0)
    # the rest, and the cell's stable children, are recorded as they are
    assert kept[~cell | (state == 0)].all()
    assert (recorded_kind == kind)[~cell | (state == 0)].all()
    for s in (1, 2):  # at-risk children: thinned to the stable rate, with the stable type mix
        mine = cell & (state == s)
        assert kept[mine].mean() == pytest.approx(RATE[0] / RATE[s], abs=0.03)
        unexcused = (recorded_kind[mine & kept] == 2).mean()
        assert unexcused == pytest.approx(TYPE_P[0, 2], abs=0.03)


def test_conceal_thins_the_cells_at_risk_visits_and_concerns():
    registry, child, state, _ = rows()
    visit_p, concern_p = np.array([0.3, 0.4, 0.55]), np.array([0.015, 0.08, 0.25])
    concerns = (np.random.default_rng(2).random((N, 7)) < concern_p[state][:, None]).astype(np.int8)
    entered, kept = bias("conceal").visits(registry, child, state, concerns, visit_p, concern_p)
    cell = (registry.hukou == 0) & (registry.county == 0)
    assert kept[~cell | (state == 0)].all() and (entered == concerns)[~cell | (state == 0)].all()
    crisis = cell & (state == 2)
    assert kept[crisis].mean() == pytest.approx(0.3 / 0.55, abs=0.03)
    assert entered[crisis].mean() == pytest.approx(concern_p[0], abs=0.01)
    # not a listed source: untouched
    entered, kept = bias("conceal", ("school_absences",)).visits(
        registry, child, state, concerns, visit_p, concern_p
    )
    assert kept.all() and (entered == concerns).all()


def test_conceal_enters_late_payments_of_the_cells_at_risk_children_on_a_stable_day():
    registry, child, state, _ = rows()
    due = np.datetime64("2025-03-10")
    paid = due + np.where(state == 2, 14, 0)
    entered = bias("conceal").payment_days(registry, child, state, paid, due, 2)
    cell = (registry.hukou == 0) & (registry.county == 0)
    assert (entered == paid)[~cell | (state == 0)].all()
    late = cell & (state == 2)
    assert (entered[late] <= due + 1).all() and (entered <= paid).all()
    assert (bias("omit").payment_days(registry, child, state, paid, due, 2) == paid).all()


def test_omit_and_relabel_touch_only_the_cells_absences():
    registry, child, state, kind = rows()
    cell = (registry.hukou == 0) & (registry.county == 0)
    _, kept = bias("omit").absences(registry, child, state, kind, RATE, TYPE_P, 1, 2)
    assert (kept == ~cell).all()
    relabelled, kept = bias("relabel").absences(registry, child, state, kind, RATE, TYPE_P, 1, 2)
    assert kept.all() and not (relabelled[cell] == 2).any() and (relabelled == kind)[~cell].all()


def test_omit_drops_and_relabel_blanks_the_cells_visits():
    registry, child, state, _ = rows()
    concerns = np.ones((N, 7), dtype=np.int8)
    cell = (registry.hukou == 0) & (registry.county == 0)
    _, kept = bias("omit").visits(registry, child, state, concerns, np.ones(3), np.ones(3))
    assert (kept == ~cell).all()
    entered, kept = bias("relabel").visits(registry, child, state, concerns, np.ones(3), np.ones(3))
    assert kept.all() and (entered[cell] == 0).all() and (entered[~cell] == 1).all()
