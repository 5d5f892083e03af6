"""The wallboard in a real browser: a worker on the real broker, fed by the simulator, serves
the page; headless Chromium (Debian's ``chromium``) loads it, and the DOM it builds holds a
tile per queue whose figures came from the realtime topic and changed through live updates,
without a reload. /api/queues and /metrics agree. A screenshot goes to artifacts/wallboard/."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.demo import DEMO_SCENARIO
from streams.localkafka import free_port
from tests.integration.kafka_helpers import produce
from tests.integration.browser import Browser, PageError
from tests.unit.slo.test_report_browser import chromium_or_fail

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "wallboard"
OUTER_HTML = "document.documentElement.outerHTML"
# performance navigation entries count loads of this document: 1 means no reload happened.
LIVE = ("(() => { const l = document.getElementById('live').dataset; return {version: l.version,"
        " snapshot: l.snapshotVersion, updates: l.updates || '0',"
        " loads: performance.getEntriesByType('navigation').length}; })()")


def _config(settings, tmp_path: Path, bootstrap: str, web_port: int) -> Path:
    t = settings.topics
    config = tmp_path / "callslo.toml"
    config.write_text(
        f'[kafka]\nbootstrap = "{bootstrap}"\n'
        f'[topics]\nevents = "{t.events}"\ndlq = "{t.dlq}"\nbatches = "{t.batches}"\n'
        f'intervals = "{t.intervals}"\nrealtime = "{t.realtime}"\nalerts = "{t.alerts}"\n'
        f'staffing = "{t.staffing}"\ncontacts = "{t.contacts}"\nfcr = "{t.fcr}"\n'
        f'partitions = {t.partitions}\n'
        f'[ingest]\ngroup_id = "{settings.ingest.group_id}"\nmax_future_skew_s = 90000\n'
        f'[web]\nport = {web_port}\n'
        f'[worker]\napp_id = "{settings.worker.app_id}"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[engine]\nrealtime_interval_s = 1.0\n')
    return config


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read()


def _wait(what: str, check, proc: subprocess.Popen, log: Path, timeout_s: float = 120):
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.poll() is None, f"worker exited:\n{log.read_text()[-3000:]}"
        try:
            found = check()
        except (OSError, PageError):  # the server or the page not ready yet
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} not seen:\n{log.read_text()[-3000:]}"
        time.sleep(1)


def _tiles(dom: str) -> dict[str, dict[str, str]]:
    tiles = {}
    for match in re.finditer(r'<article class="tile ([a-z]+)[^"]*" data-key="([^"]+)" '
                             r'data-status="[a-z]+" data-version="(\d+)" data-sl="([^"]*)" '
                             r'data-waiting="([^"]*)"', dom):
        status, key, version, sl, waiting = match.groups()
        tiles[key] = {"status": status, "version": int(version), "sl": sl, "waiting": waiting}
    return tiles


def test_wallboard_in_headless_chromium_updates_live(kafka_bootstrap, make_settings, tmp_path):
    browser = chromium_or_fail()
    settings = make_settings(kafka_bootstrap)
    web_port = free_port()
    config = _config(settings, tmp_path, kafka_bootstrap, web_port)
    url = f"http://127.0.0.1:{web_port}/"
    log = tmp_path / "worker.log"
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(DEMO_SCENARIO)
    with open(log, "ab") as out:
        worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker", "--config",
                                   str(config)], stdout=out, stderr=subprocess.STDOUT)
    simulator = None
    try:
        _wait("the web server", lambda: _get(url + "api/queues"), worker, log)
        now_ms = int(time.time() * 1000)
        simulator = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "simulate", "--scenario", str(scenario),
             "--topic", "--config", str(config), "--speedup", "20", "--hours", "6",
             "--start", str(now_ms - now_ms % 60_000)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # An alert and a staffing record as the other stages will publish them.
        asyncio.run(produce(kafka_bootstrap, settings.topics.alerts, [(b"acme/support", orjson.dumps(
            {"id": "sl-acme-support", "state": "firing", "severity": "warning", "tenant": "acme",
             "queue": "support", "kind": "service_level", "value": 0.61, "threshold": 0.8,
             "started_ms": now_ms, "resolved_ms": None}))]))
        # The wallboard shows the latest interval's staffing. The simulator runs 20x, so the
        # worker's own SLO stage publishes staffing of intervals up to an hour ahead within a
        # minute (without a requirement at first: no handled call yet); a day ahead, this
        # record stays the latest whatever the time of day the test runs.
        asyncio.run(produce(kafka_bootstrap, settings.topics.staffing, [(b"acme/support", orjson.dumps(
            {"tenant": "acme", "queue": "support",
             "interval_start_ms": now_ms - now_ms % 900_000 + 86_400_000,
             "required_erlang_c": 11, "required_erlang_a": 10, "staffed": 12, "gap": 2}))]))

        def all_queues_have_calls():
            body = orjson.loads(_get(url + "api/queues"))
            ready = [t for t in body["queues"] if t["offered"]]
            return body if len(ready) >= 5 else None

        api = _wait("five queues with calls", all_queues_have_calls, worker, log, 180)
        keys = {t["key"] for t in api["queues"]}
        assert keys == {"acme/support", "acme/billing", "globex/sales", "globex/renewals",
                        "initech/helpdesk"}
        support = next(t for t in api["queues"] if t["key"] == "acme/support")
        assert support["required"] == 10  # Erlang A where known
        assert "sl-acme-support" in [a["id"] for a in support["alerts"]]

        page = Browser(browser, tmp_path / "profile", url)
        try:
            first = _wait("tiles in the browser", lambda: _tiles(page.evaluate(OUTER_HTML)),
                          worker, log, 60)
            # The simulator keeps going; the page must follow without a reload. Poll rather
            # than sleep: on a busy machine the next snapshot may take a while.
            deadline = time.monotonic() + 90
            while True:
                dom = page.evaluate(OUTER_HTML)
                tiles = _tiles(dom)
                live = page.evaluate(LIVE)
                updated = (int(live["updates"]) >= 1
                           and int(live["version"]) > int(live["snapshot"])
                           and any(tiles.get(k) != first.get(k) for k in keys))
                if updated or time.monotonic() > deadline:
                    break
                time.sleep(1)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / "wallboard.png"
            shot.unlink(missing_ok=True)
            page.screenshot(shot)
            (ARTIFACTS / "wallboard.html").write_text(dom)
        finally:
            page.close()
        assert set(tiles) == keys, dom[:2000]
        assert live["loads"] == 1, "the page was reloaded"
        # Pushed updates arrived after the first snapshot and changed tiles in place.
        assert int(live["updates"]) >= 1 and int(live["version"]) > int(live["snapshot"])
        assert max(t["version"] for t in tiles.values()) > max(t["version"] for t in first.values())
        assert any(tiles[k] != first[k] for k in keys), "no figure changed"
        for key, tile in tiles.items():
            assert tile["sl"] == "" or 0.0 <= float(tile["sl"]) <= 1.0, (key, tile)
        assert "service_level: 0.61" in dom  # the firing alert on its tile
        assert 'class="bar' in dom or "No interval of today has closed yet." in dom
        header = shot.read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n"
        assert int.from_bytes(header[16:20], "big") == 1600 and int.from_bytes(header[20:24], "big") > 600
        assert shot.stat().st_size > 20_000, "the screenshot is suspiciously small (blank page?)"

        metrics = _get(url + "metrics").decode()
        families = {f.name: f for f in text_string_to_metric_families(metrics)}
        waiting = {s.labels["queue"]: s.value for s in families["callslo_queue_calls_waiting"].samples}
        assert set(waiting) == {k.split("/")[1] for k in keys}
        assert families["callslo_ingest_events"].samples[0].value > 0

    finally:
        if simulator is not None and simulator.poll() is None:
            simulator.terminate()
            simulator.wait(30)
        worker.terminate()
        try:
            code = worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
            raise AssertionError(f"worker ignored SIGTERM:\n{log.read_text()[-3000:]}")
    assert code == 0, log.read_text()[-3000:]
