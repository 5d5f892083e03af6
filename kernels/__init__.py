"""callslo's performance-critical kernels: wait sketches, grouped pane aggregation, Erlang C/A.

Pure numpy + numba; nothing here imports Kafka, Faust or ``streams``. Every
kernel compiles with the single decorator in :mod:`kernels._jit` and is called
through a validating Python wrapper that raises ``TypeError``/``ValueError``
with the offending argument named.

Modules
-------
:mod:`kernels.mapping`    sketch geometry (relative accuracy ``alpha``)
:mod:`kernels.sketch`     many sketches as count rows; quantiles, merge, bytes
:mod:`kernels.panes`      pane state (records + sketches), rolling-window merge, bytes
:mod:`kernels.sparse`     sparse sketches (non-empty buckets only) for per-minute state
:mod:`kernels.aggregate`  one pass of a column batch of call events into pane state
:mod:`kernels.erlang`     Erlang C and Erlang A metrics and required agents
:mod:`kernels.jsonscan`   flat JSON objects of a batch to typed field slots
:mod:`kernels.eventcheck` an event contract's rules, as tables, over scanned slots
:mod:`kernels.spans`      byte spans gathered into string columns, keys interned exactly
:mod:`kernels.spanmap`    an exact (owner, byte key) -> int64 map for kernels
:mod:`kernels.admission`  stage 2's per-row rules (duplicates, lateness, open calls) in one pass
"""

from .aggregate import BatchResult, EventKind, aggregate
from .erlang import QueueMetrics, StaffingResult, erlang_a, erlang_c, required_agents, traffic_erlangs
from .mapping import DEFAULT_SPEC, SketchSpec
from .panes import NO_WAIT, RECORD_WIDTH, Field, PaneState, merge_panes, pane_quantiles
from .sketch import DEFAULT_QUANTILES, Sketches, WaitSketch, quantile_rank
from .sparse import SparseSketch, merge_sparse, sparse_group_quantiles, sparse_group_summary, sparse_rows

__all__ = [
    "DEFAULT_QUANTILES",
    "DEFAULT_SPEC",
    "NO_WAIT",
    "RECORD_WIDTH",
    "BatchResult",
    "EventKind",
    "Field",
    "PaneState",
    "QueueMetrics",
    "SketchSpec",
    "Sketches",
    "StaffingResult",
    "WaitSketch",
    "aggregate",
    "erlang_a",
    "erlang_c",
    "merge_panes",
    "merge_sparse",
    "SparseSketch",
    "sparse_group_quantiles",
    "sparse_group_summary",
    "sparse_rows",
    "pane_quantiles",
    "quantile_rank",
    "required_agents",
    "traffic_erlangs",
]
