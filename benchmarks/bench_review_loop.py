"""The feedback problem, measured in the synthetic world: what a referral does to the labels.

One loop month (`src.data.synthetic.reviews.referral_effect`): the top `--list-share` of the
cohort by p_true at month `--month` (an oracle list), reviewed by the simulated child directors
(`synthetic.review_loop`), referrals lowering the hazard by `referral_hazard_ratio` from the
next month, the world drawn again with the same seed (common random numbers: every child not
referred keeps their outcomes). Printed per group: children, mean p_true at the list, and the
share with an outcome in the horizon after the next month's start (the label a model would
train on) in the untreated and the treated world; then the referred children against the
confirmed-but-not-referred ones (the same selection: only the referral draw differs), with a
two-proportion z, and how far the listed children's label rate falls.

    .venv/bin/python benchmarks/bench_review_loop.py                       # 50k children, params.yaml
    .venv/bin/python benchmarks/bench_review_loop.py --children 20000 --ratio 0.3

Run on demand, never inside a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from src.config import load_params  # noqa: E402
from src.data.synthetic.reviews import referral_effect  # noqa: E402


def z_score(a: dict, b: dict) -> float:
    """Two-proportion z of b's treated rate above a's."""
    pooled = (a["treated"] * a["children"] + b["treated"] * b["children"]) / (
        a["children"] + b["children"]
    )
    se = np.sqrt(pooled * (1 - pooled) * (1 / a["children"] + 1 / b["children"]))
    return float((b["treated"] - a["treated"]) / se) if se > 0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=50_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--month", type=int, default=12, help="the list's month (0 = the first)")
    parser.add_argument("--list-share", type=float, default=0.05)
    parser.add_argument(
        "--ratio", type=float, default=None, help="referral_hazard_ratio (default: params.yaml)"
    )
    args = parser.parse_args()
    loop = {} if args.ratio is None else {"review_loop": {"referral_hazard_ratio": args.ratio}}
    params = load_params(ROOT / "params.yaml", {"synthetic": {"n_children": args.children, "months": args.months,
                                                              **loop}})  # fmt: skip
    start = time.perf_counter()
    effect = referral_effect(params, args.month, args.list_share, params.base.seed)
    print(json.dumps({"review_loop": vars(params.synthetic.review_loop), **effect}, indent=1))
    referred, comparable = effect["referred"], effect["confirmed_not_referred"]
    listed = effect["listed"]
    print(f"referred {referred['treated']:.3f} (untreated {referred['untreated']:.3f}) vs confirmed, not referred "
          f"{comparable['treated']:.3f}: ratio {referred['treated'] / comparable['treated']:.2f}, "
          f"z {z_score(referred, comparable):.2f}; listed label rate {listed['untreated']:.3f} -> "
          f"{listed['treated']:.3f}; {time.perf_counter() - start:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
