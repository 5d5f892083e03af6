"""``callslo report --source topic`` against the real broker: records produced to the
intervals topic, repeats included, come out once in the report."""

from __future__ import annotations

import asyncio
import io

import orjson

from streams import cli
from streams.peek import print_interval_records
from streams.slo.report.load import COUNT_FIELDS
from streams.topics import ensure_topics
from tests.integration.kafka_helpers import produce
from tests.unit.slo.report_records import INTERVAL_MS, at_ms, interval_record


def write_config(path, settings, intervals_topic=None):
    path.write_text(f'[kafka]\nbootstrap = "{settings.kafka.bootstrap}"\n'
                    f'[topics]\nintervals = "{intervals_topic or settings.topics.intervals}"\n'
                    f'fcr = "{settings.topics.fcr}"\n'
                    f"partitions = {settings.topics.partitions}\n")
    return str(path)


def message(record):
    return f"{record['tenant']}/{record['queue']}".encode(), orjson.dumps(record)


def test_report_reads_the_intervals_topic(kafka_bootstrap, make_settings, tmp_path, capsys):
    settings = make_settings(kafka_bootstrap)
    asyncio.run(ensure_topics(settings))
    start_ms = at_ms("2025-03-03T06:00")
    records = [interval_record(start_ms + i * INTERVAL_MS, tenant=tenant, queue=queue,
                               answered=10 + i % 7, answered_within=(10 + i % 7) - i % 5,
                               abandoned=i % 3, transferred=i % 2)
               for tenant, queue in (("acme", "support"), ("acme", "sales"), ("globex", "vip"))
               for i in range(40)]
    # A worker that crashed after publishing re-publishes identical records; a record that
    # differs for the same interval (a second producer) wins by coming later on its partition.
    changed = dict(interval_record(start_ms, answered=30, answered_within=3))
    outside = interval_record("2025-03-04T06:00")
    sent = records + records[:15] + [changed, outside]
    asyncio.run(produce(kafka_bootstrap, settings.topics.intervals, map(message, sent)))
    expected = [changed] + records[1:]
    # First-contact resolution of every acme/support interval, on the FCR topic.
    fcr = [{"schema": "slo.queue-fcr.v1", "tenant": "acme", "queue": "support",
            "interval_start_ms": r["interval_start_ms"], "interval_end_ms": r["interval_end_ms"],
            "fcr_window_s": 86_400, "contacts": 10, "resolved_calls": 8, "unresolved_calls": 2,
            "first_contact_resolution": 0.8}
           for r in expected if (r["tenant"], r["queue"]) == ("acme", "support")]
    asyncio.run(produce(kafka_bootstrap, settings.topics.fcr, map(message, fcr)))

    config = write_config(tmp_path / "callslo.toml", settings)
    out = tmp_path / "report"
    assert cli.main(["report", "--from", "2025-03-03", "--to", "2025-03-03", "--config", config,
                     "--out", str(out), "--progress"]) == 0
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert summary["input"] == {"read": len(sent), "duplicates": 16, "duplicates_differing": 1,
                                "kept": len(expected), "outside_period": 1,
                                "other_tenants": 0, "fcr_read": 40, "fcr_joined": 40}
    quality = summary["tenants"]["acme"]["queues"]["support"]["quality"]
    assert quality["first_contact_resolution"] == {"value": 0.8, "resolved_calls": 320,
                                                   "unresolved_calls": 80}
    assert summary["source"] == (f"topic {settings.topics.intervals} on "
                                 f"{settings.kafka.bootstrap}")
    for tenant, tenant_summary in summary["tenants"].items():
        for queue, queue_summary in tenant_summary["queues"].items():
            mine = [r for r in expected if (r["tenant"], r["queue"]) == (tenant, queue)]
            assert queue_summary["totals"] == {name: sum(r[name] for r in mine)
                                               for name in COUNT_FIELDS}
    assert summary["tenants"]["acme"]["queues"]["support"]["totals"]["answered"] == sum(
        r["answered"] for r in expected if r["queue"] == "support")
    assert len((out / "intervals.csv").read_text().splitlines()) == 1 + len(expected)
    assert "sl-point" in (out / "report.html").read_text()

    # `callslo records` reads the same topic with the same reader, every message once.
    shown = io.StringIO()
    printed = asyncio.run(print_interval_records(settings, follow=False, as_json=True, out=shown))
    assert printed == len(sent)
    assert sorted(shown.getvalue().splitlines()) == sorted(orjson.dumps(r).decode() for r in sent)


def test_report_errors_on_the_topic(kafka_bootstrap, make_settings, tmp_path, capsys):
    settings = make_settings(kafka_bootstrap)
    missing = write_config(tmp_path / "missing.toml", settings, "test-no-such-intervals-topic")
    args = ["report", "--from", "2025-03-03", "--to", "2025-03-03", "--out", str(tmp_path / "o")]
    assert cli.main([*args, "--config", missing]) == 2
    assert "no topic test-no-such-intervals-topic on" in capsys.readouterr().err

    asyncio.run(ensure_topics(settings))
    good = interval_record("2025-03-03T09:00")
    asyncio.run(produce(kafka_bootstrap, settings.topics.intervals,
                        [message(good), (b"acme/support", b"{half a record")]))
    assert cli.main([*args, "--config", write_config(tmp_path / "c.toml", settings)]) == 2
    err = capsys.readouterr().err
    assert f"{settings.topics.intervals} partition " in err and "offset 1: not valid JSON" in err
    assert not (tmp_path / "o").exists()
