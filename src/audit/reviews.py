"""The reviews stage: casework_reviews + explanations -> reports/reviews/ (JSON, HTML, dvc metrics).

Thin I/O around src/audit/review_lessons.py (the aggregates and their definitions). Reads the
reviews without their `note` (`review_loop.read_reviews`), the scored months of explanations
(calibrated score, primary system) and each child's county and director from interim children.
With no reviews (the default synthetic export has none) it writes the same files, saying so.
"""

from __future__ import annotations

import logging
from pathlib import Path

import jinja2
import pandas as pd

from src.atomic import atomic_dir, write_json
from src.audit import review_lessons
from src.delivery import review_loop
from src.delivery.capacity import with_directors
from src.errors import SafetynetError

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"


def render_page(report: dict) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    return env.get_template("reviews.html.j2").render(r=report)


def scored_months(explanations_path: Path, interim_dir: Path) -> pd.DataFrame:
    columns = ["child_pid", "as_of", "score", "primary_system"]
    if not explanations_path.exists():
        raise SafetynetError(f"{explanations_path}: not found; run `dvc repro explain` first")
    frame = pd.read_parquet(explanations_path, columns=columns)
    frame = frame[frame["score"].notna()]
    children = pd.read_parquet(interim_dir / "children.parquet", columns=["child_pid", "county_code", "caseworker_id"])
    frame = frame.merge(children[["child_pid", "county_code"]], on="child_pid", how="left")
    return with_directors(frame, children)


def run(explanations_path, interim_dir, out_dir, metrics_path, params) -> dict:
    """Read the stage inputs, write reports/reviews/ and the metrics file atomically."""
    interim_dir, out_dir = Path(interim_dir), Path(out_dir)
    scored = scored_months(Path(explanations_path), interim_dir)
    reviews = review_loop.read_reviews(interim_dir)
    report = review_lessons.build(scored, reviews, params.base.children_per_caseworker, params.watchlist.risk_bands)
    with atomic_dir(out_dir) as tmp:
        write_json(tmp / "reviews.json", report)
        (tmp / "index.html").write_text(render_page(report), encoding="utf-8")
    metrics = review_lessons.metrics_of(report)
    write_json(Path(metrics_path), metrics)
    log.info("reviews: %s", metrics)
    return metrics
