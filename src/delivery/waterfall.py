"""contributions.parquet rows -> the geometry of each listed child's SHAP waterfall (drawn as inline SVG).

The explain stage writes, per explained child, its largest contributions (`rank` 1 = largest
|shap|), an `other_features` row for the remainder (`contributions.OTHER`), and the model's expected value `base_log_odds`, so
base + the sum of `shap` is the child's raw log-odds. The waterfall starts at the base, adds
one bar per row in rank order (red raises the risk, blue lowers it) and ends at the child's
log-odds. Bars are computed here for all listed children at once (pandas, no per-child
figure) and drawn by `svg_charts` as string-formatted, escaped SVG (a Jinja macro per child
cost ~0.2 ms, 10 s at 50,000 listed children): a static SVG in the page, no script, no
CDN, the same bytes for the same data. Hand-drawn SVG rather than one
matplotlib figure per child because a province of 1M children lists ~50,000 children, and a
matplotlib figure costs ~40 ms each (33 minutes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from markupsafe import escape

from src.delivery.contributions import COLUMNS
from src.delivery.contributions import OTHER as OTHER_FEATURES
from src.delivery.fragments import escaped
from src.delivery.wording import TEXT
from src.errors import SafetynetError

LABEL_WIDTH, PLOT_WIDTH, ROW_HEIGHT, MARGIN, TOP = 330, 300, 22, 48, 24  # SVG pixels
OTHER = {"zh": "其他因素合计", "en": "all other factors"}


def check_contributions(contributions: pd.DataFrame) -> None:
    missing = [c for c in COLUMNS if c not in contributions.columns]
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
    other = bars["feature"].eq(OTHER_FEATURES)
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


def svg_charts(contributions: pd.DataFrame, language: str) -> dict[str, str]:
    """child_pid -> the child's waterfall as a static SVG in `language` (every text escaped).

    Drawn for all listed children at once: each bar's elements are formatted from the
    geometry arrays and joined per child; labels are HTML/XML-escaped (markupsafe, each
    distinct label once), numbers are formatted by Python (the same text a template gives).
    """
    if contributions.empty:
        return {}
    text = TEXT[language]
    bars = waterfall_bars(contributions, language)
    x0, width, end_x, start_x = (np.round(bars[c].to_numpy(dtype=float), 1) for c in ("x0", "width", "end_x", "start_x"))
    y = (TOP + (bars["row"].to_numpy() + 1) * ROW_HEIGHT).tolist()
    colours = np.where(bars["raises"].to_numpy(), "#c0392b", "#2471a3").tolist()
    label_x = LABEL_WIDTH - 6
    pieces = [
        f'<text x="{label_x}" y="{y_ + 15}" font-size="12" text-anchor="end">{label}</text>\n'
        f'<rect x="{a}" y="{y_ + 4}" width="{w}" height="{ROW_HEIGHT - 8}" fill="{colour}"/>\n'
        f'<line x1="{e}" x2="{e}" y1="{y_ + 4}" y2="{y_ + ROW_HEIGHT + 4}" stroke="#999" stroke-dasharray="2,2"/>\n'
        f'<text x="{after}" y="{y_ + 15}" font-size="11" fill="{colour}">{value}</text>\n'
        for label, a, w, e, after, y_, colour, value in zip(
            escaped(bars["label"]), x0.tolist(), width.tolist(), end_x.tolist(), (x0 + width + 4).tolist(),
            y, colours, escaped(bars["shap_text"]), strict=True,
        )
    ]  # fmt: skip
    pids = bars["child_pid"].to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, pids[1:] != pids[:-1]])
    ends = np.r_[starts[1:], len(pids)]
    base = bars["base_log_odds"].to_numpy(dtype=float)[starts]
    base_x = np.round(start_x[starts], 1).tolist()
    final_x = np.round(end_x[ends - 1], 1).tolist()
    final = bars["end"].to_numpy(dtype=float)[ends - 1]
    title, axis = escape(text["waterfall_title"]), escape(text["waterfall_axis"])
    base_label, final_label = escape(text["waterfall_base"]), escape(text["waterfall_final"])
    width_px = LABEL_WIDTH + PLOT_WIDTH + 70
    out: dict[str, str] = {}
    for i, (first, last) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        height = (last - first + 2) * ROW_HEIGHT + MARGIN
        y_final = TOP + (last - first + 1) * ROW_HEIGHT
        out[pids[first]] = "".join([
            f'<svg class="waterfall" width="{width_px}" height="{height}" viewBox="0 0 {width_px} {height}" '
            f'role="img" aria-label="{title}">\n<text x="4" y="14" font-size="12" fill="#444">{axis}</text>\n'
            f'<text x="{label_x}" y="{TOP + 15}" font-size="12" text-anchor="end">{base_label}</text>\n'
            f'<line x1="{base_x[i]}" x2="{base_x[i]}" y1="{TOP + 2}" y2="{TOP + ROW_HEIGHT * 2}" stroke="#666" '
            f'stroke-dasharray="3,2"/>\n<text x="{base_x[i] + 4}" y="{TOP + 15}" font-size="11" fill="#444">'
            f"{base[i]:.2f}</text>\n",
            *pieces[first:last],
            f'<text x="{label_x}" y="{y_final + 15}" font-size="12" font-weight="bold" text-anchor="end">'
            f'{final_label}</text>\n<line x1="{final_x[i]}" x2="{final_x[i]}" y1="{y_final + 2}" '
            f'y2="{y_final + ROW_HEIGHT}" stroke="#1a1a1a" stroke-width="2"/>\n<text x="{final_x[i] + 4}" '
            f'y="{y_final + 15}" font-size="11" font-weight="bold">{final[i]:.2f}</text>\n</svg>',
        ])  # fmt: skip
    return out
