"""Every ``mynakit`` card command through pcscd + vpcd gives what it gives in-process.

One persisted virtual card (module scope: each card teardown costs about 0.4 s) is served in
``Virtual PCD 00 00`` by the vpcd bridge; the same card on disk is also opened in-process with
``--reader virtual:NAME`` from the same ``MYNAKIT_HOME``. Each command runs both ways through
``main()`` and the JSON must be equal, apart from the fields that name the reader or the
current time, and the card-CA chain check of ``text verify`` / ``visual entries`` (see
``CHAIN_FIELDS``). A few commands also run as a real subprocess of the installed ``mynakit``
script.

PIN counters stay full: every verify here uses the right secret (a successful VERIFY resets the
counter), and ``pin change`` changes each secret and back again, in-process first and then
through pcscd, so the bridge's card in memory and the card on disk never disagree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mynakit.card.visual import JP2_SIGNATURE
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.pcscd import (
    VPCD_READER,
    PcscdSession,
    PcscdSetupError,
    card_in_virtual_reader,
)
from mynakit.emulator.personas import Persona
from mynakit.emulator.state import create_card, load_card, load_card_state
from mynakit.jpki.certificates import CertificateKind, parse_certificate
from mynakit.transport.base import NoReaderError
from support.cli import error_json, fails_with, invoke, ok_json, run_main
from support.startup import NOT_ON_THE_FAST_PATH, PYSCARD_BEYOND_THE_EXTENSION

pytestmark = pytest.mark.pcsc

CARD_NAME = "pcsc-cli"
IN_PROCESS_READER = f"virtual:{CARD_NAME}"
MYNAKIT_SCRIPT = Path(sys.executable).with_name("mynakit")
SELECT_JPKI_AP = "00A4040C0AD392F000260100000001"  # docs/card.md §7.1
SELECT_TOKEN_EF = "00A4020C020006"
READ_TOKEN = "00B0000020"
PLASTIC_CARD_LABEL = b"JPKIAPICCTOKEN2".ljust(32)  # docs/card.md §6.10

# Fields that differ by design between the two runs: which reader, and the wall clock.
READER_FIELDS = ("reader",)
TIME_FIELDS = ("authenticated_at", "validated_at", "signing_time")


# -- the card, on disk and in the reader ----------------------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``MYNAKIT_HOME`` with the card (and the sandbox issuer beside it, for jpki auth)."""
    directory = tmp_path_factory.mktemp("mynakit-home")
    create_card(directory / "cards", CARD_NAME, seed="pcsc-cli")
    return directory


@pytest.fixture(scope="module")
def holder(home: Path) -> Persona:
    return load_card_state(home / "cards", CARD_NAME).persona


@pytest.fixture(scope="module")
def served_card(pcscd: PcscdSession, home: Path) -> Iterator[VirtualCard]:
    """The persisted card, loaded as ``mynakit emulator serve`` does, in ``Virtual PCD 00 00``."""
    card = load_card(home / "cards", CARD_NAME)
    try:
        with card_in_virtual_reader(card):
            yield card
    except PcscdSetupError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="module")
def credentials(holder: Persona) -> dict[str, str]:
    """Every credential of the holder, as the environment variables cli/util.py reads."""
    return {
        "MYNAKIT_AUTH_PIN": holder.auth_pin,
        "MYNAKIT_SIGN_PASSWORD": holder.sign_password,
        "MYNAKIT_TEXT_PIN": holder.text_pin,
        "MYNAKIT_CHECK_CODE_A": holder.check_code_a,
        "MYNAKIT_CHECK_CODE_B": holder.check_code_b,
        "MYNAKIT_CARD_PIN": holder.card_pin,
    }


# -- running the CLI ------------------------------------------------------------------------------


def without(data: Any, fields: tuple[str, ...]) -> Any:
    """``data`` with the named keys removed at any depth (reader names, timestamps)."""
    if isinstance(data, dict):
        return {key: without(value, fields) for key, value in data.items() if key not in fields}
    if isinstance(data, list):
        return [without(item, fields) for item in data]
    return data


def both(
    home: Path,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    ignore: tuple[str, ...] = (),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the command in-process, then through pcscd; assert the JSON is the same apart from
    ``ignore``; return (in-process, through pcscd)."""
    in_process = ok_json(invoke(home, IN_PROCESS_READER, *args, env=env, stdin=stdin))
    through_pcscd = ok_json(invoke(home, VPCD_READER, *args, env=env, stdin=stdin))
    assert without(through_pcscd, ignore) == without(in_process, ignore)
    return in_process, through_pcscd


def run_script(
    home: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> dict[str, Any]:
    """The installed ``mynakit`` console script as a real process (its own pyscard context)."""
    environment = {**os.environ, "MYNAKIT_HOME": str(home), **(env or {})}
    result = subprocess.run(
        [str(MYNAKIT_SCRIPT), "--json", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def minimal_pdf() -> bytes:
    """A one-page PDF (catalog, page tree, one empty A4 page) with an exact xref table."""
    objects = (
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    )
    document = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(document))
        document += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_offset = len(document)
    document += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    document += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    document += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref_offset,
    )
    return bytes(document)


# -- start-up: what the common commands import -----------------------------------------------

#: Modules a command that only moves bytes must not import (issue 8, start-up time): X.509 and
#: ASN.1 parsers, PDF and image libraries, and the emulator (the card is in pcscd here); and,
#: since ``jpki cert`` and ``jpki pkey sign`` take the fast path (docs/architecture.md §10),
#: nothing the fast path leaves out (``support.startup``; the profile cache is warm here).
NEEDLESS_FOR_BYTES = (
    "cryptography",
    "asn1crypto",
    "pyhanko",
    "PIL",
    "mynakit.emulator",
    *NOT_ON_THE_FAST_PATH,
)


def imported_by(home: Path, arguments: list[str], env: dict[str, str] | None = None) -> set[str]:
    """The modules ``main(arguments)`` imports in a fresh interpreter (environment passed
    through), after checking it succeeded."""
    probe = (
        "import sys\n"
        "from mynakit.cli.main import main\n"
        "try:\n"
        f"    main({arguments!r})\n"
        "except SystemExit as exit_request:\n"
        "    assert not exit_request.code, exit_request.code\n"
        "print('MODULES=' + ','.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    environment = {**os.environ, "MYNAKIT_HOME": str(home), **(env or {})}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=environment, check=False
    )
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("MODULES=")]
    return set(line.removeprefix("MODULES=").split(","))


def needless(modules: set[str]) -> list[str]:
    assert "smartcard.scard._scard" in modules
    return sorted(
        module
        for module in modules
        if module in PYSCARD_BEYOND_THE_EXTENSION
        or any(module == name or module.startswith(name + ".") for name in NEEDLESS_FOR_BYTES)
    )


@pytest.mark.usefixtures("served_card")
def test_jpki_cert_and_pkey_sign_import_no_parser(
    home: Path, credentials: dict[str, str], tmp_path: Path
) -> None:
    certificate = tmp_path / "auth.der"
    read = ["--reader", VPCD_READER, "jpki", "cert", "-t", "auth", "-f", "der", "-o"]
    imported_by(home, [*read, str(tmp_path / "first.der")])  # fills the profile cache if empty
    assert needless(imported_by(home, [*read, str(certificate)])) == []
    assert certificate.read_bytes()[:1] == b"\x30"
    document = tmp_path / "challenge"
    document.write_bytes(b"nonce")
    sign = ["--reader", VPCD_READER, "jpki", "pkey", "sign", "-t", "auth", str(document)]
    signed = imported_by(home, [*sign, "-o", str(tmp_path / "sig")], env=credentials)
    assert needless(signed) == []


@pytest.mark.usefixtures("served_card")
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_fast_path_and_click_alike_through_pcscd(
    home: Path, credentials: dict[str, str], tmp_path: Path, as_json: bool
) -> None:
    """The benchmark's two command lines on a PC/SC reader, where the fast path sets up no
    logging (docs/architecture.md §10): the same output and files as through click."""
    document = tmp_path / "challenge"
    document.write_bytes(b"nonce")
    forms = [
        ["jpki", "cert", "-t", "auth", "-f", "der", "-o", str(tmp_path / "auth.der")],
        ["jpki", "cert", "-t", "auth", "-f", "pem"],
        ["jpki", "pkey", "sign", "-t", "auth", str(document), "-o", str(tmp_path / "sig")],
        ["jpki", "pkey", "sign", "-t", "auth", str(document)],
    ]
    environment = {"MYNAKIT_HOME": str(home), **credentials}
    for form in forms:
        arguments = ["--reader", VPCD_READER, *(["--json"] if as_json else []), *form]
        runs = []
        for fast in (True, False):
            result = run_main(arguments, env=environment, fast_path=fast)
            written = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
            runs.append((result.exit_code, result.stdout_bytes, result.stderr_bytes, written))
        assert runs[0] == runs[1], form
        assert runs[0][0] == 0, runs[0]


# -- readers, wait, card info, apdu ---------------------------------------------------------------


def test_readers_lists_the_virtual_reader_with_the_card(
    home: Path, served_card: VirtualCard
) -> None:
    data = ok_json(invoke(home, None, "readers"))
    entry = next(row for row in data["readers"] if row["name"] == VPCD_READER)
    assert entry == {
        "name": VPCD_READER,
        "card_present": True,
        "atr": served_card.atr.hex().upper(),
    }


@pytest.mark.usefixtures("served_card")
def test_readers_and_check_go_through_the_reader_choice(home: Path) -> None:
    (only,) = ok_json(invoke(home, "PCD 00 00", "readers"))["readers"]
    assert only["name"] == VPCD_READER
    report = ok_json(invoke(home, VPCD_READER, "check"))
    assert report["service"] == "running" and report["card"]["kind"] == "my_number_card"


@pytest.mark.usefixtures("served_card")
@pytest.mark.parametrize("command", [["readers"], ["card", "info"], ["wait", "--timeout", "1"]])
def test_an_unknown_pcsc_reader_is_one_line(home: Path, command: list[str]) -> None:
    result = invoke(home, "No Such Reader", *command, as_json=False)
    line = fails_with(result, NoReaderError) if command[0] != "wait" else result.error_line
    assert "No Such Reader" in line or "no card was inserted" in line
    assert "Traceback" not in result.output
    assert error_json(invoke(home, "No Such Reader", *command), result.exit_code)["error"]


def test_wait_returns_at_once_for_a_card_already_present(
    home: Path, served_card: VirtualCard
) -> None:
    data = ok_json(invoke(home, VPCD_READER, "wait", "--timeout", "5"))
    assert data == {"reader": VPCD_READER, "atr": served_card.atr.hex().upper()}


def test_card_info(home: Path, served_card: VirtualCard) -> None:
    in_process, through_pcscd = both(home, "card", "info", ignore=READER_FIELDS)
    assert through_pcscd["reader"] == VPCD_READER
    assert in_process["reader"] != VPCD_READER
    assert through_pcscd["kind"] == "my_number_card"
    assert through_pcscd["token_label"] == "JPKIAPICCTOKEN2"
    assert through_pcscd["atr_known"] is True


def test_apdu(home: Path, served_card: VirtualCard) -> None:
    _, through_pcscd = both(home, "apdu", SELECT_JPKI_AP, SELECT_TOKEN_EF, READ_TOKEN)
    answers = through_pcscd["responses"]
    assert [answer["sw"] for answer in answers] == ["9000", "9000", "9000"]
    assert bytes.fromhex(answers[2]["data"]) == PLASTIC_CARD_LABEL


# -- jpki cert / pkey -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["auth", "auth_ca", "sign_ca"])
def test_jpki_cert_without_a_password(home: Path, served_card: VirtualCard, kind: str) -> None:
    _, through_pcscd = both(home, "jpki", "cert", "-t", kind)
    assert through_pcscd["kind"] == kind
    if kind == "auth":
        assert through_pcscd["serial"] == served_card.state.serials["auth"]


def test_jpki_cert_der_files_are_identical(
    home: Path, served_card: VirtualCard, tmp_path: Path
) -> None:
    files: dict[str, bytes] = {}
    for reader in (IN_PROCESS_READER, VPCD_READER):
        target = tmp_path / f"auth-{len(files)}.der"
        written = ok_json(
            invoke(home, reader, "jpki", "cert", "-t", "auth", "-f", "der", "-o", str(target))
        )
        assert written["written"] == str(target)
        files[reader] = target.read_bytes()
    assert files[VPCD_READER] == files[IN_PROCESS_READER]
    assert parse_certificate(files[VPCD_READER]).kind is CertificateKind.AUTH


def test_jpki_cert_sign_with_the_password(
    home: Path, served_card: VirtualCard, holder: Persona
) -> None:
    env = {"MYNAKIT_SIGN_PASSWORD": holder.sign_password}
    _, from_environment = both(home, "jpki", "cert", "-t", "sign", env=env)
    assert from_environment["kind"] == "sign"
    assert from_environment["serial"] == served_card.state.serials["sign"]
    _, from_stdin = both(
        home, "jpki", "cert", "-t", "sign", "--pin-stdin", stdin=holder.sign_password + "\n"
    )
    assert from_stdin == from_environment
    # The basic-4 information only with --show-personal, the same both ways.
    _, shown = both(home, "jpki", "cert", "-t", "sign", "--show-personal", env=env)
    assert shown["basic_info"]["name"] == holder.name


@pytest.mark.parametrize("key", ["auth", "sign"])
def test_jpki_pkey_sign_and_verify(
    home: Path, served_card: VirtualCard, credentials: dict[str, str], tmp_path: Path, key: str
) -> None:
    document = tmp_path / "application.txt"
    document.write_bytes(b"an application form")
    # PKCS#1 v1.5 is deterministic: the same key gives the same signature both ways.
    _, signed = both(home, "jpki", "pkey", "sign", "-t", key, str(document), env=credentials)
    assert signed["bytes"] == 256 and signed["digest"] == "sha256"
    signature = tmp_path / "application.sig"
    signature.write_bytes(bytes.fromhex(signed["signature"]))
    _, verified = both(
        home, "jpki", "pkey", "verify", "-t", key, str(document), str(signature), env=credentials
    )
    assert verified == {"key": key, "valid": True, "digest": "sha256"}


# -- pin ------------------------------------------------------------------------------------------


def full_counters(card: VirtualCard) -> bool:
    return all(record.tries_left == record.max_tries for record in card.state.pins.values())


def test_pin_status(home: Path, served_card: VirtualCard) -> None:
    _, through_pcscd = both(home, "pin", "status")
    keys = through_pcscd["keys"]
    assert len(keys) == 8
    assert all(item["tries_left"] == item["max_tries"] for item in keys)
    assert full_counters(served_card)


@pytest.mark.parametrize(
    ("target", "variable", "application", "key_id", "new_value"),
    [
        ("auth", "MYNAKIT_AUTH_PIN", "jpki", 0x18, "2468"),
        ("sign", "MYNAKIT_SIGN_PASSWORD", "jpki", 0x1B, "NEWPASS2468"),
        ("text", "MYNAKIT_TEXT_PIN", "text", 0x11, "1357"),
        ("card", "MYNAKIT_CARD_PIN", "common", 0x1C, "8642"),
    ],
)
def test_pin_change_and_back(
    home: Path,
    served_card: VirtualCard,
    credentials: dict[str, str],
    target: str,
    variable: str,
    application: str,
    key_id: int,
    new_value: str,
) -> None:
    old_value = credentials[variable]
    forward = {variable: old_value, "MYNAKIT_NEW_PIN": new_value}
    backward = {variable: new_value, "MYNAKIT_NEW_PIN": old_value}
    # In-process first, there and back: the card on disk ends as the bridge's card holds it.
    in_process = [
        ok_json(invoke(home, IN_PROCESS_READER, "pin", "change", target, env=change))
        for change in (forward, backward)
    ]
    changed = ok_json(invoke(home, VPCD_READER, "pin", "change", target, env=forward))
    assert changed == in_process[0]
    assert changed["changed"] is True and changed["key_id"] == f"{key_id:04X}"
    # The change reached the card behind pcscd, and was saved where `emulator serve` keeps it.
    on_disk = load_card_state(home / "cards", CARD_NAME).pins[(application, key_id)]
    assert on_disk.value == new_value.encode("ascii")
    assert served_card.state.pins[(application, key_id)].value == new_value.encode("ascii")
    restored = ok_json(invoke(home, VPCD_READER, "pin", "change", target, env=backward))
    assert restored == in_process[1]
    assert load_card_state(home / "cards", CARD_NAME).pins[(application, key_id)].value == (
        old_value.encode("ascii")
    )
    assert full_counters(served_card)


# -- text, visual, common -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("text", "mynumber"),
        ("text", "mynumber", "-c", "a"),
        ("text", "basic-info"),
        ("text", "basic-info", "-c", "b"),
        ("text", "info"),
    ],
)
def test_text(
    home: Path,
    served_card: VirtualCard,
    holder: Persona,
    credentials: dict[str, str],
    command: tuple[str, ...],
) -> None:
    _, through_pcscd = both(home, *command, env=credentials)
    if command[1] == "mynumber":
        assert through_pcscd == {"my_number": holder.my_number}
    elif command[1] == "basic-info":
        assert through_pcscd["name"] == holder.name
        assert through_pcscd["birth_date"] == holder.birth_date.isoformat()
    else:
        assert through_pcscd["spec_version"] == 1


# The CLI trusts a virtual card's sandbox card-CA key on its own only when it opens the card
# itself with --reader virtual:NAME (cli/text.py sandbox_card_ca_keys); behind pcscd the same card
# is "a card in a reader", whose card-CA key is trusted only with --sandbox, as for the sandbox
# JPKI roots. Without --sandbox the CV chain check is the one expected difference; with it the
# output is the same both ways. The AP signature check is the same in every case.
CHAIN_FIELDS = ("chain_verified", "note")


def assert_chain_unverified_behind_pcscd(
    in_process: dict[str, Any], through_pcscd: dict[str, Any]
) -> None:
    assert in_process["chain_verified"] is True
    assert through_pcscd["chain_verified"] is False
    assert "is not trusted" in through_pcscd["note"]


@pytest.mark.parametrize("credential", ["pin", "a", "b"])
def test_text_verify(
    home: Path, served_card: VirtualCard, credentials: dict[str, str], credential: str
) -> None:
    in_process, through_pcscd = both(
        home, "text", "verify", "-c", credential, env=credentials, ignore=CHAIN_FIELDS
    )
    assert through_pcscd["ok"] is True and through_pcscd["signature_valid"] is True
    assert_chain_unverified_behind_pcscd(in_process, through_pcscd)


def test_text_verify_with_sandbox_trust_is_the_same_through_pcscd(
    home: Path, served_card: VirtualCard, credentials: dict[str, str]
) -> None:
    _, through_pcscd = both(home, "text", "verify", "--sandbox", env=credentials)
    assert through_pcscd["chain_verified"] is True
    assert through_pcscd["ok"] is True


def test_visual_info(home: Path, served_card: VirtualCard, holder: Persona) -> None:
    _, through_pcscd = both(home, "visual", "info")
    assert through_pcscd["municipality_code"] == holder.municipality_code


@pytest.mark.parametrize("credential", ["pin", "b"])
def test_visual_entries_and_their_images(
    home: Path,
    served_card: VirtualCard,
    holder: Persona,
    credentials: dict[str, str],
    tmp_path: Path,
    credential: str,
) -> None:
    outputs = {
        reader: tmp_path / reader.replace(" ", "_") for reader in (IN_PROCESS_READER, VPCD_READER)
    }
    results = {
        reader: ok_json(
            invoke(
                home,
                reader,
                "visual",
                "entries",
                "-c",
                credential,
                "-o",
                str(directory),
                env=credentials,
            )
        )
        for reader, directory in outputs.items()
    }
    assert without(results[VPCD_READER], ("written", *CHAIN_FIELDS)) == without(
        results[IN_PROCESS_READER], ("written", *CHAIN_FIELDS)
    )
    assert_chain_unverified_behind_pcscd(
        results[IN_PROCESS_READER]["signature"], results[VPCD_READER]["signature"]
    )
    assert results[VPCD_READER]["expiry_date"] == holder.card_expiry.isoformat()
    assert results[VPCD_READER]["signature"]["signature_valid"] is True
    names = sorted(path.name for path in outputs[VPCD_READER].iterdir())
    assert names == sorted(results[VPCD_READER]["images"])
    for name in names:
        assert (outputs[VPCD_READER] / name).read_bytes() == (
            outputs[IN_PROCESS_READER] / name
        ).read_bytes()


def test_visual_photo(
    home: Path, served_card: VirtualCard, credentials: dict[str, str], tmp_path: Path
) -> None:
    photos: dict[str, bytes] = {}
    for reader in (IN_PROCESS_READER, VPCD_READER):
        target = tmp_path / f"photo-{len(photos)}.jp2"
        data = ok_json(invoke(home, reader, "visual", "photo", "-o", str(target), env=credentials))
        assert data == {"written": str(target), "format": "jp2", "bytes": target.stat().st_size}
        photos[reader] = target.read_bytes()
    assert photos[VPCD_READER] == photos[IN_PROCESS_READER]
    assert photos[VPCD_READER].startswith(JP2_SIGNATURE)


def test_common_info(home: Path, served_card: VirtualCard, holder: Persona) -> None:
    _, through_pcscd = both(home, "common", "info")
    assert through_pcscd["serial"] == holder.card_serial


def test_common_manufacture(home: Path, served_card: VirtualCard, holder: Persona) -> None:
    _, through_pcscd = both(home, "common", "manufacture")
    assert holder.card_serial[2:15] in json.dumps(through_pcscd)


# -- jpki auth, verify-cert, cms, pdf (relying side, with the card signing through pcscd) ---------


def test_jpki_auth(home: Path, served_card: VirtualCard, holder: Persona) -> None:
    _, through_pcscd = both(
        home, "jpki", "auth", "--pin-stdin", stdin=holder.auth_pin + "\n", ignore=TIME_FIELDS
    )
    assert through_pcscd["authenticated"] is True
    assert through_pcscd["serial"] == served_card.state.serials["auth"]
    assert through_pcscd["revocation"] == "good (ocsp)"
    assert full_counters(served_card)


def test_jpki_verify_cert_from_the_card(home: Path, served_card: VirtualCard) -> None:
    _, through_pcscd = both(
        home,
        "jpki",
        "verify-cert",
        "--from-card",
        "auth",
        "--sandbox",
        "--ocsp",
        ignore=TIME_FIELDS,
    )
    assert through_pcscd["valid"] is True and through_pcscd["revocation"] == "good (ocsp)"


@pytest.mark.parametrize(
    ("key", "variable"), [("sign", "MYNAKIT_SIGN_PASSWORD"), ("auth", "MYNAKIT_AUTH_PIN")]
)
def test_jpki_cms_sign_and_verify(
    home: Path,
    served_card: VirtualCard,
    credentials: dict[str, str],
    tmp_path: Path,
    key: str,
    variable: str,
) -> None:
    content = tmp_path / "letter.txt"
    content.write_bytes("委任状 — letter of attorney\n".encode())
    signatures = {
        reader: tmp_path / f"letter-{index}.p7s"
        for index, reader in enumerate((IN_PROCESS_READER, VPCD_READER))
    }
    signed = {
        reader: ok_json(
            invoke(
                home,
                reader,
                "jpki",
                "cms",
                "sign",
                "-t",
                key,
                str(content),
                "-o",
                str(target),
                env={variable: credentials[variable]},
            )
        )
        for reader, target in signatures.items()
    }
    assert without(signed[VPCD_READER], ("written",)) == without(
        signed[IN_PROCESS_READER], ("written",)
    )
    assert signed[VPCD_READER]["signer"]["kind"] == key
    verified = {
        reader: ok_json(
            invoke(home, VPCD_READER, "jpki", "cms", "verify", str(target), "--sandbox", "--ocsp")
        )
        for reader, target in signatures.items()
    }
    assert without(verified[VPCD_READER], TIME_FIELDS) == without(
        verified[IN_PROCESS_READER], TIME_FIELDS
    )
    assert verified[VPCD_READER]["valid"] is True
    assert verified[VPCD_READER]["trust"]["revocation"] == "good (ocsp)"


def test_jpki_pdf_sign_and_verify(
    home: Path, served_card: VirtualCard, holder: Persona, tmp_path: Path
) -> None:
    source = tmp_path / "form.pdf"
    source.write_bytes(minimal_pdf())
    signed_files = {
        reader: tmp_path / f"form-signed-{index}.pdf"
        for index, reader in enumerate((IN_PROCESS_READER, VPCD_READER))
    }
    signed = {
        reader: ok_json(
            invoke(
                home,
                reader,
                "jpki",
                "pdf",
                "sign",
                str(source),
                "-o",
                str(target),
                "--pin-stdin",
                stdin=holder.sign_password + "\n",
            )
        )
        for reader, target in signed_files.items()
    }
    assert without(signed[VPCD_READER], ("written",)) == without(
        signed[IN_PROCESS_READER], ("written",)
    )
    verified = {
        reader: ok_json(
            invoke(home, VPCD_READER, "jpki", "pdf", "verify", str(target), "--sandbox")
        )
        for reader, target in signed_files.items()
    }
    assert without(verified[VPCD_READER], TIME_FIELDS) == without(
        verified[IN_PROCESS_READER], TIME_FIELDS
    )
    (signature,) = verified[VPCD_READER]["signatures"]
    assert signature["intact"] and signature["valid"] and signature["trusted"]


# -- the installed script, as a real process ------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "secret_variables", "stdin_secret", "ignore"),
    [
        (("card", "info"), (), None, READER_FIELDS),
        (("jpki", "cert", "-t", "auth"), (), None, ()),
        (("jpki", "cert", "-t", "sign"), ("MYNAKIT_SIGN_PASSWORD",), None, ()),
        (("jpki", "pkey", "sign", "-t", "auth", "{document}"), ("MYNAKIT_AUTH_PIN",), None, ()),
        (("pin", "status"), (), None, ()),
        (("text", "basic-info"), ("MYNAKIT_TEXT_PIN",), None, ()),
        (("common", "info"), (), None, ()),
        (("jpki", "auth"), (), "MYNAKIT_AUTH_PIN", TIME_FIELDS),
    ],
)
def test_installed_script_through_pcscd(
    home: Path,
    served_card: VirtualCard,
    credentials: dict[str, str],
    tmp_path: Path,
    command: tuple[str, ...],
    secret_variables: tuple[str, ...],
    stdin_secret: str | None,
    ignore: tuple[str, ...],
) -> None:
    document = tmp_path / "challenge.bin"
    document.write_bytes(b"nonce from the relying party")
    arguments = [part.replace("{document}", str(document)) for part in command]
    env = {variable: credentials[variable] for variable in secret_variables}
    stdin = None
    if stdin_secret is not None:
        arguments.append("--pin-stdin")
        stdin = credentials[stdin_secret] + "\n"
    as_process = run_script(home, "--reader", VPCD_READER, *arguments, env=env, stdin=stdin)
    in_process = ok_json(invoke(home, IN_PROCESS_READER, *arguments, env=env, stdin=stdin))
    assert without(as_process, ignore) == without(in_process, ignore)
    assert full_counters(served_card)


def test_installed_script_lists_readers(home: Path, served_card: VirtualCard) -> None:
    data = run_script(home, "readers")
    assert {"name": VPCD_READER, "card_present": True, "atr": served_card.atr.hex().upper()} in (
        data["readers"]
    )


def test_installed_script_accepts_a_unique_part_of_the_reader_name(
    home: Path, served_card: VirtualCard
) -> None:
    data = run_script(home, "--reader", "PCD 00 00", "card", "info")
    assert data["reader"] == VPCD_READER and data["kind"] == "my_number_card"


def test_visual_entries_with_sandbox_trust_verify_the_chain_through_pcscd(
    home: Path, served_card: VirtualCard, credentials: dict[str, str]
) -> None:
    data = ok_json(invoke(home, VPCD_READER, "visual", "entries", "--sandbox", env=credentials))
    assert data["signature"]["chain_verified"] is True
    assert data["signature"]["signature_valid"] is True
