"""Bucket geometry of the wait-time sketch: a log-linear mapping with relative error ``alpha``.

Values are split by binary octave ``[2**e, 2**(e + 1))`` and every octave into
``S`` equal-width buckets, in the spirit of DDSketch (Masson, Rim and Lee,
VLDB 2019) but with linear instead of logarithmic steps inside an octave, so a
value's bucket comes from its float exponent and mantissa bits without a
``log`` call (about 2 ns per value).

The widest bucket relative to its values is the first of an octave,
``[1, 1 + 1/S)`` scaled. Answering ``2 * lo * hi / (lo + hi)`` for a bucket
``[lo, hi)`` is within ``(hi - lo) / (hi + lo) <= 1 / (2S + 1)`` of every value
in it, so ``S = ceil((1 - alpha) / (2 * alpha))`` guarantees relative accuracy
``alpha``: 50 buckets per octave, 27 octaves (1350 buckets) for the defaults
``alpha = 0.01``, 1 ms to 24 h.

Values outside the range are counted, never dropped: 0 has its own exact
bucket, values in ``(0, min_value)`` an underflow bucket (answered as
``min_value``) and values above ``max_value`` an overflow bucket (answered as
``max_value``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ._jit import float64_bits, jit

__all__ = ["DEFAULT_SPEC", "SketchSpec"]

# Columns of a sketch's summary row (see kernels.sketch).
ZERO_COL = 0
UNDERFLOW_COL = 1
OVERFLOW_COL = 2
OCTAVE_COL = 3

_MANTISSA_MASK = (1 << 52) - 1
_MAX_BUCKETS = 1 << 22


@dataclass(frozen=True)
class SketchSpec:
    """Accuracy and range of a wait-time sketch (values in milliseconds by convention).

    Parameters
    ----------
    alpha : float
        Guaranteed relative accuracy of every quantile whose true value lies in
        ``[min_value, max_value]``; ``1e-6 <= alpha < 0.5``.
    min_value, max_value : float
        The range with the guarantee. Defaults: 1 ms to 24 h.
    """

    alpha: float = 0.01
    min_value: float = 1.0
    max_value: float = 86_400_000.0

    def __post_init__(self) -> None:
        for name in ("alpha", "min_value", "max_value"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(f"SketchSpec.{name} must be a number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not 1e-6 <= self.alpha < 0.5:
            raise ValueError(f"SketchSpec.alpha must be in [1e-6, 0.5), got {self.alpha}")
        if not (math.isfinite(self.min_value) and self.min_value >= np.finfo(np.float64).tiny):
            raise ValueError(f"SketchSpec.min_value must be a positive normal float, got {self.min_value}")
        if not (math.isfinite(self.max_value) and self.max_value > self.min_value):
            raise ValueError(
                f"SketchSpec.max_value must be finite and above min_value ({self.min_value}), got {self.max_value}"
            )
        if self.n_buckets > _MAX_BUCKETS:
            raise ValueError(
                f"SketchSpec needs {self.n_buckets} buckets (limit {_MAX_BUCKETS}); raise alpha or narrow the range"
            )

    @property
    def sub_buckets(self) -> int:
        """Buckets per binary octave, ``S``."""
        return max(1, math.ceil((1.0 - self.alpha) / (2.0 * self.alpha) - 1e-9))

    @property
    def min_exponent(self) -> int:
        """Binary exponent of the first octave (the one holding ``min_value``)."""
        return math.frexp(self.min_value)[1] - 1

    @property
    def n_octaves(self) -> int:
        """Octaves from ``min_value`` to ``max_value``, both included."""
        return math.frexp(self.max_value)[1] - 1 - self.min_exponent + 1

    @property
    def n_buckets(self) -> int:
        """Bucket counts per sketch."""
        return self.n_octaves * self.sub_buckets

    @property
    def summary_width(self) -> int:
        """Columns of a summary row: zero, underflow, overflow, one per octave."""
        return OCTAVE_COL + self.n_octaves

    @cached_property
    def bucket_values(self) -> np.ndarray:
        """The value answered for each bucket ``[lo, hi)``: ``2 * lo * hi / (lo + hi)``."""
        octave = np.repeat(np.arange(self.n_octaves), self.sub_buckets)
        step = np.tile(np.arange(self.sub_buckets), self.n_octaves)
        low = np.ldexp(1.0 + step / self.sub_buckets, self.min_exponent + octave)
        high = np.ldexp(1.0 + (step + 1) / self.sub_buckets, self.min_exponent + octave)
        values = 2.0 * low * high / (low + high)
        values.flags.writeable = False
        return values

    @property
    def geometry(self) -> tuple[float, float, int, int, int]:
        """The scalars the jitted kernels need, as one tuple."""
        return (self.min_value, self.max_value, self.min_exponent, self.sub_buckets, self.n_octaves)


DEFAULT_SPEC = SketchSpec()


@jit
def bucket_of(value, geometry):
    """Summary column and bucket index of a float64 ``value >= 0`` (not NaN).

    The bucket index is -1 for 0, underflow and overflow, which only have a
    summary column.
    """
    min_value, max_value, min_exponent, sub_buckets, _ = geometry
    if value == 0.0:
        return ZERO_COL, -1
    if value < min_value:
        return UNDERFLOW_COL, -1
    if value > max_value:
        return OVERFLOW_COL, -1
    bits = float64_bits(value)
    octave = (bits >> 52) - 1023 - min_exponent
    # floor(mantissa_fraction * S) from the top 32 fraction bits: a value within
    # 2**-32 (relative) of a bucket edge may land in the neighbour bucket, far
    # inside the slack between 1 / (2S + 1) and alpha.
    step = (((bits & _MANTISSA_MASK) >> 20) * sub_buckets) >> 32
    return OCTAVE_COL + octave, octave * sub_buckets + step


@jit
def add_value(summary, buckets, row, value, geometry, delta):
    """Add ``delta`` counts of one float64 ``value >= 0`` (not NaN) to sketch ``row``."""
    col, bucket = bucket_of(value, geometry)
    summary[row, col] += delta
    if bucket >= 0:
        buckets[row, bucket] += delta


@jit
def insert_value(summary, buckets, row, value, geometry):
    """Count one float64 ``value >= 0`` (not NaN) in sketch ``row``."""
    add_value(summary, buckets, row, value, geometry, 1)
