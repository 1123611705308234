"""A backfill of some partitions stages its own batches fresh and every other batch from live.

Whatever was materialised since the live version (a run staged but never published, a blocked
one), a candidate built by a backfill of partitions 2 and 5, from the UI, GraphQL or the daemon,
takes only batches 2 and 5 newest; the others are the live version's files. The same rule as
`reval sync --batches 2,5`. In process first (fast), then through the webserver's GraphQL API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from reval_assets.assets.common import SETTINGS_AT_LOAD, run_group
from reval_assets.domain.schemas import ENTITIES, RAW_SPECS
from reval_assets.pipeline.runtime import Runtime
from reval_assets.settings import Settings
from reval_assets.sources.export import write_export
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.store.snapshots import Manifest
from reval_assets_tests.test_browser import DOCTORS, ROOT, DagsterUI, dagster_dev, reval, reval_environ
from reval_assets_tests.test_dagster_layer import (
    ALL_KEYS,
    BATCH_ASSETS,
    FULL_SYNC,
    QUIET,
    RELEASE,
    materialized,
    publish_clean,
    range_tags,
    release,
    sync_batches,
)

CANDIDATE_ONLY = [dg.AssetKey("release_candidate")]
Files = dict[str, list[tuple[str, str, int]]]

pytestmark = pytest.mark.skipif(
    SETTINGS_AT_LOAD.batches != 16, reason="these tests assume the default 16 batches (REVAL_BATCHES unset)"
)


def rename_doctors(folder: Path, suffix: str) -> None:
    """Every doctor's last name changes: every batch's doctors differ, and no check blocks a rename."""
    path = folder / RAW_SPECS["gmc_doctors"].file
    doctors = json.loads(path.read_bytes())
    for doctor in doctors:
        doctor["doctorLastName"] = f"{doctor.get('doctorLastName') or 'Doe'}-{suffix}"
    path.write_text(json.dumps(doctors))


def files_of(manifest: Manifest) -> Files:
    return {e: [(ref.path, ref.sha256, ref.rows) for ref in refs] for e, refs in manifest.files.items()}


def batch_files(files: Files, batch: int) -> dict[str, tuple[str, str, int]]:
    return {entity: files[entity][batch] for entity in ENTITIES}


def assert_fresh_and_live(published: Files, *, fresh: set[int], staged: Files, live: Files) -> None:
    """The `fresh` batches are the staged (newest) files, every other batch is live's, and the two differ."""
    for batch in range(16):
        expected = staged if batch in fresh else live
        assert batch_files(published, batch) == batch_files(expected, batch), batch
        assert batch_files(staged, batch)["doctors"] != batch_files(live, batch)["doctors"], batch


# --- in process ------------------------------------------------------------------------------


@pytest.fixture
def runtime(reval_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """The runs read the export files in `tmp_path/export`, written from the synthetic source."""
    folder = write_export(SyntheticSource(doctors=1500, seed=7).extract(), tmp_path / "export")
    monkeypatch.setenv("REVAL_SOURCE", "files")
    monkeypatch.setenv("REVAL_SOURCE_DIR", str(folder))
    opened = Runtime(Settings.from_env())
    yield opened
    opened.close()


def stage_only(instance: dg.DagsterInstance, runtime: Runtime) -> Files:
    """With every doctor renamed: all batches rebuilt and a candidate staged, not published."""
    rename_doctors(runtime.settings.source_dir, "staged")
    assert sync_batches(instance).success
    result = release(instance, selection=CANDIDATE_ONLY)
    staged = runtime.live.candidate_for_run(result.run_id)
    assert staged and runtime.live.version(staged)["status"] == "staged"
    return files_of(runtime.snapshots.manifest(staged))


def test_a_run_of_some_partitions_and_the_release_takes_every_other_batch_from_live(
    instance: dg.DagsterInstance, runtime: Runtime
) -> None:
    first = publish_clean(instance, runtime)
    staged = stage_only(instance, runtime)

    result = FULL_SYNC.execute_in_process(
        instance=instance, tags=range_tags(2, 5), asset_selection=[*BATCH_ASSETS, *RELEASE], run_config=QUIET
    )
    assert result.success
    published = runtime.live.live_version()
    assert published == runtime.live.candidate_for_run(result.run_id) != first
    live = files_of(runtime.snapshots.manifest(first))
    assert_fresh_and_live(files_of(runtime.snapshots.manifest(published)), fresh={2, 3, 4, 5}, staged=staged,
                          live=live)
    metadata = materialized(result)["release_candidate"][0].metadata
    assert metadata["fresh_batches"].value == "2, 3, 4, 5"
    assert metadata["other_batches_from"].value == f"live {first}"


def test_the_runs_of_one_backfill_are_one_sync_and_a_release_on_its_own_says_what_it_took(
    instance: dg.DagsterInstance, runtime: Runtime
) -> None:
    first = publish_clean(instance, runtime)
    staged = stage_only(instance, runtime)

    # what the daemon launches for a backfill of partitions 2 and 5: one run per range, then the release
    backfill = {"dagster/backfill": "bfpart"}
    for batch in (2, 5):
        result = FULL_SYNC.execute_in_process(instance=instance, tags={**range_tags(batch, batch), **backfill},
                                              asset_selection=BATCH_ASSETS, run_config=QUIET)
        assert result.success
    result = FULL_SYNC.execute_in_process(instance=instance, tags=backfill, asset_selection=RELEASE,
                                          run_config=QUIET)
    assert result.success
    published = runtime.live.live_version()
    assert published == runtime.live.candidate_for_run(result.run_id)
    live = files_of(runtime.snapshots.manifest(first))
    assert_fresh_and_live(files_of(runtime.snapshots.manifest(published)), fresh={2, 5}, staged=staged, live=live)
    metadata = materialized(result)["release_candidate"][0].metadata
    assert metadata["fresh_batches"].value == "2, 5"
    assert metadata["other_batches_from"].value == f"live {first}"

    # a candidate staged on its own built no batch: it takes the newest of every batch, and says so
    alone = release(instance, selection=CANDIDATE_ONLY)
    metadata = materialized(alone)["release_candidate"][0].metadata
    assert metadata["fresh_batches"].value.startswith("all 16: this run built none")
    assert files_of(runtime.snapshots.manifest(runtime.live.candidate_for_run(alone.run_id))) == staged
    # explicit fresh_batches (what `reval sync --batches` passes) still wins
    explicit = release(instance, selection=CANDIDATE_ONLY,
                       ops={"release_candidate": {"config": {"fresh_batches": [7]}}})
    metadata = materialized(explicit)["release_candidate"][0].metadata
    assert metadata["fresh_batches"].value == "7" and metadata["other_batches_from"].value == f"live {published}"


def test_a_re_executed_run_belongs_to_the_sync_of_the_run_it_re_executes(instance: dg.DagsterInstance) -> None:
    def add(run_id: str, root: str | None = None, **tags: str) -> dg.DagsterRun:
        return instance.add_run(dg.DagsterRun(job_name="full_sync", run_id=run_id, tags=tags, root_run_id=root,
                                              parent_run_id=root))

    assert run_group(add("solo"), instance) == "run solo"
    assert run_group(add("solo-again", root="solo"), instance) == "run solo"
    add("in-backfill", **{"dagster/backfill": "abc"})
    # Dagster drops the backfill tags from a re-execution launched after its backfill ended
    assert run_group(add("after-backfill", root="in-backfill"), instance) == "backfill abc"
    retried = add("retried", **{"dagster/backfill": "def", "dagster/root_backfill_id": "abc"})
    assert run_group(retried, instance) == "backfill abc"  # a backfill re-executed from failure is its first's
    assert run_group(add("orphan", root="gone"), instance) == "run gone"


# --- through the webserver's GraphQL API, as the UI launches a backfill ----------------------

LAUNCH_BACKFILL = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
    ... on PartitionKeysNotFoundError { message } ... on InvalidSubsetError { message } } }"""


def launch_backfill(ui: DagsterUI, partitions: list[str], assets: list[str]) -> dict:
    """Launch a backfill the way the UI's "Materialize…" dialog does, and wait for it to end."""
    params = {"partitionNames": partitions, "assetSelection": [{"path": [name]} for name in assets],
              "fromFailure": False}
    launched = ui.gql(LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill = ui.wait_backfill(launched["backfillId"])
    assert backfill["status"] in ("COMPLETED_SUCCESS", "COMPLETED"), (backfill, ui.log_tail())
    assert backfill["runs"] and all(r["status"] == "SUCCESS" for r in backfill["runs"]), backfill
    return backfill


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_a_ui_backfill_of_two_partitions_publishes_every_other_batch_as_live(tmp_path: Path) -> None:
    home = tmp_path / "reval-home"
    folder = write_export(SyntheticSource(doctors=int(DOCTORS)).extract(), tmp_path / "export")
    env = reval_environ(home, REVAL_SOURCE="files", REVAL_SOURCE_DIR=str(folder))
    first = reval(env, "sync", "--reason", "first publish")
    assert first["published"] is True
    rename_doctors(folder, "staged")
    batch_assets = [*RAW_SPECS, *ENTITIES]
    logs = tmp_path / "logs"
    logs.mkdir()

    def manifest(version: str) -> Files:
        return files_of(Manifest.from_json((home / "snapshots" / "versions" / f"{version}.json").read_bytes()))

    with dagster_dev(env, ROOT / "workspace.yaml", "reval-DEV", logs) as ui:
        launch_backfill(ui, ALL_KEYS, [*batch_assets, "release_candidate"])  # staged, never published
        [staged] = [v["version"] for v in reval(env, "versions")["versions"] if v["status"] == "staged"]
        launch_backfill(ui, ["2", "5"], [*batch_assets, "release_candidate", "live_release"])

    published = reval(env, "status")["live_version"]
    assert published not in (first["version"], staged)
    assert_fresh_and_live(manifest(published), fresh={2, 5}, staged=manifest(staged), live=manifest(first["version"]))
