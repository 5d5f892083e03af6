"""Pane state: rolling-window merge, quantiles of groups, bytes round trip, reset."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import NO_WAIT, RECORD_WIDTH, Field, PaneState, Sketches, aggregate, merge_panes, pane_quantiles

from .test_aggregate import make_batch


def filled(n_panes: int, n_events: int, seed: int) -> PaneState:
    state = PaneState.empty(n_panes)
    aggregate(state, **make_batch(np.random.default_rng(seed), n_events, n_panes))
    return state


def test_records_are_cache_line_aligned():
    state = PaneState.empty(10)
    assert state.records.ctypes.data % 64 == 0 and state.records.strides == (128, 8)
    assert max(Field.ANSWERED, Field.ANSWERED_WITHIN, Field.ANSWERED_WAIT_MS, Field.MAX_WAIT_MS) < 8


def test_merge_panes_sums_counts_and_takes_max():
    state = filled(6, 2000, seed=1)
    before = state.copy()
    offsets = np.array([0, 2, 2, 6])
    rows = np.array([0, 1, 2, 3, 4, 5])
    merged = merge_panes(state, offsets, rows)
    assert state == before  # inputs are not modified
    additive = [f for f in Field if f is not Field.MAX_WAIT_MS]
    assert np.array_equal(merged.records[0, additive], state.records[:2, additive].sum(axis=0))
    assert np.array_equal(merged.records[1, additive], np.zeros(len(additive)))
    assert merged.max_wait_ms[1] == NO_WAIT
    assert merged.max_wait_ms[2] == state.max_wait_ms[2:].max()
    assert merged.field(Field.HANDLE_MS)[2] == state.field(Field.HANDLE_MS)[2:].sum()
    assert np.array_equal(
        pane_quantiles(merged), pane_quantiles(state, offsets=offsets, rows=rows), equal_nan=True
    )


def test_state_bytes_round_trip_and_are_compact():
    state = filled(40, 5000, seed=2)
    data = state.to_bytes()
    assert PaneState.from_bytes(data) == state
    assert len(data) < 40 * 400  # dense int64 state would be ~40 * 11 KB
    assert PaneState.from_bytes(PaneState.empty(0).to_bytes()).n_panes == 0


def test_state_bytes_reject_corruption():
    state = filled(3, 200, seed=3)
    data = state.to_bytes()
    with pytest.raises(ValueError, match="not a callslo pane-state block"):
        PaneState.from_bytes(b"CSWS" + data[4:])
    with pytest.raises(ValueError, match="format version"):
        PaneState.from_bytes(data[:4] + b"\x02" + data[5:])
    with pytest.raises(ValueError):
        PaneState.from_bytes(data[:-3])
    with pytest.raises(ValueError, match="trailing"):
        PaneState.from_bytes(data + b"\x01")


def test_reset_empties_only_the_given_panes():
    state = filled(3, 500, seed=4)
    kept = state.copy()
    state.reset([1])
    assert state.field(Field.ANSWERED)[1] == 0 and state.max_wait_ms[1] == NO_WAIT
    assert state.sketches.counts[1] == 0
    assert np.array_equal(state.records[[0, 2]], kept.records[[0, 2]])
    with pytest.raises(ValueError):
        state.reset([3])


def test_pane_state_constructor_checks_arrays():
    sketches = Sketches.empty(2)
    with pytest.raises(ValueError, match="records must have shape"):
        PaneState(np.zeros((3, RECORD_WIDTH), dtype=np.int64), sketches)
    with pytest.raises(TypeError, match="int64"):
        PaneState(np.zeros((2, RECORD_WIDTH), dtype=np.float64), sketches)
    with pytest.raises(ValueError, match="n_rows"):
        PaneState.empty(-1)


def test_encode_rows_gives_each_panes_part_of_the_serialised_block():
    state = filled(7, 4000, seed=9)
    rows = [5, 0, 3, 3, 6]
    parts = state.encode_rows(rows)
    assert len(parts) == len(rows) and all(parts)
    block = state.bytes_header(len(rows)) + b"".join(parts)
    assert block == state.take(rows).to_bytes()
    assert PaneState.from_bytes(block) == state.take(rows)
    # Parts of separate calls join in any order: a pane's part does not depend on the others.
    again = state.encode_rows([6]) + state.encode_rows([0, 5])
    assert PaneState.from_bytes(state.bytes_header(3) + b"".join(again)) == state.take([6, 0, 5])
    assert state.encode_rows([]) == []
    with pytest.raises(ValueError, match="not a pane"):
        state.encode_rows([7])


def test_take_put_and_resized_move_whole_panes():
    state = filled(6, 3000, seed=6)
    subset = state.take([4, 1])
    assert subset.n_panes == 2
    assert np.array_equal(subset.records, state.records[[4, 1]])
    assert np.array_equal(subset.sketches.buckets, state.sketches.buckets[[4, 1]])
    assert subset.records.ctypes.data % 64 == 0
    restored = PaneState.from_bytes(subset.to_bytes())
    target = PaneState.empty(6)
    target.put([0, 5], restored)
    assert target.take([0, 5]) == subset
    assert target.take([1, 2, 3, 4]) == PaneState.empty(4)
    grown = state.resized(9)
    assert grown.take(range(6)) == state and grown.take([6, 7, 8]) == PaneState.empty(3)
    assert state.resized(2) == state.take([0, 1])
    with pytest.raises(ValueError, match="holds 2"):
        target.put([0], restored)
    with pytest.raises(ValueError, match="not a sketch row"):
        state.take([6])


def test_a_block_written_before_the_last_fields_were_added_reads_with_zeros_there():
    from kernels import _codec
    from kernels.panes import _STATE_HEADER, _STATE_MAGIC, _STATE_VERSION

    state = PaneState.empty(2)
    state.records[:, : Field.ABANDONED_WAIT_MS] = 7
    state.records[:, Field.MAX_WAIT_MS] = 9
    old_fields = int(Field.ABANDONED_WAIT_MS)  # the 14 fields of the first format
    spec = state.spec
    header = _codec.pack_header(_STATE_HEADER, _STATE_MAGIC, _STATE_VERSION, spec.alpha,
                                spec.min_value, spec.max_value, 2, old_fields)
    buf = np.empty(_codec.MAX_VARINT_BYTES * 2 * old_fields
                   + state.sketches.encoded_size_bound(), dtype=np.uint8)
    end = _codec.encode_panes(buf, state.records, old_fields, state.sketches.summary,
                              state.sketches.buckets)
    restored = PaneState.from_bytes(header + buf[:end].tobytes())
    assert (restored.records[:, : Field.ABANDONED_WAIT_MS] == state.records[:, : Field.ABANDONED_WAIT_MS]).all()
    assert (restored.records[:, Field.ABANDONED_WAIT_MS:] == 0).all()
