"""The Dagster UI, driven in a real browser (headless Chromium through Playwright) as an operator would.

`dagster dev` (webserver and daemon) runs as a subprocess against a temporary REVAL_HOME. The test
clicks: dismiss the first-visit pop-up, "Materialize all" on the asset graph, all partitions,
launch the backfill; then reads the checks and metadata the UI shows, and launches the `rollback`
job from the launchpad. Screenshots of each key screen are saved (the path is printed) under
`reval_assets_tests/artifacts/` (ignored by git; `REVAL_BROWSER_ARTIFACTS` moves it), and with
`REVAL_UPDATE_DOCS_IMG=1` the README's pictures in `docs/img/` are refreshed from the same run.

Needs /usr/bin/chromium (Debian's `chromium`) and the `playwright` package; skips without them
unless `REVAL_REQUIRE_BROWSER=1` (CI sets it), which turns the skip into a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = Path(os.environ.get("REVAL_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
REQUIRE_BROWSER = os.environ.get("REVAL_REQUIRE_BROWSER") == "1"
ARTIFACTS = Path(os.environ.get("REVAL_BROWSER_ARTIFACTS") or ROOT / "reval_assets_tests" / "artifacts")
DOCS_IMG = ROOT / "docs" / "img"
UPDATE_DOCS_IMG = os.environ.get("REVAL_UPDATE_DOCS_IMG") == "1"
DOCTORS = "2000"
UI_TIMEOUT_MS = 60_000  # every wait for a selector; the UI is slow on a 2-core machine while a run executes
# Buttons' accessible names start with their icon's label ("materialization Materialize all…").
MATERIALIZE = re.compile(r"\bMaterialize$")
MATERIALIZE_ALL = re.compile(r"\bMaterialize all")
RUN_URL = re.compile(r".*/runs/[0-9a-f-]{36}")
TERMINAL_RUN = {"SUCCESS", "FAILURE", "CANCELED"}
TERMINAL_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

pytestmark = pytest.mark.slow


def _why_no_browser() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    problem = _why_no_browser()
    if problem:
        if REQUIRE_BROWSER:
            pytest.fail(f"REVAL_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(f"browser test skipped: {problem}; set REVAL_REQUIRE_BROWSER=1 to make this a failure")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)  # assertions wait as long as any other step
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


# --- the environment, the `reval` command and `dagster dev` -------------------------------------


def reval_environ(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any REVAL_* or DAGSTER_HOME of the developer's, pointed at `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVAL_") and k != "DAGSTER_HOME"}
    env.update(REVAL_HOME=str(home), REVAL_DOCTORS=DOCTORS, REVAL_SEED="0", DAGSTER_HOME=str(home / "dagster"),
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", **extra)
    return env


def reval(env: dict[str, str], *args: str, expect: int = 0) -> dict:
    proc = subprocess.run([str(BIN / "reval"), *args, "--json"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == expect, f"reval {' '.join(args)} -> {proc.returncode}\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DagsterUI:
    """The webserver's address, its GraphQL API (for waiting), and the log of `dagster dev`."""

    def __init__(self, url: str, proc: subprocess.Popen, log: Path):
        self.url, self.proc, self.log = url, proc, log

    def gql(self, query: str, **variables: object) -> dict:
        request = urllib.request.Request(f"{self.url}/graphql", data=json.dumps(
            {"query": query, "variables": variables}).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def poll(self, what: str, probe: Callable[[], object], timeout: float) -> object:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"dagster dev exited ({self.proc.returncode}) while waiting for {what}:\n{self.log_tail()}")
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{self.log_tail()}")
            time.sleep(1)

    def wait_loaded(self, location: str, timeout: float = 240) -> None:
        query = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
                      locationOrLoadError { __typename ... on PythonError { message } } } } } }"""

        def probe() -> bool:
            try:
                entries = self.gql(query)["workspaceOrError"]["locationEntries"]
            except OSError:
                return False  # the webserver is not listening yet
            entry = next((e for e in entries if e["name"] == location), None)
            error = (entry or {}).get("locationOrLoadError") or {}
            if error.get("__typename") == "PythonError":
                pytest.fail(f"code location {location} failed to load: {error['message']}")
            return bool(entry and entry["loadStatus"] == "LOADED" and error)

        self.poll(f"code location {location} to load", probe, timeout)

    def wait_run(self, run_id: str, timeout: float = 300) -> str:
        query = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"

        def probe() -> str | None:
            status = (self.gql(query, id=run_id)["runOrError"] or {}).get("status")
            return status if status in TERMINAL_RUN else None

        return str(self.poll(f"run {run_id}", probe, timeout))

    def wait_backfill(self, backfill_id: str, timeout: float = 600) -> dict:
        query = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
                     ... on PartitionBackfill { status runs(limit: 50) { runId status } } } }"""

        def probe() -> dict | None:
            backfill = self.gql(query, id=backfill_id)["partitionBackfillOrError"]
            return backfill if backfill.get("status") in TERMINAL_BACKFILL else None

        return self.poll(f"backfill {backfill_id}", probe, timeout)  # type: ignore[return-value]


def _stop(proc: subprocess.Popen) -> None:
    """Interrupt the whole process group (webserver, daemon, code servers, runs), then kill what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@contextlib.contextmanager
def dagster_dev(env: dict[str, str], workspace: Path, location: str, artifacts: Path, *,
                read_only: bool = False) -> Iterator[DagsterUI]:
    """`dagster dev -w WORKSPACE` on a free port, as `make ui` starts it, until the code location has loaded;
    with `read_only`, `dagster-webserver --read-only` instead (the UI most production users get)."""
    subprocess.run([sys.executable, "-m", "reval_assets.dagster_home"], env=env, check=True, capture_output=True)
    assert (Path(env["DAGSTER_HOME"]) / "dagster.yaml").exists()
    port = _free_port()
    if read_only:
        command = [str(BIN / "dagster-webserver"), "--read-only"]
        log = artifacts / "dagster-webserver-read-only.log"
    else:
        command = [str(BIN / "dagster"), "dev"]
        log = artifacts / "dagster-dev.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*command, "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        ui = DagsterUI(f"http://127.0.0.1:{port}", proc, log)
        ui.wait_loaded(location)
        yield ui
    finally:
        _stop(proc)
        print(f"{command[0]} log: {log}")


# --- the browser ---------------------------------------------------------------------------------


class Screens:
    """Numbered screenshots of one test, and the README's pictures when asked to refresh them."""

    def __init__(self, folder: Path):
        self.folder, self.count, self.pages = folder, 0, []

    @contextlib.contextmanager
    def on_failure(self) -> Iterator[None]:
        """If the block fails, save what every open page showed at that moment."""
        try:
            yield
        except BaseException:
            for page in self.pages:
                with contextlib.suppress(Exception):
                    if not page.is_closed():
                        self.save(page, "FAILED")
            raise

    def save(self, page, name: str, *, docs: str | None = None, clip: dict | None = None) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), clip=clip)
        print(f"screenshot: {path}")
        if docs and UPDATE_DOCS_IMG:
            DOCS_IMG.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_IMG / docs)
            print(f"  refreshed {DOCS_IMG / docs}")
        return path


@pytest.fixture
def screens(request: pytest.FixtureRequest) -> Screens:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")  # test output, never committed
    folder = ARTIFACTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    print(f"\nbrowser artifacts: {folder}")
    return Screens(folder)


def open_page(browser, ui: DagsterUI, screens: Screens, path: str, *, first_visit: bool = False,
              width: int = 1600, height: int = 1000, scale: float = 1):
    """A fresh page at `path`. A new DAGSTER_HOME greets its first visitor with Dagster's community pop-up:
    on the first visit wait for it and close it with Skip, as a user would; later, close it if it shows again."""
    page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=scale)
    screens.pages.append(page)
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(ui.url + path)
    popup = page.get_by_text("Join the Dagster community")
    skip = page.get_by_role("button", name="Skip")
    if first_visit:
        popup.wait_for()
        skip.click()
        popup.wait_for(state="hidden")
    page.add_locator_handler(popup, lambda: skip.click())
    return page


def metadata_row(page, key: str):
    """The row of an asset's metadata table whose key is `key`."""
    return page.get_by_role("row").filter(has=page.get_by_text(key, exact=True)).first


def launch_rollback(page, ui: DagsterUI, location: str, version: str, reason: str, **more: str) -> None:
    """Type the rollback job's config (and `more` fields, e.g. confirm) into the launchpad's editor."""
    page.goto(f"{ui.url}/locations/{location}/jobs/rollback/playground")
    editor = page.locator(".CodeMirror").first
    editor.wait_for()
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    # insert_text types no keys, so the editor's auto-indent and bracket closing cannot reshape the YAML
    fields = {"version": version, "reason": reason, **more}
    page.keyboard.insert_text("ops:\n  rollback_op:\n    config:\n"
                              + "".join(f"      {key}: {value}\n" for key, value in fields.items()))
    page.get_by_text("No errors").wait_for()


def click_launch_run(page) -> str:
    page.get_by_role("button", name="Launch Run").click()
    page.wait_for_url(RUN_URL)
    return page.url.rsplit("/", 1)[-1].split("?")[0]


def graph_clip(page, margin: int = 24) -> dict:
    """The part of the page that holds the asset graph (its groups and nodes), without the empty canvas."""
    boxes = [box for box in (n.bounding_box() for n in page.locator("foreignObject").all()) if box]
    x0 = max(min(b["x"] for b in boxes) - margin, 0)
    y0 = max(min(b["y"] for b in boxes) - margin, 0)
    size = page.viewport_size
    x1 = min(max(b["x"] + b["width"] for b in boxes) + margin, size["width"])
    y1 = min(max(b["y"] + b["height"] for b in boxes) + margin, size["height"])
    return {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}


# --- the tests -----------------------------------------------------------------------------------


@pytest.mark.timeout(1200)
def test_operator_backfills_everything_sees_checks_pass_and_rolls_back_from_the_launchpad(
        browser, screens: Screens, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from reval_assets.domain.schemas import ENTITIES, RAW_SPECS
    from reval_assets.quality.checks import CHECKS

    env = reval_environ(tmp_path / "reval-home")
    # Before the UI: one published version (the rollback target), then a sync blocked by the
    # broken traineeInfo -> recommendationInfo mapping of the incident, which leaves live alone.
    first = reval(env, "sync", "--reason", "first publish")
    assert first["published"] is True
    blocked = reval({**env, "REVAL_FAULTS": "mapping_break"}, "sync", "--reason", "broken export", expect=3)
    assert blocked["published"] is False and blocked["blocked_by"]
    assert reval(env, "status")["live_version"] == first["version"]

    with dagster_dev(env, ROOT / "workspace.yaml", "reval-DEV", screens.folder) as ui, screens.on_failure():
        page = open_page(browser, ui, screens, "/asset-groups", first_visit=True)
        materialize_all = page.get_by_role("button", name=MATERIALIZE_ALL)
        materialize_all.wait_for()

        # The blocked release, as the UI shows it: the candidate's failed blocking check(s).
        page.goto(f"{ui.url}/assets/release_candidate?view=checks")
        failed = blocked["blocked_by"][0]
        page.get_by_text(failed, exact=True).first.click()
        expect(page.get_by_text("Failed", exact=True).first).to_be_visible()
        expect(page.get_by_text("This is a blocking asset check.")).to_be_visible()
        screens.save(page, "blocked-release-check", docs="blocked-release.png")

        # Materialize all -> all 16 partitions -> launch the backfill, by clicking.
        page.goto(f"{ui.url}/asset-groups")
        materialize_all.click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_text(f"Launch runs to materialize {len(RAW_SPECS) + len(ENTITIES) + 2} assets")) \
            .to_be_visible()
        dialog.get_by_role("button", name="All", exact=True).click()
        expect(dialog.get_by_text("16 partitions", exact=True)).to_be_visible()
        screens.save(page, "materialize-all-dialog")
        dialog.get_by_role("button", name="Launch backfill").click()
        toast = page.get_by_text(re.compile(r"Created backfill [a-z]+"))
        toast.wait_for()
        backfill_id = re.search(r"Created backfill ([a-z]+)", toast.inner_text()).group(1)

        backfill = ui.wait_backfill(backfill_id)
        assert backfill["status"] in ("COMPLETED_SUCCESS", "COMPLETED"), backfill
        assert backfill["runs"] and all(r["status"] == "SUCCESS" for r in backfill["runs"]), backfill
        page.goto(f"{ui.url}/runs/b/{backfill_id}?tab=runs")
        expect(page.get_by_text(backfill_id).first).to_be_visible()
        screens.save(page, "backfill-done")

        published = reval(env, "status")["live_version"]
        assert published not in (first["version"], blocked["version"])

        # Every blocking check of the new candidate passed, and the metadata names the version.
        page.goto(f"{ui.url}/assets/release_candidate?view=checks")
        for name in CHECKS:
            page.get_by_text(name, exact=True).first.wait_for()
        expect(page.get_by_text("Succeeded", exact=True)).to_have_count(len(CHECKS))
        expect(page.get_by_text("Failed", exact=True)).to_have_count(0)
        expect(metadata_row(page, "version")).to_contain_text(published)
        screens.save(page, "checks-passed", docs="checks-passed.png")

        page.goto(f"{ui.url}/assets/release_candidate")
        expect(metadata_row(page, "version")).to_contain_text(published)
        expect(metadata_row(page, "fresh_batches")).to_contain_text("all 16")
        # Numbers plot: the candidate's rows and loaded tables over its three materialisations.
        page.get_by_role("button", name=re.compile(r"\bPlots$")).click()
        for key in ("rows_recommendations", "rows_connections", "tables_loaded"):
            expect(page.get_by_text(key, exact=True).first).to_be_visible()
        page.get_by_text("rows_doctors", exact=True).first.evaluate("e => e.scrollIntoView({block: 'center'})")
        screens.save(page, "release-candidate-plots", docs="plots.png")
        page.goto(f"{ui.url}/assets/live_release")
        expect(metadata_row(page, "live_version")).to_contain_text(published)
        screens.save(page, "live-release-published")

        # The asset graph, all groups expanded, everything materialised (twice the pixels, for the README).
        graph = open_page(browser, ui, screens, "/asset-groups", width=1700, height=1300, scale=2)
        graph.get_by_role("button", name=MATERIALIZE_ALL).wait_for()
        graph.keyboard.press("Alt+e")  # expand all groups, then make room: the graph zooms to fit
        nodes = [*RAW_SPECS, *ENTITIES, "release_candidate", "live_release"]
        for name in nodes:
            graph.get_by_text(name, exact=True).last.wait_for()
        graph.get_by_role("button", name="Hide navigation").click()
        graph.get_by_placeholder("Jump to").locator("xpath=following::button[1]").click()  # hide the asset tree
        expect(graph.get_by_text("Materialized")).to_have_count(2)  # the two unpartitioned release assets
        expect(graph.get_by_text("100% filled")).to_have_count(len(RAW_SPECS) + len(ENTITIES))
        expect(graph.get_by_text(f"{len(CHECKS)} / {len(CHECKS)} Passed")).to_be_visible()
        graph.wait_for_timeout(1000)  # let the zoom-to-fit animation settle
        screens.save(graph, "asset-graph", docs="asset-graph.png", clip=graph_clip(graph))
        graph.close()

        # Roll back from the launchpad to the first version, and see live change.
        launch_rollback(page, ui, "reval-DEV", first["version"], "browser drill")
        screens.save(page, "rollback-launchpad", docs="rollback-launchpad.png")
        run_id = click_launch_run(page)
        assert ui.wait_run(run_id) == "SUCCESS", ui.log_tail()
        expect(page.get_by_text(f"live is now {first['version']} (was {published})").first).to_be_visible()
        screens.save(page, "rollback-run")

        page.goto(f"{ui.url}/assets/live_release")
        expect(metadata_row(page, "live_version")).to_contain_text(first["version"])
        expect(metadata_row(page, "reason")).to_contain_text("browser drill")
        screens.save(page, "live-release-rolled-back", docs="live-after-rollback.png")
        page.close()

    now = reval(env, "status")
    assert now["live_version"] == first["version"]
    assert now["reason"] == "browser drill"


@pytest.mark.timeout(900)
def test_prod_ui_launches_are_refused_until_confirmed_and_named_and_the_run_log_says_why(
        browser, screens: Screens, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    env = reval_environ(tmp_path / "reval-home", REVAL_ENV="prod")
    earlier = reval(env, "sync", "--confirm", "prod", "--reason", "first prod publish")["version"]
    live = reval(env, "sync", "--confirm", "prod", "--reason", "second prod publish")["version"]
    staged = reval(env, "sync", "--no-publish", "--reason", "staged, awaiting sign-off")["version"]
    workspace = ROOT / "deploy" / "workspace.prod.yaml"
    if not workspace.exists():
        workspace = tmp_path / "workspace.prod.yaml"
        workspace.write_text("load_from:\n  - python_module:\n      module_name: reval_assets.definitions\n"
                             "      attribute: defs_prod\n      location_name: reval-PROD\n")

    with dagster_dev(env, workspace, "reval-PROD", screens.folder) as ui, screens.on_failure():
        page = open_page(browser, ui, screens, "/assets/live_release", first_visit=True)
        expect(page.get_by_text("[PROD]", exact=False).first).to_be_visible()
        expect(page.get_by_text("reval-PROD").first).to_be_visible()

        # Publishing from the UI (Materialize on live_release) without `confirm: prod`.
        page.get_by_role("button", name=MATERIALIZE).click()
        toast = page.get_by_text(re.compile(r"Launched run [0-9a-f]+"))
        toast.wait_for()
        page.get_by_role("button", name="View").or_(page.get_by_role("link", name="View")).first.click()
        page.wait_for_url(RUN_URL)
        run_id = page.url.rsplit("/", 1)[-1].split("?")[0]
        assert ui.wait_run(run_id) == "FAILURE"
        expect(page.get_by_text("REFUSED: this is PROD").first).to_be_visible()
        screens.save(page, "prod-publish-refused", docs="prod-refused.png")

        # Rolling back from the launchpad without `confirm: prod`, then without saying who is doing it.
        launch_rollback(page, ui, "reval-PROD", earlier, "no confirmation given")
        run_id = click_launch_run(page)
        assert ui.wait_run(run_id) == "FAILURE"
        expect(page.get_by_text("REFUSED: this is PROD").first).to_be_visible()
        expect(page.get_by_text("confirm: prod").first).to_be_visible()
        screens.save(page, "prod-rollback-refused")
        launch_rollback(page, ui, "reval-PROD", earlier, "nobody named", confirm="prod")
        assert ui.wait_run(click_launch_run(page)) == "FAILURE"
        expect(page.get_by_text("operator: <your name>").first).to_be_visible()
        assert reval(env, "status")["live_version"] == live

        # Confirmed and named: rolled back, and the audit says who did it.
        launch_rollback(page, ui, "reval-PROD", earlier, "bad second publish", confirm="prod", operator="Alice Ward")
        assert ui.wait_run(click_launch_run(page)) == "SUCCESS"
        screens.save(page, "prod-rollback-named")
        page.close()
    now = reval(env, "status")
    assert now["live_version"] == earlier and now["published_by"] == "Alice Ward"

    # The UI most production users get: it shows everything and can launch nothing.
    with dagster_dev(env, workspace, "reval-PROD", screens.folder, read_only=True) as ui, screens.on_failure():
        page = open_page(browser, ui, screens, "/assets/live_release")
        expect(metadata_row(page, "live_version")).to_contain_text(earlier)
        expect(page.get_by_role("button", name=MATERIALIZE)).to_be_disabled()
        page.goto(f"{ui.url}/locations/reval-PROD/jobs/rollback")
        expect(page.get_by_role("tab", name="Launchpad")).to_be_disabled()
        screens.save(page, "prod-read-only-no-launchpad")
        page.close()

    now = reval(env, "status")
    assert now["env"] == "prod" and now["live_version"] == earlier
    versions = {v["version"]: v["status"] for v in reval(env, "versions")["versions"]}
    assert versions == {earlier: "live", live: "retired", staged: "staged"}
