"""Time the watchlist stage (per-director lists, waterfalls, CSV + XLSX + HTML) on a synthetic scored province.

Builds explanations.parquet (the snapshot and the previous month), contributions.parquet
(top 3 + `other` for the listed children, as the explain stage writes them) and the interim
identity/children for --n-children children in --counties counties with
--children-per-director children per child director, then times `watchlist.run` (the gate
check is skipped: there is no model). Never reads data/. The 1M target:

    python -m benchmarks.bench_watchlist --n-children 1000000
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from src.delivery import explain, watchlist
from src.features import catalogue
from tests.delivery import explain_fixtures as fx

log = logging.getLogger("bench_watchlist")
REASONS = (("近90天无故缺课 6 天", "6 unexcused absence days in the last 90 days"),
           ("低保/补贴复核已逾期", "benefit recertification is overdue"),
           ("近90天走访发现问题 2 次", "2 visits with a concern in the last 90 days"))  # fmt: skip


def explanations(pids: np.ndarray, as_of: str, rng, top_n: int) -> pd.DataFrame:
    n = len(pids)
    out = pd.DataFrame({"child_pid": pids, "as_of": pd.Timestamp(as_of).as_unit("us")})
    out["score"] = rng.beta(1, 12, n)
    out["already_out"] = (rng.random(n) < 0.03).astype("int8")
    out["already_out_net"] = np.where(out["already_out"] == 1, "basic_living", "")
    out.loc[out["already_out"] == 1, "score"] = np.nan
    for k in range(1, top_n + 1):
        zh, en = REASONS[(k - 1) % len(REASONS)]
        out[f"reason_{k}_feature"], out[f"reason_{k}_zh"], out[f"reason_{k}_en"] = "x", zh, en
    out["systems"] = out["primary_system"] = "education"
    out["service_zh"], out["service_en"] = "学校跟进、控辍保学；协助办理低保/补贴复核认定", "school follow-up"
    out["no_reason"] = (rng.random(n) < 0.05).astype("int8")
    out["context_zh"], out["context_en"] = "领取低保；距复核到期 23 天", "receives dibao; recertification due in 23 days"
    for system in catalogue.SYSTEMS:
        out[f"shap_{system}"] = 0.0
    return out


def contributions(pids: np.ndarray, rng) -> pd.DataFrame:
    n = len(pids)
    frame = pd.DataFrame({
        "child_pid": np.repeat(pids, 4), "rank": np.tile([1, 2, 3, 4], n),
        "feature": np.tile(["absence_days_unexcused_90d", "recert_overdue", "age_years", "other"], n),
        "shap": rng.normal(0.3, 0.5, 4 * n),
        "value_zh": np.tile(["近90天无故缺课 6 天", "低保/补贴复核已逾期", "年龄 12.0 岁", ""], n),
        "value_en": np.tile(["6 unexcused absence days", "recertification overdue", "aged 12.0", ""], n),
    })  # fmt: skip
    frame["base_log_odds"] = -2.5
    return frame


def write_inputs(folder: Path, n: int, counties: int, per_director: int, seed: int) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(seed)
    ids = np.char.add("C", np.arange(n).astype(str).astype("U9"))
    pids = np.array([fx.pid(c) for c in ids], dtype=object)
    director = np.arange(n) // per_director
    county = np.char.add("53", (1000 + director % counties).astype(str))
    children = pd.DataFrame({
        "child_pid": pids, "county_code": county, "community_code": np.char.add(county, (director % 7).astype(str)),
        "caseworker_id": np.char.add("cw", director.astype(str)), "sex": np.where(rng.random(n) < 0.5, "f", "m"),
        "birth_date": pd.Timestamp("2008-01-01") + pd.to_timedelta(rng.integers(0, 5000, n), "D"),
        "guardian_type": rng.choice(fx.GUARDIANS, n), "category": rng.choice(fx.CATEGORIES, n),
    })  # fmt: skip
    identity = pd.DataFrame({"child_pid": pids, "child_id": ids, "name": "王小明"})
    interim = folder / "interim"
    interim.mkdir()
    children.to_parquet(interim / "children.parquet", index=False)
    identity.to_parquet(interim / "identity.parquet", index=False)
    top_n = 3
    expl = pd.concat([explanations(pids, "2024-05-01", rng, top_n), explanations(pids, "2024-06-01", rng, top_n)])
    expl[explain.explanation_columns(top_n) + ["no_reason", "context_zh", "context_en"]].to_parquet(
        folder / "explanations.parquet", index=False
    )
    contributions(pids, rng).to_parquet(folder / "contributions.parquet", index=False)
    return folder / "explanations.parquet", folder / "contributions.parquet", interim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-children", type=int, default=1_000_000)
    parser.add_argument("--counties", type=int, default=100)
    parser.add_argument("--children-per-director", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    watchlist.check_served = lambda *_: None  # no model here; the gate is tested elsewhere
    params = fx.params()
    with tempfile.TemporaryDirectory(prefix="bench_watchlist_") as tmp:
        start = time.perf_counter()
        expl, contrib, interim = write_inputs(Path(tmp), args.n_children, args.counties,
                                              args.children_per_director, args.seed)  # fmt: skip
        log.info("inputs: %.1f s", time.perf_counter() - start)
        start = time.perf_counter()
        result = watchlist.run(expl, contrib, tmp, tmp, interim, Path(tmp) / "watchlists", params)
        seconds = time.perf_counter() - start
        files = sum(1 for p in (Path(tmp) / "watchlists").rglob("*") if p.is_file())
    log.info("watchlist.run: %.1f s for %d children (%d listed, %d files): %s",
             seconds, args.n_children, result["n_above_cut"], files, result)  # fmt: skip


if __name__ == "__main__":
    main()
