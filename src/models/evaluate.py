"""features + trained model -> test metrics of the model and every baseline, plots, figures, predictions.

Test rows: the split's test as-of dates, with observed labels and `already_out == 0`.
The capacity metrics (`precision_at_k`, `recall_at_k`, `lift_at_k`) measure the lists the
watchlist stage hands out: one list per child director and as-of date, k =
base.children_per_caseworker (0 for children no director looks after;
`src.delivery.capacity`, shared with the watchlist stage). They are pooled over the lists of
the test period (`k` in a block = the sum of the list sizes) and, under `per_month`, over
that month's lists. The percentage cut-offs (`precision@5_pct` ...), AUC, Brier and ECE stay
month-level. `list_stability` compares each month's union of lists with the previous
month's. The model and every baseline are scored on the same rows
with the same lists. The gate passes when the model beats the rule baseline on
`evaluate.gate_metric`; then the registered version gets the alias `champion`, otherwise
the previous champion stays. Numbers are rounded to 6 decimals; NaN (undefined) is null.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from src.atomic import atomic_dir, json_numbers, write_json, write_parquet
from src.config import Evaluate, Params
from src.delivery.capacity import LIST_KEYS, list_capacity, list_ids, with_directors
from src.errors import SafetynetError
from src.models import baselines, metrics, nowcast, promotion
from src.models.curves import plot_tables, render_backtest, render_figures, rows_with_score
from src.models.evaluation_data import (
    ATTRIBUTES,
    load_frames,
    read_children,
    read_columns,
    read_truth,
)
from src.models.report import headline, split_per_month
from src.models.scoring import CalibratedModel
from src.run_facts import read_train_summary

log = logging.getLogger(__name__)

MODEL = "model"
PLOT_SCORERS = (MODEL, "logistic", baselines.PEER, "rules", "community", "oracle")  # as in dvc.yaml plots
ORACLE = "oracle"
PREDICTION_COLUMNS = ("child_pid", "as_of", "score", "label", "selected", *ATTRIBUTES)
RATIO_METRICS = ("auc_roc", "precision@5_pct", "precision_at_k")


# ---------------------------------------------------------------- pure core: rows and capacity


def select_test_rows(frame: pd.DataFrame, test_dates) -> pd.DataFrame:
    """Rows at the test as-of dates with observed labels and not already out, in a fixed order."""
    dates = pd.to_datetime(pd.Series(list(test_dates))).dt.as_unit("us")
    keep = (
        frame["as_of"].isin(dates)
        & frame["label_observed"].astype(bool)
        & (frame["already_out"] == 0)
    )
    test = (
        frame.loc[keep].sort_values(["as_of", "child_pid"], kind="mergesort").reset_index(drop=True)
    )
    if test.empty:
        raise SafetynetError(
            "features.parquet: no scorable rows at the test as-of dates "
            f"{', '.join(str(d.date()) for d in dates)}; rebuild features or retrain"
        )
    return test


def capacity_by_list(test: pd.DataFrame, children: pd.DataFrame, per_caseworker: int) -> pd.Series:
    """k per list (as_of, county_code, caseworker_id) of the scored test rows, as the watchlist cuts."""
    missing = test["county_code"].isna()
    if missing.any():
        raise SafetynetError(
            f"features.parquet: column county_code is empty on {int(missing.sum())} test rows; "
            "every child needs a county (fix children.parquet and rebuild features)"
        )
    keyed = test if "caseworker_id" in test else with_directors(test[["child_pid", "as_of", "county_code"]], children)
    capacity = list_capacity(keyed[list(LIST_KEYS)], per_caseworker)
    by_county = capacity.groupby(level=[0, 1], sort=True).sum()
    empty = by_county[by_county == 0]
    if not empty.empty:
        as_of, county = empty.index[0]
        raise SafetynetError(
            f"children.parquet: no caseworker_id for any child of county {county} scored at "
            f"{pd.Timestamp(as_of).date()} ({len(empty)} such lists); nobody would get its "
            "children's list; fill caseworker_id"
        )
    return capacity


def k_by_list(capacity: pd.Series) -> dict[int, int]:
    """The metric registry's k mapping: list id (see `list_ids`) -> capacity."""
    return dict(enumerate(capacity.to_numpy(dtype="int64").tolist()))


# ---------------------------------------------------------------- pure core: metric blocks


def _metric_values(y, score, months, lists, k, probabilistic: bool, settings: Evaluate,
                   positions: tuple) -> dict:  # fmt: skip
    """One block: capacity metrics over the director lists, every other metric over months.
    `positions`: the rows' tie positions within their month and within their list."""
    by_month = {"groups": months, "ece_bins": settings.ece_bins, "positions": positions[0]}
    by_list = {"groups": lists, "k": k, "positions": positions[1]}
    block = {
        "n": int(len(y)),
        "n_positive": int(np.sum(y)),
        "prevalence": float(np.mean(y)) if len(y) else math.nan,
        "k": int(sum(metrics.list_sizes(k, lists, len(y)).values())),
    }
    for name in metrics.standard_names(settings.top_pcts):
        if name in metrics.PROBABILITY_METRICS and not probabilistic:
            block[name] = math.nan  # a ranking (the rule count) has no calibration
        else:
            context = by_list if name in metrics.CAPACITY_METRICS else by_month
            block[name] = metrics.compute(name, y, score, **context)
    return block


def score_block(
    test: pd.DataFrame,
    score: np.ndarray,
    capacity: pd.Series,
    settings: Evaluate,
    probabilistic: bool,
) -> dict:
    """Every registry metric for one scorer: pooled over the test period, stability, per month."""
    y = test["label"].to_numpy(dtype="int64")
    months = test["as_of"].to_numpy()
    lists, k = list_ids(test, capacity), k_by_list(capacity)
    # one ranking per grouping for every cut-off; a month's rows keep their positions (a list
    # lies within one month), so the per-month blocks reuse it too
    positions = (metrics.tie_positions(score, months), metrics.tie_positions(score, lists))
    block = _metric_values(y, score, months, lists, k, probabilistic, settings, positions)
    block["list_stability"] = metrics.compute(
        "list_stability",
        y,
        score,
        groups=lists,
        k=k,
        periods=months,
        ids=test["child_pid"].to_numpy(),
        positions=positions[1],
    )
    block["per_month"] = {}
    for month in capacity.index.unique(LIST_KEYS[0]).sort_values():
        rows = months == np.datetime64(month)
        block["per_month"][pd.Timestamp(month).date().isoformat()] = _metric_values(
            y[rows], score[rows], months[rows], lists[rows], k, probabilistic, settings,
            tuple((above[rows], tied[rows]) for above, tied in positions),
        )  # fmt: skip
    return json_numbers(block)


def model_to_oracle(model_block: dict, oracle_block: dict | None) -> dict:
    """Model / oracle on RATIO_METRICS; both blocks must come from the same rows."""
    if oracle_block is None:
        return {}
    ratios = {}
    for name in RATIO_METRICS:
        model, oracle = model_block.get(name), oracle_block.get(name)
        ratios[name] = json_numbers(model / oracle) if model is not None and oracle else None
    return {"model_to_oracle": ratios, "n": oracle_block["n"]}


def evaluate_scores(
    test: pd.DataFrame,
    scores: dict[str, np.ndarray],
    probabilistic: set[str],
    capacity: pd.Series,
    settings: Evaluate,
) -> dict:
    """The metrics.json layout: `test` (the model), `baselines`, `ratios`, `gate`.

    Every scorer is evaluated on every test row, except the oracle, which the generator's
    truth may not cover completely: it is evaluated on the rows it covers (`coverage`
    says what share), and the ratios compare it with the model on exactly those rows.
    """
    scores = {name: np.asarray(score, dtype="float64") for name, score in scores.items()}
    # children as integer codes in child_pid order, coded once rather than by every scorer's
    # list_stability; `selected` still breaks ties at the cut in child_pid order
    test = test.assign(child_pid=pd.factorize(test["child_pid"], sort=True)[0])
    blocks = {}
    for name, score in scores.items():
        rows, values = rows_with_score(test, score) if name == ORACLE else (test, score)
        blocks[name] = score_block(rows, values, capacity, settings, name in probabilistic)
        if name == ORACLE:
            blocks[name]["coverage"] = json_numbers(len(rows) / len(test))
    model = blocks.pop(MODEL)
    comparable = model
    if ORACLE in scores and blocks[ORACLE]["n"] < len(test):
        known = ~np.isnan(scores[ORACLE])
        comparable = score_block(
            test.loc[known].reset_index(drop=True), scores[MODEL][known], capacity, settings, True
        )
    peer = None
    if baselines.PEER in scores:
        y = test["label"].to_numpy()
        peer = promotion.paired_lists(y, selected(test, scores[MODEL], capacity),
                                      selected(test, scores[baselines.PEER], capacity))  # fmt: skip
    return {
        "test": model,
        "baselines": blocks,
        "ratios": model_to_oracle(comparable, blocks.get(ORACLE)),
        "gate": json_numbers(promotion.gate_result(model, blocks, settings.gate_metric, peer,
                                                   settings.peer_alpha)),  # fmt: skip
    }


def selected(test: pd.DataFrame, score: np.ndarray, capacity: pd.Series) -> np.ndarray:
    """Which test rows the lists hand out: the top k of each director's list (LIST_KEYS), k its
    capacity, ties at the cut broken by child_pid (a keyed hash, so arbitrary but fixed),
    exactly as the watchlist stage cuts its lists."""
    frame = pd.DataFrame({"list_id": list_ids(test, capacity), "score": np.asarray(score, dtype="float64"),
                          "child_pid": test["child_pid"].to_numpy()})  # fmt: skip
    order = frame.sort_values(
        ["list_id", "score", "child_pid"], ascending=[True, False, True], kind="mergesort"
    )
    position = order.groupby("list_id", sort=False).cumcount().to_numpy()
    k = capacity.to_numpy(dtype="int64")[order["list_id"].to_numpy()]
    chosen = np.zeros(len(frame), dtype=bool)
    chosen[order.index.to_numpy()] = position < k
    return chosen


# ---------------------------------------------------------------- pure core: predictions and plots


def build_predictions(test: pd.DataFrame, score: np.ndarray, capacity: pd.Series) -> pd.DataFrame:
    """The contract's test predictions; `selected` is the list actually handed out (`selected`)."""
    frame = test[["child_pid", "as_of", "label", *ATTRIBUTES]].assign(
        score=np.asarray(score, dtype="float64"), selected=selected(test, score, capacity)
    )
    frame["label"] = frame["label"].astype("int8")
    frame["child_pid"] = frame["child_pid"].astype(str)
    for column in ATTRIBUTES:
        frame[column] = (
            frame[column].astype("object").where(frame[column].notna(), None).astype("str")
        )
    return frame[list(PREDICTION_COLUMNS)].reset_index(drop=True)


# ---------------------------------------------------------------- I/O


def compute_scores(test, train, history, truth, model_score: np.ndarray, summary: dict, params: Params):
    """Scores of the model (given) and every baseline on the same test rows; and which are probabilities."""
    log.info("scoring %d test rows: the baselines", len(test))
    scores = {
        MODEL: np.asarray(model_score, dtype="float64"),
        **baselines.all_scores(test, train, history, truth, summary, params),
    }
    return scores, {MODEL, "logistic", baselines.PEER, "community", ORACLE} & set(scores)


def write_outputs(
    paths: dict[str, Path], result: dict, tables: dict, predictions: pd.DataFrame
) -> None:
    pooled, by_month = split_per_month(result)
    write_json(paths["metrics"], pooled)
    write_json(paths["metrics_by_month"], by_month)
    write_json(paths["headline"], headline(result))
    write_parquet(paths["predictions"], predictions)
    with atomic_dir(paths["plots"]) as tmp:
        for name, rows in tables.items():
            for scorer in PLOT_SCORERS:  # one file per curve: `dvc plots` draws a line per file
                write_json(tmp / name / f"{scorer}.json", [r for r in rows if r["model"] == scorer])
    with atomic_dir(paths["figures"]) as tmp:
        render_figures(tables, tmp)
        if "backtest" in result:
            render_backtest(result["backtest"], tmp / "backtest.png")


def champion_metric(
    features_path: Path, test: pd.DataFrame, capacity: pd.Series, settings: Evaluate
):
    """Scores another model (the MLflow champion) on exactly these test rows and lists, and
    returns its gate metric; None when the features file lacks its inputs."""

    def score(model) -> float | None:
        missing = [f for f in model.features if f not in test.columns]
        frame = test
        if missing:
            try:
                extra = read_columns(features_path, missing, test["as_of"].unique())
            except SafetynetError:
                return None
            frame = test.merge(extra, on=["child_pid", "as_of"], how="left", validate="one_to_one")
        block = score_block(test, model.predict_proba(frame), capacity, settings, True)
        return block[settings.gate_metric]

    return score


def run(
    features_path,
    interim_dir,
    models_dir,
    metrics_path,
    metrics_by_month_path,
    plots_dir,
    figures_dir,
    predictions_path,
    headline_path,
    params: Params,
) -> dict:
    """Evaluate the trained model and the baselines on the test period; write reports; gate."""
    models_dir, interim_dir, features_path = Path(models_dir), Path(interim_dir), Path(features_path)
    summary = read_train_summary(models_dir)
    candidates, train, history = load_frames(features_path, summary,
                                             max(params.evaluate.peer_max_rows, params.evaluate.logistic_max_rows),
                                             params.base.seed)  # fmt: skip
    children = read_children(interim_dir)
    test = with_directors(select_test_rows(candidates, summary["split"]["test"]), children)
    capacity = capacity_by_list(test, children, params.base.children_per_caseworker)
    model = CalibratedModel.from_dir(models_dir)
    calibrated = np.asarray(model.calibrated(test), dtype="float64")  # scored once: 2M rows take 35 s at 1M
    truth = read_truth(interim_dir, summary["split"]["test"])
    scores, probabilistic = compute_scores(test, train, history, truth, model.nowcasted(calibrated, test["as_of"]),
                                           summary, params)  # fmt: skip
    result = evaluate_scores(test, scores, probabilistic, capacity, params.evaluate)
    result["nowcast"] = nowcast.effect(model.nowcast, test["as_of"], test["label"].to_numpy(), calibrated,
                                       params.evaluate.ece_bins)  # fmt: skip
    if "backtest" in summary:
        result["backtest"] = summary["backtest"]
    tables = plot_tables(test, scores, probabilistic, capacity, params.evaluate.ece_bins)
    paths = {
        "metrics": Path(metrics_path),
        "metrics_by_month": Path(metrics_by_month_path),
        "plots": Path(plots_dir),
        "figures": Path(figures_dir),
        "predictions": Path(predictions_path),
        "headline": Path(headline_path),
    }
    write_outputs(paths, result, tables, build_predictions(test, scores[MODEL], capacity))
    decision = promotion.write_promotion(models_dir, result["gate"], summary["split"]["test"])
    if not decision["passed"]:
        log.warning("GATE FAILED: %s; the watchlist stage will refuse this model", decision["reason"])
    artifacts = {name: paths[name] for name in ("metrics", "metrics_by_month", "plots", "figures")}
    mirror = promotion.mirror(
        models_dir,
        result,
        promotion.mlflow_metrics(result),
        artifacts,
        champion_metric(features_path, test, capacity, params.evaluate),
    )
    log.info(
        "test: model %s", {m: result["test"][m] for m in ("auc_roc", "precision_at_k", "k", "n")}
    )
    return {"n": len(test), "gate_passed": decision["passed"], "champion": mirror["alias"]}
