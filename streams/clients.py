"""Kafka clients built from the settings: the one place that knows how callslo connects.

Every producer, consumer and admin client of the package comes from here, so the address,
the client id and (with the security settings) credentials and TLS are set once.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from streams.settings import KafkaSettings

__all__ = ["MAX_REQUEST_BYTES", "producer", "consumer", "admin"]

#: Largest produce request and fetch per partition: above the broker's message.max.bytes that
#: the local broker sets (16 MiB), so an oversized event still reaches the validator and
#: its DLQ record can carry the original bytes.
MAX_REQUEST_BYTES = 20 * 1024 * 1024


def _common(kafka: KafkaSettings, role: str) -> dict[str, Any]:
    return {"bootstrap_servers": kafka.bootstrap, "client_id": f"{kafka.client_id}-{role}"}


def producer(kafka: KafkaSettings, role: str, **options: Any) -> AIOKafkaProducer:
    """An idempotent producer with ``acks=all`` (a retried batch is neither lost nor doubled,
    and one key's messages keep their order); ``options`` override the defaults."""
    settings = {"acks": "all", "enable_idempotence": True, "linger_ms": 5,
                "max_request_size": MAX_REQUEST_BYTES, **options}
    return AIOKafkaProducer(**_common(kafka, role), **settings)


def consumer(kafka: KafkaSettings, role: str, *topics: str, **options: Any) -> AIOKafkaConsumer:
    """A consumer that commits only when told to (``enable_auto_commit=False``)."""
    settings = {"enable_auto_commit": False, "auto_offset_reset": "earliest",
                "max_partition_fetch_bytes": MAX_REQUEST_BYTES, **options}
    return AIOKafkaConsumer(*topics, **_common(kafka, role), **settings)


def admin(kafka: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**_common(kafka, "admin"))
