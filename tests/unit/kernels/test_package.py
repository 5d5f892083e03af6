"""Package-level guarantees: public API, one JIT policy, no streaming imports."""

from __future__ import annotations

import importlib
import subprocess
import sys

import numba

import kernels

# kernels.aggregate is the function; import the modules by name.
MODULES = [
    importlib.import_module(f"kernels.{name}")
    for name in ("_codec", "_jit", "_queueing", "_validate", "aggregate", "erlang", "eventcheck",
                 "jsonscan", "mapping", "panes", "sketch", "spanmap", "spans", "sparse",
                 "admission")
]


def test_public_api_is_stable():
    assert sorted(kernels.__all__) == sorted(
        [
            "DEFAULT_QUANTILES", "DEFAULT_SPEC", "NO_WAIT", "RECORD_WIDTH", "BatchResult", "EventKind", "Field",
            "PaneState",
            "QueueMetrics", "SketchSpec", "Sketches", "StaffingResult", "WaitSketch", "aggregate",
            "erlang_a", "erlang_c", "merge_panes", "merge_sparse", "SparseSketch", "sparse_group_quantiles",
            "sparse_group_summary",
            "sparse_rows", "pane_quantiles", "quantile_rank", "required_agents",
            "traffic_erlangs",
        ]
    )
    for name in kernels.__all__:
        assert getattr(kernels, name) is not None


def test_event_kind_codes_are_the_wire_codes():
    assert [(k.name, int(k)) for k in kernels.EventKind] == [
        ("QUEUED", 0), ("ANSWERED", 1), ("ABANDONED", 2), ("DEQUEUED", 3), ("ENDED", 4), ("WRAPUP_ENDED", 5),
        ("TRANSFERRED", 6),
    ]


def test_every_kernel_uses_the_project_jit_options():
    dispatchers = [
        value
        for module in MODULES
        for value in vars(module).values()
        if isinstance(value, numba.core.registry.CPUDispatcher)
    ]
    assert len(dispatchers) >= 25
    for dispatcher in dispatchers:
        assert dispatcher.targetoptions["nogil"] is True, dispatcher
        assert type(dispatcher._cache).__name__ == "FunctionCache", dispatcher


def test_kernels_import_no_streaming_code():
    code = (
        "import sys, kernels; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('faust', 'aiokafka', 'mode', 'streams')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
