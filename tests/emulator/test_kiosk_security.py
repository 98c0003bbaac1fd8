"""The kiosk page's lock-down: loopback only, Host and Origin checked, the start secret required,
nothing cached, no PIN or secret in the logs (the kiosk takes PINs)."""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from mynakit.cli.demo import Holder, SandboxCounter
from mynakit.terminal.kiosk import KEY_HEADER, KioskServer, kiosk_for
from mynakit.terminal.machine import Terminal
from mynakit.terminal.runner import TerminalRunner
from mynakit.terminal.screens import TerminalState
from mynakit.transport.in_process import InProcessConnection

pytestmark = pytest.mark.emulator

READER = "mynakit virtual reader"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxCounter]:
    with SandboxCounter(tmp_path_factory.mktemp("kiosk-counter")) as counter:
        yield counter


@pytest.fixture
def holder(world: SandboxCounter) -> Holder:
    return world.new_holder("kiosk-security")


@pytest.fixture
def runner(world: SandboxCounter, holder: Holder) -> Iterator[TerminalRunner]:
    terminal = Terminal(
        world.service,
        lambda reader: InProcessConnection(holder.card, reader_name=reader),
        institution_code=world.institution_code,
    )
    with TerminalRunner(terminal) as running:
        yield running


@pytest.fixture
def kiosk(runner: TerminalRunner) -> Iterator[KioskServer]:
    with kiosk_for(runner) as server:
        yield server


def _request(
    kiosk: KioskServer,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", kiosk.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        sent = {"Host": f"127.0.0.1:{kiosk.port}", **(headers or {})}
        for name, value in sent.items():
            if value:
                connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _state(runner: TerminalRunner) -> TerminalState:
    return runner.terminal.state


def _action(kiosk: KioskServer, action: str, value: object = None, **headers: str) -> int:
    sent = {
        "Origin": kiosk.origin,
        "Content-Type": "application/json",
        KEY_HEADER: kiosk.secret,
        **headers,
    }
    body = json.dumps({"action": action, "value": value}).encode()
    status, _, _ = _request(kiosk, "POST", "/action", headers=sent, body=body)
    return status


def test_bound_to_loopback_only(kiosk: KioskServer) -> None:
    assert kiosk._server.server_address[0] == "127.0.0.1"
    assert kiosk.url.startswith(f"http://127.0.0.1:{kiosk.port}/?key=")


def test_the_page_needs_the_start_secret(kiosk: KioskServer) -> None:
    status, headers, body = _request(kiosk, "GET", f"/?key={kiosk.secret}")
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Frame-Options"] == "DENY"
    assert kiosk.secret.encode() in body
    for path in ("/", "/?key=wrong", "/state", "/state?key=", "/events?key=nope"):
        status, headers, _ = _request(kiosk, "GET", path)
        assert status == 403, path
        assert headers["Cache-Control"] == "no-store"


def test_a_foreign_host_is_refused_even_with_the_secret(kiosk: KioskServer) -> None:
    # DNS rebinding: attacker.example re-pointed at 127.0.0.1 still sends its own name.
    for host in (
        f"attacker.example:{kiosk.port}",
        "attacker.example",
        f"127.0.0.1:{kiosk.port + 1}",
    ):
        status, _, _ = _request(kiosk, "GET", f"/state?key={kiosk.secret}", headers={"Host": host})
        assert status == 403, host
    status, _, _ = _request(
        kiosk, "GET", f"/state?key={kiosk.secret}", headers={"Host": f"localhost:{kiosk.port}"}
    )
    assert status == 200


def test_another_origin_can_neither_read_nor_act(
    kiosk: KioskServer, runner: TerminalRunner
) -> None:
    status, _, _ = _request(
        kiosk,
        "GET",
        f"/state?key={kiosk.secret}",
        headers={"Origin": "http://attacker.example"},
    )
    assert status == 403
    status, _, _ = _request(
        kiosk, "GET", f"/state?key={kiosk.secret}", headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert status == 403
    assert _action(kiosk, "cancel", Origin="http://attacker.example") == 403
    assert _action(kiosk, "cancel", Origin="null") == 403
    assert _action(kiosk, "cancel", Origin="") == 403  # no Origin on a POST
    assert _action(kiosk, "cancel", **{KEY_HEADER: ""}) == 403
    assert _action(kiosk, "cancel", **{KEY_HEADER: "guess"}) == 403
    assert _action(kiosk, "cancel", **{"Content-Type": "text/plain"}) == 415
    assert _action(kiosk, "format_disk") == 400
    assert _action(kiosk, "visual_confirm", "12") == 400  # a birth date is 6 digits
    assert _action(kiosk, "choose", "everything") == 400
    status, _, _ = _request(kiosk, "OPTIONS", "/action", headers={"Origin": kiosk.origin})
    assert status == 403


def test_the_page_drives_the_terminal_and_no_pin_is_logged(
    kiosk: KioskServer,
    runner: TerminalRunner,
    holder: Holder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    runner.post(runner.terminal.reader_added, READER)
    runner.post(runner.terminal.card_inserted, READER)
    assert runner.wait_idle(30)
    assert _state(runner) is TerminalState.CHOOSING_METHOD
    assert _action(kiosk, "choose", "pin") == 202
    assert runner.wait_idle(30)
    assert _state(runner) is TerminalState.ENTERING_PIN
    assert _action(kiosk, "pin", holder.persona.auth_pin) == 202
    assert runner.wait_idle(30)
    assert _state(runner) is TerminalState.TAKING_CONSENTS
    status, headers, body = _request(kiosk, "GET", f"/state?key={kiosk.secret}")
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert json.loads(body)["state"] == "taking_consents"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert holder.persona.auth_pin not in logged
    assert kiosk.secret not in logged


def test_events_stream_the_current_screen(kiosk: KioskServer, tmp_path: Path) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", kiosk.port, timeout=10)
    try:
        connection.request("GET", f"/events?key={kiosk.secret}")
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type", "").startswith("text/event-stream")
        assert response.getheader("Cache-Control") == "no-store"
        line = response.fp.readline()
        assert line.startswith(b"data: ")
        assert json.loads(line[6:])["state"] == "reader_unplugged"
    finally:
        connection.close()
