"""`reval recover`: rebuild a lost live-store catalog from the snapshot home alone.

The home keeps every version's manifest (immutable, with each file's sha256) and a journal of what
the catalog decided (checks passed or failed, every publish and rollback). Recovery loads each
version whose files verify, records it with its outcome, and points live at the version the journal
last made live (or the one the operator names with `--live`). A version whose files do not verify
is left out and reported; nothing in the home is changed.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from reval_assets.pipeline.gate import StoreMismatch
from reval_assets.pipeline.guard import GuardRefused, require_confirmation
from reval_assets.pipeline.runtime import Runtime
from reval_assets.store.snapshots import Manifest, UnknownVersionError


@dataclass
class Recovery:
    recovered: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # version -> why (a file that does not verify)
    live_version: str | None = None


@dataclass(frozen=True)
class _Outcomes:
    checks: dict[str, tuple[bool, list[str]]]  # version -> passed, failed checks
    published: dict[str, datetime]  # version -> when it was last made live
    last_live: str | None


def recover(runtime: Runtime, *, actor: str, reason: str, confirm: str | None = None,
            live_version: str | None = None) -> Recovery:
    """Rebuild the catalog of a store whose catalog is missing or empty (refused otherwise)."""
    settings, home, live = runtime.settings, runtime.snapshots, runtime.live
    served = home.identity() or {}
    if served.get("env", settings.env.value) != settings.env.value:
        raise GuardRefused(f"REFUSED: REVAL_HOME {settings.home} belongs to a {served['env'].upper()} store, but "
                           f"REVAL_ENV is {settings.env.value}; set REVAL_ENV={served['env']}. Nothing was changed.")
    require_confirmation(settings.env, confirm, "recovering the catalog")
    with live.writer_lock("recover"):
        if live.versions():
            raise StoreMismatch(f"the live store already has a catalog ({len(live.versions())} versions); recover "
                                "only rebuilds a lost or empty one. Nothing was changed.")
        kept = home.manifest_ids()
        if not kept:
            raise StoreMismatch(f"nothing to recover: REVAL_HOME {settings.home} holds no version manifests")
        if live_version is not None and live_version not in kept:
            raise UnknownVersionError(live_version)
        live.create_catalog()
        if live.identity() is None:
            live.set_identity(served.get("store_id") or str(uuid.uuid4()), settings.env.value,
                              int(served.get("batches") or home.manifest(kept[-1]).batches))
        outcomes = _journal_outcomes(home.journal_entries())
        result = Recovery()
        for version in kept:
            problem = _restore_version(runtime, home.manifest(version), outcomes, trusted=version == live_version)
            if problem:
                result.skipped[version] = problem
            else:
                result.recovered.append(version)
        target = live_version or outcomes.last_live
        if target in result.recovered:
            live.restore_live(target, actor=actor, reason=reason, env=settings.env.value)
            home.journal({"action": "recover", "version": target, "actor": actor, "reason": reason})
            result.live_version = target
        live.audit("recover", target, actor, settings.env.value, reason,
                   {"recovered": len(result.recovered), "skipped": result.skipped})
    return result


def _restore_version(runtime: Runtime, manifest: Manifest, outcomes: _Outcomes, *, trusted: bool) -> str | None:
    """Load and record one version; what is wrong with it instead, if a file does not verify."""
    home, live = runtime.snapshots, runtime.live
    for ref in manifest.all_files():
        problem = home.check(ref)
        if problem:
            return problem
    pairs = [(entity, ref) for entity, refs in manifest.files.items() for ref in refs]
    live.load_files(pairs, lambda ref: home.read_table(ref, verify=False))
    live.stage(manifest, hashlib.sha256(manifest.to_json()).hexdigest(), recovered=True)
    passed, failed = outcomes.checks.get(manifest.version, (None, []))
    published = outcomes.published.get(manifest.version)
    if trusted:  # the operator names it as the version that was live
        passed, published = True, published or datetime.fromisoformat(manifest.created_at).replace(tzinfo=None)
    live.restore_outcome(manifest.version, checks_passed=passed, failed=failed, published_at=published)
    return None


def _journal_outcomes(entries: list[dict]) -> _Outcomes:
    checks: dict[str, tuple[bool, list[str]]] = {}
    published: dict[str, datetime] = {}
    last_live = None
    for entry in entries:
        version = entry.get("version")
        if entry.get("action") == "checks" and version:
            checks[version] = (bool(entry.get("passed")), list(entry.get("failed") or []))
        elif entry.get("action") in ("publish", "rollback", "recover") and version:
            at = entry.get("at")
            published[version] = datetime.fromisoformat(at).replace(tzinfo=None) if at else datetime.min
            last_live = version
    return _Outcomes(checks=checks, published=published, last_live=last_live)
