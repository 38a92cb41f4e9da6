"""fairness.json dict -> PNG figures (one per attribute) and a self-contained index.html.

Rendering only: it reads the report dict (`src.audit.fairness_audit.audit_to_dict`), never the
predictions. Figures are built with `src.figures` (no pyplot state, no PNG metadata).
"""

from __future__ import annotations

import base64
import math
from pathlib import Path

import jinja2
from matplotlib.figure import Figure

from src.audit.fairness_cells import CANNOT_TELL, SERVED_BETTER, SERVED_WORSE, WITHIN
from src.audit.fairness_measurement import SOURCES
from src.figures import figure, png_bytes

TEMPLATES = Path(__file__).parent / "templates"
FIGURE_DPI = 110
AXIS = (0.25, 4.0)  # ratios beyond are drawn as an arrow at the edge, labelled with their value
METRIC_NAMES = {
    "selection_rate": "Selection rate", "precision": "Precision (PPV)", "recall": "Recall (TPR)",
    "fpr": "False positive rate", "fnr": "False negative rate", "fdr": "False discovery rate",
    "for": "False omission rate", "auc_roc": "AUC", "calibration_ratio": "Observed / predicted",
}  # fmt: skip
VERDICT_COLOURS = {SERVED_WORSE: "#b2182b", SERVED_BETTER: "#2166ac", WITHIN: "#1b7837",
                   CANNOT_TELL: "#e08214"}  # fmt: skip
VERDICT_CLASSES = {SERVED_WORSE: "worse", SERVED_BETTER: "better", WITHIN: "within", CANNOT_TELL: "cannot"}
MONTHS_FIGURE = "fairness_by_month.png"


def figure_name(attribute: str) -> str:
    return "fairness_" + attribute.replace("|", "_x_") + ".png"


def render_report(report: dict, out_dir: Path) -> None:
    """Write one PNG per attribute, the per-month small multiples and index.html (figures embedded)."""
    out_dir = Path(out_dir)
    figures = {}
    for attribute in report["references"]:
        rows = _pooled(report, attribute)
        if rows:
            figures[attribute] = _write(out_dir / figure_name(attribute), ratio_figure(attribute, rows, report))
    monthly = months_figure(report)
    if monthly is not None:
        figures[MONTHS_FIGURE] = _write(out_dir / MONTHS_FIGURE, monthly)
    (out_dir / "index.html").write_text(render_html(report, figures), encoding="utf-8")


def _write(path: Path, fig: Figure) -> str:
    png = png_bytes(fig, dpi=FIGURE_DPI)
    path.write_bytes(png)
    return base64.b64encode(png).decode("ascii")


def _pooled(report: dict, attribute: str) -> list[dict]:
    return [r for r in report["primary"] if r["attribute"] == attribute and r["month"] == ""]


def draw_ratio(ax, x, y, low, high, colour) -> None:
    """One ratio with its interval on a log axis; beyond AXIS, an arrow at the edge with the value."""
    lo_axis, hi_axis = AXIS
    if low is not None and high is not None:
        ax.plot([_clip(low), _clip(high)], [y, y], color=colour, linewidth=2, zorder=2)
    if x is None:
        return
    if x < lo_axis or x > hi_axis:
        edge = lo_axis if x < lo_axis else hi_axis
        ax.plot([edge], [y], "<" if x < lo_axis else ">", color=colour, markersize=8, zorder=3)
        ax.annotate(f"{x:.2f}", (edge, y), textcoords="offset points", xytext=(8 if x < lo_axis else -30, 4),
                    fontsize=7, color=colour)  # fmt: skip
    else:
        ax.plot([x], [y], "o", color=colour, markersize=5, zorder=3)


def _clip(value):
    return min(max(value, AXIS[0]), AXIS[1])


def _log_axis(ax, tolerance) -> None:
    low, high = tolerance
    ax.axvspan(low, high, color="#e6f2e6", zorder=0)
    ax.axvline(1.0, color="#555555", linewidth=0.8, zorder=1)
    ax.set_xscale("log")
    ax.set_xlim(AXIS[0] * 0.9, AXIS[1] * 1.1)
    ax.set_xticks([0.25, 0.5, low, 1, high, 2, 4], labels=["0.25", "0.5", f"{low:g}", "1", f"{high:g}", "2", "4"],
                  fontsize=7)  # fmt: skip
    ax.minorticks_off()


def ratio_figure(attribute: str, rows: list[dict], report: dict) -> Figure:
    """Recall ratio to the reference per group with its interval, coloured by verdict."""
    fig, axes = figure(6.5, 1.2 + 0.32 * len(rows), squeeze=False)
    ax = axes[0][0]
    _log_axis(ax, report["settings"]["tolerance"])
    for y, row in enumerate(reversed(rows)):
        draw_ratio(ax, row["ratio"], y, row["ci_low"], row["ci_high"], VERDICT_COLOURS[row["verdict"]])
    ax.set_yticks(range(len(rows)), labels=[r["group"] for r in reversed(rows)], fontsize=8)
    reference = report["references"][attribute]["group"]
    ax.set_title(f"{attribute}: recall at the watchlist cut ÷ {reference} (95% interval)", fontsize=9)
    return fig


def months_figure(report: dict) -> Figure | None:
    """Small multiples: one panel per attribute, the recall ratio of each group in each test month."""
    monthly = [r for r in report["primary"] if r["month"] != ""]
    attributes = [a for a in report["references"] if any(r["attribute"] == a for r in monthly)]
    if not attributes:
        return None
    months = sorted({r["month"] for r in monthly})
    cols = min(3, len(attributes))
    nrows = -(-len(attributes) // cols)
    fig, axes = figure(4.2 * cols, 2.6 * nrows, nrows=nrows, ncols=cols, squeeze=False)
    for k, ax in enumerate(ax for row in axes for ax in row):
        if k >= len(attributes):
            ax.set_axis_off()
            continue
        rows = [r for r in monthly if r["attribute"] == attributes[k]]
        for group in sorted({r["group"] for r in rows}):
            mine = {r["month"]: r["ratio"] for r in rows if r["group"] == group}
            ys = [_clip(mine[m]) if mine.get(m) is not None else math.nan for m in months]
            ax.plot(range(len(months)), ys, marker="o", markersize=3, linewidth=1, label=group)
        ax.axhspan(*report["settings"]["tolerance"], color="#e6f2e6", zorder=0)
        ax.axhline(1.0, color="#555555", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_ylim(AXIS[0] * 0.9, AXIS[1] * 1.1)
        ax.set_xticks(range(len(months)), labels=months, fontsize=7)
        ax.minorticks_off()
        ax.set_title(attributes[k], fontsize=9)
        if len({r["group"] for r in rows}) <= 8:
            ax.legend(fontsize=6, loc="upper right")
    fig.suptitle("Recall ratio to the reference, per test month (clipped to 0.25-4)", fontsize=10)
    return fig


# ---------------------------------------------------------------------------- HTML


def _fmt_pct(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}%"


def _fmt_num(value, digits: int = 2) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _fmt_int(value) -> str:
    return "–" if value is None else f"{int(round(value)):,}"


def render_html(report: dict, figures: dict[str, str]) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=_fmt_pct, num=_fmt_num, count=_fmt_int)
    pooled = [r for r in report["primary"] if r["month"] == ""]
    monthly = {}
    for r in report["primary"]:
        if r["month"]:
            monthly.setdefault((r["attribute"], r["group"]), {})[r["month"]] = r
    months = sorted({r["month"] for r in report["primary"] if r["month"]})
    persistent = {(r["attribute"], r["group"]) for r in report["persistent"]}
    discovered = [d for d in report["discoveries"] if d["discovered"]]
    return env.get_template("fairness.html.j2").render(
        report=report, h=report["headline"], pooled=pooled, monthly=monthly, months=months,
        persistent=persistent, discovered=discovered, figures=figures, figure_names={a: figure_name(a) for a in figures},
        months_figure=MONTHS_FIGURE, metric_names=METRIC_NAMES, colours=VERDICT_COLOURS, classes=VERDICT_CLASSES,
        sources={k: v[1] for k, v in SOURCES.items()},
        flagged=[m for m in report["measurement"] if m["flagged"]],
    )  # fmt: skip
