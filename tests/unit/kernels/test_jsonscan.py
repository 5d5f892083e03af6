"""The flat-object scanner against orjson: every message it is sure of reads as orjson reads it."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.jsonscan import ABSENT, FALSE, INT, NULL, STRING, STRINGS, TRUE, scan_objects

NAMES = [b"a", b"bb", b"name", b"list", b"n"]
EXAMPLES = settings(derandomize=True, database=None, deadline=None, max_examples=300)


def scan(messages):
    buf = np.frombuffer(b"".join(messages) or b"\0", dtype=np.uint8)
    ends = np.cumsum([len(m) for m in messages], dtype=np.int64)
    starts = ends - np.asarray([len(m) for m in messages], dtype=np.int64)
    return buf, scan_objects(buf, starts, ends, NAMES)


def slot_value(buf, s, m, j):
    """The scanned slot as the Python value orjson gives (None for both null and absent)."""
    kind = s.kind[m, j]
    if kind in (ABSENT, NULL):
        return None
    if kind == INT:
        return int(s.value[m, j])
    if kind in (TRUE, FALSE):
        return kind == TRUE
    if kind == STRING:
        text = buf[s.start[m, j]:s.end[m, j]].tobytes().decode()
        assert s.value[m, j] == len(text)
        assert bool(s.printable[m, j]) == (text.isprintable() and all(ord(c) < 0x10000 for c in text))
        return text
    assert kind == STRINGS
    items = s.items[s.start[m, j]:s.end[m, j]]
    out = []
    for start, end, chars, printable in items.tolist():
        text = buf[start:end].tobytes().decode()
        assert chars == len(text)
        out.append(text)
    return out


values = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                   st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
                   st.lists(st.text(max_size=4), max_size=3), st.lists(st.integers(), max_size=2),
                   st.dictionaries(st.text(max_size=2), st.integers(), max_size=2))
objects = st.dictionaries(st.one_of(st.sampled_from([n.decode() for n in NAMES]),
                                    st.text(max_size=5)), values, max_size=6)


@EXAMPLES
@given(items=st.lists(st.tuples(objects, st.booleans(), st.booleans()), min_size=1, max_size=8))
def test_sure_messages_read_as_orjson_reads_them(items):
    messages = [json.dumps(obj, ensure_ascii=ascii_only, indent=1 if spaced else None).encode()
                for obj, ascii_only, spaced in items]
    buf, s = scan(messages)
    for m, raw in enumerate(messages):
        parsed = orjson.loads(raw)
        if s.unsure[m]:
            assert (s.kind[m] == ABSENT).all()
            continue
        for j, name in enumerate(NAMES):
            assert slot_value(buf, s, m, j) == parsed.get(name.decode()), (raw, name)


def test_plain_objects_are_sure():
    messages = [b'{"a": 1, "bb": "x", "name": "St\xc3\xb6rung", "list": ["p", "q"], "n": null}',
                b'{}', b' { "other" : [ ] , "a" : -0 } ', b'{"a":true,"bb":false}']
    buf, s = scan(messages)
    assert s.unsure.tolist() == [False] * 4
    assert slot_value(buf, s, 0, 2) == "Störung"
    assert slot_value(buf, s, 0, 3) == ["p", "q"]
    assert slot_value(buf, s, 2, 0) == 0


@pytest.mark.parametrize("raw", [
    b'{"a": "x\\"y"}', b'{"a": 1.5}', b'{"a": 1e3}', b'{"a": 1234567890123456789}', b'{"a": 01}',
    b'{"a": {"b": 1}}', b'{"a": [1]}', b'{"a": 1, "a": 2}', b'{"a": 1,}', b'{"a" 1}', b'[1]',
    b'', b'{"a": "\xc3"}', b'{"a": "\xed\xa0\x80"}', b'{"a": "\x01"}', b'{"a": 1} {}', b'{"a": nul}',
    b'{"a": tru}', b'{"a": NaN}', b'{"a": "x}', b'\xef\xbb\xbf{}',
])
def test_anything_outside_the_subset_is_unsure(raw):
    _, s = scan([raw])
    assert s.unsure.tolist() == [True]
    assert (s.kind[0] == ABSENT).all()


def test_missing_messages_are_unsure_and_neighbours_are_not_disturbed():
    buf = np.frombuffer(b'{"a":1}{"a":2}', dtype=np.uint8)
    s = scan_objects(buf, np.asarray([0, -1, 7]), np.asarray([7, 0, 14]), NAMES)
    assert s.unsure.tolist() == [False, True, False]
    assert s.value[[0, 2], 0].tolist() == [1, 2]


def test_spans_outside_the_buffer_are_refused():
    buf = np.frombuffer(b"{}", dtype=np.uint8)
    with pytest.raises(ValueError, match="outside"):
        scan_objects(buf, np.asarray([0]), np.asarray([5]), NAMES)
    with pytest.raises(TypeError):
        scan_objects(b"{}", np.asarray([0]), np.asarray([2]), NAMES)
