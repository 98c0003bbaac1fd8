"""The sandbox issuer's loopback OCSP responder and CRL distribution point.

Sandbox certificates name ``http://127.0.0.1:<port>/ocsp/{auth,sign}`` and
``.../crl/{auth,sign}.crl`` with the port the issuer recorded when it was created, so by
default the server listens on that port. It binds only to loopback: it signs answers with
sandbox root keys and is never meant to face a network.

    POST /ocsp/auth, /ocsp/sign         RFC 6960 request body (application/ocsp-request)
    GET  /ocsp/auth/<base64 request>    RFC 6960 Appendix A.1 GET form
    GET  /crl/auth.crl, /crl/sign.crl   DER CRL (application/pkix-crl)
    GET  /serial-link/<serial>          issuer link (docs/services.md §B.4): previous serial,
                                        JSON; 403 without the holder's consent, 404 unknown
    GET  /status/<serial>               issuer link: revocation state and reason, JSON
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from cryptography.hazmat.primitives import serialization

from mynakit.emulator.issuer import SandboxIssuer, SerialLinkRefusedError
from mynakit.errors import MynakitError, TransportError, UsageError
from mynakit.jpki.certificates import CertificateKind
from mynakit.jpki.revocation import RevocationState

logger = logging.getLogger(__name__)

# An OCSP request for one certificate is about a hundred bytes; refuse anything absurd.
MAX_REQUEST_BYTES = 16 * 1024
_KINDS = {"auth": CertificateKind.AUTH, "sign": CertificateKind.SIGN}


class OcspServer:
    """Serve a :class:`SandboxIssuer`'s OCSP and CRLs over HTTP on a background thread."""

    def __init__(
        self, issuer: SandboxIssuer, host: str = "127.0.0.1", port: int | None = None
    ) -> None:
        """``port`` None means the issuer's recorded port (what its certificates name);
        0 picks a free port, whose URL then has to be passed to the checks explicitly."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise UsageError(f"bind the sandbox responder to a loopback IP, not {host!r}") from None
        if not address.is_loopback:
            raise UsageError(f"the sandbox responder binds only to loopback, not {host}")
        self._issuer = issuer
        self._host = host
        self._port = issuer.ocsp_port if port is None else port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8080`` (the bound port once started)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def port(self) -> int:
        if self._server is not None:
            port: int = self._server.server_address[1]
            return port
        return self._port

    def ocsp_url(self, kind: CertificateKind) -> str:
        return f"{self.url}/ocsp/{_kind_path(kind)}"

    def crl_url(self, kind: CertificateKind) -> str:
        return f"{self.url}/crl/{_kind_path(kind)}.crl"

    def start(self) -> OcspServer:
        if self._server is not None:
            raise UsageError("the sandbox responder is already running")
        handler = _handler_for(self._issuer)
        server_class = _IPv6Server if ":" in self._host else ThreadingHTTPServer
        try:
            server = server_class((self._host, self._port), handler)
        except OSError as error:
            raise TransportError(
                f"cannot listen on {self._host}:{self._port} for the sandbox responder: "
                f"{error.strerror or error}"
            ) from error
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"mynakit-ocsp-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.debug("sandbox OCSP/CRL responder listening at %s", self.url)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> OcspServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _kind_path(kind: CertificateKind) -> str:
    return (kind.end_entity_kind if kind.is_ca else kind).value


def _handler_for(issuer: SandboxIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "mynakit-sandbox-issuer"

        def do_POST(self) -> None:
            kind = _ocsp_kind(self.path)
            if kind is None:
                self._send(404, "text/plain", b"not an OCSP path\n")
                return
            content_type = self.headers.get("Content-Type", "")
            if content_type.split(";")[0].strip().lower() != "application/ocsp-request":
                self._send(415, "text/plain", b"expected application/ocsp-request\n")
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._send(411, "text/plain", b"Content-Length required\n")
                return
            if not 0 < length <= MAX_REQUEST_BYTES:
                self._send(413, "text/plain", b"request too large\n")
                return
            self._answer_ocsp(self.rfile.read(length), kind)

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            parts = path.strip("/").split("/", 2)
            if len(parts) == 2 and parts[0] == "crl" and parts[1].endswith(".crl"):
                kind = _KINDS.get(parts[1].removesuffix(".crl"))
                if kind is not None:
                    try:
                        crl = issuer.crl(kind)
                    except MynakitError as error:
                        self._fail(error)
                        return
                    body = crl.public_bytes(serialization.Encoding.DER)
                    self._send(200, "application/pkix-crl", body)
                    return
            if len(parts) == 3 and parts[0] == "ocsp" and parts[1] in _KINDS:
                try:
                    request = base64.b64decode(urllib.parse.unquote(parts[2]), validate=True)
                except (binascii.Error, ValueError):
                    self._send(400, "text/plain", b"bad base64 OCSP request\n")
                    return
                self._answer_ocsp(request, _KINDS[parts[1]])
                return
            if len(parts) == 2 and parts[0] in ("serial-link", "status") and parts[1].isdigit():
                self._answer_issuer_link(parts[0], int(parts[1]))
                return
            self._send(404, "text/plain", b"not found\n")

        def _answer_issuer_link(self, route: str, serial: int) -> None:
            # The issuer link services use (mynakit.services.issuer_link), through the
            # issuer's public methods only.
            try:
                status = issuer.status(serial)
                if status.state is RevocationState.UNKNOWN:
                    self._send_json(404, {"error": "unknown_serial", "serial": serial})
                    return
                if route == "serial-link":
                    body: dict[str, object] = {
                        "serial": serial,
                        "previous_serial": issuer.previous_serial(serial),
                    }
                else:
                    body = {
                        "serial": serial,
                        "state": status.state.value,
                        "reason": status.reason.value if status.reason is not None else None,
                        "revocation_time": (
                            status.revocation_time.isoformat()
                            if status.revocation_time is not None
                            else None
                        ),
                    }
            except SerialLinkRefusedError:
                self._send_json(403, {"error": "serial_link_refused", "serial": serial})
                return
            except MynakitError as error:
                self._fail(error)
                return
            self._send_json(200, body)

        def _send_json(self, status: int, body: dict[str, object]) -> None:
            self._send(status, "application/json", json.dumps(body).encode("utf-8"))

        def _answer_ocsp(self, request: bytes, kind: CertificateKind) -> None:
            try:
                response = issuer.ocsp_response(request, kind=kind)
            except MynakitError as error:
                self._fail(error)
                return
            self._send(200, "application/ocsp-response", response)

        def _fail(self, error: MynakitError) -> None:
            # A broken issuer directory: answer 500 so clients report "cannot check", and
            # keep the reason in the log rather than on the wire.
            logger.error("sandbox responder cannot answer %s: %s", self.path, error)
            self._send(500, "text/plain", b"sandbox issuer error\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            # http.server writes every request to stderr; keep it in the log instead.
            logger.debug("sandbox responder: " + format, *args)

    return Handler


def _ocsp_kind(raw_path: str) -> CertificateKind | None:
    parts = urllib.parse.urlsplit(raw_path).path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "ocsp":
        return _KINDS.get(parts[1])
    return None
