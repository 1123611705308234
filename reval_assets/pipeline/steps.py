"""The sync's steps: land the source, build each batch, compose and stage a candidate.

Each step is idempotent and writes only new immutable files or a new staged version, so a
step killed at any instant leaves live untouched and the next run reuses what is complete.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from reval_assets.domain.batching import split_by_batch
from reval_assets.domain.conform import conform
from reval_assets.domain.schemas import ENTITIES, QUARANTINE_SCHEMA, RAW_SPECS
from reval_assets.pipeline.runtime import Runtime
from reval_assets.sources.base import Source, SourceError
from reval_assets.store.live import LoadReport
from reval_assets.store.snapshots import FileRef, Manifest, SnapshotStore
from reval_assets.transforms import build_entities

RAW_GROUP = "raw"
ENTITY_GROUP = "entities"


class MissingBatchError(Exception):
    pass


@dataclass(frozen=True)
class Landing:
    """A source read once, conformed, and split into one raw file per input x batch."""

    key: str
    source: str
    batches: int
    inputs: dict[str, list[FileRef]]
    quarantine: FileRef
    counts: dict[str, dict[str, int]]  # input -> records, kept, quarantined

    @classmethod
    def from_body(cls, body: dict) -> Landing:
        return cls(
            key=body["key"],
            source=body["source"],
            batches=body["batches"],
            inputs={k: [FileRef.from_dict(r) for r in refs] for k, refs in body["inputs"].items()},
            quarantine=FileRef.from_dict(body["quarantine"]),
            counts=body["counts"],
        )


def land(source: Source, store: SnapshotStore, batches: int) -> Landing:
    """Read and split the source once per content (cached by fingerprint): linear in its size."""
    key = f"{source.fingerprint()[:40]}-b{batches}"
    cached = store.landing(key)
    if cached is not None:
        return Landing.from_body(cached)
    wire = source.extract()
    inputs: dict[str, list[FileRef]] = {}
    counts: dict[str, dict[str, int]] = {}
    quarantines: list[pa.Table] = []
    for name, spec in RAW_SPECS.items():
        if name not in wire:
            raise SourceError(f"the source gave no {name} input", file=spec.file)
        conformed = conform(spec, wire[name].table, wire[name].origin)
        parts = split_by_batch(conformed.table, batches)
        inputs[name] = [store.put_table(f"{RAW_GROUP}/{name}", b, part)[0] for b, part in enumerate(parts)]
        counts[name] = {
            "records": wire[name].table.num_rows,
            "kept": conformed.table.num_rows,
            "quarantined": conformed.quarantined_records,
        }
        quarantines.append(conformed.quarantine)
    quarantine = pa.concat_tables(quarantines) if quarantines else QUARANTINE_SCHEMA.empty_table()
    quarantine_ref, _ = store.put_table("quarantine", 0, quarantine)
    body = {"key": key, "source": source.description, "batches": batches, "counts": counts,
            "inputs": {k: [r.__dict__ for r in refs] for k, refs in inputs.items()},
            "quarantine": quarantine_ref.__dict__, "landed_at": datetime.now(UTC).isoformat()}
    store.put_landing(key, body)
    return Landing.from_body(body)


def land_batch(store: SnapshotStore, landing: Landing, batch: int) -> dict[str, FileRef]:
    """Make the landed files of `batch` its current raw inputs."""
    refs = {name: landing.inputs[name][batch] for name in RAW_SPECS}
    store.set_head(RAW_GROUP, batch, refs, landing=landing.key, source=landing.source)
    return refs


@dataclass(frozen=True)
class BatchBuild:
    batch: int
    refs: dict[str, FileRef]
    reused: dict[str, bool]
    tables: dict[str, pa.Table] = field(repr=False)


def build_batch(store: SnapshotStore, batch: int) -> BatchBuild:
    """Build the three entities of one batch from its current raw inputs; write them as files."""
    body = store.head_body(RAW_GROUP, batch)
    if body is None:
        raise MissingBatchError(f"batch {batch} has no raw inputs yet; materialise the raw assets for partition "
                                f"{batch} first")
    raw = {name: store.read_table(FileRef.from_dict(ref)) for name, ref in body["refs"].items()}
    tables = build_entities(raw["gmc_doctors"], raw["tis_trainees"], raw["recommendation_records"],
                            raw["connection_logs"])
    refs: dict[str, FileRef] = {}
    reused: dict[str, bool] = {}
    for entity in ENTITIES:
        refs[entity], reused[entity] = store.put_table(entity, batch, tables[entity])
    store.set_head(ENTITY_GROUP, batch, refs, landing=body.get("landing"), source=body.get("source"))
    return BatchBuild(batch=batch, refs=refs, reused=reused, tables=tables)


def new_version_id() -> str:
    return datetime.now(UTC).strftime("v%Y%m%d_%H%M%S_") + secrets.token_hex(3)


@dataclass(frozen=True)
class Candidate:
    manifest: Manifest
    load: LoadReport
    seconds: dict[str, float]


def compose_manifest(runtime: Runtime, *, actor: str, reason: str, run_id: str | None) -> Manifest:
    """A new version from the current files of every entity x batch, each checked against its sha256."""
    store, batches = runtime.snapshots, runtime.settings.batches
    heads = {b: store.head_body(ENTITY_GROUP, b) for b in range(batches)}
    missing = [b for b, body in heads.items() if body is None]
    if missing:
        raise MissingBatchError(
            f"batches {', '.join(map(str, missing))} of {batches} have never been built; materialise doctors, "
            "connections and recommendations for those partitions (or all of them) first")
    files = {e: [FileRef.from_dict(heads[b]["refs"][e]) for b in range(batches)] for e in ENTITIES}
    for ref in (r for refs in files.values() for r in refs):
        store.read_bytes(ref)  # raises CorruptFileError naming the file
    landings = {heads[b].get("landing") for b in range(batches)} - {None}
    quarantined: dict[str, int] = {}
    for key in sorted(landings):
        body = store.landing(key)
        for name, counts in (body or {}).get("counts", {}).items():
            quarantined[name] = max(quarantined.get(name, 0), counts["quarantined"])
    sources = sorted({heads[b].get("source") or "unknown" for b in range(batches)})
    return Manifest(
        version=new_version_id(),
        parent=runtime.live.live_version(),
        created_at=datetime.now(UTC).isoformat(),
        actor=actor,
        reason=reason,
        env=runtime.settings.env.value,
        source="; ".join(sources),
        batches=batches,
        files=files,
        quarantined=quarantined,
        run_id=run_id,
    )


def stage_candidate(runtime: Runtime, *, actor: str, reason: str, run_id: str | None) -> Candidate:
    """Compose a version, write its manifest and load it beside live (not yet visible to readers)."""
    started = time.perf_counter()
    manifest = compose_manifest(runtime, actor=actor, reason=reason, run_id=run_id)
    sha = runtime.snapshots.put_manifest(manifest)
    composed = time.perf_counter()
    pairs = [(entity, ref) for entity, refs in manifest.files.items() for ref in refs]
    load = runtime.live.load_files(pairs, lambda ref: runtime.snapshots.read_table(ref, verify=False))
    loaded = time.perf_counter()
    runtime.live.stage(manifest, sha)
    return Candidate(manifest=manifest, load=load, seconds={
        "compose": composed - started, "load": loaded - composed, "views": time.perf_counter() - loaded})
