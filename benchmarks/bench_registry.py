"""Issue 12 item 6: how much the registry read as of export leaks, on the default synthetic run.

One export from the project's generator (params.yaml: 20,000 children, 36 months) with its
registry_history table, then three ways of reading the registry, each trained and evaluated on
the same untouched test months:

- ``history``: registry_history present, category / guardian_type / disability_level as of
  each as-of date;
- ``absent_exclude``: the table removed, the fields an outcome can update left out of the
  model (``features.registry_as_of_export: exclude``, the default);
- ``absent_keep``: the table removed and the as-of-export fields kept (the leak).

It prints test AUC, precision at capacity, the oracle's AUC and the gain share of
guardian_type and category in the booster.

    .venv/bin/python benchmarks/bench_registry.py                 # 20k children, params.yaml seed
    .venv/bin/python benchmarks/bench_registry.py --children 6000 # a quick look
    .venv/bin/python benchmarks/bench_registry.py --keep /tmp/b --reuse --modes absent_keep

Run on demand, never inside a test. MLflow goes to a scratch store.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lightgbm as lgb  # noqa: E402

from src.config import load_params  # noqa: E402
from src.data import generate, ingest  # noqa: E402
from src.data.contract import REGISTRY_HISTORY  # noqa: E402
from src.features import features  # noqa: E402
from src.models import evaluate, train  # noqa: E402

MODES = ("history", "absent_exclude", "absent_keep")
WATCHED = ("guardian_type", "category")


def without_history(raw: Path, out: Path) -> None:
    """A copy of the raw folder (hard links) without the registry_history table."""
    out.mkdir()
    for path in raw.iterdir():
        if path.stem != REGISTRY_HISTORY:
            os.link(path, out / path.name)


def evaluate_mode(work: Path, interim: Path, params, mode: str, quick: bool) -> dict:
    keep = "keep" if mode == "absent_keep" else "exclude"
    overrides = {"synthetic": {"n_children": params.synthetic.n_children},
                 "features": {"registry_as_of_export": keep}}  # fmt: skip
    if quick:  # one candidate in the backtest search: the configured settings
        overrides["train"] = {"backtest": {"search_trials": 1}}
    params = load_params(ROOT / "params.yaml", overrides)
    out = work / mode
    out.mkdir(exist_ok=True)
    start = time.perf_counter()
    if not (out / "features.json").exists():  # features.run writes the summary last
        features.run(interim, out / "features.parquet", out / "features.json", params)
    train.run(out / "features.parquet", out / "features.json", out / "models", params)
    evaluate.run(out / "features.parquet", interim, out / "models", out / "metrics.json",
                 out / "by_month.json", out / "plots", out / "figures", out / "predictions.parquet",
                 out / "headline.json", params)  # fmt: skip
    return {**summarise(out, mode), "seconds": round(time.perf_counter() - start)}


def summarise(out: Path, mode: str) -> dict:
    """One mode's figures from its folder (metrics.json, features.json, booster.txt)."""
    metrics = json.loads((out / "metrics.json").read_text())
    registry = json.loads((out / "features.json").read_text())["registry"]
    booster = lgb.Booster(model_file=str(out / "models" / "booster.txt"))
    gain = dict(zip(booster.feature_name(), booster.feature_importance("gain"), strict=True))
    total = sum(gain.values()) or 1.0
    return {
        "mode": mode,
        "registry_read": registry["read"],
        "excluded": registry["excluded"],
        "auc": metrics["test"]["auc_roc"],
        "precision_at_k": metrics["test"]["precision_at_k"],
        "oracle_auc": metrics["baselines"]["oracle"]["auc_roc"],
        "oracle_precision_at_k": metrics["baselines"]["oracle"]["precision_at_k"],
        "peer_precision_at_k": metrics["baselines"]["lightgbm_peer"]["precision_at_k"],
        **{f"gain_share_{f}": round(gain.get(f, 0.0) / total, 4) for f in WATCHED},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--children", type=int, default=None, help="default: params.yaml")
    parser.add_argument("--keep", type=Path, default=None, help="keep the scratch folder here")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the export and interim folders already in --keep")
    parser.add_argument("--quick", action="store_true",
                        help="train.backtest.search_trials = 1 in every mode")
    parser.add_argument("--report", action="store_true",
                        help="only report the modes already run in --keep")  # fmt: skip
    args = parser.parse_args()
    overrides = {"synthetic": {"n_children": args.children}} if args.children else None
    params = load_params(ROOT / "params.yaml", overrides)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-registry-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{(work / 'mlflow.db').as_posix()}")
    if args.report:
        show([summarise(work / mode, mode) for mode in args.modes])
        return
    try:
        if not (args.reuse and (work / "interim_absent" / "manifest.json").exists()):
            generate.run(work / "raw", params)
            without_history(work / "raw", work / "raw_absent")
            ingest.run(work / "raw", work / "interim", work / "dq.json", params)
            ingest.run(work / "raw_absent", work / "interim_absent", work / "dq_absent.json", params)
        rows = [
            evaluate_mode(work, work / ("interim" if mode == "history" else "interim_absent"),
                          params, mode, args.quick)
            for mode in args.modes
        ]  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    show(rows)


def show(rows: list[dict]) -> None:
    print(f"{'mode':<16}{'read':<17}{'test AUC':>9}{'oracle':>8}{'P@k':>8}"
          f"{'gain guardian':>15}{'gain category':>15}  excluded")  # fmt: skip
    for r in rows:
        print(f"{r['mode']:<16}{r['registry_read']:<17}{r['auc']:>9.4f}{r['oracle_auc']:>8.4f}"
              f"{r['precision_at_k']:>8.4f}{r['gain_share_guardian_type']:>15.4f}"
              f"{r['gain_share_category']:>15.4f}  {', '.join(r['excluded']) or '-'}")  # fmt: skip
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
