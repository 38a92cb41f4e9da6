"""`safetynet doctor`: environment, pseudonymisation key, data folder and versions, in one report."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from src.config import load_params
from src.data.contract import TABLES
from src.errors import SafetynetError

PACKAGES = (
    "pandas",
    "numpy",
    "pyarrow",
    "duckdb",
    "pandera",
    "scikit-learn",
    "lightgbm",
    "shap",
    "mlflow",
    "dvc",
    "fairlearn",
)
OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass
class DoctorReport:
    checks: list[tuple[str, str, str]] = field(default_factory=list)  # (status, what, detail)

    def add(self, status: str, what: str, detail: str) -> None:
        self.checks.append((status, what, detail))

    @property
    def ok(self) -> bool:
        return all(status != FAIL for status, _, _ in self.checks)

    def render(self) -> str:
        width = max(len(what) for _, what, _ in self.checks)
        lines = [f"[{status:>4}] {what:<{width}}  {detail}" for status, what, detail in self.checks]
        lines.append("all checks passed" if self.ok else "some checks FAILED: fix the lines marked FAIL")
        return "\n".join(lines)


def check_python(report: DoctorReport) -> None:
    version = ".".join(map(str, sys.version_info[:3]))
    status = OK if sys.version_info[:2] == (3, 11) else WARN
    report.add(status, "python", f"{version} ({sys.executable})")


def check_packages(report: DoctorReport) -> None:
    for name in PACKAGES:
        try:
            report.add(OK, name, importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            report.add(FAIL, name, "not installed: run `make install`")


def check_key(report: DoctorReport) -> None:
    if os.environ.get("SAFETYNET_PID_KEY"):
        report.add(OK, "SAFETYNET_PID_KEY", "set (value not shown)")
    else:
        report.add(WARN, "SAFETYNET_PID_KEY", "unset: a development key is used; set it before real data")


def check_params_and_data(report: DoctorReport, params_path: Path) -> None:
    try:
        params = load_params(params_path)
    except SafetynetError as exc:
        report.add(FAIL, "params", str(exc))
        return
    report.add(OK, "params", f"{params_path} is valid")
    raw = Path(params.data.raw_dir)
    if not raw.is_dir():
        hint = "run `dvc repro` to generate it" if raw.name == "synthetic" else "copy the export there"
        report.add(WARN, "data.raw_dir", f"{raw} does not exist yet: {hint}")
        return
    missing = [
        t.name
        for t in TABLES.values()
        if t.required and not any((raw / f"{t.name}.{ext}").exists() for ext in ("csv", "parquet"))
    ]
    if missing:
        report.add(FAIL, "data.raw_dir", f"{raw} lacks required tables: {', '.join(missing)}")
    else:
        report.add(OK, "data.raw_dir", f"{raw} has every required table; run `safetynet validate {raw}`")


def check_tools(report: DoctorReport) -> None:
    dvc = shutil.which("dvc")
    beside_python = Path(sys.executable).parent / "dvc"
    if dvc:
        report.add(OK, "dvc on PATH", dvc)
    elif beside_python.exists():
        report.add(WARN, "dvc on PATH", f"only at {beside_python}: `source .venv/bin/activate` first")
    else:
        report.add(FAIL, "dvc on PATH", "not installed: run `make install`")
    tracking = os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///<project>/mlflow.db (local default)")
    report.add(OK, "mlflow store", tracking)
    chromium = shutil.which("chromium")
    report.add(OK if chromium else WARN, "chromium", chromium or "absent: browser tests are skipped (optional)")


def run(params_path: Path) -> DoctorReport:
    report = DoctorReport()
    check_python(report)
    check_packages(report)
    check_key(report)
    check_params_and_data(report, Path(params_path))
    check_tools(report)
    return report
