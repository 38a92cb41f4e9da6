"""Time and memory of the evaluate stage's core on synthetic scores, with a projection to 1M children.

    python benchmarks/bench_evaluate.py --n-children 50000 --test-months 3 --train-months 12

Builds a test frame (children x test months, five scorers with realistic ties: a calibrated
model, the 0-4 rule count, logistic, community rates, oracle), then times the metric blocks
(every registry metric pooled and per month, stability), the plot tables, the predictions
file, and the logistic baseline fitted on children x train months rows of 20 features.
Phases scale about linearly in rows (the rank per scorer is n log n), which the projection
assumes. Never run it at full scale on a shared machine.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.config import load_params  # noqa: E402
from src.models import baselines, evaluate  # noqa: E402

log = logging.getLogger("bench_evaluate")
TARGET_CHILDREN = 1_000_000


def make_frame(
    n_children: int, months: list[pd.Timestamp], rng: np.random.Generator
) -> pd.DataFrame:
    rows = n_children * len(months)
    frame = pd.DataFrame(
        {
            "child_pid": np.tile([f"{i:064x}" for i in range(n_children)], len(months)),
            "as_of": np.repeat(pd.DatetimeIndex(months).as_unit("us"), n_children),
        }
    )
    risk = rng.beta(1, 12, rows)
    frame["label"] = (rng.random(rows) < risk).astype("int8")
    for i in range(16):
        frame[f"num_{i}"] = np.where(
            rng.random(rows) < 0.1, np.nan, risk * i + rng.normal(size=rows)
        )
    for i in range(4):
        frame[f"cat_{i}"] = pd.Categorical(rng.choice(list("abcde"), rows))
    frame["risk"] = risk
    for column, values in {
        "sex": "fm",
        "hukou": ["rural", "urban"],
        "ethnicity": ["han", "minority"],
    }.items():
        frame[column] = rng.choice(list(values), rows)
    frame["disability"], frame["age_band"] = "none", "6-11"
    frame["category"] = frame["cat_0"].astype(str)
    frame["county_code"] = "110101"
    return frame


def scores_for(test: pd.DataFrame, rng: np.random.Generator) -> dict[str, np.ndarray]:
    risk = test["risk"].to_numpy()
    model = np.clip(risk + rng.normal(0, 0.03, len(risk)), 0, 1).round(3)  # isotonic-like plateaus
    return {
        "model": model,
        "rules": rng.binomial(4, np.clip(risk * 3, 0, 1)).astype(float),
        "logistic": np.clip(risk + rng.normal(0, 0.05, len(risk)), 0, 1),
        "community": np.round(rng.choice(np.linspace(0.05, 0.12, 300), len(risk)), 6),
        "oracle": risk,
    }


def timed(name: str, timings: dict, fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    timings[name] = time.perf_counter() - start
    log.info("%-12s %7.2f s", name, timings[name])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-children", type=int, default=20_000)
    parser.add_argument("--test-months", type=int, default=3)
    parser.add_argument("--train-months", type=int, default=12)
    parser.add_argument("--caseworkers", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    params = load_params(ROOT / "params.yaml")
    baseline_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # imports
    rng = np.random.default_rng(params.base.seed)
    test_months = list(pd.date_range("2025-01-01", periods=args.test_months, freq="MS"))
    train_months = list(pd.date_range("2023-01-01", periods=args.train_months, freq="MS"))
    test = make_frame(args.n_children, test_months, rng)
    train = make_frame(args.n_children, train_months, rng)
    capacity = pd.Series(
        params.base.children_per_caseworker * args.caseworkers,
        index=test.groupby(["as_of", "county_code"]).size().index,
    )
    scores = scores_for(test, rng)
    timings: dict[str, float] = {}
    features = [c for c in train.columns if c.startswith(("num_", "cat_"))]
    timed("logistic", timings, baselines.fit_logistic, train, features, c=1.0, seed=1)
    probabilistic = {"model", "logistic", "community", "oracle"}
    timed(
        "metrics",
        timings,
        evaluate.evaluate_scores,
        test,
        scores,
        probabilistic,
        capacity,
        params.evaluate,
    )
    timed("plots", timings, evaluate.plot_tables, test, scores, probabilistic, capacity, 10)
    timed("predictions", timings, evaluate.build_predictions, test, scores["model"], capacity)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20 - baseline_gib
    scale = TARGET_CHILDREN / args.n_children
    total = sum(timings.values())
    log.info(
        "test rows %d, train rows %d: %.1f s in all, peak RSS above imports %.2f GiB",
        len(test),
        len(train),
        total,
        peak_gib,
    )
    log.info(
        "projection to %d children (linear): ~%.0f s, ~%.1f GiB",
        TARGET_CHILDREN,
        total * scale,
        peak_gib * scale,
    )


if __name__ == "__main__":
    main()
