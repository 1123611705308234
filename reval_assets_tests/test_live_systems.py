"""`reval sync` pulling from the live systems, as a user runs it: GMC doctors from a SOAP service (our demo
server, on a free port), the other inputs from export files; and each bad answer fails the sync naming the
system, with live unchanged and the password nowhere."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from reval_assets.domain.designated_bodies import PROD_CODES
from reval_assets.sources.export import write_export
from reval_assets.sources.gmc_server import GmcServer, serve
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets_tests.test_cli import reval, status, sync

PASSWORD = "s3cret-Gmc-pass"
# A population whose disconnected doctors all have a TIS record: the GMC no longer returns them, so over SOAP
# only TIS keeps them (and their recommendations) in the sync; see the README's "Real exports".
SEED = 4
LOGIN = {"REVAL_GMC_USERNAME": "reval-sync", "REVAL_GMC_PASSWORD": PASSWORD}


@pytest.fixture
def gmc() -> Iterator[GmcServer]:
    with serve(0, doctors=1500, seed=SEED, designated_bodies=PROD_CODES, username="reval-sync",
               password=PASSWORD) as server:
        yield server


@pytest.fixture
def export_without_doctors(reval_env: Path) -> Path:
    """The same population's other inputs, as export files (the Mongo-held ones arrive as files)."""
    inputs = SyntheticSource(doctors=1500, seed=SEED).extract()
    return write_export({k: v for k, v in inputs.items() if k != "gmc_doctors"}, reval_env.parent / "export")


def _env(folder: Path, gmc: GmcServer, **extra: str) -> dict[str, str]:
    return {"REVAL_SOURCE": "files", "REVAL_SOURCE_DIR": str(folder), "REVAL_GMC_URL": gmc.url, **LOGIN, **extra}


def _doctors(home: Path) -> list[tuple]:
    engine = sa.create_engine(f"sqlite:///{home / 'live.db'}")
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT * FROM doctors ORDER BY gmc_reference_number")).all()
    finally:
        engine.dispose()


def _nowhere(home: Path, *texts: str) -> None:
    for path in home.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
    for text in texts:
        assert PASSWORD not in text


def test_gmc_over_soap_publishes_the_doctors_its_saved_responses_give(reval_env: Path, gmc: GmcServer,
                                                                     export_without_doctors: Path) -> None:
    ran = reval("sync", "--json", "--reason", "GMC over SOAP", env=_env(export_without_doctors, gmc))
    assert ran.data["published"] and ran.data["rows"]["doctors"] > 0
    assert sum(gmc.stats.requests.values()) == len(PROD_CODES)
    [evidence] = (reval_env / "gmc").iterdir()
    assert sorted(p.stem for p in evidence.glob("*.xml")) == sorted(PROD_CODES)
    _nowhere(reval_env, ran.stdout, ran.stderr)

    replay = reval_env.parent / "replay"  # the same answers, read back as files: the same doctors
    shutil.copytree(export_without_doctors, replay)
    shutil.copytree(evidence, replay / "gmc")
    home = reval_env.parent / "replay-home"
    sync("--reason", "replayed from the saved responses",
         env={"REVAL_HOME": str(home), "REVAL_SOURCE": "files", "REVAL_SOURCE_DIR": str(replay)})
    assert _doctors(home) == _doctors(reval_env)


def test_a_body_timing_out_fails_the_sync_naming_it_and_live_is_unchanged(reval_env: Path, gmc: GmcServer,
                                                                           export_without_doctors: Path) -> None:
    live = sync("--reason", "before")["version"]
    gmc.hooks.sleep[PROD_CODES[3]] = 2.0
    ran = reval("sync", "--json", env=_env(export_without_doctors, gmc, REVAL_GMC_TIMEOUT="0.3"), expect=1)
    assert f"GMC GetDoctorsForDB for {PROD_CODES[3]} timed out" in ran.data["error"]
    assert status()["live_version"] == live


def test_a_malformed_envelope_fails_the_sync_naming_the_body(reval_env: Path, gmc: GmcServer,
                                                              export_without_doctors: Path) -> None:
    live = sync("--reason", "before")["version"]
    gmc.hooks.malformed.add(PROD_CODES[0])
    ran = reval("sync", "--json", env=_env(export_without_doctors, gmc), expect=1)
    assert f"GMC GetDoctorsForDB for {PROD_CODES[0]} sent a malformed envelope" in ran.data["error"]
    assert status()["live_version"] == live


def test_a_wrong_gmc_password_fails_without_showing_it(reval_env: Path, gmc: GmcServer,
                                                         export_without_doctors: Path) -> None:
    env = _env(export_without_doctors, gmc) | {"REVAL_GMC_PASSWORD": "not-" + PASSWORD}
    ran = reval("sync", "--json", env=env, expect=1)
    assert "HTTP 401" in ran.data["error"] and "REVAL_GMC_PASSWORD" in ran.data["error"]
    assert "not-" + PASSWORD not in ran.stdout + ran.stderr
    _nowhere(reval_env)


def test_the_tcs_database_unreachable_fails_naming_it_and_live_is_unchanged(reval_env: Path) -> None:
    live = sync("--reason", "before")["version"]
    ran = reval("sync", "--json", env={"REVAL_TCS_URL": "mysql://reval:pw-tcs-9@127.0.0.1:1/tcs"}, expect=1)
    assert "TCS database at 127.0.0.1:1 is unreachable" in ran.data["error"]
    assert "pw-tcs-9" not in ran.stdout + ran.stderr
    assert status()["live_version"] == live


def test_a_gmc_url_over_plain_http_to_another_machine_is_refused(reval_env: Path) -> None:
    env = {"REVAL_GMC_URL": "http://gmc.example.org/GMCWebServices/DesignatedBodiesService.asmx", **LOGIN}
    ran = reval("status", "--json", env=env, expect=1)
    assert "REVAL_GMC_URL must be https://" in ran.data["error"] and PASSWORD not in ran.stdout + ran.stderr
