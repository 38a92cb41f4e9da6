"""params.yaml -> typed, frozen Params: the one place where params are validated.

An unknown, missing or mistyped key, and every check across fields, is one clear error when
the file loads, before any stage does work. `check_split` adds the one check that needs the
data span. params.yaml holds the only defaults (the dataclasses have none but optional sections).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from src.errors import SafetynetError
from src.features import catalogue
from src.linkage.sections import Departments, Linkage, Screening
from src.models import metrics
from src.models.split import make_split
from src.spark_params import Spark
from src.typed_yaml import build, merge


@dataclass(frozen=True)
class Base:
    seed: int
    export_date: dt.date | None
    children_per_caseworker: int


@dataclass(frozen=True)
class Data:
    raw_dir: str
    encoding: typing.Literal["auto", "utf-8", "utf-8-sig", "gb18030"]
    reviews_dir: str | None  # folder of casework_reviews.csv; null = raw_dir (src/delivery/review_import.py)


@dataclass(frozen=True)
class LabelRules:
    benefit_lapse: bool
    school_dropout: bool
    medical_lapse: bool
    protection_crisis: bool

    def enabled(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name)]


@dataclass(frozen=True)
class Label:
    horizon_days: int
    dropout_streak_days: int
    rules: LabelRules


@dataclass(frozen=True)
class Defects:
    duplicate: float
    unknown_code: float
    malformed_date: float
    future_date: float
    unknown_child: float
    negative_amount: float
    missing_required: float


@dataclass(frozen=True)
class MeasurementBias:
    enabled: bool
    hukou: typing.Literal["rural", "urban"]
    share: float
    mode: typing.Literal["relabel", "omit", "conceal"]
    counties: tuple[str, ...] = ()  # county codes it hits; empty = every county
    sources: tuple[str, ...] = ("school_absences",)  # see src/data/synthetic/recording.py

    def __post_init__(self):
        known = {"school_absences", "casework_visits", "welfare_payments"}
        unknown = sorted(set(self.sources) - known)
        if unknown or not self.sources:
            raise SafetynetError(
                "synthetic.measurement_bias.sources must list some of school_absences, "
                f"casework_visits, welfare_payments; got {list(self.sources)}"
            )


@dataclass(frozen=True)
class ReviewLoop:  # src/data/synthetic/reviews.py: simulated child directors review the lists
    visit_share: float  # share of each director's listed children reviewed in the month
    unreachable_share: float  # share of reviews that cannot reach the child
    referral_share: float  # share of confirmed risks referred to a service
    referral_hazard_ratio: float  # a referred child's hazard x this from the next month on


@dataclass(frozen=True)
class Synthetic:
    n_children: int
    months: int
    start_date: dt.date
    n_counties: int
    communities_per_county: int
    file_format: typing.Literal["csv", "parquet"]
    encoding: typing.Literal["utf-8", "gb18030"]
    hostile_name_rate: float
    defects: Defects
    measurement_bias: MeasurementBias
    prevalence_drift: float  # sd of the monthly step of the random walk on the log hazard; 0 = off
    recert_hazard_ratio: float  # outcome hazard x this in the recertification window; 1 = off
    registry_history: bool  # write the registry_history table (changes happen either way)
    lookups: bool  # write the caseworkers and communities name lookups
    service_providers: bool  # write the service directory (src/data/synthetic/providers.py)
    review_loop: ReviewLoop
    departments: Departments  # other departments' exports, for linkage (issue 17)

    def __post_init__(self):
        if not 0 <= self.prevalence_drift <= 1:
            raise SafetynetError(
                f"synthetic.prevalence_drift must be in [0, 1], got {self.prevalence_drift}"
            )
        if not self.recert_hazard_ratio > 0:
            raise SafetynetError(f"synthetic.recert_hazard_ratio must be > 0, got {self.recert_hazard_ratio}")
        loop = self.review_loop
        shares = (loop.visit_share, loop.unreachable_share, loop.referral_share)
        if not (0 <= min(shares) <= max(shares) <= 1 and loop.referral_hazard_ratio > 0):
            raise SafetynetError("synthetic.review_loop: the shares must be in [0, 1] and referral_hazard_ratio > 0")


@dataclass(frozen=True)
class Ingest:
    chunk_rows: int
    export_date_normal_share: float  # a month is complete at this share of its usual rows
    export_date_min_month_rows: int  # tables with fewer rows a month do not vote on the date
    export_date_tolerance_days: int  # voting tables ending further apart stop ingest

    def __post_init__(self) -> None:
        _require(self.chunk_rows >= 1, "ingest.chunk_rows must be at least 1")
        _require(0 < self.export_date_normal_share <= 1,
                 f"ingest.export_date_normal_share must be in (0, 1], got {self.export_date_normal_share}")  # fmt: skip
        _require(self.export_date_min_month_rows >= 1, "ingest.export_date_min_month_rows must be at least 1")
        _require(self.export_date_tolerance_days >= 0, "ingest.export_date_tolerance_days must be at least 0")


@dataclass(frozen=True)
class Features:
    first_as_of: dt.date | None
    last_as_of: dt.date | None
    windows_days: tuple[int, ...]
    batch_rows: int  # cohort rows (children x as-of dates) per batch, whole dates, at least one
    protected_as_features: bool
    duckdb_memory_gb: float
    registry_as_of_export: typing.Literal["exclude", "keep"]  # without registry_history: see params.yaml
    engine: typing.Literal["duckdb", "spark"] = "duckdb"  # src/features/engine.py; spark: the spark section


@dataclass(frozen=True)
class LightGBMParams:
    learning_rate: float
    num_leaves: int
    min_child_samples: int
    feature_fraction: float
    bagging_fraction: float
    bagging_freq: int
    lambda_l2: float
    max_rounds: int
    early_stopping_rounds: int
    monotone_constraints_method: typing.Literal["basic", "intermediate", "advanced"]  # LightGBM's


@dataclass(frozen=True)
class Backtest:
    folds: int  # rolling-origin folds inside the labelled history
    fold_months: int  # as-of months per fold window
    calibration_folds: int  # the latest folds whose out-of-fold scores fit the calibrator
    search_trials: int  # hyperparameter candidates tried on the folds (1 = lightgbm as given)
    max_children: int  # the backtest runs on at most this many children, a seeded sample (0 = all)


@dataclass(frozen=True)
class Nowcast:
    days: int  # the short window whose outcomes the months in between already show
    months: int  # latest as-of dates pooled per scoring date (0 = no correction)
    prior_events: float  # pseudo-outcomes shrinking the ratio towards 1


@dataclass(frozen=True)
class Train:
    test_months: int
    backtest: Backtest
    nowcast: Nowcast
    objective_weighting: typing.Literal["balanced", "none"]
    negative_sample_rate: float
    calibration: typing.Literal["isotonic", "platt", "beta"]
    num_threads: int
    monotone_constraints: typing.Literal["always", "unless_costly", "never"]  # src/models/constraints.py
    lightgbm: LightGBMParams
    logistic_c: float


@dataclass(frozen=True)
class Evaluate:
    top_pcts: tuple[float, ...]
    ece_bins: int
    gate_metric: str
    peer_alpha: float  # the gate fails when the peer's lists are better at this significance
    community_prior_strength: float
    peer_max_rows: int  # train rows read for the baselines; the peer fits them all
    logistic_max_rows: int  # the logistic baseline's sub-sample of them


@dataclass(frozen=True)
class Explain:
    as_of: dt.date | None
    top_n_reasons: int
    shap_margin: float  # SHAP for capacity x (1 + margin) per county and per caseworker


@dataclass(frozen=True)
class Watchlist:
    language: typing.Literal["zh", "en"]
    risk_bands: tuple[float, ...]
    change_threshold: float  # absolute probability change that counts as rising/falling
    allow_failed_gate: bool  # true = hand out a list even when the model failed the gate
    cooldown_days: int  # a child reviewed "no risk" this many days ago takes no slot (src/delivery/review_loop.py)
    cooldown_override: float  # ... unless their risk rose by at least this since the review
    follow_up_days: int  # reviews import: a referral without a next_review_date is followed up then


@dataclass(frozen=True)
class ReferralWeights:  # src/delivery/matching.py
    distance: float
    risk: float
    secondary: float
    continuity: float


@dataclass(frozen=True)
class Referrals:
    county_fallback: bool  # a provider may take a child of its county outside its listed villages
    weights: ReferralWeights


@dataclass(frozen=True)
class Fairness:
    attributes: tuple[str, ...]
    intersections: tuple[tuple[str, ...], ...]
    reference: typing.Literal["rest", "overall"]  # default comparison, where no reference group is named
    reference_groups: dict[str, str]
    tolerance: tuple[float, ...]
    bootstrap_replicates: int
    bootstrap_seed: int
    min_group_size: int  # children, not child-months
    min_positives: int  # children who later had the outcome
    fdr: float  # Benjamini-Hochberg false discovery rate of subgroup discovery
    recording_window_days: int
    recording_ratio: float  # a source recorded below this x the rest's rate is flagged
    fail_on_violation: bool


@dataclass(frozen=True)
class Monitoring:  # src/audit/monitoring.py: an alert when a value reaches its threshold
    feature_psi: float
    score_psi: float
    score_mean_shift: float
    source_drop: float
    record_window_days: int
    realised_gap: float
    expected_drop: float
    reference_rows: int


@dataclass(frozen=True)
class ModelCard:
    owner: str


@dataclass(frozen=True)
class Params:
    base: Base
    data: Data
    label: Label
    synthetic: Synthetic
    ingest: Ingest
    features: Features
    spark: Spark
    train: Train
    evaluate: Evaluate
    explain: Explain
    watchlist: Watchlist
    referrals: Referrals
    fairness: Fairness
    monitoring: Monitoring
    linkage: Linkage
    screening: Screening
    model_card: ModelCard


def load_params(path: str | Path = "params.yaml", overrides: dict | None = None) -> Params:
    """Read params.yaml (plus optional nested overrides) into a validated Params."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise SafetynetError(f"{path}: file not found; run from the project root") from None
    except yaml.YAMLError as exc:
        raise SafetynetError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    _refuse_unquoted_dates(raw, "", path)
    if overrides:
        raw = merge(raw, overrides)
    return parse_params(raw, source=str(path))


def _refuse_unquoted_dates(raw, where: str, path: Path) -> None:
    """YAML reads `2024-12-31` as a date, which DVC cannot template: say how to write it."""
    if isinstance(raw, dict):
        for key, value in raw.items():
            _refuse_unquoted_dates(value, f"{where}.{key}" if where else str(key), path)
    elif isinstance(raw, dt.date):
        raise SafetynetError(f'{path}: {where}: write the date in quotes, {where.rsplit(".", 1)[-1]}: '
                             f'"{raw.isoformat()}" (DVC cannot read an unquoted YAML date)')  # fmt: skip


def parse_params(raw: dict, source: str = "params.yaml") -> Params:
    try:
        params = build(Params, raw, "")
        _check(params)
    except SafetynetError as exc:
        raise SafetynetError(f"{source}: {exc}") from None
    return params


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise SafetynetError(message)


def _check(p: Params) -> None:
    """Checks across fields: everything that makes a run fail later, found at load."""
    for key in ("horizon_days", "dropout_streak_days"):
        _require(getattr(p.label, key) >= 1, f"label.{key} must be a whole number >= 1")
    _require(tuple(p.features.windows_days) == catalogue.WINDOWS_DAYS,
             f"features.windows_days {list(p.features.windows_days)} differs from the catalogue's "
             f"{list(catalogue.WINDOWS_DAYS)}; feature names carry their window, so change "
             "src/features/catalogue.py and the feature queries together with it")  # fmt: skip
    first, last = p.features.first_as_of, p.features.last_as_of
    _require(first is None or last is None or first <= last,
             f"features.first_as_of {first} is after features.last_as_of {last}")  # fmt: skip
    _require(p.features.batch_rows >= 1, "features.batch_rows must be >= 1")
    bt = p.train.backtest
    _require(p.train.test_months >= 1, "train.test_months must be at least 1")
    _require(bt.folds >= 2 and bt.fold_months >= 1 and bt.search_trials >= 1,
             "train.backtest: folds must be >= 2, fold_months and search_trials >= 1")  # fmt: skip
    _require(bt.max_children >= 0, "train.backtest.max_children must be >= 0 (0 = every child)")
    _require(1 <= bt.calibration_folds <= bt.folds,
             "train.backtest.calibration_folds must be between 1 and train.backtest.folds")  # fmt: skip
    nc = p.train.nowcast
    _require(1 <= nc.days < p.label.horizon_days and nc.months >= 0 and nc.prior_events >= 0,
             "train.nowcast: days must be in [1, label.horizon_days), months and prior_events >= 0")  # fmt: skip
    _require(0 < p.train.negative_sample_rate <= 1,
             f"train.negative_sample_rate must be in (0, 1], got {p.train.negative_sample_rate}")  # fmt: skip
    gate_metrics = [*metrics.standard_names(p.evaluate.top_pcts), "list_stability"]
    _require(p.evaluate.gate_metric in gate_metrics,
             f"evaluate.gate_metric '{p.evaluate.gate_metric}' is not an evaluated metric "
             f"(use one of {', '.join(gate_metrics)})")  # fmt: skip
    _require(p.evaluate.ece_bins >= 2, "evaluate.ece_bins must be at least 2")
    _require(0 < p.evaluate.peer_alpha < 0.5, "evaluate.peer_alpha must be in (0, 0.5)")
    _require(min(p.evaluate.peer_max_rows, p.evaluate.logistic_max_rows) >= 1, "evaluate: peer_max_rows and logistic_max_rows must be >= 1")
    _require(p.explain.top_n_reasons >= 1 and p.explain.shap_margin >= 0, "explain: top_n_reasons must be >= 1, shap_margin >= 0")
    bands = p.watchlist.risk_bands
    _require(len(bands) == 2 and 0 < bands[0] < bands[1] < 1,
             f"watchlist.risk_bands: expected two increasing probabilities, got {list(bands)}")  # fmt: skip
    _require(p.watchlist.cooldown_days >= 0 and 0 <= p.watchlist.cooldown_override <= 1,
             "watchlist: cooldown_days must be >= 0 and cooldown_override in [0, 1]")  # fmt: skip
    _require(p.watchlist.follow_up_days >= 1, "watchlist.follow_up_days must be >= 1")
    _require(min(vars(p.monitoring).values()) > 0, "monitoring: every threshold must be > 0")
    _require(min(vars(p.referrals.weights).values()) >= 0, "referrals.weights must all be >= 0")
    _require(max(p.referrals.weights.distance, p.referrals.weights.secondary) <= 10,
             "referrals.weights: distance and secondary must be <= 10 (a match must beat an unmet need)")  # fmt: skip
    tolerance = p.fairness.tolerance
    _require(len(tolerance) == 2 and 0 < tolerance[0] < 1 < tolerance[1],
             f"fairness.tolerance must be [low, high] with 0 < low < 1 < high, got {list(tolerance)}")  # fmt: skip
    unknown = [a for a in (*p.fairness.attributes, *sum(p.fairness.intersections, ()))
               if a not in catalogue.AUDIT_ATTRIBUTES]  # fmt: skip
    _require(not unknown, f"fairness: '{unknown[0] if unknown else ''}' is not an audited attribute "
                          f"(use {', '.join(catalogue.AUDIT_ATTRIBUTES)})")  # fmt: skip
    f = p.fairness
    _require(0 < f.fdr < 1 and 0 < f.recording_ratio < 1 and f.recording_window_days >= 1
             and f.bootstrap_replicates >= 20, "fairness: fdr and recording_ratio must be in (0, 1), "
             "recording_window_days >= 1, bootstrap_replicates >= 20")  # fmt: skip
    for pair in p.fairness.intersections:
        _require(len(pair) == 2 and len(set(pair)) == 2,
                 f"fairness.intersections entries must name two attributes, got {list(pair)}")  # fmt: skip


def check_split(p: Params, as_of_dates, export_date: dt.date) -> None:
    """Fail now, not after the features are built, when the data span cannot hold the split."""
    bt = p.train.backtest
    make_split(as_of_dates, export_date, p.label.horizon_days, p.train.test_months, bt.folds,
               bt.fold_months)  # fmt: skip
