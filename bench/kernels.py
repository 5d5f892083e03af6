"""Benchmarks of callslo's kernels against the libraries an engineer would reach for instead.

Run from the repository root::

    python -m bench.kernels            # full sizes, prints a table
    python -m bench.kernels --json     # the same figures as one JSON object
    python -m bench.kernels --quick    # 10x smaller inputs, for a smoke run

Every comparison runs in the same process on the same arrays; fast contenders
report the median of ``--repeats`` runs, contenders that take seconds per run
(pure-Python per-value loops, pyworkforce) run ``--slow-repeats`` times. The
machine is shared: read the ratios, which are measured side by side, rather
than absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # allow `python bench/kernels.py`
    sys.path.insert(0, str(ROOT))

from kernels import EventKind, PaneState, WaitSketch, aggregate, pane_quantiles, required_agents  # noqa: E402

QS = (0.5, 0.9, 0.99)


def timed(func: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls and the last result."""
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def relative_errors(answers: Any, exact: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(answers, dtype=np.float64) - exact) / exact))


def contender_row(seconds: float, answers: Any, exact: np.ndarray, repeats: int) -> dict[str, float]:
    return {"seconds": seconds, "max_rel_error": relative_errors(answers, exact), "repeats": repeats}


# --- 1. one sketch -----------------------------------------------------------


def bench_sketch(n: int, repeats: int, slow_repeats: int) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    waits = np.maximum(rng.lognormal(mean=9.6, sigma=1.2, size=n), 1.0)  # ms, median ~15 s
    waits = np.round(waits).astype(np.int64)
    as_float = waits.astype(np.float64)
    exact = np.quantile(waits, QS, method="lower").astype(np.float64)

    def callslo() -> np.ndarray:
        sketch = WaitSketch()
        sketch.add(waits)
        return sketch.quantiles(QS)

    def numpy_percentile() -> np.ndarray:
        return np.percentile(waits, [100 * q for q in QS], method="lower")

    rows: dict[str, dict[str, float]] = {}
    callslo()  # compile (or load from cache) outside the timing
    for name, func, reps in (
        ("callslo WaitSketch", callslo, repeats),
        ("numpy.percentile", numpy_percentile, repeats),
    ):
        seconds, answers = timed(func, reps)
        rows[name] = contender_row(seconds, answers, exact, reps)

    try:
        from fastdigest import TDigest as FastDigest

        def fastdigest() -> list[float]:
            digest = FastDigest.from_values(as_float)
            return [digest.quantile(q) for q in QS]

        seconds, answers = timed(fastdigest, repeats)
        rows["fastdigest (Rust t-digest)"] = contender_row(seconds, answers, exact, repeats)
    except ImportError:
        pass
    try:
        from pytdigest import TDigest as PyTDigest

        def pytdigest() -> list[float]:
            digest = PyTDigest.compute(as_float)
            return [digest.inverse_cdf(q) for q in QS]

        seconds, answers = timed(pytdigest, repeats)
        rows["pytdigest (C t-digest)"] = contender_row(seconds, answers, exact, repeats)
    except ImportError:
        pass
    try:
        from ddsketch import DDSketch

        def ddsketch() -> list[float]:
            sketch = DDSketch(relative_accuracy=0.01)
            add = sketch.add
            for value in as_float.tolist():
                add(value)
            return [sketch.get_quantile_value(q) for q in QS]

        seconds, answers = timed(ddsketch, slow_repeats)
        rows["ddsketch (pure Python)"] = contender_row(seconds, answers, exact, slow_repeats)
    except ImportError:
        pass
    try:
        from hdrh.histogram import HdrHistogram

        def hdrhistogram() -> list[float]:
            histogram = HdrHistogram(1, 86_400_000, 2)
            record = histogram.record_value
            for value in waits.tolist():
                record(value)
            return [histogram.get_value_at_percentile(100 * q) for q in QS]

        seconds, answers = timed(hdrhistogram, slow_repeats)
        rows["hdrhistogram (2 digits)"] = contender_row(seconds, answers, exact, slow_repeats)
    except ImportError:
        pass
    ours = rows["callslo WaitSketch"]["seconds"]
    for row in rows.values():
        row["x_slower_than_callslo"] = row["seconds"] / ours
    return {"n_values": n, "quantiles": list(QS), "contenders": rows}


# --- 2. grouped --------------------------------------------------------------


def zipf_queues(rng: np.random.Generator, n_events: int, n_queues: int, exponent: float = 1.1) -> np.ndarray:
    weights = 1.0 / np.arange(1, n_queues + 1) ** exponent
    return rng.choice(n_queues, size=n_events, p=weights / weights.sum()).astype(np.int64)


def numpy_lexsort_quantiles(queue: np.ndarray, wait: np.ndarray, n_queues: int) -> np.ndarray:
    """Exact per-queue quantiles (rank rule 'lower'): lexsort, then one gather per quantile."""
    order = np.lexsort((wait, queue))
    sorted_wait = wait[order]
    counts = np.bincount(queue, minlength=n_queues)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    out = np.full((n_queues, len(QS)), np.nan)
    present = counts > 0
    for k, q in enumerate(QS):
        rank = starts[present] + np.floor((counts[present] - 1) * q).astype(np.int64)
        out[present, k] = sorted_wait[rank]
    return out


def numpy_key_sort_quantiles(queue: np.ndarray, wait: np.ndarray, n_queues: int) -> np.ndarray:
    """Exact per-queue quantiles from one sort of a packed (queue, wait) int64 key."""
    key = np.sort((queue << 32) | wait)
    sorted_wait = key & 0xFFFFFFFF
    counts = np.bincount(queue, minlength=n_queues)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    out = np.full((n_queues, len(QS)), np.nan)
    present = counts > 0
    for k, q in enumerate(QS):
        rank = starts[present] + np.floor((counts[present] - 1) * q).astype(np.int64)
        out[present, k] = sorted_wait[rank]
    return out


def bench_grouped(n_events: int, n_queues: int, repeats: int) -> dict[str, Any]:
    rng = np.random.default_rng(2)
    queue = zipf_queues(rng, n_events, n_queues)
    wait = np.round(np.maximum(rng.lognormal(9.6, 1.2, n_events), 0)).astype(np.int64)
    zeros = np.zeros(n_events, dtype=np.int64)
    answered = np.full(n_events, EventKind.ANSWERED, dtype=np.int64)
    # A realistic mix for the ingest figure: every kind, a quarter of rows answered.
    kind_share = [0.3, 0.25, 0.05, 0.02, 0.2, 0.15, 0.03]
    mixed_kind = rng.choice(len(EventKind), size=n_events, p=kind_share).astype(np.int64)
    talk = rng.integers(0, 600_000, n_events)

    state = PaneState.empty(n_queues)
    # State is long-lived in the engine: fault its pages in before timing.
    state.sketches.buckets.fill(0)
    state.sketches.summary.fill(0)
    aggregate(state, queue[:64], answered[:64], wait[:64], zeros[:64], zeros[:64], zeros[:64])
    pane_quantiles(state, QS)

    def ingest_answered() -> None:
        state.reset(np.arange(n_queues))
        start = time.perf_counter()
        aggregate(state, queue, answered, wait, zeros, zeros, zeros)
        return time.perf_counter() - start

    def ingest_mixed() -> None:
        start = time.perf_counter()
        aggregate(state, queue, mixed_kind, wait, talk, zeros, zeros)
        return time.perf_counter() - start

    ingest_s = float(np.median([ingest_answered() for _ in range(repeats)]))
    quantile_s, ours = timed(lambda: pane_quantiles(state, QS), repeats)
    mixed_s = float(np.median([ingest_mixed() for _ in range(repeats)]))

    lexsort_s, exact = timed(lambda: numpy_lexsort_quantiles(queue, wait, n_queues), repeats)
    keysort_s, exact_key = timed(lambda: numpy_key_sort_quantiles(queue, wait, n_queues), repeats)
    assert np.array_equal(exact, exact_key, equal_nan=True)
    present = ~np.isnan(exact[:, 0])
    error = float(np.max(np.abs(ours[present] - exact[present]) / np.maximum(exact[present], 1.0)))
    best_numpy = min(lexsort_s, keysort_s)
    return {
        "n_events": n_events,
        "n_queues": n_queues,
        "queues_with_data": int(present.sum()),
        "callslo_ingest_ns_per_event": ingest_s / n_events * 1e9,
        "callslo_ingest_mixed_kinds_ns_per_event": mixed_s / n_events * 1e9,
        "callslo_quantiles_all_queues_ms": quantile_s * 1e3,
        "callslo_total_s": ingest_s + quantile_s,
        "numpy_lexsort_s": lexsort_s,
        "numpy_packed_key_sort_s": keysort_s,
        "x_faster_than_best_numpy": best_numpy / (ingest_s + quantile_s),
        "max_rel_error": error,
    }


# --- 3. Erlang C ---------------------------------------------------------------


def bench_erlang(n: int, repeats: int, slow_repeats: int) -> dict[str, Any]:
    rng = np.random.default_rng(3)
    arrivals = rng.integers(5, 1500, n).astype(np.float64)  # per 30-minute interval
    aht_s = rng.uniform(120, 600, n)
    interval_s, threshold_s, target = 1800.0, 20.0, 0.8
    required_agents(arrivals[:4], interval_s, aht_s[:4], threshold_s, target)
    required_agents(arrivals[:4], interval_s, aht_s[:4], threshold_s, target, patience_s=120.0)
    ours_s, ours = timed(lambda: required_agents(arrivals, interval_s, aht_s, threshold_s, target), repeats)
    erlang_a_s, _ = timed(
        lambda: required_agents(arrivals, interval_s, aht_s, threshold_s, target, patience_s=120.0), repeats
    )
    result: dict[str, Any] = {
        "n_queue_intervals": n,
        "callslo_erlang_c_ms": ours_s * 1e3,
        "callslo_erlang_a_ms": erlang_a_s * 1e3,
        "mean_traffic_erlangs": float(ours.traffic_erlangs.mean()),
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pyworkforce.queuing import ErlangC
    except ImportError:
        return result

    def pyworkforce() -> np.ndarray:
        agents = np.empty(n, dtype=np.int64)
        for i in range(n):
            model = ErlangC(
                transactions=arrivals[i], aht=aht_s[i] / 60, asa=threshold_s / 60, interval=interval_s / 60
            )
            agents[i] = model.required_positions(service_level=target)["raw_positions"]
        return agents

    theirs_s, theirs = timed(pyworkforce, slow_repeats)
    result["pyworkforce_loop_s"] = theirs_s
    result["x_faster_than_pyworkforce"] = theirs_s / ours_s
    # pyworkforce starts at round(a + 1), so it overshoots where the answer is a + 1 - 0.5..1.
    result["agreement_with_pyworkforce"] = float(np.mean(theirs == ours.raw_agents))
    return result


# --- compile time -------------------------------------------------------------

_FIRST_CALLS = textwrap.dedent(
    """
    import time
    start = time.perf_counter()
    import numpy as np
    import kernels
    imported = time.perf_counter()
    state = kernels.PaneState.empty(2)
    z = np.zeros(3, dtype=np.int64)
    kernels.aggregate(state, z, z + 1, z + 5, z, z, z)
    kernels.pane_quantiles(state)
    kernels.merge_panes(state, [0, 2], [0, 1])
    kernels.PaneState.from_bytes(state.to_bytes())
    s = kernels.WaitSketch(); s.add(np.ones(3)); s.add(z); s.quantiles()
    kernels.required_agents(100, 1800, 180, 20, 0.8)
    kernels.required_agents(100, 1800, 180, 20, 0.8, patience_s=60)
    kernels.erlang_c(14, 100, 1800, 180, 20)
    kernels.erlang_a(14, 100, 1800, 180, 60, 20)
    done = time.perf_counter()
    print(imported - start, done - imported)
    """
)


def bench_compile() -> dict[str, float]:
    """First-call cost of every public kernel in a fresh process: cold cache, then warm."""
    with tempfile.TemporaryDirectory() as cache_dir:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir, "PYTHONPATH": str(ROOT)}
        figures = {}
        for label in ("cold", "warm"):
            out = subprocess.run(
                [sys.executable, "-c", _FIRST_CALLS], env=env, cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout.split()
            figures[f"{label}_import_s"] = float(out[0])
            figures[f"{label}_first_calls_s"] = float(out[1])
    return figures


# --- report ---------------------------------------------------------------------


def print_report(results: dict[str, Any]) -> None:
    sketch = results["sketch"]
    print(f"\n1. One sketch, {sketch['n_values']:,} waits: insert + p50/p90/p99")
    print(f"   {'contender':30} {'median s':>10} {'x callslo':>10} {'max rel err':>12} {'runs':>5}")
    for name, row in sketch["contenders"].items():
        print(
            f"   {name:30} {row['seconds']:10.3f} {row['x_slower_than_callslo']:10.1f} "
            f"{row['max_rel_error']:12.5f} {row['repeats']:5d}"
        )
    grouped = results["grouped"]
    print(f"\n2. Grouped: {grouped['n_events']:,} answered events over {grouped['n_queues']:,} Zipf queues "
          f"({grouped['queues_with_data']:,} with data)")
    print(f"   ingest (all answered)          {grouped['callslo_ingest_ns_per_event']:8.1f} ns/event")
    print(f"   ingest (mixed event kinds)     {grouped['callslo_ingest_mixed_kinds_ns_per_event']:8.1f} ns/event")
    print(f"   p50/p90/p99 of every queue     {grouped['callslo_quantiles_all_queues_ms']:8.1f} ms")
    print(f"   callslo total                  {grouped['callslo_total_s'] * 1e3:8.1f} ms")
    print(f"   numpy lexsort + gather         {grouped['numpy_lexsort_s'] * 1e3:8.1f} ms")
    print(f"   numpy packed-key sort + gather {grouped['numpy_packed_key_sort_s'] * 1e3:8.1f} ms")
    print(f"   x faster than best numpy       {grouped['x_faster_than_best_numpy']:8.1f}")
    print(f"   max relative error             {grouped['max_rel_error']:8.5f}")
    erlang = results["erlang"]
    print(f"\n3. Required agents, {erlang['n_queue_intervals']:,} queue-intervals "
          f"(mean {erlang['mean_traffic_erlangs']:.1f} Erlangs)")
    print(f"   callslo Erlang C               {erlang['callslo_erlang_c_ms']:8.2f} ms")
    print(f"   callslo Erlang A (patience 120 s) {erlang['callslo_erlang_a_ms']:5.2f} ms")
    if "pyworkforce_loop_s" in erlang:
        print(f"   pyworkforce loop               {erlang['pyworkforce_loop_s'] * 1e3:8.0f} ms")
        print(f"   x faster than pyworkforce      {erlang['x_faster_than_pyworkforce']:8.0f}")
        print(f"   same raw agents as pyworkforce {100 * erlang['agreement_with_pyworkforce']:7.1f} %")
    if "compile" in results:
        c = results["compile"]
        print("\n4. Fresh process: import + first call of every public kernel")
        for label, key in (("cold cache (compiles)", "cold"), ("warm cache (loads)", "warm")):
            imported, first = c[key + "_import_s"], c[key + "_first_calls_s"]
            print(f"   {label:30} {imported:6.2f} s import + {first:6.2f} s first calls")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kernels", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller inputs")
    parser.add_argument("--repeats", type=int, default=7, help="runs per fast contender (median reported)")
    parser.add_argument("--slow-repeats", type=int, default=1, help="runs per slow contender")
    parser.add_argument("--no-compile", action="store_true", help="skip the fresh-process compile-time figures")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "numba": __import__("numba").__version__,
        "cpus": os.cpu_count(),
        "quick": args.quick,
    }
    if not args.no_compile:
        results["compile"] = bench_compile()
    results["sketch"] = bench_sketch(10_000_000 // scale, args.repeats, args.slow_repeats)
    results["grouped"] = bench_grouped(1_000_000 // scale, 100_000 // scale, args.repeats)
    results["erlang"] = bench_erlang(10_000 // scale, args.repeats, args.slow_repeats)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print_report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
