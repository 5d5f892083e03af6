"""The report page in a real browser: headless Chromium (Debian's ``chromium``, installed by
dev/install.sh) loads it, and the DOM it builds holds every queue's charts with one mark per
interval. A screenshot is kept in artifacts/report/ for people to look at."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from streams import cli
from tests.unit.slo.conftest import DAY
from tests.unit.slo.report_dom import check_report_markup

ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts" / "report"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", "--disable-crash-reporter"]


def chromium_or_fail() -> str:
    """The browser's path; in CI a missing browser fails the test, elsewhere it is skipped
    with the reason on the summary line."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    message = ("chromium is not installed: run dev/install.sh (it installs Debian's "
               "`chromium` package) to render the report in a headless browser")
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def run_chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"chromium exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done


def test_report_renders_in_headless_chromium(simulated_day, tmp_path):
    browser = chromium_or_fail()
    out = tmp_path / "report"
    assert cli.main(["report", "--from", DAY, "--to", DAY, "--source", str(simulated_day),
                     "--out", str(out)]) == 0
    page = (out / "report.html").resolve().as_uri()

    dom = run_chromium(browser, tmp_path / "profile", "--dump-dom", page).stdout
    # The browser's own DOM, not the file echoed back: its parser adds the <tbody> we omit.
    assert "<tbody>" in dom and "<tbody>" not in (out / "report.html").read_text(), dom[:300]
    records = [orjson.loads(line) for line in simulated_day.read_bytes().splitlines()]
    checked = check_report_markup(dom, records)
    assert checked["queues"] >= 3 and checked["points"] > 100

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    run_chromium(browser, tmp_path / "profile", "--window-size=1100,2400",
                 "--hide-scrollbars", f"--screenshot={shot}", page)
    shutil.copy(out / "report.html", ARTIFACTS / "report.html")
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "the screenshot is not a PNG"
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert (width, height) == (1100, 2400)
    assert shot.stat().st_size > 50_000, "the screenshot is suspiciously small (blank page?)"
