# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Model review: performance, explanations, fairness
#
# This notebook reads the outputs of the latest `dvc repro` (run it from the project
# root first) and walks through three questions an analyst asks before a list goes to
# the child directors:
#
# 1. Does the model beat what practitioners do today, and how close is it to the best
#    possible (the generator's true risk, on synthetic data)?
# 2. Why are the top children flagged, and which service would a visit bring?
# 3. Does the list serve every group equally well?
#
# It only reads pseudonymous outputs (`child_pid`): no names or ID numbers.

# %%
import json
from pathlib import Path

import pandas as pd

ROOT = Path.cwd() if (Path.cwd() / "dvc.yaml").exists() else Path.cwd().parent
metrics = json.loads((ROOT / "reports/metrics.json").read_text(encoding="utf-8"))
summary = json.loads((ROOT / "reports/features_summary.json").read_text(encoding="utf-8"))

# %% [markdown]
# ## 1. Performance against the baselines
#
# Every score is evaluated on the same test months, with the same list size `k`
# (the caseworkers' capacity). `precision_at_k` is the share of listed children who
# really dropped out of a net within 180 days; `recall_at_k` is the share of all such
# children that the list reached.

# %%
HEADLINE = ["auc_roc", "auc_pr", "brier", "ece", "precision_at_k", "recall_at_k", "k", "prevalence", "n"]
table = pd.DataFrame(
    {"model": metrics["test"], **metrics["baselines"]},
).T
table[[c for c in HEADLINE if c in table.columns]].round(3)

# %%
metrics.get("ratios"), metrics.get("gate")

# %% [markdown]
# Label rates per rule, on fully observed as-of dates:

# %%
pd.Series(summary["label_rates_observed"]).round(3)

# %% [markdown]
# ## 2. Explanations for a few children
#
# The explain stage scores every child in the cohort at the snapshot date with the
# model in `models/` (the one this run trained and evaluated) and keeps the strongest risk-raising reasons (SHAP), actionable
# reasons first, plus the protection system that dominates and the service to bring.

# %%
explanations = pd.read_parquet(ROOT / "data/processed/explanations.parquet")
snapshot = explanations["as_of"].max()
latest = explanations[(explanations["as_of"] == snapshot) & (explanations["already_out"] == 0)]
top = latest.sort_values("score", ascending=False).head(5)
reason_cols = [c for c in top.columns if c.startswith("reason_") and c.endswith("_en")]
top[["score", "primary_system", "service_en", *reason_cols]]

# %%
importance = json.loads((ROOT / "reports/explain/importance.json").read_text(encoding="utf-8"))
pd.DataFrame(importance["systems"]).T.sort_values("mean_abs_shap", ascending=False)

# %% [markdown]
# ## 3. Fairness at the list size the caseworkers use
#
# Recall (and its mirror, the miss rate FNR) is the primary criterion: the list is a
# supportive intervention, so the harm that matters is missing a child who needs help.
# Verdicts: *within* the 0.8–1.25 band, *outside*, or *inconclusive* when the bootstrap
# interval spans an edge. Small groups are suppressed, never silently dropped.

# %%
fairness = json.loads((ROOT / "reports/fairness/fairness.json").read_text(encoding="utf-8"))
headline = json.loads((ROOT / "reports/fairness_metrics.json").read_text(encoding="utf-8"))
pd.Series(headline)

# %% [markdown]
# The full report, with figures and confidence intervals, is `reports/fairness/index.html`;
# the model card is `reports/model_card.html`.
