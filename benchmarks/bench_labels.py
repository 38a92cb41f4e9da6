"""Time build_labels (cohort, already_out and the four outcome rules) on random interim tables.

    python benchmarks/bench_labels.py --n-children 50000 --n-dates 24 --dates-per-batch 6

The tables are drawn with numpy in the interim layout (64-hex child_pid, timestamp dates) at
roughly the synthetic generator's volumes per child: monthly payments, ~20 absences a year
(with some long unexcused runs), rehab sessions, enrollment and protection events. Prints
wall time per batch and in total, rows out, and peak RSS. A script, never run inside tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import logging
import resource
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.config import Label, LabelRules  # noqa: E402
from src.data.contract import default_school_calendar  # noqa: E402
from src.features.cohort import month_starts  # noqa: E402
from src.features.labels import build_labels  # noqa: E402

START, EXPORT = pd.Timestamp("2022-01-01"), pd.Timestamp("2024-12-31")
SPAN = (EXPORT - START).days
log = logging.getLogger("bench_labels")


def _dates(rng: np.random.Generator, n: int) -> np.ndarray:
    return (START + pd.to_timedelta(rng.integers(0, SPAN + 1, n), unit="D")).values.astype(
        "datetime64[us]"
    )


def _events(rng, pids, per_child: float, codes, weights) -> pd.DataFrame:
    n = rng.poisson(per_child * len(pids))
    return pd.DataFrame(
        {
            "child_pid": pids[rng.integers(0, len(pids), n)],
            "event_date": _dates(rng, n),
            "event_type": rng.choice(codes, n, p=weights),
        }
    )


def make_children(rng, n: int) -> pd.DataFrame:
    pids = np.array([hashlib.sha256(f"child-{i}".encode()).hexdigest() for i in range(n)])
    birth = pd.Timestamp("2004-01-01") + pd.to_timedelta(rng.integers(0, 20 * 365, n), unit="D")
    registered = pd.Timestamp("2018-01-01") + pd.to_timedelta(rng.integers(0, 7 * 365, n), unit="D")
    return pd.DataFrame(
        {
            "child_pid": pids,
            "birth_date": birth.values.astype("datetime64[us]"),
            "registered_date": np.maximum(birth.values, registered.values).astype("datetime64[us]"),
        }
    )


def make_welfare(rng, pids) -> pd.DataFrame:
    codes = [
        "payment",
        "recert_due",
        "recert_done",
        "suspended",
        "terminated",
        "reinstated",
        "enrolled",
    ]
    frame = _events(rng, pids, 30.0, codes, [0.86, 0.04, 0.04, 0.025, 0.01, 0.015, 0.01])
    reasons = [
        "recert_missed",
        "documents_missing",
        "contact_lost",
        "other",
        "moved_away",
        "income_above_line",
    ]
    exits = frame["event_type"].isin(["suspended", "terminated"])
    frame["reason"] = np.where(exits, rng.choice(reasons, len(frame)), None)
    frame["benefit"] = rng.choice(["dibao", "orphan_allowance", "disability_subsidy"], len(frame))
    return frame


def make_absences(rng, pids, calendar: pd.Series) -> pd.DataFrame:
    """~20 scattered absences a child a year, plus a 14-day unexcused run for 3% of children."""
    n = rng.poisson(60 * len(pids))
    days = calendar.values[rng.integers(0, len(calendar), n)]
    scattered = pd.DataFrame(
        {
            "child_pid": pids[rng.integers(0, len(pids), n)],
            "absence_date": days,
            "absence_type": rng.choice(["sick", "excused", "unexcused"], n, p=[0.4, 0.3, 0.3]),
            "days": rng.choice([0.5, 1.0], n, p=[0.2, 0.8]),
        }
    )
    runners = pids[rng.random(len(pids)) < 0.03]
    starts = rng.integers(0, len(calendar) - 14, len(runners))
    index = (starts[:, None] + np.arange(14)[None, :]).ravel()
    runs = pd.DataFrame(
        {
            "child_pid": np.repeat(runners, 14),
            "absence_date": calendar.values[index],
            "absence_type": "unexcused",
            "days": 1.0,
        }
    )
    return pd.concat([scattered, runs], ignore_index=True)


def make_tables(n_children: int, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    children = make_children(rng, n_children)
    pids = children["child_pid"].to_numpy()
    calendar = default_school_calendar(START.date(), EXPORT.date())
    medical_codes = [
        "outpatient",
        "rehab_attended",
        "rehab_missed",
        "insurance_enrolled",
        "insurance_lapsed",
    ]
    return {
        "children": children,
        "welfare_events": make_welfare(rng, pids),
        "school_calendar": calendar,
        "school_absences": make_absences(rng, pids, calendar["date"]),
        "school_enrollment": _events(
            rng, pids, 2.0, ["enrolled", "dropped_out", "returned"], [0.7, 0.2, 0.1]
        ),
        "medical_events": _events(rng, pids, 10.0, medical_codes, [0.5, 0.25, 0.15, 0.06, 0.04]),
        "protection_events": _events(
            rng,
            pids,
            0.1,
            ["abuse_report", "guardian_lost", "emergency_placement"],
            [0.6, 0.2, 0.2],
        ),
    }


def run_benchmark(
    n_children: int, n_dates: int, dates_per_batch: int, threads: int, seed: int
) -> dict:
    tables = make_tables(n_children, seed)
    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads)}")
    for name, frame in tables.items():
        con.register(name, frame)  # views over the frames, as the features stage sees parquet
    as_of_dates = month_starts(dt.date(2023, 1, 1), EXPORT.date())[-n_dates:]
    label = Label(
        horizon_days=180, dropout_streak_days=10, rules=LabelRules(True, True, True, True)
    )
    started, rows, rates = time.perf_counter(), 0, []
    for i in range(0, len(as_of_dates), dates_per_batch):
        batch = as_of_dates[i : i + dates_per_batch]
        t0 = time.perf_counter()
        out = build_labels(con, batch, EXPORT.date(), label)
        rows += len(out)
        rates.append(out["label"].mean())
        log.info(
            "batch %s..%s: %d rows in %.2f s",
            batch[0],
            batch[-1],
            len(out),
            time.perf_counter() - t0,
        )
    seconds = time.perf_counter() - started
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    rows_in = {k: len(v) for k, v in tables.items()}
    return {
        "seconds": seconds,
        "rows_out": rows,
        "label_rate": float(np.mean(rates)),
        "peak_rss_gib": peak_gib,
        "rows_in": rows_in,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-children", type=int, default=50_000)
    parser.add_argument("--n-dates", type=int, default=24)
    parser.add_argument("--dates-per-batch", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    result = run_benchmark(
        args.n_children, args.n_dates, args.dates_per_batch, args.threads, args.seed
    )
    log.info("input rows: %s", result["rows_in"])
    log.info(
        "build_labels: %d children x %d dates -> %d rows in %.1f s (label rate %.3f), peak RSS %.2f GiB",
        args.n_children,
        args.n_dates,
        result["rows_out"],
        result["seconds"],
        result["label_rate"],
        result["peak_rss_gib"],
    )


if __name__ == "__main__":
    main()
