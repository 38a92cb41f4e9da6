"""child_id -> child_pid: HMAC-SHA256 under the secret key in SAFETYNET_PID_KEY.

Without the key a fixed development key is used; that is logged as a WARNING and
recorded as ``pid_key: "development"`` in the manifest and the data-quality report,
because pids made with a public key can be reversed by anyone holding the registry.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

KEY_ENV_VAR = "SAFETYNET_PID_KEY"
DEVELOPMENT_KEY = b"safetynet-ews development key - NOT SECRET - do not use with real data"


@dataclass(frozen=True)
class PidKey:
    key: bytes
    status: str  # "env" (from SAFETYNET_PID_KEY) or "development"

    def __repr__(self) -> str:  # never print the secret
        return f"PidKey(status={self.status!r})"


def load_pid_key(environ: Mapping[str, str] | None = None) -> PidKey:
    """The key from the environment, or the development key with a loud warning."""
    environ = os.environ if environ is None else environ
    value = environ.get(KEY_ENV_VAR, "")
    if value:
        return PidKey(value.encode("utf-8"), "env")
    log.warning(
        "%s is not set: using the PUBLIC DEVELOPMENT key for child_pid. Fine for synthetic data; "
        "for a real export set %s to a long random secret and keep it out of git.",
        KEY_ENV_VAR,
        KEY_ENV_VAR,
    )
    return PidKey(DEVELOPMENT_KEY, "development")


def child_pid(child_id: str, key: bytes) -> str:
    """64 lower-case hex chars: HMAC-SHA256(key, child_id as UTF-8)."""
    return hmac.new(key, child_id.encode("utf-8"), hashlib.sha256).hexdigest()


def child_pids(child_ids: Iterable[str], key: bytes) -> np.ndarray:
    """child_pid for many ids, computing each distinct id once.

    HMAC has no vectorised form, so this loops in Python; it runs once per distinct
    child (about 1.5 s per million), never per event row: events reuse the registry's pids.
    """
    ids = pd.Series(
        list(child_ids) if not isinstance(child_ids, pd.Series) else child_ids, dtype=str
    )
    codes, uniques = pd.factorize(ids)
    if (codes < 0).any():
        raise ValueError(
            "child_pids: a child_id is missing; quarantine such rows before pseudonymising"
        )
    base = hmac.new(key, digestmod=hashlib.sha256)
    unique_pids = np.empty(len(uniques), dtype=object)
    for i, value in enumerate(uniques):
        mac = base.copy()
        mac.update(value.encode("utf-8"))
        unique_pids[i] = mac.hexdigest()
    return unique_pids[codes] if len(codes) else np.empty(0, dtype=object)
