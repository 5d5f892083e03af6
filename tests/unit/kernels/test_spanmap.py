"""SpanMap against a dict: the same answers through inserts, pops, rebuilds and thresholds."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.spanmap import NO_OWNER_THRESHOLD, SpanMap, drop_below, owner_stats

EXAMPLES = settings(derandomize=True, database=None, deadline=None, max_examples=150)
keys = st.sampled_from([b"", b"a", b"b", b"ab", b"ba", b"\x00", b"call-1", b"call-10",
                        "Störung".encode()])
operations = st.lists(st.tuples(st.sampled_from(["put", "pop", "get", "setdefault", "rebuild",
                                                 "drop"]),
                                st.integers(0, 3), keys, st.integers(0, 50)), max_size=120)


@EXAMPLES
@given(ops=operations)
def test_operations_agree_with_a_dict(ops):
    m = SpanMap(capacity=4, arena_bytes=8)  # tiny: every few inserts rebuild it
    ref: dict[tuple[int, bytes], int] = {}
    thresholds = np.asarray([0, 10, 20, 30], dtype=np.int64)
    for op, owner, key, value in ops:
        if op == "put":
            m.put(owner, key, value)
            ref[(owner, key)] = value
        elif op == "pop":
            assert m.pop(owner, key) == ref.pop((owner, key), None)
        elif op == "get":
            assert m.get(owner, key) == ref.get((owner, key))
            # a threshold counts smaller values as absent
            current = ref.get((owner, key))
            assert m.get(owner, key, 25) == (current if current is not None and current >= 25
                                             else None)
        elif op == "setdefault":
            # with a threshold: stale values are replaced, fresh ones kept
            m.setdefault(owner, key, value, threshold=20)
            current = ref.get((owner, key))
            if current is None or current < 20:
                ref[(owner, key)] = value
        elif op == "rebuild":
            m.compact(thresholds)
            ref = {k: v for k, v in ref.items() if v >= thresholds[k[0]]}
        else:
            dropped = np.zeros(4, dtype=np.int64)
            total = drop_below(m.parts, thresholds, dropped)
            gone = [k for k, v in ref.items() if v < thresholds[k[0]]]
            assert total == len(gone) == dropped.sum()
            for k in gone:
                del ref[k]
        assert len(m) == len(ref)
    everyone = np.ones(4, dtype=np.bool_)
    assert sorted(m.entries(everyone)) == sorted((o, k, v) for (o, k), v in ref.items())
    counts = np.zeros(4, dtype=np.int64)
    lowest = np.full(4, np.iinfo(np.int64).max, dtype=np.int64)
    owner_stats(m.parts, 25, counts, lowest)
    for owner in range(4):
        mine = [v for (o, _), v in ref.items() if o == owner and v <= 25]
        assert counts[owner] == len(mine)
        assert lowest[owner] == (min(mine) if mine else np.iinfo(np.int64).max)


def test_many_keys_survive_growth_and_selection_by_owner():
    m = SpanMap(capacity=16)
    for i in range(20_000):
        m.put(i % 7, f"id-{i}".encode(), i)
    assert len(m) == 20_000
    assert m.get(3, b"id-10") == 10 and m.get(4, b"id-10") is None
    selected = np.zeros(7, dtype=np.bool_)
    selected[2] = True
    got = m.entries(selected, np.full(7, 19_000, dtype=np.int64))
    assert sorted(v for _, _, v in got) == [i for i in range(19_000, 20_000) if i % 7 == 2]
    assert m.get(0, b"missing", NO_OWNER_THRESHOLD) is None
