"""Global SHAP importance of the snapshot: per feature and per protection system.

Aggregates only (mean |SHAP| over the explained children: those a list can show), never a
value per child, so it may go to reports/ and MLflow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from src import figures
from src.features import catalogue


def system_sums(values: np.ndarray, features: list[str]) -> np.ndarray:
    """(N x S) sums of the (N x F) per-feature `values` over each protection system's features,
    in SYSTEMS order. Added column by column in feature order: elementwise additions give the
    same bits on every CPU, where a BLAS product's kernel (and so its rounding) varies by CPU."""
    systems = list(catalogue.SYSTEMS)
    out = np.zeros((values.shape[0], len(systems)))
    for i, name in enumerate(features):
        out[:, systems.index(catalogue.spec(name).system)] += values[:, i]
    return out


def global_importance(shap_frame: pd.DataFrame, as_of: pd.Timestamp) -> dict:
    """Mean |SHAP| per feature and per protection system (no per-child values)."""
    features = list(shap_frame.columns)
    mean_abs = shap_frame.abs().mean() if len(shap_frame) else pd.Series(0.0, index=features)
    per_system_sum = system_sums(shap_frame.to_numpy(), features) if len(shap_frame) else None
    systems = {}
    for j, system in enumerate(catalogue.SYSTEMS):
        members = [f for f in features if catalogue.spec(f).system == system]
        systems[system] = {
            "mean_abs_shap": float(np.abs(per_system_sum[:, j]).mean())
            if per_system_sum is not None
            else 0.0,
            "sum_of_feature_mean_abs_shap": float(mean_abs[members].sum()),
            "n_features": len(members),
        }
    return {
        "as_of": as_of.date().isoformat(),
        "n_explained": len(shap_frame),
        "units": "log-odds (shap.TreeExplainer, tree-path-dependent: equal to LightGBM pred_contrib)",
        "features": {
            f: {"mean_abs_shap": float(mean_abs[f]), "system": catalogue.spec(f).system}
            for f in features
        },
        "systems": systems,
    }


def plot_importance(importance: dict, path: Path, top: int = 20) -> None:
    """Horizontal bars: top features (coloured by system) and the systems."""
    features = sorted(
        importance["features"].items(), key=lambda kv: (-kv[1]["mean_abs_shap"], kv[0])
    )[:top]
    systems = sorted(importance["systems"].items(), key=lambda kv: (-kv[1]["mean_abs_shap"], kv[0]))
    palette = dict(zip(catalogue.SYSTEMS, figures.PALETTE, strict=False))
    fig, (left, right) = figures.figure(12, 6, ncols=2, width_ratios=(3, 2))
    names = [name for name, _ in features][::-1]
    left.barh(names, [v["mean_abs_shap"] for _, v in features][::-1],
              color=[palette[v["system"]] for _, v in features][::-1])  # fmt: skip
    left.set_title("Features: mean |SHAP| (log-odds)")
    right.barh([s for s, _ in systems][::-1], [v["mean_abs_shap"] for _, v in systems][::-1],
               color=[palette[s] for s, _ in systems][::-1])  # fmt: skip
    right.set_title("Protection systems: mean |sum of SHAP|")
    fig.suptitle(f"Global importance at {importance['as_of']} (n = {importance['n_explained']})")
    figures.save(fig, path, dpi=110)
