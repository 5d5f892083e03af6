"""Sparse wait-time sketches: only the non-empty buckets of a sketch, for state kept per minute.

A dense :class:`~kernels.sketch.Sketches` row holds every bucket of its spec (about 12 KB for
1 % from 1 ms to 7 days). That suits the few open intervals of a queue, not a ring of sixty
1-minute panes per queue, where most buckets are empty. Here a sketch is two arrays:

    pos    int64  position of a non-empty cell, ascending in value order:
                  0 = the zero bucket, 1 = underflow, 2 + i = bucket i, 2 + n_buckets = overflow
    count  int64  its count (> 0)

Positions follow value order, so a merge is a concatenation and quantiles come from one
sort and one cumulative sum over all groups at once. Quantiles follow the rank rule of
:mod:`kernels.sketch` and answer exactly what the dense sketch with the same counts answers.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ._jit import jit
from ._validate import float64_array, int64_column
from .mapping import OVERFLOW_COL, UNDERFLOW_COL, ZERO_COL, SketchSpec, bucket_of
from .sketch import Sketches, check_quantiles

__all__ = ["SparseSketch", "sparse_rows", "sparse_groups", "sparse_groups_flat", "merge_sparse",
           "sparse_group_quantiles", "sparse_group_summary", "position_values"]

SparseSketch = tuple[np.ndarray, np.ndarray]
"""``(pos, count)``: see the module docstring."""

_EMPTY: SparseSketch = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))


def position_values(spec: SketchSpec) -> np.ndarray:
    """The value answered for every position: 0, ``min_value``, the buckets, ``max_value``."""
    return np.concatenate(([0.0, spec.min_value], spec.bucket_values, [spec.max_value]))


@jit
def _positions(values, geometry, n_buckets, out):
    for i in range(values.size):
        column, bucket = bucket_of(values[i], geometry)
        if column == ZERO_COL:
            out[i] = 0
        elif column == UNDERFLOW_COL:
            out[i] = 1
        elif column == OVERFLOW_COL:
            out[i] = 2 + n_buckets
        else:
            out[i] = 2 + bucket


def sparse_groups(spec: SketchSpec, group: Any, values: Any, n_groups: int
                  ) -> list[SparseSketch]:
    """One sparse sketch per group ``0..n_groups-1`` of ``values[i]`` counted in
    ``group[i]``: the counts :meth:`Sketches.insert` would make, without a dense row."""
    pos, counts, bounds = sparse_groups_flat(spec, group, values, n_groups)
    return [(pos[bounds[g]:bounds[g + 1]], counts[bounds[g]:bounds[g + 1]])
            for g in range(n_groups)]


def sparse_groups_flat(spec: SketchSpec, group: Any, values: Any, n_groups: int
                       ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """:func:`sparse_groups` as ``(pos, counts, bounds)``: group ``g`` is
    ``pos[bounds[g]:bounds[g + 1]]`` and the same slice of ``counts``."""
    values = float64_array("values", values).reshape(-1)
    group = int64_column("group", np.atleast_1d(group))
    if group.size != values.size:
        raise ValueError(f"group has {group.size} entries, values {values.size}")
    if values.size and not (np.all(values >= 0.0)):
        raise ValueError("values must be >= 0 and not NaN")
    if group.size and (group.min() < 0 or group.max() >= n_groups):
        raise ValueError(f"group entries must be in 0..{n_groups - 1}")
    positions = np.empty(values.size, dtype=np.int64)
    _positions(values, spec.geometry, spec.n_buckets, positions)
    width = spec.n_buckets + 3
    cells, counts = np.unique(group * width + positions, return_counts=True)
    owners = cells // width
    bounds = np.searchsorted(owners, np.arange(n_groups + 1))
    return cells - owners * width, counts.astype(np.int64), bounds.tolist()


def sparse_rows(sketches: Sketches, rows: Any) -> list[SparseSketch]:
    """The sparse form of the given rows of ``sketches``."""
    out = []
    for row in np.asarray(rows, dtype=np.int64).tolist():
        summary = sketches.summary[row]
        nonzero = np.flatnonzero(sketches.buckets[row])
        edges = (summary[ZERO_COL], summary[UNDERFLOW_COL], summary[OVERFLOW_COL])
        if not nonzero.size and not any(edges):
            out.append(_EMPTY)
            continue
        pos = [np.asarray([p for p, c in zip((0, 1), edges[:2]) if c], dtype=np.int64),
               nonzero + 2]
        counts = [np.asarray([c for c in edges[:2] if c], dtype=np.int64),
                  sketches.buckets[row, nonzero]]
        if edges[2]:
            pos.append(np.asarray([2 + sketches.spec.n_buckets], dtype=np.int64))
            counts.append(np.asarray([edges[2]], dtype=np.int64))
        out.append((np.concatenate(pos), np.concatenate(counts)))
    return out


def merge_sparse(parts: Sequence[SparseSketch]) -> SparseSketch:
    """One sparse sketch holding every count of ``parts`` (none of them is modified)."""
    parts = [p for p in parts if p[0].size]
    if not parts:
        return _EMPTY
    if len(parts) == 1:
        return parts[0][0].copy(), parts[0][1].copy()
    if len(parts) == 2:
        # The common case (a minute pane and a batch's part of it): one linear merge of two
        # ascending position lists instead of a sort.
        (a_pos, a_counts), (b_pos, b_counts) = parts
        pos = np.empty(a_pos.size + b_pos.size, dtype=np.int64)
        counts = np.empty_like(pos)
        used = _merge_two(np.ascontiguousarray(a_pos, dtype=np.int64),
                          np.ascontiguousarray(a_counts, dtype=np.int64),
                          np.ascontiguousarray(b_pos, dtype=np.int64),
                          np.ascontiguousarray(b_counts, dtype=np.int64), pos, counts)
        return pos[:used], counts[:used]
    pos = np.concatenate([p[0] for p in parts])
    counts = np.concatenate([p[1] for p in parts])
    unique, inverse = np.unique(pos, return_inverse=True)
    return unique, np.bincount(inverse, weights=counts).astype(np.int64)


@jit
def _merge_two(a_pos, a_counts, b_pos, b_counts, pos, counts):
    i = j = used = 0
    while i < a_pos.size or j < b_pos.size:
        if j >= b_pos.size or (i < a_pos.size and a_pos[i] < b_pos[j]):
            pos[used], counts[used] = a_pos[i], a_counts[i]
            i += 1
        elif i >= a_pos.size or b_pos[j] < a_pos[i]:
            pos[used], counts[used] = b_pos[j], b_counts[j]
            j += 1
        else:
            pos[used], counts[used] = a_pos[i], a_counts[i] + b_counts[j]
            i += 1
            j += 1
        used += 1
    return used


def sparse_group_quantiles(spec: SketchSpec, groups: Sequence[Sequence[SparseSketch]],
                           qs: Sequence[float]) -> np.ndarray:
    """Quantiles of groups of sparse sketches (group ``g`` merges ``groups[g]``).

    Returns ``(len(groups), len(qs))`` float64, NaN for an empty group: the same answers as
    :meth:`kernels.sketch.Sketches.quantiles` on the merged dense sketches.
    """
    return sparse_group_summary(spec, groups, qs)[0]


def sparse_group_summary(spec: SketchSpec, groups: Sequence[Sequence[SparseSketch]],
                         qs: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sparse_group_quantiles` and each group's total count (int64), from one pass."""
    qs_array = check_quantiles(qs)
    n_groups = len(groups)
    out = np.full((n_groups, qs_array.size), np.nan)
    sizes = [sum(part[0].size for part in group) for group in groups]
    if not any(sizes):
        return out, np.zeros(n_groups, dtype=np.int64)
    group_of = np.repeat(np.arange(n_groups, dtype=np.int64), sizes)
    pos = np.concatenate([part[0] for group in groups for part in group])
    counts = np.concatenate([part[1] for group in groups for part in group])
    order = np.lexsort((pos, group_of))
    group_of, pos, counts = group_of[order], pos[order], counts[order]
    cumulative = np.cumsum(counts)
    totals = np.bincount(group_of, weights=counts, minlength=n_groups).astype(np.int64)
    before = np.concatenate(([0], np.cumsum(totals)[:-1]))
    values = position_values(spec)
    present = totals > 0
    for j, q in enumerate(qs_array.tolist()):
        # rank floor((n - 1) * q), 0-based: the first cell whose cumulative count exceeds it.
        ranks = np.floor((totals[present] - 1) * q).astype(np.int64)
        index = np.searchsorted(cumulative, before[present] + ranks + 1, side="left")
        out[present, j] = values[pos[index]]
    return out, totals
