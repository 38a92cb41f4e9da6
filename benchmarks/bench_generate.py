"""Wall time and peak memory of the generate stage: `python benchmarks/bench_generate.py --n-children 20000`.

Writes into a temporary folder (deleted afterwards). Also prints the outcome rate and the
oracle AUC of p_true against the realised outcome on label-observed rows.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from src.config import load_params
from src.data import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-children", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(
        args.params, {"synthetic": {"n_children": args.n_children, "months": args.months}}
    )
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = generate.run(Path(tmp) / "synthetic", params)
        seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in (Path(tmp) / "synthetic").iterdir())
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    result = {
        "n_children": args.n_children,
        "months": args.months,
        "seconds": round(seconds, 1),
        "peak_rss_gib": round(peak_gib, 2),
        "output_mib": round(size / 2**20, 1),
        "rows": summary["rows"],
        **oracle_quality(params),
    }
    print(json.dumps(result, indent=2))


def oracle_quality(params) -> dict:
    """Outcome rate (overall, by category and age band) and oracle AUC on observed rows."""
    registry, model, sim = generate.simulate(params)
    truth = generate.truth_table(registry, model, sim, params.label.horizon_days)
    fired = sim.outcomes.frame()
    outcomes = pd.DataFrame(
        {"child_id": registry.child_id[fired["child"].astype(int)], "date": fired["date"]}
    )
    truth["label"] = generate.realised_labels(truth, outcomes, params.label.horizon_days)
    end = pd.Timestamp(sim.starts[-1] - 1)
    seen = truth[truth["as_of"] + pd.Timedelta(days=params.label.horizon_days) <= end].copy()
    child = pd.Index(registry.child_id).get_indexer(seen["child_id"])
    from src.data.contract import CATEGORY

    seen["category"] = pd.Series(CATEGORY).to_numpy()[registry.category[child]]
    age = (seen["as_of"].to_numpy() - registry.birth[child].astype("datetime64[us]")).astype(
        "timedelta64[D]"
    )
    seen["age_band"] = pd.cut(
        age.astype(int) / 365.25,
        [0, 6, 12, 15, 18],
        right=False,
        labels=["0-5", "6-11", "12-14", "15-17"],
    )
    return {
        "outcome_rate": round(seen["label"].mean(), 4),
        "mean_p_true": round(seen["p_true"].mean(), 4),
        "oracle_auc": round(roc_auc_score(seen["label"], seen["p_true"]), 4),
        "rate_by_category": seen.groupby("category")["label"].mean().round(3).to_dict(),
        "rate_by_age_band": seen.groupby("age_band", observed=True)["label"]
        .mean()
        .round(3)
        .to_dict(),
    }


if __name__ == "__main__":
    main()
