"""Time and memory of the train stage on synthetic feature rows, with a projection to 24M rows.

    python benchmarks/bench_train.py --n-rows 4800000 --negative-sample-rate 0.25

Builds a features.parquet of --n-rows rows (n_rows / --n-dates children x --n-dates month-start
as-of dates, --n-features features of the catalogue's kinds), runs the real
`src.models.train.run` against a throw-away MLflow store, and reports each phase's wall and
CPU time. The projection to 1M children x 24 as-of dates (issue 12: train plus backtest within
20 minutes and 16 GiB on 2 cores) scales the scan and the final fit by rows, and the backtest
(search, folds, constraint comparison) by children up to `train.backtest.max_children`, its
seeded sample. Never run it at full scale on a shared machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.config import load_params  # noqa: E402
from src.features import catalogue  # noqa: E402
from src.features.catalogue import FeatureSpec  # noqa: E402

log = logging.getLogger("bench_train")
CATEGORIES = ("a", "b", "c", "d", "e")
TARGET_ROWS = 24_000_000


def bench_catalogue(n_features: int) -> tuple[FeatureSpec, ...]:
    """A catalogue like the real one: mostly numeric, some indicators, ~1 in 8 categorical."""
    specs = []
    for i in range(n_features):
        kind = "categorical" if i % 8 == 7 else "indicator" if i % 8 == 6 else "numeric"
        specs.append(
            FeatureSpec(
                name=f"f{i:02d}",
                system="static",
                description="benchmark feature",
                actionable=False,
                kind=kind,
                fmt="code" if kind == "categorical" else "float1",
                template_zh="{value}",
                template_en="{value}",
                categories=CATEGORIES if kind == "categorical" else (),
            )
        )
    return tuple(specs)


def synthetic_month(as_of: pd.Timestamp, n_children: int, specs, rng) -> pd.DataFrame:
    """One as-of date of feature rows; the outcome depends on a few features."""
    frame = pd.DataFrame({"child_pid": [f"{i:064x}" for i in range(n_children)], "as_of": as_of})
    frame["as_of"] = frame["as_of"].astype("datetime64[us]")
    logit = np.full(n_children, -3.0)
    for j, spec in enumerate(specs):
        if spec.kind == "categorical":
            codes = rng.integers(0, len(CATEGORIES), size=n_children)
            frame[spec.name] = pd.Categorical.from_codes(codes, categories=list(CATEGORIES))
            logit += 0.3 * (codes == 0)
        elif spec.kind == "indicator":
            frame[spec.name] = (rng.random(n_children) < 0.2).astype("float64")
            logit += 0.4 * frame[spec.name].to_numpy()
        else:
            frame[spec.name] = rng.normal(size=n_children)
            logit += (0.5 / (1 + j)) * frame[spec.name].to_numpy()
    frame["label"] = (rng.random(n_children) < 1 / (1 + np.exp(-logit))).astype("int8")
    frame["days_to_outcome"] = np.where(frame["label"] == 1, rng.integers(0, 180, n_children), np.nan)
    frame["already_out"] = (rng.random(n_children) < 0.02).astype("int8")
    return frame


def write_features(path: Path, n_rows: int, n_dates: int, specs, seed: int) -> tuple[int, dt.date]:
    """features.parquet written one as-of date at a time, so building it needs little memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_children = max(1, n_rows // n_dates)
    dates = pd.date_range("2023-01-01", periods=n_dates, freq="MS")
    export = (dates[-1] + pd.Timedelta(days=1)).date()
    writer = None
    for as_of in dates:
        frame = synthetic_month(as_of, n_children, specs, rng)
        frame["label_observed"] = as_of + pd.Timedelta(days=180) <= pd.Timestamp(export)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()
    return n_children * n_dates, export


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(phases: dict, name: str, fn):
    """Record wall and CPU seconds of `fn` (CPU time is the robust figure on a shared machine)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start, cpu = time.perf_counter(), cpu_seconds()
        try:
            return fn(*args, **kwargs)
        finally:
            wall0, cpu0 = phases.get(name, (0.0, 0.0))
            phases[name] = (wall0 + time.perf_counter() - start, cpu0 + cpu_seconds() - cpu)

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-rows", type=int, default=200_000)
    parser.add_argument("--n-dates", type=int, default=24)
    parser.add_argument("--n-features", type=int, default=60)
    parser.add_argument("--negative-sample-rate", type=float, default=1.0)
    parser.add_argument("--max-rounds", type=int, default=None, help="default: params.yaml")
    parser.add_argument("--num-threads", type=int, default=None, help="default: params.yaml")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )

    from src.models import train
    from tests.models.train_fixtures import write_facts

    catalogue.CATALOGUE = bench_catalogue(args.n_features)
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    start = time.perf_counter()
    n_rows, export = write_features(
        work / "features.parquet", args.n_rows, args.n_dates, catalogue.CATALOGUE, 1
    )
    baseline_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    log.info("wrote %d rows in %.1f s", n_rows, time.perf_counter() - start)
    lightgbm = {"max_rounds": args.max_rounds} if args.max_rounds else {}
    params = load_params(
        ROOT / "params.yaml",
        {
            "base": {"export_date": export},
            "train": {
                "negative_sample_rate": args.negative_sample_rate,
                "lightgbm": lightgbm,
                **({"num_threads": args.num_threads} if args.num_threads else {}),
            },
        },
    )
    phases: dict[str, tuple[float, float]] = {}
    # the names train.run and train.train_model call
    train.read_training_rows = timed(phases, "scan + sample", train.read_training_rows)
    train.run_backtest = timed(phases, "backtest", train.run_backtest)
    train.compare_constraints = timed(phases, "constraint comparison", train.compare_constraints)
    train.fit_with_training_auc = timed(phases, "final fit", train.fit_with_training_auc)
    train.log_training_run = timed(phases, "mlflow log + register", train.log_training_run)
    facts = write_facts(work / "features.parquet", params.label.horizon_days, export)
    start = time.perf_counter()
    train.run(work / "features.parquet", facts, work / "models", params)
    total = time.perf_counter() - start
    report(args, n_rows, work, phases, total, baseline_gib, params)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


# Phases that grow with the rows; the backtest and the constraint comparison run on at most
# train.backtest.max_children children, so beyond that they stay put.
LINEAR = ("scan + sample", "final fit")
CAPPED = ("backtest", "constraint comparison")


def report(args, n_rows: int, work: Path, phases: dict, total: float, baseline_gib: float, params) -> None:
    import json

    summary = json.loads((work / "models" / "train_summary.json").read_text())
    used = summary["periods"]["train"].get("rows_used", 0)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    n_children = n_rows // args.n_dates
    target_children = TARGET_ROWS // args.n_dates
    cap = params.train.backtest.max_children or target_children
    backtest_children = summary["backtest"]["children"]
    print(f"rows in features.parquet : {n_rows:,} ({n_children:,} children, {args.n_features} features, "
          f"{args.n_dates} as-of dates)")  # fmt: skip
    print(f"rows fitted              : {used:,} (negative_sample_rate {args.negative_sample_rate}); "
          f"backtest on {backtest_children:,} children, {summary['best_iteration']} final rounds")  # fmt: skip
    for name, (wall, cpu) in phases.items():
        print(f"  {name:<24}: {wall:7.1f} s wall, {cpu:7.1f} s CPU")
    print(f"total                    : {total:.1f} s wall; peak RSS {peak_gib:.2f} GiB "
          f"({baseline_gib:.2f} before training)")  # fmt: skip
    print(f"load average now         : {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    linear = TARGET_ROWS / n_rows
    capped = min(cap, target_children) / backtest_children
    projected = {name: cpu * (linear if name in LINEAR else capped if name in CAPPED else 1.0)
                 for name, (_, cpu) in phases.items()}  # fmt: skip
    other = max(0.0, total - sum(w for w, _ in phases.values()))
    minutes = (sum(projected.values()) / max(1, params.train.num_threads) + other) / 60
    print(f"projection to {target_children:,} children x {args.n_dates} dates: ~{minutes:.1f} min on "
          f"{params.train.num_threads} threads from CPU time (scan and final fit linear in rows, "
          f"backtest capped at {min(cap, target_children):,} children); peak memory <= "
          f"~{baseline_gib + (peak_gib - baseline_gib) * linear:.1f} GiB (upper bound)")  # fmt: skip


if __name__ == "__main__":
    main()
