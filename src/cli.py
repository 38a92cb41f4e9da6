"""`safetynet`: one subcommand per pipeline stage, plus `validate` and `doctor`.

dvc.yaml calls these with explicit paths; run by hand, each path defaults to the value
written once in dvc.yaml `vars`.

Each subcommand imports its stage module inside the function, the one deliberate exception to
"imports at the top": a stage process then loads only its own module's import closure, which
is exactly what its `deps` in dvc.yaml list (tests/test_dvc_deps.py checks this), and
`--help` stays fast.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml

from src.config import load_params
from src.errors import SafetynetError

app = typer.Typer(
    help="Early-warning pipeline for children in difficult circumstances (困境儿童).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_state = {"debug": False, "params": Path("params.yaml")}


@functools.cache
def default_path(name: str) -> Path:
    """A path from dvc.yaml `vars.paths`, so that the CLI and DVC never disagree."""
    dvc_yaml = Path("dvc.yaml")
    if not dvc_yaml.exists():
        raise SafetynetError(
            f"no dvc.yaml here ({Path.cwd()}); run from the project root or pass --{name}"
        )
    for block in yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")).get("vars", []):
        if isinstance(block, dict) and name in block.get("paths", {}):
            return Path(block["paths"][name])
    raise SafetynetError(f"dvc.yaml: vars.paths has no '{name}'")


def _params():
    return load_params(_state["params"])


reviews_app = typer.Typer(help="The review loop: filled watchlists back into the export.", no_args_is_help=True)
app.add_typer(reviews_app, name="reviews")


def command(fn=None, *, target=None, name=None):
    """Register a subcommand whose failures become one line on stderr (traceback with --debug)."""
    if fn is None:
        return functools.partial(command, target=target, name=name)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        logging.basicConfig(
            level=logging.DEBUG if _state["debug"] else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            datefmt="%H:%M:%S",
        )
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - the CLI boundary turns every failure into one line
            if _state["debug"]:
                raise
            prefix = "error" if isinstance(exc, SafetynetError) else f"error ({type(exc).__name__})"
            typer.secho(f"{prefix}: {exc}  [rerun with --debug for details]", fg="red", err=True)
            raise typer.Exit(code=2) from None

    return (target or app).command(name or fn.__name__.replace("_", "-"))(wrapper)


def _path(value: Path | None, name: str) -> Path:
    return value if value is not None else default_path(name)


PathOpt = Annotated[Path | None, typer.Option()]


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
    params: Annotated[Path, typer.Option("--params", help="The params file.")] = Path(
        "params.yaml"
    ),
) -> None:
    _state["debug"] = debug or os.environ.get("SAFETYNET_DEBUG") == "1"
    _state["params"] = params


@command
def generate(out: PathOpt = None) -> None:
    """Write the synthetic export (all contract tables and truth.parquet)."""
    from src.data import generate as stage

    stage.run(_path(out, "synthetic"), _params())


@command
def ingest(raw: PathOpt = None, interim: PathOpt = None, quality: PathOpt = None) -> None:
    """Validate, quarantine, pseudonymise and type the raw export into data/interim/."""
    from src.data import ingest as stage

    params = _params()
    stage.run(
        raw if raw is not None else Path(params.data.raw_dir),
        _path(interim, "interim"),
        _path(quality, "data_quality"),
        params,
    )


@command
def validate(path: Annotated[Path, typer.Argument(help="A raw export folder.")]) -> None:
    """Check an export folder against the data contract without running the pipeline.

    Exit codes: 0 = the export conforms to the data contract; 1 = ingestible, but some rows
    would be quarantined; 2 = not ingestible (a missing or unreadable folder, file or column,
    or tables that end on different dates).
    """
    from src.data import ingest as stage

    report = stage.validate_export(path, _params())
    typer.echo(report.render())
    raise typer.Exit(code=report.exit_code)


@command
def features(interim: PathOpt = None, out: PathOpt = None, summary: PathOpt = None) -> None:
    """Build as-of features and outcome labels."""
    from src.features import features as stage

    stage.run(
        _path(interim, "interim"),
        _path(out, "features"),
        _path(summary, "features_summary"),
        _params(),
    )


@command
def train(
    features: PathOpt = None, features_summary: PathOpt = None, models: PathOpt = None
) -> None:
    """Train and calibrate the LightGBM model; log and register it in MLflow."""
    from src.models import train as stage

    stage.run(
        _path(features, "features"),
        _path(features_summary, "features_summary"),
        _path(models, "models"),
        _params(),
    )


@command
def evaluate(
    features: PathOpt = None,
    interim: PathOpt = None,
    models: PathOpt = None,
    metrics: PathOpt = None,
    metrics_by_month: PathOpt = None,
    plots: PathOpt = None,
    figures: PathOpt = None,
    predictions: PathOpt = None,
    headline: PathOpt = None,
) -> None:
    """Evaluate the model and the baselines on the test period; gate the champion alias."""
    from src.models import evaluate as stage

    stage.run(
        _path(features, "features"),
        _path(interim, "interim"),
        _path(models, "models"),
        _path(metrics, "metrics"),
        _path(metrics_by_month, "metrics_by_month"),
        _path(plots, "plots"),
        _path(figures, "figures"),
        _path(predictions, "predictions"),
        _path(headline, "headline"),
        _params(),
    )


@command
def refit(
    features: PathOpt = None,
    features_summary: PathOpt = None,
    models: PathOpt = None,
    served: PathOpt = None,
) -> None:
    """Refit the evaluated model's settings on all labelled history: the model that is served."""
    from src.models import refit as stage

    stage.run(_path(features, "features"), _path(features_summary, "features_summary"),
              _path(models, "models"), _path(served, "served"), _params())  # fmt: skip


@command
def explain(
    features: PathOpt = None,
    features_summary: PathOpt = None,
    models: PathOpt = None,
    interim: PathOpt = None,
    out: PathOpt = None,
    contributions: PathOpt = None,
    reports: PathOpt = None,
) -> None:
    """Score the snapshot with the served model (models/served); explain the listable children with SHAP."""
    from src.delivery import explain as stage

    stage.run(_path(features, "features"), _path(features_summary, "features_summary"), _path(models, "served"),
              _path(interim, "interim"), _path(out, "explanations"), _path(contributions, "contributions"),
              _path(reports, "explain_reports"), _params())  # fmt: skip


@command
def referrals(
    explanations: PathOpt = None,
    models: PathOpt = None,
    served: PathOpt = None,
    interim: PathOpt = None,
    out: PathOpt = None,
    reports: PathOpt = None,
) -> None:
    """Match listed children's needs to the service directory per county; write referral files and reports/services."""
    from src.delivery import referrals as stage

    stage.run(_path(explanations, "explanations"), _path(models, "models"), _path(served, "served"),
              _path(interim, "interim"), _path(out, "referrals"), _path(reports, "services_reports"), _params())  # fmt: skip


@command
def linkage(interim: PathOpt = None, out: PathOpt = None, report: PathOpt = None, figure: PathOpt = None) -> None:
    """Link the departments' persons to the registry (splink): a child_pid per record, the review queue."""
    from src.linkage import linkage as stage

    stage.run(_path(interim, "interim"), _path(out, "linkage"), _path(report, "linkage_report"),
              _path(figure, "linkage_figure"), _params())  # fmt: skip


@command
def screening(interim: PathOpt = None, linkage: PathOpt = None, out: PathOpt = None, report: PathOpt = None) -> None:
    """List linked children the registry does not list who meet a screening rule, per county."""
    from src.linkage import screening as stage

    stage.run(_path(interim, "interim"), _path(linkage, "linkage"), _path(out, "screening"),
              _path(report, "screening_report"), _params())  # fmt: skip


@command
def watchlist(
    explanations: PathOpt = None,
    contributions: PathOpt = None,
    models: PathOpt = None,
    served: PathOpt = None,
    interim: PathOpt = None,
    referrals: PathOpt = None,
    monitoring: PathOpt = None,
    out: PathOpt = None,
) -> None:
    """Write each county's watchlists per child director (HTML, CSV, XLSX); refuses a model that failed the gate."""
    from src.delivery import watchlist as stage

    stage.run(
        _path(explanations, "explanations"),
        _path(contributions, "contributions"),
        _path(models, "models"),
        _path(served, "served"),
        _path(interim, "interim"),
        _path(out, "watchlists"),
        _params(),
        _path(referrals, "referrals"),
        _path(monitoring, "monitoring"),
    )


@command(target=reviews_app, name="import")
def reviews_import(
    paths: Annotated[list[Path], typer.Argument(help="Filled watchlist.xlsx or watchlist.csv file(s).")],
) -> None:
    """Append the review outcomes of filled watchlists to the export's casework_reviews table."""
    from src.delivery import review_import as stage

    summary = stage.run(paths, _params())
    for path, counts in summary["files"].items():
        typer.echo(f"{path}: {counts['rows_read']} rows read, {counts['recorded']} recorded, "
                   f"{counts['already_present']} already present, {counts['not_reviewed']} not reviewed, "
                   f"{counts['errors']} with errors -> {summary['target']}")  # fmt: skip
        for line in counts["error_lines"]:
            typer.secho(f"  error: {line}", fg="red", err=True)
    if summary["errors"]:
        raise typer.Exit(code=1)


@command
def fairness(
    predictions: PathOpt = None,
    models: PathOpt = None,
    out: PathOpt = None,
    headline: PathOpt = None,
    interim: PathOpt = None,
) -> None:
    """Write the fairness report from the test predictions (and the interim records)."""
    from src.audit import fairness as stage

    stage.run(
        _path(predictions, "predictions"),
        _path(models, "models"),
        _path(out, "fairness"),
        _path(headline, "fairness_metrics"),
        _params(),
        _path(interim, "interim"),
    )


@command
def monitoring(
    features: PathOpt = None,
    interim: PathOpt = None,
    explanations: PathOpt = None,
    predictions: PathOpt = None,
    models: PathOpt = None,
    out: PathOpt = None,
    metrics: PathOpt = None,
) -> None:
    """Drift of the scoring month vs the training window, and realised vs expected precision."""
    from src.audit import monitoring as stage

    stage.run(_path(features, "features"), _path(interim, "interim"), _path(explanations, "explanations"),
              _path(predictions, "predictions"), _path(models, "models"), _path(out, "monitoring"),
              _path(metrics, "monitoring_metrics"), _params())  # fmt: skip


@command
def reviews_report(
    explanations: PathOpt = None,
    interim: PathOpt = None,
    out: PathOpt = None,
    metrics: PathOpt = None,
) -> None:
    """What the reviews teach: coverage, days to visit, confirmed precision by band, services (reports/reviews)."""
    from src.audit import reviews as stage

    stage.run(_path(explanations, "explanations"), _path(interim, "interim"), _path(out, "reviews_reports"),
              _path(metrics, "reviews_metrics"), _params())  # fmt: skip


@command
def model_card(
    metrics: PathOpt = None,
    fairness: PathOpt = None,
    features_summary: PathOpt = None,
    models: PathOpt = None,
    served: PathOpt = None,
    monitoring: PathOpt = None,
    out: PathOpt = None,
    html: PathOpt = None,
) -> None:
    """Write the model card (Markdown and HTML)."""
    from src.audit import model_card as stage

    stage.run(
        _path(metrics, "metrics"),
        _path(fairness, "fairness"),
        _path(features_summary, "features_summary"),
        _path(models, "models"),
        _path(served, "served"),
        _path(out, "model_card"),
        _path(html, "model_card_html"),
        _params(),
        _path(monitoring, "monitoring"),
    )


@command
def doctor() -> None:
    """Check the environment, the pseudonymisation key, the data folder and versions."""
    from src import doctor as stage

    report = stage.run(_state["params"])
    typer.echo(report.render())
    if not report.ok:
        raise typer.Exit(code=1)


if __name__ == "__main__":
    sys.exit(app())
