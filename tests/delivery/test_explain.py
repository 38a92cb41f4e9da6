"""Explain: TreeSHAP additivity, reasons and routing rules, snapshot choice, run() outputs."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from src.atomic import write_json
from src.delivery import explain
from src.errors import SafetynetError
from src.features import catalogue
from src.run_facts import features_facts
from tests.delivery import explain_fixtures as fx

AS_OF = ["2024-04-01", "2024-05-01", "2024-06-01"]


@pytest.fixture
def small_catalogue(monkeypatch):
    fx.use_small_catalogue(monkeypatch)


@pytest.fixture(scope="module")
def frame():
    return fx.features_frame(240, AS_OF, seed=3)


@pytest.fixture(scope="module")
def model(frame):
    return fx.train_tiny_model(frame)


def snapshot(frame, date="2024-06-01"):
    return frame[frame["as_of"] == pd.Timestamp(date)]


def test_shap_contributions_add_up_to_the_raw_score(small_catalogue, frame, model, monkeypatch):
    monkeypatch.setattr(explain, "SHAP_CHUNK_ROWS", 70)  # several chunks
    X = snapshot(frame)[model.booster.feature_name()]
    contrib, base = explain.shap_contributions(model.booster, X)
    raw = model.booster.predict(X, raw_score=True)
    assert contrib.shape == X.shape
    np.testing.assert_allclose(contrib.sum(axis=1) + base, raw, rtol=0, atol=1e-9)


def test_pick_reasons_takes_top_positive_and_puts_actionable_first():
    contrib = np.array(
        [
            [0.5, 0.1, -0.2, 0.9],  # top 3 positive: f3 (non-act), f0, f1 -> f0, f1, f3
            [-0.1, -0.2, 0.3, 0.0],  # only one positive reason
            [0.2, 0.2, 0.0, 0.1],  # tie between f0 and f1 keeps catalogue order
        ]
    )
    actionable = np.array([True, True, True, False])
    idx, valid = explain.pick_reasons(contrib, actionable, top_n=3)
    assert idx[0].tolist() == [0, 1, 3] and valid[0].all()
    assert idx[1, 0] == 2 and valid[1].tolist() == [True, False, False]
    assert idx[2].tolist() == [0, 1, 3]


def test_route_systems_ranks_by_positive_shap_and_drops_static(small_catalogue):
    names = list(catalogue.SYSTEMS)
    sums = np.zeros((4, len(names)))
    sums[0, names.index("static")] = 2.0
    sums[0, names.index("education")] = 0.3
    sums[0, names.index("medical")] = 0.5
    sums[1, names.index("static")] = 0.4  # only static: it stays
    sums[3, names.index("safety")] = sums[3, names.index("guardianship")] = (
        0.2  # tie: SYSTEMS order
    )
    systems, primary = explain.route_systems(sums)
    assert systems.tolist() == ["medical|education", "static", "", "safety|guardianship"]
    assert primary.tolist() == ["medical", "static", "static", "safety"]


def test_choose_as_of_defaults_to_last_month_on_or_before_export_date():
    dates = pd.to_datetime(AS_OF)
    assert explain.choose_as_of(dates, None, None) == (
        pd.Timestamp("2024-06-01"),
        pd.Timestamp("2024-05-01"),
    )
    as_of, prev = explain.choose_as_of(dates, None, dt.date(2024, 5, 20))
    assert (as_of, prev) == (pd.Timestamp("2024-05-01"), pd.Timestamp("2024-04-01"))
    assert explain.choose_as_of(dates, dt.date(2024, 4, 1), None)[1] is None
    with pytest.raises(SafetynetError, match="explain.as_of"):
        explain.choose_as_of(dates, dt.date(2023, 1, 1), None)


def test_explain_snapshot_reasons_routing_and_already_out(small_catalogue, frame, model):
    rows = snapshot(frame)
    out, shap_frame = explain.explain_snapshot(rows, model, top_n=3)
    assert list(out.columns) == explain.explanation_columns(3)
    assert len(out) == len(rows) and out["child_pid"].is_monotonic_increasing
    lapsed = out[out["already_out"] == 1]
    assert lapsed["score"].isna().all() and len(lapsed) > 0
    assert (lapsed["systems"] == lapsed["already_out_net"]).all()
    assert (lapsed["reason_1_zh"] == "").all()
    scored = out[out["already_out"] == 0]
    assert scored["score"].between(0, 1).all() and len(shap_frame) == len(scored)
    # every non-empty reason is rendered with the child's own value
    by_pid = rows.set_index("child_pid")
    for _, row in scored.head(40).iterrows():
        for k in (1, 2, 3):
            name = row[f"reason_{k}_feature"]
            if name:
                value = by_pid.loc[row["child_pid"], name]
                assert row[f"reason_{k}_zh"] == catalogue.render_reason(name, value, "zh")
                assert row[f"reason_{k}_en"] == catalogue.render_reason(name, value, "en")
    # actionable reasons are never after a non-actionable one
    act = {s.name: s.actionable for s in catalogue.CATALOGUE}
    flags = scored[[f"reason_{k}_feature" for k in (1, 2, 3)]].map(lambda n: act.get(n))
    for a, b in ((1, 2), (2, 3)):
        later_actionable = flags.iloc[:, b - 1].eq(True)
        assert not (flags.iloc[:, a - 1].eq(False) & later_actionable).any()
    assert set(scored["primary_system"]) <= set(catalogue.SYSTEMS)
    assert (scored["service_en"] != "").all()


def test_reasons_top_share_explains_only_the_highest_risk(small_catalogue, frame, model):
    out, shap_frame = explain.explain_snapshot(snapshot(frame), model, top_n=2, share=0.25)
    scored = out[out["already_out"] == 0]
    explained = scored["shap_static"].notna()
    assert explained.sum() == math.ceil(0.25 * len(scored)) == len(shap_frame)
    assert scored.loc[explained, "score"].min() >= scored.loc[~explained, "score"].max()


def test_global_importance_is_mean_absolute_shap(small_catalogue):
    shap_frame = pd.DataFrame({"recert_overdue": [0.5, -0.5, 0.0], "age_years": [1.0, -2.0, 3.0],
                               "category": [-1.0, 0.0, 1.0]})  # fmt: skip
    imp = explain.global_importance(shap_frame, pd.Timestamp("2024-06-01"))
    assert imp["features"]["recert_overdue"]["mean_abs_shap"] == pytest.approx(1 / 3)
    assert imp["features"]["age_years"]["mean_abs_shap"] == pytest.approx(2.0)
    # static = age + category per child: [0, -2, 4] -> mean |.| = 2
    assert imp["systems"]["static"]["mean_abs_shap"] == pytest.approx(2.0)
    assert imp["systems"]["static"]["sum_of_feature_mean_abs_shap"] == pytest.approx(2 + 2 / 3)


def test_run_writes_explanations_and_identity_free_reports(
    small_catalogue, frame, model, tmp_path, monkeypatch
):
    features_path = tmp_path / "features.parquet"
    frame.drop(columns=["label"]).to_parquet(features_path, index=False)
    logged = []
    monkeypatch.setattr(explain.CalibratedModel, "from_dir", lambda path: model)
    monkeypatch.setattr(explain, "log_to_model_run", lambda models, path: logged.append(path) or "run-1")
    facts = tmp_path / "features_summary.json"
    write_json(facts, features_facts(dt.date(2024, 6, 30), 180, sorted(frame["as_of"].dt.date.unique())))
    params = fx.params()
    outputs = []
    for attempt in range(2):
        out_path, reports = tmp_path / f"out{attempt}" / "expl.parquet", tmp_path / f"rep{attempt}"
        summary = explain.run(features_path, facts, tmp_path / "models", out_path, reports, params)
        outputs.append((out_path.read_bytes(), (reports / "importance.json").read_bytes(),
                        (reports / "importance.png").read_bytes()))  # fmt: skip
    assert outputs[0] == outputs[1], "same data + params must give identical bytes"
    assert summary["as_of"] == "2024-06-01" and summary["previous_as_of"] == "2024-05-01"
    result = pd.read_parquet(out_path)
    assert set(result["as_of"].dt.strftime("%Y-%m-%d")) == {"2024-05-01", "2024-06-01"}
    assert result.groupby("as_of").size().tolist() == [240, 240]
    assert logged[-1] == reports and len(logged) == 2
    text = (reports / "importance.json").read_text(encoding="utf-8")
    assert not any(p in text for p in frame["child_pid"].unique()[:50])
    assert json.loads(text)["n_explained"] == summary["n_explained"]


def test_every_catalogue_template_renders():
    entries = catalogue.CATALOGUE
    if not entries:
        pytest.skip("the feature catalogue is not filled yet")
    for entry in entries:
        samples = {"categorical": entry.categories[:1] or ("other",), "indicator": (1.0, 0.0)}.get(
            entry.kind, (3.0, 0.25)
        )
        for value in (*samples, math.nan):
            for language in ("zh", "en"):
                text = catalogue.render_reason(entry.name, value, language)
                assert text and "{" not in text and "}" not in text, (entry.name, language, text)
