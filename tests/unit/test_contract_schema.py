"""Contract v1 is written three times: the JSON Schema, docs/contract.md and the decoder.

These tests hold the three together. The examples are read from the doc itself (the ```json
block of each event-type section), so the doc cannot show an event callslo would refuse, and
every invalid variant must be refused by the schema and by the decoder, with the decoder's
reason asserted.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from streams.contract import (
    AGENT_STATES,
    DEQUEUE_REASONS,
    EVENT_TYPES,
    MAX_DURATION_MS,
    MAX_IDENTIFIER_CHARS,
    REASONS,
    TRANSFER_KINDS,
    Decoder,
    Rejection,
    event_key,
)
from streams.settings import IngestSettings

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
SCHEMA_FILE = "callcenter-event-v1.schema.json"
COMMON_FIELDS = ("event_id", "type", "ts_ms", "tenant", "source", "v")
DROP = object()  # in a change set: remove the field


# --- reading the three texts ---------------------------------------------------------------

@dataclass
class DocSection:
    """One heading of the doc: its table rows (cells, backticks kept) and fenced blocks."""

    rows: list[list[str]] = field(default_factory=list)
    blocks: list[tuple[str, str]] = field(default_factory=list)  # (language, text)


@functools.cache
def doc_sections() -> dict[str, DocSection]:
    """The doc's sections by heading text (``### `call.queued``` -> "`call.queued`")."""
    sections: dict[str, DocSection] = {}
    current = sections.setdefault("", DocSection())
    fence: str | None = None
    lines: list[str] = []
    for line in DOC_PATH.read_text(encoding="utf-8").splitlines():
        if fence is not None:
            if line.startswith("```"):
                current.blocks.append((fence, "\n".join(lines)))
                fence = None
            else:
                lines.append(line)
        elif line.startswith("```"):
            fence, lines = line[3:].strip(), []
        elif line.startswith("#"):
            current = sections.setdefault(line.lstrip("#").strip(), DocSection())
        elif line.startswith("|") and not set(line) <= set("|-: "):
            current.rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    assert fence is None, f"{DOC_PATH} ends inside a ``` block"
    return sections


def doc_section(heading: str) -> DocSection:
    sections = doc_sections()
    assert heading in sections, f"{DOC_PATH.name} has no section {heading!r}"
    return sections[heading]


def doc_example(event_type: str) -> dict[str, Any]:
    """The one example event of ``event_type``'s section, as a fresh dict."""
    blocks = [text for lang, text in doc_section(f"`{event_type}`").blocks if lang == "json"]
    assert len(blocks) == 1, f"section `{event_type}` must have exactly one ```json example"
    return json.loads(blocks[0])


def doc_field_table(event_type: str) -> list[tuple[str, bool]]:
    """(field, required) per row of the type's field table, in the doc's order."""
    rows = doc_section(f"`{event_type}`").rows
    assert rows[0][:3] == ["Field", "Type", "Required"], f"`{event_type}`: unexpected table header"
    return [(cells[0].strip("`"), cells[2] == "yes") for cells in rows[1:]]


@functools.cache
def schema() -> dict[str, Any]:
    text = (resources.files("streams") / "schemas" / SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


@functools.cache
def validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def schema_rules(event_type: str) -> dict[str, Any]:
    """The ``then`` part of the schema's if/then block for ``event_type``."""
    found = [rule["then"] for rule in schema()["allOf"]
             if rule["if"]["properties"]["type"] == {"const": event_type}]
    assert len(found) == 1, f"schema has {len(found)} if/then blocks for {event_type}"
    return found[0]


def now_ms() -> int:
    """A clock just after the doc's examples, so their ts_ms are neither future nor too old."""
    return max(doc_example(t)["ts_ms"] for t in EVENT_TYPES) + 60_000


def decoder() -> Decoder:
    return Decoder.from_settings(IngestSettings(), check_key=False)


def decode(event: Any) -> dict[str, Any] | Rejection:
    # json.dumps keeps 1.0 a float; the decoder sees exactly the JSON a producer would send.
    return decoder().decode(json.dumps(event).encode(), None, now_ms())


def variant(event_type: str, changes: dict[str, Any]) -> dict[str, Any]:
    event = doc_example(event_type)
    for name, value in changes.items():
        if value is DROP:
            event.pop(name, None)
        else:
            event[name] = copy.deepcopy(value)
    return event


def schema_errors(event: Any) -> list[str]:
    return [error.message for error in validator().iter_errors(event)]


def assert_both_accept(event: dict[str, Any]) -> dict[str, Any]:
    errors = schema_errors(event)
    assert not errors, f"schema rejects {event}: {errors}"
    outcome = decode(event)
    assert isinstance(outcome, dict), f"decoder rejects {event}: {outcome}"
    return outcome


def assert_both_reject(event: Any, reason: str, field_name: str | None) -> None:
    assert schema_errors(event), f"schema accepts {event!r}, the decoder expects {reason}"
    outcome = decode(event)
    assert isinstance(outcome, Rejection), f"decoder accepts {event!r}"
    assert (outcome.reason, outcome.field) == (reason, field_name), outcome.detail


# --- (a) the schema itself -----------------------------------------------------------------

def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema()["additionalProperties"] is True


def test_schema_constants_are_the_decoders() -> None:
    defs = schema()["$defs"]
    assert schema()["properties"]["type"]["enum"] == list(EVENT_TYPES)
    assert set(schema_rules("agent.state")["properties"]["state"]["enum"]) == AGENT_STATES
    assert set(schema_rules("call.dequeued")["properties"]["reason"]["enum"]) == DEQUEUE_REASONS
    kind = schema_rules("call.transferred")["properties"]["kind"]["anyOf"][0]
    assert set(kind["enum"]) == TRANSFER_KINDS
    assert defs["duration_ms"]["maximum"] == MAX_DURATION_MS
    assert defs["identifier"]["maxLength"] == MAX_IDENTIFIER_CHARS
    assert defs["text"]["maxLength"] == 4 * MAX_IDENTIFIER_CHARS


# --- the doc against the schema ------------------------------------------------------------

@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_doc_field_table_lists_the_schema_fields(event_type: str) -> None:
    rules = schema_rules(event_type)
    table = doc_field_table(event_type)
    assert [name for name, _ in table] == list(rules["properties"])
    assert [name for name, required in table if required] == rules["required"]


def test_doc_common_fields_are_the_schema_common_fields() -> None:
    table = doc_section("Common fields").rows
    assert [cells[0].strip("`") for cells in table[1:]] == list(COMMON_FIELDS)
    assert list(schema()["properties"]) == list(COMMON_FIELDS)
    required = [cells[0].strip("`") for cells in table[1:] if cells[2] == "yes"]
    assert required == schema()["required"]


def test_doc_lists_every_rejection_reason() -> None:
    rows = doc_section("Reasons").rows
    assert [cells[0].strip("`") for cells in rows[1:]] == list(REASONS)


def test_doc_example_producer_computes_the_decoders_key() -> None:
    code = [text for lang, text in doc_section("Example producer").blocks if lang == "python"]
    assert len(code) == 1
    namespace: dict[str, Any] = {"__name__": "contract_doc_example"}
    exec(compile(code[0], f"{DOC_PATH}#example-producer", "exec"), namespace)
    for event_type in EVENT_TYPES:
        for event in (doc_example(event_type), variant(event_type, {"tenant": DROP})):
            decoded = decode(copy.deepcopy(event))
            assert isinstance(decoded, dict)
            assert namespace["event_key"](event) == event_key(decoded).encode()


# --- (b) every example is valid ------------------------------------------------------------

@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_doc_example_is_accepted_by_schema_and_decoder(event_type: str) -> None:
    example = doc_example(event_type)
    assert example["type"] == event_type
    decoded = assert_both_accept(example)
    assert decoded == doc_example(event_type)
    assert decoder().decode(json.dumps(example).encode(), event_key(example).encode(),
                            now_ms()) == example


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_optional_fields_may_be_absent_or_null(event_type: str) -> None:
    optional = [name for name in (*COMMON_FIELDS, *schema_rules(event_type)["properties"])
                if name not in (*schema()["required"], *schema_rules(event_type)["required"])]
    assert optional, "the doc examples should show every optional field"
    for name in optional:
        assert name in doc_example(event_type), f"the {event_type} example lacks {name}"
        for value in (DROP, None):
            decoded = assert_both_accept(variant(event_type, {name: value}))
            if name == "tenant":
                assert decoded["tenant"] == "default"
            if name == "v":
                assert decoded["v"] == 1


BOUNDARIES = [
    # (test id, event type, changes): the last value each limit allows
    ("identifier-256-chars", "call.queued", {"event_id": "e" * 256, "call_id": "c" * 256}),
    ("identifier-1-char", "call.queued", {"event_id": "e", "queue": "q", "tenant": "t"}),
    ("identifier-with-space", "call.answered", {"agent_id": "Agent 17"}),
    ("identifier-non-ascii", "call.answered", {"queue": "Kundendienst-Zürich"}),
    ("text-1024-chars", "call.ended", {"source": "s" * 1024}),
    ("text-empty", "call.wrapup_ended", {"disposition": ""}),
    ("duration-0", "call.answered", {"wait_ms": 0}),
    ("duration-7-days", "call.ended", {"talk_ms": MAX_DURATION_MS, "hold_ms": MAX_DURATION_MS}),
    ("priority-0", "call.queued", {"priority": 0, "position": 0}),
    ("priority-1000000", "call.queued", {"priority": 1_000_000, "position": 1_000_000}),
    ("caller-short-number", "call.queued", {"caller": "12345"}),
    ("caller-hash", "call.queued", {"caller": "3f9a0c1d77e2b4c8"}),
    ("queues-empty", "agent.state", {"queues": []}),
    ("queues-1000", "agent.state", {"queues": [f"q{i}" for i in range(1000)]}),
]


@pytest.mark.parametrize(("event_type", "changes"), [case[1:] for case in BOUNDARIES],
                         ids=[case[0] for case in BOUNDARIES])
def test_values_at_the_limits_are_accepted_by_schema_and_decoder(
        event_type: str, changes: dict[str, Any]) -> None:
    assert_both_accept(variant(event_type, changes))


# --- (c) invalid variants: both refuse, for the decoder's stated reason ---------------------

@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_required_fields_absent_or_null_are_refused(event_type: str) -> None:
    for name in (*schema()["required"], *schema_rules(event_type)["required"]):
        reason = "unknown_type" if name == "type" else "missing_field"
        for value in (DROP, None):
            assert_both_reject(variant(event_type, {name: value}), reason, name)


too_many_queues = [f"q{i}" for i in range(1001)]
INVALID = [
    # (test id, event type, changes, decoder reason, decoder field)
    ("v-2", "call.queued", {"v": 2}, "unsupported_version", "v"),
    ("v-string", "call.queued", {"v": "1"}, "unsupported_version", "v"),
    ("v-boolean", "call.queued", {"v": True}, "unsupported_version", "v"),
    ("type-unknown", "call.queued", {"type": "call.parked"}, "unknown_type", "type"),
    ("type-case", "call.queued", {"type": "Call.Queued"}, "unknown_type", "type"),
    ("type-number", "call.queued", {"type": 1}, "unknown_type", "type"),
    ("event_id-empty", "call.answered", {"event_id": ""}, "bad_value", "event_id"),
    ("event_id-257-chars", "call.answered", {"event_id": "e" * 257}, "bad_value", "event_id"),
    ("event_id-number", "call.answered", {"event_id": 17}, "wrong_type", "event_id"),
    ("event_id-tab", "call.answered", {"event_id": "e\t1"}, "bad_value", "event_id"),
    ("ts_ms-fraction", "call.answered", {"ts_ms": 1741079731500.5}, "wrong_type", "ts_ms"),
    ("ts_ms-string", "call.answered", {"ts_ms": "1741079731500"}, "wrong_type", "ts_ms"),
    ("ts_ms-boolean", "call.answered", {"ts_ms": True}, "wrong_type", "ts_ms"),
    ("tenant-slash", "call.answered", {"tenant": "acme/eu"}, "bad_value", "tenant"),
    ("tenant-empty", "agent.state", {"tenant": ""}, "bad_value", "tenant"),
    ("tenant-number", "agent.state", {"tenant": 7}, "wrong_type", "tenant"),
    ("source-number", "call.ended", {"source": 1}, "wrong_type", "source"),
    ("source-1025-chars", "call.ended", {"source": "s" * 1025}, "bad_value", "source"),
    ("call_id-number", "call.queued", {"call_id": 42}, "wrong_type", "call_id"),
    ("call_id-newline", "call.queued", {"call_id": "c\n42"}, "bad_value", "call_id"),
    ("queue-slash", "call.queued", {"queue": "sales/emea"}, "bad_value", "queue"),
    ("queue-empty", "call.abandoned", {"queue": ""}, "bad_value", "queue"),
    ("caller-phone-e164", "call.queued", {"caller": "+15550100200"}, "bad_value", "caller"),
    ("caller-phone-spaced", "call.queued", {"caller": "030 1234 5678"}, "bad_value", "caller"),
    ("caller-number", "call.queued", {"caller": 5550100}, "wrong_type", "caller"),
    ("priority-negative", "call.queued", {"priority": -1}, "out_of_range", "priority"),
    ("priority-too-big", "call.queued", {"priority": 1_000_001}, "out_of_range", "priority"),
    ("position-fraction", "call.queued", {"position": 2.5}, "wrong_type", "position"),
    ("agent_id-empty", "call.answered", {"agent_id": ""}, "bad_value", "agent_id"),
    ("wait_ms-negative", "call.answered", {"wait_ms": -1}, "negative_duration", "wait_ms"),
    ("wait_ms-string", "call.answered", {"wait_ms": "31500"}, "wrong_type", "wait_ms"),
    ("wait_ms-boolean", "call.answered", {"wait_ms": True}, "wrong_type", "wait_ms"),
    ("wait_ms-over-7-days", "call.answered", {"wait_ms": MAX_DURATION_MS + 1},
     "out_of_range", "wait_ms"),
    ("wait_ms-fraction", "call.abandoned", {"wait_ms": 48000.5}, "wrong_type", "wait_ms"),
    ("dequeue-reason-unknown", "call.dequeued", {"reason": "hangup"}, "bad_value", "reason"),
    ("dequeue-reason-case", "call.dequeued", {"reason": "TIMEOUT"}, "bad_value", "reason"),
    ("dequeue-reason-number", "call.dequeued", {"reason": 1}, "wrong_type", "reason"),
    ("talk_ms-negative", "call.ended", {"talk_ms": -5}, "negative_duration", "talk_ms"),
    ("talk_ms-over-7-days", "call.ended", {"talk_ms": MAX_DURATION_MS + 1},
     "out_of_range", "talk_ms"),
    ("hold_ms-negative", "call.ended", {"hold_ms": -1}, "negative_duration", "hold_ms"),
    ("acw_ms-negative", "call.wrapup_ended", {"acw_ms": -1}, "negative_duration", "acw_ms"),
    ("disposition-number", "call.wrapup_ended", {"disposition": 7}, "wrong_type", "disposition"),
    ("disposition-1025-chars", "call.wrapup_ended", {"disposition": "d" * 1025},
     "bad_value", "disposition"),
    ("transfer-kind-unknown", "call.transferred", {"kind": "warm"}, "bad_value", "kind"),
    ("transfer-target-list", "call.transferred", {"target": ["billing"]}, "wrong_type", "target"),
    ("transfer-agent_id-empty", "call.transferred", {"agent_id": ""}, "bad_value", "agent_id"),
    ("agent-state-unknown", "agent.state", {"state": "busy"}, "bad_value", "state"),
    ("agent-reason-number", "agent.state", {"reason": 3}, "wrong_type", "reason"),
    ("queues-string", "agent.state", {"queues": "support"}, "wrong_type", "queues"),
    ("queues-slash", "agent.state", {"queues": ["support", "a/b"]}, "bad_value", "queues"),
    ("queues-empty-name", "agent.state", {"queues": [""]}, "bad_value", "queues"),
    ("queues-number", "agent.state", {"queues": [1]}, "wrong_type", "queues"),
    ("queues-1001", "agent.state", {"queues": too_many_queues}, "out_of_range", "queues"),
]


@pytest.mark.parametrize(("event_type", "changes", "reason", "field_name"),
                         [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_variant_is_refused_by_schema_and_decoder(
        event_type: str, changes: dict[str, Any], reason: str, field_name: str) -> None:
    assert reason in REASONS
    assert_both_reject(variant(event_type, changes), reason, field_name)


@pytest.mark.parametrize("value", [[], ["call.queued"], "call.queued", 17, None, True])
def test_a_json_value_that_is_not_an_object_is_refused(value: Any) -> None:
    assert_both_reject(value, "not_object", None)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_decoder_reports_fields_in_the_doc_table_order(event_type: str) -> None:
    """The doc promises the first problem is reported, in the order of the type's table."""
    names = [name for name, _ in doc_field_table(event_type)]
    event = variant(event_type, {name: {"not": "valid"} for name in names})
    for name in names:
        outcome = decode(event)
        assert isinstance(outcome, Rejection)
        assert (outcome.reason, outcome.field) == ("wrong_type", name)
        event[name] = doc_example(event_type)[name]
    assert_both_accept(event)


# --- (d) unknown fields ----------------------------------------------------------------------

@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_unknown_extra_fields_are_accepted_and_kept(event_type: str) -> None:
    extra = {"x_pbx_uniqueid": "1741079700.42", "x_labels": {"site": "berlin", "n": [1, 2.5]},
             "x_nothing": None}
    decoded = assert_both_accept(variant(event_type, extra))
    for name, value in extra.items():
        assert decoded[name] == value


# --- where JSON Schema cannot follow ---------------------------------------------------------

STRICTER_IN_DECODER = [
    # (test id, event type, changes, decoder reason, decoder field)
    ("ts_ms-zero-fraction", "call.queued", {"ts_ms": 1741079700000.0}, "wrong_type", "ts_ms"),
    ("v-zero-fraction", "call.queued", {"v": 1.0}, "unsupported_version", "v"),
    ("ts_ms-beyond-64-bit", "call.queued", {"ts_ms": 10**20}, "wrong_type", "ts_ms"),
    ("wait_ms-zero-fraction", "call.answered", {"wait_ms": 31500.0}, "wrong_type", "wait_ms"),
    ("ts_ms-in-future", "call.queued", {"ts_ms": 1741079700000 + 10 * 86_400_000},
     "ts_in_future", "ts_ms"),
    ("ts_ms-too-old", "call.queued", {"ts_ms": 0}, "ts_too_old", "ts_ms"),
    ("call_id-zero-width-space", "call.queued", {"call_id": "c\u200b42"}, "bad_value", "call_id"),
    ("queue-no-break-space", "call.queued", {"queue": "sup\u00a0port"}, "bad_value", "queue"),
]


@pytest.mark.parametrize(("event_type", "changes", "reason", "field_name"),
                         [case[1:] for case in STRICTER_IN_DECODER],
                         ids=[case[0] for case in STRICTER_IN_DECODER])
def test_gaps_named_in_the_schema_description_are_closed_by_the_decoder(
        event_type: str, changes: dict[str, Any], reason: str, field_name: str) -> None:
    """The schema's description and the doc name these gaps; if the schema ever closes one,
    move the case to INVALID and update both texts."""
    event = variant(event_type, changes)
    assert not schema_errors(event)
    outcome = decode(event)
    assert isinstance(outcome, Rejection)
    assert (outcome.reason, outcome.field) == (reason, field_name)


def test_schema_description_names_what_it_cannot_check() -> None:
    description = schema()["description"]
    for phrase in ("1000.0", "max_future_skew_s", "max_age_days", "key_mismatch",
                   "isprintable", "max_message_bytes"):
        assert phrase in description
    caller = schema_rules("call.queued")["properties"]["caller"]
    assert "raw phone number" in caller["description"]
