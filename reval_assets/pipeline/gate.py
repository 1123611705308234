"""Before any command acts: is this the store it thinks it is?

A live store records, at its first sync, its identity (a store id), its environment and its batch
count, in its catalog (`reval_store`) and in its snapshot home (`store.json`). Every command checks:
- the catalog is there: a store whose catalog is missing or empty while its home holds versions
  refuses to act (`reval recover` rebuilds it); nothing makes an empty catalog beside them;
- one snapshot home serves one live store: a home that belongs to another store is refused, so
  `gc` on one store can never delete another's files;
- writers (sync, publish, rollback, gc) run in the store's environment (exit 4 otherwise) and with
  its batch count; readers only warn.
"""

from __future__ import annotations

import uuid

from sqlalchemy.engine import make_url

from reval_assets.errors import RevalError
from reval_assets.pipeline.guard import GuardRefused
from reval_assets.pipeline.runtime import Runtime


class StoreMismatch(RevalError):
    """The live store, the snapshot home and the settings do not belong together; nothing was changed."""

    kind = "store_mismatch"


class CatalogLost(StoreMismatch):
    """The snapshot home holds versions but the live store has no catalog for them."""


def check_store(runtime: Runtime, *, writing: bool) -> list[str]:
    """Refuse a store that is not what the settings say; returns warnings for a reader. A writer on a
    new store records its identity here."""
    live, home = runtime.live, runtime.snapshots
    catalog, served = live.identity(), home.identity()
    if catalog is None:
        catalog = _first_identity(runtime, served, writing=writing)
        if catalog is None:
            return []
    if served is None:
        if writing:
            home.put_identity(_home_identity(runtime, catalog))
    elif served["store_id"] != catalog["store_id"]:
        raise StoreMismatch(
            f"REVAL_HOME {runtime.settings.home} serves another live store ({served.get('live_url')}, store "
            f"{served['store_id'][:8]}), not {_where(runtime)} (store {catalog['store_id'][:8]}). One snapshot home "
            "serves one live store: point REVAL_HOME at this store's own home, or REVAL_LIVE_URL at the home's "
            "store. Nothing was changed.")
    return _settings_against(runtime, catalog, writing=writing)


def _first_identity(runtime: Runtime, served: dict | None, *, writing: bool) -> dict | None:
    """The identity a store without one takes: none while the home holds versions the catalog lost."""
    live, home = runtime.live, runtime.snapshots
    if not live.versions():
        kept = home.manifest_ids()
        if kept or served is not None:
            raise CatalogLost(
                f"the live store {_where(runtime)} has no catalog (or an empty one), but REVAL_HOME "
                f"{runtime.settings.home} holds {len(kept)} version(s) of store "
                f"{(served or {}).get('store_id', 'unknown')[:8]}. If the database was lost or recreated, "
                "`reval recover` rebuilds the catalog and the live pointer from those manifests; if REVAL_LIVE_URL "
                "is wrong, fix it; a new live store needs its own REVAL_HOME. Nothing was changed.")
    if not writing:
        return None
    if not live.made_catalog:  # a writer's LiveStore makes a missing catalog when it opens
        live.create_catalog()
    store_id = (served or {}).get("store_id") or str(uuid.uuid4())
    env, batches = _recorded_settings(runtime)
    live.set_identity(store_id, env, batches)
    return live.identity()


def _recorded_settings(runtime: Runtime) -> tuple[str, int]:
    """The environment and batch count a store already holding versions was made with (a catalog from
    before identities were recorded): its live version's; a new store takes the settings'."""
    live = runtime.live.live_version()
    if live is None:
        return runtime.settings.env.value, runtime.settings.batches
    row = runtime.live.version(live) or {}
    return row.get("env") or runtime.settings.env.value, runtime.snapshots.manifest(live).batches


def _home_identity(runtime: Runtime, catalog: dict) -> dict:
    return {"store_id": catalog["store_id"], "env": catalog["env"], "batches": catalog["batches"],
            "live_url": _where(runtime), "created_at": catalog["created_at"]}


def _settings_against(runtime: Runtime, catalog: dict, *, writing: bool) -> list[str]:
    settings, warnings = runtime.settings, []
    if catalog["env"] != settings.env.value:
        text = (f"this live store is {catalog['env'].upper()} (recorded at its first sync), but REVAL_ENV is "
                f"{settings.env.value}")
        if writing:
            raise GuardRefused(f"REFUSED: {text}. Set REVAL_ENV={catalog['env']} to work on it; a store never "
                               "changes environment (another environment needs its own REVAL_HOME and live "
                               "database). Nothing was changed.")
        warnings.append(f"warning: {text}")
    if catalog["batches"] != settings.batches:
        text = (f"this live store has {catalog['batches']} batches, but REVAL_BATCHES is {settings.batches}")
        if writing:
            raise StoreMismatch(f"{text}: a sync would mix two batchings and drop doctors. Set REVAL_BATCHES="
                                f"{catalog['batches']} (or unset it); to re-batch, start a new store with its own "
                                "REVAL_HOME and live database. Nothing was changed.")
        warnings.append(f"warning: {text}")
    return warnings


def _where(runtime: Runtime) -> str:
    return make_url(runtime.settings.live_url).render_as_string(hide_password=True)
