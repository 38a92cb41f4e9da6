"""The evaluate stage on a tiny synthetic frame with a stub model (no trained model needed)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from src.atomic import json_numbers
from src.config import Evaluate
from src.delivery.capacity import with_directors
from src.errors import SafetynetError
from src.models import evaluate, metrics, promotion, tracking
from tests.params import PARAMS_FILE

SETTINGS = Evaluate(
    top_pcts=(1.0, 5.0, 10.0), ece_bins=10, gate_metric="precision_at_k", peer_alpha=0.05, community_prior_strength=20.0,
    peer_max_rows=10_000,
    logistic_max_rows=10_000,
)  # fmt: skip
TRAIN_MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]
TEST_MONTHS = ["2025-01-01", "2025-02-01", "2025-03-01"]
CATEGORIES = ["orphan", "left_behind", "low_income"]
FEATURES = [
    "absence_rate_all_90d",
    "recert_overdue",
    "rehab_missed_180d",
    "visit_concerns_90d",
    "category",
]
CONTRACT_KEYS = {
    "auc_roc",
    "auc_pr",
    "brier",
    "ece",
    "precision_at_k",
    "recall_at_k",
    "k",
    "prevalence",
    "n",
}


def make_children(n: int = 60) -> pd.DataFrame:
    caseworkers = np.array(["cw1", "cw2", "cw3", None], dtype=object)[np.arange(n) % 4]
    return pd.DataFrame(
        {"child_pid": [f"{i:064x}" for i in range(n)], "caseworker_id": caseworkers}
    )


def make_features(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    months = pd.to_datetime(TRAIN_MONTHS + TEST_MONTHS).as_unit("us")
    frame = pd.DataFrame(
        {
            "child_pid": np.tile([f"{i:064x}" for i in range(n)], len(months)),
            "as_of": np.repeat(months, n),
        }
    )
    rows = len(frame)
    absence = np.round(rng.random(rows) * 0.3, 2)
    absence[rng.random(rows) < 0.1] = np.nan
    frame["absence_rate_all_90d"] = absence
    frame["recert_overdue"] = (rng.random(rows) < 0.2).astype(float)
    frame["rehab_missed_180d"] = rng.poisson(0.3, rows).astype(float)
    frame["visit_concerns_90d"] = rng.poisson(0.4, rows).astype(float)
    frame["category"] = pd.Categorical(rng.choice(CATEGORIES, rows), categories=CATEGORIES)
    logit = (
        -2.5 + 8 * np.nan_to_num(absence) + frame["recert_overdue"] + frame["visit_concerns_90d"]
    )
    frame["label"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("int8")
    frame["label_observed"] = True
    frame["already_out"] = (rng.random(rows) < 0.05).astype("int8")
    frame["county_code"] = np.where(np.arange(rows) % 2, "110101", "110102")
    frame["community_code"] = np.array(["a", "b", "c"])[np.arange(rows) % 3]
    frame["sex"] = np.where(np.arange(rows) % 2, "f", "m")
    frame["hukou"] = np.where(np.arange(rows) % 3, "rural", "urban")
    frame["ethnicity"] = "han"
    frame["disability"] = "none"
    frame["age_band"] = "6-11"
    return frame


class StubModel:
    """Stands in for CalibratedModel: coarse probabilities (so there are ties at the cut), and
    no nowcast (so its calibrated probability is the one it serves)."""

    nowcast: dict = {}

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        logit = -2.5 + 8 * frame["absence_rate_all_90d"].fillna(0) + frame["recert_overdue"]
        return np.round(1 / (1 + np.exp(-logit.to_numpy())), 1)

    calibrated = predict_proba

    def nowcasted(self, proba: np.ndarray, as_of) -> np.ndarray:
        return proba


def test_capacity_is_one_list_per_director_and_month():
    test = pd.DataFrame(
        {
            "child_pid": ["a", "b", "c", "e", "a", "d"],
            "as_of": pd.to_datetime(["2025-01-01"] * 4 + ["2025-02-01"] * 2),
            "county_code": ["A", "A", "A", "B", "A", "A"],
        }
    )
    children = pd.DataFrame(
        {"child_pid": list("abcde"), "caseworker_id": ["x", "y", "x", None, "z"]}
    )
    capacity = evaluate.capacity_by_list(test, children, per_caseworker=5)
    jan, feb = pd.Timestamp("2025-01-01"), pd.Timestamp("2025-02-01")
    assert capacity.to_dict() == {
        (jan, "A", "x"): 5,
        (jan, "A", "y"): 5,
        (jan, "B", "z"): 5,
        (feb, "A", ""): 0,  # d has no director: on nobody's list
        (feb, "A", "x"): 5,
    }
    no_caseworker = children.assign(caseworker_id=["x", "y", "x", None, None])
    with pytest.raises(SafetynetError, match="caseworker_id.*county B"):
        evaluate.capacity_by_list(test, no_caseworker, per_caseworker=5)
    with pytest.raises(SafetynetError, match="county_code"):
        evaluate.capacity_by_list(test.assign(county_code=None), children, per_caseworker=5)


def _core_inputs():
    features = make_features()
    test = with_directors(evaluate.select_test_rows(features, TEST_MONTHS), make_children())
    # county 110101 = odd children (cw2 or none: 1 caseworker), 110102 = even (cw1, cw3)
    capacity = evaluate.capacity_by_list(test, make_children(), per_caseworker=3)
    scores = {
        "model": StubModel().predict_proba(test),
        "rules": evaluate.baselines.rule_scores(test),
        "oracle": np.full(len(test), 0.3),
    }
    return test, capacity, scores


def hand_frame() -> pd.DataFrame:
    """Two months x two counties; with one child per caseworker, k = 2 in A and 1 in B."""
    pids = ["a1", "a2", "a3", "a4", "b1", "b2", "b3"]
    frame = pd.DataFrame(
        {
            "child_pid": pids * 2,
            "as_of": pd.to_datetime(np.repeat(TEST_MONTHS[:2], 7)).as_unit("us"),
            "county_code": ["A"] * 4 + ["B"] * 3 + ["A"] * 4 + ["B"] * 3,
            "label": [1, 0, 1, 1, 0, 1, 0] + [0, 1, 0, 0, 1, 1, 0],
        }
    )
    frame["score"] = [0.9, 0.8, 0.7, 0.6, 0.95, 0.85, 0.4] + [0.3, 0.2, 0.1, 0.05, 0.6, 0.7, 0.1]
    for column in evaluate.ATTRIBUTES:
        frame[column] = frame.get(column, "x")
    children = pd.DataFrame(
        {"child_pid": pids, "caseworker_id": ["x", "y", "x", "x", "z", "z", "z"]}
    )
    return frame, children


def test_capacity_metrics_are_pooled_over_director_lists_by_hand():
    test, children = hand_frame()
    test = with_directors(test, children)
    capacity = evaluate.capacity_by_list(test, children, per_caseworker=1)
    assert capacity.tolist() == [1] * 6  # x, y in A and z in B, each month
    block = evaluate.score_block(test, test["score"].to_numpy(), capacity, SETTINGS, True)
    # month 1: x keeps a1 (hit), y keeps a2, z keeps b1; a global top 3 would keep b2 too
    # month 2: x keeps a1, y keeps a2 (hit), z keeps b2 (hit); 7 positives in 14 rows
    assert block["k"] == 6
    assert block["precision_at_k"] == round(3 / 6, 6)
    assert block["recall_at_k"] == round(3 / 7, 6)
    assert block["lift_at_k"] == round((3 / 6) / (7 / 14), 6)
    first, second = (block["per_month"][m] for m in TEST_MONTHS[:2])
    assert (first["k"], first["precision_at_k"], first["recall_at_k"]) == (3, round(1 / 3, 6), 0.25)
    assert first["lift_at_k"] == round((1 / 3) / (4 / 7), 6)
    assert (second["k"], second["precision_at_k"], second["recall_at_k"]) == (
        3, round(2 / 3, 6), round(2 / 3, 6),
    )  # fmt: skip
    # month-level percentage cut-offs are unchanged: 10 % of 7 rows -> the top 1 of the month
    assert first["precision@10_pct"] == 0.0 and second["precision@10_pct"] == 1.0
    assert block["list_stability"] == 0.5  # {a1, a2, b1} vs {a1, a2, b2}
    predictions = evaluate.build_predictions(test, test["score"].to_numpy(), capacity)
    chosen = predictions.loc[predictions["selected"]].groupby("as_of")["child_pid"].agg(set)
    assert chosen.tolist() == [{"a1", "a2", "b1"}, {"a1", "a2", "b2"}]


def test_test_rows_are_the_scored_population():
    features = make_features()
    test = evaluate.select_test_rows(features, TEST_MONTHS)
    assert set(test["as_of"].dt.strftime("%Y-%m-%d")) == set(TEST_MONTHS)
    assert (test["already_out"] == 0).all()
    assert len(test) == int(
        ((features["already_out"] == 0) & features["as_of"].isin(pd.to_datetime(TEST_MONTHS))).sum()
    )
    with pytest.raises(SafetynetError, match="no scorable rows"):
        evaluate.select_test_rows(features, ["2030-01-01"])


def test_metrics_dict_has_the_contract_layout_and_real_values():
    test, capacity, scores = _core_inputs()
    result = evaluate.evaluate_scores(test, scores, {"model", "oracle"}, capacity, SETTINGS)
    assert set(result) == {"test", "baselines", "ratios", "gate"}
    assert set(result["baselines"]) == {"rules", "oracle"}
    for block in [result["test"], *result["baselines"].values()]:
        assert set(block) >= CONTRACT_KEYS
        assert {
            "precision@5_pct",
            "recall@1_pct",
            "lift@10_pct",
            "list_stability",
            "per_month",
        } <= set(block)
        assert set(block["per_month"]) == set(TEST_MONTHS)
        assert block["k"] == capacity.sum() == 3 * (3 * 1 + 3 * 2)
        assert block["n"] == len(test)
    model = result["test"]
    y = test["label"].to_numpy()
    assert model["auc_roc"] == round(metrics.compute("auc_roc", y, scores["model"]), 6)
    lists = evaluate.list_ids(test, capacity)
    expected = metrics.compute(
        "precision_at_k", y, scores["model"], k=evaluate.k_by_list(capacity), groups=lists
    )
    assert model["precision_at_k"] == round(expected, 6)
    assert result["baselines"]["rules"]["brier"] is None  # a rule count is not a probability
    assert result["baselines"]["oracle"]["auc_roc"] == 0.5
    assert result["ratios"]["model_to_oracle"]["auc_roc"] == round(model["auc_roc"] / 0.5, 6)
    assert result["gate"]["metric"] == "precision_at_k"
    assert result["gate"]["rules"] == result["baselines"]["rules"]["precision_at_k"]
    json.dumps(result, allow_nan=False)  # strict JSON: no NaN


def test_the_gates_lists_break_ties_at_the_cut_by_child_pid_as_the_watchlist_does():
    test, capacity, _ = _core_inputs()
    test = test.iloc[::-1].reset_index(drop=True)  # child_pids no longer in first-seen order
    tied = np.full(len(test), 0.2)  # the model: every child tied, so the cut is all tie-break
    peer = np.random.default_rng(4).random(len(test))
    result = evaluate.evaluate_scores(test, {"model": tied, "lightgbm_peer": peer}, {"model"}, capacity, SETTINGS)
    expected = promotion.paired_lists(test["label"].to_numpy(), evaluate.selected(test, tied, capacity),
                                      evaluate.selected(test, peer, capacity))  # fmt: skip
    assert result["gate"]["peer_lists"] == json_numbers(expected)
    assert 0 < expected["model_only"] < int(capacity.sum())


def test_a_partial_oracle_is_compared_with_the_model_on_the_same_rows():
    test, capacity, scores = _core_inputs()
    oracle = np.where(np.arange(len(test)) % 4 == 0, np.nan, scores["model"])
    result = evaluate.evaluate_scores(
        test, {**scores, "oracle": oracle}, {"model", "oracle"}, capacity, SETTINGS
    )
    block = result["baselines"]["oracle"]
    assert block["n"] == int((~np.isnan(oracle)).sum())
    assert block["coverage"] == round(block["n"] / len(test), 6)
    # the oracle here is the model itself on the covered rows, so every ratio is exactly 1
    assert result["ratios"]["model_to_oracle"] == {
        "auc_roc": 1.0,
        "precision@5_pct": 1.0,
        "precision_at_k": 1.0,
    }
    assert "coverage" not in result["test"]


def test_predictions_select_k_per_county_list_with_a_fixed_tie_break():
    test, capacity, scores = _core_inputs()
    predictions = evaluate.build_predictions(test, scores["model"], capacity)
    assert list(predictions.columns) == list(evaluate.PREDICTION_COLUMNS)
    assert predictions["selected"].dtype == bool and predictions["label"].dtype == "int8"
    per_list = predictions.groupby(["as_of", "county_code"])["selected"].sum()
    assert per_list.tolist() == [3, 6, 3, 6, 3, 6]
    month = predictions[
        (predictions["as_of"] == pd.Timestamp(TEST_MONTHS[0]))
        & (predictions["county_code"] == "110102")
    ]
    cut = month.loc[month["selected"], "score"].min()
    assert (month.loc[~month["selected"], "score"] <= cut).all()
    tied = month[month["score"] == cut]
    # within the tie at the cut, the smallest child_pids are the ones on the list
    assert tied.sort_values("child_pid")["selected"].is_monotonic_decreasing


def test_plot_tables_have_the_dvc_fields_and_a_model_per_curve():
    test, capacity, scores = _core_inputs()
    tables = evaluate.plot_tables(test, scores, {"model", "oracle"}, capacity, ece_bins=10)
    fields = {"roc": {"fpr", "tpr"}, "precision_recall": {"recall", "precision"},
              "calibration": {"mean_predicted", "observed_rate"}, "topk": {"k", "precision_at_k", "recall_at_k"}}  # fmt: skip
    for name, needed in fields.items():
        assert tables[name], name
        assert all(needed | {"model"} <= set(row) for row in tables[name])
    assert {row["model"] for row in tables["calibration"]} == {"model", "oracle"}
    assert {row["model"] for row in tables["topk"]} == {"model", "rules", "oracle"}


def test_mlflow_metric_names_are_valid():
    test, capacity, scores = _core_inputs()
    result = evaluate.evaluate_scores(test, scores, {"model", "oracle"}, capacity, SETTINGS)
    names = promotion.mlflow_metrics(result)
    assert "test.precision_at_5_pct" in names and "baseline.rules.precision_at_k" in names
    assert all(re.fullmatch(r"[\w./\- :]+", name) for name in names)


def _write_inputs(root):
    features = make_features()
    (root / "data").mkdir()
    features.to_parquet(root / "data" / "features.parquet", index=False)
    interim = root / "interim"
    interim.mkdir()
    make_children().to_parquet(interim / "children.parquet", index=False)
    test = features[features["as_of"].isin(pd.to_datetime(TEST_MONTHS))]
    truth = test[["child_pid", "as_of"]].assign(
        p_true=np.round(np.linspace(0.01, 0.6, len(test)), 3)
    )
    truth.iloc[5:].to_parquet(interim / "truth.parquet", index=False)  # truth may miss rows
    models = root / "models"
    models.mkdir()
    summary = {
        "split": {"train": TRAIN_MONTHS, "val": [], "test": TEST_MONTHS},
        "features": FEATURES,
        "categorical_features": {"category": CATEGORIES},
    }
    (models / "train_summary.json").write_text(json.dumps(summary))
    return features, interim, models


def _run(root, features_path, interim, models, out):
    from src.config import load_params

    params = load_params(
        PARAMS_FILE,
        {"evaluate": {"community_prior_strength": 20.0}, "label": {"horizon_days": 60}},
    )
    return evaluate.run(
        features_path, interim, models, out / "metrics.json", out / "metrics_by_month.json",
        out / "plots", out / "figures",
        out / "predictions" / "test.parquet", out / "headline.json", params,
    )  # fmt: skip


def test_run_writes_every_output_deterministically(tmp_path, monkeypatch):
    _write_inputs(tmp_path)
    monkeypatch.setattr(evaluate.CalibratedModel, "from_dir", lambda models_dir: StubModel())
    monkeypatch.setattr(promotion, "model_digest", lambda models_dir: "digest-of-the-stub")
    monkeypatch.setattr(tracking, "find_model_run", lambda models_dir: None)  # MLflow never saw it
    outputs = []
    for attempt in ("a", "b"):
        out = tmp_path / attempt
        summary = _run(
            tmp_path,
            tmp_path / "data" / "features.parquet",
            tmp_path / "interim",
            tmp_path / "models",
            out,
        )
        assert summary["champion"] == "unchanged"  # MLflow does not know the model: alias stays
        assert json.loads((tmp_path / "models" / "promotion.json").read_text())["model_digest"] == (
            "digest-of-the-stub"
        )
        outputs.append(
            {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
        )
    assert outputs[0] == outputs[1]
    names = {str(p) for p in outputs[0]}
    assert {"metrics.json", "predictions/test.parquet", "plots/roc/model.json", "plots/topk/rules.json", "figures/roc.png",
            "figures/calibration.png", "figures/precision_recall.png", "figures/topk.png"} <= names  # fmt: skip
    result = json.loads(outputs[0][next(p for p in outputs[0] if str(p) == "metrics.json")])
    assert set(result["baselines"]) == {"rules", "logistic", "lightgbm_peer", "community", "oracle"}
    assert set(result["ratios"]["model_to_oracle"]) == {
        "auc_roc",
        "precision@5_pct",
        "precision_at_k",
    }
    oracle = result["baselines"]["oracle"]
    assert oracle["n"] < result["test"]["n"] and 0 < oracle["coverage"] < 1
    assert result["ratios"]["n"] == oracle["n"]
    predictions = pd.read_parquet(tmp_path / "a" / "predictions" / "test.parquet")
    assert list(predictions.columns) == list(evaluate.PREDICTION_COLUMNS)
    assert predictions["score"].equals(pd.Series(StubModel().predict_proba(predictions.merge(
        make_features(), on=["child_pid", "as_of"], suffixes=("", "_f")).rename(
        columns=lambda c: c.removesuffix("_f"))), name="score"))  # fmt: skip


def test_per_month_blocks_go_to_their_own_file():
    test, capacity, scores = _core_inputs()
    result = evaluate.evaluate_scores(test, scores, {"model", "oracle"}, capacity, SETTINGS)
    pooled, by_month = evaluate.split_per_month(result)
    assert "per_month" not in pooled["test"]
    assert all("per_month" not in block for block in pooled["baselines"].values())
    assert by_month["test"] == result["test"]["per_month"]
    assert set(by_month["baselines"]) == set(result["baselines"])
    assert "per_month" in result["test"]  # the input is left as it was
