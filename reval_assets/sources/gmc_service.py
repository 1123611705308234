"""Pull GMC doctors from the GMC's SOAP service: one `GetDoctorsForDB` call per designated body.

SOAP 1.1, document/literal, over `urllib.request`; the request is built with lxml and each answer read
with `gmc_soap.read_soap_response`. Calls run concurrently (at most `concurrency` at once); a transport
error (refused, reset, timed out) or an HTTP 5xx that is not a SOAP fault is retried with exponential
backoff, while an HTTP 4xx, a SOAP fault or a ReturnCode other than 0 fails at once. Every failure is a
`SourceError` naming the system and the designated body.

The username and password travel only in the request body: they are never put in a message, repr, log
line or saved file (`_Secrets.scrub`), and a response that echoes either is refused, not saved.
"""

from __future__ import annotations

import http.client
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from lxml import etree

from reval_assets.domain.schemas import RAW_SPECS
from reval_assets.sources.base import Source, SourceError
from reval_assets.sources.files import PerFileInput, wire_table
from reval_assets.sources.gmc_soap import GMC_NS, SOAP_NS, read_soap_response
from reval_assets.sources.overlay import Overlay

SYSTEM = "GMC GetDoctorsForDB"
SOAP_ACTION = f'"{GMC_NS}GetDoctorsForDB"'
CONTENT_TYPE = "text/xml; charset=utf-8"
CREDENTIALS_HINT = "check REVAL_GMC_USERNAME/REVAL_GMC_PASSWORD"
MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # < 8,000 doctors a body is a few MB: more is not a GMC answer
_BODY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")  # a designated-body code, safe as a file name
_MASK = "***"
_SUBSTRING_MIN = 6  # a shorter secret may be in any answer by chance: it is looked for as a whole text


class _Retry(Exception):
    """A failure worth another attempt; `message` says what happened (already scrubbed)."""

    def __init__(self, message: str, *, timed_out: bool = False):
        super().__init__(message)
        self.message, self.timed_out = message, timed_out


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would follow a 301/302 as a GET without the body: the call would silently become another one.
    def redirect_request(self, req: urllib.request.Request, fp: object, code: int, msg: str, headers: object,
                         newurl: str) -> None:
        return None


@dataclass(frozen=True)
class _Secrets:
    password: str = field(repr=False)
    username: str = field(repr=False)

    def _values(self) -> tuple[str, ...]:
        # A very short username (say "gmc") would blank out ordinary words: it is not secret enough for that.
        return tuple(v for v in (self.password, self.username if len(self.username) >= 4 else "") if v)

    def forms(self) -> set[str]:
        """Each secret as sent (XML-escaped) and as it may come back (raw, URL-quoted)."""
        return {form for v in self._values() for form in (v, escape(v), urllib.parse.quote(v, safe=""))}

    def scrub(self, text: str) -> str:
        for form in sorted(self.forms(), key=len, reverse=True):
            text = text.replace(form, _MASK)
        return text

    def found_in(self, data: bytes) -> bool:
        """Whether an answer holds a secret: anywhere if it is long enough to mean it, else as a whole text."""
        return any((form if len(form) >= _SUBSTRING_MIN else f">{form}<").encode() in data for form in self.forms())


@dataclass(frozen=True)
class GmcResponse:
    """One body's answer: the XML as received (never holding the credentials) and its doctors."""

    body: str
    xml: bytes = field(repr=False)
    doctors: list[dict] = field(repr=False)
    gmc_request_id: str | None
    client_request_id: str
    seconds: float
    received_at: datetime  # when the answer arrived, UTC: when the GMC confirmed these doctors


def shown_url(url: str) -> str:
    """`url` without user info, query or fragment: safe to print and to keep as an origin."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def request_envelope(body: str, client_request_id: str, username: str, password: str) -> bytes:
    """The SOAP 1.1 `GetDoctorsForDB` request for designated body `body`."""
    envelope = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soap": SOAP_NS})
    call = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP_NS}}}Body"), f"{{{GMC_NS}}}GetDoctorsForDB",
                            nsmap={None: GMC_NS})
    request = etree.SubElement(call, f"{{{GMC_NS}}}request")
    for name, value in (("DesignatedBodyCode", body), ("ClientRequestID", client_request_id),
                        ("InternalUser", "false")):
        etree.SubElement(request, f"{{{GMC_NS}}}{name}").text = value
    etree.SubElement(call, f"{{{GMC_NS}}}Username").text = username
    etree.SubElement(call, f"{{{GMC_NS}}}Password").text = password
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def _result_text(xml: bytes, name: str) -> str | None:
    """The text of GetDoctorsForDBResult's child `name` in an answer `read_soap_response` accepted."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True,
                             remove_pis=True)
    found = etree.fromstring(xml, parser).xpath(
        f"//*[local-name()='GetDoctorsForDBResult']/*[local-name()='{name}']")
    return (found[0].text or "").strip() if found else None


class GmcClient:
    """The GMC's GetDoctorsForDB service at `url`. `retries` is the number of attempts per body in all."""

    def __init__(self, url: str, username: str, password: str, *, timeout: float = 30.0, retries: int = 3,
                 backoff: float = 0.5, concurrency: int = 4):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceError(f"REVAL_GMC_URL must be an http(s) URL, not {shown_url(url)!r}")
        if parts.username is not None or parts.password is not None:
            raise SourceError("REVAL_GMC_URL must not hold credentials: set REVAL_GMC_USERNAME/REVAL_GMC_PASSWORD")
        if retries < 1 or concurrency < 1 or timeout <= 0 or backoff < 0:
            raise ValueError("retries and concurrency must be at least 1, timeout above 0 and backoff not negative")
        self.url, self.shown_url = url, shown_url(url)
        self._username, self._password = username, password
        self._secrets = _Secrets(password, username)
        self.timeout, self.retries, self.backoff, self.concurrency = timeout, retries, backoff, concurrency
        self._opener = urllib.request.build_opener(_NoRedirect)

    def __repr__(self) -> str:
        return (f"GmcClient({self.shown_url!r}, username={_MASK!r}, password={_MASK!r}, timeout={self.timeout}, "
                f"retries={self.retries}, backoff={self.backoff}, concurrency={self.concurrency})")

    def fetch(self, bodies: Iterable[str]) -> dict[str, GmcResponse]:
        """Every body's answer, keyed (and ordered) as given; the first failure fails the call."""
        wanted = list(dict.fromkeys(bodies))
        bad = next((b for b in wanted if not isinstance(b, str) or not _BODY.match(b)), None)
        if bad is not None:
            raise SourceError(f"{SYSTEM}: {bad!r} is not a designated-body code")
        if not wanted:
            return {}
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(wanted)), thread_name_prefix="gmc") as pool:
            futures = {body: pool.submit(self.fetch_one, body) for body in wanted}
            done, _ = wait(futures.values(), return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures.values() if f in done and f.exception() is not None), None)
            if failed is not None:
                for future in futures.values():
                    future.cancel()
                raise failed.exception()
        return {body: future.result() for body, future in futures.items()}

    def fetch_one(self, body: str) -> GmcResponse:
        """One body's answer, retried on transport errors and HTTP 5xx (not on a fault, 4xx or ReturnCode)."""
        client_request_id = str(uuid.uuid4())
        envelope = request_envelope(body, client_request_id, self._username, self._password)
        started = time.monotonic()
        for attempt in range(1, self.retries + 1):
            try:
                xml = self._post(body, envelope)
                break
            except _Retry as retry:
                if attempt == self.retries:
                    raise self._gave_up(body, retry) from None
                time.sleep(self.backoff * 2 ** (attempt - 1))
        return self._answer(body, xml, client_request_id, time.monotonic() - started)

    def _gave_up(self, body: str, retry: _Retry) -> SourceError:
        attempts = f"{self.retries} attempt{'s' if self.retries != 1 else ''}"
        if retry.timed_out:
            return SourceError(f"{SYSTEM} for {body} timed out after {attempts} ({self.timeout:g} s each)")
        return SourceError(f"{SYSTEM} for {body} failed after {attempts}: {retry.message}")

    def _post(self, body: str, envelope: bytes) -> bytes:
        request = urllib.request.Request(self.url, data=envelope, method="POST", headers={
            "Content-Type": CONTENT_TYPE, "SOAPAction": SOAP_ACTION, "Accept": "text/xml"})
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                return _read_capped(answer, body)
        except urllib.error.HTTPError as error:
            return self._http_error(body, error)
        except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as error:
            raise self._transport(error) from None

    def _transport(self, error: BaseException) -> _Retry:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        if isinstance(reason, TimeoutError):
            return _Retry("timed out", timed_out=True)
        text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
        return _Retry(self._secrets.scrub(f"could not reach {self.shown_url}: {text}"))

    def _http_error(self, body: str, error: urllib.error.HTTPError) -> bytes:
        try:
            detail = _read_capped(error, body)
        except (OSError, http.client.HTTPException, SourceError):
            detail = b""
        finally:
            error.close()
        if error.code == 500 and b"Fault" in detail:  # SOAP 1.1 sends its faults as HTTP 500: not retried
            return detail  # read (and refused) by `_answer`, which names the fault
        snippet = self._secrets.scrub(" ".join(detail.decode("utf-8", "replace").split()))[:300]  # scrub, then cut
        status = f"HTTP {error.code} ({error.reason})" + (f": {snippet}" if snippet else "")
        if error.code >= 500:
            raise _Retry(f"answered {status}")
        if error.code in (401, 403):
            said = f" (the service said: {snippet})" if snippet else ""
            raise SourceError(f"{SYSTEM} for {body} answered HTTP {error.code} ({error.reason}): "
                              f"{CREDENTIALS_HINT}{said}")
        if 300 <= error.code < 400:
            where = shown_url(error.headers.get("Location", "")) or "elsewhere"
            raise SourceError(f"{SYSTEM} for {body} answered HTTP {error.code}, a redirect to {where}: "
                              "REVAL_GMC_URL must be the service's own URL")
        raise SourceError(f"{SYSTEM} for {body} answered {status}")

    def _answer(self, body: str, xml: bytes, client_request_id: str, seconds: float) -> GmcResponse:
        if self._secrets.found_in(xml):
            raise SourceError(f"{SYSTEM} for {body} echoed the credentials in its answer: refused, not saved")
        try:
            doctors = read_soap_response(xml, body, "")
        except SourceError as error:
            raise self._refused(body, xml, error) from None
        return GmcResponse(body, xml, doctors, _result_text(xml, "GMCRequestID"), client_request_id, seconds,
                           datetime.now(UTC))

    def _refused(self, body: str, xml: bytes, error: SourceError) -> SourceError:
        text = self._secrets.scrub(str(error))
        if error.field == "ReturnCode":
            return SourceError(f"{SYSTEM} for {body} answered ReturnCode {_result_text(xml, 'ReturnCode')} "
                               "(0 is success)", field="ReturnCode")
        if "SOAP fault" in text:
            return SourceError(f"{SYSTEM} for {body} answered a SOAP fault: {text.split(': ', 1)[-1]}")
        return SourceError(f"{SYSTEM} for {body} sent a malformed envelope: {text}")


def _read_capped(answer: http.client.HTTPResponse | urllib.error.HTTPError, body: str) -> bytes:
    data = answer.read(MAX_RESPONSE_BYTES + 1)
    if len(data) > MAX_RESPONSE_BYTES:
        raise SourceError(f"{SYSTEM} for {body} answered more than {MAX_RESPONSE_BYTES // 2**20} MiB: "
                          "not a GetDoctorsForDB response")
    return data


# --- the gmc_doctors input ---------------------------------------------------------------------


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # mkdir's mode is masked by the umask, and the folder may already exist
    return path


def write_private(path: Path, data: bytes, modified: datetime | None = None) -> None:
    """Write `data` to `path` atomically (a private temporary file beside it, then renamed), mode 0600,
    with modification time `modified` if given."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o600)
        if modified is not None:
            os.utime(temporary, (modified.timestamp(), modified.timestamp()))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def gmc_doctors_input(client: GmcClient, bodies: Sequence[str], evidence_dir: Path) -> tuple[PerFileInput, dict]:
    """Pull every body, save each answer as `evidence_dir/<DBC>.xml` and return the `gmc_doctors` input, whose
    quarantined records name their body's saved answer.

    Bodies are read in sorted order, as `FileSource` reads the saved `gmc/` folder, and each body's doctors are
    stamped (gmcLastUpdatedDateTime) with the second its answer arrived, which is also the saved file's
    modification time: so `FileSource` re-reading the evidence gives the same table. Nothing is written unless
    every body answered. The metadata is per body: {"doctors": n, "gmc_request_id": ..., "seconds": ...}.
    """
    responses = client.fetch(sorted(set(bodies)))
    folder = _private_dir(Path(evidence_dir))
    records: list[dict] = []
    for body, response in responses.items():
        received = response.received_at.replace(microsecond=0)
        write_private(folder / f"{body}.xml", response.xml, received)
        stamp = received.strftime("%Y-%m-%dT%H:%M:%SZ")
        records += [{**doctor, "gmcLastUpdatedDateTime": stamp} for doctor in response.doctors]
    # The folder is named in the origin, which the landing and every version built from it keep: so gc
    # keeps the evidence while they are kept (`store.live_gc.evidence_references`).
    origin = f"{SYSTEM} {client.shown_url}, answers saved in {folder}"
    metadata = {body: {"doctors": len(r.doctors), "gmc_request_id": r.gmc_request_id, "seconds": round(r.seconds, 3)}
                for body, r in responses.items()}
    # The landing keeps read_as, so the raw asset's metadata shows each body's answer.
    bodies = "; ".join(f"{body}: {m['doctors']:,} doctors, GMCRequestID {m['gmc_request_id']}, {m['seconds']:.2f} s"
                       for body, m in metadata.items())
    read_as = f"{len(responses)} GetDoctorsForDB responses over SOAP ({len(records):,} doctors; {bodies})"
    files = tuple((str(folder / f"{body}.xml"), len(r.doctors)) for body, r in responses.items())
    wire = PerFileInput(wire_table(RAW_SPECS["gmc_doctors"], records, origin), origin, read_as=read_as, files=files)
    return wire, metadata


def GmcSoapSource(base: Source, client: GmcClient, *, designated_bodies: Iterable[str],  # noqa: N802 - a source
                  evidence_dir: Path) -> Overlay:
    """`base`'s inputs, with `gmc_doctors` pulled from the GMC over SOAP instead (once per instance; each answer
    saved in `evidence_dir`)."""
    bodies = tuple(designated_bodies)
    return Overlay(base, "gmc_doctors", lambda: gmc_doctors_input(client, bodies, Path(evidence_dir)),
                   description=f"GMC doctors from {SYSTEM} {client.shown_url} ({len(bodies)} designated bodies)",
                   tag="reval-gmc-soap-v1")
