"""Test-period curves of every scorer: the DVC plot tables and the offline PNG figures.

`plot_tables` gives the rows of `reports/plots/<plot>/<scorer>.json` (drawn by `dvc plots`
when online); `render_figures` draws the same tables as PNG (`reports/figures/`) with
`src.figures`, so the report also works offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from src import figures
from src.atomic import json_numbers
from src.delivery.capacity import LIST_KEYS, list_ids
from src.models import metrics

PLOT_POINTS = 201


def rows_with_score(test: pd.DataFrame, score: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows a partial scorer (the oracle: truth may lack a row) can score."""
    known = ~np.isnan(score)
    if known.all():
        return test, score
    return test.loc[known].reset_index(drop=True), score[known]


def _thin(table: pd.DataFrame) -> pd.DataFrame:
    """At most PLOT_POINTS rows of a curve, evenly spread, keeping both ends."""
    if len(table) <= PLOT_POINTS:
        return table
    return table.iloc[np.unique(np.linspace(0, len(table) - 1, PLOT_POINTS).round().astype(int))]


def _curve_rows(name: str, table: pd.DataFrame) -> list[dict]:
    table = _thin(table.reset_index(drop=True)).assign(model=name)
    return [json_numbers(row) for row in table.to_dict("records")]


def topk_grid(test: pd.DataFrame, capacity: pd.Series) -> np.ndarray:
    """List sizes for the precision/recall-vs-k plot: a log grid up to the largest director list,
    plus the median capacity of a list (the operating point's typical k)."""
    largest = int(test.groupby(list(LIST_KEYS), observed=True).size().max())
    grid = np.geomspace(1, largest, 40).round().astype(int)
    return np.unique(np.r_[grid, int(np.median(capacity.to_numpy()))])


def topk_rows(
    name: str, test: pd.DataFrame, score: np.ndarray, grid: np.ndarray, capacity: pd.Series
) -> list[dict]:
    """Precision and recall when every (as_of, county_code) list holds k rows, per k in grid."""
    curve = metrics.top_k_curve(test["label"], score, grid, groups=list_ids(test, capacity))
    return [json_numbers(row) for row in curve.assign(model=name).to_dict("records")]


def plot_tables(
    test: pd.DataFrame,
    scores: dict[str, np.ndarray],
    probabilistic: set[str],
    capacity: pd.Series,
    ece_bins: int,
) -> dict[str, list[dict]]:
    """Rows for reports/plots/{roc,precision_recall,calibration,topk}.json; `model` names the curve."""
    grid = topk_grid(test, capacity)
    tables: dict[str, list[dict]] = {
        "roc": [],
        "precision_recall": [],
        "calibration": [],
        "topk": [],
    }
    for name, all_scores in scores.items():
        rows, score = rows_with_score(test, np.asarray(all_scores, dtype="float64"))
        y = rows["label"].to_numpy(dtype="int64")
        fpr, tpr, _ = roc_curve(y, score)
        tables["roc"] += _curve_rows(name, pd.DataFrame({"fpr": fpr, "tpr": tpr}))
        precision, recall, _ = precision_recall_curve(y, score)
        tables["precision_recall"] += _curve_rows(
            name, pd.DataFrame({"recall": recall, "precision": precision})
        )
        if name in probabilistic:
            calibration = metrics.calibration_table(y, score, ece_bins)
            tables["calibration"] += _curve_rows(
                name, calibration[["mean_predicted", "observed_rate", "n"]]
            )
        tables["topk"] += topk_rows(name, rows, score, grid, capacity)
    return tables


# ---------------------------------------------------------------- figures (matplotlib, offline)

FIGURES = {
    # plot table -> (x, y columns, title, x label, y label)
    "roc": (
        ("fpr",),
        ("tpr",),
        "ROC curve (test period)",
        "false positive rate",
        "true positive rate",
    ),
    "precision_recall": (
        ("recall",),
        ("precision",),
        "Precision-recall (test period)",
        "recall",
        "precision",
    ),
    "calibration": (
        ("mean_predicted",),
        ("observed_rate",),
        "Calibration (test period)",
        "mean predicted probability",
        "observed rate",
    ),
    "topk": (
        ("k", "k"),
        ("precision_at_k", "recall_at_k"),
        "Top-k per director list",
        "list size k per director and month",
        "value",
    ),
}


def render_figures(tables: dict[str, list[dict]], out_dir: Path) -> None:
    """One PNG per plot table, one line per scorer (no timestamps, so identical data -> same bytes)."""
    for name, (xs, ys, title, xlabel, ylabel) in FIGURES.items():
        frame = pd.DataFrame(tables[name])
        fig, ax = figures.figure(6, 4.5)
        groups = frame.groupby("model", sort=False) if not frame.empty else []
        for colour, (model, rows) in enumerate(groups):
            for x, y in zip(xs, ys, strict=True):
                ax.plot(
                    rows[x],
                    rows[y],
                    "--" if y == "recall_at_k" else "-",
                    color=f"C{colour}",  # one colour per scorer, also for its two top-k lines
                    label=model if len(ys) == 1 else f"{model}: {y}",
                    marker="o" if name == "calibration" else None,
                )
        if name in ("roc", "calibration"):
            ax.plot([0, 1], [0, 1], ":", color="grey", linewidth=1)
        if name == "topk":
            ax.set_xscale("log")
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        ax.legend(fontsize=7)
        figures.save(fig, out_dir / f"{name}.png")


def render_backtest(report: dict, path: Path) -> None:
    """Per fold: the model's AUC and AUC-PR (left); each calibrator's ECE, fitted on the
    previous fold and judged on this one (right)."""
    folds = report["folds"]
    labels = [f["window"][0] for f in folds]
    fig, (left, right) = figures.figure(10, 4, ncols=2)
    for colour, name in enumerate(("auc_roc", "auc_pr", "precision@5_pct")):
        left.plot(labels, [f[name] for f in folds], "o-", color=f"C{colour}", label=name)
    left.set(title="Backtest folds (rolling origin)", xlabel="fold window", ylabel="value")
    left.legend(fontsize=7)
    compared = report["calibration_comparison"]
    for colour, method in enumerate(("isotonic", "platt", "beta")):
        right.plot(labels[1:], [row[method]["ece"] for row in compared], "o-", color=f"C{colour}",
                   label=method + (" (used)" if method == report["calibration"] else ""))  # fmt: skip
    right.set(title="Calibrator fitted on the previous fold", xlabel="fold window", ylabel="ECE")
    right.legend(fontsize=7)
    for axes in (left, right):
        axes.tick_params(axis="x", labelrotation=30, labelsize=7)
    figures.save(fig, path)
