"""What the runs list shows of a `reval sync` run: only the tags an operator reads; the machinery is hidden."""

from __future__ import annotations

import socket
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import TagType, get_tag_type

from reval_assets.dagster_home import dagster_home
from reval_assets.pipeline.runtime import Runtime
from reval_assets.run import HOST_TAG, PID_TAG, STARTED_TAG, run_sync

OPERATOR_TAGS = {"reval/actor", "reval/sync", "reval/sync_batches"}


def test_a_sync_run_shows_only_the_operator_tags_and_hides_the_process_ones(
        reval_env: Path, open_runtime: Callable[[], Runtime]) -> None:
    runtime = open_runtime()
    outcome = run_sync(runtime, batches=list(range(16)), reason="tags", actor="tester", confirm=None)
    assert outcome.published, outcome.error
    instance = dg.DagsterInstance.from_config(str(dagster_home(runtime.settings)))
    try:
        runs = instance.get_runs(dg.RunsFilter(run_ids=outcome.run_ids))
    finally:
        instance.dispose()
    assert len(runs) == 2
    for run in runs:
        # user-provided tags are pinned in the UI's runs list; `dagster/` ones behind "view all tags"; hidden never
        shown = {key for key in run.tags if get_tag_type(key) == TagType.USER_PROVIDED}
        assert shown <= OPERATOR_TAGS and "reval/actor" in shown, shown
        assert all(get_tag_type(tag) == TagType.HIDDEN and tag in run.tags for tag in (PID_TAG, HOST_TAG, STARTED_TAG))


def test_a_killed_syncs_run_is_found_by_its_hidden_tags_and_closed(
        reval_env: Path, open_runtime: Callable[[], Runtime]) -> None:
    runtime = open_runtime()
    gone = subprocess.Popen(["true"])
    gone.wait()
    instance = dg.DagsterInstance.from_config(str(dagster_home(runtime.settings)))
    stale = dg.DagsterRun(job_name="full_sync", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED,
                          tags={PID_TAG: str(gone.pid), HOST_TAG: socket.gethostname()})
    try:
        instance.add_run(stale)
    finally:
        instance.dispose()
    outcome = run_sync(runtime, batches=[0], reason="after a killed one", actor="tester", confirm=None)
    assert outcome.recovered_runs == [stale.run_id]
