"""A small GMC `GetDoctorsForDB` SOAP service over a synthetic population, for tests and demos.

    python -m reval_assets.sources.gmc_server --port 8099 --doctors 2000

Each designated body's answer holds the synthetic gmc_doctors rows with that `designatedBodyCode` (the
connected doctors), ReturnCode 0 and a fresh GMCRequestID; a body the population does not know is answered
ReturnCode 20. With `username`/`password`, other credentials are answered HTTP 401 (or, with
`hooks.auth_fault`, a SOAP fault). `GmcServer.hooks` stages failures per body: a slow answer, a malformed
envelope, HTTP 503 the first N times, or an answer echoing the request's password (a hostile server).
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lxml import etree

from reval_assets.domain.designated_bodies import PROD_CODES
from reval_assets.sources.gmc_soap import GMC_NS, SOAP_NS, soap_response

SOAP_ACTION = f'"{GMC_NS}GetDoctorsForDB"'
UNKNOWN_BODY = "20"
MAX_REQUEST_BYTES = 64 * 1024


@dataclass
class Hooks:
    """Failures to stage, by designated body (mutable while the server runs)."""

    sleep: dict[str, float] = field(default_factory=dict)  # seconds to wait before answering
    malformed: set[str] = field(default_factory=set)  # answer an envelope that is not a GetDoctorsForDB response
    unavailable: dict[str, int] = field(default_factory=dict)  # answer HTTP 503 this many times first
    echo_password: set[str] = field(default_factory=set)  # put the request's password in the answer
    echo_request_on_error: bool = False  # an error answer repeats the request, credentials and all
    auth_fault: bool = False  # wrong credentials: a SOAP fault (HTTP 500) instead of HTTP 401


@dataclass
class Stats:
    requests: Counter = field(default_factory=Counter)  # GetDoctorsForDB calls, by body
    active: int = 0
    max_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def enter(self, body: str) -> int:
        with self.lock:
            self.requests[body] += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            return self.requests[body]

    def leave(self) -> None:
        with self.lock:
            self.active -= 1


class _Call:
    """A parsed GetDoctorsForDB request."""

    def __init__(self, data: bytes):
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
        root = etree.fromstring(data, parser)
        if root.tag != f"{{{SOAP_NS}}}Envelope":
            raise ValueError("not a SOAP 1.1 envelope")
        call = root.find(f"{{{SOAP_NS}}}Body/{{{GMC_NS}}}GetDoctorsForDB")
        if call is None:
            raise ValueError("no GetDoctorsForDB in the SOAP body")
        self.body = self._text(call, "request", "DesignatedBodyCode")
        self.client_request_id = self._text(call, "request", "ClientRequestID")
        self.username = self._text(call, "Username")
        self.password = self._text(call, "Password")
        self.raw = data

    @staticmethod
    def _text(call: etree._Element, *names: str) -> str:
        element = call.find("/".join(f"{{{GMC_NS}}}{name}" for name in names))
        if element is None:
            raise ValueError(f"GetDoctorsForDB has no {'/'.join(names)}")
        return element.text or ""


def fault(code: str, text: str) -> bytes:
    envelope = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soap": SOAP_NS})
    node = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP_NS}}}Body"), f"{{{SOAP_NS}}}Fault")
    etree.SubElement(node, "faultcode").text = f"soap:{code}"
    etree.SubElement(node, "faultstring").text = text
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


class _Handler(BaseHTTPRequestHandler):
    server: GmcServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass  # quiet: a request log line would be noise in tests

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            return self._send(413, b"request too large", "text/plain")
        data = self.rfile.read(length)
        if self.headers.get("SOAPAction", "").strip() not in (SOAP_ACTION, SOAP_ACTION.strip('"')):
            return self._send(500, fault("Client", "unknown SOAPAction: expected " + SOAP_ACTION))
        if not self.headers.get("Content-Type", "").startswith("text/xml"):
            return self._send(415, b"SOAP 1.1 wants Content-Type text/xml", "text/plain")
        try:
            call = _Call(data)
        except (etree.XMLSyntaxError, ValueError) as error:
            return self._send(500, fault("Client", f"bad request: {error}"))
        attempt = self.server.stats.enter(call.body)
        try:
            self._answer(call, attempt)
        finally:
            self.server.stats.leave()

    def _answer(self, call: _Call, attempt: int) -> None:
        server, hooks = self.server, self.server.hooks
        time.sleep(hooks.sleep.get(call.body, 0))
        if attempt <= hooks.unavailable.get(call.body, 0):
            return self._error(503, call, b"service unavailable")
        if not server.authorised(call):
            if hooks.auth_fault:
                return self._send(500, fault("Client", "invalid username or password"))
            return self._error(401, call, b"invalid username or password")
        if call.body in hooks.malformed:
            return self._send(200, b"<soap:Envelope xmlns:soap='" + SOAP_NS.encode() + b"'><soap:Body><oops/>")
        client_id = call.password if call.body in hooks.echo_password else call.client_request_id
        records = server.doctors.get(call.body)
        code = "0" if records is not None else UNKNOWN_BODY
        self._send(200, soap_response(records or [], return_code=code, client_request_id=client_id,
                                      gmc_request_id=server.next_request_id()))

    def _error(self, status: int, call: _Call, text: bytes) -> None:
        if self.server.hooks.echo_request_on_error:
            text += f" (for {call.username}/{call.password})\n".encode() + call.raw
        self._send(status, text, "text/plain")

    def _send(self, status: int, data: bytes, content_type: str = "text/xml; charset=utf-8") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test): nothing to do
            self.close_connection = True


class GmcServer(ThreadingHTTPServer):
    """The service, answering on `url` from a background thread once started; `close()` stops it."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int, doctors: dict[str, list[dict]], *, host: str = "127.0.0.1",
                 username: str | None = None, password: str | None = None):
        super().__init__((host, port), _Handler)
        self.doctors, self.username, self.password = doctors, username, password
        self.hooks, self.stats = Hooks(), Stats()
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/GMCWebServices/DesignatedBodiesService.asmx"

    def authorised(self, call: _Call) -> bool:
        wanted = (self.username, self.password)
        return wanted == (None, None) or (call.username, call.password) == wanted

    def next_request_id(self) -> str:
        return str(next(self._ids))

    def start(self) -> GmcServer:
        # A short poll: `close()` waits for the loop to notice, and tests start a server each.
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), name="gmc-server", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.shutdown()
        self.server_close()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up mid-answer (a timeout test) is not a server error

    def __enter__(self) -> GmcServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def population(doctors: int, seed: int, designated_bodies: Sequence[str]) -> dict[str, list[dict]]:
    """The synthetic gmc_doctors records (wire names) of each body, in table order; every body listed."""
    from reval_assets.sources.export import records
    from reval_assets.sources.synthetic import SyntheticSource

    table = SyntheticSource(doctors, seed, designated_bodies=designated_bodies).extract()["gmc_doctors"].table
    by_body: dict[str, list[dict]] = defaultdict(list, {body: [] for body in designated_bodies})
    for record in records(table):
        if record.get("designatedBodyCode") is not None:
            by_body[record["designatedBodyCode"]].append(record)
    return dict(by_body)


def serve(port: int, *, doctors: int = 2000, seed: int = 0, designated_bodies: Sequence[str] = PROD_CODES,
          username: str | None = None, password: str | None = None, host: str = "127.0.0.1") -> GmcServer:
    """A started server on `port` (0: a free one) answering from `SyntheticSource(doctors, seed, ...)`."""
    server = GmcServer(port, population(doctors, seed, designated_bodies), host=host, username=username,
                       password=password)
    return server.start()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A GMC GetDoctorsForDB SOAP service over synthetic doctors.")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--doctors", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--designated-bodies", default=",".join(PROD_CODES), help="comma-separated codes")
    parser.add_argument("--username", help="require these credentials (with --password)")
    parser.add_argument("--password")
    args = parser.parse_args(argv)
    bodies = [b.strip() for b in args.designated_bodies.split(",") if b.strip()]
    server = serve(args.port, doctors=args.doctors, seed=args.seed, designated_bodies=bodies,
                   username=args.username, password=args.password, host=args.host)
    print(f"GMC GetDoctorsForDB over {args.doctors} synthetic doctors (seed {args.seed}), {len(bodies)} bodies")
    print(f"REVAL_GMC_URL={server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.close()


if __name__ == "__main__":
    main()
