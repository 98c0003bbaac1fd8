"""Bad input through ``main()``, the CLI's one error boundary: every invocation in the table
fails with the documented exit code and one ``Error:`` line, never a traceback; with ``--json``
stdout holds exactly one ``{"error": ..., "exit_code": ...}`` object. Also the boundary's other
promises: global options after the subcommand, unexpected errors in one line (the traceback only
with ``-vv``), the one writer's file modes, and ``--reader virtual:NAME`` for ``readers``,
``check`` and ``wait``."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mynakit.card.errors import LastTryRefusedError
from mynakit.cli.context import CliContext
from mynakit.emulator.personas import Persona
from mynakit.emulator.state import create_card, load_card_state
from mynakit.errors import DataError, MynakitError, UsageError
from support.cli import CliResult, error_json, fails_with, invoke, ok_json, run_main

pytestmark = pytest.mark.emulator

CARD = "dora"
READER = f"virtual:{CARD}"
INTERNAL_ERROR = 70


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("bad-input-home")
    create_card(directory / "cards", CARD, seed="bad-input")
    return directory


@pytest.fixture(scope="module")
def holder(home: Path) -> Persona:
    return load_card_state(home / "cards", CARD).persona


@pytest.fixture(scope="module")
def files(home: Path) -> dict[str, str]:
    """Corrupt inputs, beside the home."""
    folder = home / "inputs"
    folder.mkdir()
    corrupt = {
        "garbage.der": b"\x30\x82\x01\x00" + b"\x00" * 40,
        "garbage.pem": b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        "garbage.p7s": b"\x30\x03\x02\x01\x01",
        "garbage.pdf": b"%PDF-1.7\nthis is not a PDF body\n%%EOF\n",
        "document.txt": b"a document\n",
    }
    for name, content in corrupt.items():
        (folder / name).write_bytes(content)
    return {name: str(folder / name) for name in corrupt} | {"folder": str(folder)}


def tries_left(home: Path) -> dict[tuple[str, int], int]:
    state = load_card_state(home / "cards", CARD)
    return {reference: record.tries_left for reference, record in state.pins.items()}


@dataclass(frozen=True)
class BadInvocation:
    name: str
    arguments: tuple[str, ...]
    exit_code: int
    message: str  # a part of the one error line
    env: tuple[tuple[str, str], ...] = ()


MISSING = "/missing/folder/out"
AUTH_PIN = (("MYNAKIT_AUTH_PIN", "{auth_pin}"),)
TEXT_PIN = (("MYNAKIT_TEXT_PIN", "{text_pin}"),)

CASES = [
        # Output paths: one line through the one writer, before any PIN is asked for.
        BadInvocation("cert -o missing dir", ("jpki", "cert", "-f", "der", "-o", MISSING), 2,
                      "cannot write /missing/folder/out: No such file or directory"),
        BadInvocation("cert text -o missing dir", ("jpki", "cert", "-o", MISSING), 2,
                      "cannot write"),
        BadInvocation("cert -o DIR", ("jpki", "cert", "-f", "pem", "-o", "{folder}"), 2,
                      "Is a directory"),
        BadInvocation("pkey sign -o missing dir",
                      ("jpki", "pkey", "sign", "-t", "auth", "{document}", "-o", MISSING), 2,
                      "cannot write", AUTH_PIN),
        BadInvocation("pdf sign -o missing dir",
                      ("jpki", "pdf", "sign", "{document}", "-o", MISSING), 2, "cannot write"),
        BadInvocation("visual name -o missing dir", ("visual", "name", "-o", MISSING), 2,
                      "cannot write", TEXT_PIN),
        BadInvocation("issuer crl -o missing dir", ("issuer", "crl", "-o", MISSING), 2,
                      "cannot write"),
        BadInvocation("cms sign -o DIR", ("jpki", "cms", "sign", "{document}", "-o", "{folder}"),
                      2, "Is a directory"),
        # Endless or missing inputs: capped, one line.
        BadInvocation("verify-cert /dev/zero", ("jpki", "verify-cert", "/dev/zero"), 2,
                      "too large"),
        BadInvocation("cms verify /dev/zero", ("jpki", "cms", "verify", "/dev/zero"), 2,
                      "too large"),
        BadInvocation("pdf verify /dev/zero", ("jpki", "pdf", "verify", "/dev/zero"), 2,
                      "too large"),
        BadInvocation("verify-cert missing", ("jpki", "verify-cert", "/missing/cert.der"), 2,
                      "cannot read /missing/cert.der"),
        BadInvocation("pkey sign missing input", ("jpki", "pkey", "sign", "/missing/in"), 2,
                      "cannot read"),
        BadInvocation("pdf sign a directory", ("jpki", "pdf", "sign", "{folder}", "-o",
                      "{folder}/x.pdf"), 2, "cannot read"),
        # Corrupt files.
        BadInvocation("verify-cert garbage DER", ("jpki", "verify-cert", "{garbage.der}"),
                      DataError.exit_code, ""),
        BadInvocation("verify-cert garbage PEM", ("jpki", "verify-cert", "{garbage.pem}"),
                      DataError.exit_code, ""),
        BadInvocation("cms verify garbage", ("jpki", "cms", "verify", "{garbage.p7s}"),
                      DataError.exit_code, ""),
        BadInvocation("pdf verify garbage", ("jpki", "pdf", "verify", "{garbage.pdf}"),
                      DataError.exit_code, ""),
        # Raw APDUs.
        BadInvocation("apdu not hex", ("apdu", "00A4ZZ"), 2, "is not hexadecimal"),
        BadInvocation("apdu too short", ("apdu", "00A4"), 2, "at least 4 bytes"),
        BadInvocation("apdu bad Lc", ("apdu", "00A4040C0AD392"), DataError.exit_code, ""),
        # Readers.
        BadInvocation("unknown virtual card", ("--reader", "virtual:nobody", "card", "info"), 2,
                      "no virtual card named 'nobody'"),
        BadInvocation("virtual without name", ("--reader", "virtual:", "card", "info"), 2,
                      "needs the virtual card's NAME"),
        BadInvocation("readers of unknown virtual card", ("--reader", "virtual:nobody",
                      "readers"), 2, "no virtual card named"),
        BadInvocation("wait for unknown virtual card", ("--reader", "virtual:nobody", "wait"),
                      2, "no virtual card named"),
        # PIN formats: refused before any card command.
        BadInvocation("full-width auth PIN",
                      ("jpki", "pkey", "sign", "-t", "auth", "{document}"), 2, "half-width",
                      (("MYNAKIT_AUTH_PIN", "１２３４"),)),
        BadInvocation("superscript auth PIN",
                      ("jpki", "pkey", "sign", "-t", "auth", "{document}"), 2, "half-width",
                      (("MYNAKIT_AUTH_PIN", "¹²³⁴"),)),
        BadInvocation("full-width text PIN", ("text", "mynumber"), 2, "half-width",
                      (("MYNAKIT_TEXT_PIN", "１２３４"),)),
        BadInvocation("no PIN source", ("jpki", "pkey", "sign", "-t", "auth", "{document}"), 2,
                      "MYNAKIT_AUTH_PIN"),
        # Click's own usage errors, in one line too.
        BadInvocation("unknown command", ("frobnicate",), 2, "No such command"),
        BadInvocation("bad choice", ("jpki", "cert", "-t", "nonsense"), 2, "choose from"),
        BadInvocation("missing argument", ("jpki", "cms", "sign"), 2, "Missing argument"),
        BadInvocation("unknown emulator card", ("emulator", "show", "nobody"), 2,
                      "no virtual card named"),
    ]  # fmt: skip


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def case(request: pytest.FixtureRequest, files: dict[str, str], holder: Persona) -> BadInvocation:
    """The invocation with its placeholders filled in: input files and the holder's PINs."""
    template: BadInvocation = request.param
    values = {
        "document": files["document.txt"],
        "auth_pin": holder.auth_pin,
        "text_pin": holder.text_pin,
        **{name: path for name, path in files.items() if name != "document.txt"},
    }

    def fill(text: str) -> str:
        for name, value in values.items():
            text = text.replace("{" + name + "}", value)
        return text

    return BadInvocation(
        template.name,
        tuple(fill(argument) for argument in template.arguments),
        template.exit_code,
        template.message,
        tuple((variable, fill(value)) for variable, value in template.env),
    )


def _run(home: Path, case: BadInvocation, *, as_json: bool) -> CliResult:
    reader = None if "--reader" in case.arguments else READER
    return invoke(home, reader, *case.arguments, env=dict(case.env), as_json=as_json)


def test_bad_input_gives_one_line_and_the_documented_exit_code(
    home: Path, case: BadInvocation
) -> None:
    before = tries_left(home)
    result = _run(home, case, as_json=False)
    assert result.exit_code == case.exit_code, result.output
    assert "Traceback" not in result.output
    line = result.error_line
    assert case.message in line, line
    assert result.stderr.rstrip("\n").splitlines()[-1] == line  # the error ends the output
    assert result.stdout == ""  # nothing half-written on stdout
    assert tries_left(home) == before  # bad input spends no PIN try


def test_bad_input_with_json_prints_one_error_object(home: Path, case: BadInvocation) -> None:
    result = _run(home, case, as_json=True)
    data = error_json(result, case.exit_code)
    assert set(data) <= {"error", "exit_code", "result"}
    assert case.message in data["error"]
    assert len(result.stdout.strip().splitlines()) == 1


# -- --json is a contract -------------------------------------------------------------------------


def test_global_options_work_after_the_subcommand(home: Path) -> None:
    after = run_main(["jpki", "cert", "--json", "--reader", READER], env=_env(home))
    before = run_main(["--json", "--reader", READER, "jpki", "cert"], env=_env(home))
    assert ok_json(after) == ok_json(before)
    assert ok_json(run_main(["jpki", "cert", f"--reader={READER}", "--json"], env=_env(home)))


def test_binary_output_to_stdout_needs_o_with_json(home: Path) -> None:
    result = invoke(home, READER, "jpki", "cert", "-f", "der")  # --json, no -o
    data = error_json(result, UsageError.exit_code)
    assert "use -o FILE" in data["error"]
    assert invoke(home, READER, "jpki", "cert", "-f", "der", as_json=False).stdout_bytes[:1] == (
        b"\x30"
    )


def test_verify_failure_with_json_is_one_error_object(home: Path, files: dict[str, str]) -> None:
    certificate = Path(files["folder"]) / "auth.der"
    ok_json(invoke(home, READER, "jpki", "cert", "-f", "der", "-o", str(certificate)))
    result = invoke(home, READER, "jpki", "verify-cert", str(certificate))  # no --sandbox
    data = error_json(result, 7)
    assert data["result"]["valid"] is False and data["result"]["reason"] == "unknown_issuer"


# -- the error boundary ---------------------------------------------------------------------------


@pytest.fixture
def broken_readers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def explode(self: CliContext) -> list[object]:
        raise RuntimeError("an internal bug")

    monkeypatch.setattr(CliContext, "readers", explode)
    yield


@pytest.mark.usefixtures("broken_readers")
def test_an_unexpected_error_is_one_line_without_traceback(home: Path) -> None:
    result = invoke(home, READER, "readers", as_json=False)
    assert result.exit_code == INTERNAL_ERROR
    assert "Traceback" not in result.output
    assert result.error_line == (
        "Error: unexpected error (RuntimeError: an internal bug); run with -vv for the traceback"
    )
    assert error_json(invoke(home, READER, "readers"), INTERNAL_ERROR)["error"].startswith(
        "unexpected error (RuntimeError"
    )


@pytest.mark.usefixtures("broken_readers")
def test_the_traceback_only_with_vv(home: Path) -> None:
    result = invoke(home, READER, "readers", "-vv", as_json=False)
    assert result.exit_code == INTERNAL_ERROR
    assert "Traceback (most recent call last)" in result.stderr
    assert result.error_line == "Error: unexpected error (RuntimeError: an internal bug)"


def test_any_os_error_is_one_line(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: CliContext) -> list[object]:
        raise PermissionError(13, "Permission denied", "/dev/bus/usb/001")

    monkeypatch.setattr(CliContext, "readers", refuse)
    result = invoke(home, READER, "readers", as_json=False)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.error_line == "Error: /dev/bus/usb/001: Permission denied"


# -- the one writer: file modes -------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("open_umask")
def test_personal_files_are_0600_public_ones_stay_readable(
    home: Path, holder: Persona, tmp_path: Path
) -> None:
    text_pin = {"MYNAKIT_TEXT_PIN": holder.text_pin}
    sign_password = {"MYNAKIT_SIGN_PASSWORD": holder.sign_password}
    name_image = tmp_path / "name.png"
    ok_json(invoke(home, READER, "visual", "name", "-o", str(name_image), env=text_pin))
    sign_certificate = tmp_path / "sign.der"
    ok_json(
        invoke(home, READER, "jpki", "cert", "-t", "sign", "-f", "der", "-o",
               str(sign_certificate), env=sign_password)
    )  # fmt: skip
    faces = tmp_path / "faces"
    ok_json(invoke(home, READER, "visual", "entries", "-o", str(faces), env=text_pin))
    auth_certificate = tmp_path / "auth.pem"
    ok_json(invoke(home, READER, "jpki", "cert", "-f", "pem", "-o", str(auth_certificate)))
    crl = tmp_path / "auth.crl"
    ok_json(invoke(home, None, "issuer", "crl", "-o", str(crl)))

    assert _mode(name_image) == 0o600
    assert _mode(sign_certificate) == 0o600
    assert _mode(faces) == 0o700
    assert {_mode(image) for image in faces.iterdir()} == {0o600}
    assert _mode(auth_certificate) == 0o644
    assert _mode(crl) == 0o644


@pytest.mark.usefixtures("open_umask")
def test_an_existing_file_is_narrowed_before_personal_data_goes_in(
    home: Path, holder: Persona, tmp_path: Path
) -> None:
    target = tmp_path / "face.png"
    target.write_bytes(b"old")
    target.chmod(0o644)
    env = {"MYNAKIT_TEXT_PIN": holder.text_pin}
    ok_json(invoke(home, READER, "visual", "name", "-o", str(target), env=env))
    assert _mode(target) == 0o600 and target.read_bytes() != b"old"


# -- --reader virtual:NAME for readers, check and wait --------------------------------------------


def test_readers_check_and_wait_use_the_virtual_reader(home: Path) -> None:
    # No pcscd is needed: before the reader was resolved once, these said "pcscd is not running".
    (listed,) = ok_json(invoke(home, READER, "readers"))["readers"]
    assert listed["name"] == f"mynakit virtual reader ({CARD})" and listed["card_present"]
    assert listed["atr"]
    waited = ok_json(invoke(home, READER, "wait", "--timeout", "1"))
    assert waited == {"reader": listed["name"], "atr": listed["atr"]}
    report = ok_json(invoke(home, READER, "check"))
    assert report["readers"] == [listed["name"]] and report["cards"] == 1
    assert report["card"]["kind"] == "mynumber_card" or report["card"]["token_label"]


def test_card_ca_keys_are_read_without_loading_the_card(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A copy of the home whose card has no private keys at all: loading the card would fail,
    # reading the card-CA public key must not need it.
    copy = tmp_path / "home"
    shutil.copytree(home / "cards", copy / "cards")
    shutil.rmtree(copy / "cards" / CARD / "keys")
    monkeypatch.setenv("MYNAKIT_HOME", str(copy))
    with pytest.raises(MynakitError):
        load_card_state(copy / "cards", CARD)
    keys = CliContext(reader=READER, trace=False).trusted_card_ca_keys(sandbox=False)
    assert keys is not None and all(len(trusted) == 1 for trusted in keys.values())
    assert CliContext(reader=None, trace=False).trusted_card_ca_keys(sandbox=False) is None


# -- mynakit apdu ---------------------------------------------------------------------------------

SELECT_JPKI_AP = "00A4040C0AD392F000260100000001"
SELECT_AUTH_PIN = "00A4020C020018"


def _verify_auth_pin(pin: str) -> str:
    data = pin.encode("ascii")
    return f"00200080{len(data):02X}{data.hex().upper()}"


def test_apdu_redacts_the_pin_of_a_verify(home: Path, holder: Persona) -> None:
    verify = _verify_auth_pin(holder.auth_pin)
    for as_json in (False, True):
        result = invoke(
            home, READER, "--trace", "apdu", SELECT_JPKI_AP, SELECT_AUTH_PIN, verify,
            as_json=as_json,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        pin_hex = holder.auth_pin.encode("ascii").hex()
        for form in (holder.auth_pin, pin_hex, pin_hex.upper(), " ".join(
            f"{byte:02X}" for byte in holder.auth_pin.encode("ascii")
        )):  # fmt: skip
            assert form not in result.output
        assert "<redacted>" in result.stdout
    assert tries_left(home)[("jpki", 0x18)] == 3


def test_apdu_refuses_the_last_try_without_force(home: Path, holder: Persona) -> None:
    state = load_card_state(home / "cards", CARD)
    state.pins[("jpki", 0x18)].tries_left = 1
    state.save_pins()
    wrong = "0000" if holder.auth_pin != "0000" else "1111"
    try:
        refused = invoke(
            home, READER, "apdu", SELECT_JPKI_AP, SELECT_AUTH_PIN, _verify_auth_pin(wrong),
            as_json=False,
        )  # fmt: skip
        assert "only one try is left" in fails_with(refused, LastTryRefusedError)
        assert tries_left(home)[("jpki", 0x18)] == 1
        forced = invoke(
            home, READER, "apdu", "--force", SELECT_JPKI_AP, SELECT_AUTH_PIN,
            _verify_auth_pin(holder.auth_pin),
        )  # fmt: skip
        assert ok_json(forced)["responses"][-1]["sw"] == "9000"
    finally:
        state = load_card_state(home / "cards", CARD)
        state.pins[("jpki", 0x18)].tries_left = 3
        state.save_pins()


def _env(home: Path) -> dict[str, str]:
    return {"MYNAKIT_HOME": str(home)}


def test_error_objects_are_json(home: Path) -> None:
    result = run_main(["--json", "emulator", "show", "nobody"], env=_env(home))
    assert json.loads(result.stdout) == {
        "error": f"no virtual card named 'nobody' in {home / 'cards'}",
        "exit_code": 2,
    }
