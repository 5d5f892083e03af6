"""The topics callslo reads and writes, and their creation at start."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import NewTopic
from aiokafka.partitioner import murmur2
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from streams import clients
from streams.errors import CallsloError
from streams.settings import KafkaSettings, Settings

__all__ = ["TopicSpec", "topic_specs", "ensure_topics", "partition_ids", "key_partition"]


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int
    config: tuple[tuple[str, str], ...] = ()


def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2, as the Java client and
    aiokafka do): where a producer keying by the contract's message key sends an event."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the engine needs, sized from the settings.

    The events topic and the internal batch topic share one partition count: the batch of
    source partition p is written to partition p (co-partitioning by construction).
    """
    t = settings.topics
    keep_forever = (("retention.ms", "-1"),)
    return [
        TopicSpec(t.events, t.partitions, t.replication),
        TopicSpec(t.batches, t.partitions, t.replication,
                  (("max.message.bytes", str(16 * 1024 * 1024)),)),
        # Interval records feed SLA reports over whole contract periods: kept 400 days.
        TopicSpec(t.intervals, t.partitions, t.replication,
                  (("retention.ms", str(400 * 86_400_000)),)),
        # Realtime records are snapshots: the latest per queue matters, a day is plenty.
        TopicSpec(t.realtime, t.partitions, t.replication,
                  (("retention.ms", str(86_400_000)),)),
        # SLO evaluation (docs/slo.md): keyed <tenant>/<queue> like the records they come
        # from. The evaluator rebuilds firing alerts from the alerts topic at start.
        TopicSpec(t.alerts, t.partitions, t.replication, (("retention.ms", str(90 * 86_400_000)),)),
        TopicSpec(t.staffing, t.partitions, t.replication, (("retention.ms", str(35 * 86_400_000)),)),
        TopicSpec(t.budget, t.partitions, t.replication, (("retention.ms", str(35 * 86_400_000)),)),
        # The FCR stage rebuilds its callers from the contacts of the last window at start
        # (streams/slo/fcr.py): kept the window and two days more.
        TopicSpec(t.contacts, t.partitions, t.replication, (
            ("retention.ms", str((settings.slo.fcr_window_s + 2 * 86_400) * 1000)),)),
        TopicSpec(t.fcr, t.partitions, t.replication, (("retention.ms", str(400 * 86_400_000)),)),
        # Dead letters are evidence for the operator; they are kept until someone deletes them.
        # A dead letter is the original message plus headers: it needs a little more room
        # than the events topic allows, or the largest valid message could not be refused.
        TopicSpec(t.dlq, t.partitions, t.replication,
                  keep_forever + (("max.message.bytes", str(16 * 1024 * 1024 + 64 * 1024)),)),
    ]


async def partition_ids(kafka: KafkaSettings, topic: str) -> list[int]:
    """The partitions of ``topic``; empty when it does not exist."""
    admin = clients.admin(kafka)
    try:
        await admin.start()
        described = await admin.describe_topics([topic])
    except KafkaError as exc:
        raise CallsloError(f"cannot describe topic {topic} on {kafka.bootstrap}: {exc}") from exc
    finally:
        await admin.close()
    return sorted(p["partition"] for d in described if d["topic"] == topic and not d["error_code"]
                  for p in d["partitions"])


async def ensure_topics(settings: Settings, specs: list[TopicSpec] | None = None) -> list[str]:
    """Create the missing topics; return the names created. Existing topics must have the
    partition count the settings ask for, or the engine would mis-route batches."""
    specs = topic_specs(settings) if specs is None else specs
    admin = clients.admin(settings.kafka)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            try:
                await admin.create_topics([
                    NewTopic(s.name, s.partitions, s.replication, topic_configs=dict(s.config))
                    for s in missing])
            except TopicAlreadyExistsError:
                pass  # another worker created them between our list and our create
        present = [s for s in specs if s.name in existing]
        if present:
            described = await admin.describe_topics([s.name for s in present])
            counts = {d["topic"]: len(d["partitions"]) for d in described}
            for s in present:
                if counts.get(s.name) != s.partitions:
                    raise CallsloError(
                        f"topic {s.name} has {counts.get(s.name)} partitions but the settings say "
                        f"{s.partitions}; set topics.partitions to match or recreate the topic")
        return [s.name for s in missing]
    except KafkaError as exc:
        raise CallsloError(f"cannot create topics on {settings.kafka.bootstrap}: {exc}") from exc
    finally:
        await admin.close()
