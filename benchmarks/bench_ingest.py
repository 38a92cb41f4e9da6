"""Benchmark the ingest stage: wall time and peak RSS for a synthetic export of N children.

    python benchmarks/bench_ingest.py --n-children 50000
    python benchmarks/bench_ingest.py --raw data/synthetic        # an existing export

The export comes from src/data/generate.py when `--use-generator` is given and it works;
otherwise a fast vectorised fake export of contract-valid rows (about 100 event rows per
child, like 36 months of real activity) is written here. Ingest runs in a child process so
its peak RSS is measured alone. Target at 1,000,000 children: < 10 min, < 8 GiB.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.data import contract  # noqa: E402

log = logging.getLogger("bench_ingest")
ROWS_PER_CHILD = {  # event rows per child over 36 months
    "welfare_events": 40,
    "school_absences": 35,
    "casework_visits": 12,
    "medical_events": 10,
    "school_enrollment": 3,
}
START = np.datetime64("2022-01-01")
DAYS = 3 * 365


def fake_export(out: Path, n_children: int, seed: int = 0) -> int:
    """Contract-valid CSVs for n children; returns the number of rows written."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    ids = np.char.add("C", np.arange(n_children).astype(str))
    children = {
        "child_id": ids,
        "name": np.char.add("儿童", np.arange(n_children).astype(str)),
        "id_number": np.char.zfill(np.arange(n_children).astype(str), 18),
        "sex": rng.choice(contract.SEX, n_children),
        "birth_date": _dates(rng, n_children, np.datetime64("2006-01-01"), 16 * 365),
        "ethnicity": rng.choice(contract.ETHNICITY, n_children),
        "hukou": rng.choice(contract.HUKOU, n_children),
        "county_code": rng.choice(["110101", "110102", "130102"], n_children),
        "community_code": np.char.add("CM", rng.integers(0, 200, n_children).astype(str)),
        "caseworker_id": np.char.add("CW", rng.integers(0, 200, n_children).astype(str)),
        "category": rng.choice(contract.CATEGORY, n_children),
        "disability_level": rng.integers(0, 5, n_children).astype(str),
        "guardian_type": rng.choice(contract.GUARDIAN_TYPE, n_children),
        "registered_date": _dates(rng, n_children, np.datetime64("2020-01-01"), 700),
    }
    _write(out / "children.csv", children)
    total = n_children
    for table, per_child in ROWS_PER_CHILD.items():
        n = n_children * per_child
        who = ids[rng.integers(0, n_children, n)]
        _write(out / f"{table}.csv", _event_columns(table, rng, who))
        total += n
    return total


def _event_columns(table: str, rng, who) -> dict:
    n = len(who)
    date = _dates(rng, n, START, DAYS)
    if table == "welfare_events":
        return {
            "child_id": who,
            "event_date": date,
            "event_type": np.full(n, "payment"),
            "benefit": rng.choice(contract.BENEFIT, n),
            "amount_cny": rng.integers(600, 1900, n).astype(str),
            "reason": np.full(n, ""),
        }
    if table == "school_absences":
        return {
            "child_id": who,
            "absence_date": date,
            "school_id": np.char.add("S", rng.integers(0, 500, n).astype(str)),
            "absence_type": rng.choice(contract.ABSENCE_TYPE, n),
            "days": rng.choice(["1", "0.5"], n),
        }
    if table == "casework_visits":
        concerns = {c: (rng.random(n) < 0.1).astype(int).astype(str) for c in contract.CONCERNS}
        return {
            "child_id": who,
            "visit_date": date,
            "caseworker_id": np.full(n, "CW1"),
            "mode": rng.choice(contract.VISIT_MODE, n),
            **concerns,
        }
    if table == "medical_events":
        cost = rng.integers(0, 5000, n)
        return {
            "child_id": who,
            "event_date": date,
            "event_type": rng.choice(contract.MEDICAL_EVENT, n),
            "diagnosis_group": rng.choice(contract.DIAGNOSIS_GROUP, n),
            "cost_cny": cost.astype(str),
            "out_of_pocket_cny": (cost // 3).astype(str),
        }
    return {
        "child_id": who,
        "event_date": date,
        "school_id": np.full(n, "S1"),
        "event_type": rng.choice(contract.ENROLLMENT_EVENT, n),
        "school_type": np.full(n, "regular"),
        "grade": rng.integers(1, 13, n).astype(str),
    }


def _dates(rng, n, start, span_days):
    return (start + rng.integers(0, span_days, n).astype("timedelta64[D]")).astype(str)


def _write(path: Path, columns: dict) -> None:
    pa_csv.write_csv(pa.table({k: pa.array(v) for k, v in columns.items()}), path)


def generated_export(out: Path, n_children: int) -> bool:
    """The real generator's export, when src/data/generate.py exists and works."""
    try:
        from src.config import load_params
        from src.data import generate

        params = load_params(
            ROOT / "params.yaml", overrides={"synthetic": {"n_children": n_children}}
        )
        generate.run(out, params)
        return True
    except Exception as exc:  # noqa: BLE001 - any failure falls back to the fake export
        log.warning(
            "generator unavailable (%s: %s); using the fake export", type(exc).__name__, exc
        )
        return False


def time_ingest(raw: Path, work: Path, chunk_rows: int | None) -> tuple[float, float, float, dict]:
    """Run ingest in a child process; wall and CPU seconds, peak RSS GiB, data-quality report."""
    overrides = {"base": {"export_date": "2024-12-31"}}
    if chunk_rows:
        overrides["ingest"] = {"chunk_rows": chunk_rows}
    code = (
        "import logging,sys; logging.basicConfig(level=logging.INFO); sys.path.insert(0, {!r})\n"
        "from src.config import load_params; from src.data import ingest\n"
        "p = load_params({!r}, overrides={!r})\n"
        "ingest.run({!r}, {!r}, {!r}, p)\n"
    ).format(
        str(ROOT),
        str(ROOT / "params.yaml"),
        overrides,
        str(raw),
        str(work / "interim"),
        str(work / "dq.json"),
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_gib = usage.ru_maxrss / 2**20  # ru_maxrss is KiB on Linux
    cpu = usage.ru_utime + usage.ru_stime  # robust to other jobs sharing the cores
    return seconds, cpu, peak_gib, json.loads((work / "dq.json").read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-children", type=int, default=50_000)
    parser.add_argument("--raw", type=Path, help="ingest this export instead of building one")
    parser.add_argument(
        "--use-generator", action="store_true", help="build the export with src/data/generate.py"
    )
    parser.add_argument("--chunk-rows", type=int, help="override ingest.chunk_rows")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        work = Path(tmp)
        raw = args.raw
        if raw is None:
            raw = work / "raw"
            t0 = time.perf_counter()
            if not (args.use_generator and generated_export(raw, args.n_children)):
                fake_export(raw, args.n_children)
            log.info("export built in %.1f s", time.perf_counter() - t0)
        seconds, cpu, peak, quality = time_ingest(raw, work, args.chunk_rows)
    rows = sum(t["rows_read"] for t in quality["tables"].values())
    scale = 1_000_000 / args.n_children if args.raw is None else float("nan")
    report = {
        "n_children": args.n_children,
        "rows_read": rows,
        "wall_seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "rows_per_wall_second": round(rows / seconds),
        "peak_rss_gib": round(peak, 2),
        "projected_1m_wall_seconds_linear": round(seconds * scale),
        "projected_1m_cpu_seconds_linear": round(cpu * scale),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
