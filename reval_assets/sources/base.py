"""The one small interface every source implements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import pyarrow as pa

from reval_assets.domain.schemas import RECORD_COLUMN, RawSpec
from reval_assets.errors import RevalError


class SourceError(RevalError):
    """Input that cannot be read at all; the message names the file, record and field."""

    kind = "bad_source"

    def __init__(self, message: str, *, file: str | None = None, record: int | None = None, field: str | None = None):
        where = ", ".join(
            part
            for part in (
                f"file {file}" if file else "",
                f"record {record}" if record is not None else "",
                f"field {field}" if field else "",
            )
            if part
        )
        super().__init__(f"{message} ({where})" if where else message,
                         metadata={k: v for k, v in (("file", file), ("record", record), ("field", field)) if v})
        self.file, self.record, self.field = file, record, field

    def explained(self) -> str:
        return (f"bad source: {self}. Fix the export (or REVAL_SOURCE_DIR) and run `reval sync` again; live is "
                "unchanged.")


@dataclass(frozen=True)
class WireInput:
    """One raw input as the source system sent it.

    `table` has one text column per wire field (camelCase, as in the export) and a
    `_record` int64 column with each record's position in its input, so a quarantined
    record can be found again. Validation and typing happen later, in one place
    (`reval_assets.domain.conform`), whatever the source.
    """

    table: pa.Table
    origin: str  # the file it came from, or "synthetic"
    # Input-level problems: the input could not be read as a whole (e.g. its list is under an
    # unknown key), so `table` is empty. Carried through the landing into the manifest, where a
    # blocking check fails on them: a broken payload is never published as "0 rows".
    problems: tuple[str, ...] = ()
    read_as: str = ""  # the shape the input was found in, for people: "14 GetDoctorsForDB responses, ..."

    @classmethod
    def empty(cls, spec: RawSpec, origin: str, read_as: str) -> WireInput:
        columns = {column.wire: pa.array([], pa.string()) for column in spec.columns}
        return cls(pa.table({**columns, RECORD_COLUMN: pa.array([], pa.int64())}), origin, read_as=read_as)


class Source(Protocol):
    """A source may also offer `exported_at() -> datetime`, when its data was exported (see `exported_at`)."""

    description: str

    def fingerprint(self) -> str:
        """A digest that changes whenever the data `extract` returns would change."""
        ...

    def extract(self) -> dict[str, WireInput]:
        """Every raw input (keyed by raw entity name), each read once, linear in its size."""
        ...


def exported_at(source: object) -> datetime:
    """When the source's data was exported (`source.exported_at()`, if it says), else now: read time."""
    method = getattr(source, "exported_at", None)
    value = method() if callable(method) else None
    if value is None:
        return datetime.now(UTC)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
