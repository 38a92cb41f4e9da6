"""SHAP's own plots: static PNG, identical bytes for identical data, no change to the global RNG."""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.delivery import shap_plots


def data(n=80):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({
        "unexcused_days_90d": rng.poisson(2, n).astype(float),
        "days_since_last_payment": rng.integers(0, 90, n).astype(float),
        "enrollment_status": pd.Categorical(rng.choice(["enrolled", "dropped_out"], n),
                                            categories=["enrolled", "dropped_out", "no_record"]),
    })  # fmt: skip
    shap_frame = pd.DataFrame(rng.normal(0, [0.5, 0.2, 0.1], (n, 3)), columns=X.columns)
    return shap_frame, X


def test_plots_are_png_and_byte_identical(tmp_path):
    shap_frame, X = data()
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    runs = []
    for k in range(2):
        shap_plots.plot_beeswarm(shap_frame, X, tmp_path / f"b{k}.png")
        shap_plots.plot_dependence(shap_frame, X, tmp_path / f"d{k}")
        runs.append([(tmp_path / f"b{k}.png").read_bytes(),
                     *(p.read_bytes() for p in sorted((tmp_path / f"d{k}").glob("*.png")))])  # fmt: skip
    assert runs[0] == runs[1] and runs[0][0].startswith(b"\x89PNG")
    # categorical features get no dependence plot; numeric ones by mean |SHAP|
    assert sorted(p.name for p in (tmp_path / "d0").iterdir()) == [
        "days_since_last_payment.png", "unexcused_days_90d.png"]  # fmt: skip
    assert (np.random.get_state()[1] == before).all()


def test_numeric_view_codes_categories_and_keeps_missing():
    _, X = data(4)
    X.loc[0, "enrollment_status"] = np.nan
    view = shap_plots.numeric_view(X)
    assert np.isnan(view.loc[0, "enrollment_status"]) and view.dtypes.eq("float64").all()
