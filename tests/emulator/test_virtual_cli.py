"""``mynakit emulator`` and ``mynakit issuer`` against a temporary MYNAKIT_HOME."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509

from mynakit.cli.issuer import parse_serial
from mynakit.errors import UsageError
from support.cli import fails_with, invoke, ok_json

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def home_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MYNAKIT_HOME holding card "alice", made once through the CLI."""
    home = tmp_path_factory.mktemp("home")
    result = invoke(home, None, "emulator", "create", "alice", "--seed", "7")
    assert result.exit_code == 0, result.output
    return home


@pytest.fixture
def home(home_template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(home_template, copy)
    return copy


def test_list_and_show_without_secrets(home: Path) -> None:
    listing = ok_json(invoke(home, None, "emulator", "list"))
    assert [card["name"] for card in listing["cards"]] == ["alice"]
    shown = ok_json(invoke(home, None, "emulator", "show", "alice"))
    holder = shown["holder"]
    assert isinstance(holder, dict)
    assert "my_number" not in holder and "auth_pin" not in holder
    assert shown["pin_tries_left"]["jpki/auth_pin"] == "3/3"
    revealed = ok_json(invoke(home, None, "emulator", "show", "alice", "--reveal"))["holder"]
    assert isinstance(revealed, dict) and len(revealed["my_number"]) == 12


def test_insert_and_remove(home: Path) -> None:
    assert ok_json(invoke(home, None, "emulator", "insert", "alice"))["inserted"] == "alice"
    assert (home / "cards" / "inserted").read_text().strip() == "alice"
    assert ok_json(invoke(home, None, "emulator", "show", "alice"))["inserted"] is True
    assert ok_json(invoke(home, None, "emulator", "remove"))["removed"] == "alice"
    assert ok_json(invoke(home, None, "emulator", "remove"))["removed"] is None


def test_errors_map_to_exit_codes(home: Path) -> None:
    result = invoke(home, None, "emulator", "show", "nobody", as_json=False)
    assert "no virtual card named 'nobody'" in fails_with(result, UsageError)


def test_delete_needs_confirmation(home: Path) -> None:
    # no tty: confirmation aborts
    refused = invoke(home, None, "emulator", "delete", "alice", as_json=False)
    assert refused.exit_code != 0 and (home / "cards" / "alice").exists()
    assert (
        ok_json(invoke(home, None, "emulator", "delete", "alice", "--force"))["deleted"] == "alice"
    )
    assert ok_json(invoke(home, None, "emulator", "list"))["cards"] == []


def test_revoke_renew_and_crl(home: Path, tmp_path: Path) -> None:
    serials = ok_json(invoke(home, None, "emulator", "show", "alice"))["certificate_serials"]
    assert isinstance(serials, dict)
    auth = serials["auth"]
    assert isinstance(auth, int)  # serials are numbers in JSON, decimal on the command line
    revoked = ok_json(
        invoke(home, None, "issuer", "revoke", str(auth), "--reason", "keyCompromise")
    )
    assert revoked["revoked"] == auth
    crl_file = tmp_path / "auth.crl"
    summary = ok_json(invoke(home, None, "issuer", "crl", "--kind", "auth", "-o", str(crl_file)))
    assert summary["revoked"] == 1
    crl = x509.load_der_x509_crl(crl_file.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(auth) is not None
    sign_crl = invoke(home, None, "issuer", "crl", "--kind", "sign", as_json=False)
    assert sign_crl.exit_code == 0 and sign_crl.stdout.startswith("-----BEGIN X509 CRL-----")

    renewed = ok_json(invoke(home, None, "issuer", "renew", str(serials["sign"])))
    assert renewed["card"] == "alice" and renewed["kind"] == "sign"
    after = ok_json(invoke(home, None, "emulator", "show", "alice"))["certificate_serials"]
    assert after["sign"] == renewed["new_serial"] != serials["sign"]
    unknown = invoke(home, None, "issuer", "renew", "0x1", as_json=False)
    assert "no virtual card holds" in fails_with(unknown, UsageError)


def test_parse_serial() -> None:
    assert parse_serial("0x1F") == 31
    assert parse_serial("31") == 31
    assert parse_serial("1f") == 31
    with pytest.raises(UsageError):
        parse_serial("zz")


def test_ocsp_serves_until_interrupted(home: Path) -> None:
    import signal

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from mynakit.cli.main import main; main()",
            "issuer",
            "ocsp",
            "--port",
            str(port),
        ],
        # The caller's environment passes through (PYTHONDONTWRITEBYTECODE, PATH, ...).
        env={**os.environ, "MYNAKIT_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        body = b""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/crl/auth.crl", timeout=2
                ) as r:
                    body = r.read()
                break
            except OSError:
                time.sleep(0.1)
        assert len(x509.load_der_x509_crl(body)) == 0  # a fresh issuer has revoked nothing
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0
    assert b"stopped" in output


def test_previous_serial_after_a_renewal(home: Path) -> None:
    serials = ok_json(invoke(home, None, "emulator", "show", "alice"))["certificate_serials"]
    first = serials["auth"]
    assert ok_json(invoke(home, None, "issuer", "previous", str(first)))["previous_serial"] is None
    renewed = ok_json(invoke(home, None, "issuer", "renew", str(first)))
    link = ok_json(invoke(home, None, "issuer", "previous", str(renewed["new_serial"])))
    assert link == {"serial": renewed["new_serial"], "previous_serial": first}
    text = invoke(home, None, "issuer", "previous", str(renewed["new_serial"]), as_json=False)
    assert text.stdout.strip() == f"{renewed['new_serial']} replaced {first}"
