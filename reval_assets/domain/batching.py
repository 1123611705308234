"""The stable batch function: a GMC number always lands in the same batch.

A doctor, their connection and their recommendations share the GMC number, so they
share a batch; re-syncing one batch never duplicates a doctor who changed designated
body. The hash is the splitmix64 finaliser over the number's integer value: stable
across processes, machines and library versions (unlike Python's `hash`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DEFAULT_BATCHES = 16

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(values: np.ndarray) -> np.ndarray:
    z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def batch_of(gmc_numbers: pa.Array | pa.ChunkedArray, batches: int) -> np.ndarray:
    """Batch index (0..batches-1) of each 7-digit GMC number (strings, validated upstream)."""
    if batches < 1:
        raise ValueError(f"batches must be at least 1, got {batches}")
    as_int = pc.cast(gmc_numbers, pa.uint64()).to_numpy(zero_copy_only=False)
    with np.errstate(over="ignore"):
        return (_splitmix64(as_int) % np.uint64(batches)).astype(np.int32)


def batch_of_one(gmc_number: str, batches: int) -> int:
    return int(batch_of(pa.array([gmc_number]), batches)[0])


def split_by_batch(table: pa.Table, batches: int, key: str = "gmc_reference_number") -> list[pa.Table]:
    """Split a table into `batches` tables by the batch of `key`; row order kept within a batch."""
    if table.num_rows == 0:
        return [table] * batches
    ids = batch_of(table[key], batches)
    order = np.argsort(ids, kind="stable")
    counts = np.bincount(ids, minlength=batches)
    ordered = table.take(pa.array(order))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return [ordered.slice(int(start), int(count)) for start, count in zip(starts, counts, strict=False)]
