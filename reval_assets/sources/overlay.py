"""A source with one input pulled from a live system instead: GMC over SOAP, TIS from the TCS database.

The pull happens once per instance, so `fingerprint()` and `extract()` describe the same rows. The fingerprint
hashes the pulled table with the base source's fingerprint: a web service or a database offers nothing cheaper
that changes with every edit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.ipc as ipc

from reval_assets.sources.base import Source, WireInput, exported_at

Pull = Callable[[], tuple[WireInput, dict]]


class Overlay:
    """`base`'s inputs, with input `name` from `pull()` (a WireInput and the pull's metadata)."""

    def __init__(self, base: Source, name: str, pull: Pull, *, description: str, tag: str):
        self.base, self.name, self._pull, self.tag = base, name, pull, tag
        self.description = f"{base.description}; {description}"
        self._pulled: tuple[WireInput, dict, datetime] | None = None

    def pulled(self) -> tuple[WireInput, dict]:
        if self._pulled is None:
            at = datetime.now(UTC)
            wire, metadata = self._pull()
            self._pulled = (wire, metadata, at)
        return self._pulled[0], self._pulled[1]

    def fingerprint(self) -> str:
        table, sink = self.pulled()[0].table, pa.BufferOutputStream()
        with ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        digest = hashlib.sha256(self.tag.encode())
        digest.update(self.base.fingerprint().encode())
        digest.update(sink.getvalue())
        return digest.hexdigest()

    def extract(self) -> dict[str, WireInput]:
        return {**self.base.extract(), self.name: self.pulled()[0]}

    def exported_at(self) -> datetime:
        """The older of the base's export time and the pull: the data is as old as its oldest input."""
        self.pulled()
        return min(exported_at(self.base), self._pulled[2])
