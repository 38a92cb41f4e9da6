"""Issue 14's targets for the fairness audit, measured on the project's own generator.

    python benchmarks/bench_fairness.py speed --n-children 1000000 --replicates 200
    python benchmarks/bench_fairness.py found --seeds 5 --n-children 8000
    python benchmarks/bench_fairness.py null --seeds 5 --n-children 8000

speed: the fairness stage's audit on a synthetic predictions frame (children x 3 test months,
every audit attribute, directors, recording counts) with the configured replicates; the
target is < 5 minutes at 1M children on 2 cores.
found: per seed, the real stages (generate -> ingest -> features -> train -> evaluate ->
fairness) in a temp folder outside the repo, with `synthetic.measurement_bias` (BIAS: conceal,
share 1, school absences, casework visits and welfare payments) on one county x hukou cell: the
one whose oracle recall (p_true cut on the same director lists, with the same places) is the
highest, found by a first run with the knob off (the world and the places are the same with it
on), so the issue's "no lower than anyone's" holds by construction. It reports the cell's
rank among the discoveries, its recall (knob on and off) against the rest's, the oracle's, the
top discovery and the sources its measurement diagnostic flags. Target: top discovery = the cell
with absences named in >= 4 of 5 seeds.
null: the same with the knob off; target: at most one "served worse" discovery in total.
Never run `found`/`null` at large scale on a shared machine (one pipeline per seed).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.audit import fairness  # noqa: E402
from src.audit.fairness_audit import audit_fairness  # noqa: E402
from src.audit.fairness_measurement import SOURCES  # noqa: E402
from src.config import load_params  # noqa: E402
from src.data import generate, ingest  # noqa: E402
from src.features import features  # noqa: E402
from src.models import evaluate, train  # noqa: E402

SEEDS = (20251128, 11, 22, 33, 44, 55, 66)
SCALE = {"months": 36, "n_counties": 4, "communities_per_county": 18}
# the cell's school and caseworkers record its at-risk children as if all were well
BIAS = {"hukou": "rural", "mode": "conceal", "share": 1.0, "sources": ["school_absences", "casework_visits", "welfare_payments"]}


def speed(n_children: int, replicates: int) -> dict:
    """Time the pure audit on a synthetic predictions frame of n_children x 3 months."""
    rng = np.random.default_rng(0)
    months = pd.to_datetime(["2025-05-01", "2025-06-01", "2025-07-01"])
    kid = np.repeat(np.arange(n_children), len(months))
    values = {"sex": ["f", "m"], "hukou": ["rural", "urban"], "ethnicity": ["han", "minority"],
              "disability": ["none", "disabled"], "category": ["a", "b", "c", "d", "e"],
              "county_code": [f"5224{21 + i}" for i in range(6)], "age_band": ["0-5", "6-11", "12-14", "15-17"]}  # fmt: skip
    frame = pd.DataFrame({a: np.asarray(v)[rng.integers(0, len(v), n_children)][kid] for a, v in values.items()})
    frame["child_pid"] = np.char.add("c", kid.astype(str))
    frame["as_of"] = np.tile(months.to_numpy(), n_children)
    frame["score"] = rng.beta(1, 12, len(frame))
    frame["label"] = (rng.random(len(frame)) < frame["score"]).astype("int8")
    frame["caseworker_id"] = np.char.add(frame["county_code"].to_numpy().astype(str), (kid % 150).astype(str))
    rank = frame.groupby(["as_of", "caseworker_id"])["score"].rank(ascending=False, method="first")
    frame["selected"] = rank <= 5 * (n_children // 6 // 150 // 20 + 1)
    records = frame.loc[frame["label"] == 1, ["child_pid", "as_of"]]
    for column in SOURCES:
        records = records.assign(**{column: rng.poisson(3, len(records))})
    params = load_params(ROOT / "params.yaml", {"fairness": {"bootstrap_replicates": replicates}})
    start = time.perf_counter()
    audit = audit_fairness(frame, params.fairness, params.evaluate, records)
    seconds = time.perf_counter() - start
    return {"n_children": n_children, "rows": len(frame), "replicates": replicates,
            "seconds": round(seconds, 1), "discoveries": audit.headline()["discoveries"]}  # fmt: skip


def bench_params(seed: int, n_children: int, bias: dict):
    return load_params(ROOT / "params.yaml", {
        "base": {"seed": seed}, "synthetic": {**SCALE, "n_children": n_children, "measurement_bias": bias},
        "train": {"backtest": {"search_trials": 1}},
    })  # fmt: skip


def run_stages(work: Path, params, audit: bool = True) -> None:
    generate.run(work / "synthetic", params)
    ingest.run(work / "synthetic", work / "interim", work / "data_quality.json", params)
    features.run(work / "interim", work / "features.parquet", work / "features.json", params)
    train.run(work / "features.parquet", work / "features.json", work / "models", params)
    evaluate.run(work / "features.parquet", work / "interim", work / "models", work / "metrics.json",
                 work / "metrics_by_month.json", work / "plots", work / "figures",
                 work / "predictions.parquet", work / "headline.json", params)  # fmt: skip
    if audit:
        fairness.run(work / "predictions.parquet", work / "models", work / "fairness", work / "fair.json",
                     params, work / "interim")  # fmt: skip


def highest_oracle_cell(work: Path, seed: int, n_children: int) -> tuple[tuple[str, str], pd.DataFrame]:
    """The county x hukou cell whose oracle recall is the highest, from a run with the knob off
    (the world, p_true and each list's places are the same with it on, so the oracle's recall
    is too), and that run's recalls (the model's with the knob off)."""
    run_stages(work / "probe", bench_params(seed, n_children, {"enabled": False}), audit=False)
    recall = oracle_recall(work / "probe")
    return recall["oracle"].idxmax(), recall


def run_pipeline(work: Path, seed: int, n_children: int, biased: bool):
    """The stages with the knob on the highest-oracle cell (biased) or off: (fairness.json, cell,
    the knob-off run's recalls)."""
    cell, off = highest_oracle_cell(work, seed, n_children) if biased else (None, None)
    bias = {**BIAS, "enabled": biased}
    if cell:
        bias.update(counties=[cell[0]], hukou=cell[1])
    run_stages(work, bench_params(seed, n_children, bias))
    return json.loads((work / "fairness" / "fairness.json").read_text(encoding="utf-8")), cell, off


def oracle_recall(work: Path) -> pd.DataFrame:
    """Recall per county x hukou cell of the model's lists and of the oracle's: the same director
    lists with the same number of places each, cut on p_true (the generator's truth)."""
    pred = pd.read_parquet(work / "predictions.parquet")
    truth = pd.read_parquet(work / "interim" / "truth.parquet")
    children = pd.read_parquet(work / "interim" / "children.parquet", columns=["child_pid", "caseworker_id"])
    frame = pred.merge(truth, on=["child_pid", "as_of"], how="left").merge(children, on="child_pid", how="left")
    frame["caseworker_id"] = frame["caseworker_id"].fillna("")
    lists = frame.groupby(["as_of", "caseworker_id"])
    places = lists["selected"].transform("sum")
    frame["oracle"] = (lists["p_true"].rank(ascending=False, method="first") <= places) & (frame["caseworker_id"] != "")
    positives = frame[frame["label"] == 1]
    return positives.groupby(["county_code", "hukou"])[["oracle", "selected"]].mean()


def cell_row(report: dict, work: Path, cell: tuple[str, str], off: pd.DataFrame, top: dict | None) -> dict:
    """The biased cell's figures: rank, recall (model, the rest, knob off), oracle, diagnostic."""
    recall = oracle_recall(work)
    pred = pd.read_parquet(work / "predictions.parquet", columns=["county_code", "hukou", "label", "selected"])
    positives = pred[pred["label"] == 1]
    rest = positives[(positives["county_code"] != cell[0]) | (positives["hukou"] != cell[1])]
    key = ("hukou|county_code", f"{cell[1]}|{cell[0]}")
    flagged = [m["source"] for m in report["measurement"] if top and m["flagged"]
               and (m["grouping"], m["group"]) == (top["grouping"], top["group"])]  # fmt: skip
    mine = [d for d in report["discoveries"] if (d["grouping"], d["group"]) == key]
    absences = [m for m in report["measurement"] if (m["grouping"], m["group"]) == key
                and m["source"] == "records_absences"]  # fmt: skip
    return {
        "cell": f"county_code={cell[0]}, hukou={cell[1]}",
        "model_recall_cell": round(float(recall["selected"][cell]), 3),
        "model_recall_cell_knob_off": round(float(off["selected"][cell]), 3),
        "model_recall_rest": round(float(rest["selected"].mean()), 3),
        "oracle_cell": round(float(recall["oracle"][cell]), 3),
        "oracle_max_other": round(float(recall["oracle"].drop(cell).max()), 3),
        "oracle_cell_highest": bool(recall["oracle"][cell] >= recall["oracle"].drop(cell).max()),
        "top_is_cell": bool(top and (top["grouping"], top["group"]) == key),
        "absences_named": "records_absences" in flagged,
        "flagged_sources": flagged,
        "cell_ratio": round(mine[0]["ratio"], 3) if mine else None,
        "cell_rank": next((i + 1 for i, d in enumerate(report["discoveries"])
                           if (d["grouping"], d["group"]) == key), None),  # fmt: skip
        "cell_absences_ratio": round(absences[0]["ratio"], 3) if absences else None,
    }


def pipeline_target(seeds: int, n_children: int, biased: bool, keep: str | None = None) -> list[dict]:
    rows = []
    for seed in SEEDS[:seeds]:
        with tempfile.TemporaryDirectory(prefix="bench_fairness_", dir=keep) as tmp:
            start = time.perf_counter()
            report, cell, off = run_pipeline(work := Path(tmp), seed, n_children, biased)
            found = [d for d in report["discoveries"] if d["discovered"]]
            top = next((d for d in found if not d["explained_by"]), None)
            row = {"seed": seed, "discoveries": len(found), "served_worse": report["headline"]["served_worse"],
                   "top": f"{top['grouping']}={top['group']}" if top else None,
                   "found": [f"{d['grouping']}={d['group']}" for d in found],
                   "seconds": round(time.perf_counter() - start)}  # fmt: skip
            if biased:
                row.update(cell_row(report, work, cell, off, top))
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", choices=["speed", "found", "null"])
    parser.add_argument("--n-children", type=int, default=None)
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    if args.target == "speed":
        print(json.dumps(speed(args.n_children or 1_000_000, args.replicates)))
        return
    rows = pipeline_target(args.seeds, args.n_children or 8000, args.target == "found")
    if args.target == "found":
        hits = sum(r["top_is_cell"] and r["absences_named"] for r in rows)
        print(json.dumps({"target": "found", "hits": hits, "of": len(rows), "met": hits >= 4}))
    else:
        total = sum(r["discoveries"] for r in rows)
        print(json.dumps({"target": "null", "served_worse_discoveries": total, "met": total <= 1}))


if __name__ == "__main__":
    main()
