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


def test_shap_values_equal_pred_contrib_and_add_up_to_the_raw_score(
    small_catalogue, frame, model, monkeypatch
):
    monkeypatch.setattr(explain, "SHAP_CHUNK_ROWS", 70)  # several chunks
    X = snapshot(frame)[model.booster.feature_name()]
    contrib, base = explain.shap_contributions(model.booster, X)
    native = model.booster.predict(X, pred_contrib=True)
    assert contrib.shape == X.shape
    np.testing.assert_allclose(contrib, native[:, :-1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(base, native[:, -1], rtol=0, atol=1e-6)
    raw = model.booster.predict(X, raw_score=True)
    np.testing.assert_allclose(contrib.sum(axis=1) + base, raw, rtol=0, atol=1e-6)


def test_rows_to_explain_takes_capacity_plus_margin_per_county_and_per_caseworker():
    places = pd.DataFrame({
        "child_pid": [f"p{i:02d}" for i in range(12)],
        "county_code": ["A"] * 8 + ["B"] * 4,
        "caseworker_id": ["a1"] * 6 + ["a2", "a2"] + ["b1"] * 4,
    })  # fmt: skip
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.1, 0.05, 0.3, 0.3, 0.2, np.nan])
    at_risk = ~np.isnan(scores)
    # county A: 2 caseworkers x 1 x (1 + 0.5) = 3 -> p00..p02; a2's own top ceil(1.5) = 2 -> p06, p07
    # county B: 1 x 1.5 -> 2 (tie at 0.3 by child_pid: p08, p09); p11 is not at risk
    mask = explain.rows_to_explain(scores, places, at_risk, per_caseworker=1, margin=0.5)
    assert places.loc[mask, "child_pid"].tolist() == ["p00", "p01", "p02", "p06", "p07", "p08", "p09"]
    none = explain.rows_to_explain(scores, places, at_risk, per_caseworker=0, margin=1.0)
    assert not none.any()


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


def test_explain_snapshot_reasons_are_risks_and_routing_follows_them(small_catalogue, frame, model):
    rows = snapshot(frame)
    snap = explain.explain_snapshot(rows, model, top_n=3)
    out = snap.explanations
    assert list(out.columns) == explain.explanation_columns(3)
    assert len(out) == len(rows) and out["child_pid"].is_monotonic_increasing
    lapsed = out[out["already_out"] == 1]
    assert lapsed["score"].isna().all() and len(lapsed) > 0
    assert (lapsed["systems"] == lapsed["already_out_net"]).all()
    assert (lapsed["reason_1_zh"] == "").all() and not lapsed["no_reason"].any()
    both = lapsed["already_out_net"] == "basic_living|education"
    assert (lapsed.loc[both, "service_en"]
            == "help with benefit recertification; school follow-up (dropout prevention, 控辍保学)").all()  # fmt: skip
    scored = out[out["already_out"] == 0]
    assert scored["score"].between(0, 1).all() and len(snap.shap) == len(scored)
    by_pid = rows.set_index("child_pid")
    contrib = snap.shap.set_axis(scored["child_pid"].to_numpy())
    shown = 0
    for _, row in scored.iterrows():
        names = [row[f"reason_{k}_feature"] for k in (1, 2, 3) if row[f"reason_{k}_feature"]]
        assert row["no_reason"] == (not names)
        if not names:
            assert row["reason_1_zh"] == "没有单一记录能解释该风险，请全面复核档案"
            assert row["systems"] == "" and row["service_en"] == "general review"
            continue
        shown += len(names)
        for name in names:  # a risk, actionable, raising the risk, beyond the normal range
            entry = catalogue.spec(name)
            assert entry.role == "risk" and entry.actionable and contrib.loc[row["child_pid"], name] > 0
            value = by_pid.loc[row["child_pid"], name]
            assert value in entry.risk_values if entry.risk_values else value > entry.normal[1]
        values = [contrib.loc[row["child_pid"], n] for n in names]
        assert values == sorted(values, reverse=True)
        systems = list(dict.fromkeys(catalogue.spec(n).system for n in names))
        assert row["systems"] == "|".join(systems) and row["primary_system"] == systems[0]
        assert ("benefit" in row["service_en"]) == ("basic_living" in systems)
        k = names[0]
        assert row["reason_1_zh"].startswith(catalogue.render_reason(k, by_pid.loc[row["child_pid"], k], "zh"))
    assert shown > 0 and scored["no_reason"].any()
    assert not {"age_years", "category", "mental_health_events_365d"} & set(
        scored[[f"reason_{k}_feature" for k in (1, 2, 3)]].to_numpy().ravel()
    )
    # contributions: top 10 (all 9 here) + remainder, summing to the raw score
    table = snap.contributions
    assert table.groupby("child_pid").size().eq(10).all()
    raw = model.raw_score(rows.set_index("child_pid").loc[table["child_pid"].unique()].reset_index())
    total = table.groupby("child_pid", sort=False)["shap"].sum() + table.groupby("child_pid", sort=False)["base_log_odds"].first()
    np.testing.assert_allclose(total.to_numpy(), raw, rtol=0, atol=1e-9)


def test_explain_snapshot_explains_only_children_a_list_can_show(small_catalogue, frame, model):
    rows = snapshot(frame)
    _, children = fx.people(240, n_counties=2, hostile=False, seed=3)
    snap = explain.explain_snapshot(rows, model, top_n=2, places=children, per_caseworker=3, margin=0.0)
    out = snap.explanations
    scored = out[out["already_out"] == 0]
    explained = scored["shap_static"].notna()
    assert 0 < explained.sum() == len(snap.shap) < len(scored)
    assert scored["score"].notna().all()  # every child is still scored
    assert (scored.loc[~explained, "reason_1_zh"] == "").all()
    assert set(snap.contributions["child_pid"]) == set(scored.loc[explained, "child_pid"])


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
    interim = tmp_path / "interim"
    interim.mkdir()
    fx.people(240, n_counties=2, hostile=False)[1].to_parquet(interim / "children.parquet", index=False)
    params = fx.params()
    outputs = []
    for attempt in range(2):
        out_path, reports = tmp_path / f"out{attempt}" / "expl.parquet", tmp_path / f"rep{attempt}"
        contributions = tmp_path / f"out{attempt}" / "contributions.parquet"
        summary = explain.run(features_path, facts, tmp_path / "models", interim, out_path,
                              contributions, reports, params)  # fmt: skip
        pngs = sorted(reports.rglob("*.png"))
        outputs.append((out_path.read_bytes(), contributions.read_bytes(),
                        (reports / "importance.json").read_bytes(),
                        *(p.read_bytes() for p in pngs)))  # fmt: skip
    assert (reports / "shap_beeswarm.png").exists() and len(list((reports / "dependence").glob("*.png"))) >= 1
    assert outputs[0] == outputs[1], "same data + params must give identical bytes"
    assert summary["as_of"] == "2024-06-01" and summary["previous_as_of"] == "2024-05-01"
    result = pd.read_parquet(out_path)
    assert set(result["as_of"].dt.strftime("%Y-%m-%d")) == {"2024-05-01", "2024-06-01"}
    assert result.groupby("as_of").size().tolist() == [240, 240]
    assert logged[-1] == reports and len(logged) == 2
    text = (reports / "importance.json").read_text(encoding="utf-8")
    assert not any(p in text for p in frame["child_pid"].unique()[:50])
    assert sorted(p.name for p in reports.rglob("*") if p.is_file() and p.suffix not in (".png", ".json")) == []
    assert set(pd.read_parquet(contributions)["child_pid"]) <= set(result["child_pid"])
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


def test_scores_are_the_models_for_their_as_of_date_nowcast_included(small_catalogue, frame, model):
    """The served model's nowcast corrects by as-of date: explain must hand it the date."""

    class Nowcasting(fx.StubModel):
        def predict_proba(self, df):
            halved = 0.5 if "as_of" in df.columns else 1.0  # what a nowcast ratio would do
            return halved * super().predict_proba(df)

    rows = snapshot(frame)
    out = explain.explain_snapshot(rows, Nowcasting(model.booster), top_n=2).explanations
    scored = out[out["already_out"] == 0].set_index("child_pid")["score"]
    expected = pd.Series(0.5 * model.predict_proba(rows), index=rows["child_pid"])
    assert np.allclose(scored, expected.loc[scored.index].to_numpy(), atol=1e-12)


def test_a_director_code_in_two_counties_is_two_lists_for_shap_too():
    """director_cut ranks per (county, director); SHAP must reach the top of each such list."""
    places = pd.DataFrame({"child_pid": list("abcdef"), "county_code": ["A", "A", "B", "B", "B", "B"],
                           "caseworker_id": ["x", "x", "y", "y", "y", "x"]})  # fmt: skip
    scores = np.array([0.9, 0.8, 0.95, 0.94, 0.93, 0.3])
    mask = explain.rows_to_explain(scores, places, np.ones(6, dtype=bool), per_caseworker=1, margin=0.0)
    # county B's two slots go to y's c and d; f is x's top child in B, listed by director_cut
    assert mask.tolist() == [True, False, True, True, False, True]
