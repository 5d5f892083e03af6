"""The kernel benchmark still runs and measures what it claims (tiny sizes)."""

from __future__ import annotations

from bench import kernels as bench


def test_sketch_benchmark_reports_every_contender_within_accuracy():
    result = bench.bench_sketch(20_000, repeats=1, slow_repeats=1)
    ours = result["contenders"]["callslo WaitSketch"]
    assert ours["max_rel_error"] <= 0.01
    assert result["contenders"]["numpy.percentile"]["max_rel_error"] == 0.0
    assert {"ddsketch (pure Python)", "hdrhistogram (2 digits)"} <= set(result["contenders"])


def test_grouped_benchmark_agrees_with_the_exact_numpy_methods():
    result = bench.bench_grouped(5_000, 500, repeats=1)
    assert result["max_rel_error"] <= 0.01
    assert result["queues_with_data"] > 0


def test_erlang_benchmark_agrees_with_pyworkforce():
    result = bench.bench_erlang(40, repeats=1, slow_repeats=1)
    assert result["agreement_with_pyworkforce"] == 1.0
