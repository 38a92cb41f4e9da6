"""SHAP's own summary plots of the explained children, as static PNG (no JS, no CDN).

A beeswarm of the top features and one dependence plot per top numeric feature, drawn by
shap's matplotlib functions. Aggregates only: every dot is an anonymous child, no identifier
is drawn or written. shap draws on pyplot's current figure and shuffles dots with NumPy's
global generator, so each plot gets its own figure (closed afterwards) and a fixed seed
(the caller's generator state is restored): identical data gives identical bytes.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import shap

from src import figures  # sets the headless backend before pyplot is imported
from src.features import catalogue

TOP_FEATURES = 15  # features in the beeswarm
TOP_DEPENDENCE = 4  # numeric features with a dependence plot


def numeric_view(X: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as their codes (NaN when missing), so shap can colour by value."""
    out = X.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.CategoricalDtype):
            codes = out[name].cat.codes.astype("float64")
            out[name] = codes.where(codes >= 0)
    return out.astype("float64")


def top_features(shap_frame: pd.DataFrame, n: int, numeric_only: bool = False) -> list[str]:
    """Features by mean |SHAP| (ties by name)."""
    mean_abs = shap_frame.abs().mean()
    names = sorted(mean_abs.index, key=lambda f: (-mean_abs[f], f))
    if numeric_only:
        names = [f for f in names if catalogue.spec(f).kind != "categorical"]
    return names[:n]


@contextmanager
def seeded_pyplot(width: float, height: float):
    from matplotlib import pyplot as plt  # here: src.figures has chosen the headless backend

    state = np.random.get_state()
    np.random.seed(0)
    fig = plt.figure(figsize=(width, height))
    try:
        with warnings.catch_warnings():  # NumPy's notice that shap relies on the global RNG
            warnings.simplefilter("ignore", FutureWarning)
            yield fig
    finally:
        np.random.set_state(state)
        plt.close(fig)


def plot_beeswarm(shap_frame: pd.DataFrame, X: pd.DataFrame, path: Path) -> None:
    with seeded_pyplot(9, 7) as fig:
        shap.summary_plot(shap_frame.to_numpy(), numeric_view(X), max_display=TOP_FEATURES,
                          show=False, plot_size=None, color_bar=True)  # fmt: skip
        fig.suptitle(f"SHAP (log-odds) of the {len(X)} children a list can show")
        figures.save(fig, path, dpi=100)


def plot_dependence(shap_frame: pd.DataFrame, X: pd.DataFrame, folder: Path) -> None:
    """One PNG per top numeric feature: value vs its SHAP, in folder/<feature>.png."""
    folder.mkdir(parents=True, exist_ok=True)
    view = numeric_view(X)
    for name in top_features(shap_frame, TOP_DEPENDENCE, numeric_only=True):
        with seeded_pyplot(6, 4.5) as fig:
            ax = fig.add_subplot()
            shap.dependence_plot(name, shap_frame.to_numpy(), view, interaction_index=None,
                                 show=False, ax=ax)  # fmt: skip
            ax.set_title(f"{name}: value vs SHAP (log-odds)")
            figures.save(fig, folder / f"{name}.png", dpi=100)
