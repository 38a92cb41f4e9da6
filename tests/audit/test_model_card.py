"""Model card: every required section renders from small fake inputs; HTML is self-contained and escaped."""

from __future__ import annotations

import json
import re

import pytest

from src.audit import model_card
from src.config import load_params
from src.errors import SafetynetError
from tests.params import PARAMS_FILE

SECTIONS = (
    "## Intended use and users",
    "## Out-of-scope uses",
    "## Data sources and periods",
    "## Label and cohort",
    "## Features by protection system",
    "## Protected attributes and how they are used",
    "## Performance on the test period, against baselines",
    "## Fairness summary",
    "## Known limitations",
    "## Provenance",
)


def block(auc: float) -> dict:
    return {"auc_roc": auc, "auc_pr": 0.3, "brier": 0.05, "ece": 0.012, "precision_at_k": 0.41,
            "recall_at_k": 0.12, "lift_at_k": 3.2, "precision@5_pct": 0.3, "recall@5_pct": 0.2,
            "k": 120, "prevalence": 0.08, "n": 5000}  # fmt: skip


def write_inputs(tmp_path, owner_hint: str = "", registry: dict | None = None, released: bool = False) -> dict:
    reports, models, fair = (
        tmp_path / "reports",
        tmp_path / "models",
        tmp_path / "reports" / "fairness",
    )
    fair.mkdir(parents=True)
    models.mkdir()
    metrics = {
        "test": block(0.81),
        "baselines": {
            "rules": block(0.64),
            "logistic": block(0.77),
            "community": block(0.6),
            "oracle": block(0.9),
        },
        "ratios": {"model_to_oracle": {"auc_roc": 0.9}},
        "gate": {"metric": "precision_at_k", "model": 0.41, "rules": 0.3, "passed": True},
        "nowcast": {"2025-01-01": {"ratio": 0.87, "from": ["2024-11-01", "2024-12-01"],
                                   "ece_calibrated": 0.041, "ece_nowcast": 0.017,
                                   "observed_to_predicted_calibrated": 0.8,
                                   "observed_to_predicted_nowcast": 0.93}},
    }
    fairness = {
        "settings": {"tolerance": [0.8, 1.25], "reference": "rest", "synthetic": True},
        "headline": {"served_worse": 2, "served_better": 1, "within_tolerance": 1, "cannot_tell": 1,
                     "discoveries": 1, "subgroups_tested": 12, "sources_flagged": 1, "suppressed_cells": 1},
        "overall": {"children_with_outcome": 1234, "children_missed": 987, "child_months_missed": 1500, "positives": 2000},
        "primary": [
            {"attribute": "hukou", "group": "rural", "month": "", "ratio": 0.62, "ci_low": 0.5, "ci_high": 0.75,
             "verdict": "served worse"},
            {"attribute": "sex", "group": owner_hint or "m", "month": "", "ratio": 0.7, "ci_low": 0.6,
             "ci_high": 0.79, "verdict": "served worse"},
        ],
        "findings": ["county_code=522422, hukou=rural: recall 13%"],
        "thin_records": ["county_code=522422, hukou=rural: absences recorded at 0.13×"],
        "suppressed": [{"grouping": "category", "group": "seriously_ill", "month": "", "suppressed": "primary"}],
    }  # fmt: skip
    summary = {
        "export_date": "2025-12-31",
        "label_rates_observed": {"label": 0.08, "benefit_lapse": 0.03},
        **({"registry": registry} if registry is not None else {}),
    }
    fold = {"window": ["2024-05-01"], "train_from": "2023-01-01", "train_to": "2023-10-01", "n": 4000,
            "prevalence": 0.12, "auc_roc": 0.8, "auc_pr": 0.4, "precision@5_pct": 0.5, "ece": 0.01}
    stat = {"mean": 0.8, "sd": 0.01}
    backtest = {"folds": [fold, {**fold, "window": ["2024-06-01"]}], "rounds": 88, "calibration": "isotonic",
                "summary": {k: stat for k in ("auc_roc", "auc_pr", "precision@5_pct", "ece")},
                "chosen": {"num_leaves": 31}, "search": [{}, {}], "fold_metric": "average_precision",
                "constrained": not released,
                "monotone_constraints": {"configured": "unless_costly", "monotone": {"auc_roc": 0.796, "precision@5_pct": 0.49},
                                         "unconstrained": {"auc_roc": 0.8, "precision@5_pct": 0.5},
                                         "auc_cost_relative": 0.005, "precision@5_pct_cost": 0.01,
                                         "auc_cost_target": 0.01, "within_target": True, "released": released,
                                         "lists": {"unconstrained_only": 40, "monotone_only": 40, "z": 2.5,
                                                   "unconstrained_only_positive": 30, "monotone_only_positive": 20,
                                                   "critical_z": 1.645}}}
    train = {"backtest": backtest, "features_sha256": "e" * 64, "best_iteration": 88, "features": ["age_years"], "categorical_features": {},
             "calibration": "isotonic", "export_date": "2025-12-31",
             "split": {"train": ["2024-01-01", "2024-09-01"], "val": ["2024-10-01"], "test": ["2025-01-01", "2025-03-01"]},
             "periods": {"train": {"rows": 9000, "prevalence": 0.09}}}  # fmt: skip
    paths = {
        "metrics": reports / "metrics.json",
        "fairness": fair,
        "summary": reports / "features_summary.json",
        "models": models,
        "md": reports / "model_card.md",
        "html": reports / "model_card.html",
    }
    paths["metrics"].write_text(json.dumps(metrics))
    (fair / "fairness.json").write_text(json.dumps(fairness))
    paths["summary"].write_text(json.dumps(summary))
    (models / "train_summary.json").write_text(json.dumps(train))
    paths["served"] = models / "served"
    paths["served"].mkdir()
    served = {"refit_on": ["2024-01-01", "2025-03-01"], "rows": 12000, "rounds": 88,
              "calibrated_on": ["2025-01-01", "2025-03-01"], "evaluated_model_digest": "d" * 64}  # fmt: skip
    (paths["served"] / "train_summary.json").write_text(json.dumps(served))
    return paths


GATE = {"passed": True, "reason": "model precision_at_k 0.42 beats the rule baseline's 0.31",
        "model_digest": "d" * 64, "metric": "precision_at_k"}  # fmt: skip


@pytest.fixture(autouse=True)
def gate_decision(monkeypatch):
    monkeypatch.setattr(model_card, "read_promotion", lambda models_dir: GATE)


def test_the_card_names_the_model_by_content_and_shows_the_gate(tmp_path):
    markdown, _ = render(tmp_path)
    assert "d" * 64 in markdown and "beats the rule baseline" in markdown
    assert "MLflow run id" not in markdown  # one machine's store never reaches a tracked report
    assert "refitted on every as-of date whose label is" in markdown and "2025-03-01" in markdown
    assert "| 2024-06-01 | 2023-01-01..2023-10-01 |" in markdown and "`num_leaves` 31" in markdown


def test_the_card_shows_what_the_nowcast_did_per_test_month(tmp_path):
    markdown, _ = render(tmp_path)
    assert "| 2025-01-01 | 0.870 | 2024-11-01, 2024-12-01 | 0.041 → 0.017 | 0.800 → 0.930 |" in markdown


def render(tmp_path, **kwargs):
    paths = write_inputs(tmp_path, **kwargs)
    params = load_params(PARAMS_FILE)
    model_card.run(
        paths["metrics"],
        paths["fairness"],
        paths["summary"],
        paths["models"],
        paths["served"],
        paths["md"],
        paths["html"],
        params,
    )
    return paths["md"].read_text(encoding="utf-8"), paths["html"].read_text(encoding="utf-8")


def test_card_renders_every_required_section(tmp_path):
    md, html = render(tmp_path)
    for section in SECTIONS:
        assert section in md
    assert "PIPL art. 24" in md and "automated denial" in md
    assert "Selective labels" in md and "Measurement bias" in md and "Synthetic versus real" in md
    assert "e" * 64 in md  # data digest
    assert "2024-01-01" in md and "2025-03-01" in md  # split dates
    assert "| AUC (ROC) | **0.810** | 0.640 | 0.770 | 0.600 | 0.900 |" in md
    assert "at most 500,000 training rows" in md and "a seeded sample of at most 2,000,000 rows" in md
    assert "[fairness report](fairness/index.html)" in md
    assert "| hukou | rural | 0.62 | 0.50–0.75 |" in md and "Served worse: **2**" in md
    assert "**This run used synthetic data**" in md and "60 per month (120 over 2 months)" in md
    assert "the watchlists missed 987" in md and "Of the 1,234 children who later fell out" in md
    assert "county\\_code=522422" in md or "county_code=522422" in md
    assert "not** model inputs" in md
    assert "<h2>Fairness summary</h2>" in html and "<table>" in html


def test_html_has_no_external_resources_and_escapes_values(tmp_path):
    md, html = render(tmp_path, owner_hint="<img src=x onerror=alert(1)>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;img" in html


def test_card_lists_catalogue_features_by_system(tmp_path):
    from src.features import catalogue

    md, _ = render(tmp_path)
    for entry in catalogue.CATALOGUE:
        assert f"`{entry.name}`" in md


AS_OF_EXPORT = {"history": False, "read": "as_of_export", "mode": "exclude",
                "excluded": ["guardian_type", "category"]}  # fmt: skip


@pytest.mark.parametrize(
    ("registry", "says", "never"),
    [
        ({"history": True, "read": "as_of_each_date", "mode": "exclude", "excluded": []},
         "The registry was read as of each date", "Registry fields are as of export"),
        (AS_OF_EXPORT, "Excluded from the model for that reason "
         "(`features.registry_as_of_export: exclude`):\n  `guardian_type`, `category`.",
         "read as of each date"),
        ({**AS_OF_EXPORT, "mode": "keep", "excluded": []},
         "They are kept as model inputs (`features.registry_as_of_export: keep`)", "Excluded"),
    ],
)  # fmt: skip
def test_card_says_how_the_registry_was_read(tmp_path, registry, says, never):
    md, _ = render(tmp_path, registry=registry)
    assert says in md and never not in md
    guardian_row = next(line for line in md.splitlines() if line.startswith("| `guardian_type`"))
    excluded = "guardian_type" in registry["excluded"]
    assert guardian_row.endswith("| no (audit only) |" if excluded else "| yes |")


def test_card_is_deterministic(tmp_path):
    first = render(tmp_path / "a")
    second = render(tmp_path / "b")
    assert first == second


def test_missing_input_is_one_clear_error(tmp_path):
    paths = write_inputs(tmp_path)
    (paths["fairness"] / "fairness.json").unlink()
    with pytest.raises(SafetynetError, match="run the fairness stage first"):
        model_card.run(
            paths["metrics"],
            paths["fairness"],
            paths["summary"],
            paths["models"],
            paths["served"],
            paths["md"],
            paths["html"],
            load_params(PARAMS_FILE),
        )


def test_the_card_shows_what_the_monotone_constraints_cost(tmp_path):
    markdown, _ = render(tmp_path)
    assert "| monotone | 0.796 | 0.490 |" in markdown and "| unconstrained | 0.800 | 0.500 |" in markdown
    assert "AUC cost of the constraints: 0.5% of the unconstrained AUC (target at most\n1.0%: met)" in markdown
    assert "this model:\n**monotone**" in markdown and "30 of 40" in markdown and "released" not in markdown


def test_the_card_says_when_the_backtest_released_the_constraints(tmp_path):
    markdown, _ = render(tmp_path, released=True)
    assert "this model:\n**unconstrained**" in markdown
    assert "**The constraints were released for this model:**" in markdown


def test_a_crossed_monitoring_threshold_is_a_red_banner(tmp_path):
    paths = write_inputs(tmp_path)
    monitoring_dir = tmp_path / "monitoring"
    monitoring_dir.mkdir()
    (monitoring_dir / "monitoring.json").write_text(json.dumps({"alerts": ["feature x (education): PSI 0.900 <b>"]}))
    model_card.run(paths["metrics"], paths["fairness"], paths["summary"], paths["models"], paths["served"],
                   paths["md"], paths["html"], load_params(PARAMS_FILE), monitoring_dir)  # fmt: skip
    md, html = paths["md"].read_text(encoding="utf-8"), paths["html"].read_text(encoding="utf-8")
    assert "**Monitoring alert: 1 threshold(s) crossed**" in md and "PSI 0.900" in md
    assert 'id="monitoring-alert"' in html and "&lt;b&gt;" in html and "<b>" not in html
    (monitoring_dir / "monitoring.json").write_text(json.dumps({"alerts": []}))
    model_card.run(paths["metrics"], paths["fairness"], paths["summary"], paths["models"], paths["served"],
                   paths["md"], paths["html"], load_params(PARAMS_FILE), monitoring_dir)  # fmt: skip
    assert 'id="monitoring-alert"' not in paths["html"].read_text(encoding="utf-8")
