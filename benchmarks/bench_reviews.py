"""Issue 15 target: `safetynet reviews import` of 100k review rows in < 30 s on 2 cores.

Builds one filled watchlist XLSX (sheets of 1,000 rows, the watchlist's zh headings, list
references computed under the development key, every outcome label, Chinese notes) and a CSV of
the same rows, then times `review_import.run` on each: reading, checking (pids and list
references), and the append; then a second import of the same file (the no-op). Building the
files is not timed.

    .venv/bin/python benchmarks/bench_reviews.py              # 100k rows
    .venv/bin/python benchmarks/bench_reviews.py --rows 20000

Run on demand, never inside a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from openpyxl import Workbook  # noqa: E402

from src.config import load_params  # noqa: E402
from src.data.pseudonymise import DEVELOPMENT_KEY, child_pids  # noqa: E402
from src.delivery import review_import  # noqa: E402
from src.delivery.review_codes import review_labels  # noqa: E402
from src.delivery.review_loop import list_ref  # noqa: E402
from src.delivery.wording import TEXT  # noqa: E402

KEYS = ["child_id", "review", "review_date", "next_review_date", "review_note", "list_date", "list_ref",
        "caseworker_id", "service_codes", "provider_id"]  # fmt: skip


def filled(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    ids = pd.Series([f"C{i:07d}" for i in range(n)])
    labels = review_labels("zh")
    return pd.DataFrame({
        "child_id": ids, "review": np.array(labels)[rng.integers(0, len(labels), n)],
        "review_date": "2025-12-10", "next_review_date": "", "review_note": "奶奶说孩子最近常去网吧",
        "list_date": "2025-12-01", "list_ref": list_ref(pd.Series(child_pids(ids, DEVELOPMENT_KEY)), "2025-12-01"),
        "caseworker_id": [f"W{i // 5:06d}" for i in range(n)], "service_codes": "school_follow_up",
        "provider_id": "P110101001",
    })  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    rows = filled(args.rows)
    headings = [TEXT["zh"]["columns"][k] for k in KEYS]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        wb = Workbook(write_only=True)
        for start in range(0, len(rows), 1000):
            ws = wb.create_sheet(f"W{start // 1000:05d}")
            ws.append(headings)
            for row in rows.iloc[start:start + 1000].itertuples(index=False):
                ws.append(list(row))
        wb.save(folder / "filled.xlsx")
        rows.set_axis(headings, axis=1).to_csv(folder / "filled.csv", index=False, encoding="utf-8-sig")
        for name in ("filled.xlsx", "filled.csv"):
            params = load_params(ROOT / "params.yaml", {"data": {"raw_dir": str(folder / f"export-{name}")}})
            for attempt in ("import", "again (no-op)"):
                start = time.perf_counter()
                counts = review_import.run([folder / name], params)["files"][str(folder / name)]
                print(f"{name} {attempt}: {len(rows):,} rows in {time.perf_counter() - start:.1f} s "
                      f"(recorded {counts['recorded']:,}, already present {counts['already_present']:,}, "
                      f"errors {counts['errors']})")  # fmt: skip


if __name__ == "__main__":
    main()
