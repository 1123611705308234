"""What a landing recorded about the source, per input: the typed records a manifest keeps.

The quality checks read these (a quarantined record leaves no row in the tables). Each record
writes itself to the JSON keys manifests have always held, and reads manifests written before
it existed: a missing key takes its default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reval_assets.domain.enums import QuarantineReason


@dataclass(frozen=True)
class ReasonCount:
    """Records of one input quarantined for one reason with one (wire) field."""

    field: str
    code: QuarantineReason
    problem: str  # the reason as people read it
    records: int
    examples: tuple[str | None, ...] = ()
    allowed: tuple[str, ...] = ()  # for an unknown value: the values the schema allows

    def to_dict(self) -> dict:
        return {"field": self.field, "code": self.code.value, "problem": self.problem, "records": self.records,
                "examples": list(self.examples), "allowed": list(self.allowed)}

    @classmethod
    def from_dict(cls, data: Mapping) -> ReasonCount:
        return cls(field=str(data["field"]), code=QuarantineReason(data["code"]), problem=str(data["problem"]),
                   records=int(data["records"]), examples=tuple(data.get("examples", ())),
                   allowed=tuple(data.get("allowed") or ()))


@dataclass(frozen=True)
class Unmatched:
    """Records that point at a doctor in neither the GMC nor the TIS export.

    `numbers` counts them per GMC number (up to `UNMATCHED_NUMBERS_KEPT` numbers), so a check can leave out the
    doctors the store already knows: one the GMC no longer returns is carried forward from live."""

    records: int = 0
    examples: tuple[str, ...] = ()
    numbers: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        body: dict = {"records": self.records, "examples": list(self.examples)}
        if self.numbers:
            body["numbers"] = dict(self.numbers)
        return body

    @classmethod
    def from_dict(cls, data: Mapping) -> Unmatched:
        return cls(records=int(data.get("records", 0)), examples=tuple(data.get("examples", ())),
                   numbers={str(k): int(v) for k, v in data.get("numbers", {}).items()})

    def beyond(self, known: set[str]) -> int:
        """The records whose doctor is not among `known` (those past the kept numbers count as unknown)."""
        return self.records - sum(n for number, n in self.numbers.items() if number in known)


UNMATCHED_NUMBERS_KEPT = 2_000  # more is a broken export, which blocks whatever the store knows


@dataclass(frozen=True)
class InputSummary:
    """What a landing said about one raw input: counts, input-level problems, quarantine reasons, orphans.

    A partial landing's counts are of its batches' records (and of any record in no batch).
    """

    records: int = 0
    kept: int = 0
    quarantined: int = 0
    origin: str = ""
    problems: tuple[str, ...] = ()  # the input could not be read as a whole
    export_records: int | None = None  # records in the whole export (a partial landing lands fewer)
    reasons: tuple[ReasonCount, ...] = ()
    landed_batches: tuple[int, ...] = ()  # empty: every batch
    unmatched: Unmatched | None = None  # kept only for inputs whose records must belong to a doctor
    read_as: str = ""  # the shape the source found the input in
    derived_keys: int = 0  # records kept with a derived key (legacy recommendations without an id)

    def to_dict(self) -> dict:
        body: dict = {"records": self.records, "kept": self.kept, "quarantined": self.quarantined,
                      "origin": self.origin, "problems": list(self.problems),
                      "reasons": [r.to_dict() for r in self.reasons]}
        if self.export_records is not None:
            body["export_records"] = self.export_records
        if self.landed_batches:
            body["landed_batches"] = list(self.landed_batches)
        if self.unmatched is not None:
            body["unmatched"] = self.unmatched.to_dict()
        if self.read_as:
            body["read_as"] = self.read_as
        if self.derived_keys:
            body["derived_keys"] = self.derived_keys
        return body

    @classmethod
    def from_dict(cls, data: Mapping) -> InputSummary:
        unmatched = data.get("unmatched")
        exported = data.get("export_records")
        return cls(
            records=int(data.get("records", 0)),
            kept=int(data.get("kept", 0)),
            quarantined=int(data.get("quarantined", 0)),
            origin=data.get("origin") or "",
            problems=tuple(data.get("problems", ())),
            export_records=None if exported is None else int(exported),
            reasons=tuple(ReasonCount.from_dict(r) for r in data.get("reasons", ())),
            landed_batches=tuple(data.get("landed_batches", ())),
            unmatched=None if unmatched is None else Unmatched.from_dict(unmatched),
            read_as=data.get("read_as") or "",
            derived_keys=int(data.get("derived_keys", 0)),
        )


@dataclass(frozen=True)
class LandingSummary:
    """One landing a version's batches were built from: its batches, export time and inputs."""

    source: str = "unknown"
    inputs: dict[str, InputSummary] = field(default_factory=dict)
    batches: tuple[int, ...] = ()
    exported_at: str | None = None  # ISO time; None: not recorded
    landed_at: str | None = None
    missing: bool = False  # gc removed the landing and no manifest had recorded it

    def to_dict(self) -> dict:
        body: dict = {"source": self.source, "inputs": {name: s.to_dict() for name, s in self.inputs.items()},
                      "batches": list(self.batches), "exported_at": self.exported_at}
        if self.landed_at is not None:
            body["landed_at"] = self.landed_at
        if self.missing:
            body["missing"] = True
        return body

    @classmethod
    def from_dict(cls, data: Mapping) -> LandingSummary:
        return cls(
            source=data.get("source", "unknown"),
            inputs={name: InputSummary.from_dict(s) for name, s in data.get("inputs", {}).items()},
            batches=tuple(data.get("batches", ())),
            exported_at=data.get("exported_at"),
            landed_at=data.get("landed_at"),
            missing=bool(data.get("missing", False)),
        )
