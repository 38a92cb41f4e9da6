"""contributions.parquet rows -> the geometry of each listed child's SHAP waterfall (drawn as inline SVG).

The explain stage writes, per explained child, its largest contributions (`rank` 1 = largest
|shap|), an `other` row for the remainder, and the model's expected value `base_log_odds`, so
base + the sum of `shap` is the child's raw log-odds. The waterfall starts at the base, adds
one bar per row in rank order (red raises the risk, blue lowers it) and ends at the child's
log-odds. Bars are computed here for all listed children at once (pandas, no per-child
figure) and drawn by the `waterfall` macro of templates/_waterfall.svg.j2: a static SVG in
the page, no script, no CDN, the same bytes for the same data. Hand-drawn SVG rather than one
matplotlib figure per child because a province of 1M children lists ~50,000 children, and a
matplotlib figure costs ~40 ms each (33 minutes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.errors import SafetynetError

CONTRIBUTION_COLUMNS = ("child_pid", "rank", "feature", "shap", "value_zh", "value_en", "base_log_odds")
LABEL_WIDTH, PLOT_WIDTH, ROW_HEIGHT, MARGIN = 330, 300, 22, 48  # SVG pixels
OTHER = {"zh": "其他因素合计", "en": "all other factors"}


def check_contributions(contributions: pd.DataFrame) -> None:
    missing = [c for c in CONTRIBUTION_COLUMNS if c not in contributions.columns]
    if missing:
        raise SafetynetError(
            f"contributions.parquet: missing column(s) {', '.join(missing)}; rerun `dvc repro explain`"
        )


def waterfall_bars(contributions: pd.DataFrame, language: str) -> pd.DataFrame:
    """One row per bar: child_pid, rank, label, shap, its x (pixels) and row (0 = first bar).

    Each child's axis spans from its lowest to its highest running log-odds.
    """
    check_contributions(contributions)
    bars = contributions.sort_values(["child_pid", "rank"], kind="stable").reset_index(drop=True)
    text = bars[f"value_{language}"].fillna("").astype(str)
    other = bars["feature"].eq("other")
    bars["label"] = np.where(other & text.eq(""), OTHER[language], text)
    shap = bars["shap"].to_numpy(dtype=float)
    end = bars.groupby("child_pid", sort=False)["shap"].cumsum().to_numpy() + bars["base_log_odds"].to_numpy()
    start = end - shap
    by_child = bars.groupby("child_pid", sort=False)
    reach = pd.DataFrame({"pid": bars["child_pid"], "lo": np.minimum(start, end), "hi": np.maximum(start, end)})
    lo = reach.groupby("pid", sort=False)["lo"].transform("min").to_numpy()
    hi = reach.groupby("pid", sort=False)["hi"].transform("max").to_numpy()
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    bars["x0"] = LABEL_WIDTH + (np.minimum(start, end) - lo) / span * PLOT_WIDTH
    bars["x1"] = LABEL_WIDTH + (np.maximum(start, end) - lo) / span * PLOT_WIDTH
    bars["width"] = np.maximum(bars["x1"] - bars["x0"], 1.0)
    bars["start_x"] = LABEL_WIDTH + (start - lo) / span * PLOT_WIDTH
    bars["end_x"] = LABEL_WIDTH + (end - lo) / span * PLOT_WIDTH
    bars["end"] = end
    bars["row"] = by_child.cumcount()
    bars["raises"] = shap > 0
    bars["shap_text"] = [f"{v:+.2f}" for v in shap]
    return bars


def waterfalls(contributions: pd.DataFrame, language: str) -> dict[str, dict]:
    """child_pid -> what the SVG macro needs: bars, base and final log-odds and their x, size."""
    if contributions.empty:
        return {}
    bars = waterfall_bars(contributions, language)
    columns = ["label", "shap_text", "x0", "width", "start_x", "end_x", "raises", "row"]
    records = bars[columns].round({"x0": 1, "width": 1, "start_x": 1, "end_x": 1}).to_dict("records")
    firsts = bars.groupby("child_pid", sort=False).head(1)
    lasts = bars.groupby("child_pid", sort=False).tail(1)
    sizes = bars.groupby("child_pid", sort=False).size()
    out: dict[str, dict] = {}
    position = 0
    for pid, size, first, last in zip(
        sizes.index, sizes.to_numpy(), firsts.itertuples(), lasts.itertuples(), strict=True
    ):
        out[pid] = {
            "bars": records[position : position + size],
            "base": f"{first.base_log_odds:.2f}", "base_x": round(first.start_x, 1),
            "final": f"{last.end:.2f}", "final_x": round(last.end_x, 1),
            "width": LABEL_WIDTH + PLOT_WIDTH + 70, "height": (size + 2) * ROW_HEIGHT + MARGIN,
            "row_height": ROW_HEIGHT, "label_width": LABEL_WIDTH,
        }  # fmt: skip
        position += size
    return out
