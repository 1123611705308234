"""Alerts: a JSON POST to `REVAL_ALERT_WEBHOOK` when a release is blocked or fails, and on every production
publish or rollback.

The body is what a Slack incoming webhook or a Microsoft Teams (legacy connector) webhook accepts: a top-level
`text`, one line, plus our own fields (`event`, `env`, `version`, `live_version`, `previous_version`, `checks`,
`actor`, `reason`, `error`, `step`, `run_id`, `at`), which those services ignore and a script can read. No
doctor's data is sent: check names, versions, the operator's reason and a shortened error message only.

An alert never fails or holds up the operation it reports: one attempt, no retries, the whole POST (name
lookup included) bounded by `TIMEOUT_SECONDS`, every problem logged as a warning and otherwise ignored. The
webhook URL may carry a secret, so no message names it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import urllib.error
import urllib.request
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

WEBHOOK_VARIABLE = "REVAL_ALERT_WEBHOOK"
TIMEOUT_SECONDS = 2.0  # the longest an alert may hold up a sync, publish or rollback
EVENTS = ("blocked", "failed", "published", "rolled_back")
ANNOUNCED_ENVS = frozenset({"prod"})  # where every publish and rollback is announced (blocked and failed: everywhere)
_ERROR_CHARS = 400

log = logging.getLogger(__name__)
_failed_runs: deque[str] = deque(maxlen=64)  # Dagster runs whose failure was alerted on, in this process


@dataclass(frozen=True)
class Alert:
    event: str  # one of EVENTS
    env: str
    version: str | None = None  # the version blocked, failed, published or rolled back to
    live_version: str | None = None  # what is live after the event
    previous_version: str | None = None  # what was live before a publish or rollback
    checks: tuple[str, ...] = ()  # the blocking checks that failed
    actor: str | None = None
    reason: str | None = None
    error: str | None = None
    step: str | None = None  # the failed step (asset) or stage
    run_id: str | None = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"alert event must be one of {', '.join(EVENTS)}, not {self.event!r}")

    @property
    def text(self) -> str:
        """The one-line summary the chat shows."""
        env, live = f"[{self.env.upper()}]", self.live_version or "no version yet"
        by = f" by {self.actor}" if self.actor else ""
        why = f": {self.reason}" if self.reason else ""
        if self.event == "blocked":
            return (f"{env} release {self.version} blocked by {', '.join(self.checks) or 'its checks'}; "
                    f"live is unchanged ({live}){by}{why}")
        if self.event == "failed":
            what = f"release {self.version}" if self.version else "release"
            where = f" in {self.step}" if self.step else ""
            now = f"; live is {self.live_version}" if self.live_version else ""
            return f"{env} {what} failed{where}: {self.error or 'see the Dagster run'}{now}{by}"
        if self.event == "published":
            return f"{env} {self.version} published{by} (was {self.previous_version or 'nothing'}){why}"
        return f"{env} rolled back to {self.version}{by} (was {self.previous_version or 'nothing'}){why}"

    def payload(self) -> dict:
        body = asdict(self)
        body["checks"] = list(self.checks)
        return {"text": self.text, **body}


def send_alert(alert: Alert, *, url: str | None = None, timeout: float = TIMEOUT_SECONDS) -> bool:
    """POST `alert` to `url` (default: $REVAL_ALERT_WEBHOOK; unset or empty: nothing is sent).

    Returns whether the webhook accepted it (2xx) within `timeout` seconds. Never raises.
    """
    try:
        if alert.event == "failed" and alert.run_id:
            _failed_runs.append(alert.run_id)
        url = (os.environ.get(WEBHOOK_VARIABLE, "") if url is None else url).strip()
        if not url:
            return False
        if not url.lower().startswith(("https://", "http://")):
            log.warning("alert %s not sent: %s is not an http(s) URL", alert.event, WEBHOOK_VARIABLE)
            return False
        body = json.dumps(alert.payload(), default=str).encode()
    except Exception as error:  # noqa: BLE001 - an alert never fails the operation
        log.warning("alert %s not sent: %s", alert.event, type(error).__name__)
        return False
    outcome: list[str] = []
    sender = threading.Thread(target=_post, args=(url, body, timeout, outcome), name="reval-alert", daemon=True)
    sender.start()
    sender.join(timeout)  # the thread bounds name lookup too, which the socket timeout does not
    problem = short_error(outcome[0]) if outcome else f"no answer within {timeout:g}s"
    if problem:
        log.warning("alert %s not delivered to %s: %s", alert.event, WEBHOOK_VARIABLE, problem)
    return not problem


def alerted_failure(run_id: str | None) -> bool:
    """Whether a `failed` alert was already sent for this Dagster run (by a release asset, in this process)."""
    return bool(run_id) and run_id in _failed_runs


def announces(env: str) -> bool:
    """Whether publishes and rollbacks in `env` are alerted on."""
    return env in ANNOUNCED_ENVS


def short_error(error: BaseException | str) -> str:
    """An error's message on one line, without SQL, bound parameters (which may hold doctors' data) or URLs."""
    text = str(error) if isinstance(error, str) else (str(error) or type(error).__name__)
    text = text.split("[SQL:", 1)[0].split("(Background on this error", 1)[0]
    text = re.sub(r"\b[a-z][a-z0-9+.-]*://\S+", "<url>", text, flags=re.IGNORECASE)
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_CHARS else text[:_ERROR_CHARS - 1] + "…"


def _post(url: str, body: bytes, timeout: float, outcome: list[str]) -> None:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "reval-alerts"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # http(s) only: checked by send_alert
            response.read(1024)
            outcome.append("" if 200 <= response.status < 300 else f"HTTP {response.status}")
    except urllib.error.HTTPError as error:
        outcome.append(f"HTTP {error.code}")
    except urllib.error.URLError as error:  # its reason never includes the URL
        reason = error.reason
        outcome.append(reason if isinstance(reason, str) else getattr(reason, "strerror", None)
                       or type(reason).__name__)
    except TimeoutError:
        outcome.append(f"no answer within {timeout:g}s")
    except Exception as error:  # noqa: BLE001 - e.g. a malformed URL: its message may quote the URL, so not shown
        outcome.append(type(error).__name__)
