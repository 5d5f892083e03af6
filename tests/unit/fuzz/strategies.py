"""Hypothesis strategies for hostile input: JSON-ish values, their byte encodings, valid events
with one field replaced, and queue_log lines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from streams.contract import EVENT_TYPES, MAX_DURATION_MS

# Every code point, lone surrogates included (Hypothesis leaves them out by default): they
# reach the decoder as \ud800 escapes or as the bytes a careless encoder writes for them.
any_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
hostile_text = st.one_of(
    st.text(any_char, max_size=40),
    st.text(st.sampled_from("\x00\t\n\u200b\u00a0\u2028/ aZ9+-.()@:"), max_size=20),
    st.sampled_from(["", "NONE", "null", "NaN", "1e3", "+1 555 010 9999", "call.queued",
                     "a" * 256, "a" * 257, "x" * 1025]),
    # long strings, cheaply: the length is drawn, not the characters
    st.integers(0, 1_200_000).map(lambda n: "s" * n),
)
hostile_int = st.one_of(
    st.integers(),  # unbounded: beyond 64 bits they are read as floats
    st.sampled_from([0, -1, 1, MAX_DURATION_MS, MAX_DURATION_MS + 1, 2**63 - 1, 2**63, -2**63,
                     2**64 - 1, 2**64, 10**30, 1_000_000, 1_000_001]),
    st.integers(-2 * MAX_DURATION_MS, 2 * MAX_DURATION_MS),
)
hostile_float = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                          st.sampled_from([0.0, -0.0, 1.0, 1e3, 31500.0, 1e300]))
scalars = st.one_of(st.none(), st.booleans(), hostile_int, hostile_float, hostile_text)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=6),
                               st.dictionaries(hostile_text, children, max_size=6)),
    max_leaves=30)


@dataclass(frozen=True)
class RawJson:
    """A JSON fragment spliced into a message as written: nesting deeper than any encoder
    (json, orjson) will write."""

    text: str

    def __repr__(self) -> str:
        return f"RawJson({len(self.text)} chars: {self.text[:24]}...)"


def nested_json(depth: int) -> RawJson:
    """``1`` inside ``depth`` arrays and objects, alternating."""
    opening = "".join('{"k":' if level % 2 else "[" for level in range(depth))
    closing = "".join("}" if level % 2 else "]" for level in reversed(range(depth)))
    return RawJson(opening + "1" + closing)


# Deeper than orjson's limit (1024), and around Python's recursion limit (1000).
deep_values = st.integers(1, 1500).map(nested_json)


def encode(value: Any, style: str) -> bytes:
    """``value`` as the bytes some producer might send. NaN and Infinity come out as the
    non-standard literals; a lone surrogate as an escape or as its (invalid) UTF-8 bytes;
    :class:`RawJson` values of an object as they are written."""
    if isinstance(value, RawJson):
        text = value.text
    else:
        spliced: dict[str, str] = {}
        if type(value) is dict:
            value = dict(value)
            for name, item in value.items():
                if isinstance(item, RawJson):
                    value[name] = placeholder = f"__raw_{len(spliced)}__"
                    spliced[f'"{placeholder}"'] = item.text
        text = json.dumps(value, ensure_ascii=style == "ascii", allow_nan=True)
        for placeholder, fragment in spliced.items():
            text = text.replace(placeholder, fragment, 1)
    if style == "utf-16":
        return text.encode("utf-16", "surrogatepass")
    return text.encode("utf-8", "surrogatepass")


encodings = st.sampled_from(["ascii", "utf-8", "utf-8", "utf-16"])

event_types = st.sampled_from(EVENT_TYPES)
#: Field names worth replacing: every contract field, and a few unknown ones.
field_names = st.sampled_from([
    "event_id", "type", "ts_ms", "tenant", "source", "v", "call_id", "queue", "caller",
    "priority", "position", "agent_id", "wait_ms", "reason", "talk_ms", "hold_ms", "acw_ms",
    "disposition", "target", "kind", "state", "queues", "x_extra", ""])
replacement_values = st.one_of(scalars, json_values, deep_values,
                               st.lists(hostile_text, max_size=3),
                               st.lists(st.just("q"), min_size=999, max_size=1002))

# --- queue_log -------------------------------------------------------------------------------

_QUEUE_LOG_EVENTS = ["ENTERQUEUE", "CONNECT", "ABANDON", "EXITWITHTIMEOUT", "EXITWITHKEY",
                     "EXITEMPTY", "COMPLETECALLER", "COMPLETEAGENT", "TRANSFER", "BLINDTRANSFER",
                     "ATTENDEDTRANSFER", "AGENTLOGIN", "AGENTLOGOFF", "ADDMEMBER", "REMOVEMEMBER",
                     "PAUSE", "UNPAUSE", "PAUSEALL", "UNPAUSEALL", "RINGNOANSWER", "QUEUESTART"]


def queue_log_fields(epoch_s: int) -> st.SearchStrategy[list[str]]:
    """The fields of a queue_log line, each plausible or hostile."""
    text = st.one_of(st.sampled_from(["", "NONE", "REALTIME", "support", "PJSIP/2001",
                                      "Local/2001@agents", "APP", "BRIDGE"]),
                     st.text(any_char.filter(lambda c: c not in "|\n"), max_size=12))
    number = st.one_of(st.integers(-10**13, 10**13).map(str),
                       st.sampled_from(["", "1e3", "0x10", "12.5", " 3", "٣"]))
    epoch = st.one_of(st.integers(epoch_s - 86_400 * 4000, epoch_s + 86_400).map(str),
                      st.sampled_from(["0", "-1", "1" * 13, "1741079700.250", "1741079700.",
                                       "", "NONE"]), number)
    return st.tuples(
        epoch, st.one_of(st.just("1741079700.42"), text), text, text,
        st.one_of(st.sampled_from(_QUEUE_LOG_EVENTS), text),
        st.lists(st.one_of(number, text), max_size=6),
    ).map(lambda t: [t[0], t[1], t[2], t[3], t[4], *t[5]])


def _encode_line(fields: list[str]) -> bytes:
    return "|".join(fields).encode("utf-8", "surrogatepass")


def queue_log_lines(epoch_s: int) -> st.SearchStrategy[bytes]:
    """Lines without their newline: structured ones, and arbitrary bytes."""
    return st.one_of(queue_log_fields(epoch_s).map(_encode_line),
                     st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"")))
