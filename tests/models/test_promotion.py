"""The gate (models/promotion.json), the watchlist's refusal, and the MLflow champion mirror."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest

from src.errors import SafetynetError
from src.models import promotion, tracking


def _rivals(rules, peer):
    return {"rules": {"precision_at_k": rules}, "lightgbm_peer": {"precision_at_k": peer},
            "community": {"precision_at_k": 0.9}}  # fmt: skip


def test_gate_needs_the_rules_beaten_and_lists_not_significantly_worse_than_the_peer():
    def gate(model, rules, z=None):
        peer = None if z is None else {"z": z}
        return promotion.gate_result({"precision_at_k": model}, _rivals(rules, 0.5), "precision_at_k", peer)

    assert gate(0.4, 0.3)["passed"]  # the community baseline is not a gate
    assert not gate(0.3, 0.3)["passed"] and not gate(None, 0.3)["passed"]
    assert gate(0.4, 0.3, z=-1.2)["passed"]  # a statistical tie with the peer
    lost = gate(0.4, 0.3, z=-2.0)
    assert not lost["passed"] and "does not beat lightgbm_peer" in lost["reason"] and "-1.64" in lost["reason"]
    assert lost["rules"] == 0.3 and lost["lightgbm_peer"] == 0.5


def test_paired_lists_by_hand():
    #          child: 0  1  2  3  4  5
    y = np.array([1, 0, 1, 1, 0, 0])
    model = np.array([1, 1, 1, 0, 0, 0], dtype=bool)  # holds 0, 1, 2
    peer = np.array([1, 0, 0, 1, 1, 0], dtype=bool)  # holds 0, 3, 4
    out = promotion.paired_lists(y, model, peer)
    # model only: 1 (neg), 2 (pos); peer only: 3 (pos), 4 (neg): one positive each -> z = 0
    assert (out["model_only"], out["peer_only"], out["model_only_positive"], out["peer_only_positive"]) == (2, 2, 1, 1)
    assert out["z"] == 0.0
    worse = promotion.paired_lists(np.array([0, 0, 1, 1]), np.array([1, 1, 0, 0], bool), np.array([0, 0, 1, 1], bool))
    assert worse["peer_only_positive"] == 2 and worse["z"] == -2.0  # pooled rate 0.5 under no difference
    many_y = np.r_[np.zeros(100), np.ones(100)]
    m_sel = np.r_[np.ones(100), np.zeros(100)].astype(bool)
    p_sel = ~m_sel
    assert promotion.paired_lists(many_y, m_sel, p_sel)["z"] < -10  # all negatives against all positives
    rng = np.random.default_rng(0)
    y2 = rng.random(4000) < np.r_[np.full(2000, 0.3), np.full(2000, 0.5)]
    z = promotion.paired_lists(y2, np.r_[np.ones(2000), np.zeros(2000)].astype(bool),
                               np.r_[np.zeros(2000), np.ones(2000)].astype(bool))["z"]  # fmt: skip
    assert z < -8  # the peer's exclusive picks are clearly better


def test_the_decision_names_its_model_and_is_refused_for_another(tmp_path, monkeypatch):
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    digest = {"value": "aaa"}
    monkeypatch.setattr(promotion, "model_digest", lambda path: digest["value"])
    gate = promotion.gate_result({"auc_roc": 0.7}, {"rules": {"auc_roc": 0.6}}, "auc_roc")
    written = promotion.write_promotion(models_dir, gate, ["2025-05-01"])
    assert promotion.read_promotion(models_dir) == written
    assert json.loads((models_dir / "promotion.json").read_text())["model_digest"] == "aaa"
    digest["value"] = "bbb"  # models/ now holds another model
    with pytest.raises(SafetynetError, match="about another model"):
        promotion.read_promotion(models_dir)


def test_the_watchlist_refuses_a_failed_gate_unless_overridden(caplog):
    failed = promotion.gate_result({"auc_roc": 0.5}, {"rules": {"auc_roc": 0.6}}, "auc_roc")
    with pytest.raises(SafetynetError) as info:
        promotion.require_passed(failed, allow_failed_gate=False)
    message = str(info.value)
    assert "\n" not in message and "auc_roc 0.5" in message and "allow_failed_gate" in message
    promotion.require_passed(failed, allow_failed_gate=True)  # explicit override: a warning
    assert "GATE FAILED" in caplog.text
    promotion.require_passed({**failed, "passed": True}, allow_failed_gate=False)


class Store:
    """A stand-in for one machine's MLflow store: runs by model, and the champion alias."""

    def __init__(self, monkeypatch, champion=None, champion_metric=None):
        self.alias = champion
        self.logged = []
        monkeypatch.setattr(tracking, "find_model_run",
                            lambda d: {"run_id": "run-2", "model_version": "2"})  # fmt: skip
        monkeypatch.setattr(tracking, "load_champion",
                            lambda: (self.alias, "champion-model") if self.alias else None)  # fmt: skip
        monkeypatch.setattr(tracking, "promote_champion", self.promote)
        monkeypatch.setattr(promotion.mlflow, "start_run", self.start_run)
        for name in ("log_metrics", "set_tag", "set_tags", "log_artifact", "log_artifacts"):
            monkeypatch.setattr(promotion.mlflow, name, lambda *a, _n=name, **k: self.logged.append(_n))
        self.champion_metric = champion_metric

    def promote(self, version):
        self.alias = version

    @contextlib.contextmanager
    def start_run(self, run_id=None):
        self.logged.append(("run", run_id))
        yield


def _mirror(tmp_path, passed: bool, model_metric: float, champion_metric=None):
    gate = {"metric": "precision_at_k", "model": model_metric, "rules": 0.3, "passed": passed,
            "reason": "r"}  # fmt: skip
    scored = []

    def score(model):
        scored.append(model)
        return champion_metric

    outcome = promotion.mirror(tmp_path, {"gate": gate}, {"test.auc_roc": 0.8}, {}, score)
    return outcome, scored


def test_a_failed_gate_never_moves_the_champion(tmp_path, monkeypatch):
    store = Store(monkeypatch, champion="1")
    outcome, scored = _mirror(tmp_path, passed=False, model_metric=0.9)
    assert store.alias == "1" and outcome["alias"] == "unchanged" and scored == []
    assert ("run", "run-2") in store.logged  # the evaluation is logged all the same


def test_the_champion_moves_only_to_a_model_at_least_as_good_on_the_same_rows(tmp_path, monkeypatch):
    store = Store(monkeypatch, champion="1")
    outcome, scored = _mirror(tmp_path, passed=True, model_metric=0.40, champion_metric=0.45)
    assert store.alias == "1" and outcome["alias"] == "unchanged" and scored == ["champion-model"]
    outcome, _ = _mirror(tmp_path, passed=True, model_metric=0.45, champion_metric=0.45)
    assert store.alias == "2" and outcome["alias"] == "moved"


def test_the_first_model_to_pass_becomes_champion(tmp_path, monkeypatch):
    store = Store(monkeypatch, champion=None)
    outcome, _ = _mirror(tmp_path, passed=True, model_metric=0.4)
    assert store.alias == "2" and outcome["alias"] == "moved"


def test_an_unregistered_model_logs_nothing_and_moves_nothing(tmp_path, monkeypatch):
    store = Store(monkeypatch, champion="1")
    monkeypatch.setattr(tracking, "find_model_run", lambda d: None)
    outcome, _ = _mirror(tmp_path, passed=True, model_metric=0.9)
    assert store.alias == "1" and outcome["alias"] == "unchanged" and store.logged == []
