"""`make ui` stops on SIGTERM or Ctrl-C without a terminal: make, dagster dev, its webserver, daemon and code servers.

Each case starts `make ui UI_PORT=<free port>` in a session of its own (no controlling terminal) with a temporary
REVAL_HOME, waits until the webserver answers (its code location loaded), signals it and then waits for every
process it started to be gone.
The limit is a liveness bound (a hung `dagster dev` would otherwise outlive the test), not a speed assertion.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAMP = ROOT / ".venv" / ".installed-stamp"
START_TIMEOUT = 240  # the webserver answers once dagster dev, the webserver and the code location have started
STOP_BOUND = 60  # every process gone within this after the signal

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the processes"),
    pytest.mark.skipif(shutil.which("make") is None or not (ROOT / ".venv" / "bin" / "python").exists(),
                       reason="needs make and the project's .venv"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _loaded(port: int) -> bool:
    """Whether the webserver answers and has loaded the code location (so its code server has started)."""
    query = b'{"query": "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"}'
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            entries = json.loads(response.read())["data"]["workspaceOrError"]["locationEntries"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a script's `make ui &` starts it (no job control)


@pytest.mark.parametrize("how", ["sigterm", "sigterm_background", "ctrl_c"])
def test_make_ui_stops(how: str, tmp_path: Path) -> None:
    """sigterm: `kill MAKE_PID`; sigterm_background: the same, make started with SIGINT ignored (`make ui &` in
    a script); ctrl_c: SIGINT to the whole process group, as a terminal sends it."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVAL_", "DAGSTER_")) or k == "REVAL_TEST_PG_URL"}
    env.update(REVAL_HOME=str(tmp_path / "home"), REVAL_DOCTORS="200")
    log = tmp_path / "make-ui.log"
    # -o: never reinstall the environment from inside a test (`make ui` depends on `install`)
    command = ["make", "--no-print-directory", "-o", str(STAMP.relative_to(ROOT)), "ui", f"UI_PORT={port}"]
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_ignore_sigint if how == "sigterm_background" else None)
    started: set[int] = set()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _loaded(port):
            assert proc.poll() is None, f"make ui exited ({proc.returncode}) before serving:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"make ui did not answer on {port}:\n{log.read_text()[-4000:]}"
            time.sleep(1)
        started = _descendants(proc.pid)
        assert len(started) >= 3, f"expected dagster dev, its webserver and daemon under make, found {started}"

        if how == "ctrl_c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGTERM)  # make alone, as `kill` or a process manager sends it

        deadline = time.monotonic() + STOP_BOUND
        while (left := sorted(pid for pid in started | {proc.pid} if _alive(pid))) or _listening(port):
            assert time.monotonic() < deadline, (
                f"{how}: still running {STOP_BOUND}s after the signal: {left} (port {port} "
                f"{'open' if _listening(port) else 'closed'})\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
    finally:
        for pid in [proc.pid, *started]:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
