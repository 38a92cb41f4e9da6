"""Per-child SHAP contributions in long form, for the watchlist's waterfall (pure core).

One row per explained child and shown feature: the `top` features by |SHAP| (rank 1 = the
largest), then one "other features" row holding the sum of the rest, so that
base_log_odds + sum(shap) is the child's raw score (log-odds) exactly as the model gives it.
The values read in words through the catalogue (value_zh / value_en).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.delivery.reasons import render_values
from src.features import catalogue

OTHER = "other_features"
COLUMNS = ("child_pid", "rank", "feature", "shap", "value_zh", "value_en", "base_log_odds")


def other_label(n: int, language: str) -> str:
    return f"其余 {n} 项特征" if language == "zh" else f"{n} other features"


def contribution_table(
    pids: pd.Series, X: pd.DataFrame, contrib: np.ndarray, base: np.ndarray, top: int = 10
) -> pd.DataFrame:
    """Long table (COLUMNS) of the top `top` contributions per row plus the remainder row."""
    n, n_features = contrib.shape
    top = min(top, n_features)
    order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :top]
    shown = np.take_along_axis(contrib, order, axis=1)
    rest = contrib.sum(axis=1) - shown.sum(axis=1)
    rows = np.repeat(np.arange(n), top)
    cols = order.ravel()
    features = np.array(X.columns, dtype=object)
    value_zh = np.empty(n * top, dtype=object)
    value_en = np.empty(n * top, dtype=object)
    for j in np.unique(cols):
        at = np.flatnonzero(cols == j)
        for language, sink in (("zh", value_zh), ("en", value_en)):
            unknown = catalogue.render_reason(features[j], np.nan, language)
            sink[at] = render_values(features[j], X.iloc[rows[at], j], language, unknown)
    ranked = pd.DataFrame({
        "child_pid": pids.to_numpy()[rows], "rank": np.tile(np.arange(1, top + 1), n),
        "feature": features[cols], "shap": shown.ravel(), "value_zh": value_zh,
        "value_en": value_en, "base_log_odds": base[rows],
    })  # fmt: skip
    remainder = pd.DataFrame({
        "child_pid": pids.to_numpy(), "rank": top + 1, "feature": OTHER, "shap": rest,
        "value_zh": other_label(n_features - top, "zh"),
        "value_en": other_label(n_features - top, "en"), "base_log_odds": base,
    })  # fmt: skip
    table = pd.concat([ranked, remainder], ignore_index=True)
    table = table.sort_values(["child_pid", "rank"], kind="stable").reset_index(drop=True)
    table["rank"] = table["rank"].astype("int16")
    return table[list(COLUMNS)]

