"""The county HTML watchlist opens in headless Chromium, shows every row and yields a screenshot."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from src.delivery import watchlist
from tests.delivery import explain_fixtures as fx

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
    ),
]


def run_chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless, offline, no first-run work; the profile lives in a temporary folder."""
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={profile}", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=True)


def screenshot(page: Path, png: Path, profile: Path, size: str = "1400,1100") -> None:
    run_chromium(profile, f"--screenshot={png}", f"--window-size={size}", page.as_uri())


@pytest.mark.parametrize("language", ["zh", "en"])
def test_county_page_renders_every_row_in_chromium(tmp_path, monkeypatch, language):
    fx.use_small_catalogue(monkeypatch)
    expl_path, interim, identity, children = fx.write_inputs(tmp_path, n=40, n_counties=2)
    out = tmp_path / "watchlists"
    monkeypatch.setattr(watchlist, "read_promotion", lambda models: {"passed": True, "reason": "ok", "model_digest": "m"})
    watchlist.run(expl_path, tmp_path / "contributions.parquet", tmp_path / "models", fx.served_dir(tmp_path), interim, out, fx.params(watchlist__language=language))
    county = sorted(children["county_code"].unique())[0]
    page = out / county / "watchlist.html"

    dom = run_chromium(tmp_path / "profile", "--dump-dom", page.as_uri()).stdout
    shown = set(re.findall(r'data-child="([^"]+)"', dom))
    assert shown and shown <= set(identity.loc[children["county_code"] == county, "child_id"])
    assert "<script" not in dom.lower() and 'class="cut"' in dom

    # a director's printable page: every child of theirs, and each listed child's waterfall
    director = sorted((out / county / "directors").glob("d-*.html"))[0]
    dom = run_chromium(tmp_path / "profile", "--dump-dom", director.as_uri()).stdout
    expected = set(re.findall(r'data-child="([^"]+)"', director.read_text(encoding="utf-8")))
    assert expected and set(re.findall(r'data-child="([^"]+)"', dom)) == expected
    assert dom.count("<rect") >= 3 and 'data-explained="' in dom
    png = tmp_path / f"director_{language}.png"
    screenshot(director, png, tmp_path / "profile", size="1400,2600")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000

    png = tmp_path / f"watchlist_{language}.png"
    screenshot(page, png, tmp_path / "profile")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
