"""The blocking checks are `candidate_checks`, an asset check of release_candidate of their own: an operator
checks a staged or blocked version again, with other thresholds, without staging it again (issue 17, item 4)."""

from __future__ import annotations

import json
from collections.abc import Callable

import dagster as dg
import pytest

from reval_assets.definitions import defs
from reval_assets.pipeline.runtime import Runtime
from reval_assets.quality.checks import CHECKS
from reval_assets.run import QUIET, run_sync

ALL_BATCHES = list(range(16))
RELAXED = {"max_unknown_enum_records": 20}  # what the unknown_enums fault (a handful of values) needs


def check_again(instance: dg.DagsterInstance, **config: object) -> dg.ExecuteInProcessResult:
    """A run of the `check_again` job, as its launchpad launches it."""
    return defs.resolve_job_def("check_again").execute_in_process(instance=instance, raise_on_error=False,
                                  run_config={**QUIET, "ops": {"candidate_checks": {"config": config}}})


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    return failure.step_failure_data.user_failure_data.description or failure.step_failure_data.error.message


def audit(runtime: Runtime, version: str) -> list[tuple[str, str]]:
    return [(r["action"], r["actor"]) for r in runtime.live.audit_rows() if r["version"] == version]


def live_then_blocked(open_runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch,
                      confirm: str | None = None) -> tuple[Runtime, str, str]:
    """A live version, then a candidate blocked by unknown enum values only."""
    runtime = open_runtime()
    live = run_sync(runtime, batches=ALL_BATCHES, reason="clean", actor="tester", confirm=confirm)
    monkeypatch.setenv("REVAL_FAULTS", "unknown_enums")
    runtime = open_runtime()
    candidate = run_sync(runtime, batches=ALL_BATCHES, reason="two odd values", actor="tester", confirm=confirm)
    assert live.published and candidate.blocked_by == ["schema"], candidate.messages
    return runtime, live.version, candidate.version


@pytest.fixture
def blocked(instance: dg.DagsterInstance, open_runtime: Callable[[], Runtime],
            monkeypatch: pytest.MonkeyPatch) -> tuple[Runtime, str, str]:
    return live_then_blocked(open_runtime, monkeypatch)


def test_a_blocked_candidate_checked_again_with_other_thresholds_is_unblocked_audited_and_publishable(
        instance: dg.DagsterInstance, blocked: tuple[Runtime, str, str]) -> None:
    runtime, live, version = blocked
    same = check_again(instance, version=version)
    assert not same.success and "release blocked by schema" in failure_message(same)
    assert runtime.live.version(version)["status"] == "blocked"

    relaxed = check_again(instance, version=version, thresholds=RELAXED, operator="Alice Ward")
    assert relaxed.success
    evaluations = {e.check_name: e for e in relaxed.get_asset_check_evaluations()}
    assert set(evaluations) == set(CHECKS) and all(e.passed for e in evaluations.values())
    assert evaluations["schema"].metadata["version"].value == version
    row = runtime.live.version(version)
    assert row["status"] == "staged" and row["checks_passed"] is True
    assert audit(runtime, version)[-1] == ("unblock", "Alice Ward")
    [unblock] = [r for r in runtime.live.audit_rows() if r["action"] == "unblock"]
    assert json.loads(unblock["detail"]) == {"thresholds": RELAXED}
    assert runtime.live.live_version() == live  # checking publishes nothing

    published = defs.resolve_job_def("full_sync").execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey("live_release")],
        run_config={**QUIET, "ops": {"live_release": {"config": {"version": version}}}})
    assert published.success and runtime.live.live_version() == version


def test_a_staged_candidate_checked_again_with_stricter_thresholds_is_blocked(
        instance: dg.DagsterInstance, open_runtime: Callable[[], Runtime]) -> None:
    runtime = open_runtime()
    run_sync(runtime, batches=ALL_BATCHES, reason="clean", actor="tester", confirm=None)
    staged = run_sync(runtime, batches=ALL_BATCHES, reason="staged", actor="tester", confirm=None, publish=False)
    strict = check_again(instance, version=staged.version, thresholds={"min_rows": 10**9})
    assert not strict.success and "release blocked by non_empty" in failure_message(strict)
    assert runtime.live.version(staged.version)["status"] == "blocked"
    assert audit(runtime, staged.version)[-1] == ("block", "dagster")


def test_a_published_version_is_never_checked_again(
        instance: dg.DagsterInstance, blocked: tuple[Runtime, str, str]) -> None:
    runtime, live, version = blocked
    before = runtime.live.version(live)
    refused = check_again(instance, version=live, thresholds={"min_rows": 10**9})
    assert not refused.success
    message = failure_message(refused)
    assert f"{live} is live" in message and "only on a staged or blocked candidate" in message and version in message
    assert runtime.live.version(live) == before


def test_checks_with_no_candidate_of_their_run_say_which_can_be_named(
        instance: dg.DagsterInstance, blocked: tuple[Runtime, str, str]) -> None:
    _, _, version = blocked
    unnamed = check_again(instance)
    assert not unnamed.success
    message = failure_message(unnamed)
    assert "this run staged no candidate to check" in message and f"staged or blocked: {version}" in message
    unknown = check_again(instance, version="v20000101_000000_abcdef")
    assert not unknown.success and "not a version of this store" in failure_message(unknown)


def test_a_threshold_out_of_range_is_a_config_error_naming_it(
        instance: dg.DagsterInstance, blocked: tuple[Runtime, str, str]) -> None:
    runtime, _, version = blocked
    wrong = check_again(instance, version=version, thresholds={"min_mapping_coverage": 80})
    assert not wrong.success
    assert "candidate_checks config: threshold min_mapping_coverage must be a share" in failure_message(wrong)
    assert runtime.live.version(version)["status"] == "blocked"


def test_in_prod_checking_a_named_candidate_again_names_its_operator(
        instance: dg.DagsterInstance, open_runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVAL_ENV", "prod")
    runtime, _, version = live_then_blocked(open_runtime, monkeypatch, confirm="prod")
    unnamed = check_again(instance, version=version, thresholds=RELAXED)
    assert not unnamed.success
    message = failure_message(unnamed)
    assert message.startswith("REFUSED: this is PROD") and "operator: <your name>" in message
    assert runtime.live.version(version)["status"] == "blocked" and audit(runtime, version)[-1] == ("refuse", "dagster")
    named = check_again(instance, version=version, thresholds=RELAXED, operator="Alice Ward")
    assert named.success and audit(runtime, version)[-1] == ("unblock", "Alice Ward")
