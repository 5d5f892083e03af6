"""The hostile corpus: named messages for the events topic and lines for the queue_log adapter,
each with the outcome callslo must give it.

Built in code rather than stored as files: several cases are megabytes long, and every case
is timed against the clock it is decoded with (``now_ms``). The unit tests decode each case;
the integration test produces the same messages to the real broker and reads them back from
the dead-letter topic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from streams.contract import EVENT_TYPES, MAX_DURATION_MS, MAX_QUEUES, event_key
from tests.unit.test_contract_schema import doc_example

MIB = 1024 * 1024
TEN_MB = 10 * 1000 * 1000
#: ``datetime(9999, 12, 31, tzinfo=UTC).timestamp() * 1000``
YEAR_9999_MS = 253_402_214_400_000


@dataclass(frozen=True)
class HostileMessage:
    """One message for the events topic and what stage 1 must do with it: ``reason`` and
    ``field`` of the dead letter, or ``reason=None`` when it is a valid event (hostile in form
    only, e.g. nested a thousand deep in an extra field)."""

    name: str
    key: bytes | None
    value: bytes | None
    reason: str | None
    field: str | None = None


def _event(event_type: str, now_ms: int, **changes: Any) -> dict[str, Any]:
    event = doc_example(event_type)
    event["ts_ms"] = now_ms - 60_000
    event["event_id"] = f"hostile-{event_type}"
    event.update(changes)
    return event


def _key(event: dict[str, Any]) -> bytes:
    return event_key({**event, "tenant": event.get("tenant") or "default"}).encode()


def _msg(name: str, event: dict[str, Any], reason: str | None, field: str | None = None,
         ) -> HostileMessage:
    return HostileMessage(name, _key(event), json.dumps(event, allow_nan=True).encode(),
                          reason, field)


def _raw(name: str, value: bytes | None, reason: str | None, field: str | None = None,
         key: bytes | None = b"acme/support") -> HostileMessage:
    return HostileMessage(name, key, value, reason, field)


def _nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def _with_raw_field(event: dict[str, Any], name: str, raw_json: str) -> bytes:
    """``event`` as JSON with field ``name`` spelled exactly as ``raw_json``."""
    body = json.dumps({k: v for k, v in event.items() if k != name})
    return (body[:-1] + f', "{name}": {raw_json}}}').encode()


# --- every field of every type with every wrong JSON type -------------------------------------

_WRONG = {"null": None, "boolean": True, "integer": 7, "float": 1.5, "string": "7",
          "array": [], "object": {}}
_STRING_FIELDS = {"event_id", "tenant", "source", "call_id", "queue", "caller", "agent_id",
                  "disposition", "target", "kind", "reason", "state"}
_INT_FIELDS = {"ts_ms", "priority", "position", "wait_ms", "talk_ms", "hold_ms", "acw_ms"}
_REQUIRED_BY_TYPE = {"call.answered": {"agent_id"}, "call.ended": {"agent_id", "talk_ms"},
                     "call.wrapup_ended": {"agent_id", "acw_ms"}, "call.dequeued": {"reason"},
                     "agent.state": {"agent_id", "state"}}
_REQUIRED_OF_CALLS = {"call_id", "queue"}


def _expected(event_type: str, name: str, wrong: str) -> tuple[str | None, str | None]:
    """What the contract says of field ``name`` of ``event_type`` set to a value of JSON type
    ``wrong`` (written independently of the decoder, from docs/contract.md)."""
    if name == "type":
        return "unknown_type", "type"
    if name == "v":
        return (None, None) if wrong == "null" else ("unsupported_version", "v")
    if wrong == "null":
        required = (name in ("event_id", "ts_ms") or name in _REQUIRED_BY_TYPE.get(event_type, ())
                    or (event_type != "agent.state" and name in _REQUIRED_OF_CALLS))
        return ("missing_field", name) if required else (None, None)
    return "wrong_type", name


def wrong_type_messages(now_ms: int) -> list[HostileMessage]:
    """Each field of each event type's doc example, set in turn to a value of each JSON type
    the field does not take."""
    cases = []
    for event_type in EVENT_TYPES:
        base = _event(event_type, now_ms)
        for name in list(base):
            right = ("string" if name in _STRING_FIELDS else "integer" if name in _INT_FIELDS
                     else "array" if name == "queues" else None)
            for wrong, value in _WRONG.items():
                if wrong == right or (name == "v" and wrong == "integer"):
                    continue
                reason, field = _expected(event_type, name, wrong)
                event = {**base, name: value, "event_id": f"wrong-{event_type}-{name}-{wrong}"}
                if name == "event_id":
                    event[name] = value
                # the key of a correct producer for the fields that stayed right
                key = _key({**base, **({"tenant": None} if name == "tenant" else {})})
                cases.append(HostileMessage(f"{event_type}.{name}={wrong}", key,
                                            json.dumps(event).encode(), reason, field))
    return cases


# --- the named corpus -------------------------------------------------------------------------

def hostile_messages(now_ms: int) -> list[HostileMessage]:
    """The corpus of docs/contract.md's "Hostile input" section, timed for ``now_ms``."""
    queued = _event("call.queued", now_ms)
    answered = _event("call.answered", now_ms)
    agent = _event("agent.state", now_ms)
    body = json.dumps(queued).encode()
    cases = [
        # encodings
        _raw("invalid-utf8", body.replace(b'"support"', b'"supp\xffort"'), "not_json"),
        _raw("overlong-utf8", body.replace(b'"support"', b'"\xc0\xafsupport"'), "not_json"),
        _raw("utf8-encoded-surrogate", body.replace(b'"support"', b'"\xed\xa0\x80"'), "not_json"),
        _raw("lone-surrogate-escape", body.replace(b'"support"', b'"\\ud800"'), "not_json"),
        _raw("utf8-bom", b"\xef\xbb\xbf" + body, "not_json"),
        _raw("utf16-le-bom", json.dumps(queued).encode("utf-16"), "not_json"),
        _raw("utf16-be-bom", b"\xfe\xff" + json.dumps(queued).encode("utf-16-be"), "not_json"),
        # shape
        _raw("empty", b"", "not_json"),
        _raw("tombstone", None, "not_json"),
        _raw("whitespace-only", b" \n\t ", "not_json"),
        _raw("json-null", b"null", "not_object"),
        _raw("json-array-of-events", b"[" + body + b"]", "not_object"),
        _raw("json-string", b'"call.queued"', "not_object"),
        _raw("trailing-garbage", body + b"garbage", "not_json"),
        _raw("two-documents", body + body, "not_json"),
        _raw("truncated", body[:-1], "not_json"),
        _raw("nan-literal", _with_raw_field(answered, "wait_ms", "NaN"), "not_json", None, _key(answered)),
        _raw("infinity-literal", _with_raw_field(answered, "wait_ms", "Infinity"), "not_json",
             None, _key(answered)),
        _raw("minus-infinity-literal", _with_raw_field(answered, "wait_ms", "-Infinity"),
             "not_json", None, _key(answered)),
        _raw("number-overflows-double", _with_raw_field(answered, "wait_ms", "1e400"), "not_json",
             None, _key(answered)),
        # nesting
        _raw("nested-10000-deep", _nested(10_000).encode(), "not_json"),
        _raw("nested-10000-deep-in-field", _with_raw_field(queued, "x_blob", _nested(10_000)),
             "not_json", None, _key(queued)),
        _raw("nested-1000-deep-type", _with_raw_field(queued, "type", _nested(1000)),
             "unknown_type", "type", _key(queued)),
        _raw("nested-1000-deep-v", _with_raw_field(queued, "v", _nested(1000)),
             "unsupported_version", "v", _key(queued)),
        _raw("nested-1000-deep-objects-in-queues",
             _with_raw_field(agent, "queues", '{"q":' * 1000 + "1" + "}" * 1000),
             "wrong_type", "queues", _key(agent)),
        HostileMessage("nested-1000-deep-extra-field-is-kept", _key(queued),
                       _with_raw_field({**queued, "event_id": "deep-extra"}, "x_blob",
                                       _nested(1000)), None),
        # size
        _msg("10mb-string-value", {**queued, "x_dump": "x" * TEN_MB}, "too_large"),
        _raw("10mb-message-of-padding", body + b" " * TEN_MB, "too_large", None, _key(queued)),
        _msg("900kb-string-type", {**queued, "type": "call." + "x" * 900_000}, "unknown_type", "type"),
        _msg("900kb-string-v", {**queued, "v": "x" * 900_000}, "unsupported_version", "v"),
        _msg("900kb-call-id", {**queued, "call_id": "c" * 900_000}, "bad_value", "call_id"),
        _msg("900kb-disposition", _event("call.wrapup_ended", now_ms, disposition="d" * 900_000),
             "bad_value", "disposition"),
        _msg("queues-over-limit", {**agent, "queues": [f"q{i}" for i in range(MAX_QUEUES + 1)]},
             "out_of_range", "queues"),
        _msg("900kb-extra-field-is-kept", {**queued, "event_id": "big-extra",
                                          "x_note": "n" * 900_000}, None),
        # numbers
        _msg("ts-above-2**64", {**queued, "ts_ms": 2**64 + 1}, "wrong_type", "ts_ms"),
        _msg("ts-2**64-1", {**queued, "ts_ms": 2**64 - 1}, "ts_in_future", "ts_ms"),
        _msg("ts-minus-2**63", {**queued, "ts_ms": -2**63}, "ts_too_old", "ts_ms"),
        _msg("ts-1970", {**queued, "ts_ms": 0}, "ts_too_old", "ts_ms"),
        _msg("ts-year-9999", {**queued, "ts_ms": YEAR_9999_MS}, "ts_in_future", "ts_ms"),
        _msg("ts-in-seconds", {**queued, "ts_ms": now_ms // 1000}, "ts_too_old", "ts_ms"),
        _msg("ts-as-float", {**queued, "ts_ms": float(now_ms)}, "wrong_type", "ts_ms"),
        _msg("wait-above-2**64", {**answered, "wait_ms": 10**30}, "wrong_type", "wait_ms"),
        _msg("wait-2**63", {**answered, "wait_ms": 2**63}, "out_of_range", "wait_ms"),
        _msg("wait-negative", {**answered, "wait_ms": -31_500}, "negative_duration", "wait_ms"),
        _msg("wait-minus-2**63", {**answered, "wait_ms": -2**63}, "negative_duration", "wait_ms"),
        _msg("wait-7-days-and-1-ms", {**answered, "wait_ms": MAX_DURATION_MS + 1},
             "out_of_range", "wait_ms"),
        _msg("talk-8-days", _event("call.ended", now_ms, talk_ms=8 * 86_400_000),
             "out_of_range", "talk_ms"),
        _msg("acw-negative", _event("call.wrapup_ended", now_ms, acw_ms=-1),
             "negative_duration", "acw_ms"),
        _msg("hold-as-exponent", _event("call.ended", now_ms, hold_ms=1e3), "wrong_type", "hold_ms"),
        _msg("priority-negative", {**queued, "priority": -1}, "out_of_range", "priority"),
        HostileMessage("wait-exactly-7-days-is-valid", _key(answered), json.dumps(
            {**answered, "event_id": "seven-days", "wait_ms": MAX_DURATION_MS}).encode(), None),
        HostileMessage("minus-zero-is-zero", _key(answered), _with_raw_field(
            {**answered, "event_id": "minus-zero"}, "wait_ms", "-0"), None),
        # fields of another type are unchecked extras: kept, never condensed
        _msg("foreign-fields-are-kept", {**_event("call.ended", now_ms), "event_id": "foreign",
                                         "wait_ms": "x", "acw_ms": 1e300, "caller": [1]}, None),
        # identifiers and keys
        _msg("nul-in-queue", {**queued, "queue": "sup\u0000port"}, "bad_value", "queue"),
        _msg("zero-width-in-agent", {**answered, "agent_id": "a\u200b1"}, "bad_value", "agent_id"),
        _msg("slash-in-tenant", {**queued, "tenant": "ac/me"}, "bad_value", "tenant"),
        _msg("empty-event-id", {**queued, "event_id": ""}, "bad_value", "event_id"),
        _msg("phone-number-caller", {**queued, "caller": "+1 (555) 010-9999"}, "bad_value", "caller"),
        _raw("no-key", body, "key_mismatch", None, None),
        _raw("key-not-utf8", body, "key_mismatch", None, b"acme/\xffsupport"),
        _raw("key-of-other-queue", body, "key_mismatch", None, b"acme/billing"),
        # duplicate keys: the last one counts, as in every mainstream JSON parser
        _raw("duplicate-key-last-bad", body[:-1] + b', "ts_ms": -1}', "ts_too_old", "ts_ms",
             _key(queued)),
        HostileMessage("duplicate-key-last-good", _key(queued), b'{"queue": "bad/queue", ' +
                       json.dumps({**queued, "event_id": "dup-keys"})[1:].encode(), None),
        # versions and types
        _msg("v-2", {**queued, "v": 2}, "unsupported_version", "v"),
        _msg("v-true", {**queued, "v": True}, "unsupported_version", "v"),
        _msg("type-with-case", {**queued, "type": "Call.Queued"}, "unknown_type", "type"),
    ]
    return cases + wrong_type_messages(now_ms)


# --- queue_log lines --------------------------------------------------------------------------

@dataclass(frozen=True)
class HostileLine:
    """One queue_log line and its outcome: ``reason`` of the dead letter, or ``None`` for an
    event (``event_type``) or a skipped line (``event_type=None`` too)."""

    name: str
    line: bytes
    reason: str | None
    event_type: str | None = None


def hostile_queue_log_lines(now_ms: int) -> list[HostileLine]:
    """queue_log lines an Asterisk server (or a damaged file) may hold."""
    epoch = str(now_ms // 1000 - 60)

    def line(*fields: str) -> bytes:
        return "|".join(fields).encode()

    return [
        HostileLine("connect", line(epoch, "1741.1", "support", "PJSIP/2001", "CONNECT", "12",
                                    "1741.2", "3"), None, "call.answered"),
        HostileLine("invalid-utf8", line(epoch, "1741.1", "support", "a", "CONNECT").replace(
            b"support", b"sup\xffport"), "not_queue_log"),
        HostileLine("four-fields", line(epoch, "1741.1", "support", "a"), "not_queue_log"),
        HostileLine("garbage", b"\x00\x01\x02 hello", "not_queue_log"),
        HostileLine("epoch-not-number", line("yesterday", "1741.1", "support", "a", "CONNECT", "1"),
                    "bad_field"),
        HostileLine("epoch-negative", line("-5", "1741.1", "support", "a", "CONNECT", "1"),
                    "bad_field"),
        HostileLine("epoch-13-digits", line("1" * 13, "1741.1", "support", "a", "CONNECT", "1"),
                    "bad_field"),
        HostileLine("epoch-1970", line("0", "1741.1", "support", "a", "CONNECT", "1"), "ts_too_old"),
        HostileLine("epoch-year-9999", line(str(YEAR_9999_MS // 1000), "1741.1", "support", "a",
                                            "CONNECT", "1"), "ts_in_future"),
        HostileLine("event-lower-case", line(epoch, "1741.1", "support", "a", "connect", "1"),
                    "bad_field"),
        HostileLine("holdtime-negative", line(epoch, "1741.1", "support", "a", "CONNECT", "-5"),
                    "negative_duration"),
        HostileLine("holdtime-8-days", line(epoch, "1741.1", "support", "a", "CONNECT",
                                            str(8 * 86_400)), "out_of_range"),
        HostileLine("holdtime-12-digits", line(epoch, "1741.1", "support", "a", "CONNECT",
                                               "9" * 12), "out_of_range"),
        HostileLine("holdtime-exponent", line(epoch, "1741.1", "support", "a", "CONNECT", "1e3"),
                    "bad_field"),
        HostileLine("holdtime-missing", line(epoch, "1741.1", "support", "a", "CONNECT"),
                    "missing_field"),
        HostileLine("uniqueid-none", line(epoch, "NONE", "support", "a", "CONNECT", "1"),
                    "bad_field"),
        HostileLine("nul-in-queue", line(epoch, "1741.1", "sup\x00port", "a", "ABANDON", "1", "1",
                                         "5"), "bad_value"),
        HostileLine("slash-in-queue", line(epoch, "1741.1", "sup/port", "a", "ABANDON", "1", "1",
                                           "5"), "bad_value"),
        HostileLine("uniqueid-300-chars", line(epoch, "u" * 300, "support", "a", "ABANDON", "1",
                                               "1", "5"), "bad_value"),
        HostileLine("10mb-pause-reason", line(epoch, "NONE", "support", "PJSIP/2001", "PAUSE",
                                              "r" * TEN_MB), "too_large"),
        HostileLine("unmapped-event", line(epoch, "1741.1", "support", "a", "RINGNOANSWER", "1000"),
                    None),
        HostileLine("crlf-ending", line(epoch, "1741.1", "support", "a", "ABANDON", "1", "1",
                                        "5") + b"\r", None, "call.abandoned"),
    ]
