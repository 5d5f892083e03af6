"""The wallboard's in-memory view: latest per queue, ordering, bounds, alerts and staffing."""

from __future__ import annotations

import asyncio

import pytest

from streams.web.view import AMBER_BAND, DAY_MS, WallboardView, queue_status
from tests.unit.web.records import T0_MS, alert, interval, realtime, staffing


def test_latest_snapshot_wins_and_an_older_one_is_ignored():
    view = WallboardView()
    assert view.apply_realtime(realtime(as_of_ms=T0_MS, waiting=2))
    assert view.apply_realtime(realtime(as_of_ms=T0_MS + 5000, waiting=7))
    # A snapshot from before (another worker's, after a rebalance) arrives late.
    assert not view.apply_realtime(realtime(as_of_ms=T0_MS + 1000, waiting=1))
    [tile] = view.listing()
    assert tile["calls_waiting"] == 7 and tile["as_of_ms"] == T0_MS + 5000
    assert view.ignored == {"realtime_older": 1}


@pytest.mark.parametrize("sl, target, alerts, expected", [
    (0.80, 0.80, [], "green"),
    (0.80 - AMBER_BAND / 2, 0.80, [], "amber"),
    (0.80 - AMBER_BAND * 2, 0.80, [], "red"),
    (None, 0.80, [], "none"),
    (0.95, 0.80, [{"severity": "warning"}], "amber"),
    (0.95, 0.80, [{"severity": "critical"}], "red"),
    (None, None, [{"severity": "warning"}], "amber"),
])
def test_status_against_target(sl, target, alerts, expected):
    assert queue_status(sl, target, alerts) == expected


def test_worst_first_then_by_name_and_tenant_filter():
    view = WallboardView()
    view.apply_realtime(realtime("acme", "ok", sl=0.95))
    view.apply_realtime(realtime("acme", "bad", sl=0.40))
    view.apply_realtime(realtime("globex", "worse", sl=0.30))
    view.apply_realtime(realtime("globex", "slightly", sl=0.78))
    view.apply_realtime(realtime("acme", "quiet", sl=None, waiting=0))
    assert [t["queue"] for t in view.listing()] == ["worse", "bad", "slightly", "ok", "quiet"]
    assert [t["queue"] for t in view.listing(sort="name")] == ["bad", "ok", "quiet", "slightly",
                                                               "worse"]
    assert [t["queue"] for t in view.listing("globex")] == ["worse", "slightly"]
    assert view.tenants() == ["acme", "globex"]
    with pytest.raises(ValueError):
        view.listing(sort="loudest")


def test_bounded_forgets_the_least_recently_updated_queue():
    view = WallboardView(max_queues=3)
    for name in ("a", "b", "c"):
        view.apply_realtime(realtime(queue=name))
    view.apply_realtime(realtime(queue="a", as_of_ms=T0_MS + 1))  # a is fresh again
    view.apply_realtime(realtime(queue="d"))
    assert sorted(view.queues) == ["acme/a", "acme/c", "acme/d"]
    assert view.evicted == 1


def test_intervals_of_the_queues_day_in_order_and_bounded():
    view = WallboardView()
    day = T0_MS - T0_MS % DAY_MS
    for start in (day + 3 * 900_000, day - 900_000, day + 900_000, day + 2 * 900_000):
        view.apply_interval(interval(start_ms=start))
    view.apply_realtime(realtime(as_of_ms=day + 4 * 900_000))
    detail = view.detail("acme", "support")
    assert [r["interval_start_ms"] for r in detail["intervals"]] == [
        day + 900_000, day + 2 * 900_000, day + 3 * 900_000]  # yesterday's is not today's
    for n in range(300):
        view.apply_interval(interval(start_ms=day + n * 900_000))
    assert len(view.queues["acme/support"].intervals) == 192
    assert min(view.queues["acme/support"].intervals) == day + 108 * 900_000


def test_queue_known_only_from_intervals_gets_its_day_and_target():
    view = WallboardView()
    day = T0_MS - T0_MS % DAY_MS
    view.apply_interval(interval("acme", "billing", start_ms=day, target=0.9, sl=0.5))
    tile = view.listing()[0]
    assert tile["sl_target"] == 0.9 and tile["service_level"] is None and tile["status"] == "none"
    assert len(view.detail("acme", "billing")["intervals"]) == 1


def test_alerts_fire_and_resolve_per_queue():
    view = WallboardView()
    view.apply_realtime(realtime(sl=0.95))
    view.apply_alert(alert("a1", severity="warning"))
    view.apply_alert(alert("a2", severity="critical"))
    tile = view.listing()[0]
    assert [a["id"] for a in tile["alerts"]] == ["a1", "a2"] and tile["status"] == "red"
    view.apply_alert(alert("a2", "resolved"))
    assert view.listing()[0]["status"] == "amber"
    assert not view.apply_alert(alert("never-fired", "resolved"))
    assert not view.apply_alert({**alert("x"), "state": "pending"})
    assert view.ignored["alert_malformed"] == 1


def test_staffing_keeps_the_latest_interval_and_prefers_erlang_a():
    view = WallboardView()
    view.apply_staffing(staffing(T0_MS, erlang_a=9))
    view.apply_staffing(staffing(T0_MS - 900_000, erlang_a=99))  # older: ignored
    assert view.listing()[0]["required"] == 9
    view.apply_staffing(staffing(T0_MS + 900_000, erlang_a=None, erlang_c=12))
    assert view.listing()[0]["required"] == 12


def test_records_without_a_queue_are_counted_not_kept():
    view = WallboardView()
    assert not view.apply_realtime({"as_of_ms": 1})
    assert not view.apply_interval({"tenant": "acme", "queue": ""})
    assert not view.queues
    assert view.ignored == {"realtime_without_queue": 1, "interval_without_queue": 1}


def test_changes_since_gives_only_changed_queues_in_change_order():
    view = WallboardView()
    view.apply_realtime(realtime(queue="a"))
    view.apply_realtime(realtime(queue="b"))
    seen = view.version
    view.apply_realtime(realtime(queue="c"))
    view.apply_realtime(realtime(queue="a", as_of_ms=T0_MS + 1))
    assert [t["queue"] for t in view.changes_since(seen)] == ["c", "a"]
    assert view.changes_since(view.version) == []


def test_waiters_wake_on_change_and_time_out_without():
    view = WallboardView()

    async def scenario():
        assert not await view.wait_for_change(view.version, 0.05)
        waiter = asyncio.create_task(view.wait_for_change(view.version, 5))
        await asyncio.sleep(0.01)
        view.apply_realtime(realtime())
        return await asyncio.wait_for(waiter, 1)

    assert asyncio.run(scenario()) is True
