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

from src.audit.fairness_metrics import CAPACITY, PRIMARY_METRICS, RATE_METRICS, verdict
from src.figures import figure, png_bytes

TEMPLATES = Path(__file__).parent / "templates"
FIGURE_DPI = 110
FIGURE_METRICS = ("recall", "fnr", "precision", "selection_rate", "fpr")
METRIC_NAMES = {
    "selection_rate": "Selection rate",
    "precision": "Precision (PPV)",
    "recall": "Recall (TPR)",
    "fpr": "False positive rate",
    "fnr": "False negative rate",
    "fdr": "False discovery rate",
    "for": "False omission rate",
    "auc_roc": "AUC",
    "calibration_ratio": "Observed / predicted",
}
VERDICT_COLOURS = {
    "within": "#1b7837",
    "inconclusive": "#e08214",
    "outside": "#b2182b",
    "undefined": "#777777",
}


def figure_name(attribute: str) -> str:
    return "fairness_" + attribute.replace("|", "_x_") + ".png"


def render_report(report: dict, out_dir: Path) -> None:
    """Write one PNG per attribute and index.html (figures embedded, so the page travels alone)."""
    out_dir = Path(out_dir)
    figures = {}
    for attribute in report["references"]:
        fig = attribute_figure(report, attribute)
        if fig is None:
            continue
        png = png_bytes(fig, dpi=FIGURE_DPI)
        (out_dir / figure_name(attribute)).write_bytes(png)
        figures[attribute] = base64.b64encode(png).decode("ascii")
    (out_dir / "index.html").write_text(render_html(report, figures), encoding="utf-8")


def _capacity_rows(report: dict, attribute: str) -> tuple[list[str], dict, dict]:
    """Groups (reference first), their ratios {metric: {group: row}} and group values."""
    ratios: dict[str, dict] = {}
    for row in report["disparities"]:
        if row["attribute"] == attribute and row["operating_point"] in (CAPACITY,):
            ratios.setdefault(row["metric"], {})[row["group"]] = row
    values: dict[str, dict] = {}
    for row in report["groups"]:
        if row["attribute"] == attribute and row["operating_point"] in ("", CAPACITY):
            values.setdefault(row["group"], {})[row["metric"]] = row
    reference = report["references"][attribute]["group"]
    groups = sorted(values, key=lambda g: (g != reference, g))
    return groups, ratios, values


def attribute_figure(report: dict, attribute: str) -> Figure | None:
    """Ratio to the reference group with its CI per metric, plus observed / predicted; None if nothing to plot."""
    groups, ratios, values = _capacity_rows(report, attribute)
    if not groups:
        return None
    low, high = report["settings"]["tolerance"]
    reference = report["references"][attribute]["group"]
    panels = [*FIGURE_METRICS, "calibration_ratio"]
    fig, axes = figure(
        3.0 * len(panels),
        1.1 + 0.38 * len(groups),
        nrows=1,
        ncols=len(panels),
        sharey=True,
        squeeze=False,
    )
    positions = list(range(len(groups)))[::-1]
    for ax, metric in zip(axes[0], panels, strict=True):
        ax.axvspan(low, high, color="#e6f2e6", zorder=0)
        ax.axvline(1.0, color="#555555", linewidth=0.8, zorder=1)
        for y, group in zip(positions, groups, strict=True):
            point, lo, hi, colour = _plotted_value(
                metric, group, reference, ratios, values, (low, high)
            )
            if point is None:
                continue
            if lo is not None and hi is not None:
                ax.plot([lo, hi], [y, y], color=colour, linewidth=2, zorder=2)
            ax.plot([point], [y], "o", color=colour, markersize=5, zorder=3)
        ax.set_xscale("log")
        ax.set_xlim(0.25, 4.0)
        ax.set_xticks(
            [0.25, 0.5, low, 1, high, 2, 4],
            labels=["0.25", "0.5", f"{low:g}", "1", f"{high:g}", "2", "4"],
            fontsize=7,
        )
        ax.minorticks_off()
        ax.set_title(METRIC_NAMES[metric] + (" *" if metric in PRIMARY_METRICS else ""), fontsize=9)
    axes[0][0].set_yticks(
        positions, labels=[_group_label(g, report, attribute) for g in groups], fontsize=8
    )
    fig.suptitle(
        f"{attribute}: ratio to the reference group at the watchlist cut-off (95% CI; * = primary)",
        fontsize=10,
    )
    return fig


def _plotted_value(metric, group, reference, ratios, values, tolerance):
    """(point, ci_low, ci_high, colour) of one marker; point None = nothing to draw."""
    if (
        metric == "calibration_ratio"
    ):  # compared with 1 (perfect calibration), not with a reference group
        row = values[group].get(metric)
        if row is None or row["value"] is None:
            return None, None, None, None
        colour = VERDICT_COLOURS[
            verdict(row["value"], _nan(row["ci_low"]), _nan(row["ci_high"]), tolerance)
        ]
        return _clip(row["value"]), _clip(row["ci_low"]), _clip(row["ci_high"]), colour
    if group == reference:
        return 1.0, None, None, "#333333"
    row = ratios.get(metric, {}).get(group)
    if row is None or row["ratio"] is None:
        return None, None, None, None
    return (
        _clip(row["ratio"]),
        _clip(row["ci_low"]),
        _clip(row["ci_high"]),
        VERDICT_COLOURS[row["verdict"]],
    )


def _nan(value) -> float:
    return math.nan if value is None else value


def _clip(value):
    return None if value is None else min(max(value, 0.25), 4.0)


def _group_label(group: str, report: dict, attribute: str) -> str:
    return f"{group} (reference)" if group == report["references"][attribute]["group"] else group


# ---------------------------------------------------------------------------- HTML


def _fmt_pct(value) -> str:
    return (
        "–"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{100 * value:.1f}%"
    )


def _fmt_num(value, digits: int = 2) -> str:
    return (
        "–"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}f}"
    )


def summary_rows(report: dict) -> list[dict]:
    """One row per compared group at the watchlist cut-off: the verdict table's content."""
    rows: dict[tuple, dict] = {}
    for row in report["disparities"]:
        if row["operating_point"] != CAPACITY:
            continue
        key = (row["attribute"], row["group"])
        rows.setdefault(
            key,
            {"attribute": row["attribute"], "group": row["group"], "reference": row["reference"]},
        )
        rows[key][row["metric"]] = row
    order = {a: i for i, a in enumerate(report["references"])}
    return sorted(rows.values(), key=lambda r: (order[r["attribute"]], r["group"]))


def attribute_tables(report: dict) -> list[dict]:
    """Per attribute: group values at every operating point, for the detail tables."""
    points = [CAPACITY, *(f"top_{p:g}_pct" for p in report["settings"]["top_pcts"])]
    tables = []
    for attribute, reference in report["references"].items():
        groups, _, values = _capacity_rows(report, attribute)
        by_point = {p: {} for p in points}
        for row in report["groups"]:
            if row["attribute"] == attribute and row["operating_point"] in by_point:
                by_point[row["operating_point"]].setdefault(row["group"], {})[row["metric"]] = row
        tables.append(
            {
                "attribute": attribute,
                "reference": reference,
                "groups": groups,
                "free": values,
                "points": by_point,
            }
        )
    return tables


def render_html(report: dict, figures: dict[str, str]) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=_fmt_pct, num=_fmt_num)
    return env.get_template("fairness.html.j2").render(
        report=report,
        h=report["headline"],
        summary=summary_rows(report),
        tables=attribute_tables(report),
        figures=figures,
        figure_names={a: figure_name(a) for a in figures},
        metric_names=METRIC_NAMES,
        rate_metrics=RATE_METRICS,
        colours=VERDICT_COLOURS,
        capacity=CAPACITY,
    )
