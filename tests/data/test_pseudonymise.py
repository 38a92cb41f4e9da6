"""child_pid is a stable, keyed HMAC-SHA256; the development key is loud and recorded."""

from __future__ import annotations

import hashlib
import hmac
import logging

import pandas as pd

from src.data.pseudonymise import DEVELOPMENT_KEY, KEY_ENV_VAR, child_pid, child_pids, load_pid_key


def test_pid_is_hmac_sha256_hex():
    expected = hmac.new(b"k", b"C01", hashlib.sha256).hexdigest()
    assert child_pid("C01", b"k") == expected
    assert len(expected) == 64 and set(expected) <= set("0123456789abcdef")


def test_pids_are_stable_and_keyed():
    ids = pd.Series(["C01", "C02", "C01", "儿童-3"])
    first, again = child_pids(ids, b"key-a"), child_pids(ids, b"key-a")
    other = child_pids(ids, b"key-b")
    assert list(first) == list(again)
    assert first[0] == first[2] and first[0] != first[1]
    assert not set(first) & set(other)
    assert list(first) == [child_pid(i, b"key-a") for i in ids]


def test_key_from_environment():
    key = load_pid_key({KEY_ENV_VAR: "s3cret"})
    assert key.status == "env" and key.key == b"s3cret"
    assert "s3cret" not in repr(key)


def test_missing_key_uses_development_key_loudly(caplog):
    with caplog.at_level(logging.WARNING):
        key = load_pid_key({})
    assert key.status == "development" and key.key == DEVELOPMENT_KEY
    assert any(
        r.levelno == logging.WARNING and KEY_ENV_VAR in r.getMessage() for r in caplog.records
    )
