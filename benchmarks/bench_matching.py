"""Issue 16 target: the referral matching for 1M children across ~100 counties in < 60 s on 2 cores.

Synthetic needs and providers shaped like the generator's directory (src/data/synthetic/
providers.py), scaled up: per county ~10,000 listed children in 100 villages, one to three needs
each (primary first; shares like a default run's), county-wide providers for every system and
local ones in about a third of the villages, capacity well below need. Times
`src.delivery.matching.match` (all counties, one process) and checks the plan
(`matching.check_plan`). Needs are drawn by numpy, so building them is not timed.

    .venv/bin/python benchmarks/bench_matching.py                  # 1M children, 100 counties
    .venv/bin/python benchmarks/bench_matching.py --children 100000 --counties 10

Run on demand, never inside a test.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from src.data.service_vocabulary import REFERRED_CODES  # noqa: E402
from src.delivery import matching  # noqa: E402

SHARE = np.array([0.7, 0.37, 0.4, 0.05, 0.27, 0.09])  # per REFERRED_CODES (basic living ... guardianship)


def needs_frame(children: int, counties: int, villages: int, rng) -> pd.DataFrame:
    county = rng.integers(0, counties, children)
    village = rng.integers(0, villages, children)
    wants = rng.random((children, len(REFERRED_CODES))) < SHARE
    wants[~wants.any(axis=1), 0] = True
    child, service = np.nonzero(wants)
    order = np.argsort(rng.random(len(child)) + child, kind="stable")  # a random primary per child
    child, service = child[order], service[order]
    rank = np.arange(len(child)) - np.searchsorted(child, child)
    codes = np.array([f"{100000 + c}" for c in range(counties)], dtype=object)
    return pd.DataFrame({
        "child_pid": np.char.add("k", np.char.zfill(child.astype(str), 8)).astype(object),
        "county_code": codes[county[child]], "community_code": (codes[county[child]] + "-" + village[child].astype(str)),
        "score": rng.random(children)[child].round(4), "need_rank": rank, "service_code": np.array(REFERRED_CODES)[service],
    })  # fmt: skip


def providers_frame(children: int, counties: int, villages: int, rng) -> pd.DataFrame:
    per_county = children / counties
    rows = []
    for c in range(counties):
        county = f"{100000 + c}"
        for s, code in enumerate(REFERRED_CODES):
            rows.append((f"P{county}{s:02d}", county, frozenset(), frozenset({code}), int(per_county * SHARE[s] * 0.4)))
        for v in np.flatnonzero(rng.random(villages) < 0.33):
            offered = frozenset(rng.choice(REFERRED_CODES, 2, replace=False))
            served = frozenset({f"{county}-{v}", f"{county}-{(v + 1) % villages}"})
            rows.append((f"P{county}V{v:03d}", county, served, offered, int(rng.integers(5, 40))))
    return pd.DataFrame(rows, columns=matching.PROVIDER_COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=1_000_000)
    parser.add_argument("--counties", type=int, default=100)
    parser.add_argument("--villages", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(16)
    needs = needs_frame(args.children, args.counties, args.villages, rng)
    providers = providers_frame(args.children, args.counties, args.villages, rng)
    weights = matching.Weights(distance=1.0, risk=2.0, secondary=0.5, continuity=1.5)
    start = time.perf_counter()
    plan = matching.match(needs, providers, weights, county_fallback=False)
    seconds = time.perf_counter() - start
    matching.check_plan(plan, providers, needs["child_pid"], False)
    table = matching.reconcile(plan)
    print(f"children {args.children:,}  counties {args.counties}  needs {len(needs):,}  providers {len(providers):,}")
    print(f"matched {int(table['matched'].sum()):,}  unmet {int(table['unmet'].sum()):,}  match {seconds:.1f} s "
          f"(target < 60 s)")  # fmt: skip


if __name__ == "__main__":
    main()
