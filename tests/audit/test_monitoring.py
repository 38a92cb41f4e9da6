"""Monitoring stage (src/audit/monitoring.py): source shares, capacity, alerts, the page, a run on tiny files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from src.audit import monitoring
from src.audit.model_card import render_html
from src.delivery.pages import render_index
from src.run_facts import read_monitoring_alerts
from tests.params import load_test_params

SCORING = "2025-03-01"
TRAIN = ["2025-01-01", "2025-02-01"]


def test_source_presence_counts_records_inside_the_window_only():
    keys = pd.DataFrame({"child": [0, 1, 2, 0, 1],
                         "as_of": pd.to_datetime(["2025-03-01"] * 3 + ["2025-02-01"] * 2)})  # fmt: skip
    events = {"visits": pd.DataFrame({
        "child": [0, 1, 2, 3, 0],
        # 0: 1 day before (in), 1: exactly 10 days before (in), 2: on the as-of date (out),
        # 3: not scored, 0 again: no date
        "visit_date": pd.to_datetime(["2025-02-28", "2025-02-19", "2025-03-01", "2025-02-28", None]),
    })}  # fmt: skip
    shares = monitoring.source_presence(keys, events, window_days=10).set_index("as_of")["share"]
    assert shares["2025-03-01"] == pytest.approx(2 / 3)
    assert shares["2025-02-01"] == 0.0  # 0's and 1's records are after 2025-02-01


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_source_presence_equals_a_pairwise_check_in_batches(seed):
    rng = np.random.default_rng(seed)
    dates = pd.to_datetime(["2024-01-01", "2024-01-20", "2024-03-01", "2024-03-02", "2024-09-01"])
    keys = pd.DataFrame({"child": rng.integers(0, 40, 120), "as_of": dates[rng.integers(0, len(dates), 120)]})
    keys = keys.drop_duplicates()
    events = pd.DataFrame({"child": rng.integers(0, 50, 300),
                           "d": pd.Timestamp("2023-11-01") + pd.to_timedelta(rng.integers(0, 320, 300), unit="D")})
    pairs = keys.merge(events, on="child")
    inside = pairs[(pairs["d"] >= pairs["as_of"] - pd.Timedelta(days=45)) & (pairs["d"] < pairs["as_of"])]
    hits = inside.drop_duplicates(["child", "as_of"]).groupby("as_of").size()
    expected = (hits.reindex(sorted(keys["as_of"].unique()), fill_value=0) / keys.groupby("as_of").size()).to_numpy()
    batched = pa.Table.from_pandas(events, preserve_index=False).to_batches(max_chunksize=37)
    shares = monitoring.source_presence(keys, {"t": batched}, window_days=45)["share"].to_numpy()
    np.testing.assert_allclose(shares, expected, rtol=0, atol=1e-15)


def test_expected_precision_is_the_mean_score_above_each_directors_cut():
    scored = pd.DataFrame({
        "child_pid": list("abcdef"), "score": [0.9, 0.7, 0.1, 0.5, 0.3, 0.8],
        "county_code": ["C1"] * 6, "caseworker_id": ["w1", "w1", "w1", "w2", "w2", ""],
    })  # fmt: skip
    result = monitoring.expected_at_capacity(scored, per_caseworker=1)  # a (0.9) and d (0.5); f has no director
    assert result == {"n_listed": 2, "expected_precision": 0.7}


def _frames(shift: float):
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"payment_ratio_180d": rng.uniform(0, 1, 400), "benefit_status": ["active"] * 400})
    current = pd.DataFrame({"payment_ratio_180d": rng.uniform(shift, 1 + shift, 200), "benefit_status": ["active"] * 200})
    present = pd.DataFrame({"table": ["welfare_events"] * 3, "as_of": [*TRAIN, SCORING], "share": [0.9, 0.9, 0.9]})
    scored = pd.DataFrame({"child_pid": [f"p{i}" for i in range(200)], "score": rng.uniform(0, 0.4, 200),
                           "county_code": "C1", "caseworker_id": ["w1", "w2"] * 100})  # fmt: skip
    predictions = pd.DataFrame({"as_of": pd.to_datetime(["2024-06-01"] * 4), "score": [0.5, 0.5, 0.2, 0.1],
                                "label": [1, 0, 0, 0], "selected": [True, True, False, False]})  # fmt: skip
    return reference, current, present, scored, predictions


def _report(shift: float) -> dict:
    reference, current, present, scored, predictions = _frames(shift)
    specs = monitoring.feature_specs(["payment_ratio_180d", "benefit_status", "month_of_year"])
    return monitoring.build_report(reference, current, specs, present, SCORING, TRAIN,
                                   np.random.default_rng(1).uniform(0, 0.4, 500), scored, predictions,
                                   load_test_params())  # fmt: skip


def test_no_drift_no_alert_and_a_shifted_feature_is_one():
    quiet = _report(0.0)
    assert [f["feature"] for f in quiet["features"]] == ["payment_ratio_180d", "benefit_status"]  # calendar left out
    assert quiet["features"][0]["system"] == "basic_living"
    assert quiet["alerts"] == []
    loud = _report(0.8)
    assert loud["alerts"][0].startswith("feature payment_ratio_180d (basic_living): PSI")
    assert monitoring.metrics_of(loud)["alerts"] == len(loud["alerts"]) >= 1
    assert loud["capacity"]["n_listed"] == 2 * load_test_params().base.children_per_caseworker


def test_every_page_escapes_the_alert_text():
    report = {**_report(0.8), "alerts": ["<script>x</script>"]}
    page = monitoring.render_page(report)
    assert "<script>x" not in page and "&lt;script&gt;x" in page and "http" not in page
    card = render_html("# card", alerts=["<b>x</b>"])
    assert 'id="monitoring-alert"' in card and "&lt;b&gt;x" in card
    assert 'id="monitoring-alert"' not in render_html("# card")
    summary = pd.DataFrame({"n_scored": [3], "capacity": [1], "n_already_out": [0]}, index=["C1"])
    summary.attrs["as_of"] = SCORING
    index = render_index(summary, load_test_params(), alerts=["<i>drift</i>"])
    assert 'id="monitoring-alert"' in index and "&lt;i&gt;drift" in index
    assert 'id="monitoring-alert"' not in render_index(summary, load_test_params())


def test_run_on_tiny_files_writes_the_same_bytes_twice(tmp_path):
    rng = np.random.default_rng(3)
    dates = pd.to_datetime([*TRAIN, SCORING])
    pids = [f"p{i:03d}" for i in range(60)]
    features = pd.DataFrame({
        "child_pid": np.tile(pids, 3), "as_of": np.repeat(dates, 60), "already_out": np.int8(0),
        "payment_ratio_180d": rng.uniform(0, 1, 180), "benefit_status": rng.choice(["active", "never"], 180),
        "months_of_history": 12,
    })  # fmt: skip
    features.to_parquet(tmp_path / "features.parquet")
    interim = tmp_path / "interim"
    interim.mkdir()
    pd.DataFrame({"child_pid": pids, "county_code": "C1", "caseworker_id": ["w1", "w2", "w3"] * 20}).to_parquet(
        interim / "children.parquet")  # fmt: skip
    pd.DataFrame({"child_pid": pids[:30], "event_date": pd.Timestamp("2025-02-20")}).to_parquet(
        interim / "welfare_events.parquet")  # the other source tables are absent
    pd.DataFrame({"child_pid": pids, "as_of": pd.Timestamp(SCORING), "score": rng.uniform(0, 0.5, 60)}).to_parquet(
        tmp_path / "explanations.parquet")  # fmt: skip
    predictions = pd.DataFrame({"as_of": pd.Timestamp("2024-08-01"), "score": rng.uniform(0, 0.5, 60),
                                "label": rng.integers(0, 2, 60), "selected": [True] * 15 + [False] * 45})  # fmt: skip
    predictions.to_parquet(tmp_path / "predictions.parquet")
    models = tmp_path / "models"
    models.mkdir()
    summary = {"split": {"train": TRAIN}, "features": ["payment_ratio_180d", "benefit_status"], "categorical_features": {}}
    (models / "train_summary.json").write_text(json.dumps(summary))
    args = [tmp_path / "features.parquet", interim, tmp_path / "explanations.parquet", tmp_path / "predictions.parquet",
            models, tmp_path / "out", tmp_path / "metrics.json", load_test_params()]  # fmt: skip
    monitoring.run(*args)
    first = (tmp_path / "out" / "monitoring.json").read_bytes(), (tmp_path / "out" / "index.html").read_bytes()
    monitoring.run(*args)
    assert first == ((tmp_path / "out" / "monitoring.json").read_bytes(), (tmp_path / "out" / "index.html").read_bytes())
    report = json.loads(first[0])
    welfare = {r["table"]: r for r in report["sources"]}["welfare_events"]
    assert welfare["share_current"] == 0.5 and welfare["share_reference"] == 0.0 and not welfare["alert"]
    assert report["capacity"]["n_listed"] == 3 * load_test_params().base.children_per_caseworker
    assert report["matured"][0]["n_listed"] == 15
    assert json.loads((tmp_path / "metrics.json").read_text())["alerts"] == len(report["alerts"])
    assert read_monitoring_alerts(tmp_path / "out") == report["alerts"]  # what the banners show
    assert read_monitoring_alerts(None) == []
