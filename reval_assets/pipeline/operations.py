"""Operations on versions, shared by the `reval` command and the Dagster jobs."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa

from reval_assets.alerts import Alert, announces, send_alert
from reval_assets.domain.schemas import ENTITIES
from reval_assets.errors import RevalError
from reval_assets.pipeline.guard import guarded
from reval_assets.pipeline.runtime import Runtime
from reval_assets.pipeline.steps import Landing
from reval_assets.quality.checks import (
    BatchPair,
    CandidateData,
    CheckResult,
    Export,
    Thresholds,
    entity_drift,
    parse_time,
    run_checks,
)
from reval_assets.store.live import file_table, fingerprint
from reval_assets.store.live_gc import EvidencePlan, delete_evidence, plan_evidence
from reval_assets.store.snapshots import FileRef, Manifest

STALE_SECONDS = 600  # a leftover younger than this may belong to a sync still running


def read_entity(runtime: Runtime, refs: list[FileRef], *, verify: bool = False) -> pa.Table:
    return pa.concat_tables([runtime.snapshots.read_table(ref, verify=verify) for ref in refs])


def candidate_data(runtime: Runtime, manifest: Manifest) -> CandidateData:
    """The candidate's tables, the live version's (its parent) and what the source sent, for the checks.

    Live's tables are read a column at a time, when a check asks (`LazyTable`); a file both
    versions share is read once, with the candidate's.
    """
    read: dict[str, pa.Table] = {}

    def entity(refs: list[FileRef]) -> pa.Table:
        for ref in refs:
            if ref.sha256 not in read:
                read[ref.sha256] = runtime.snapshots.read_table(ref, verify=False)
        return pa.concat_tables([read[ref.sha256] for ref in refs])

    tables = {e: entity(refs) for e, refs in manifest.files.items()}
    data = CandidateData(tables=tables, exports=Export.from_manifest(manifest.landings),
                         designated_bodies=runtime.settings.designated_bodies, env=runtime.settings.env.value)
    if not manifest.parent:
        return data
    live_manifest = runtime.snapshots.manifest(manifest.parent)
    return replace(data, live={e: runtime.snapshots.lazy_table(refs, in_memory=read)
                               for e, refs in live_manifest.files.items()},
                   live_version=manifest.parent, live_exported_at=parse_time(live_manifest.exported_at),
                   layout=_layout(manifest, live_manifest) if live_manifest.batches == manifest.batches else {})


def _layout(manifest: Manifest, live: Manifest) -> dict[str, tuple[BatchPair, ...]]:
    return {e: tuple(BatchPair(rows=new.rows, live_rows=old.rows, same=new.sha256 == old.sha256)
                     for new, old in zip(refs, live.files[e], strict=True))
            for e, refs in manifest.files.items() if e in live.files}


def check_candidate(runtime: Runtime, manifest: Manifest, thresholds: Thresholds | None = None, *,
                    actor: str | None = None) -> list[CheckResult]:
    """Run the blocking checks on a staged (or blocked) candidate and record the outcome in the catalog.

    A drift override (`thresholds.allow_drift_reason`) is audited as `allow_drift`, with whether it let a
    failing drift through, before the outcome is recorded. Checked again by `actor` (the one who staged it,
    by default): a blocked candidate that now passes is staged again, audited as `unblock` with the
    thresholds that differ from the defaults.
    """
    thresholds = thresholds or Thresholds()
    actor = actor or manifest.actor
    results = run_checks(candidate_data(runtime, manifest), thresholds)
    if thresholds.allow_drift_reason:
        drift = next(r for r in results if r.name == "drift")
        runtime.live.audit("allow_drift", manifest.version, actor, manifest.env, thresholds.allow_drift_reason,
                           {"check": "drift", "overridden": bool(drift.metadata.get("overridden")),
                            "drift": drift.description})
    passed = runtime.live.record_checks(manifest.version, [r.to_dict() for r in results], actor=actor,
                                        env=manifest.env, changed_thresholds=thresholds.changed())
    runtime.snapshots.journal({"action": "checks", "version": manifest.version, "passed": passed,
                               "failed": [r.name for r in results if not r.passed]})
    if not passed:
        send_alert(Alert("blocked", env=manifest.env, version=manifest.version, live_version=manifest.parent,
                         checks=tuple(r.name for r in results if not r.passed and r.blocking),
                         actor=actor, reason=manifest.reason, run_id=manifest.run_id))
    return results


def publish(runtime: Runtime, version: str, *, actor: str, reason: str, confirm: str | None = None,
            named: bool = True) -> None:
    """Publish a staged candidate whose blocking checks passed (re-verified here, not trusted). `named` false:
    `actor` names no one (`guard.require_confirmation`)."""
    guarded(runtime, "publishing", version, actor, reason, confirm, named=named)
    with runtime.live.writer_lock("publish"):
        runtime.live.publish(version, actor=actor, reason=reason, env=runtime.settings.env.value)
        _journal_repoint(runtime, "publish", version, actor, reason)
    _announce(runtime, "published", version, None, actor, reason)


def rollback(runtime: Runtime, version: str, *, actor: str, reason: str, confirm: str | None = None,
             named: bool = True) -> str | None:
    """Re-point live to a version that was live before, after checking its files are intact."""
    guarded(runtime, "rolling back", version, actor, reason, confirm, named=named)
    with runtime.live.writer_lock("rollback"):
        manifest = runtime.snapshots.manifest(version)
        for ref in manifest.all_files():
            runtime.snapshots.read_bytes(ref)
        previous = runtime.live.rollback(version, actor=actor, reason=reason, env=runtime.settings.env.value)
        _journal_repoint(runtime, "rollback", version, actor, reason)
    _announce(runtime, "rolled_back", version, previous, actor, reason)
    return previous


def _announce(runtime: Runtime, event: str, version: str, previous: str | None, actor: str, reason: str) -> None:
    """Alert on a publish or rollback in an announced environment (prod), after the writer lock is released."""
    env = runtime.settings.env.value
    if announces(env):
        if event == "published":  # it replaced the version it was staged against (live.publish checks that)
            previous = (runtime.live.version(version) or {}).get("parent")
        send_alert(Alert(event, env=env, version=version, live_version=version, previous_version=previous,
                         actor=actor, reason=reason))


def _journal_repoint(runtime: Runtime, action: str, version: str, actor: str, reason: str) -> None:
    """Record in the snapshot home what the catalog just committed (for `reval recover`)."""
    published_at = (runtime.live.live_row()["published_at"] or "")
    runtime.snapshots.journal({"action": action, "version": version, "actor": actor, "reason": reason,
                               "at": _iso(published_at)})


def status(runtime: Runtime) -> dict:
    live = runtime.live.live_row()
    row = runtime.live.version(live["version"]) if live["version"] else None
    return {
        "env": runtime.settings.env.value,
        "live_version": live["version"],
        "rows": {e: (row or {}).get(f"rows_{e}") for e in ENTITIES},
        "published_at": _iso(live["published_at"]),
        "published_by": live["published_by"],
        "reason": live["reason"],
        "live_url": _redacted(runtime.settings.live_url),
        "source": (row or {}).get("source"),
    }


def versions(runtime: Runtime) -> list[dict]:
    return [
        {
            "version": r["version"],
            "status": r["status"],
            "parent": r["parent"],
            "created_at": _iso(r["created_at"]),
            "published_at": _iso(r["published_at"]),
            "actor": r["actor"],
            "reason": r["reason"],
            "pinned": bool(r["pinned"]),
            "checks_passed": r["checks_passed"],
            "rows": {e: r[f"rows_{e}"] for e in ENTITIES},
        }
        for r in runtime.live.versions()
    ]


def _differing_files(a: Manifest, b: Manifest, entity: str) -> tuple[list[FileRef], list[FileRef]]:
    """The files of `entity` in `a` and `b` whose batches differ: all of them if the batching does."""
    if a.batches != b.batches:
        return a.files[entity], b.files[entity]
    pairs = [(ra, rb) for ra, rb in zip(a.files[entity], b.files[entity], strict=True) if ra.sha256 != rb.sha256]
    return [ra for ra, _ in pairs], [rb for _, rb in pairs]


def diff_manifests(runtime: Runtime, a: Manifest, b: Manifest) -> dict[str, dict[str, int]]:
    """Rows added, removed and changed (by key) per entity, counted as the drift check counts them.

    Batches sharing a file are skipped; the files that differ are compared together, so a row that
    moves to another batch (a recommendation given to another doctor) is changed, not removed and added.
    """
    result: dict[str, dict[str, int]] = {}
    for entity in ENTITIES:
        old_refs, new_refs = _differing_files(a, b, entity)
        if not old_refs:  # every batch file shared
            result[entity] = {"added": 0, "removed": 0, "changed": 0}
            continue
        new, old = (read_entity(runtime, refs, verify=True) for refs in (new_refs, old_refs))
        drift = entity_drift(entity, new, old)
        result[entity] = {"added": drift.added, "removed": drift.removed, "changed": drift.changed}
    return result


def diff(runtime: Runtime, a: str, b: str) -> dict[str, dict[str, int]]:
    return diff_manifests(runtime, runtime.snapshots.manifest(a), runtime.snapshots.manifest(b))


def verify(runtime: Runtime, version: str | None = None) -> dict:
    """Re-hash every file of a version (default, None: live) against its manifest; "" is an unknown version."""
    version = runtime.live.live_version() if version is None else version
    if version is None:
        return {"version": None, "files": 0, "problems": []}
    manifest = runtime.snapshots.manifest(version)
    problems = [p for p in (runtime.snapshots.check(ref) for ref in manifest.all_files()) if p]
    row = runtime.live.version(version)
    if row and row.get("manifest_sha256"):
        actual = hashlib.sha256(manifest.to_json()).hexdigest()
        if actual != row["manifest_sha256"]:
            problems.append(f"manifest of {version}: sha256 {actual[:12]}… differs from the catalog's")
    if row and not problems:
        problems += _table_problems(runtime, manifest)
    return {"version": version, "files": sum(1 for _ in manifest.all_files()), "problems": problems,
            "tables": sum(1 for _ in manifest.all_files()) if row else 0}


def _table_problems(runtime: Runtime, manifest: Manifest) -> list[str]:
    """Each loaded table of the version against its (verified) file: rows, non-nulls, text lengths."""
    problems = []
    for entity, refs in manifest.files.items():
        for ref in refs:
            expected = fingerprint(runtime.snapshots.read_table(ref, verify=False))
            try:
                actual = runtime.live.table_fingerprint(entity, ref)
            except sa.exc.DBAPIError as error:
                problems.append(f"table {file_table(ref)} ({entity}, {ref.path}): cannot be read "
                                f"({str(error.orig).strip().splitlines()[0]})")
                continue
            if actual != expected:
                problems.append(f"table {file_table(ref)} ({entity}, {ref.path}): holds {actual[0]} rows, its file "
                                f"{expected[0]}" + ("" if actual[0] != expected[0] else " (the values differ)"))
    return problems


class GcError(RevalError, ValueError):
    """A gc that cannot go ahead as asked; nothing was deleted."""

    kind = "gc"


@dataclass(frozen=True)
class GcPlan:
    retained: list[str]
    versions: list[str]
    files: list[Path]
    tables: list[str]
    unseen_manifests: list[str]  # manifests no catalog has seen (a sync killed before staging): never deleted
    views: list[str]
    landings: list[Path]
    evidence: EvidencePlan  # GMC evidence folders no kept version or landing names


def plan_gc(runtime: Runtime, keep: int, grace_seconds: float = STALE_SECONDS) -> GcPlan:
    """What gc would delete: everything no retained version, head, unseen manifest or newest landing reaches.

    Retained: the live version, pinned versions, the `keep` most recently published ones, the `keep`
    most recent candidates (staged or blocked, kept for inspection) and every candidate younger than
    the grace period (it may be a running sync's, between its staging and its publish).
    """
    rows = runtime.live.versions()
    live = runtime.live.live_version()
    published = sorted((r for r in rows if r["published_at"]), key=lambda r: r["published_at"], reverse=True)
    candidates = sorted((r for r in rows if not r["published_at"]), key=lambda r: r["created_at"], reverse=True)
    young = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=grace_seconds)
    retained = {live} | {r["version"] for r in rows if r["pinned"]}
    retained |= {r["version"] for r in published[:keep]} | {r["version"] for r in candidates[:keep]}
    retained |= {r["version"] for r in candidates if r["created_at"] > young}
    retained.discard(None)
    drop_versions = [r["version"] for r in rows if r["version"] not in retained]

    snapshots = runtime.snapshots
    known = {r["version"] for r in rows}
    unseen = [v for v in snapshots.manifest_ids() if v not in known]
    reachable: set[str] = set()
    for version in [*retained, *unseen]:
        reachable |= {ref.path for ref in snapshots.manifest(version).all_files()}
    table_reach = {file_table(FileRef(path="", sha256=Path(p).stem, rows=0, bytes=0)) for p in reachable}
    reachable |= {ref.path for ref in snapshots.head_refs()}
    landings = snapshots.landings()
    for path in landings[-1:]:
        reachable |= {ref.path for ref in Landing.from_body(json.loads(path.read_bytes())).files()}
    files = [p for p in snapshots.file_paths()
             if str(p.relative_to(snapshots.root)) not in reachable and _older_than(p, grace_seconds)]
    tables = sorted(runtime.live.loaded_tables() - table_reach)
    views = runtime.live.stray_version_views()
    dropped_landings = [p for p in landings[:-1] if _older_than(p, grace_seconds)]
    evidence = plan_evidence(snapshots, runtime.evidence_root, [*retained, *unseen],
                             [p for p in landings if p not in set(dropped_landings)], grace_seconds)
    return GcPlan(retained=sorted(retained), versions=drop_versions, files=files, tables=tables,
                  unseen_manifests=unseen, views=views, landings=dropped_landings, evidence=evidence)


def _older_than(path: Path, seconds: float) -> bool:
    """Whether `path` was last written (or reused: a sync touches the files it reuses) over `seconds` ago."""
    try:
        return time.time() - path.stat().st_mtime > seconds
    except FileNotFoundError:
        return False


def gc(runtime: Runtime, *, keep: int = 10, dry_run: bool = False, actor: str = "reval",
       confirm: str | None = None, grace_seconds: float = STALE_SECONDS, named: bool = True) -> dict:
    """Delete what `plan_gc` finds, under the store's writer lock (no sync, publish or rollback meanwhile).

    Each dropped version is audited in the transaction that drops it, so a gc killed half-way says
    what it did. Leftovers younger than `grace_seconds` may be a running sync's and are spared.
    """
    if keep < 0:
        raise GcError(f"--keep must be 0 or more (how many published versions to keep besides live), not {keep}")
    if not dry_run:
        guarded(runtime, "deleting old versions (gc)", None, actor, f"gc keep={keep}", confirm, named=named)
    with runtime.live.writer_lock("gc"):
        plan = plan_gc(runtime, keep, grace_seconds)
        bytes_freed = sum(p.stat().st_size for p in plan.files if p.exists())
        if not dry_run:
            _apply_gc(runtime, plan, actor, f"gc keep={keep}", grace_seconds)
    report = {
        "dry_run": dry_run,
        "keep": keep,
        "retained": plan.retained,
        "versions_dropped": plan.versions,
        "files_deleted": len(plan.files),
        "bytes_freed": bytes_freed,
        "tables_dropped": len(plan.tables),
        "unseen_manifests_kept": len(plan.unseen_manifests),
        "evidence_folders_deleted": len(plan.evidence.folders),
        "evidence_bytes_freed": plan.evidence.bytes,
        "orphans": {"views": len(plan.views)},
    }
    if not dry_run:
        runtime.live.audit("gc", None, actor, runtime.settings.env.value, f"gc keep={keep}", report)
    return report


def _apply_gc(runtime: Runtime, plan: GcPlan, actor: str, reason: str, grace_seconds: float) -> None:
    snapshots, env = runtime.snapshots, runtime.settings.env.value
    for version in plan.versions:
        runtime.live.drop_version(version, actor=actor, env=env, reason=reason)
        snapshots.delete_manifest(version)
    runtime.live.drop_views(plan.views)
    runtime.live.drop_tables(plan.tables, actor=actor, env=env, reason=reason)
    for path in plan.files:
        if _older_than(path, grace_seconds):  # not reused by a sync since the plan
            path.unlink(missing_ok=True)
    for path in plan.landings:
        path.unlink(missing_ok=True)
    delete_evidence(plan.evidence, grace_seconds)
    _remove_stale_temp_files(snapshots.root, grace_seconds)


def _remove_stale_temp_files(root: Path, grace_seconds: float) -> None:
    now = time.time()
    for path in root.rglob(".tmp-*"):
        if now - path.stat().st_mtime > grace_seconds:
            path.unlink(missing_ok=True)


def _iso(value: object) -> str | None:
    return None if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)

