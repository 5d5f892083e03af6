"""What every bad-input test asserts about one message: it becomes a valid event that the JSON
Schema accepts and that survives a column batch unchanged, or a dead letter with a known reason.

The decoder, the condenser and the Hypothesis profile here are those of the fuzz tests and the
hostile corpus; the integration test reuses the corpus, not this module.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator

from streams.columns import CODE_TABLES, ColumnBatch
from streams.contract import REASONS, Decoder, Rejection, event_key
from streams.ingest import Condenser, dead_letter_headers
from streams.settings import IngestSettings
from tests.unit.test_contract_schema import doc_example

#: The clock of every fuzz decode: events are re-timed to just before it.
NOW_MS = 1_790_000_000_000
SOURCE_TOPIC = "callcenter.events.v1"

#: Deterministic and database-less, so CI runs the same examples every time and a run leaves
#: no .hypothesis folder behind. Each test sets its own max_examples.
FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])


def decoder() -> Decoder:
    """The decoder with the shipped limits (1 MiB messages, 300 s skew, 3660 days of age)."""
    return Decoder.from_settings(IngestSettings())


CONDENSER = Condenser(decoder(), SOURCE_TOPIC)


@functools.cache
def schema_validator() -> Draft202012Validator:
    text = (resources.files("streams") / "schemas" / "callcenter-event-v1.schema.json").read_text(
        encoding="utf-8")
    return Draft202012Validator(json.loads(text))


def example(event_type: str, ts_ms: int = NOW_MS - 60_000) -> dict[str, Any]:
    """The doc's example of ``event_type``, re-timed to ``ts_ms``."""
    event = doc_example(event_type)
    event["ts_ms"] = ts_ms
    return event


def key_for(event: Any) -> bytes | None:
    """The key a correct producer would send for ``event``, when one can be computed; the
    decoder then judges the value, not the key."""
    if type(event) is not dict:
        return None
    filled = {"tenant": "default", **{k: v for k, v in event.items() if v is not None}}
    parts = [filled.get("tenant"), filled.get("agent_id" if filled.get("type") == "agent.state"
                                              else "queue")]
    if not all(type(part) is str for part in parts):
        return None
    try:
        return event_key(filled).encode("utf-8")
    except (KeyError, UnicodeEncodeError):
        return None


def condensed_view(event: dict[str, Any]) -> dict[str, Any]:
    """The fields of a valid event that a column batch keeps, as ``ColumnBatch.events`` gives
    them back: the engine's fields of the event's own type, no extras, no free text."""
    etype = event["type"]
    kept = {"event_id", "type", "ts_ms", "tenant"}
    if etype == "agent.state":
        kept |= {"agent_id", "queues"}
    else:
        kept |= {"queue", "call_id"}
        by_type = {"call.queued": {"caller"}, "call.answered": {"agent_id", "wait_ms"},
                   "call.abandoned": {"wait_ms"}, "call.dequeued": {"wait_ms"},
                   "call.ended": {"agent_id", "talk_ms", "hold_ms"},
                   "call.wrapup_ended": {"agent_id", "acw_ms", "disposition"},
                   "call.transferred": {"agent_id"}}
        kept |= by_type[etype]
    if etype in CODE_TABLES:
        kept.add(CODE_TABLES[etype][0])
    return {name: value for name, value in event.items() if name in kept and value is not None}


def check_message(value: bytes | None, key: bytes | None, *, offset: int = 0,
                  partition: int = 0) -> dict[str, Any] | Rejection:
    """Decode one message and assert the invariant; return the decoder's outcome.

    A valid event must pass the JSON Schema and come back unchanged from a column batch's
    bytes; a rejection must carry a reason from :data:`REASONS` and headers that fit on a
    DLQ record (UTF-8, a short detail), and condensing must dead-letter it with the original
    bytes. Any exception is the failure the fuzz tests look for.
    """
    outcome = decoder().decode(value, key, NOW_MS)
    batch, dead = CONDENSER.condense(partition, [(offset, key, value)], NOW_MS)
    if isinstance(outcome, Rejection):
        assert outcome.reason in REASONS, outcome
        assert batch is None and len(dead) == 1
        letter = dead[0]
        assert (letter.offset, letter.partition, letter.key) == (offset, partition, key)
        assert letter.value == (value if value is not None else b"")
        assert letter.rejection == outcome
        headers = dict(dead_letter_headers(letter, NOW_MS))
        assert headers["callslo.reason"] == outcome.reason.encode()
        # The detail is a sentence, whatever the message held: a header as large as the
        # message could push the DLQ record over the topic's size limit.
        assert len(headers["callslo.detail"]) <= 600, headers["callslo.detail"][:200]
        return outcome
    assert type(outcome) is dict
    errors = [e.message[:200] for e in schema_validator().iter_errors(outcome)]
    assert not errors, f"the decoder accepts what the schema refuses: {errors}"
    assert not dead and batch is not None and batch.rows == 1
    again = ColumnBatch.from_bytes(batch.to_bytes())
    assert list(again.events()) == [condensed_view(outcome)]
    assert again.arrays["offset"].tolist() == [offset]
    assert (again.first_offset, again.last_offset) == (offset, offset)
    return outcome
