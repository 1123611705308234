"""REVAL_ALERT_WEBHOOK: a JSON POST on a blocked or failed release and on every production publish and rollback.

Against a real HTTP receiver on 127.0.0.1 (a thread of this process), for syncs run in process
(`run_sync`, as `reval sync` and the Dagster UI run the asset graph) and through the `reval` command.
A webhook that fails, hangs or is not there never fails the sync, and no message names its URL.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reval_assets import alerts
from reval_assets.pipeline import operations
from reval_assets.pipeline.runtime import Runtime
from reval_assets.run import SyncResult, run_sync
from reval_assets.settings import Settings
from reval_assets_tests.test_cli import reval

SECRET_PATH = "/hooks/T0SECRET/B0SECRET/xyzzy-secret-token"


class Receiver:
    """An incoming webhook: records every POST's JSON body; answers 200, 500, or (hang) nothing until closed."""

    def __init__(self, answer: str = "ok"):
        self.posts: list[dict] = []
        self.answer = answer
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                       **json.loads(body)})
                if receiver.answer == "hang":
                    receiver.release.wait(60)
                    return
                self.send_response(500 if receiver.answer == "error" else 200)
                self.end_headers()
                self.wfile.write(b"ok" if receiver.answer == "ok" else b"boom")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"

    def events(self) -> list[str]:
        return [p["event"] for p in self.posts]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook(request: pytest.FixtureRequest, reval_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """A receiver (`answer` from the test's parameter, default ok) that REVAL_ALERT_WEBHOOK points at."""
    receiver = Receiver(getattr(request, "param", "ok"))
    monkeypatch.setenv(alerts.WEBHOOK_VARIABLE, receiver.url)
    yield receiver
    receiver.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sync(*, confirm: str | None = None, reason: str = "test") -> SyncResult:
    runtime = Runtime(Settings.from_env())
    try:
        return run_sync(runtime, batches=list(range(runtime.settings.batches)), reason=reason, actor="tester",
                        confirm=confirm)
    finally:
        runtime.close()


def _no_secret(caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    for text in [caplog.text, *texts]:
        assert "SECRET" not in text and "xyzzy" not in text, text


# --- the message itself ----------------------------------------------------------------------------------------


def test_an_alert_is_a_slack_and_teams_shaped_json_post(webhook: Receiver) -> None:
    alert = alerts.Alert("blocked", env="prod", version="v2", live_version="v1", checks=("drift", "non_empty"),
                         actor="ann", reason="nightly", run_id="r1")
    assert alerts.send_alert(alert) is True
    [post] = webhook.posts
    assert post["path"] == SECRET_PATH and post["content_type"] == "application/json"
    assert post["text"] == "[PROD] release v2 blocked by drift, non_empty; live is unchanged (v1) by ann: nightly"
    assert "\n" not in post["text"]
    assert {k: post[k] for k in ("event", "env", "version", "live_version", "checks", "actor", "reason")} == {
        "event": "blocked", "env": "prod", "version": "v2", "live_version": "v1", "checks": ["drift", "non_empty"],
        "actor": "ann", "reason": "nightly"}
    with pytest.raises(ValueError, match="event"):
        alerts.Alert("exploded", env="dev")
    assert alerts.announces("prod") and not alerts.announces("staging") and not alerts.announces("dev")


def test_without_a_webhook_nothing_is_sent(reval_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(alerts.WEBHOOK_VARIABLE, raising=False)
    sent: list[object] = []
    monkeypatch.setattr(alerts.urllib.request, "urlopen", lambda *a, **k: sent.append(a))
    assert alerts.send_alert(alerts.Alert("published", env="prod", version="v1")) is False
    assert sent == []


def test_errors_in_alerts_drop_sql_and_urls() -> None:
    error = "(psycopg.OperationalError) server closed [SQL: INSERT INTO doctors VALUES (%s)] [parameters: ('Dr X',)]"
    assert alerts.short_error(error) == "(psycopg.OperationalError) server closed"
    assert "secret" not in alerts.short_error("cannot reach postgresql://u:secret@db/reval now")


# --- through the syncs -----------------------------------------------------------------------------------------


def test_a_blocked_sync_alerts_in_process_and_from_the_command(webhook: Receiver, monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    first = _sync(reason="first")
    assert first.published and webhook.posts == []  # a dev publish is not announced

    monkeypatch.setenv("REVAL_FAULTS", "mapping_break")
    blocked = _sync(reason="broken mapping")
    assert blocked.blocked_by and not blocked.published
    [post] = webhook.posts
    assert post["event"] == "blocked" and post["env"] == "dev" and post["version"] == blocked.version
    assert post["live_version"] == first.version and post["checks"] == blocked.blocked_by
    assert "mapping_coverage" in post["checks"] and post["reason"] == "broken mapping"
    assert post["text"].startswith(f"[DEV] release {blocked.version} blocked by ")

    ran = reval("sync", "--reason", "from the command", expect=3)  # the `reval` command, another process
    assert webhook.events() == ["blocked", "blocked"]  # the blocked alert only, no second `failed` one
    assert webhook.posts[1]["reason"] == "from the command" and webhook.posts[1]["live_version"] == first.version
    _no_secret(caplog, ran.stdout, ran.stderr)


def test_a_failed_sync_alerts_once(webhook: Receiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REVAL_SOURCE", "files")
    monkeypatch.setenv("REVAL_SOURCE_DIR", str(tmp_path / "no-such-export"))
    failed = _sync(reason="from a missing export")
    assert failed.error and not failed.published
    [post] = webhook.posts
    assert post["event"] == "failed" and post["step"].startswith("building batch")
    assert "bad source" in post["error"] and post["reason"] == "from a missing export"
    assert post["run_id"] == failed.run_ids[-1]


def test_prod_publish_and_rollback_alert_and_a_refused_release_step_alerts_once(
        webhook: Receiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("REVAL_ENV", "prod")
    first = _sync(confirm="prod", reason="first")
    second = _sync(confirm="prod", reason="second")
    assert first.published and second.published
    assert webhook.events() == ["published", "published"]
    post = webhook.posts[1]
    assert post["env"] == "prod" and post["version"] == second.version == post["live_version"]
    assert post["previous_version"] == first.version and post["actor"] == "tester" and post["reason"] == "second"
    assert post["text"] == f"[PROD] {second.version} published by tester (was {first.version}): second"

    ran = reval("rollback", first.version, "--reason", "drill", "--confirm", "prod")
    assert webhook.events()[-1] == "rolled_back"
    post = webhook.posts[-1]
    assert post["version"] == post["live_version"] == first.version and post["previous_version"] == second.version
    assert post["reason"] == "drill" and post["text"].startswith(f"[PROD] rolled back to {first.version} by ")

    # A release run without the confirmation (as a UI launch without `confirm: prod`): live_release fails,
    # and only its step alerts (run_sync sees the step already did).
    refused = _sync(confirm=None, reason="unconfirmed")
    assert refused.refused and not refused.published
    assert webhook.events()[-1] == "failed" and len(webhook.posts) == 4
    post = webhook.posts[-1]
    assert post["step"] == "live_release" and "REFUSED" in post["error"] and post["live_version"] == first.version
    _no_secret(caplog, ran.stdout, ran.stderr)


# --- a webhook that fails, hangs or is not there ---------------------------------------------------------------


@pytest.mark.parametrize("webhook", ["error"], indirect=True)
def test_a_webhook_answering_500_does_not_fail_the_sync(webhook: Receiver, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("REVAL_ENV", "prod")
    with caplog.at_level(logging.WARNING, logger=alerts.__name__):
        result = _sync(confirm="prod")
    assert result.published and result.error is None
    assert webhook.events() == ["published"]
    assert "HTTP 500" in caplog.text
    _no_secret(caplog)


@pytest.mark.parametrize("webhook", ["hang"], indirect=True)
def test_a_hanging_webhook_does_not_hold_up_the_sync(webhook: Receiver, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    timeouts: list[float] = []
    urlopen = urllib.request.urlopen

    def spy(request: urllib.request.Request, *, timeout: float) -> object:
        timeouts.append(timeout)
        return urlopen(request, timeout=timeout)

    monkeypatch.setattr(alerts.urllib.request, "urlopen", spy)
    monkeypatch.setenv("REVAL_ENV", "prod")
    with caplog.at_level(logging.WARNING, logger=alerts.__name__):
        result = _sync(confirm="prod")
        rollback = Runtime(Settings.from_env())
        try:  # a rollback (to the same version) is announced too, and is not held up either
            operations.rollback(rollback, result.version, actor="tester", reason="again", confirm="prod")
        finally:
            rollback.close()
    assert result.published and result.error is None
    assert webhook.events() == ["published", "rolled_back"]  # received, never answered
    assert timeouts and all(0 < t <= 3 for t in timeouts) and alerts.TIMEOUT_SECONDS <= 3
    assert "no answer within" in caplog.text
    _no_secret(caplog)


def test_an_unreachable_webhook_does_not_fail_the_sync(reval_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(alerts.WEBHOOK_VARIABLE, f"http://127.0.0.1:{_free_port()}{SECRET_PATH}")
    monkeypatch.setenv("REVAL_ENV", "prod")
    with caplog.at_level(logging.WARNING, logger=alerts.__name__):
        result = _sync(confirm="prod")
        monkeypatch.setenv("REVAL_FAULTS", "mapping_break")
        blocked = _sync(confirm="prod")
    assert result.published and result.error is None
    assert blocked.blocked_by and blocked.error is None
    assert caplog.text.count("not delivered") == 2 and "refused" in caplog.text.lower()
    _no_secret(caplog)
    monkeypatch.setenv(alerts.WEBHOOK_VARIABLE, "ftp://example.invalid/xyzzy-secret-token")
    assert alerts.send_alert(alerts.Alert("published", env="prod", version="v1")) is False
    _no_secret(caplog)
