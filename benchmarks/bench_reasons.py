"""Are the reasons on the listed children risks? Figures from a run's outputs (issue 13 targets).

Reads data/processed/explanations.parquet, contributions.parquet, features.parquet (the
snapshot month), data/interim/children.parquet and models/train_summary.json of a finished
run (default: this folder), and prints JSON:

- listed children: per county the top capacity (base.children_per_caseworker x the county's
  caseworkers, as the watchlist cuts), plus each caseworker's own top
  base.children_per_caseworker (the per-director lists), all by score, ties by child_pid;
- the share of reasons shown on them that are on the risk side of their normal range (or a
  declared risk value), role risk and actionable (target >= 95 %), and the share whose SHAP
  (when in the child's top 10 of contributions.parquet) is > 0;
- reasons that are background features (target 0);
- children sent to benefit recertification with no benefit reason shown (target 0);
- children with no qualifying reason, the most frequent reasons and services;
- the monotone constraints' AUC cost on the backtest (target <= 1 % relative).

    python -m benchmarks.bench_reasons [--root /path/to/run] [--params params.yaml]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from src.config import load_params
from src.delivery import reasons
from src.delivery.capacity import list_capacity
from src.delivery.services import SERVICES
from src.features import catalogue

TARGET_RISK_SHARE = 0.95


def listed_children(current: pd.DataFrame, places: pd.DataFrame, per_caseworker: int) -> pd.DataFrame:
    """Scored children above a county cut or in their caseworker's own top `per_caseworker`."""
    scored = current[current["already_out"] == 0].merge(places, on="child_pid", how="left")
    scored = scored.sort_values(["score", "child_pid"], ascending=[False, True], kind="stable")
    capacity = list_capacity(scored, per_caseworker, keys=["county_code"])
    county_rank = scored.groupby("county_code", sort=False).cumcount()
    own_rank = scored.groupby("caseworker_id", sort=False, dropna=True).cumcount()
    above = county_rank < scored["county_code"].map(capacity).fillna(0)
    own = scored["caseworker_id"].notna() & (own_rank < per_caseworker)
    return scored[above | own]


def reason_figures(listed: pd.DataFrame, values: pd.DataFrame, contributions: pd.DataFrame) -> dict:
    """Per shown reason: risk side + role + actionable; background; SHAP sign where known."""
    slots = sorted(c for c in listed.columns if c.startswith("reason_") and c.endswith("_feature"))
    long = listed.melt(id_vars=["child_pid"], value_vars=slots, value_name="feature")
    long = long[long["feature"] != ""]
    by_pid = values.set_index("child_pid")
    ok = np.zeros(len(long), dtype=bool)
    for name, rows in long.groupby("feature").groups.items():
        entry = catalogue.spec(name)
        at = long.index.get_indexer(rows)
        side = reasons.on_risk_side(entry, by_pid.loc[long.loc[rows, "child_pid"], name].reset_index(drop=True))
        ok[at] = side & (entry.role == "risk") & entry.actionable
    roles = long["feature"].map(lambda n: catalogue.spec(n).role)
    shap = long.merge(contributions[["child_pid", "feature", "shap"]], on=["child_pid", "feature"], how="left")
    known = shap["shap"].notna()
    return {
        "reasons_shown": len(long),
        "share_risk_side_actionable": float(ok.mean()) if len(long) else None,
        "target_share": TARGET_RISK_SHARE,
        "risk_share_met": bool(len(long) == 0 or ok.mean() >= TARGET_RISK_SHARE),
        "background_reasons": int((roles == "background").sum()),
        "exposure_reasons": int((roles == "exposure").sum()),
        "share_shap_positive_where_known": float((shap.loc[known, "shap"] > 0).mean()) if known.any() else None,
        "top_reasons": long["feature"].value_counts().head(10).to_dict(),
    }


def routing_figures(listed: pd.DataFrame) -> dict:
    recert = SERVICES["basic_living"][0]
    slots = [c for c in listed.columns if c.startswith("reason_") and c.endswith("_feature")]
    benefit_reason = listed[slots].apply(
        lambda col: col.map(lambda n: bool(n) and catalogue.spec(n).system == "basic_living")
    ).any(axis=1)
    sent = listed["service_zh"].str.contains(recert, regex=False)
    return {
        "recert_without_benefit_reason": int((sent & ~benefit_reason).sum()),
        "sent_to_recert": int(sent.sum()),
        "no_reason": int(listed["no_reason"].sum()),
        "top_services": listed["service_zh"].value_counts().head(6).to_dict(),
        "primary_systems": listed["primary_system"].value_counts().to_dict(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--params", type=Path, default=None, help="default: <root>/params.yaml")
    args = parser.parse_args()
    root = args.root
    params = load_params(args.params or root / "params.yaml")
    explanations = pd.read_parquet(root / "data/processed/explanations.parquet")
    as_of = explanations["as_of"].max()
    current = explanations[explanations["as_of"] == as_of]
    places = pd.read_parquet(root / "data/interim/children.parquet",
                             columns=["child_pid", "county_code", "caseworker_id"])  # fmt: skip
    listed = listed_children(current, places, params.base.children_per_caseworker)
    features = [c for c in catalogue.feature_names()]
    values = pd.read_parquet(root / "data/processed/features.parquet", filters=[("as_of", "==", as_of)])
    values = values[["child_pid", *[f for f in features if f in values.columns]]]
    contributions = pd.read_parquet(root / "data/processed/contributions.parquet")
    summary = json.loads((root / "models/train_summary.json").read_text(encoding="utf-8"))
    out = {
        "as_of": str(pd.Timestamp(as_of).date()),
        "n_scored": int(current["score"].notna().sum()),
        "n_explained": int(current["shap_static"].notna().sum()),
        "n_listed": len(listed),
        "listed_not_explained": int(listed["shap_static"].isna().sum()),
        "reasons": reason_figures(listed, values, contributions),
        "routing": routing_figures(listed),
        "monotone_constraints": summary.get("backtest", {}).get("monotone_constraints"),
    }
    print(json.dumps(out, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
