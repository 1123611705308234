"""The new-export sensor: off by default; a complete, settled export with new content starts one sync (which
publishes in dev and only stages in staging and prod); a half-copied, unchanged or merely touched export
starts none."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from reval_assets import jobs
from reval_assets.assets.checks import candidate_checks
from reval_assets.definitions import defs
from reval_assets.domain.enums import Environment
from reval_assets.pipeline.export_watch import ExportWatch
from reval_assets.pipeline.runtime import Runtime
from reval_assets.settings import Settings
from reval_assets.sources.export import write_export
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets_tests.test_dagster_layer import FULL_SYNC, QUIET

SENSOR = defs.resolve_sensor_def("new_export")


@pytest.fixture
def export(reval_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = write_export(SyntheticSource(doctors=1500, seed=7).extract(), reval_env.parent / "export")
    monkeypatch.setenv("REVAL_SOURCE", "files")
    monkeypatch.setenv("REVAL_SOURCE_DIR", str(folder))
    return folder


def _tick(instance: dg.DagsterInstance, cursor: str | None) -> tuple[list[dg.RunRequest], str | None, str]:
    with dg.build_sensor_context(instance=instance, cursor=cursor) as context:
        data = SENSOR.evaluate_tick(context)
    return list(data.run_requests or []), data.cursor, data.skip_message or ""


def test_the_sensor_is_off_by_default_and_watches_for_full_syncs() -> None:
    assert SENSOR.default_status == dg.DefaultSensorStatus.STOPPED and SENSOR.job_name == "full_sync"


def test_a_settled_new_export_starts_one_sync_that_publishes_in_dev(
        instance: dg.DagsterInstance, export: Path, open_runtime: Callable[[], Runtime]) -> None:
    requests, cursor, why = _tick(instance, None)
    assert not requests and "settle" in why  # first look: the files may still be being copied
    [request], cursor, _ = _tick(instance, cursor)
    assert request.run_key and request.tags["reval/actor"] == "sensor"
    assert not _tick(instance, cursor)[0]  # the same export: no second sync
    result = FULL_SYNC.execute_in_process(instance=instance, tags=request.tags,
                                          run_config={**QUIET, **request.run_config})
    assert result.success
    runtime = open_runtime()
    assert runtime.live.live_version() == runtime.live.candidate_for_run(result.run_id)
    assert runtime.live.version(runtime.live.live_version())["actor"] == "sensor"


def test_a_missing_file_starts_nothing_and_says_why(instance: dg.DagsterInstance, export: Path) -> None:
    (export / "trainee_info.json").unlink()
    requests, cursor, why = _tick(instance, None)
    assert not requests and "no complete export yet" in why and "trainee_info.json" in why
    assert not _tick(instance, cursor)[0]


def test_touched_but_unchanged_files_start_nothing_and_changed_content_starts_a_sync(
        instance: dg.DagsterInstance, export: Path) -> None:
    _, cursor, _ = _tick(instance, None)
    _, cursor, _ = _tick(instance, cursor)  # the first sync's request
    for path in export.iterdir():
        os.utime(path, None)
    _, cursor, _ = _tick(instance, cursor)  # changed times: settle first
    requests, cursor, why = _tick(instance, cursor)
    assert not requests and "same content" in why
    write_export(SyntheticSource(doctors=1500, seed=8).extract(), export)
    _, cursor, _ = _tick(instance, cursor)
    [request], _, _ = _tick(instance, cursor)
    assert request.run_key != ExportWatch.from_cursor(None).synced


def test_without_a_files_source_the_sensor_only_says_why(instance: dg.DagsterInstance, reval_env: Path) -> None:
    requests, _, why = _tick(instance, None)
    assert not requests and "REVAL_SOURCE is not files" in why


def test_in_staging_and_prod_an_unattended_sync_only_stages(monkeypatch: pytest.MonkeyPatch) -> None:
    for env in (Environment.STAGING, Environment.PROD):
        monkeypatch.setattr(jobs, "SETTINGS_AT_LOAD", Settings(env=env))
        request = jobs.unattended_sync("new export", "sensor", run_key="k")
        assert "live_release" not in request.run_config["ops"]
        assert dg.AssetKey("live_release") not in request.asset_selection
        assert dg.AssetKey("release_candidate") in request.asset_selection
        assert set(request.asset_check_keys) == set(candidate_checks.check_keys)
