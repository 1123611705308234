"""Runs started by `reval sync` are ordinary runs of the instance: the UI shows them on its Overview timeline
and re-executes them (all steps, or from a failure), through the webserver's GraphQL API."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from reval_assets.instance_run import location_name
from reval_assets_tests.test_browser import ROOT, dagster_dev, reval, reval_environ

TIMELINE = """query($statuses: [RunStatus!]) { runsOrError(filter: {statuses: $statuses}) { ... on Runs {
  results { runId status repositoryOrigin { repositoryLocationName repositoryName } } } } }"""
LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""
STEP_FAILURES = """query($runId: ID!) { logsForRun(runId: $runId) { ... on EventConnection { events {
  __typename ... on ExecutionStepFailureEvent { stepKey failureMetadata { description } } } } } }"""
REEXECUTE = """mutation($p: ReexecutionParams!) { launchRunReexecution(reexecutionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""


def reexecute(ui, run_id: str, strategy: str) -> str:  # type: ignore[no-untyped-def]
    launched = ui.gql(REEXECUTE, p={"parentRunId": run_id, "strategy": strategy})["launchRunReexecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def launch_job(ui, job: str, run_config: dict) -> str:  # type: ignore[no-untyped-def]
    selector = {"repositoryLocationName": "reval-DEV", "repositoryName": "__repository__", "jobName": job}
    launched = ui.gql(LAUNCH, p={"selector": selector, "runConfigData": run_config})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def step_failure(ui, run_id: str) -> str:  # type: ignore[no-untyped-def]
    events = ui.gql(STEP_FAILURES, runId=run_id)["logsForRun"]["events"]
    [failure] = [e for e in events if e["__typename"] == "ExecutionStepFailureEvent"]
    return failure["failureMetadata"]["description"]


def test_the_origin_names_the_workspace_files_code_locations() -> None:
    for env, workspace in (("dev", "workspace.yaml"), ("staging", "deploy/workspace.staging.yaml"),
                           ("prod", "deploy/workspace.prod.yaml")):
        assert f"location_name: {location_name(env)}" in (ROOT / workspace).read_text()


def test_a_cli_run_is_ordinary_for_the_instance(reval_env: Path) -> None:
    synced = reval(reval_environ(reval_env), "sync", "--reason", "from the command line")
    with dg.DagsterInstance.from_config(str(reval_env / "dagster")) as instance:
        for run_id in synced["run_ids"]:
            run = instance.get_run_by_id(run_id)
            assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
            assert run.remote_job_origin is not None and run.job_code_origin is not None
            assert run.remote_job_origin.location_name == "reval-DEV"


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_ui_shows_cli_runs_on_its_timeline_and_re_executes_them(tmp_path: Path) -> None:
    home = tmp_path / "reval-home"
    env = reval_environ(home)
    synced = reval(env, "sync", "--reason", "from the command line")
    batches_run, release_run = synced["run_ids"]
    blocked = reval(reval_environ(home, REVAL_FAULTS="mapping_break"), "sync", "--reason", "a broken export",
                    expect=3)
    logs = tmp_path / "logs"
    logs.mkdir()
    with dagster_dev(env, ROOT / "workspace.yaml", "reval-DEV", logs) as ui:
        runs = ui.gql(TIMELINE, statuses=["SUCCESS", "FAILURE"])["runsOrError"]["results"]
        origins = {r["runId"]: r["repositoryOrigin"] for r in runs}
        for run_id in [*synced["run_ids"], *blocked["run_ids"]]:
            assert origins[run_id] == {"repositoryLocationName": "reval-DEV", "repositoryName": "__repository__"}
        assert ui.wait_run(reexecute(ui, batches_run, "ALL_STEPS")) == "SUCCESS", ui.log_tail()
        assert ui.wait_run(reexecute(ui, release_run, "ALL_STEPS")) == "SUCCESS", ui.log_tail()
        # the blocked release, from its failed step: its checks run again on the same candidate, still blocked
        again = reexecute(ui, blocked["run_ids"][-1], "FROM_FAILURE")
        assert ui.wait_run(again) == "FAILURE", ui.log_tail()
        assert step_failure(ui, again) == blocked["error"]
        # the checks alone (the check_again job's launchpad), with other thresholds: only mapping_coverage blocks
        relaxed = {"version": blocked["version"], "allow_drift_reason": "a drill",
                   "thresholds": {"min_rows": 0, "max_coverage_drop_points": 100.0}}
        checked = launch_job(ui, "check_again", {"ops": {"candidate_checks": {"config": relaxed}}})
        assert ui.wait_run(checked) == "FAILURE", ui.log_tail()
        assert step_failure(ui, checked).startswith("release blocked by mapping_coverage: ")
        # all its steps: staged again from the batches re-executed above, which are clean, so it publishes
        assert ui.wait_run(reexecute(ui, blocked["run_ids"][-1], "ALL_STEPS")) == "SUCCESS", ui.log_tail()
    status = reval(env, "status")
    assert status["live_version"] not in (synced["version"], blocked["version"])
    assert status["rows"] == synced["rows"]


def test_a_blocked_releases_run_failure_says_what_the_cli_says(reval_env: Path) -> None:
    env = reval_environ(reval_env)
    reval(env, "sync", "--reason", "a good export")
    blocked = reval(reval_environ(reval_env, REVAL_FAULTS="mapping_break"), "sync", "--reason", "a broken export",
                    expect=3)
    with dg.DagsterInstance.from_config(str(reval_env / "dagster")) as instance:
        failures = [e.dagster_event.step_failure_data for e in instance.all_logs(blocked["run_ids"][-1])
                    if e.dagster_event and e.dagster_event.event_type_value == "STEP_FAILURE"]
    [failure] = failures
    assert failure.user_failure_data.description == blocked["error"]
    assert "Live is unchanged" in blocked["error"] and "Next: `reval diff" in blocked["error"]
    assert failure.user_failure_data.metadata["reval/exit_code"].value == 3
