"""Grouped pane aggregation against a plain-Python reference of the metric rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import NO_WAIT, RECORD_WIDTH, EventKind, Field, PaneState, Sketches, aggregate, pane_quantiles

N_PANES = 5


def make_batch(rng: np.random.Generator, n: int, n_panes: int = N_PANES) -> dict[str, np.ndarray]:
    """Random columns with unknown (-1) values, skipped rows and boundary waits mixed in."""
    waits = rng.choice([rng.integers(0, 120_000), 0, 4_999, 5_000, 20_000, 20_001, -1], size=n)
    waits = np.where(rng.random(n) < 0.5, rng.integers(-1, 90_000, n), waits)
    return {
        "pane_index": rng.integers(-1, n_panes, n),
        "kind": rng.integers(0, len(EventKind), n),
        "wait_ms": waits.astype(np.int64),
        "talk_ms": rng.integers(-1, 600_000, n),
        "hold_ms": rng.integers(-1, 60_000, n),
        "acw_ms": rng.integers(-1, 90_000, n),
        "threshold_ms": rng.choice([0, 15_000, 20_000], n),
        "short_abandon_ms": rng.choice([0, 5_000], n),
    }


def reference(batch: dict[str, np.ndarray], n_panes: int) -> tuple[np.ndarray, list[list[int]]]:
    """The module docstring's metric rules, one row at a time."""
    records = np.zeros((n_panes, RECORD_WIDTH), dtype=np.int64)
    records[:, Field.MAX_WAIT_MS] = NO_WAIT
    sketched: list[list[int]] = [[] for _ in range(n_panes)]
    for i in range(batch["pane_index"].size):
        pane = int(batch["pane_index"][i])
        if pane < 0:
            continue
        kind = EventKind(int(batch["kind"][i]))
        wait = int(batch["wait_ms"][i])
        threshold = int(batch["threshold_ms"][i])
        c = records[pane]
        if kind is EventKind.QUEUED:
            c[Field.ENTERED] += 1
        elif kind is EventKind.ANSWERED:
            c[Field.ANSWERED] += 1
            if wait < 0:
                c[Field.WAIT_UNKNOWN] += 1
            else:
                c[Field.ANSWERED_WITHIN] += wait <= threshold
                c[Field.ANSWERED_WAIT_MS] += wait
                c[Field.MAX_WAIT_MS] = max(c[Field.MAX_WAIT_MS], wait)
                sketched[pane].append(wait)
        elif kind is EventKind.ABANDONED:
            if 0 <= wait < int(batch["short_abandon_ms"][i]):
                c[Field.SHORT_ABANDONED] += 1
            else:
                c[Field.ABANDONED] += 1
                if wait < 0:
                    c[Field.WAIT_UNKNOWN] += 1
                else:
                    c[Field.ABANDONED_WITHIN] += wait <= threshold
                    c[Field.ABANDONED_WAIT_MS] += wait
                    c[Field.MAX_WAIT_MS] = max(c[Field.MAX_WAIT_MS], wait)
        elif kind is EventKind.DEQUEUED:
            c[Field.DEQUEUED] += 1
            if wait < 0:
                c[Field.WAIT_UNKNOWN] += 1
            else:
                c[Field.MAX_WAIT_MS] = max(c[Field.MAX_WAIT_MS], wait)
        elif kind is EventKind.ENDED:
            c[Field.HANDLED] += 1
            talk, hold = int(batch["talk_ms"][i]), int(batch["hold_ms"][i])
            c[Field.HANDLE_UNKNOWN] += talk < 0 or hold < 0
            c[Field.HANDLE_MS] += max(talk, 0) + max(hold, 0)
        elif kind is EventKind.WRAPUP_ENDED:
            acw = int(batch["acw_ms"][i])
            if acw < 0:
                c[Field.HANDLE_UNKNOWN] += 1
            else:
                c[Field.HANDLE_MS] += acw
        else:
            c[Field.TRANSFERRED] += 1
    return records, sketched


def run(state: PaneState, batch: dict[str, np.ndarray]):
    return aggregate(state, **batch)


@settings(deadline=None, max_examples=80)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 300), n_batches=st.integers(1, 3))
def test_aggregate_matches_reference(seed, n, n_batches):
    rng = np.random.default_rng(seed)
    batches = [make_batch(rng, n) for _ in range(n_batches)]
    state = PaneState.empty(N_PANES)
    for batch in batches:
        result = run(state, batch)
        assert result.skipped == int((batch["pane_index"] < 0).sum())
        assert result.applied + result.skipped == n
    whole = {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}
    records, sketched = reference(whole, N_PANES)
    assert np.array_equal(state.records, records)
    expected = Sketches.empty(N_PANES)
    for pane, waits in enumerate(sketched):
        expected.insert(np.full(len(waits), pane), np.array(waits, dtype=np.int64))
    assert state.sketches == expected


def test_threshold_is_inclusive_and_short_abandon_exclusive():
    state = PaneState.empty(1)
    kinds = [EventKind.ANSWERED, EventKind.ANSWERED, EventKind.ABANDONED, EventKind.ABANDONED, EventKind.ABANDONED]
    waits = [20_000, 20_001, 4_999, 5_000, 20_000]
    zeros = np.zeros(5, dtype=np.int64)
    aggregate(state, zeros, kinds, waits, zeros, zeros, zeros, threshold_ms=20_000, short_abandon_ms=5_000)
    c = state.records[0]
    assert c[Field.ANSWERED_WITHIN] == 1
    assert c[Field.SHORT_ABANDONED] == 1
    assert c[Field.ABANDONED] == 2
    assert c[Field.ABANDONED_WITHIN] == 2
    assert state.max_wait_ms[0] == 20_001  # the short abandon (4999) is excluded anyway
    assert state.offered[0] == 4


def test_short_abandons_do_not_raise_max_wait():
    state = PaneState.empty(1)
    aggregate(state, [0], [EventKind.ABANDONED], [3_000], [0], [0], [0])
    assert state.max_wait_ms[0] == NO_WAIT
    assert state.records[0, Field.SHORT_ABANDONED] == 1


def test_quantiles_come_from_answered_waits_only():
    state = PaneState.empty(2)
    n = 1000
    waits = np.arange(1, n + 1, dtype=np.int64) * 100
    zeros = np.zeros(n, dtype=np.int64)
    aggregate(state, zeros, np.full(n, EventKind.ANSWERED), waits, zeros, zeros, zeros)
    aggregate(state, zeros, np.full(n, EventKind.ABANDONED), waits * 50, zeros, zeros, zeros)
    p = pane_quantiles(state, (0.5, 0.9, 0.95, 0.99))
    exact = np.quantile(waits, [0.5, 0.9, 0.95, 0.99], method="lower")
    assert np.all(np.abs(p[0] - exact) <= 0.01 * exact)
    assert np.isnan(p[1]).all()


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [
        ("pane_index", 5, r"pane_index\[2\] = 5"),
        ("pane_index", -2, r"pane_index\[2\] = -2"),
        ("kind", 7, r"kind\[2\] = 7 is not an EventKind"),
        ("threshold_ms", -1, "must both be >= 0"),
    ],
)
def test_invalid_rows_are_named_and_nothing_is_applied(column, value, match):
    batch = make_batch(np.random.default_rng(5), 4)
    batch["pane_index"] = np.array([0, 1, 2, 3])
    batch[column] = batch[column].copy()
    batch[column][2] = value
    state = PaneState.empty(N_PANES)
    with pytest.raises(ValueError, match=match):
        run(state, batch)
    assert state == PaneState.empty(N_PANES)


def test_column_types_and_lengths_are_checked():
    state = PaneState.empty(1)
    ok = np.zeros(3, dtype=np.int64)
    with pytest.raises(TypeError, match="wait_ms must be an integer array"):
        aggregate(state, ok, ok, ok.astype(float), ok, ok, ok)
    with pytest.raises(ValueError, match="kind has 2 rows, expected 3"):
        aggregate(state, ok, ok[:2], ok, ok, ok, ok)
    with pytest.raises(TypeError, match="threshold_ms must be an integer"):
        aggregate(state, ok, ok, ok, ok, ok, ok, threshold_ms=20.5)
    with pytest.raises(TypeError, match="PaneState"):
        aggregate("state", ok, ok, ok, ok, ok, ok)


def test_narrow_integer_columns_are_accepted():
    state = PaneState.empty(2)
    aggregate(
        state,
        np.array([0, 1], dtype=np.int32),
        np.array([EventKind.QUEUED, EventKind.ANSWERED], dtype=np.int8),
        np.array([-1, 1500], dtype=np.int32),
        np.zeros(2, np.int16),
        np.zeros(2, np.int16),
        np.zeros(2, np.int16),
        threshold_ms=np.array([20_000, 1_000], dtype=np.int32),
    )
    assert state.records[0, Field.ENTERED] == 1
    assert state.records[1, Field.ANSWERED] == 1 and state.records[1, Field.ANSWERED_WITHIN] == 0
