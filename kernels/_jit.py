"""The one JIT decorator every callslo kernel compiles with, plus low-level helpers.

Every jitted function in ``kernels/`` uses :func:`jit`, so all kernels share the
same compilation options and a change of policy happens in one place:

``cache=True``
    Machine code is written next to the source (``__pycache__``) or to
    ``NUMBA_CACHE_DIR`` when that is set (use it when the install directory is
    read-only). A second process loads it instead of compiling, so only the
    very first start after an install or upgrade pays the compile time.
    Numba checks only the cached function's own source file: after editing a
    helper in another module (this one, ``mapping.py``, ``_codec.py``), delete
    ``kernels/__pycache__`` so the kernels that inline it recompile.
``nogil=True``
    Kernels release the GIL, so the stream workers can run them in a thread
    pool next to the event loop without blocking it.
``error_model="numpy"``
    Float division by zero gives ``inf``/``nan`` instead of raising; the
    wrappers validate inputs, so the kernels carry no Python exception checks
    on their hot paths.
``fastmath=False``
    The sketch mapping relies on exact IEEE comparisons and the Erlang
    formulas on ``inf``/``nan`` propagation; neither survives fastmath.
``boundscheck=False`` (numba's default)
    Indices are checked once by the validating wrapper, not per access.

``parallel`` is not used: callslo runs one kernel call per Kafka partition and
the partitions already occupy the cores.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import numba
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

__all__ = ["jit", "JIT_OPTIONS", "data_pointer", "float64_bits", "prefetch", "same_bytes"]

F = TypeVar("F", bound=Callable[..., Any])

JIT_OPTIONS: dict[str, Any] = {
    "cache": True,
    "nogil": True,
    "error_model": "numpy",
    "fastmath": False,
}


def jit(func: F) -> F:
    """Compile ``func`` with callslo's kernel options (see the module docstring)."""
    return numba.njit(**JIT_OPTIONS)(func)


@intrinsic
def data_pointer(typingctx, array):
    """A C-contiguous array's data as a raw pointer (``ptr[i]`` reads and writes element
    ``i`` of the flattened array), for the arguments of helpers called per byte or per field.

    Numba wraps every array argument of a call in an atomic reference-count increment and
    decrement, and they stay in the caller's loop even when the helper is inlined: about
    9 ns per array per call, measured. The JSON scanner called its string, whitespace and
    field-name helpers with arrays about 60 times per event, and 1.1 of its 1.4 us per
    event went to that bookkeeping. A pointer is a plain machine word. The caller keeps the
    array alive for as long as the helper runs (it is the caller's own argument or local).
    """
    if not (isinstance(array, types.Array) and array.layout == "C"):
        return None
    signature = types.CPointer(array.dtype)(array)

    def codegen(context, builder, sig, args):
        return context.make_array(sig.args[0])(context, builder, args[0]).data

    return signature, codegen


@jit
def same_bytes(a, a_start, a_end, b, b_start, b_end):
    """Whether ``a[a_start:a_end]`` and ``b[b_start:b_end]`` (uint8 arrays, or their
    :func:`data_pointer`) hold the same bytes; the kernels compare names, ids and keys in
    place with it, without slicing."""
    if a_end - a_start != b_end - b_start:
        return False
    for q in range(a_end - a_start):
        if a[a_start + q] != b[b_start + q]:
            return False
    return True


@intrinsic
def float64_bits(typingctx, value):
    """Reinterpret a float64 as the int64 with the same bits (no conversion).

    The sketch mapping reads a value's binary exponent and mantissa straight
    from these bits, which is several times cheaper than ``log2`` or ``frexp``.
    """
    if value != types.float64:
        return None
    signature = types.int64(types.float64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return signature, codegen


@intrinsic
def prefetch(typingctx, array, row, col):
    """Hint the CPU to fetch ``array[row, col]`` (2-D) into cache for writing.

    Grouped updates land on random rows of large state arrays; issuing the
    fetch a few events ahead overlaps those cache misses instead of paying
    them one after another (measured: ~1.6x faster random updates on 100 000
    panes). It never faults and has no effect on results.
    """
    if not (isinstance(array, types.Array) and array.ndim == 2):
        return None
    signature = types.void(array, types.int64, types.int64)

    def codegen(context, builder, sig, args):
        array_type = sig.args[0]
        ary = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer2(
            context,
            builder,
            data=ary.data,
            shape=cgutils.unpack_tuple(builder, ary.shape),
            strides=cgutils.unpack_tuple(builder, ary.strides),
            layout=array_type.layout,
            inds=[args[1], args[2]],
        )
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        function_type = ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32])
        function = cgutils.get_or_insert_function(builder.module, function_type, "llvm.prefetch.p0")
        # arguments: address, rw=1 (write), locality=3 (keep in all levels), cache type=1 (data)
        builder.call(function, [builder.bitcast(pointer, byte_pointer), i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return signature, codegen
