"""Linkage and screening (issue 17): quality against the generator's truth, time and memory.

    python benchmarks/bench_linkage.py --n-children 20000                 # quality at the default noise
    python benchmarks/bench_linkage.py --n-children 100000 --months 12    # the scale target
    python benchmarks/bench_linkage.py --n-children 1000000 --months 12 --workdir /tmp/link1m

--n-counties defaults to max(6, n_children // 10,000), about as many counties as a real
population of that size spans. With --workdir, the folder is kept and an export already
generated and ingested there is reused (only linkage and screening run again).

Runs the real stages as the pipeline does (`safetynet generate`, `ingest`, `linkage`,
`screening`, each its own process, with params.yaml plus the overrides below), in a scratch
folder. Reports each stage's wall time and peak RSS (the process's, DuckDB included), the
pairwise precision and recall of the linkage against linkage_truth.parquet, and the screening's
recall over the unregistered at-risk children and its precision. The review queue is left
undecided (a pair in it counts as not linked). Writes the result as JSON (--out).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.linkage import comparisons, records, scoring, screening  # noqa: E402
from src.linkage.linkage import LINKED_FILE  # noqa: E402

FILES = {"raw": "raw", "interim": "interim", "dq": "dq.json", "linkage": "linkage",
         "report": "linkage.json", "figure": "l.png", "screening": "screening",
         "screening_report": "screening.json"}  # fmt: skip


def stage(args: list[str], params: Path) -> dict:
    """One CLI stage in its own process: wall and CPU seconds (on a shared machine the wall
    time is an upper bound) and peak RSS (GiB)."""
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cli = [sys.executable, "-m", "src.cli", "--params", str(params)]
    subprocess.run([*cli, *args], cwd=ROOT, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    # RUSAGE_CHILDREN is the largest child so far: exact for a child larger than every earlier one
    return {"seconds": round(time.perf_counter() - start, 1), "cpu_seconds": round(cpu, 1),
            "peak_rss_gib": round(max(after.ru_maxrss, before.ru_maxrss) / 2**20, 2),
            "peak_is_this_stage": after.ru_maxrss > before.ru_maxrss}  # fmt: skip


def params_file(folder: Path, args, n_counties: int) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    raw["synthetic"].update(n_children=args.n_children, months=args.months, n_counties=n_counties)
    if args.seed is not None:
        raw["base"]["seed"] = args.seed
    if args.other_county is not None:
        raw["synthetic"]["departments"]["noise"]["other_county"] = args.other_county
    raw["data"]["raw_dir"] = str(folder / "raw")
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def quality(folder: Path, lookback_days: int) -> dict:
    truth = scoring.truth_records(
        pd.read_parquet(folder / "raw/linkage_truth.parquet"),
        pd.read_parquet(folder / "interim/identity.parquet"),
    )
    linked = pd.read_parquet(folder / "linkage" / LINKED_FILE)
    export = json.loads((folder / "interim/manifest.json").read_text())["export_date"]
    since = pd.Timestamp(export) - pd.Timedelta(days=lookback_days)
    screened = screening.screen(
        linked,
        pd.read_parquet(folder / "interim/persons.parquet"),
        pd.read_parquet(folder / "interim/department_events.parquet"),
        since,
    )
    return {
        "linkage": scoring.pairwise(linked, truth),
        "screening": scoring.screening(screened["child_pid"], linked, truth),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-children", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--n-counties", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None, help="base.seed (default: params.yaml's)")
    parser.add_argument("--other-county", type=float, default=None,
                        help="synthetic.departments.noise.other_county (default: params.yaml's)")  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=None, help="kept; its export is reused")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    n_counties = args.n_counties or max(6, args.n_children // 10_000)
    with contextlib.ExitStack() as stack:
        if args.workdir:
            folder = args.workdir.resolve()
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_linkage.")))
        params = params_file(folder, args, n_counties)
        f = {k: str(folder / v) for k, v in FILES.items()}
        commands = {
            "generate": ["--out", f["raw"]],
            "ingest": ["--raw", f["raw"], "--interim", f["interim"], "--quality", f["dq"]],
            "linkage": ["--interim", f["interim"], "--out", f["linkage"],
                        "--report", f["report"], "--figure", f["figure"]],
            "screening": ["--interim", f["interim"], "--linkage", f["linkage"],
                          "--out", f["screening"], "--report", f["screening_report"]],
        }  # fmt: skip
        if (folder / "interim/manifest.json").exists():  # an export generated and ingested before
            del commands["generate"], commands["ingest"]
        timings = {name: stage([name, *rest], params) for name, rest in commands.items()}
        report = json.loads((folder / "linkage.json").read_text())
        result = {
            "n_children": args.n_children,
            "months": args.months,
            "n_counties": n_counties,
            "params": {k: v for k, v in vars(args).items() if k in ("seed", "other_county")},
            "records_by_source": report["records_by_source"],
            "pairs_compared": sum(p["compared"] for p in report["by_source_pair"]),
            "pairs_per_rule": comparisons.rule_pairs(records.read_records(folder / "interim")),
            "review_queue": report["review_queue"]["pairs"],
            "registry_conflicts_split": report["registry_conflicts_split"],
            "stages": timings,
            **quality(folder, yaml.safe_load(params.read_text())["screening"]["lookback_days"]),
        }
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
