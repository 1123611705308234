"""Operations on versions, shared by the `reval` command and the Dagster jobs."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa

from reval_assets.domain.schemas import ENTITIES
from reval_assets.pipeline.guard import GuardRefused, require_confirmation
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
from reval_assets.store.live import file_table
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
    data = CandidateData(tables=tables, exports=Export.from_manifest(manifest.landings))
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
            for e, refs in manifest.files.items()}


def check_candidate(runtime: Runtime, manifest: Manifest, thresholds: Thresholds | None = None) -> list[CheckResult]:
    """Run the blocking checks on a staged candidate and record the outcome in the catalog.

    A drift override (`thresholds.allow_drift_reason`) is audited as `allow_drift`, with
    whether it let a failing drift through, before the outcome is recorded.
    """
    thresholds = thresholds or Thresholds()
    results = run_checks(candidate_data(runtime, manifest), thresholds)
    if thresholds.allow_drift_reason:
        drift = next(r for r in results if r.name == "drift")
        runtime.live.audit("allow_drift", manifest.version, manifest.actor, manifest.env,
                           thresholds.allow_drift_reason,
                           {"check": "drift", "overridden": bool(drift.metadata.get("overridden")),
                            "drift": drift.description})
    runtime.live.record_checks(manifest.version, [r.to_dict() for r in results],
                               actor=manifest.actor, env=manifest.env)
    return results


def _guarded(runtime: Runtime, action: str, version: str, actor: str, reason: str, confirm: str | None) -> None:
    env = runtime.settings.env
    try:
        require_confirmation(env, confirm, action)
    except GuardRefused as refusal:
        runtime.live.audit("refuse", version, actor, env.value, reason, {"action": action, "message": str(refusal)})
        raise


def publish(runtime: Runtime, version: str, *, actor: str, reason: str, confirm: str | None = None) -> None:
    """Publish a staged candidate whose blocking checks passed (re-verified here, not trusted)."""
    _guarded(runtime, "publishing", version, actor, reason, confirm)
    runtime.live.publish(version, actor=actor, reason=reason, env=runtime.settings.env.value)


def rollback(runtime: Runtime, version: str, *, actor: str, reason: str, confirm: str | None = None) -> str | None:
    """Re-point live to a version that was live before, after checking its files are intact."""
    _guarded(runtime, "rolling back", version, actor, reason, confirm)
    manifest = runtime.snapshots.manifest(version)
    for ref in manifest.all_files():
        runtime.snapshots.read_bytes(ref)
    return runtime.live.rollback(version, actor=actor, reason=reason, env=runtime.settings.env.value)


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
    """Re-hash every file of a version (default: live) against its manifest."""
    version = version or runtime.live.live_version()
    if version is None:
        return {"version": None, "files": 0, "problems": []}
    manifest = runtime.snapshots.manifest(version)
    problems = [p for p in (runtime.snapshots.check(ref) for ref in manifest.all_files()) if p]
    row = runtime.live.version(version)
    if row and row.get("manifest_sha256"):
        actual = hashlib.sha256(manifest.to_json()).hexdigest()
        if actual != row["manifest_sha256"]:
            problems.append(f"manifest of {version}: sha256 {actual[:12]}… differs from the catalog's")
    return {"version": version, "files": sum(1 for _ in manifest.all_files()), "problems": problems}


@dataclass(frozen=True)
class GcPlan:
    retained: list[str]
    versions: list[str]
    files: list[Path]
    tables: list[str]
    manifests: list[str]
    views: list[str]


def plan_gc(runtime: Runtime, keep: int, grace_seconds: float = STALE_SECONDS) -> GcPlan:
    """What gc would delete: everything no retained version, head or newest landing reaches.

    Retained: the live version, pinned versions, the `keep` most recently published ones and
    the `keep` most recent candidates (staged or blocked, kept for inspection).
    """
    rows = runtime.live.versions()
    live = runtime.live.live_version()
    published = sorted((r for r in rows if r["published_at"]), key=lambda r: r["published_at"], reverse=True)
    candidates = sorted((r for r in rows if not r["published_at"]), key=lambda r: r["created_at"], reverse=True)
    retained = {live} | {r["version"] for r in rows if r["pinned"]}
    retained |= {r["version"] for r in published[:keep]} | {r["version"] for r in candidates[:keep]}
    retained.discard(None)
    drop_versions = [r["version"] for r in rows if r["version"] not in retained]

    snapshots = runtime.snapshots
    known = {r["version"] for r in rows}
    now = time.time()
    manifests = [v for v in snapshots.manifest_ids() if v not in known
                 and now - (snapshots.root / "versions" / f"{v}.json").stat().st_mtime > grace_seconds]
    reachable: set[str] = set()
    for version in retained:
        reachable |= {ref.path for ref in snapshots.manifest(version).all_files()}
    table_reach = {file_table(FileRef(path="", sha256=Path(p).stem, rows=0, bytes=0)) for p in reachable}
    reachable |= {ref.path for ref in snapshots.head_refs()}
    landings = snapshots.landings()
    for path in landings[-1:]:
        reachable |= {ref.path for ref in Landing.from_body(json.loads(path.read_bytes())).files()}
    files = [p for p in snapshots.file_paths()
             if str(p.relative_to(snapshots.root)) not in reachable and now - p.stat().st_mtime > grace_seconds]
    tables = sorted(runtime.live.loaded_tables() - table_reach)
    views = runtime.live.stray_version_views()
    return GcPlan(retained=sorted(retained), versions=drop_versions, files=files, tables=tables,
                  manifests=manifests, views=views)


def gc(runtime: Runtime, *, keep: int = 10, dry_run: bool = False, actor: str = "reval",
       grace_seconds: float = STALE_SECONDS) -> dict:
    """Delete what `plan_gc` finds; leftovers younger than `grace_seconds` may be a running sync's."""
    plan = plan_gc(runtime, keep, grace_seconds)
    snapshots = runtime.snapshots
    bytes_freed = sum(p.stat().st_size for p in plan.files if p.exists())
    if not dry_run:
        for version in plan.versions:
            runtime.live.drop_version(version)
            snapshots.delete_manifest(version)
        for version in plan.manifests:
            snapshots.delete_manifest(version)
        runtime.live.drop_views(plan.views)
        runtime.live.drop_tables(plan.tables)
        for path in plan.files:
            path.unlink(missing_ok=True)
        for path in snapshots.landings()[:-1]:
            path.unlink(missing_ok=True)
        _remove_stale_temp_files(snapshots.root, grace_seconds)
    report = {
        "dry_run": dry_run,
        "keep": keep,
        "retained": plan.retained,
        "versions_dropped": plan.versions,
        "files_deleted": len(plan.files),
        "bytes_freed": bytes_freed,
        "tables_dropped": len(plan.tables),
        "orphans": {"manifests": len(plan.manifests), "views": len(plan.views)},
    }
    if not dry_run:
        runtime.live.audit("gc", None, actor, runtime.settings.env.value, f"gc keep={keep}", report)
    return report


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

