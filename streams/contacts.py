"""Contacts: what the engine tells the first-contact-resolution stage (streams.slo.fcr).

Each engine step sends, to the contacts partition of each tenant it saw (``murmur2(tenant)``),
one message: the step's applied ``call.queued`` rows that name a caller, and the partition's
new *mark* when it moved (to every contacts partition). A mark ``M`` from source partition
``p`` promises that every later contact from ``p`` has ``ts_ms >= M``. Wire format:
``b"CSC1"`` + JSON ``{"source_partition", "mark_ms", "contacts": [[tenant, caller, call_id,
queue, ts_ms], ...]}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from streams.errors import BatchFormatError
from streams.topics import key_partition

__all__ = ["CONTACTS_MAGIC", "Contact", "ContactBatch", "encode_contacts", "decode_contacts",
           "contact_messages"]

CONTACTS_MAGIC = b"CSC1"


@dataclass(frozen=True, slots=True)
class Contact:
    tenant: str
    caller: str
    call_id: str
    queue: str
    ts_ms: int


@dataclass(frozen=True, slots=True)
class ContactBatch:
    """What one engine step of source partition ``source_partition`` tells the FCR stage: its
    contacts, then (optionally) its new mark."""

    source_partition: int
    contacts: tuple[Contact, ...]
    mark_ms: int | None


def encode_contacts(batch: ContactBatch) -> bytes:
    return CONTACTS_MAGIC + orjson.dumps({
        "source_partition": batch.source_partition, "mark_ms": batch.mark_ms,
        "contacts": [[c.tenant, c.caller, c.call_id, c.queue, c.ts_ms] for c in batch.contacts]})


def decode_contacts(value: bytes) -> ContactBatch:
    if value[:4] != CONTACTS_MAGIC:
        raise BatchFormatError("not a callslo contacts message (bad magic)")
    try:
        body = orjson.loads(value[4:])
        contacts = tuple(Contact(str(t), str(c), str(i), str(q), int(ts))
                         for t, c, i, q, ts in body["contacts"])
        mark = body["mark_ms"]
        return ContactBatch(int(body["source_partition"]), contacts,
                            None if mark is None else int(mark))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BatchFormatError(f"damaged contacts message: {exc}") from exc


def contact_messages(source_partition: int, contacts: list[Contact], mark_ms: int | None,
                     partitions: int) -> dict[int, bytes]:
    """The messages of one engine step, by contacts partition: each tenant's contacts to
    ``murmur2(tenant) % partitions``, the mark (when there is one) to every partition."""
    by_partition: dict[int, list[Contact]] = {}
    for contact in contacts:
        by_partition.setdefault(key_partition(contact.tenant.encode(), partitions),
                                []).append(contact)
    targets = range(partitions) if mark_ms is not None else sorted(by_partition)
    return {p: encode_contacts(ContactBatch(source_partition, tuple(by_partition.get(p, ())),
                                            mark_ms))
            for p in targets}
