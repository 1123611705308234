"""The whole code location, rendered as stable JSON and compared with `code_location.snapshot.json`.

Assets (group, deps, kinds, owners, tags, partitions, IO manager, columns), their checks, jobs with their
run config schemas, the schedule, the sensor and the resources. A change to any of them fails this test
with a diff of the snapshot. If the change is intended, regenerate the snapshot and commit it with the change:

    REVAL_UPDATE_SNAPSHOT=1 .venv/bin/pytest reval_assets_tests/test_code_location_snapshot.py

Rendered under the default environment (dev, 16 batches): descriptions carry the environment's label and
the partitions its batch count, so under another the test skips.
"""

from __future__ import annotations

import difflib
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._config import ConfigType, ConfigTypeKind

from reval_assets.assets.common import SETTINGS_AT_LOAD
from reval_assets.definitions import defs

SNAPSHOT = Path(__file__).with_name("code_location.snapshot.json")
UPDATE = os.environ.get("REVAL_UPDATE_SNAPSHOT") == "1"
SYSTEM_METADATA = ("dagster/column_schema", "dagster/io_manager_key")


def render_config(config_type: ConfigType) -> Any:
    """A config type as plain data: a shape as its fields, anything else as one line (`String or null`)."""
    kind = config_type.kind
    if kind in (ConfigTypeKind.STRICT_SHAPE, ConfigTypeKind.PERMISSIVE_SHAPE, ConfigTypeKind.SELECTOR):
        marker = {} if kind == ConfigTypeKind.STRICT_SHAPE else {"(kind)": kind.value.lower()}
        fields = config_type.fields.items()  # type: ignore[attr-defined]
        return marker | {name: render_field(field) for name, field in sorted(fields)}
    if kind in (ConfigTypeKind.ARRAY, ConfigTypeKind.NONEABLE):
        inner = render_config(config_type.inner_type)  # type: ignore[attr-defined]
        if isinstance(inner, dict):
            return {f"({kind.value.lower()} of)": inner}
        return f"[{inner}]" if kind == ConfigTypeKind.ARRAY else f"{inner} or null"
    if kind == ConfigTypeKind.SCALAR_UNION:  # a pydantic Config's scalar: its scalar, or a selector of it
        return render_config(config_type.scalar_type)  # type: ignore[attr-defined]
    if kind == ConfigTypeKind.ENUM:
        return "Enum(" + "|".join(sorted(v.config_value for v in config_type.enum_values)) + ")"  # type: ignore
    return config_type.given_name or kind.value


def render_field(field: Any) -> Any:
    """`type, required|default …: description`; a shape field as its fields under its own line."""
    inner = render_config(field.config_type)
    if field.is_required:
        how = "required"
    elif field.default_provided and not isinstance(inner, dict):
        how = f"default {field.default_value_as_json_str}"
    else:
        how = "optional"
    said = f": {field.description}" if field.description else ""
    if isinstance(inner, dict):
        return {"(field)": how + said, **inner}
    return f"{inner}, {how}{said}"


def render_partitions(partitions: dg.PartitionsDefinition | None) -> str | None:
    if partitions is None:
        return None
    keys = partitions.get_partition_keys()
    return f"{type(partitions).__name__}: {', '.join(keys)}"


def render_freshness(policy: object) -> str | None:
    if policy is None:
        return None
    windows = {name: getattr(policy, name, None) for name in ("fail_window", "warn_window")}
    hours = {name: timedelta(days=w.days, seconds=w.seconds).total_seconds() / 3600
             for name, w in windows.items() if w is not None}
    return f"{type(policy).__name__}: " + ", ".join(f"{name} {h:g} h" for name, h in hours.items())


def render_asset(spec: dg.AssetSpec) -> dict[str, Any]:
    assets_def = defs.resolve_assets_def(spec.key)
    columns = spec.metadata.get("dagster/column_schema")
    return {
        "group": spec.group_name,
        "description": spec.description,
        "deps": sorted(dep.asset_key.to_user_string() for dep in spec.deps),
        "owners": sorted(spec.owners),
        "tags": dict(sorted(spec.tags.items())),
        "partitions": render_partitions(spec.partitions_def),
        "backfill_policy": str(assets_def.backfill_policy) if assets_def.backfill_policy else None,
        "freshness_policy": render_freshness(spec.freshness_policy),
        "io_manager_key": spec.metadata.get("dagster/io_manager_key"),
        "metadata": sorted(key for key in spec.metadata if key not in SYSTEM_METADATA),
        "columns": [f"{c.name} {c.type}{'' if c.constraints.nullable else ' not null'}: {c.description}"
                    for c in columns.columns] if columns else None,
        "checks": {check.name: {"blocking": check.blocking, "description": check.description}
                   for check in sorted(assets_def.check_specs, key=lambda c: c.name)
                   if check.asset_key == spec.key},
        "op": assets_def.op.name,
    }


def render_job(job: dg.JobDefinition) -> dict[str, Any]:
    ops = job.run_config_schema.config_type.fields["ops"].config_type  # type: ignore[attr-defined]
    return {
        "description": job.description,
        "tags": dict(sorted(job.tags.items())),
        "ops": sorted(job.graph.node_dict),
        "config": {op: config.get("config", config) for op, config in render_config(ops).items()},
    }


def render(definitions: dg.Definitions) -> dict[str, Any]:
    specs = sorted(definitions.resolve_all_asset_specs(), key=lambda s: s.key.to_user_string())
    jobs = sorted(definitions.resolve_all_job_defs(), key=lambda j: j.name)
    return {
        "assets": {spec.key.to_user_string(): render_asset(spec) for spec in specs},
        "jobs": {job.name: render_job(job) for job in jobs if not job.name.startswith("__")},
        "schedules": {s.name: {"job": s.job_name, "cron": s.cron_schedule, "default_status": s.default_status.value,
                               "description": s.description} for s in definitions.schedules or []},
        "sensors": {s.name: {"job": s.job_name, "minimum_interval_seconds": s.minimum_interval_seconds,
                             "default_status": s.default_status.value, "description": s.description}
                    for s in definitions.sensors or []},
        "resources": {key: type(resource).__name__ for key, resource in sorted((definitions.resources or {}).items())},
    }


def rendered() -> str:
    return json.dumps(render(defs), indent=1, sort_keys=False, ensure_ascii=False) + "\n"


@pytest.mark.skipif(SETTINGS_AT_LOAD.env.value != "dev" or SETTINGS_AT_LOAD.batches != 16,
                    reason="the snapshot is of the default environment (REVAL_ENV=dev, 16 batches)")
def test_the_code_location_matches_its_snapshot() -> None:
    now = rendered()
    if UPDATE:
        SNAPSHOT.write_text(now)
        return
    if not SNAPSHOT.exists():
        pytest.fail(f"{SNAPSHOT.name} is missing; write it with REVAL_UPDATE_SNAPSHOT=1 .venv/bin/pytest {__file__}")
    before = SNAPSHOT.read_text()
    if now != before:
        diff = "".join(difflib.unified_diff(before.splitlines(keepends=True), now.splitlines(keepends=True),
                                            fromfile=f"{SNAPSHOT.name} (committed)", tofile="the code location now"))
        pytest.fail(f"the code location changed:\n{diff}\nIf that is intended, regenerate the snapshot: "
                    "REVAL_UPDATE_SNAPSHOT=1 .venv/bin/pytest reval_assets_tests/test_code_location_snapshot.py",
                    pytrace=False)


def test_every_column_of_every_asset_is_described() -> None:
    snapshot = render(defs)["assets"]
    undescribed = [f"{key}: {c}" for key, asset in snapshot.items() for c in asset["columns"] or []
                   if c.endswith(": None")]
    assert not undescribed
    assert all(snapshot[key]["columns"] for key in snapshot if snapshot[key]["group"] in ("raw", "entities"))


def test_a_column_without_a_description_is_named() -> None:
    from reval_assets.domain.schemas import column_description

    assert column_description("connection_logs", "reason") != column_description("hidden_discrepancies", "reason")
    with pytest.raises(KeyError, match="column 'nickname' of doctors has no entry in COLUMN_DESCRIPTIONS"):
        column_description("doctors", "nickname")
