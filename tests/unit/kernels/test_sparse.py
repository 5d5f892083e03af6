"""Sparse sketches answer exactly what the dense sketches with the same counts answer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import (SketchSpec, Sketches, merge_sparse, sparse_group_quantiles,
                     sparse_group_summary, sparse_rows)
from kernels.sparse import sparse_groups

SPEC = SketchSpec(alpha=0.01, min_value=1.0, max_value=3_600_000.0)
QS = (0.0, 0.5, 0.9, 0.99, 1.0)


def _dense(values_per_row: list[np.ndarray]) -> Sketches:
    sketches = Sketches.empty(len(values_per_row), SPEC)
    for row, values in enumerate(values_per_row):
        if values.size:
            sketches.insert(np.full(values.size, row), values)
    return sketches


def _waits(rng: np.random.Generator, n: int) -> np.ndarray:
    # Exponential waits plus the edges: exact zeros, underflow (< 1 ms) and overflow (> 1 h).
    values = rng.exponential(20_000.0, n)
    values[rng.random(n) < 0.05] = 0.0
    values[rng.random(n) < 0.02] = 0.5
    values[rng.random(n) < 0.02] = 7_200_000.0
    return values


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_groups_of_sparse_panes_answer_like_the_merged_dense_sketch(seed):
    rng = np.random.default_rng(seed)
    panes = [_waits(rng, int(rng.integers(0, 60))) for _ in range(40)]
    dense = _dense(panes)
    sparse = sparse_rows(dense, np.arange(len(panes)))
    # Rolling windows: overlapping groups of consecutive panes, and an empty group.
    groups = [list(range(start, min(start + 15, len(panes)))) for start in range(0, 40, 5)] + [[]]
    offsets = np.cumsum([0] + [len(g) for g in groups])
    rows = np.asarray([r for g in groups for r in g], dtype=np.int64)
    expected = dense.quantiles(QS, offsets, rows)
    got = sparse_group_quantiles(SPEC, [[sparse[r] for r in g] for g in groups], QS)
    np.testing.assert_array_equal(got, expected)
    assert np.isnan(got[-1]).all()
    same, totals = sparse_group_summary(SPEC, [[sparse[r] for r in g] for g in groups], QS)
    np.testing.assert_array_equal(same, expected)
    assert totals.tolist() == [sum(int(sparse[r][1].sum()) for r in g) for g in groups]


def test_merge_adds_counts_and_leaves_its_inputs_alone():
    rng = np.random.default_rng(7)
    a_values, b_values = _waits(rng, 500), _waits(rng, 300)
    dense = _dense([a_values, b_values, np.concatenate([a_values, b_values])])
    a, b, both = sparse_rows(dense, [0, 1, 2])
    a_before = (a[0].copy(), a[1].copy())
    merged = merge_sparse([a, b])
    np.testing.assert_array_equal(merged[0], both[0])
    np.testing.assert_array_equal(merged[1], both[1])
    np.testing.assert_array_equal(a[0], a_before[0])
    np.testing.assert_array_equal(a[1], a_before[1])
    assert merged[1].sum() == 800


def test_an_empty_row_is_empty_and_quantiles_of_nothing_are_nan():
    (pos, counts), = sparse_rows(Sketches.empty(1, SPEC), [0])
    assert pos.size == 0 and counts.size == 0
    assert np.isnan(sparse_group_quantiles(SPEC, [[]], [0.5])).all()
    assert sparse_group_summary(SPEC, [[], []], [0.5])[1].tolist() == [0, 0]


def test_sparse_groups_count_like_dense_inserts():
    rng = np.random.default_rng(11)
    values = _waits(rng, 3000)
    group = rng.integers(0, 7, values.size)
    dense = _dense([values[group == g] for g in range(8)])  # group 7 stays empty
    expected = sparse_rows(dense, np.arange(8))
    got = sparse_groups(SPEC, group, values, 8)
    for (pos, counts), (want_pos, want_counts) in zip(got, expected):
        np.testing.assert_array_equal(pos, want_pos)
        np.testing.assert_array_equal(counts, want_counts)
    with pytest.raises(ValueError, match=">= 0"):
        sparse_groups(SPEC, [0], [-1.0], 1)


@settings(derandomize=True, database=None, deadline=None, max_examples=200)
@given(a=st.dictionaries(st.integers(0, 60), st.integers(1, 9), max_size=12),
       b=st.dictionaries(st.integers(0, 60), st.integers(1, 9), max_size=12))
def test_merging_two_equals_the_general_merge(a, b):
    def sketch(cells):
        pos = np.asarray(sorted(cells), dtype=np.int64)
        return pos, np.asarray([cells[p] for p in pos.tolist()], dtype=np.int64)

    pos, counts = merge_sparse([sketch(a), sketch(b)])
    want = {p: a.get(p, 0) + b.get(p, 0) for p in set(a) | set(b)}
    assert dict(zip(pos.tolist(), counts.tolist())) == want
    assert pos.tolist() == sorted(want)
    # three parts take the general path: the same cells
    third = merge_sparse([sketch(a), sketch(b), sketch({61: 1})])
    assert dict(zip(third[0].tolist(), third[1].tolist())) == {**want, 61: 1}
