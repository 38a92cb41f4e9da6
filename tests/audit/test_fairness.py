"""Fairness audit: hand-computed group metrics, fairlearn agreement, bootstrap, suppression, verdicts."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate, selection_rate
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from src.audit import fairness, fairness_audit, fairness_metrics
from src.audit.fairness_audit import audit_fairness
from src.audit.fairness_report import render_html
from src.config import Evaluate, Fairness, Params, load_params
from src.errors import SafetynetError
from src.models import metrics
from tests.params import PARAMS_FILE

PARAMS = load_params(PARAMS_FILE)


def tiny_frame() -> pd.DataFrame:
    """10 children in one month; group a: 6 rows, group b: 4 rows (hand-computable)."""
    return pd.DataFrame(
        {
            "child_pid": [f"{i:064x}" for i in range(10)],
            "as_of": pd.to_datetime(["2025-01-01"] * 10),
            "score": [0.9, 0.8, 0.6, 0.4, 0.2, 0.1, 0.7, 0.5, 0.3, 0.05],
            "label": [1, 0, 1, 1, 0, 0, 1, 0, 1, 0],
            "selected": [True, True, True, False, False, False, True, False, False, False],
            "sex": ["a"] * 6 + ["b"] * 4,
        }
    )


def settings(top_pcts=(50.0,), ece_bins=10, **overrides) -> tuple[Fairness, Evaluate]:
    """params.fairness and params.evaluate for the small frames: every knob pinned here."""
    base = dict(
        attributes=("sex",),
        intersections=(),
        reference_groups={},
        tolerance=(0.8, 1.25),
        bootstrap_replicates=50,
        bootstrap_seed=3,
        min_group_size=1,
        min_positives=1,
    )
    return (
        replace(PARAMS.fairness, **{**base, **overrides}),
        replace(PARAMS.evaluate, top_pcts=top_pcts, ece_bins=ece_bins),
    )


def value(audit, group, point, metric) -> float:
    g = audit.groups
    row = g[(g["group"] == group) & (g["operating_point"] == point) & (g["metric"] == metric)]
    return float(row["value"].iloc[0])


def test_group_metrics_match_hand_computation_and_fairlearn():
    frame = tiny_frame()
    audit = audit_fairness(frame, *settings())
    # group a at the watchlist point: selected rows 0,1,2; labels 1,0,1,1,0,0
    # TP=2 FP=1 FN=1 TN=2 -> precision 2/3, recall 2/3, FPR 1/3, FNR 1/3, FOR 1/3, selection 1/2
    hand = {
        "selection_rate": 0.5,
        "precision": 2 / 3,
        "recall": 2 / 3,
        "fpr": 1 / 3,
        "fnr": 1 / 3,
        "fdr": 1 / 3,
        "for": 1 / 3,
    }
    for metric, expected in hand.items():
        assert value(audit, "a", "capacity", metric) == pytest.approx(expected)
    # group b: selected row 6 (label 1); labels 1,0,1,0 -> TP=1 FP=0 FN=1 TN=2
    assert value(audit, "b", "capacity", "recall") == pytest.approx(0.5)
    assert value(audit, "b", "capacity", "precision") == pytest.approx(1.0)
    assert value(audit, "b", "capacity", "for") == pytest.approx(1 / 3)
    # AUC of group a: positives .9 .6 .4 vs negatives .8 .2 .1 -> 7 of 9 pairs
    assert value(audit, "a", "", "auc_roc") == pytest.approx(7 / 9)

    y, s = frame["label"], frame["selected"].astype(int)
    reference = MetricFrame(
        metrics={"recall": recall_score, "precision": precision_score, "fpr": false_positive_rate,
                 "fnr": false_negative_rate, "selection_rate": selection_rate},
        y_true=y, y_pred=s, sensitive_features=frame["sex"],
    ).by_group  # fmt: skip
    for group in ("a", "b"):
        for metric in reference.columns:
            assert value(audit, group, "capacity", metric) == pytest.approx(
                reference.loc[group, metric]
            )
        rows = frame["sex"] == group
        assert value(audit, group, "", "auc_roc") == pytest.approx(
            roc_auc_score(y[rows], frame["score"][rows])
        )
        assert value(audit, group, "", "ece") == pytest.approx(
            metrics.ece(y[rows], frame["score"][rows], ece_bins=10)
        )


def test_top_pct_selection_shares_tied_places():
    as_of = pd.to_datetime(["2025-01-01"] * 4).to_numpy()
    weights = fairness_metrics.selection_weights(as_of, np.array([0.9, 0.5, 0.5, 0.1]), 50.0)
    assert weights.tolist() == [1.0, 0.5, 0.5, 0.0]


def test_missing_attribute_values_become_an_unknown_group():
    frame = tiny_frame()
    frame.loc[[8, 9], "sex"] = None
    audit = audit_fairness(frame, *settings())
    assert "unknown" in set(audit.groups["group"])


def test_intersections_are_audited():
    frame = disparity_frame(400, recall_b=0.6)
    frame["hukou"] = np.where(np.arange(len(frame)) % 3 == 0, "rural", "urban")
    audit = audit_fairness(
        frame, *settings(attributes=("sex", "hukou"), intersections=(("hukou", "sex"),))
    )
    assert {"a|rural", "b|urban"} <= set(audit.groups.query("attribute == 'sex|hukou'")["group"])


def test_bad_input_is_one_clear_error():
    with pytest.raises(SafetynetError, match="missing column.*sex"):
        audit_fairness(tiny_frame().drop(columns="sex"), *settings())
    bad = tiny_frame()
    bad.loc[0, "score"] = 1.5
    with pytest.raises(SafetynetError, match="score"):
        audit_fairness(bad, *settings())


def fake_params(tmp_path, fail_on_violation: bool) -> Params:
    fair, evaluate = settings(
        top_pcts=(5.0,), bootstrap_replicates=100, bootstrap_seed=7, min_group_size=30,
        min_positives=5, fail_on_violation=fail_on_violation,
    )  # fmt: skip
    return replace(PARAMS, fairness=fair, evaluate=evaluate)


def write_predictions(tmp_path, recall_b: float):
    path = tmp_path / "test.parquet"
    disparity_frame(1000, recall_b=recall_b).to_parquet(path)
    return path


@pytest.fixture
def no_mlflow_run(monkeypatch):
    """The models/ folder is unknown to this MLflow store: the report is not logged."""
    monkeypatch.setattr(fairness, "find_model_run", lambda models_dir: None)


def test_run_writes_report_and_fail_on_violation_raises(tmp_path, caplog, no_mlflow_run):
    predictions = write_predictions(tmp_path, recall_b=0.3)
    out, headline = tmp_path / "fairness", tmp_path / "fairness_metrics.json"
    with pytest.raises(SafetynetError, match="served worse.*recall"):
        fairness.run(predictions, tmp_path / "models", out, headline, fake_params(tmp_path, True))
    assert (out / "index.html").exists() and (out / "fairness.json").exists()
    result = fairness.run(
        predictions, tmp_path / "models", out, headline, fake_params(tmp_path, False)
    )
    assert result["served_worse"] >= 1
    assert json.loads(headline.read_text()) == result
    assert "not logged to MLflow" in caplog.text
    assert sorted(p.name for p in out.glob("*.png")) == ["fairness_by_month.png", "fairness_sex.png"]
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "primary criterion" in html.lower() and "supportive review" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "<script" not in html.lower()


def test_report_is_byte_identical_on_rerun(tmp_path, no_mlflow_run):
    predictions = write_predictions(tmp_path, recall_b=0.5)
    params = fake_params(tmp_path, False)
    fairness.run(predictions, tmp_path / "m", tmp_path / "one", tmp_path / "h1.json", params)
    fairness.run(predictions, tmp_path / "m", tmp_path / "two", tmp_path / "h2.json", params)
    for name in ("fairness.json", "index.html", "fairness_sex.png"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_html_escapes_group_values():
    frame = tiny_frame()
    frame["sex"] = ["<script>alert(1)</script>"] * 6 + ["b"] * 4
    report = fairness_audit.audit_to_dict(audit_fairness(frame, *settings()))
    html = render_html(report, {})
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_default_reference_is_the_rest_and_a_named_group_stays_available():
    audit = audit_fairness(tiny_frame(), *settings())
    assert audit.references["sex"]["group"] == "rest"
    pooled = audit.primary[audit.primary["month"] == ""].set_index("group")
    assert pooled.loc["b", "ratio"] == pytest.approx(0.5 / (2 / 3))  # b vs a (the rest of b)
    configured = audit_fairness(tiny_frame(), *settings(reference_groups={"sex": "b"}))
    assert configured.references["sex"]["group"] == "b"
    assert set(configured.primary["group"]) == {"a"}


def disparity_frame(n_per_group: int, recall_b: float, seed: int = 0) -> pd.DataFrame:
    """Two groups with equal prevalence, one row per child; the list catches 60% of a's positives and recall_b of b's."""
    rng = np.random.default_rng(seed)
    rows = []
    for group, recall in (("a", 0.6), ("b", recall_b)):
        label = (np.arange(n_per_group) % 4 == 0).astype(int)
        pos, neg = np.flatnonzero(label == 1), np.flatnonzero(label == 0)
        selected = np.zeros(n_per_group, dtype=bool)
        selected[pos[: int(round(recall * len(pos)))]] = True
        selected[neg[: len(neg) // 10]] = True
        score = np.where(selected, 0.6, 0.1) + rng.random(n_per_group) * 0.01
        rows.append(pd.DataFrame({"label": label, "selected": selected, "score": score, "sex": group}))
    frame = pd.concat(rows, ignore_index=True)
    frame["child_pid"] = [f"{i:064x}" for i in range(len(frame))]
    frame["as_of"] = pd.Timestamp("2025-01-01")
    return frame


def pooled_verdict(audit, group="b") -> str:
    p = audit.primary
    return p[(p["month"] == "") & (p["group"] == group)]["verdict"].iloc[0]


def test_every_reported_recall_agrees_with_fairlearn_per_month_and_pooled():
    """Item 9: the point values the page reports (recall per group and month, pooled, the
    context rates and their ratios to everyone) match fairlearn's MetricFrame on the raw rows."""
    rng = np.random.default_rng(4)
    n = 600
    frame = pd.DataFrame({
        "child_pid": [f"{i % 250:064x}" for i in range(n)],
        "as_of": pd.to_datetime(rng.choice(["2025-01-01", "2025-02-01"], n)),
        "score": rng.random(n), "label": rng.integers(0, 2, n), "selected": rng.random(n) < 0.3,
        "sex": rng.choice(["a", "b", "c"], n),
    })  # fmt: skip
    audit = audit_fairness(frame, *settings())
    y, s = frame["label"], frame["selected"].astype(int)
    month = frame["as_of"].dt.strftime("%Y-%m")
    by_month = MetricFrame(metrics=recall_score, y_true=y, y_pred=s, sensitive_features=frame["sex"],
                           control_features=month.rename("month")).by_group  # fmt: skip
    pooled = MetricFrame(metrics={"recall": recall_score, "selection_rate": selection_rate, "fpr": false_positive_rate},
                         y_true=y, y_pred=s, sensitive_features=frame["sex"])  # fmt: skip
    primary = audit.primary.set_index(["group", "month"])
    for (m, g), expected in by_month.items():
        assert primary.loc[(g, m), "recall"] == pytest.approx(expected)
    for g in ("a", "b", "c"):
        assert primary.loc[(g, ""), "recall"] == pytest.approx(pooled.by_group.loc[g, "recall"])
        for metric in ("recall", "selection_rate", "fpr"):
            assert value(audit, g, "capacity", metric) == pytest.approx(pooled.by_group.loc[g, metric])
            c = audit.context
            ratio = c[(c["group"] == g) & (c["operating_point"] == "capacity") & (c["metric"] == metric)]["ratio"]
            assert float(ratio.iloc[0]) == pytest.approx(pooled.by_group.loc[g, metric] / pooled.overall[metric])
    points = audit.monthly_points.set_index(["group", "month"])
    for (m, g), expected in by_month.items():
        assert points.loc[(g, m), "recall"] == pytest.approx(expected)


def test_directional_verdicts_and_discovery_name_the_group_served_worse():
    s = settings(bootstrap_replicates=200, min_group_size=30, min_positives=5)
    biased = audit_fairness(disparity_frame(2000, recall_b=0.3), *s)
    assert pooled_verdict(biased, "b") == "served worse"
    assert pooled_verdict(biased, "a") == "served better"
    assert biased.headline()["served_worse"] == 1
    top = biased.discoveries.iloc[0]
    assert (top["grouping"], top["group"], bool(top["discovered"])) == ("sex", "b", True)
    fair = audit_fairness(disparity_frame(2000, recall_b=0.6), *s)
    assert pooled_verdict(fair) == "within tolerance"
    assert fair.headline()["discoveries"] == 0
    small = audit_fairness(disparity_frame(80, recall_b=0.45), *settings(bootstrap_replicates=200))
    assert pooled_verdict(small) == "cannot tell"
