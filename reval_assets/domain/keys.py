"""Stable ids for records the original system left without one.

Legacy (pre-2020 "snapshot") recommendations can have a null id. They are real history, so they are kept,
with an id derived from what they say: the same record gets the same id in every export and every shape,
and two records that say exactly the same thing get the same id (a duplicate, quarantined as such).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DERIVED_ID_PREFIX = "derived-"


def derive_missing_ids(table: pa.Table, key: str) -> tuple[pa.Table, int]:
    """`table` with each null or blank `key` replaced by `derived-<sha256 of the record's typed values>`."""
    ids = table[key].combine_chunks()
    missing = np.asarray(pc.fill_null(pc.equal(pc.utf8_trim_whitespace(ids), ""), True).to_numpy(
        zero_copy_only=False), dtype=bool)
    if not missing.any():
        return table, 0
    others = [name for name in table.column_names if name != key]
    rows = table.select(others).filter(pa.array(missing)).to_pylist()
    derived = [DERIVED_ID_PREFIX + hashlib.sha256(repr([row[n] for n in others]).encode()).hexdigest()[:24]
               for row in rows]
    filled = pc.replace_with_mask(ids, pa.array(missing), pa.array(derived, pa.string()))
    return table.set_column(table.schema.get_field_index(key), key, filled), len(derived)
