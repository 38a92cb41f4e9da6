"""Issue 12: how far more data would take the model on a small export's test months.

A small export's model learns from its own few thousand children. To tell the data's limit
apart from what the feature set can carry at all, this trains the same booster (the small
model's own LightGBM parameters, monotone constraints included) on the training dates of a
large export from the same generator (another seed) and scores the small export's untouched
test rows. The AUC ratio to the oracle (the generator's true risk) on those rows is reported
for the small model (`bench_quality`'s figure) and for the large-data fit at the small model's
rounds and at 3x and 6x them. The best of those is an optimistic ceiling: it is chosen on
the test rows, which only a bound may do.

    .venv/bin/python benchmarks/bench_ceiling.py --seeds 1 4                 # 6k exports, 60k train
    .venv/bin/python benchmarks/bench_ceiling.py --small 6000 --large 20000 --seeds 4   # quicker

Run on demand, never inside a test. MLflow goes to a scratch store.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import lightgbm as lgb
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_quality import export_features, one_export  # noqa: E402

from src.models.boosting import training_set  # noqa: E402
from src.models.evaluation_data import read_truth  # noqa: E402
from src.models.scoring import prepare_features  # noqa: E402
from src.models.training_data import KEYS, open_features, read_cohort_rows  # noqa: E402

ROUND_FACTORS = (1, 3, 6)


def rows(path: Path, dates: list[str], names: list[str], categories: dict) -> tuple:
    """The rows train and evaluate read at `dates` (observed labels, not already out): keys,
    model input, label."""
    frame = read_cohort_rows(open_features(path, names), dates, names, categories, labelled=True)
    x = prepare_features(frame, names, categories)
    return frame[KEYS], x, frame["label"].to_numpy()


def ceiling(small: Path, large: Path) -> dict:
    summary = json.loads((small / "models" / "train_summary.json").read_text())
    names, categories = summary["features"], summary["categorical_features"]
    split = summary["split"]
    booster = lgb.Booster(model_file=str(small / "models" / "booster.txt"))
    keys, x_test, y_test = rows(small / "features.parquet", split["test"], names, categories)
    truth = read_truth(small / "interim", split["test"])
    p_true = keys.merge(truth, on=KEYS, how="left")["p_true"].to_numpy()
    oracle = roc_auc_score(y_test, p_true)
    _, x_train, y_train = rows(large / "features.parquet", split["train"], names, categories)
    dropped = ("num_iterations", "early_stopping_round", "categorical_feature")
    params = {k: v for k, v in booster.params.items() if k not in dropped}
    rounds = booster.current_iteration()
    fitted = lgb.train(
        params, training_set(x_train, y_train), num_boost_round=rounds * max(ROUND_FACTORS)
    )
    ratios = {f"{f}x": roc_auc_score(y_test, fitted.predict(x_test, num_iteration=rounds * f)) / oracle
              for f in ROUND_FACTORS}  # fmt: skip
    metrics = json.loads((small / "metrics.json").read_text())
    return {
        "small_auc_ratio": metrics["ratios"]["model_to_oracle"]["auc_roc"],
        "small_train_rows": summary["periods"]["train"]["rows"], "large_train_rows": len(y_train),
        "rounds": rounds, **{f"large_{k}": round(v, 4) for k, v in ratios.items()},
        "ceiling": round(max(ratios.values()), 4),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=6000)
    parser.add_argument("--large", type=int, default=60000)
    parser.add_argument("--large-seed", type=int, default=104)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-ceiling-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch / 'mlflow.db'}"
    large = scratch / f"{args.large}-{args.large_seed}"
    export_features(large, args.large, args.large_seed)
    for seed in args.seeds:
        work = scratch / f"{args.small}-{seed}"
        one_export(work, args.small, seed)
        print(
            json.dumps({"children": args.small, "seed": seed, **ceiling(work, large)}), flush=True
        )
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
