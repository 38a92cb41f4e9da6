"""The scaling curve: the features stage on DuckDB and on Spark at several sizes, on this machine.

    python benchmarks/bench_scale.py --out /tmp/bench_scale \
        [--sizes 100000,300000,1000000] [--engines duckdb,spark] \
        [--interim 1000000=/tmp/m1/data/interim] [--driver-memory 8g]

For each size, the interim tables come from ``--interim SIZE=FOLDER`` (read only) or are
generated and ingested under ``<out>/n<size>/`` (100 counties, as the 1M reference export;
reused when already there). Each engine then runs the real stage (``python -m src.cli
features``) in its own process under GNU time, with a params copy that sets only
``features.engine`` (Spark: ``local[*]``, all the machine's cores). Writes ``scale.json``
(one entry per size and engine: wall and CPU seconds, the process tree's CPU included, peak
RSS of the largest process, rows, the load average when it ended: on a shared machine wall
times are upper bounds; for Spark the CPU covers the Python driver only, since the JVM is not
a waited-for child) and
``scale.png`` (wall seconds against children, one line per engine) into ``--out``, and
prints one JSON line per run. DuckDB is expected to win on one small machine: the point is
how each grows with the data (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_pipeline  # noqa: E402

DEFAULT_SIZES = "100000,300000,1000000"
COUNTIES = 100


def write_params(work: Path, n_children: int, engine: str, driver_memory: str) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["synthetic"]["n_children"] = n_children
    params["synthetic"]["n_counties"] = COUNTIES
    params["synthetic"]["departments"]["enabled"] = False  # linkage is not measured here
    params["features"]["engine"] = engine
    params["spark"]["driver_memory"] = driver_memory
    path = work / f"params-{engine}.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def interim_for(size: int, given: dict[int, Path], out: Path, driver_memory: str) -> Path:
    """The given interim folder, or one generated and ingested under ``out`` (reused)."""
    if size in given:
        return given[size]
    work = out / f"n{size}"
    interim = work / "data" / "interim"
    if not (interim / "children.parquet").exists():
        (work / "reports").mkdir(parents=True, exist_ok=True)
        params = write_params(work, size, "duckdb", driver_memory)
        commands = bench_pipeline.stage_commands(work)
        for stage in ("generate", "ingest"):
            bench_pipeline.run_stage(stage, commands[stage], params, work)
    return interim


def run_features(interim: Path, work: Path, params: Path) -> dict:
    """The features stage in its own process: wall seconds, peak RSS (GiB), rows."""
    out = work / params.stem
    out.mkdir(parents=True, exist_ok=True)
    summary = out / "features_summary.json"
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "src.cli", "--params", str(params),
           "features", "--interim", str(interim), "--out", str(out / "features.parquet"),
           "--summary", str(summary)]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ))
    seconds = time.perf_counter() - start
    (out / "stderr.log").write_text(proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        raise SystemExit(f"features failed: {params}; see {out / 'stderr.log'}")

    def measured(label: str) -> float:
        return float(re.search(rf"{label}: ([\d.]+)", proc.stderr).group(1))

    cpu = measured(r"User time \(seconds\)") + measured(r"System time \(seconds\)")
    rss = measured(r"Maximum resident set size \(kbytes\)")
    rows = json.loads(summary.read_text(encoding="utf-8"))["rows"]
    return {"seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
            "peak_gib": round(rss / 2**20, 2), "rows": rows, "load_before": os.getloadavg()[0]}  # fmt: skip


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for engine in sorted({r["engine"] for r in results}):
        points = sorted((r["children"], r["seconds"]) for r in results if r["engine"] == engine)
        ax.plot(*zip(*points, strict=True), marker="o", label=engine)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("children (36 months of history)")
    ax.set_ylabel("features stage, wall seconds")
    ax.set_title(f"features stage on {os.cpu_count()} cores")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_interim(values: list[str]) -> dict[int, Path]:
    given = {}
    for value in values:
        size, _, folder = value.partition("=")
        given[int(size)] = Path(folder)
    return given


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_scale"))
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="children, comma-separated")
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--interim", action="append", default=[], help="SIZE=FOLDER, read only")
    parser.add_argument("--driver-memory", default="8g", help="spark.driver_memory of the runs")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    given = parse_interim(args.interim)
    results_path = out / "scale.json"
    results = json.loads(results_path.read_text())["runs"] if results_path.exists() else []
    for size in (int(s) for s in args.sizes.split(",")):
        interim = interim_for(size, given, out, args.driver_memory)
        work = out / f"n{size}"
        work.mkdir(parents=True, exist_ok=True)
        for engine in args.engines.split(","):
            params = write_params(work, size, engine, args.driver_memory)
            run = {"children": size, "engine": engine, **run_features(interim, work, params)}
            print(json.dumps(run), flush=True)
            results = [r for r in results if (r["children"], r["engine"]) != (size, engine)]
            results.append(run)
            machine = {"cores": os.cpu_count(), "python": platform.python_version()}
            results_path.write_text(json.dumps({"machine": machine, "runs": results}, indent=2))
            plot(results, out / "scale.png")


if __name__ == "__main__":
    main()
