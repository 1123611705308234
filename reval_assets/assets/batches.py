"""Per-batch assets: the four raw inputs and the three entities built from them."""


import dagster as dg

from reval_assets.assets.common import (
    OWNERS,
    TAGS,
    batch_partitions,
    batches_of,
    batches_to_land,
    column_schema,
    describe,
    run_group,
    writing,
)
from reval_assets.assets.failures import translated
from reval_assets.assets.io_manager import SNAPSHOT_IO_MANAGER
from reval_assets.domain.schemas import ENTITIES, ENTITY_SPECS, RAW_SPECS
from reval_assets.parallel import map_in_threads
from reval_assets.pipeline.room import require_room
from reval_assets.pipeline.steps import build_batch, land, land_batch, live_manifest
from reval_assets.resources import RevalResource

_RAW_TEXT = {
    "gmc_doctors": "GMC doctors (doctors_for_db.json, or gmc/<DBC>.xml GetDoctorsForDB responses)",
    "tis_trainees": "TIS trainee ConnectionInfo records (trainee_info.json)",
    "recommendation_records": "revalidation recommendations (recommendations.json)",
    "connection_logs": "connection changes, requested or from the GMC sync (connection_logs.json)",
    "hidden_discrepancy_records": "discrepancies an admin hid from a body's list (hidden_discrepancies.json, optional)",
}
_ENTITY_TEXT = {
    "doctors": "one row per doctor: GMC joined with TIS (the Connections screen's master record)",
    "connections": "one row per doctor: GMC connection, TIS view of it, latest change, discrepancy flag",
    "recommendations": "recommendation records with the trainee fields mapped on (recommendationInfo)",
    "hidden_discrepancies": "one row per doctor and body that hid their discrepancy, until hidden_until_date",
}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(name, group_name="raw", description=describe(f"Raw {text}, validated, one file per batch."),
                     kinds={"parquet"}, owners=OWNERS, tags=TAGS,
                     metadata={"dagster/column_schema": column_schema(RAW_SPECS[name].schema, name)})
        for name, text in _RAW_TEXT.items()
    ],
    partitions_def=batch_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=False,
)
def raw_inputs(context: dg.AssetExecutionContext, reval: RevalResource):
    """Read the source once (cached by content), quarantine bad records, write this run's batches."""
    with translated(context):
        yield from _raw_inputs(context, reval)


def _raw_inputs(context: dg.AssetExecutionContext, reval: RevalResource):
    runtime = reval.runtime()
    batches = batches_of(context)
    wanted = batches_to_land(context, runtime.settings.batches)
    with writing(runtime, "land the source", context):
        require_room(runtime)
        landing = land(runtime.source(), runtime.snapshots, runtime.settings.batches, only=wanted)
        refs = {b: land_batch(runtime.snapshots, landing, b) for b in batches}
    for name in RAW_SPECS:
        counts = landing.counts[name]
        files = [refs[b][name] for b in batches]
        yield dg.MaterializeResult(
            asset_key=name,
            metadata={
                "dagster/row_count": sum(f.rows for f in files),
                "dagster/column_schema": column_schema(RAW_SPECS[name].schema, name),
                "source": landing.source,
                "read_as": landing.details.get(name, {}).get("read_as") or "not recorded",
                "origin": landing.details.get(name, {}).get("origin") or "not recorded",  # file, or live system
                "records_in_source": landing.details.get(name, {}).get("export_records", counts["records"]),
                "records_landed": counts["records"],
                "quarantined_records": counts["quarantined"],
                "quarantine_file": dg.MetadataValue.path(str(runtime.snapshots.root / landing.quarantine.path)),
                "batches": ", ".join(map(str, batches)),
                **_file_metadata(runtime.snapshots.root, files),
            },
        )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(entity, group_name="entities", description=describe(f"{entity}: {text}."),
                     deps=list(RAW_SPECS), kinds={"parquet"}, owners=OWNERS, tags=TAGS,
                     metadata={"dagster/column_schema": column_schema(ENTITY_SPECS[entity].schema, entity)},
                     ).with_io_manager_key(SNAPSHOT_IO_MANAGER)  # loads them: load_asset_value, downstream inputs
        for entity, text in _ENTITY_TEXT.items()
    ],
    partitions_def=batch_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=False,
)
def entities(context: dg.AssetExecutionContext, reval: RevalResource):
    """Build each batch's entities and write them as immutable snapshot files; each head names its run group."""
    with translated(context):
        yield from _entities(context, reval)


def _entities(context: dg.AssetExecutionContext, reval: RevalResource):
    runtime = reval.runtime()
    group = run_group(context.run, context.instance)
    with writing(runtime, "build batches", context):
        live = live_manifest(runtime)  # the doctors a batch's GMC records lack are carried forward from it
        builds = map_in_threads(lambda b: build_batch(runtime.snapshots, b, run_group=group, live=live),
                                batches_of(context))
    for entity in ENTITIES:
        files = [build.refs[entity] for build in builds]
        reused = sum(build.reused[entity] for build in builds)
        yield dg.MaterializeResult(
            asset_key=entity,
            metadata={
                "dagster/row_count": sum(f.rows for f in files),
                "dagster/column_schema": column_schema(ENTITY_SPECS[entity].schema, entity),
                "batches_written": len(files) - reused,
                "batches_reused": reused,
                **(_carried_metadata(builds) if entity == "doctors" else {}),
                **_file_metadata(runtime.snapshots.root, files),
            },
        )


def _carried_metadata(builds: list) -> dict[str, int]:
    """The doctors kept from live that this sync's GMC records lacked (`transforms.build.carry_forward`)."""
    return {"carried_disconnected": sum(b.carried.get("disconnected", 0) for b in builds),
            "carried_gmc_record_quarantined": sum(b.carried.get("unreadable", 0) for b in builds)}


def _file_metadata(root, files) -> dict:  # type: ignore[no-untyped-def]
    if len(files) == 1:
        return {"file": dg.MetadataValue.path(str(root / files[0].path)), "sha256": files[0].sha256}
    rows = "\n".join(f"| {f.path.split('batch=')[1].split('/')[0]} | {f.rows} | `{f.sha256[:16]}` |" for f in files)
    return {"files": dg.MetadataValue.md("| batch | rows | sha256 |\n|---|---|---|\n" + rows)}
