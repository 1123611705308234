"""Vectorised text building: wire text from numpy arrays with Arrow kernels, no Python loop per record."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain.schemas import RECORD_COLUMN, RawSpec

Tables = dict[str, pa.Table]

_EPOCH = date(1970, 1, 1)
_DAY = 86_400

def _text(indices: np.ndarray, dictionary: Sequence[str] | pa.Array, null: np.ndarray | None = None) -> pa.Array:
    """Strings from small-dictionary indices: one take, no per-record Python."""
    idx = pa.array(np.asarray(indices, dtype=np.int32), mask=null)
    values = dictionary if isinstance(dictionary, pa.Array) else pa.array(list(dictionary), pa.string())
    return pa.DictionaryArray.from_arrays(idx, values).cast(pa.string())


def _dates(days: np.ndarray, fmt: str, null: np.ndarray | None = None) -> pa.Array:
    """Format days since 1970 with `fmt`, formatting each distinct day only once."""
    if len(days) == 0:
        return pa.array([], pa.string())
    low = int(days.min())
    span = np.arange(low, int(days.max()) + 1, dtype=np.int32)
    return _text(days - low, pc.strftime(pa.array(span, pa.date32()), format=fmt), null)


@lru_cache(maxsize=1)
def _times_of_day() -> pa.Array:
    return pc.strftime(pa.array(np.arange(_DAY, dtype=np.int64), pa.timestamp("s")), format="%H:%M:%S")


def _datetimes(seconds: np.ndarray) -> pa.Array:
    """ISO date-times (`yyyy-mm-ddThh:mm:ss`) of seconds since 1970."""
    day, second = np.divmod(np.asarray(seconds, dtype=np.int64), _DAY)
    return pc.binary_join_element_wise(_dates(day, "%Y-%m-%d"), _text(second, _times_of_day()), "T")


# Each byte value's two lowercase hex digits, as a (256, 2) array of ASCII codes.
_HEX_PAIRS = np.frombuffer("".join(f"{b:02x}" for b in range(256)).encode(), dtype=np.uint8).reshape(256, 2)


def _hex_ids(*words: np.ndarray) -> pa.Array:
    """Fixed-width lowercase hex strings, 8 characters per uint32 word (Mongo ObjectId-like)."""
    n = len(words[0])
    big_endian = np.stack([np.asarray(w).astype(np.uint32) for w in words], axis=1).astype(">u4").view(np.uint8)
    chars = _HEX_PAIRS[big_endian].reshape(n, 8 * len(words))
    offsets = np.arange(n + 1, dtype=np.int64) * chars.shape[1]
    array = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))
    return array.cast(pa.string())


def _numbers(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def _days(day: date) -> int:
    return (day - _EPOCH).days


def _weighted(rng: np.random.Generator, weights: Sequence[float], size: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=size, p=p / p.sum())


def _uniform_days(rng: np.random.Generator, low: int, high: int, size: int) -> np.ndarray:
    return rng.integers(low, high, size=size, endpoint=True)


def _other_body(rng: np.random.Generator, body: np.ndarray, k: int) -> np.ndarray:
    """A designated body different from `body`, uniformly among the other `k - 1` (itself if `k` is 1)."""
    if k < 2:
        return body.copy()
    return (body + rng.integers(1, k, size=len(body))) % k


def _wire_table(spec: RawSpec, columns: dict[str, pa.Array]) -> pa.Table:
    """Columns in the spec's wire order, plus `_record`; a field the generator does not produce is all null."""
    rows = len(next(iter(columns.values()))) if columns else 0
    table = pa.table({c.wire: columns.get(c.wire, pa.nulls(rows, pa.string())) for c in spec.columns})
    return _renumber(table)


def _renumber(table: pa.Table) -> pa.Table:
    if RECORD_COLUMN in table.column_names:
        table = table.drop_columns([RECORD_COLUMN])
    return table.append_column(RECORD_COLUMN, pa.array(np.arange(table.num_rows, dtype=np.int64)))



def _as_bool(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For per-owner counts: each row's owner index and its 0-based position within the owner."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(len(owner)) - starts[owner]


def _days_back(
    rng: np.random.Generator, owner: np.ndarray, steps: np.ndarray, max_steps: int, gap: tuple[int, int]
) -> np.ndarray:
    """Days between each row and its owner's latest row, `steps` rows later, with random gaps.

    The gaps are drawn per owner and summed, so an owner's rows stay in time order.
    """
    owners = int(owner.max()) + 1 if len(owner) else 0
    gaps = _uniform_days(rng, gap[0], gap[1], owners * max_steps).reshape(owners, max_steps)
    cumulative = np.concatenate([np.zeros((owners, 1), dtype=np.int64), np.cumsum(gaps, axis=1)], axis=1)
    return cumulative[owner, steps]


def _by_group(rng: np.random.Generator, group: np.ndarray, weights: dict[int, Sequence[float]]) -> np.ndarray:
    """A weighted draw per row, with the weights chosen by the row's group."""
    out = np.zeros(len(group), dtype=np.int64)
    for key, w in weights.items():
        rows = np.flatnonzero(group == key)
        out[rows] = _weighted(rng, w, len(rows))
    return out

