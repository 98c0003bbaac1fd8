"""The kiosk page: the terminal's screens in a browser on the counter, live, with a PIN pad.

A small stdlib HTTP server, bound to 127.0.0.1 only. It takes PINs, so it is locked down:

* the ``Host`` header must name this server (``127.0.0.1:PORT`` or ``localhost:PORT``): a page
  on another site whose name was re-pointed at 127.0.0.1 (DNS rebinding) sends its own name and
  is refused;
* an ``Origin`` header, when present, must be this server's origin, and a state-changing request
  must carry one (browsers send it on every POST), so no other page can press the buttons;
  ``Sec-Fetch-Site`` other than same-origin is refused as well;
* a secret made at each start is needed for the page, its event stream, its state and every
  action (in the address printed at start, then in a header); without it, 403;
* every response says ``Cache-Control: no-store``, and the page may not be framed.

Screens are pushed with server-sent events (``/events``). The page shows no personal data beyond
what the counter needs (:func:`mynakit.terminal.desks.eligibility_view`), and the PIN digits
stay in the page until the holder presses 確定, then go once to ``/action`` and on to the card.
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import secrets
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mynakit.terminal.runner import TerminalRunner
from mynakit.terminal.screens import Screen

logger = logging.getLogger("mynakit.terminal.kiosk")

LOOPBACK = "127.0.0.1"
KEY_HEADER = "X-Kiosk-Key"
MAX_ACTION_BYTES = 4096
KEEPALIVE_SECONDS = 15.0
_STATIC = {
    "/kiosk.js": ("kiosk.js", "text/javascript; charset=utf-8"),
    "/kiosk.css": ("kiosk.css", "text/css; charset=utf-8"),
}
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}
#: Actions the page may send, and what each carries.
ACTIONS = frozenset(
    {"choose", "pin", "confirm_last_try", "consents", "acknowledge", "cancel", "visual_confirm"}
)

#: Receives one validated action from the page: (action, value or values).
ActionHandler = Callable[[str, Any], None]


class KioskServer:
    """Serves the page on 127.0.0.1; ``url`` (with the start secret) is what to open."""

    def __init__(
        self,
        handle_action: ActionHandler,
        current_screen: Callable[[], Screen],
        *,
        port: int = 0,
    ) -> None:
        self.handle_action = handle_action
        self.current_screen = current_screen
        self.secret = secrets.token_urlsafe(32)
        self._clients: set[queue.Queue[str | None]] = set()
        self._clients_lock = threading.Lock()
        self._server = ThreadingHTTPServer((LOOPBACK, port), _handler_class(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.origin}/?key={self.secret}"

    def allowed_hosts(self) -> set[str]:
        return {f"{LOOPBACK}:{self.port}", f"localhost:{self.port}"}

    def allowed_origins(self) -> set[str]:
        return {f"http://{host}" for host in self.allowed_hosts()}

    def start(self) -> KioskServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="mynakit-kiosk", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._clients_lock:
            for client in self._clients:
                client.put(None)
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> KioskServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def publish(self, screen: Screen) -> None:
        """Push a screen to every open page (a terminal listener)."""
        data = json.dumps(screen.to_dict(), ensure_ascii=False)
        with self._clients_lock:
            for client in self._clients:
                client.put(data)

    def key_matches(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(
            candidate.encode("utf-8"), self.secret.encode("utf-8")
        )

    def _add_client(self) -> queue.Queue[str | None]:
        client: queue.Queue[str | None] = queue.Queue()
        with self._clients_lock:
            self._clients.add(client)
        return client

    def _remove_client(self, client: queue.Queue[str | None]) -> None:
        with self._clients_lock:
            self._clients.discard(client)


def _handler_class(kiosk: KioskServer) -> type[BaseHTTPRequestHandler]:
    class KioskHandler(BaseHTTPRequestHandler):
        server_version = "mynakit-kiosk"
        sys_version = ""
        protocol_version = "HTTP/1.1"

        # -- the checks every request passes ---------------------------------------------------

        def _refusal(self, *, needs_origin: bool) -> str | None:
            host = self.headers.get("Host")
            if host is None or host not in kiosk.allowed_hosts():
                return "foreign Host"
            origin = self.headers.get("Origin")
            if origin is not None and origin not in kiosk.allowed_origins():
                return "foreign Origin"
            if needs_origin and origin is None:
                return "no Origin"
            site = self.headers.get("Sec-Fetch-Site")
            if site is not None and site not in ("same-origin", "none"):
                return "cross-site request"
            return None

        def _query_key(self) -> str | None:
            values = parse_qs(urlsplit(self.path).query).get("key")
            return values[0] if values else None

        # -- GET ----------------------------------------------------------------------------

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            refusal = self._refusal(needs_origin=False)
            if refusal is not None:
                self._send_error(HTTPStatus.FORBIDDEN, refusal)
                return
            if path == "/favicon.ico":
                self._send(HTTPStatus.NOT_FOUND, b"", "image/x-icon")  # browsers ask; none
                return
            if path in _STATIC:
                file_name, content_type = _STATIC[path]
                self._send(HTTPStatus.OK, _asset(file_name), content_type)
                return
            if not kiosk.key_matches(self._query_key()):
                self._send_error(HTTPStatus.FORBIDDEN, "missing or wrong key")
                return
            if path == "/":
                page = _asset("index.html").replace(b"{{KEY}}", kiosk.secret.encode("ascii"))
                self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            elif path == "/state":
                body = json.dumps(kiosk.current_screen().to_dict(), ensure_ascii=False)
                self._send(HTTPStatus.OK, body.encode("utf-8"), "application/json")
            elif path == "/events":
                self._stream_events()
            else:
                self._send_error(HTTPStatus.NOT_FOUND, "no such page")

        def _stream_events(self) -> None:
            client = kiosk._add_client()
            try:
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Connection", "close")
                for name, value in _SECURITY_HEADERS.items():
                    self.send_header(name, value)
                self.end_headers()
                self.close_connection = True
                first = json.dumps(kiosk.current_screen().to_dict(), ensure_ascii=False)
                self._write_event(first)
                while True:
                    try:
                        data = client.get(timeout=KEEPALIVE_SECONDS)
                    except queue.Empty:
                        self.wfile.write(b": keep-alive\n\n")
                        self.wfile.flush()
                        continue
                    if data is None:
                        return
                    self._write_event(data)
            except (BrokenPipeError, ConnectionResetError):
                return
            finally:
                kiosk._remove_client(client)

        def _write_event(self, data: str) -> None:
            self.wfile.write(b"data: " + data.encode("utf-8") + b"\n\n")
            self.wfile.flush()

        # -- POST ---------------------------------------------------------------------------

        def do_POST(self) -> None:
            refusal = self._refusal(needs_origin=True)
            if refusal is not None:
                self._send_error(HTTPStatus.FORBIDDEN, refusal)
                return
            if urlsplit(self.path).path != "/action":
                self._send_error(HTTPStatus.NOT_FOUND, "no such action")
                return
            if not kiosk.key_matches(self.headers.get(KEY_HEADER)):
                self._send_error(HTTPStatus.FORBIDDEN, "missing or wrong key")
                return
            # JSON only: a cross-site form cannot send it without a refused pre-flight.
            if (self.headers.get("Content-Type") or "").split(";")[0].strip() != (
                "application/json"
            ):
                self._send_error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "JSON only")
                return
            try:
                length = int(self.headers.get("Content-Length") or "0")
            except ValueError:
                length = -1
            if not 0 < length <= MAX_ACTION_BYTES:
                self._send_error(HTTPStatus.BAD_REQUEST, "bad length")
                return
            try:
                payload = json.loads(self.rfile.read(length))
                action = payload["action"]
                value = payload.get("value")
            except (ValueError, KeyError, TypeError):
                self._send_error(HTTPStatus.BAD_REQUEST, "not an action")
                return
            if action not in ACTIONS or not _valid_value(action, value):
                self._send_error(HTTPStatus.BAD_REQUEST, "unknown action")
                return
            kiosk.handle_action(action, value)
            del payload, value  # a PIN is passed on, not kept
            self._send(HTTPStatus.ACCEPTED, b"{}", "application/json")

        def do_PUT(self) -> None:
            self._send_error(HTTPStatus.METHOD_NOT_ALLOWED, "not allowed")

        do_DELETE = do_PUT  # noqa: N815
        do_PATCH = do_PUT  # noqa: N815

        def do_OPTIONS(self) -> None:
            # No CORS pre-flight is ever granted: other origins get nothing.
            self._send_error(HTTPStatus.FORBIDDEN, "no cross-origin access")

        # -- responses ------------------------------------------------------------------------

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in _SECURITY_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _send_error(self, status: HTTPStatus, reason: str) -> None:
            logger.warning("kiosk refused %s %s: %s", self.command, _path_only(self.path), reason)
            self._send(status, json.dumps({"error": reason}).encode(), "application/json")

        def log_message(self, format: str, *args: Any) -> None:
            # The request line holds the key in its query: log the path only, never a body.
            logger.debug("kiosk %s %s", self.command, _path_only(self.path))

    return KioskHandler


def _valid_value(action: str, value: Any) -> bool:
    if action == "pin":
        return isinstance(value, str) and 0 < len(value) <= 16
    if action == "visual_confirm":
        return isinstance(value, str) and len(value) == 6 and value.isdigit()
    if action == "choose":
        return value in ("pin", "face", "visual")
    if action == "consents":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    return value is None or value == ""


def _path_only(path: str) -> str:
    return urlsplit(path).path


def _asset(name: str) -> bytes:
    return (resources.files("mynakit.terminal") / "kiosk_page" / name).read_bytes()


def kiosk_for(runner: TerminalRunner, *, port: int = 0) -> KioskServer:
    """A kiosk page driving ``runner``'s terminal: every button becomes a job on its queue."""
    terminal = runner.terminal
    jobs: dict[str, Callable[[Any], None]] = {
        "choose": lambda value: runner.post(terminal.choose_method, value),
        "pin": lambda value: runner.post(terminal.submit_pin, value),
        "confirm_last_try": lambda value: runner.post(terminal.confirm_last_try),
        "consents": lambda value: runner.post(terminal.answer_consents, value),
        "acknowledge": lambda value: runner.post(terminal.acknowledge),
        "cancel": lambda value: runner.post(terminal.cancel),
        "visual_confirm": lambda value: runner.post(terminal.confirm_visually, value),
    }

    def handle(action: str, value: Any) -> None:
        jobs[action](value)

    kiosk = KioskServer(handle, lambda: terminal.screen, port=port)
    terminal.subscribe(kiosk.publish)
    return kiosk
