"""Issue 15 target: the monitoring stage for 1M children in < 2 minutes on 2 cores.

Writes synthetic stage inputs (not timed): features.parquet with every model feature for 1M
children at each of --train-months training months and the scoring month (numeric features
uniform, categorical ones drawn from their catalogue categories, 5% unknown), children, six
source tables (--events per child per table over the last year), explanations (calibrated
scores for the scoring month) and 3 months of predictions. Then times `monitoring.run` end to
end: reading, the training-window sample (monitoring.reference_rows), PSI per feature, the
source-table record shares (DuckDB maps child_pid to a row; the records stream into flags),
the director cut, and the writes.

    .venv/bin/python benchmarks/bench_monitoring.py                    # 1M children
    .venv/bin/python benchmarks/bench_monitoring.py --children 200000

Run on demand, never inside a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from src.audit import monitoring  # noqa: E402
from src.config import load_params  # noqa: E402
from src.features import catalogue  # noqa: E402


def write_inputs(root: Path, n: int, train_months: int, events_per_child: float) -> None:
    rng = np.random.default_rng(0)
    features = catalogue.model_features()
    scoring = pd.Timestamp("2025-12-01")
    train = [scoring - pd.DateOffset(months=12 + i) for i in range(train_months)][::-1]
    pids = pd.Series([f"{i:064x}" for i in range(n)])
    path = root / "features.parquet"
    writer = None
    for as_of in [*train, scoring]:
        frame = {"child_pid": pids, "as_of": pd.Series(as_of, index=pids.index).astype("datetime64[us]"),
                 "already_out": np.zeros(n, dtype="int8")}  # fmt: skip
        for name in features:
            spec = catalogue.spec(name)
            if spec.kind == "categorical":
                cats = np.array(spec.categories or ("a", "b"), dtype=object)
                values = cats[rng.integers(0, len(cats), n)]
                values[rng.random(n) < 0.05] = None
                frame[name] = values
            else:
                values = rng.random(n) * 100
                values[rng.random(n) < 0.05] = np.nan
                frame[name] = values
        frame["months_of_history"] = np.full(n, 12.0)
        table = pa.Table.from_pandas(pd.DataFrame(frame), preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()
    interim = root / "interim"
    interim.mkdir()
    pd.DataFrame({"child_pid": pids, "county_code": [f"C{i % 60:02d}" for i in range(n)],
                  "caseworker_id": [f"W{i // 100:06d}" for i in range(n)]}).to_parquet(interim / "children.parquet")  # fmt: skip
    per_table = int(n * events_per_child)
    for table, column in monitoring.SOURCES.items():
        days = rng.integers(0, 730, per_table)
        pd.DataFrame({"child_pid": pids.to_numpy()[rng.integers(0, n, per_table)],
                      column: (scoring - pd.to_timedelta(days, unit="D")).astype("datetime64[us]")}).to_parquet(
            interim / f"{table}.parquet")  # fmt: skip
    pd.DataFrame({"child_pid": pids, "as_of": scoring, "score": rng.beta(2, 10, n)}).to_parquet(root / "explanations.parquet")
    m = 3 * n // 10
    pd.DataFrame({"as_of": np.repeat(pd.to_datetime(["2025-04-01", "2025-05-01", "2025-06-01"]), m // 3),
                  "score": rng.beta(2, 10, m // 3 * 3), "label": rng.integers(0, 2, m // 3 * 3).astype("int8"),
                  "selected": rng.random(m // 3 * 3) < 0.05}).to_parquet(root / "predictions.parquet")  # fmt: skip
    (root / "models").mkdir()
    summary = {"split": {"train": [d.date().isoformat() for d in train]}, "features": features, "categorical_features": {}}
    (root / "models" / "train_summary.json").write_text(json.dumps(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=1_000_000)
    parser.add_argument("--train-months", type=int, default=3)
    parser.add_argument("--events", type=float, default=4.0, help="rows per child per source table")
    args = parser.parse_args()
    params = load_params(ROOT / "params.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        write_inputs(root, args.children, args.train_months, args.events)
        print(f"inputs written in {time.perf_counter() - start:.1f} s (not timed)")
        start = time.perf_counter()
        result = monitoring.run(root / "features.parquet", root / "interim", root / "explanations.parquet",
                                root / "predictions.parquet", root / "models", root / "out", root / "metrics.json",
                                params)  # fmt: skip
        elapsed = time.perf_counter() - start
    print(f"monitoring: {args.children:,} children x {args.train_months + 1} months, "
          f"{args.events:g} rows/child in each of {len(monitoring.SOURCES)} source tables: {elapsed:.1f} s {result}")  # fmt: skip


if __name__ == "__main__":
    main()
