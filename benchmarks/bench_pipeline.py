"""Run the real stages at scale, one at a time, and report wall time and peak memory of each.

    python benchmarks/bench_pipeline.py --n-children 1000000 --workdir /tmp/bench_pipeline

Every stage of dvc.yaml runs (or `--stages`, a subset), in an order its deps allow, through
the CLI (`python -m src.cli --params ... <stage> ...`) in its own process under GNU time, so
its peak RSS is measured alone. A params copy in the work dir carries the overrides
(children, down-sampling for training, any `--set section.key=value`); MLflow goes to a store
in the work dir, never the project's. Prints one JSON line per stage and a summary table, and
compares each with the targets of the issues:

    generate 1M x 36 months   < 15 min, < 12 GiB     ingest 1M              < 10 min, < 8 GiB
    features 1M x 24 as-of    < 15 min, < 12 GiB     train (sampled)        < 20 min, < 16 GiB
    explain + watchlist 1M    < 5 min                the whole pipeline 1M  < 30 min, < 12 GiB
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {  # stage -> (seconds, GiB or None)
    "generate": (15 * 60, 12),
    "ingest": (10 * 60, 8),
    "features": (15 * 60, 12),
    "train": (20 * 60, 16),
    "evaluate": (None, None),
    "explain": (None, None),
    "watchlist": (None, None),
}
PIPELINE = (30 * 60, 12)  # every stage, one after another, at 1M children (issue 18)
COMBINED = {("explain", "watchlist"): 5 * 60}  # scoring + SHAP + watchlists together


def stage_commands(work: Path) -> dict[str, list[str]]:
    """Every stage of dvc.yaml, in an order its deps allow, as CLI arguments with each
    `${paths.*}` moved into `work` (and the raw exports read from the generated ones)."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    paths = {f"paths.{k}": str(work / v) for k, v in spec["vars"][0]["paths"].items()}
    values = {**paths, "data.raw_dir": paths["paths.synthetic"]}

    def resolve(text: str) -> str:
        return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], text)

    def named(entries) -> list[str]:
        return [resolve(e if isinstance(e, str) else next(iter(e))) for e in entries or ()]

    stages = {}
    for name, stage in spec["stages"].items():
        outs = named(stage.get("outs")) + named(stage.get("metrics")) + named(stage.get("plots"))
        stages[name] = (shlex.split(resolve(stage["cmd"]))[3:], named(stage.get("deps")), outs)  # after python -m src.cli
    ordered, done = {}, set()
    while len(ordered) < len(stages):
        for name, (args, deps, _) in stages.items():
            needs = {other for other, (_, _, outs) in stages.items() if other != name
                     and any(d == o or d.startswith(o + "/") for d in deps for o in outs)}  # fmt: skip
            if name not in done and needs <= done:
                ordered[name] = args
                done.add(name)
                break
        else:
            raise SystemExit("dvc.yaml: the stages' deps form a cycle")
    return ordered


def write_params(
    work: Path,
    n_children: int,
    sample_rate: float,
    margin: float | None,
    n_counties: int | None = None,
    overrides: tuple[str, ...] = (),
) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["synthetic"]["n_children"] = n_children
    # about as many counties as a real population of that size spans (linkage blocks by county)
    params["synthetic"]["n_counties"] = n_counties or max(6, n_children // 10_000)
    params["train"]["negative_sample_rate"] = sample_rate
    if margin is not None:
        params["explain"]["shap_margin"] = margin
    for item in overrides:  # section.key=value, the value read as YAML
        dotted, _, value = item.partition("=")
        *sections, key = dotted.split(".")
        node = params
        for section in sections:
            node = node[section]
        if key not in node:
            raise SystemExit(f"--set {item}: params.yaml has no {dotted}")
        node[key] = yaml.safe_load(value)
    path = work / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def run_stage(name: str, args: list[str], params: Path, work: Path) -> dict:
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}")
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "src.cli", "--params", str(params), *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"stage {name} failed")
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    # user + system CPU seconds: less distorted than wall time when others share the cores
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", proc.stderr).group(1))
              for kind in ("User", "System"))  # fmt: skip
    limit_s, limit_gib = TARGETS.get(name, (None, None))
    result = {"stage": name, "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
              "peak_gib": round(rss_kib / 2**20, 2)}  # fmt: skip
    result["within_target"] = (limit_s is None or seconds < limit_s) and (
        limit_gib is None or rss_kib / 2**20 < limit_gib
    )
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-children", type=int, default=20_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_pipeline"))
    parser.add_argument("--negative-sample-rate", type=float, default=0.25)
    parser.add_argument(
        "--stages", default=None, help="comma-separated subset, in order (default: every dvc.yaml stage)"
    )
    parser.add_argument(
        "--shap-margin", type=float, help="override explain.shap_margin"
    )
    parser.add_argument("--n-counties", type=int, help="default: max(6, n_children // 10,000)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override any param, e.g. --set train.backtest.search_trials=1 (repeatable)")
    args = parser.parse_args()
    work = args.workdir.resolve()
    (work / "reports").mkdir(parents=True, exist_ok=True)
    params = write_params(
        work, args.n_children, args.negative_sample_rate, args.shap_margin, args.n_counties, tuple(args.set)
    )
    commands = stage_commands(work)
    names = args.stages.split(",") if args.stages else list(commands)
    results = [run_stage(name, commands[name], params, work) for name in names]
    print(f"\n{args.n_children:,} children")
    print(f"{'stage':<10} {'seconds':>9} {'CPU s':>9} {'peak GiB':>9}  target met")
    for r in results:
        print(f"{r['stage']:<10} {r['seconds']:>9.1f} {r['cpu_seconds']:>9.1f} {r['peak_gib']:>9.2f}  "
              f"{r['within_target']}")  # fmt: skip
    seconds = {r["stage"]: r["seconds"] for r in results}
    for stages, limit in COMBINED.items():
        if all(stage in seconds for stage in stages):
            total = sum(seconds[stage] for stage in stages)
            print(f"{' + '.join(stages)}: {total:.1f} s, target < {limit} s: {total < limit}")
    if len(results) == len(commands):
        total, peak = sum(seconds.values()), max(r["peak_gib"] for r in results)
        print(f"whole pipeline: {total:.1f} s, peak {peak:.2f} GiB; target < {PIPELINE[0]} s and "
              f"< {PIPELINE[1]} GiB: {total < PIPELINE[0] and peak < PIPELINE[1]}")  # fmt: skip


if __name__ == "__main__":
    main()
