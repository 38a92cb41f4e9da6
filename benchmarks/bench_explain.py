"""Time scoring + TreeSHAP + reasons + watchlists for --n-children, and project to 1M.

Synthetic frames with the test catalogue (9 features) or, with --n-features, extra numeric
education features; a LightGBM model with --n-trees trees of --num-leaves leaves. The
benchmark never reads data/. Run at <= 50k on a shared machine, e.g.

    python -m benchmarks.bench_explain --n-children 20000 --n-trees 200

TreeSHAP cost grows with rows x trees x leaves x depth^2, so the projection is linear in rows.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from src.delivery import explain, watchlist
from src.features import catalogue
from src.features.catalogue import FeatureSpec
from tests.delivery import explain_fixtures as fx

log = logging.getLogger("bench_explain")


def extra_features(
    frame: pd.DataFrame, n_extra: int, seed: int
) -> tuple[pd.DataFrame, tuple[FeatureSpec, ...]]:
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(n_extra):
        name = f"extra_count_{i}"
        frame[name] = rng.poisson(1.0, len(frame)).astype(float)
        specs.append(
            FeatureSpec(
                name,
                "education",
                "bench",
                True,
                "numeric",
                "int",
                f"指标{i} {{value}}",
                f"metric {i} {{value}}",
            )
        )
    return frame, tuple(specs)


def train(frame: pd.DataFrame, n_trees: int, num_leaves: int) -> fx.StubModel:
    features = catalogue.model_features()
    sample = frame.sample(min(len(frame), 50_000), random_state=1)
    params = {"objective": "binary", "num_leaves": num_leaves, "learning_rate": 0.05, "min_child_samples": 20,
              "verbose": -1, "num_threads": 2, "seed": 1, "deterministic": True}  # fmt: skip
    return fx.StubModel(
        lgb.train(params, lgb.Dataset(sample[features], sample["label"]), num_boost_round=n_trees)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-children", type=int, default=20_000)
    parser.add_argument("--n-trees", type=int, default=200)
    parser.add_argument("--num-leaves", type=int, default=31)
    parser.add_argument("--n-features", type=int, default=40, help="total model features (>= 9)")
    parser.add_argument("--n-counties", type=int, default=6)
    parser.add_argument("--shap-margin", type=float, default=1.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    n = args.n_children
    frame = fx.features_frame(n, ["2024-05-01", "2024-06-01"], seed=1)
    frame, extra = extra_features(frame, max(0, args.n_features - len(fx.SMALL_CATALOGUE)), seed=2)
    catalogue.CATALOGUE, catalogue.CODE_LABELS_ZH = fx.SMALL_CATALOGUE + extra, fx.CODE_LABELS_ZH
    model = train(frame, args.n_trees, args.num_leaves)
    months = {d: frame[frame["as_of"] == d] for d in sorted(frame["as_of"].unique())}
    previous, current = months.values()
    identity, children = fx.people(n, n_counties=args.n_counties, hostile=True)
    params = fx.params()
    params = replace(params, base=replace(params.base, children_per_caseworker=5))

    timings = {}
    with timed(timings, "score previous month", threads=2):
        prev = explain.score_previous(previous, model, 3)
    with timed(timings, "score + TreeSHAP + reasons (snapshot)", threads=2):
        snapshot = explain.explain_snapshot(current, model, 3, children, 5, args.shap_margin,
                                            progress=True)  # fmt: skip
        now = snapshot.explanations
    with timed(timings, "global importance"):
        explain.global_importance(snapshot.shap, pd.Timestamp("2024-06-01"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        expl_path = tmp / "explanations.parquet"
        pd.concat([prev, now], ignore_index=True).to_parquet(expl_path, index=False)
        (tmp / "interim").mkdir()
        identity.to_parquet(tmp / "interim" / "identity.parquet", index=False)
        children.to_parquet(tmp / "interim" / "children.parquet", index=False)
        snapshot.contributions.to_parquet(tmp / "contributions.parquet", index=False)
        watchlist.check_served = lambda *_: None  # no promotion decision here; the gate is tested elsewhere
        with timed(timings, "watchlists (CSV + XLSX + HTML + waterfalls, all counties)"):
            watchlist.run(expl_path, tmp / "contributions.parquet", tmp, tmp, tmp / "interim", tmp / "watchlists",
                          params)  # fmt: skip
    report(timings, n, args)


@contextlib.contextmanager
def timed(timings: dict, step: str, threads: int = 1):
    """Wall and CPU seconds; CPU / threads estimates wall on an idle machine (helpers share cores)."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    timings[step] = (time.perf_counter() - wall, time.process_time() - cpu, threads)


def report(timings: dict, n: int, args) -> None:
    scale = 1_000_000 / n
    wall = sum(w for w, _, _ in timings.values())
    cpu = sum(c for _, c, _ in timings.values())
    idle = sum(c / t for _, c, t in timings.values())
    log.info("n_children=%d trees=%d leaves=%d features=%d margin=%.2f", n, args.n_trees, args.num_leaves,
             len(catalogue.CATALOGUE), args.shap_margin)  # fmt: skip
    log.info("  %-42s %9s %9s %18s", "step", "wall s", "cpu s", "1M idle-wall est. s")
    for step, (w, c, t) in timings.items():
        log.info("  %-42s %9.1f %9.1f %18.0f", step, w, c, c / t * scale)
    log.info("  %-42s %9.1f %9.1f %18.0f", "total (target < 300 s at 1M)", wall, cpu, idle * scale)


if __name__ == "__main__":
    main()
