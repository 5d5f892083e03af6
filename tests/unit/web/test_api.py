"""The wallboard's HTTP API: JSON shapes, filters, errors, the page, assets and live events."""

from __future__ import annotations

import asyncio

import orjson

from streams.web.view import DAY_MS
from tests.unit.web.records import T0_MS, alert, interval, realtime, staffing


def test_queues_lists_tiles_worst_first_with_tenant_filter(serve):
    served = serve()
    served.view.apply_realtime(realtime("acme", "support", sl=0.9))
    served.view.apply_realtime(realtime("acme", "billing", sl=0.5, waiting=9, oldest_s=240.0))
    served.view.apply_realtime(realtime("globex", "sales", sl=0.7))
    served.view.apply_alert(alert("a1", tenant="acme", queue="billing"))
    served.view.apply_staffing(staffing(T0_MS, tenant="acme", queue="billing", erlang_a=14))

    status, body, response = served.get("/api/queues")
    assert status == 200 and response.headers["Cache-Control"] == "no-store"
    assert body["tenants"] == ["acme", "globex"]
    assert [t["key"] for t in body["queues"]] == ["acme/billing", "globex/sales", "acme/support"]
    billing = body["queues"][0]
    assert billing["status"] == "red" and billing["service_level"] == 0.5
    assert billing["calls_waiting"] == 9 and billing["oldest_wait_s"] == 240.0
    assert billing["asa_s"] == 12.5 and billing["abandon_rate"] == 0.1
    assert billing["agents"] == {"available": 3, "on_call": 4, "wrapup": 1, "away": 2}
    assert billing["staffed"] == 10 and billing["required"] == 14
    assert [a["id"] for a in billing["alerts"]] == ["a1"]

    _, body, _ = served.get("/api/queues?tenant=acme&sort=name")
    assert [t["key"] for t in body["queues"]] == ["acme/billing", "acme/support"]
    status, body, _ = served.get("/api/queues?sort=loud")
    assert status == 400 and "worst or name" in body["error"]


def test_one_queue_has_its_snapshot_and_todays_intervals(serve):
    served = serve()
    day = T0_MS - T0_MS % DAY_MS
    served.view.apply_realtime(realtime("acme", "support"))
    for n in range(3):
        served.view.apply_interval(interval("acme", "support", start_ms=day + n * 900_000))
    status, body, _ = served.get("/api/queues/acme/support")
    assert status == 200
    assert body["realtime"]["w60m_offered"] == 40
    assert [r["interval_start_ms"] for r in body["intervals"]] == [day, day + 900_000,
                                                                   day + 1_800_000]
    status, body, _ = served.get("/api/queues/acme/nope")
    assert status == 404 and "acme/nope" in body["error"]


def test_page_and_assets_come_from_the_package(serve):
    served = serve()
    status, page, response = served.get("/")
    assert status == 200 and response.content_type == "text/html"
    assert '<script src="/static/wallboard.js">' in page
    for name, kind in (("wallboard.js", "text/javascript"), ("wallboard.css", "text/css")):
        status, text, response = served.get(f"/static/{name}")
        assert status == 200 and response.content_type == kind and len(text) > 500
    # Nothing the page needs comes from elsewhere.
    for name in ("/", "/static/wallboard.js", "/static/wallboard.css"):
        text = served.get(name)[1]
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text
    assert served.get("/static/../api.py")[0] == 404
    assert served.get("/static/missing.js")[0] == 404


def test_faust_table_pages_are_not_served(serve):
    served = serve()
    assert served.get("/table/")[0] == 404
    assert served.get("/router/")[0] == 404


def test_events_stream_a_snapshot_then_only_changed_queues(serve):
    served = serve()
    served.view.apply_realtime(realtime("acme", "support", waiting=1))
    served.view.apply_realtime(realtime("globex", "sales", waiting=1))

    async def follow():
        response = await served.client.get("/api/events?tenant=acme")
        assert response.headers["Content-Type"] == "text/event-stream"
        events = []

        async def read_event():
            lines = {}
            while True:
                line = (await response.content.readline()).decode().rstrip("\n")
                if not line:
                    return lines
                if not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    lines[name] = value

        events.append(await asyncio.wait_for(read_event(), 5))
        served.view.apply_realtime(realtime("globex", "sales", as_of_ms=T0_MS + 1, waiting=4))
        served.view.apply_realtime(realtime("acme", "support", as_of_ms=T0_MS + 1, waiting=5))
        events.append(await asyncio.wait_for(read_event(), 5))
        response.close()
        return events

    snapshot, update = served.run(follow())
    assert snapshot["event"] == "snapshot"
    assert [t["key"] for t in orjson.loads(snapshot["data"])["queues"]] == ["acme/support"]
    assert update["event"] == "update" and int(update["id"]) == served.view.version
    tiles = orjson.loads(update["data"])["queues"]
    assert [(t["key"], t["calls_waiting"]) for t in tiles] == [("acme/support", 5)]
