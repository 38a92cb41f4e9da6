"""Time and memory of the train stage on synthetic feature rows, with a projection to 24M rows.

    python benchmarks/bench_train.py --n-rows 200000 --negative-sample-rate 0.2

Builds a features.parquet of --n-rows rows (n_rows / --n-dates children x --n-dates month-start
as-of dates, --n-features features of the catalogue's kinds), runs the real
`src.models.train.run` against a throw-away MLflow store, and reports each phase. The
projection scales the scan by total rows and the fit by the rows actually fitted, to
1M children x 24 as-of dates. Never run it at full scale on a shared machine.
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


def synthetic_frame(n_rows: int, n_dates: int, specs, seed: int) -> tuple[pd.DataFrame, dt.date]:
    rng = np.random.default_rng(seed)
    n_children = max(1, n_rows // n_dates)
    as_of = pd.date_range("2023-01-01", periods=n_dates, freq="MS").as_unit("us")
    n = n_children * n_dates
    frame = pd.DataFrame(
        {
            "child_pid": np.repeat([f"{i:064x}" for i in range(n_children)], n_dates),
            "as_of": np.tile(as_of, n_children),
        }
    )
    logit = np.full(n, -3.0)
    for j, spec in enumerate(specs):
        if spec.kind == "categorical":
            codes = rng.integers(0, len(CATEGORIES), size=n)
            frame[spec.name] = pd.Categorical.from_codes(codes, categories=list(CATEGORIES))
            logit += 0.3 * (codes == 0)
        elif spec.kind == "indicator":
            frame[spec.name] = (rng.random(n) < 0.2).astype("float64")
            logit += 0.4 * frame[spec.name].to_numpy()
        else:
            values = rng.normal(size=n)
            frame[spec.name] = values
            logit += (0.5 / (1 + j)) * values
    export = (as_of[-1] + pd.Timedelta(days=1)).date()
    frame["label"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int8")
    frame["label_observed"] = (frame["as_of"] + pd.Timedelta(days=180)) <= pd.Timestamp(export)
    frame["already_out"] = (rng.random(n) < 0.02).astype("int8")
    return frame, export


def timed(phases: dict, name: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - start

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-rows", type=int, default=200_000)
    parser.add_argument("--n-dates", type=int, default=24)
    parser.add_argument("--n-features", type=int, default=60)
    parser.add_argument("--negative-sample-rate", type=float, default=1.0)
    parser.add_argument("--max-rounds", type=int, default=None, help="default: params.yaml")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")

    from src.models import train, tracking

    catalogue.CATALOGUE = bench_catalogue(args.n_features)
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    start = time.perf_counter()
    frame, export = synthetic_frame(args.n_rows, args.n_dates, catalogue.CATALOGUE, seed=1)
    frame.to_parquet(work / "features.parquet", index=False, row_group_size=500_000)
    n_rows = len(frame)
    del frame
    log.info("wrote %d rows in %.1f s", n_rows, time.perf_counter() - start)
    lightgbm = {"max_rounds": args.max_rounds} if args.max_rounds else {}
    params = load_params(
        ROOT / "params.yaml",
        {
            "base": {"export_date": export},
            "train": {"negative_sample_rate": args.negative_sample_rate, "lightgbm": lightgbm},
        },
    )
    phases: dict[str, float] = {}
    train.read_training_rows = timed(phases, "scan + sample", train.read_training_rows)
    train.train_model = timed(phases, "fit + calibrate", train.train_model)
    tracking.log_training_run = timed(phases, "mlflow log + register", tracking.log_training_run)
    start = time.perf_counter()
    result = train.run(work / "features.parquet", work / "models", params)
    total = time.perf_counter() - start
    report(args, n_rows, work, phases, total, result)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def report(args, n_rows: int, work: Path, phases: dict, total: float, result: dict) -> None:
    import json

    summary = json.loads((work / "models" / "train_summary.json").read_text())
    used = sum(p.get("rows_used", 0) for p in summary["periods"].values())
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    scale_rows = TARGET_ROWS / n_rows
    fit = phases.get("fit + calibrate", 0.0)
    scan = phases.get("scan + sample", 0.0)
    other = total - fit - scan - phases.get("mlflow log + register", 0.0)
    projected = scan * scale_rows + fit * scale_rows + other * scale_rows + phases.get("mlflow log + register", 0.0)
    print(f"rows in features.parquet : {n_rows:,} ({args.n_features} features, {args.n_dates} as-of dates)")
    print(f"split (as-of dates)      : train {len(summary['split']['train'])}, val {len(summary['split']['val'])}, "
          f"test {len(summary['split']['test'])}")  # fmt: skip
    print(f"rows fitted (train + val): {used:,} (negative_sample_rate {args.negative_sample_rate})")
    print(f"best iteration           : {summary['best_iteration']}; val AUC {result['val_auc']:.4f}")
    for name, seconds in phases.items():
        print(f"  {name:<24}: {seconds:7.1f} s")
    print(f"  {'other (digest, counts)':<24}: {other:7.1f} s")
    print(f"total                    : {total:.1f} s; peak RSS {peak_gib:.2f} GiB (includes building the frame)")
    print(f"projection to {TARGET_ROWS / 1e6:.0f}M rows (linear in rows, same sample rate and rounds): "
          f"~{projected / 60:.1f} min")  # fmt: skip


if __name__ == "__main__":
    main()
