"""Call-event contract v1: the event types, and the decoder that accepts or rejects raw messages.

The contract is documented in ``docs/contract.md`` and as a JSON Schema in
``streams/schemas/callcenter-event-v1.schema.json``; this module is the executable version that
sits on the hot path. It validates with plain code on the dict orjson returns (no schema
library per event): each event type has a short tuple of field rules, checked in order.

A message either decodes into an event (the JSON object itself, with ``tenant`` and ``v``
filled in when absent; unknown extra fields are kept) or into a :class:`Rejection` whose
``reason`` is one of :data:`REASONS`. Rejections go to the dead-letter topic with the original
bytes; nothing is dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import orjson

__all__ = [
    "CALL_EVENT_TYPES",
    "AGENT_EVENT_TYPES",
    "EVENT_TYPES",
    "AGENT_STATES",
    "DEQUEUE_REASONS",
    "TRANSFER_KINDS",
    "REASONS",
    "MAX_DURATION_MS",
    "MAX_IDENTIFIER_CHARS",
    "MAX_SMALL_INT",
    "MAX_TEXT_CHARS",
    "MAX_QUEUES",
    "TYPE_FIELDS",
    "FIELD_RULES",
    "CheckSpec",
    "Rejection",
    "Decoder",
    "event_key",
]

CALL_EVENT_TYPES = (
    "call.queued",
    "call.answered",
    "call.abandoned",
    "call.dequeued",
    "call.ended",
    "call.wrapup_ended",
    "call.transferred",
)
AGENT_EVENT_TYPES = ("agent.state",)
EVENT_TYPES = CALL_EVENT_TYPES + AGENT_EVENT_TYPES

AGENT_STATES = frozenset({"logged_out", "available", "on_call", "wrapup", "away"})
DEQUEUE_REASONS = frozenset({"timeout", "key", "empty", "overflow", "callback", "transfer", "other"})
TRANSFER_KINDS = frozenset({"blind", "attended", "queue"})

#: Every reason stage 1 rejects a message for, with what it means.
REASONS = {
    "too_large": "the message is larger than ingest.max_message_bytes",
    "not_json": "the bytes are not valid UTF-8 JSON (NaN and Infinity are not JSON), "
                "or the message has no value (a tombstone)",
    "not_object": "the JSON value is not an object",
    "unsupported_version": "field v is not a contract version this build reads (1)",
    "unknown_type": "field type is missing or not one of the v1 event types",
    "missing_field": "a field the event type requires is absent or null",
    "wrong_type": "a field has the wrong JSON type (integers must be integers, not floats or booleans)",
    "bad_value": "a field has a value outside its allowed set or form",
    "negative_duration": "a *_ms duration is below zero",
    "out_of_range": "a number is beyond its plausible range",
    "ts_in_future": "ts_ms is later than now + ingest.max_future_skew_s",
    "ts_too_old": "ts_ms is earlier than now - ingest.max_age_days",
    "key_mismatch": "the Kafka message key is not <tenant>/<queue> or <tenant>/agent/<agent_id> of the event",
}

#: Longest duration accepted in a *_ms field: a week. Longer values come from broken clocks.
MAX_DURATION_MS = 7 * 24 * 3600 * 1000
MAX_IDENTIFIER_CHARS = 256
MAX_SMALL_INT = 1_000_000
MAX_TEXT_CHARS = 4 * MAX_IDENTIFIER_CHARS
MAX_QUEUES = 1000
# A caller key that looks like a dialable number is a privacy leak: the contract asks for a
# pseudonymous key (for example a salted hash), never the raw number.
_PHONE_NUMBER = re.compile(r"(?:tel:|sip:)?\+?\(?[0-9][0-9 ().\-/]{5,}(?:@.*)?")


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was refused: a machine-readable ``reason``, the ``field`` concerned (or
    ``None``), and a sentence for the operator."""

    reason: str
    field: str | None
    detail: str


# A field check returns None when the value is fine, else a Rejection.
_Check = Callable[[str, Any], "Rejection | None"]


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """What a field check accepts, as data: stage 1's fast path (:mod:`streams.fastdecode`)
    builds its tables from these, so both paths apply the same rules. ``kind`` is one of
    ``identifier``, ``key_part``, ``duration``, ``small_int``, ``text``, ``one_of``
    (``allowed`` values) and ``key_part_list``; ``no_phone`` adds the refusal of values that
    look like a dialable number."""

    kind: str
    allowed: frozenset[str] | None = None
    no_phone: bool = False


def _spec(spec: CheckSpec) -> Callable[[_Check], _Check]:
    def attach(check: _Check) -> _Check:
        check.spec = spec  # type: ignore[attr-defined]
        return check

    return attach


@_spec(CheckSpec("identifier"))
def _identifier(name: str, value: Any) -> Rejection | None:
    if type(value) is not str:
        return Rejection("wrong_type", name, f"{name} must be a string, got {_json_type(value)}")
    if not value or len(value) > MAX_IDENTIFIER_CHARS or not value.isprintable():
        return Rejection("bad_value", name,
                         f"{name} must be 1-{MAX_IDENTIFIER_CHARS} printable characters")
    return None


@_spec(CheckSpec("key_part"))
def _key_part(name: str, value: Any) -> Rejection | None:
    """An identifier that is part of the message key, so it may not contain '/'."""
    bad = _identifier(name, value)
    if bad is None and "/" in value:
        return Rejection("bad_value", name, f"{name} must not contain '/' (it is part of the key)")
    return bad


@_spec(CheckSpec("duration"))
def _duration(name: str, value: Any) -> Rejection | None:
    if type(value) is not int:
        return Rejection("wrong_type", name, f"{name} must be an integer number of milliseconds, "
                                             f"got {_json_type(value)}")
    if value < 0:
        return Rejection("negative_duration", name, f"{name} is negative ({value})")
    if value > MAX_DURATION_MS:
        return Rejection("out_of_range", name, f"{name}={value} exceeds {MAX_DURATION_MS} (7 days)")
    return None


@_spec(CheckSpec("small_int"))
def _small_int(name: str, value: Any) -> Rejection | None:
    if type(value) is not int:
        return Rejection("wrong_type", name, f"{name} must be an integer, got {_json_type(value)}")
    if not 0 <= value <= MAX_SMALL_INT:
        return Rejection("out_of_range", name, f"{name}={value} is outside 0..{MAX_SMALL_INT}")
    return None


@_spec(CheckSpec("text"))
def _text(name: str, value: Any) -> Rejection | None:
    if type(value) is not str:
        return Rejection("wrong_type", name, f"{name} must be a string, got {_json_type(value)}")
    if len(value) > MAX_TEXT_CHARS:
        return Rejection("bad_value", name, f"{name} is longer than {MAX_TEXT_CHARS} characters")
    return None


def _no_phone_number(check: _Check) -> _Check:
    """``check``, plus a refusal of values that look like a dialable number."""

    def checked(name: str, value: Any) -> Rejection | None:
        bad = check(name, value)
        if bad is None and _PHONE_NUMBER.fullmatch(value):
            return Rejection("bad_value", name, f"{name} looks like a raw phone number; "
                                                "send a pseudonymous key instead")
        return bad

    checked.spec = CheckSpec(check.spec.kind, check.spec.allowed, no_phone=True)  # type: ignore[attr-defined]
    return checked


def _one_of(allowed: frozenset[str]) -> _Check:
    choices = ", ".join(sorted(allowed))

    def check(name: str, value: Any) -> Rejection | None:
        if type(value) is not str:
            return Rejection("wrong_type", name, f"{name} must be a string, got {_json_type(value)}")
        if value not in allowed:
            return Rejection("bad_value", name, f"{name}={value[:64]!r} is not one of: {choices}")
        return None

    check.spec = CheckSpec("one_of", allowed)  # type: ignore[attr-defined]
    return check


@_spec(CheckSpec("key_part_list"))
def _queue_list(name: str, value: Any) -> Rejection | None:
    if type(value) is not list:
        return Rejection("wrong_type", name, f"{name} must be a list of queue names, "
                                             f"got {_json_type(value)}")
    if len(value) > MAX_QUEUES:
        return Rejection("out_of_range", name, f"{name} lists {len(value)} queues (at most {MAX_QUEUES})")
    for item in value:
        bad = _key_part(name, item)
        if bad is not None:
            return bad
    return None


# (field, check, required) per event type, after the common fields.
_CALL = (("call_id", _identifier, True), ("queue", _key_part, True))
_RULES: dict[str, tuple[tuple[str, _Check, bool], ...]] = {
    "call.queued": _CALL + (
        ("caller", _no_phone_number(_identifier), False), ("priority", _small_int, False), ("position", _small_int, False)),
    "call.answered": _CALL + (("agent_id", _key_part, True), ("wait_ms", _duration, False)),
    "call.abandoned": _CALL + (("wait_ms", _duration, False),),
    "call.dequeued": _CALL + (
        ("reason", _one_of(DEQUEUE_REASONS), True), ("wait_ms", _duration, False)),
    "call.ended": _CALL + (
        ("agent_id", _key_part, True), ("talk_ms", _duration, True), ("hold_ms", _duration, False)),
    "call.wrapup_ended": _CALL + (
        ("agent_id", _key_part, True), ("acw_ms", _duration, True), ("disposition", _text, False)),
    "call.transferred": _CALL + (
        ("agent_id", _key_part, False), ("target", _no_phone_number(_text), False),
        ("kind", _one_of(TRANSFER_KINDS), False)),
    "agent.state": (
        ("agent_id", _key_part, True), ("state", _one_of(AGENT_STATES), True),
        ("reason", _text, False), ("queues", _queue_list, False)),
}
assert set(_RULES) == set(EVENT_TYPES)

#: Per event type, its fields after the common ones as ``(field, CheckSpec, required)``.
FIELD_RULES: dict[str, tuple[tuple[str, CheckSpec, bool], ...]] = {
    event_type: tuple((name, check.spec, required) for name, check, required in rules)  # type: ignore[attr-defined]
    for event_type, rules in _RULES.items()}

#: The fields of each event type beyond the common ones, as its table in the contract lists
#: them. Any other field is an unknown extra for that type: kept, but never validated, so
#: nothing downstream may read it (a ``wait_ms`` on ``call.ended`` can be any JSON value).
TYPE_FIELDS: dict[str, frozenset[str]] = {
    event_type: frozenset(name for name, _, _ in rules) for event_type, rules in _RULES.items()}


def event_key(event: dict[str, Any]) -> str:
    """The Kafka message key of a valid event: ``<tenant>/<queue>`` or ``<tenant>/agent/<agent_id>``."""
    if event["type"] == "agent.state":
        return f"{event['tenant']}/agent/{event['agent_id']}"
    return f"{event['tenant']}/{event['queue']}"


class Decoder:
    """Turns raw Kafka message bytes into a v1 event dict or a :class:`Rejection`.

    Parameters
    ----------
    max_message_bytes
        Larger messages are refused before they are parsed.
    max_future_skew_ms, max_age_ms
        ``ts_ms`` must lie within ``[now - max_age_ms, now + max_future_skew_ms]``.
    check_key
        Require the message key to match the event (the engine keeps a queue's state in the
        partition its key hashes to, so a wrong key would split a queue across partitions).
    """

    __slots__ = ("max_message_bytes", "max_future_skew_ms", "max_age_ms", "check_key")

    def __init__(self, *, max_message_bytes: int, max_future_skew_ms: int, max_age_ms: int,
                 check_key: bool = True) -> None:
        self.max_message_bytes = max_message_bytes
        self.max_future_skew_ms = max_future_skew_ms
        self.max_age_ms = max_age_ms
        self.check_key = check_key

    @classmethod
    def from_settings(cls, ingest: Any, *, check_key: bool = True) -> "Decoder":
        """Build from :class:`streams.settings.IngestSettings`."""
        return cls(max_message_bytes=ingest.max_message_bytes,
                   max_future_skew_ms=ingest.max_future_skew_s * 1000,
                   max_age_ms=ingest.max_age_days * 86_400_000,
                   check_key=check_key)

    def decode(self, raw: bytes | None, key: bytes | None, now_ms: int) -> dict[str, Any] | Rejection:
        """Decode and validate one message; ``now_ms`` is the wall clock for the time bounds.
        ``raw`` is ``None`` for a Kafka tombstone (a message without value)."""
        if raw is None:
            return Rejection("not_json", None, "the message has no value (a tombstone)")
        if len(raw) > self.max_message_bytes:
            return Rejection("too_large", None,
                             f"message is {len(raw)} bytes, limit is {self.max_message_bytes}")
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return Rejection("not_json", None, str(exc)[:200])
        if type(event) is not dict:
            return Rejection("not_object", None, f"the message is a JSON {_json_type(event)}")
        bad = self.validate(event, now_ms)
        if bad is not None:
            return bad
        if self.check_key:
            expected = event_key(event)
            if key is None or key != expected.encode():
                got = "no key" if key is None else f"key {key[:80]!r}"
                return Rejection("key_mismatch", None, f"message has {got}; expected {expected!r}")
        return event

    def validate(self, event: dict[str, Any], now_ms: int) -> Rejection | None:
        """Check a decoded object in place; fills ``tenant`` and ``v`` defaults when absent."""
        version = event.get("v")
        if version is None:
            event["v"] = 1
        elif type(version) is not int or version != 1:
            return Rejection("unsupported_version", "v", f"v={_shown(version)}; this build reads v=1")
        event_type = event.get("type")
        rules = _RULES.get(event_type) if type(event_type) is str else None
        if rules is None:
            shown = "missing" if event_type is None else _shown(event_type)
            return Rejection("unknown_type", "type",
                             f"type {shown} is not one of: {', '.join(EVENT_TYPES)}")
        event_id = event.get("event_id")
        if event_id is None:
            return Rejection("missing_field", "event_id", "event_id is required")
        bad = _identifier("event_id", event_id)
        if bad is not None:
            return bad
        bad = self._check_ts(event.get("ts_ms"), now_ms)
        if bad is not None:
            return bad
        tenant = event.get("tenant")
        if tenant is None:
            event["tenant"] = "default"
        else:
            bad = _key_part("tenant", tenant)
            if bad is not None:
                return bad
        source = event.get("source")
        if source is not None:
            bad = _text("source", source)
            if bad is not None:
                return bad
        for name, check, required in rules:
            value = event.get(name)
            if value is None:
                if required:
                    return Rejection("missing_field", name, f"{name} is required for {event_type}")
                continue
            # Fast path for the common valid identifier (most fields of every event): the
            # full check below gives the same verdict, with the reason when it fails.
            if type(value) is str:
                if ((check is _identifier or (check is _key_part and "/" not in value))
                        and 0 < len(value) <= MAX_IDENTIFIER_CHARS and value.isprintable()):
                    continue
            elif check is _duration and type(value) is int and 0 <= value <= MAX_DURATION_MS:
                continue
            bad = check(name, value)
            if bad is not None:
                return bad
        return None

    def _check_ts(self, ts_ms: Any, now_ms: int) -> Rejection | None:
        if ts_ms is None:
            return Rejection("missing_field", "ts_ms", "ts_ms is required")
        if type(ts_ms) is not int:
            return Rejection("wrong_type", "ts_ms",
                             f"ts_ms must be integer epoch milliseconds, got {_json_type(ts_ms)}")
        if ts_ms > now_ms + self.max_future_skew_ms:
            return Rejection("ts_in_future", "ts_ms",
                             f"ts_ms={ts_ms} is {(ts_ms - now_ms) // 1000} s ahead of this host's clock")
        if ts_ms < now_ms - self.max_age_ms:
            return Rejection("ts_too_old", "ts_ms",
                             f"ts_ms={ts_ms} is more than {self.max_age_ms // 86_400_000} days old")
        return None


def _shown(value: Any) -> str:
    """A refused value as the detail header shows it: at most 64 characters of a string, and
    only the type of an array or object. The repr of a whole value could be as large as the
    message (a header that size can exceed the DLQ topic's limit) or, for an array nested a
    thousand deep, raise RecursionError and stop stage 1 on that message for good."""
    if type(value) is str:
        return repr(value[:64]) + ("..." if len(value) > 64 else "")
    if type(value) is list or type(value) is dict:
        return f"(a JSON {_json_type(value)})"
    return repr(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "boolean"
    if type(value) is int:
        return "integer"
    if type(value) is float:
        return "number (float)"
    if type(value) is str:
        return "string"
    if type(value) is list:
        return "array"
    if type(value) is dict:
        return "object"
    return type(value).__name__
