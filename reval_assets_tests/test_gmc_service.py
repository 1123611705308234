"""The GMC GetDoctorsForDB client against the small SOAP server, in a thread on a free port."""

from __future__ import annotations

import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from reval_assets.sources.base import SourceError
from reval_assets.sources.export import records, write_export
from reval_assets.sources.files import FileSource
from reval_assets.sources.gmc_server import GmcServer, population, serve
from reval_assets.sources.gmc_service import GmcClient, GmcSoapSource, gmc_doctors_input, request_envelope
from reval_assets.sources.synthetic import SyntheticSource

BODIES = ("1-1RUZV1D", "1-1RUZV6H", "1-1RUZV4H", "1-1RSSQ5L", "1-1RSSPZ7", "1-1RSSQ05")
DOCTORS, SEED = 400, 3
USERNAME, PASSWORD = "reval-sync-user", "s3cret&<pass>word-77"
SOAP_FIELDS = ("gmcReferenceNumber", "doctorFirstName", "doctorLastName", "submissionDate", "dateAdded",
               "underNotice", "sanction", "designatedBodyCode")


@pytest.fixture(scope="module")
def doctors() -> dict[str, list[dict]]:
    return population(DOCTORS, SEED, BODIES)


@pytest.fixture
def gmc(doctors: dict[str, list[dict]]) -> Iterator[GmcServer]:
    """A fresh server (hooks, counts) per test: a slow answer of one test never counts in the next."""
    with GmcServer(0, doctors, username=USERNAME, password=PASSWORD).start() as server:
        yield server


def _client(server: GmcServer, password: str = PASSWORD, **options: float) -> GmcClient:
    settings = {"timeout": 0.3, "retries": 3, "backoff": 0.01, "concurrency": 2, **options}
    return GmcClient(server.url, USERNAME, password, **settings)


def _connected(body: str) -> list[dict]:
    table = SyntheticSource(DOCTORS, SEED, designated_bodies=BODIES).extract()["gmc_doctors"].table
    return [{k: r[k] for k in SOAP_FIELDS} for r in records(table) if r["designatedBodyCode"] == body]


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text and USERNAME not in text


def test_every_body_is_fetched_within_the_concurrency(gmc: GmcServer) -> None:
    gmc.hooks.sleep = dict.fromkeys(BODIES, 0.05)  # long enough for the calls to overlap
    responses = _client(gmc, concurrency=2).fetch(BODIES)
    assert list(responses) == list(BODIES)
    assert gmc.stats.requests == dict.fromkeys(BODIES, 1)
    assert gmc.stats.max_active == 2
    for body, response in responses.items():
        assert response.doctors == _connected(body) and response.doctors
        assert response.gmc_request_id and response.client_request_id
    assert len({r.gmc_request_id for r in responses.values()}) == len(BODIES)
    _no_secret(repr(responses))


def test_a_body_unavailable_twice_succeeds_on_the_third_attempt(gmc: GmcServer) -> None:
    gmc.hooks.unavailable = {BODIES[0]: 2}
    responses = _client(gmc).fetch(BODIES[:2])
    assert responses[BODIES[0]].doctors == _connected(BODIES[0])
    assert gmc.stats.requests[BODIES[0]] == 3


def test_a_body_unavailable_every_time_fails_after_the_retries(gmc: GmcServer) -> None:
    gmc.hooks.unavailable = {BODIES[0]: 9}
    with pytest.raises(SourceError, match=rf"GMC GetDoctorsForDB for {BODIES[0]} failed after 3 attempts: .*503"):
        _client(gmc).fetch(BODIES[:1])
    assert gmc.stats.requests[BODIES[0]] == 3


def test_a_slow_body_times_out_naming_the_body_after_the_retries(gmc: GmcServer) -> None:
    gmc.hooks.sleep = {BODIES[1]: 1.0}
    with pytest.raises(SourceError) as raised:
        _client(gmc, retries=2).fetch(BODIES[:3])
    assert str(raised.value) == f"GMC GetDoctorsForDB for {BODIES[1]} timed out after 2 attempts (0.3 s each)"
    assert gmc.stats.requests[BODIES[1]] == 2


def test_a_malformed_envelope_fails_naming_the_body_without_retrying(gmc: GmcServer) -> None:
    gmc.hooks.malformed = {BODIES[2]}
    with pytest.raises(SourceError, match=rf"GMC GetDoctorsForDB for {BODIES[2]} sent a malformed envelope: "):
        _client(gmc).fetch(BODIES[:3])
    assert gmc.stats.requests[BODIES[2]] == 1


def test_an_unknown_body_fails_with_its_return_code(gmc: GmcServer) -> None:
    with pytest.raises(SourceError, match=r"GMC GetDoctorsForDB for 1-ZZZZZZ answered ReturnCode 20 "):
        _client(gmc).fetch([BODIES[0], "1-ZZZZZZ"])
    assert gmc.stats.requests["1-ZZZZZZ"] == 1


@pytest.mark.parametrize("auth_fault", [False, True])
def test_a_wrong_password_fails_and_is_never_shown(gmc: GmcServer, tmp_path: Path, auth_fault: bool) -> None:
    gmc.hooks.echo_request_on_error, gmc.hooks.auth_fault = True, auth_fault
    client = _client(gmc, password=PASSWORD + "-old")
    evidence = tmp_path / "gmc"
    with pytest.raises(SourceError) as raised:
        gmc_doctors_input(client, BODIES[:1], evidence)
    expected = "a SOAP fault: soap:Client invalid" if auth_fault else "HTTP 401 (Unauthorized): check REVAL_GMC_"
    assert f"GMC GetDoctorsForDB for {BODIES[0]} answered {expected}" in str(raised.value)
    assert gmc.stats.requests[BODIES[0]] == 1  # never retried: that could lock the account
    _no_secret(str(raised.value), repr(raised.value), repr(client), str(client.__dict__.get("shown_url")))
    assert not evidence.exists()


def test_an_answer_echoing_the_password_is_refused_and_not_saved(gmc: GmcServer, tmp_path: Path) -> None:
    gmc.hooks.echo_password = {BODIES[1]}
    with pytest.raises(SourceError, match=rf"for {BODIES[1]} echoed the credentials in its answer") as raised:
        gmc_doctors_input(_client(gmc), BODIES[:2], tmp_path / "gmc")
    _no_secret(str(raised.value))
    assert not (tmp_path / "gmc").exists()


def test_the_request_carries_the_credentials_escaped() -> None:
    envelope = request_envelope("1-AAA", "id-1", USERNAME, PASSWORD)
    assert b"<Password>s3cret&amp;&lt;pass&gt;word-77</Password>" in envelope
    assert b"<DesignatedBodyCode>1-AAA</DesignatedBodyCode>" in envelope


def test_credentials_in_the_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(SourceError) as raised:
        GmcClient(f"https://{USERNAME}:{PASSWORD}@gmc.example/ws", USERNAME, PASSWORD)
    _no_secret(str(raised.value))


def _export_without_doctors(folder: Path) -> Path:
    inputs = SyntheticSource(DOCTORS, SEED, designated_bodies=BODIES).extract()
    return write_export({name: wire for name, wire in inputs.items() if name != "gmc_doctors"}, folder)


def test_evidence_is_private_and_reads_back_as_the_same_rows(gmc: GmcServer, tmp_path: Path) -> None:
    evidence = tmp_path / "evidence" / "gmc"
    wire, metadata = gmc_doctors_input(_client(gmc), BODIES[::-1], evidence)
    assert stat.S_IMODE(evidence.stat().st_mode) == 0o700
    assert sorted(p.name for p in evidence.iterdir()) == sorted(f"{b}.xml" for b in BODIES)  # no temporary left
    assert {stat.S_IMODE(p.stat().st_mode) for p in evidence.iterdir()} == {0o600}
    assert {b: m["doctors"] for b, m in metadata.items()} == {b: len(_connected(b)) for b in BODIES}
    assert wire.read_as.startswith(f"{len(BODIES)} GetDoctorsForDB responses over SOAP ({wire.table.num_rows:,} "
                                   "doctors; ")
    for body, answer in metadata.items():  # each body's answer, as the raw asset's metadata shows it
        assert f"{body}: {answer['doctors']:,} doctors, GMCRequestID {answer['gmc_request_id']}," in wire.read_as
    assert wire.origin == f"GMC GetDoctorsForDB {gmc.url}, answers saved in {evidence}"  # gc keeps what it names
    export = _export_without_doctors(tmp_path / "export")
    shutil.copytree(evidence, export / "gmc")
    again = FileSource(export, designated_bodies=BODIES).extract()["gmc_doctors"].table
    assert again.equals(wire.table)
    assert wire.table["gmcLastUpdatedDateTime"].null_count == 0  # stamped with the second each answer arrived
    for file in evidence.iterdir():
        _no_secret(file.read_text())
    _no_secret(repr(metadata), wire.origin, wire.read_as)


def test_soap_source_replaces_the_base_sources_gmc_doctors(gmc: GmcServer, tmp_path: Path) -> None:
    base = SyntheticSource(DOCTORS, SEED, designated_bodies=BODIES)
    source = GmcSoapSource(base, _client(gmc), designated_bodies=BODIES, evidence_dir=tmp_path / "gmc")
    extracted = source.extract()
    assert set(extracted) == set(base.extract())
    assert extracted["gmc_doctors"].origin.startswith("GMC GetDoctorsForDB")
    assert source.fingerprint() == source.fingerprint() != base.fingerprint()
    assert source.exported_at() == base.exported_at()  # the synthetic base was made before the pull
    assert sum(gmc.stats.requests.values()) == len(BODIES)  # pulled once per instance
    _no_secret(repr(source), source.description)


def test_serve_starts_a_server_on_a_free_port_without_credentials() -> None:
    with serve(0, doctors=50, seed=1, designated_bodies=BODIES[:2]) as server:
        responses = GmcClient(server.url, "any", "thing", timeout=2).fetch(BODIES[:2])
    expected = population(50, 1, BODIES[:2])
    assert all(expected[body] for body in BODIES[:2])
    assert {body: r.doctors for body, r in responses.items()} == {
        body: [{k: d[k] for k in SOAP_FIELDS} for d in expected[body]] for body in BODIES[:2]}


def test_a_body_that_cannot_be_a_file_name_is_refused_before_any_call(gmc: GmcServer) -> None:
    with pytest.raises(SourceError, match=r"'\.\./etc' is not a designated-body code"):
        _client(gmc).fetch([BODIES[0], "../etc"])
    assert not gmc.stats.requests
