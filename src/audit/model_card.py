"""metrics.json + fairness.json + features_summary.json + models/train_summary.json -> model_card.md and .html.

The card is rendered from one context dict: Markdown through a jinja2 template, HTML from that
Markdown (markdown-it, raw HTML disabled, so any value a person typed is shown as text).
"""

from __future__ import annotations

import html
import logging
import math
import os
from pathlib import Path

import jinja2
from markdown_it import MarkdownIt

from src.atomic import write_text
from src.delivery.reasons import warning_sign
from src.features import catalogue
from src.models.promotion import read_promotion
from src.run_facts import read_monitoring_alerts, read_stage_json, read_train_summary

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
SOURCE_TABLES = (
    ("children", "child-welfare registry (civil affairs)", "required"),
    ("welfare_events", "benefits: enrolment, payments, recertification, suspension", "required"),
    ("school_enrollment", "student registration events (education)", "required"),
    ("school_absences", "absences recorded by schools (education)", "required"),
    ("school_calendar", "school days", "optional"),
    ("medical_events", "health, medical insurance and rehabilitation", "required"),
    ("casework_visits", "visits and concerns recorded by child directors", "required"),
    ("protection_events", "safety and guardianship events", "optional"),
    ("registry_history", "changes of category, guardian type and disability level", "optional"),
)
LABEL_RULES = {
    "benefit_lapse": "a welfare `suspended` or `terminated` event for a procedural reason "
    "(recert_missed, documents_missing, contact_lost, other); legitimate exits are not lapses",
    "school_dropout": "an enrolment `dropped_out` event, or at least {streak} consecutive school days "
    "of full-day unexcused absence",
    "medical_lapse": "an `insurance_lapsed` event, or three `rehab_missed` in a row with no `rehab_attended` between",
    "protection_crisis": "a `guardian_lost` or `emergency_placement` event",
}
METRIC_ROWS = (
    ("auc_roc", "AUC (ROC)"),
    ("auc_pr", "Average precision (PR AUC)"),
    ("precision_at_k", "Precision in the watchlist (top k)"),
    ("recall_at_k", "Recall in the watchlist (top k)"),
    ("lift_at_k", "Lift in the watchlist (top k)"),
    ("brier", "Brier score (lower is better)"),
    ("ece", "Expected calibration error (lower is better)"),
)


def features_by_system(protected_as_features: bool, excluded=()) -> list[dict]:
    """The catalogue grouped by protection system, in the order of catalogue.SYSTEMS."""
    inputs = set(catalogue.model_features(protected_as_features, excluded))
    groups = []
    for system, (name_zh, name_en) in catalogue.SYSTEMS.items():
        entries = [
            {
                "name": e.name,
                "description": e.description,
                "actionable": e.actionable,
                "role": e.role,
                "warning_sign": warning_sign(e),
                "model_input": e.name in inputs,
                "missing": e.missing,
            }
            for e in catalogue.CATALOGUE
            if e.system == system
        ]
        if entries:
            groups.append(
                {"system": system, "name_zh": name_zh, "name_en": name_en, "features": entries}
            )
    return groups


def metrics_table(metrics: dict, top_pcts) -> dict:
    """Rows of (label, model value, baseline values) for every metric present in the model block."""
    rows = [*METRIC_ROWS]
    for pct in top_pcts:
        rows += [
            (f"precision@{pct:g}_pct", f"Precision in the top {pct:g}%"),
            (f"recall@{pct:g}_pct", f"Recall in the top {pct:g}%"),
        ]
    model = metrics.get("test", {})
    baselines = metrics.get("baselines", {})
    names = [b for b in ("rules", "logistic", "community", "oracle") if b in baselines]
    names += sorted(b for b in baselines if b not in names)
    table = [
        {
            "label": label,
            "model": model.get(key),
            "baselines": [baselines[b].get(key) for b in names],
        }
        for key, label in rows
        if key in model
    ]
    return {"baselines": names, "rows": table}


def fairness_summary(fairness: dict, link: str) -> dict:
    """What the card says about fairness: the verdict counts (served worse first), the named
    discoveries and thin records in plain words, the missed children, synthetic or real data."""
    settings = fairness.get("settings", {})
    worse = [row for row in fairness.get("primary", [])
             if row.get("month") == "" and row.get("verdict") == "served worse"]  # fmt: skip
    worse.sort(key=lambda r: (r.get("ratio") if r.get("ratio") is not None else 0, r["attribute"], r["group"]))
    return {
        "headline": fairness.get("headline", {}),
        "worse": worse,
        "findings": fairness.get("findings", []),
        "thin_records": fairness.get("thin_records", []),
        "overall": fairness.get("overall", {}),
        "synthetic": settings.get("synthetic"),
        "reference": settings.get("reference", "rest"),
        "suppressed": fairness.get("suppressed", []),
        "tolerance": settings.get("tolerance", [0.8, 1.25]),
        "link": link,
    }


def registry_reading(features_summary: dict) -> dict:
    """How the features read the registry (features_summary's ``registry``; a summary written
    before registry_history existed read it as of export and kept every field)."""
    default = {"history": False, "read": "as_of_export", "mode": "keep", "excluded": []}
    reading = {**default, **features_summary.get("registry", {})}
    reading["excluded_list"] = ", ".join(f"`{_md_escape(name)}`" for name in reading["excluded"])
    return reading


def period_table(train_summary: dict) -> list[dict]:
    split = train_summary.get("split", {})
    counts = train_summary.get("periods", {})
    rows = []
    for name in ("train", "test"):
        dates = split.get(name) or []
        period = counts.get(name, {})
        rows.append({
            "name": name, "first": dates[0] if dates else None, "last": dates[-1] if dates else None,
            "months": len(dates), "rows": period.get("rows"), "prevalence": period.get("prevalence"),
        })  # fmt: skip
    return rows


def build_context(
    metrics, fairness, features_summary, train_summary, params, fairness_link
) -> dict:
    """Everything the card shows, from the stage outputs and params; no identity is read."""
    protected_as_features = params.features.protected_as_features
    return {
        "owner": params.model_card.owner,
        "params": params,
        "periods": period_table(train_summary),
        "export_date": features_summary.get("export_date") or train_summary.get("export_date"),
        "sources": SOURCE_TABLES,
        "label_rules": [
            {
                "name": r,
                "enabled": r in params.label.rules.enabled(),
                "text": LABEL_RULES[r].format(streak=params.label.dropout_streak_days),
                "rate": (features_summary.get("label_rates_observed") or {}).get(r),
            }
            for r in LABEL_RULES
        ],  # fmt: skip
        "label_rate": (features_summary.get("label_rates_observed") or {}).get("label"),
        "features": features_by_system(
            protected_as_features, catalogue.registry_excluded(features_summary)
        ),
        "registry": registry_reading(features_summary),
        "n_features": len(catalogue.CATALOGUE),
        "protected": catalogue.PROTECTED,
        "audit_columns": catalogue.AUDIT_COLUMNS,
        "protected_as_features": protected_as_features,
        "metrics": metrics_table(metrics, params.evaluate.top_pcts),
        "baseline_rows": {"peer": params.evaluate.peer_max_rows, "logistic": params.evaluate.logistic_max_rows},
        "test": metrics.get("test", {}),
        "test_months": len((train_summary.get("split") or {}).get("test") or []),
        "nowcast": metrics.get("nowcast", {}),
        "ratios": (metrics.get("ratios") or {}).get("model_to_oracle", {}),
        "fairness": fairness_summary(fairness, fairness_link),
        "train": train_summary,
        "monitoring_alerts": [],  # run() fills them in from reports/monitoring
    }


# ---------------------------------------------------------------------------- rendering


def _fmt(value, digits: int = 3) -> str:
    if value is None or isinstance(value, bool) or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def _pct(value) -> str:
    return (
        "–"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{100 * value:.1f}%"
    )


def _md_escape(value) -> str:
    """Text safe inside Markdown (tables included): no raw HTML, no table breaks, no links."""
    text = " ".join(str(value).split())
    for char in ("\\", "|", "<", ">", "[", "]", "`", "*"):
        text = text.replace(char, "\\" + char)
    return text


def render_markdown(context: dict) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=False,  # Markdown, not HTML: values go through the `md` filter instead
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(num=_fmt, pct=_pct, md=_md_escape)
    return env.get_template("model_card.md.j2").render(**context)


def render_html(markdown: str, title: str = "safetynet-ews model card", alerts=()) -> str:
    """A self-contained page: inline CSS, no scripts, raw HTML in the Markdown shown as text;
    monitoring `alerts` (escaped) as a red banner on top."""
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    if alerts:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in alerts)
        body = (f'<div class="banner" id="monitoring-alert"><strong>Monitoring: {len(alerts)} threshold(s) '
                f"crossed</strong> (reports/monitoring/index.html)<ul>{items}</ul></div>\n{body}")  # fmt: skip
    return HTML_PAGE.format(title=html.escape(title), body=body)


HTML_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans", "PingFang SC", "Microsoft YaHei", sans-serif;
  margin: 2em auto; max-width: 1000px; padding: 0 1em; color: #222; line-height: 1.5; }}
h1 {{ font-size: 1.7em; }} h2 {{ margin-top: 1.8em; border-bottom: 1px solid #ccc; }}
table {{ border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.55em; vertical-align: top; }}
th {{ background: #f3f3f3; }}
code {{ background: #f4f4f4; padding: 0 0.2em; }}
.banner {{ background: #b2182b; color: #fff; padding: 0.5em 1em; margin: 1em 0; }}
blockquote {{ border-left: 4px solid #b2182b; margin: 1em 0; padding: 0.3em 1em; background: #fdf3f3; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""


# ---------------------------------------------------------------------------- I/O


def run(
    metrics_path, fairness_dir, features_summary_path, models_dir, served_dir, out_md, out_html,
    params, monitoring_dir=None,
) -> dict:
    """Read the stage outputs, write reports/model_card.md and .html atomically."""
    out_md, out_html, fairness_dir = Path(out_md), Path(out_html), Path(fairness_dir)
    metrics = read_stage_json(Path(metrics_path), "evaluate")
    fairness = read_stage_json(fairness_dir / "fairness.json", "fairness")
    features_summary = read_stage_json(Path(features_summary_path), "features")
    train_summary = read_train_summary(models_dir)
    link = Path(os.path.relpath(fairness_dir / "index.html", out_html.parent)).as_posix()
    context = build_context(metrics, fairness, features_summary, train_summary, params, link)
    context["gate"] = read_promotion(Path(models_dir))
    context["served"] = read_stage_json(Path(served_dir) / "train_summary.json", "refit")
    context["monitoring_alerts"] = read_monitoring_alerts(monitoring_dir)
    markdown = render_markdown(context)
    write_text(out_md, markdown)
    write_text(out_html, render_html(markdown, alerts=context["monitoring_alerts"]))
    log.info("model card: %s and %s", out_md, out_html)
    return {"model_card": str(out_md), "html": str(out_html), "gate_passed": context["gate"]["passed"]}
