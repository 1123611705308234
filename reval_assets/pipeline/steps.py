"""The sync's steps: land the source, build each batch, compose and stage a candidate.

Each step is idempotent and writes only new immutable files or a new staged version, so a
step killed at any instant leaves live untouched and the next run reuses what is complete.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain.batching import batch_of, split_by_batch
from reval_assets.domain.conform import conform, rows_of_batches
from reval_assets.domain.schemas import ENTITIES, QUARANTINE_SCHEMA, RAW_SPECS
from reval_assets.domain.schemas import GMC_NUMBER as GMC
from reval_assets.domain.summaries import InputSummary, LandingSummary
from reval_assets.errors import RevalError
from reval_assets.parallel import map_in_threads
from reval_assets.pipeline.runtime import Runtime
from reval_assets.quality import evidence
from reval_assets.sources.base import Source, SourceError, WireInput, exported_at
from reval_assets.sources.files import origins_of_records
from reval_assets.spans import span
from reval_assets.store.faults import fault_point
from reval_assets.store.live import LoadReport
from reval_assets.store.snapshots import FileRef, Manifest, SnapshotStore
from reval_assets.transforms import build_entities
from reval_assets.transforms.build import Carried, absent_doctors, carry_forward

RAW_GROUP = "raw"
ENTITY_GROUP = "entities"


class MissingBatchError(RevalError):
    kind = "missing_batch"


@dataclass(frozen=True)
class Landing:
    """A source read once, conformed, and written as one raw file per input x landed batch.

    A landing holds every batch, or (for a partial re-sync) only the batches asked for: those
    files are byte for byte the ones a full landing writes. Its counts are of the records it
    landed: those of its batches, plus the records that belong to no batch (quarantined in each).
    """

    key: str
    source: str
    batches: int
    inputs: dict[str, dict[int, FileRef]]  # input -> batch -> file
    quarantine: FileRef
    counts: dict[str, dict[str, int]]  # input -> records, kept, quarantined
    # input -> origin, input-level problems, quarantine reasons, records matching no doctor
    details: dict[str, dict] = field(default_factory=dict)
    exported_at: str | None = None  # when the source was exported, as of this read (not cached)

    @property
    def landed(self) -> tuple[int, ...]:
        return tuple(sorted(next(iter(self.inputs.values()), {})))

    def files(self) -> list[FileRef]:
        """Every file the landing wrote: its quarantine and each input's batch files."""
        return [self.quarantine, *(ref for refs in self.inputs.values() for ref in refs.values())]

    @classmethod
    def from_body(cls, body: dict) -> Landing:
        return cls(
            key=body["key"],
            source=body["source"],
            batches=body["batches"],
            inputs={name: _batch_refs(refs) for name, refs in body["inputs"].items()},
            quarantine=FileRef.from_dict(body["quarantine"]),
            counts=body["counts"],
            details=body.get("details", {}),
            exported_at=body.get("exported_at"),
        )


def _batch_refs(refs: dict) -> dict[int, FileRef]:
    """Batch -> file, from a body's `{"3": ref}`."""
    return {int(b): FileRef.from_dict(ref) for b, ref in refs.items()}


def land(source: Source, store: SnapshotStore, batches: int, only: Iterable[int] | None = None) -> Landing:
    """Read the source once per content (cached by fingerprint) and land `only` these batches (default all).

    A landing of every batch serves any later request for the same content; a partial one only
    the same batches. Linear in the source's size, plus the conform of what is landed.
    """
    wanted = sorted(set(range(batches)) if only is None else set(only))
    if not wanted or wanted[0] < 0 or wanted[-1] >= batches:
        raise ValueError(f"batches to land must be some of 0..{batches - 1}, got {wanted}")
    when = exported_at(source).isoformat()  # per read: the same content exported again is fresh again
    full_key = f"{source.fingerprint()[:40]}-b{batches}"
    key = full_key if len(wanted) == batches else f"{full_key}-only{'.'.join(map(str, wanted))}"
    for candidate in dict.fromkeys([full_key, key]):
        cached = _intact_landing(store, candidate)
        if cached is not None:
            return replace(cached, exported_at=when)
    wire = dict(source.extract())
    fault_point("extracted")
    doctors = evidence.doctor_numbers({name: wire[name].table for name in RAW_SPECS if name in wire})
    inputs: dict[str, dict[int, FileRef]] = {}
    counts: dict[str, dict[str, int]] = {}
    details: dict[str, dict] = {}
    quarantines: list[pa.Table] = []
    for name, spec in RAW_SPECS.items():  # one input at a time: a national export is GiBs once typed
        if name not in wire and spec.optional:
            wire[name] = WireInput.empty(spec, "none", "absent: the source has no such input")
        elif name not in wire:
            raise SourceError(f"the source gave no {name} input", file=spec.file)
        inputs[name], counts[name], details[name], quarantine = _land_input(
            store, name, wire[name], batches, wanted, doctors)
        quarantines.append(quarantine)
    quarantine = pa.concat_tables(quarantines) if quarantines else QUARANTINE_SCHEMA.empty_table()
    quarantine_ref, _ = store.put_table("quarantine", 0, quarantine)
    body = {"key": key, "source": source.description, "batches": batches, "counts": counts,
            "inputs": {name: {str(b): r.__dict__ for b, r in refs.items()} for name, refs in inputs.items()},
            "quarantine": quarantine_ref.__dict__, "landed_at": datetime.now(UTC).isoformat(),
            "details": details, "exported_at": when}
    store.put_landing(key, body)
    return Landing.from_body(body)


def _intact_landing(store: SnapshotStore, key: str) -> Landing | None:
    """The landing kept under `key`, while every one of its files is intact (by checksum)."""
    body = store.landing(key)
    if body is None:
        return None
    landing = Landing.from_body(body)
    if set(landing.inputs) != set(RAW_SPECS):  # landed before an input existed: land it again, whole
        return None
    # None lands it again: put_table rewrites the missing or damaged files with the right bytes
    if any(store.check(ref) is not None for ref in landing.files()):
        return None
    store.touch_landing(key)  # reused: young again, so gc leaves it and its files to this sync
    for ref in landing.files():
        store.touch(ref)
    return landing


def _land_input(store: SnapshotStore, name: str, wire: WireInput, batches: int, wanted: list[int],
                doctors: pa.Array) -> tuple[dict[int, FileRef], dict[str, int], dict, pa.Table]:
    """Conform one input's records of the `wanted` batches, write one file per batch; counts, details, quarantine."""
    spec = RAW_SPECS[name]
    records = wire.table if len(wanted) == batches else rows_of_batches(spec, wire.table, batches, wanted)
    with span("transforms_conform"):
        conformed = conform(spec, records, wire.origin)
    with span("transforms_split"):
        parts = split_by_batch(conformed.table, batches)
    written = map_in_threads(lambda b: store.put_table(f"{RAW_GROUP}/{name}", b, parts[b]), wanted)
    counts = {"records": records.num_rows, "kept": conformed.table.num_rows,
              "quarantined": conformed.quarantined_records}
    details = {"origin": wire.origin, "problems": list(wire.problems), "export_records": wire.table.num_rows,
               "reasons": evidence.quarantine_reasons(conformed.quarantine), "read_as": wire.read_as,
               "derived_keys": conformed.derived_keys}
    if len(wanted) < batches:
        details["landed_batches"] = wanted
    if name in evidence.DEPENDENT_INPUTS:
        details["unmatched"] = evidence.unmatched(name, conformed.table, doctors)
    quarantine = origins_of_records(wire, conformed.quarantine)  # a record read from gmc/<DBC>.xml names it
    return {b: ref for b, (ref, _) in zip(wanted, written, strict=True)}, counts, details, quarantine


def land_batch(store: SnapshotStore, landing: Landing, batch: int) -> dict[str, FileRef]:
    """Make the landed files of `batch` its current raw inputs."""
    if batch not in landing.landed:
        raise MissingBatchError(f"landing {landing.key} holds batches {', '.join(map(str, landing.landed))}, "
                                f"not batch {batch}")
    refs = {name: landing.inputs[name][batch] for name in RAW_SPECS}
    store.set_head(RAW_GROUP, batch, refs, landing=landing.key, source=landing.source,
                   exported_at=landing.exported_at)
    return refs


@dataclass(frozen=True)
class BatchBuild:
    batch: int
    refs: dict[str, FileRef]
    reused: dict[str, bool]
    carried: dict[str, int] = field(default_factory=dict)  # doctors kept from live: disconnected, unreadable


def build_batch(store: SnapshotStore, batch: int, run_group: str | None = None,
                live: Manifest | None = None) -> BatchBuild:
    """Build the entities of one batch from its current raw inputs; write them as files.

    Doctors of the `live` version that this batch's GMC records lack are carried forward (`carry_forward`).
    The batch's head records `run_group`, the sync (a Dagster backfill, say) that built it: see `batches_built_by`.
    """
    body = store.head_body(RAW_GROUP, batch)
    if body is None:
        raise MissingBatchError(f"batch {batch} has no raw inputs yet; materialise the raw assets for partition "
                                f"{batch} first")
    raw = {name: store.read_table(FileRef.from_dict(ref)) for name, ref in body["refs"].items()}
    carried = _carried(store, raw["gmc_doctors"], live, batch, body.get("landing"))
    with span("transforms_build"):
        tables = build_entities(raw, carried)
    refs: dict[str, FileRef] = {}
    reused: dict[str, bool] = {}
    for entity in ENTITIES:
        refs[entity], reused[entity] = store.put_table(entity, batch, tables[entity], keep=True)
    counts = {"disconnected": carried.disconnected, "unreadable": carried.unreadable}
    store.set_head(ENTITY_GROUP, batch, refs, landing=body.get("landing"), source=body.get("source"),
                   exported_at=body.get("exported_at"), run_group=run_group, carried=counts)
    return BatchBuild(batch=batch, refs=refs, reused=reused, carried=counts)


def _carried(store: SnapshotStore, gmc: pa.Table, live: Manifest | None, batch: int,
             landing: str | None) -> Carried:
    """This batch's GMC records with the live version's doctors they lack carried forward."""
    if live is None:
        return Carried(gmc)
    doctors = store.read_table(live.files["doctors"][batch])
    if doctors.num_rows == 0 or absent_doctors(gmc, doctors).num_rows == 0:  # no need to read the quarantine
        return carry_forward(gmc, doctors)
    return carry_forward(gmc, doctors, _quarantined_doctors(store, landing, live.batches, batch))


def _quarantined_doctors(store: SnapshotStore, landing: str | None, batches: int, batch: int) -> pa.Array:
    """The GMC numbers of this batch whose GMC record the landing quarantined (a landing from before the
    quarantine kept them names none)."""
    body = store.landing(landing) if landing else None
    if body is None:
        return pa.array([], pa.string())
    numbers = _QUARANTINED.numbers(store, FileRef.from_dict(body["quarantine"]))
    return numbers.filter(pa.array(batch_of(numbers, batches) == batch))


class _QuarantinedNumbers:
    """Per quarantine file, the GMC numbers whose GMC record it holds: read once, however many batches ask.

    A quarantine file is named by its sha256, so what it holds never changes; the few newest are kept
    (a sync's batches share one landing's)."""

    def __init__(self, kept: int = 4):
        self._kept, self._lock = kept, threading.Lock()
        self._numbers: OrderedDict[tuple[str, FileRef], pa.Array] = OrderedDict()

    def numbers(self, store: SnapshotStore, ref: FileRef) -> pa.Array:
        key = (str(store.root), ref)
        with self._lock:  # the batches of a sync build in threads: one reads, the others wait for it
            if key not in self._numbers:
                self._numbers[key] = _gmc_numbers_quarantined(store.read_table(ref))
                while len(self._numbers) > self._kept:
                    self._numbers.popitem(last=False)
            self._numbers.move_to_end(key)
            return self._numbers[key]


def _gmc_numbers_quarantined(quarantine: pa.Table) -> pa.Array:
    if GMC not in quarantine.column_names:
        return pa.array([], pa.string())
    rows = quarantine.filter(pc.and_(pc.equal(quarantine["input"], "gmc_doctors"), pc.is_valid(quarantine[GMC])))
    return pc.unique(rows[GMC].combine_chunks())


_QUARANTINED = _QuarantinedNumbers()


def batches_built_by(store: SnapshotStore, batches: int, run_group: str) -> list[int]:
    """The batches whose current entities `run_group` built: the fresh batches of that sync's candidate."""
    return [b for b in range(batches) if (store.head_body(ENTITY_GROUP, b) or {}).get("run_group") == run_group]


def new_version_id() -> str:
    return datetime.now(UTC).strftime("v%Y%m%d_%H%M%S_") + secrets.token_hex(3)


@dataclass(frozen=True)
class Candidate:
    manifest: Manifest
    load: LoadReport
    seconds: dict[str, float]


def compose_manifest(runtime: Runtime, *, actor: str, reason: str, run_id: str | None,
                     fresh_batches: list[int] | None = None) -> Manifest:
    """A new version from the current files of every entity x batch, each checked against its sha256.

    With `fresh_batches` (a partial re-sync), only those batches take their newest files; the
    others keep the live version's, never files a blocked or unpublished sync left in the heads.
    """
    store, batches = runtime.snapshots, runtime.settings.batches
    heads = {b: store.head_body(ENTITY_GROUP, b) for b in range(batches)}
    if fresh_batches is not None:
        heads.update(_live_heads(runtime, set(range(batches)) - set(fresh_batches)))
    missing = [b for b, body in heads.items() if body is None]
    if missing:
        raise MissingBatchError(
            f"batches {', '.join(map(str, missing))} of {batches} have never been built; materialise doctors, "
            "connections and recommendations for those partitions (or all of them) first")
    files = {e: [FileRef.from_dict(heads[b]["refs"][e]) for b in range(batches)] for e in ENTITIES}
    for ref in (r for refs in files.values() for r in refs):
        store.read_bytes(ref)  # raises CorruptFileError naming the file
    landings = {heads[b].get("landing") for b in range(batches)} - {None}
    parent = runtime.live.live_version()
    quarantined: dict[str, int] = {}
    for key in sorted(landings):
        body = store.landing(key)
        for name, counts in (body or {}).get("counts", {}).items():
            quarantined[name] = max(quarantined.get(name, 0), counts["quarantined"])
    sources = sorted({heads[b].get("source") or "unknown" for b in range(batches)})
    times = [heads[b].get("exported_at") for b in range(batches)]
    return Manifest(
        version=new_version_id(),
        parent=parent,
        created_at=datetime.now(UTC).isoformat(),
        actor=actor,
        reason=reason,
        env=runtime.settings.env.value,
        source="; ".join(sources),
        batches=batches,
        files=files,
        quarantined=quarantined,
        run_id=run_id,
        landings=_landing_summaries(store, heads, parent),
        exported_at=None if None in times else min(times),
    )


def _landing_summaries(store: SnapshotStore, heads: dict[int, dict], parent: str | None) -> dict[str, LandingSummary]:
    """Per landing the candidate's batches come from: its export time and what it said about each input.

    A landing gc has since removed is taken from the live manifest, which recorded it when
    those batches were published.
    """
    previous: dict[str, LandingSummary] | None = None
    summaries: dict[str, LandingSummary] = {}
    for key in sorted({body.get("landing") or "unknown" for body in heads.values()}):
        batches = tuple(sorted(b for b, body in heads.items() if (body.get("landing") or "unknown") == key))
        times = [heads[b].get("exported_at") for b in batches]
        body = store.landing(key) if key != "unknown" else None
        if body is None:
            if previous is None:
                previous = store.manifest(parent).landings if parent else {}
            summary = previous.get(key) or LandingSummary(missing=True)
        else:
            details = body.get("details", {})
            summary = LandingSummary(source=body["source"], landed_at=body.get("landed_at"), inputs={
                name: InputSummary.from_dict({**counts, **details.get(name, {})})
                for name, counts in body["counts"].items()})
        summaries[key] = replace(summary, batches=batches, exported_at=None if None in times else min(times))
    return summaries


def live_manifest(runtime: Runtime) -> Manifest | None:
    """The live version, which a partial re-sync takes its other batches from; None before the first publish,
    or if live was cut into another number of batches (then those come from the newest heads too)."""
    live = runtime.live.live_version()
    if live is None:
        return None
    manifest = runtime.snapshots.manifest(live)
    return manifest if manifest.batches == runtime.settings.batches else None


def _live_heads(runtime: Runtime, batches: set[int]) -> dict[int, dict]:
    """The live version's files of `batches`, shaped like heads; none before the first publish."""
    manifest = live_manifest(runtime) if batches else None
    if manifest is None:
        return {}
    landing_of = {b: key for key, summary in manifest.landings.items() for b in summary.batches}
    return {b: {"refs": {e: manifest.files[e][b].__dict__ for e in ENTITIES}, "landing": landing_of.get(b),
                "source": manifest.source,
                "exported_at": manifest.landings[landing_of[b]].exported_at if b in landing_of else None}
            for b in batches}


def stage_candidate(runtime: Runtime, *, actor: str, reason: str, run_id: str | None,
                    fresh_batches: list[int] | None = None) -> Candidate:
    """Compose a version, write its manifest and load it beside live (not yet visible to readers)."""
    started = time.perf_counter()
    manifest = compose_manifest(runtime, actor=actor, reason=reason, run_id=run_id, fresh_batches=fresh_batches)
    sha = runtime.snapshots.put_manifest(manifest)
    fault_point("manifest_written")
    composed = time.perf_counter()
    pairs = [(entity, ref) for entity, refs in manifest.files.items() for ref in refs]
    load = runtime.live.load_files(pairs, lambda ref: runtime.snapshots.read_table(ref, verify=False))
    loaded = time.perf_counter()
    fault_point("loaded")
    runtime.live.stage(manifest, sha)
    return Candidate(manifest=manifest, load=load, seconds={
        "compose": composed - started, "load": loaded - composed, "views": time.perf_counter() - loaded})
