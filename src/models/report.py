"""What evaluate writes beside the full metrics: the per-month split and the headline.

`reports/metrics.json` holds every pooled block and the backtest; the months go to
`reports/metrics_by_month.json`; `reports/headline.json`, the file `dvc metrics show` prints,
holds the few numbers a reader needs first.
"""

from __future__ import annotations


def split_per_month(result: dict) -> tuple[dict, dict]:
    """metrics.json keeps pooled blocks (readable in `dvc metrics show`); months go aside."""
    pooled = {**result, "test": dict(result["test"]), "baselines": {}}
    by_month = {"test": pooled["test"].pop("per_month"), "baselines": {}}
    for name, block in result["baselines"].items():
        pooled["baselines"][name] = dict(block)
        by_month["baselines"][name] = pooled["baselines"][name].pop("per_month")
    return pooled, by_month


HEADLINE = ("auc_roc", "auc_pr", "precision_at_k", "recall_at_k", "ece", "observed_to_predicted")


def headline(result: dict) -> dict:
    """The few numbers `dvc metrics show` prints: the model, what it must beat, the backtest."""
    baselines = result["baselines"]
    out = {"model": {name: result["test"][name] for name in HEADLINE}}
    out["precision_at_k"] = {name: block["precision_at_k"] for name, block in baselines.items()}
    out["worst_month_ece"] = max((m["ece"] for m in result["test"]["per_month"].values()
                                  if m["ece"] is not None), default=None)  # fmt: skip
    if "backtest" in result:
        out["backtest"] = {name: result["backtest"]["summary"][name]["mean"] for name in ("auc_roc", "auc_pr")}
    out["gate_passed"] = result["gate"]["passed"]
    return out
