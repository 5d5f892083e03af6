"""Kafka clients built from the settings: the one place that knows how callslo connects.

Every producer, consumer and admin client of the package comes from here, so the address,
the client id and (with the security settings) credentials and TLS are set once.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from streams.errors import ConfigError
from streams.fetch import bare_records
from streams.settings import KafkaSettings, WorkerSettings

__all__ = ["MAX_REQUEST_BYTES", "producer", "consumer", "group_consumer", "admin",
           "start_stage_clients", "stop_stage_clients", "security_options", "ssl_context",
           "faust_credentials"]

#: Largest produce request and fetch per partition: above the broker's message.max.bytes that
#: the local broker sets (16 MiB), so an oversized event still reaches the validator and
#: its DLQ record can carry the original bytes.
MAX_REQUEST_BYTES = 20 * 1024 * 1024


def _common(kafka: KafkaSettings, role: str) -> dict[str, Any]:
    return {"bootstrap_servers": kafka.bootstrap, "client_id": f"{kafka.client_id}-{role}",
            **security_options(kafka)}


def security_options(kafka: KafkaSettings) -> dict[str, Any]:
    """The aiokafka keyword arguments for the security settings (protocol, SASL, TLS)."""
    options: dict[str, Any] = {"security_protocol": kafka.security_protocol}
    if kafka.uses_tls:
        options["ssl_context"] = ssl_context(kafka)
    if kafka.uses_sasl:
        options.update(sasl_mechanism=kafka.sasl_mechanism,
                       sasl_plain_username=kafka.sasl_username,
                       sasl_plain_password=kafka.sasl_password.reveal())
    return options


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """A client TLS context: the broker's certificate is always verified (against
    ``ssl_cafile``, or the system's CAs), its host name unless ``ssl_check_hostname`` is off."""
    key = "kafka.ssl_cafile"
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                             cafile=kafka.ssl_cafile or None)
        if kafka.ssl_certfile:
            key = "kafka.ssl_certfile"
            context.load_cert_chain(kafka.ssl_certfile, kafka.ssl_keyfile or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{key}: cannot load the TLS files ({exc}); they must be PEM, "
                          "and a private key unencrypted") from exc
    context.check_hostname = kafka.ssl_check_hostname
    return context


def faust_credentials(kafka: KafkaSettings) -> Any:
    """What Faust's ``broker_credentials`` takes for the same settings (``None`` for PLAINTEXT),
    so the worker's own consumers and producers connect exactly as the clients above."""
    import faust  # here, not at the top: the CLI's Kafka commands need no Faust

    context = ssl_context(kafka) if kafka.uses_tls else None
    if kafka.uses_sasl:
        return faust.SASLCredentials(username=kafka.sasl_username,
                                     password=kafka.sasl_password.reveal(),
                                     mechanism=kafka.sasl_mechanism, ssl_context=context)
    return faust.SSLCredentials(context) if context is not None else None


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


def group_consumer(kafka: KafkaSettings, worker: WorkerSettings, role: str, group_id: str,
                   *topics: str, **options: Any) -> AIOKafkaConsumer:
    """A :func:`consumer` in group ``group_id`` with the worker's session and heartbeat times
    (those of the Faust app's own consumer)."""
    return consumer(kafka, role, *topics, group_id=group_id,
                    session_timeout_ms=worker.broker_session_timeout_s * 1000,
                    heartbeat_interval_ms=worker.broker_heartbeat_interval_s * 1000, **options)


async def start_stage_clients(producer: AIOKafkaProducer, consumer: AIOKafkaConsumer) -> None:
    """Start a worker stage's producer, then its consumer (the producer is stopped again if the
    consumer cannot start); the consumer then yields bare records (:mod:`streams.fetch`)."""
    await producer.start()
    try:
        await consumer.start()
    except BaseException:
        await producer.stop()
        raise
    bare_records(consumer)


async def stop_stage_clients(producer: AIOKafkaProducer | None,
                             consumer: AIOKafkaConsumer | None) -> None:
    """Stop what :func:`start_stage_clients` started: the consumer first, then the producer."""
    if consumer is not None:
        await consumer.stop()
    if producer is not None:
        await producer.stop()


def admin(kafka: KafkaSettings) -> AIOKafkaAdminClient:
    """An admin client (topic creation and description)."""
    return AIOKafkaAdminClient(**_common(kafka, "admin"))
