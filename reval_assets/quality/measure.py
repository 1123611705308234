"""Counting kernels shared by the checks and the drift engine."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def share(part: int, whole: int) -> float:
    return part / whole if whole else 1.0


def count(mask: pa.Array | pa.ChunkedArray) -> int:
    return int(pc.sum(pc.fill_null(mask, False)).as_py() or 0)


def outside(values: pa.ChunkedArray, allowed: pa.Array) -> pa.ChunkedArray:
    """Non-null values not in `allowed` (null is "no value", never an unknown one)."""
    return pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, value_set=allowed)))
