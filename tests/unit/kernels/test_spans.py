"""Span gathering and exact key interning against plain Python."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.spans import gather_spans, intern_keys

EXAMPLES = settings(derandomize=True, database=None, deadline=None, max_examples=200)


@EXAMPLES
@given(data=st.binary(max_size=60), spans=st.lists(st.tuples(st.integers(-1, 60), st.integers(0, 60)),
                                                    max_size=20))
def test_gather_copies_every_span_in_order(data, spans):
    spans = [(s, e) if s < 0 else (min(s, len(data)), min(max(s, e), len(data))) for s, e in spans]
    buf = np.frombuffer(data or b"\0", dtype=np.uint8)[:len(data)]
    starts = np.asarray([s for s, _ in spans], dtype=np.int64)
    ends = np.asarray([e for _, e in spans], dtype=np.int64)
    blob, offsets = gather_spans(buf, starts, ends)
    got = [blob[offsets[i]:offsets[i + 1]].tobytes() for i in range(len(spans))]
    assert got == [b"" if s < 0 else data[s:e] for s, e in spans]


@EXAMPLES
@given(keys=st.lists(st.tuples(st.integers(-1, 1), st.sampled_from([b"", b"a", b"ab", b"b"]),
                               st.sampled_from([b"", b"a", b"ba", b"b", b"\x00"])), max_size=40))
def test_intern_numbers_keys_by_first_appearance_exactly(keys):
    parts = []
    spans = []
    position = 0
    for _, a, b in keys:
        spans.append((position, position + len(a), position + len(a), position + len(a) + len(b)))
        parts += [a, b]
        position += len(a) + len(b)
    buf = np.frombuffer(b"".join(parts) + b"\0", dtype=np.uint8)
    columns = [np.asarray([s[i] for s in spans], dtype=np.int64) for i in range(4)]
    flags = np.asarray([f for f, _, _ in keys], dtype=np.int64)
    ids, first_rows = intern_keys(flags, buf, *columns)
    expected: dict[tuple, int] = {}
    want = []
    for flag, a, b in keys:
        if flag < 0:
            want.append(-1)
            continue
        want.append(expected.setdefault((flag, a, b), len(expected)))
    assert ids.tolist() == want
    firsts = {}
    for row, g in enumerate(want):
        if g >= 0:
            firsts.setdefault(g, row)
    assert first_rows.tolist() == [firsts[g] for g in range(len(expected))]


def test_bad_spans_are_refused():
    buf = np.frombuffer(b"abc", dtype=np.uint8)
    with pytest.raises(ValueError):
        gather_spans(buf, np.asarray([1]), np.asarray([9]))
    with pytest.raises(ValueError):
        intern_keys(np.asarray([0]), buf, np.asarray([0]), np.asarray([9]), np.asarray([0]),
                    np.asarray([1]))
