"""The tests' params file (tests/params.test.yaml), never the project's params.yaml."""

from __future__ import annotations

from pathlib import Path

from src.config import Params, load_params

PARAMS_FILE = Path(__file__).with_name("params.test.yaml")


def load_test_params(overrides: dict | None = None) -> Params:
    return load_params(PARAMS_FILE, overrides)
