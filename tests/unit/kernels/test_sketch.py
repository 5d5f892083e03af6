"""Wait sketch: relative-error bound against exact quantiles, merge, serialisation, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kernels import DEFAULT_QUANTILES, DEFAULT_SPEC, Sketches, SketchSpec, WaitSketch, quantile_rank

QS = (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0)


def expected_answer(values: np.ndarray, q: float, spec: SketchSpec) -> float:
    """The exact value of the rank rule's rank, with the documented edge answers."""
    exact = float(np.quantile(values, q, method="lower"))
    if exact == 0.0:
        return 0.0
    if exact < spec.min_value:
        return spec.min_value
    if exact > spec.max_value:
        return spec.max_value
    return exact


def assert_within_alpha(values, got, qs, spec: SketchSpec) -> None:
    values = np.asarray(values, dtype=np.float64)
    for q, answer in zip(qs, got):
        exact = float(np.quantile(values, q, method="lower"))
        want = expected_answer(values, q, spec)
        if spec.min_value <= exact <= spec.max_value:
            assert abs(answer - exact) <= spec.alpha * exact * (1 + 1e-12), (q, answer, exact)
        else:
            assert answer == want, (q, answer, exact)


wait_values = hnp.arrays(
    np.float64,
    st.integers(1, 400),
    elements=st.one_of(
        st.floats(1.0, 86_400_000.0),
        st.integers(0, 3_600_000).map(float),
        st.just(0.0),
        st.floats(0.0, 1.0, exclude_max=True),
        st.floats(86_400_000.0, 1e12, exclude_min=True),
    ),
)


@settings(deadline=None, max_examples=150)
@given(values=wait_values)
def test_quantiles_within_alpha_of_numpy_lower(values):
    sketch = WaitSketch()
    sketch.add(values)
    assert_within_alpha(values, sketch.quantiles(QS), QS, DEFAULT_SPEC)
    assert sketch.count == values.size


@settings(deadline=None, max_examples=60)
@given(
    alpha=st.sampled_from([0.001, 0.005, 0.02, 0.05, 0.2]),
    values=hnp.arrays(np.float64, st.integers(1, 200), elements=st.floats(1e-3, 1e6)),
)
def test_bound_holds_for_other_specs(alpha, values):
    spec = SketchSpec(alpha=alpha, min_value=1e-3, max_value=1e6)
    sketch = WaitSketch(spec)
    sketch.add(values)
    assert_within_alpha(values, sketch.quantiles(QS), QS, spec)


@pytest.mark.parametrize("alpha", [0.001, 0.01, 0.05, 0.3])
def test_every_bucket_answer_is_within_alpha_of_its_edges(alpha):
    spec = SketchSpec(alpha=alpha)
    values = spec.bucket_values
    step = np.tile(np.arange(spec.sub_buckets), spec.n_octaves)
    octave = np.repeat(np.arange(spec.n_octaves), spec.sub_buckets) + spec.min_exponent
    low = np.ldexp(1.0 + step / spec.sub_buckets, octave)
    high = np.ldexp(1.0 + (step + 1) / spec.sub_buckets, octave)
    assert np.all(np.abs(values - low) <= alpha * low)
    assert np.all(np.abs(values - high) <= alpha * high)


def test_values_land_in_the_bucket_that_contains_them():
    rng = np.random.default_rng(7)
    values = np.exp(rng.uniform(0, math.log(86_400_000.0), 20_000))
    rows = Sketches.empty(values.size)
    rows.insert(np.arange(values.size), values)
    bucket = rows.buckets.argmax(axis=1)
    spec = DEFAULT_SPEC
    octave = bucket // spec.sub_buckets + spec.min_exponent
    step = bucket % spec.sub_buckets
    low = np.ldexp(1.0 + step / spec.sub_buckets, octave)
    high = np.ldexp(1.0 + (step + 1) / spec.sub_buckets, octave)
    assert np.all((low <= values * (1 + 1e-9)) & (values < high * (1 + 1e-9)))
    assert np.array_equal(rows.buckets.sum(axis=1), np.ones(values.size))


def test_empty_sketch_answers_nan():
    assert np.isnan(WaitSketch().quantiles()).all()
    assert WaitSketch().count == 0


def test_one_value():
    sketch = WaitSketch()
    sketch.add([12_345])
    assert np.allclose(sketch.quantiles(), 12_345, rtol=0.01)


def test_all_zeros_answer_exactly_zero():
    sketch = WaitSketch()
    sketch.add(np.zeros(1000, dtype=np.int64))
    assert sketch.zero_count == 1000
    assert (sketch.quantiles() == 0.0).all()


def test_constant_values():
    sketch = WaitSketch()
    sketch.add(np.full(5000, 20_000, dtype=np.int64))
    assert np.allclose(sketch.quantiles(), 20_000, rtol=0.01)


def test_range_edges_are_inside_the_guarantee():
    sketch = WaitSketch()
    sketch.add([DEFAULT_SPEC.min_value, DEFAULT_SPEC.max_value])
    low, high = sketch.quantiles([0.0, 1.0])
    assert abs(low - 1.0) <= 0.01
    assert abs(high - 86_400_000.0) <= 0.01 * 86_400_000.0
    assert sketch.underflow_count == 0 and sketch.overflow_count == 0


def test_overflow_and_underflow_are_counted_and_reported_as_edges():
    sketch = WaitSketch()
    sketch.add([0.5, 10.0, 86_400_001.0, math.inf])
    assert sketch.underflow_count == 1
    assert sketch.overflow_count == 2
    assert sketch.count == 4
    assert list(sketch.quantiles([0.0, 0.4, 1.0])) == [1.0, pytest.approx(10.0, rel=0.01), 86_400_000.0]


def test_huge_n_int_and_float_inputs_agree():
    rng = np.random.default_rng(11)
    waits = rng.lognormal(mean=9.5, sigma=1.4, size=2_000_000).astype(np.int64)
    as_int, as_float = WaitSketch(), WaitSketch()
    as_int.add(waits)
    as_float.add(waits.astype(np.float64))
    assert as_int == as_float
    assert_within_alpha(waits, as_int.quantiles(QS), QS, DEFAULT_SPEC)


def test_rank_rule_matches_numpy_lower():
    values = np.arange(101.0)
    for q in (0.0, 0.5, 0.9, 0.95, 0.99, 1.0):
        assert values[quantile_rank(values.size, q)] == np.quantile(values, q, method="lower")


sketch_inputs = hnp.arrays(np.int64, st.integers(0, 60), elements=st.integers(0, 10**9))


@settings(deadline=None, max_examples=60)
@given(a=sketch_inputs, b=sketch_inputs, c=sketch_inputs)
def test_merge_is_associative_commutative_and_does_not_mutate(a, b, c):
    sa, sb, sc = WaitSketch(), WaitSketch(), WaitSketch()
    sa.add(a)
    sb.add(b)
    sc.add(c)
    before = [s.to_bytes() for s in (sa, sb, sc)]
    left = sa.merge(sb).merge(sc)
    right = sa.merge(sb.merge(sc))
    assert left == right
    assert sa.merge(sb) == sb.merge(sa)
    assert [s.to_bytes() for s in (sa, sb, sc)] == before
    together = WaitSketch()
    together.add(np.concatenate([a, b, c]))
    assert left == together


@settings(deadline=None, max_examples=60)
@given(values=wait_values)
def test_bytes_round_trip(values):
    sketch = WaitSketch()
    sketch.add(values)
    data = sketch.to_bytes()
    assert WaitSketch.from_bytes(data) == sketch
    assert data[:4] == b"CSWS" and data[4] == 1


def test_serialised_sketch_is_compact():
    sketch = WaitSketch()
    sketch.add(np.random.default_rng(3).exponential(30_000, 100_000))
    assert len(sketch.to_bytes()) < 2_000  # a dense row would be 11 KB


def test_many_rows_round_trip_with_other_spec():
    spec = SketchSpec(alpha=0.02, min_value=0.5, max_value=3600.0)
    rows = Sketches.empty(50, spec)
    rng = np.random.default_rng(5)
    rows.insert(rng.integers(0, 50, 5000), rng.exponential(100.0, 5000))
    copy = Sketches.from_bytes(rows.to_bytes())
    assert copy == rows and copy.spec == spec


def test_decoding_rejects_garbage_and_other_versions():
    data = WaitSketch().to_bytes()
    with pytest.raises(ValueError, match="not a callslo sketch block"):
        Sketches.from_bytes(b"nope" + data[4:])
    with pytest.raises(ValueError, match="format version 9"):
        Sketches.from_bytes(data[:4] + bytes([9]) + data[5:])
    sketch = WaitSketch()
    sketch.add([5, 50, 500])
    full = sketch.to_bytes()
    with pytest.raises(ValueError, match="truncated|claims"):
        Sketches.from_bytes(full[:-1])
    with pytest.raises(ValueError, match="trailing"):
        Sketches.from_bytes(full + b"\x00")
    with pytest.raises(TypeError):
        Sketches.from_bytes("text")


def test_grouped_quantiles_equal_quantiles_of_merged_rows():
    rng = np.random.default_rng(9)
    rows = Sketches.empty(30)
    rows.insert(rng.integers(0, 30, 20_000), rng.exponential(40_000, 20_000).astype(np.int64))
    offsets = np.array([0, 3, 3, 10, 30])
    members = rng.permutation(30)
    merged = rows.merge_rows(offsets, members)
    on_the_fly = rows.quantiles(DEFAULT_QUANTILES, offsets, members)
    assert np.array_equal(merged.quantiles(), on_the_fly, equal_nan=True)
    assert np.isnan(on_the_fly[1]).all()  # the empty group


def test_insert_into_rows_matches_one_sketch_per_row():
    rng = np.random.default_rng(4)
    rows_idx = rng.integers(0, 4, 1000)
    values = rng.exponential(10_000, 1000)
    rows = Sketches.empty(4)
    rows.insert(rows_idx, values)
    for row in range(4):
        single = WaitSketch()
        single.add(values[rows_idx == row])
        assert np.array_equal(rows.quantiles()[row], single.quantiles(), equal_nan=True)


@pytest.mark.parametrize(
    ("values", "error", "match"),
    [
        ([1.0, float("nan")], ValueError, r"values\[1\] = nan"),
        ([1, -5], ValueError, r"values\[1\] = -5"),
        (np.array(["a"]), TypeError, "numeric"),
        (np.ones((2, 2)), ValueError, "1-D"),
    ],
)
def test_add_rejects_bad_values_and_inserts_nothing(values, error, match):
    sketch = WaitSketch()
    with pytest.raises(error, match=match):
        sketch.add(values)
    assert sketch.count == 0


@pytest.mark.parametrize("dtype", [np.int64, np.float64])
def test_a_bad_value_late_in_the_input_leaves_the_sketch_as_it_was(dtype):
    sketch = WaitSketch()
    sketch.add([7, 70, 700])
    before = sketch.to_bytes()
    good = [0, 0, 3, 5_000, 10**12] if dtype is np.int64 else [0.0, 0.5, 3.0, 5_000.0, 1e12]
    with pytest.raises(ValueError, match="nothing was inserted"):
        sketch.add(np.array(good + [-1] + good, dtype=dtype))
    assert sketch.to_bytes() == before
    rows = Sketches.empty(3)
    rows.insert([0, 1, 2], [1.0, 2.0, 3.0])
    kept = rows.copy()
    with pytest.raises(ValueError, match=r"values\[5\]"):
        rows.insert([0, 1, 2, 0, 1, 2], np.array([4, 5, 6, 0, 10**12, -3], dtype=dtype))
    assert rows == kept


def test_insert_rejects_bad_rows():
    rows = Sketches.empty(2)
    with pytest.raises(ValueError, match=r"rows\[1\] = 2"):
        rows.insert([0, 2], [1.0, 2.0])
    with pytest.raises(ValueError, match="expected 2"):
        rows.insert([0], [1.0, 2.0])
    with pytest.raises(TypeError, match="integer"):
        rows.insert([0.0, 1.0], [1.0, 2.0])
    assert rows.counts.sum() == 0


@pytest.mark.parametrize("qs", [[], [1.5], [-0.1], [float("nan")]])
def test_quantiles_reject_out_of_range_q(qs):
    with pytest.raises(ValueError, match="quantiles in"):
        WaitSketch().quantiles(qs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 0.5}, "alpha"),
        ({"min_value": 0.0}, "min_value"),
        ({"max_value": 0.5}, "max_value"),
        ({"max_value": math.inf}, "max_value"),
        ({"alpha": 1e-6, "min_value": 1e-300, "max_value": 1e300}, "buckets"),
    ],
)
def test_spec_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SketchSpec(**kwargs)
    with pytest.raises(TypeError):
        SketchSpec(alpha="0.01")


def test_default_geometry():
    assert DEFAULT_SPEC.sub_buckets == 50
    assert DEFAULT_SPEC.n_octaves == 27
    assert DEFAULT_SPEC.n_buckets == 1350


def test_merge_rejects_other_specs():
    with pytest.raises(ValueError, match="cannot merge"):
        WaitSketch().merge(WaitSketch(SketchSpec(alpha=0.02)))
    with pytest.raises(TypeError):
        WaitSketch().merge("x")


def test_state_arrays_are_checked():
    with pytest.raises(TypeError, match="int64"):
        Sketches(np.zeros((1, DEFAULT_SPEC.summary_width), np.int32), np.zeros((1, 1350), np.int64))
    with pytest.raises(ValueError, match="shape"):
        Sketches(np.zeros((1, DEFAULT_SPEC.summary_width), np.int64), np.zeros((2, 1350), np.int64))
