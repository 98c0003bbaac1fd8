"""Nothing the CLI writes leaks the card holder's secrets (docs/architecture.md §6): a broad set of
commands runs through ``main()`` against one virtual card, each with ``--trace``, with ``-vv`` and
with ``--json``, and then everything they wrote is scanned for the card's My Number, PINs,
passwords, check codes and basic-4 items, raw and as hex and spaced hex.

Scanned: stdout (except the items a command exists to print: ``text mynumber`` prints the My
Number, ``text basic-info``, ``visual birth`` and ``emulator show`` print basic-4 items), stderr
(so the ``--trace`` lines), every log record (``-vv``; pytest's handler on the root logger
receives them, so ``caplog`` sees what ``main()``'s handler would print), and every file under
the home except the card's own secret store and the files named in ``PERSONAL_OUTPUTS``.
"""

from __future__ import annotations

import base64
import logging
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mynakit.emulator.card_layout import CardLayout
from mynakit.emulator.personas import Persona, generate_persona
from mynakit.emulator.state import create_card, load_card_state
from mynakit.personal import EraDate
from support.cli import run_main
from support.pdf import minimal_pdf

pytestmark = pytest.mark.emulator

CARD = "privacy"
READER = f"virtual:{CARD}"
MODES = {"trace": ["--trace"], "debug": ["-vv"], "json": ["--json"]}
TEXT_AP = "D3921000310001010408"  # docs/card.md §3.2

# Kinds of needle; a command may print the kinds it exists to print on stdout.
MY_NUMBER = "my number"
SECRET = "secret"
BASIC_4 = "basic-4"

# Output files the user asked for by name that necessarily hold personal data; excluded from the
# scan and checked to be 0600 instead. The signature certificate and the signatures/PDF made with
# the signature key embed it, and its subjectAltName holds the basic-4 items (docs/card.md §9.2);
# the visual AP's images are the card face.
PERSONAL_OUTPUTS = ("sign.pem", "signed.p7s", "signed.pdf", "name.png", "address.png")
# Binary outputs where a short ASCII needle (a 4-digit PIN) appears by chance (PDF object lengths,
# offsets); longer needles and the hex forms are still looked for there.
BINARY_SUFFIXES = (".pdf", ".p7s", ".der", ".bin", ".png", ".jp2", ".crl")
SHORT_NEEDLE = 6


@dataclass(frozen=True)
class Needle:
    label: str
    kind: str
    value: str


@dataclass(frozen=True)
class Blob:
    """One piece of output: where it came from, and the needle kinds it may hold by design."""

    origin: str
    content: bytes
    allowed: frozenset[str] = frozenset()
    binary: bool = False


def needles_of(holder: Persona) -> list[Needle]:
    """The holder's secrets and personal items. The sex code is left out: the card writes it as
    one digit, which matches anything. The card encodes its text in UTF-8 (docs/card.md §6.2), so
    no Shift_JIS or UTF-16 forms are looked for."""
    birth = holder.birth_date
    found = [
        Needle("My Number", MY_NUMBER, holder.my_number),
        Needle("auth PIN", SECRET, holder.auth_pin),
        Needle("sign password", SECRET, holder.sign_password),
        Needle("text PIN", SECRET, holder.text_pin),
        Needle("card PIN", SECRET, holder.card_pin),
        Needle("security code", SECRET, holder.security_code),
        Needle("check code B", SECRET, holder.check_code_b),
        Needle("birth date code", SECRET, holder.birth_date_code),
        Needle("name", BASIC_4, holder.name),
        Needle("kana name", BASIC_4, holder.name_kana),
        Needle("roman name", BASIC_4, holder.name_roman),
        Needle("address", BASIC_4, holder.address),
        Needle("roman address", BASIC_4, holder.address_roman),
        Needle("birth date", BASIC_4, birth.isoformat()),
        Needle("birth date digits", BASIC_4, birth.strftime("%Y%m%d")),
        Needle("birth date era", BASIC_4, str(EraDate.from_date(birth))),
        # The signature certificate's form: era digit then YYYYMMDD (docs/card.md §9.2).
        Needle("birth date certificate", BASIC_4, EraDate.from_date(birth).certificate_value()),
    ]
    # Each part of the names on its own: the certificate may substitute the separator.
    for label, full_name in (("name", holder.name), ("kana name", holder.name_kana)):
        for number, part in enumerate(full_name.split("\u3000"), start=1):
            found.append(Needle(f"{label} part {number}", BASIC_4, part))
    return [needle for needle in found if len(needle.value) > 1]


def forms_of(value: str) -> dict[str, re.Pattern[bytes]]:
    """Raw UTF-8, hex (lower and upper) and spaced hex (lower and upper) patterns. A number is
    matched only when no digit touches it (a 4-digit PIN inside a 12-digit My Number or a
    timestamp is not that PIN)."""
    raw = value.encode()
    hex_lower = raw.hex()
    spaced = " ".join(f"{byte:02x}" for byte in raw)
    boundary = (
        (rb"(?<![0-9])", rb"(?![0-9])") if value.isascii() and value.isdigit() else (b"", b"")
    )
    return {
        "raw": re.compile(boundary[0] + re.escape(raw) + boundary[1]),
        "hex": re.compile(re.escape(hex_lower.encode()), re.IGNORECASE),
        "spaced hex": re.compile(re.escape(spaced.encode()), re.IGNORECASE),
    }


PEM_BLOCK = re.compile(rb"-----BEGIN [A-Z0-9 ]+-----([A-Za-z0-9+/=\s]+)-----END [A-Z0-9 ]+-----")


def with_pem_decoded(blobs: list[Blob]) -> list[Blob]:
    """``blobs`` plus the DER inside every PEM block they hold: base64 hides a certificate's
    UTF-8 name from a byte search."""
    decoded = [
        Blob(
            f"{blob.origin} (PEM block {number})",
            base64.b64decode(match.group(1)),
            blob.allowed,
            True,
        )
        for blob in blobs
        for number, match in enumerate(PEM_BLOCK.finditer(blob.content), start=1)
    ]
    return blobs + decoded


def scan(blobs: list[Blob], needles: list[Needle]) -> list[str]:
    """Every (origin, needle, form) found where it may not be, PEM blocks decoded."""
    blobs = with_pem_decoded(blobs)
    leaks = []
    for needle in needles:
        for form, pattern in forms_of(needle.value).items():
            for blob in blobs:
                if needle.kind in blob.allowed:
                    continue
                short = needle.value.isascii() and len(needle.value) < SHORT_NEEDLE
                if blob.binary and form == "raw" and short:
                    continue
                if pattern.search(blob.content):
                    leaks.append(f"{blob.origin}: {needle.label} ({form})")
    return leaks


def secret_store(layout: CardLayout) -> set[Path]:
    """The card's own secret store, which holds these items by definition: the persona, the PIN
    file, the private keys and the card's file contents (``mynakit.emulator.card_layout``)."""
    paths = {layout.persona_file, layout.pins_file}
    for folder in (layout.keys_folder, layout.directory / "files"):
        paths.update(path for path in folder.rglob("*") if path.is_file())
    return paths


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Persona]:
    """A home holding the one card (and the sandbox issuer), and that card's holder."""
    home = tmp_path_factory.mktemp("privacy-home")
    create_card(home / "cards", CARD, seed="privacy-scan")
    return home, load_card_state(home / "cards", CARD).persona


def commands(
    out: Path, inputs: Path, holder: Persona
) -> Iterator[tuple[list[str], frozenset[str]]]:
    """Each command line, with the needle kinds its stdout exists to print."""
    none: frozenset[str] = frozenset()
    yield ["card", "info"], none
    yield ["pin", "status"], none
    yield ["jpki", "cert", "-t", "auth", "-f", "pem", "-o", str(out / "auth.pem")], none
    yield ["jpki", "cert", "-t", "sign", "-f", "pem", "-o", str(out / "sign.pem")], none
    yield ["jpki", "cert", "-t", "sign"], none
    # OCSP: the sandbox responder on loopback logs its requests with -vv.
    yield ["jpki", "auth", "--revocation", "ocsp"], none
    yield ["jpki", "verify-cert", "--sandbox", str(out / "auth.pem")], none
    document = str(inputs / "document.txt")
    yield ["jpki", "cms", "sign", document, "-o", str(out / "signed.p7s")], none
    yield ["jpki", "cms", "sign", "-t", "auth", document, "-o", str(out / "auth.p7s")], none
    yield ["jpki", "cms", "verify", "--sandbox", str(out / "signed.p7s")], none
    yield ["jpki", "pdf", "sign", str(inputs / "document.pdf"), "-o", str(out / "signed.pdf")], none
    yield ["jpki", "pdf", "verify", "--sandbox", str(out / "signed.pdf")], none
    yield ["jpki", "pkey", "sign", "-t", "auth", document, "-o", str(out / "auth-sig.bin")], none
    yield ["jpki", "pkey", "sign", document, "-o", str(out / "sign-sig.bin")], none
    yield ["text", "mynumber"], frozenset({MY_NUMBER})
    yield ["text", "basic-info"], frozenset({BASIC_4})
    yield ["text", "verify", "--sandbox"], none
    yield ["text", "info"], none
    yield ["visual", "info"], none
    yield ["visual", "name", "-o", str(out / "name.png")], none
    yield ["visual", "address", "-c", "b", "-o", str(out / "address.png")], none
    yield ["visual", "birth"], frozenset({BASIC_4})
    yield ["common", "info"], none
    pin_hex = holder.text_pin.encode().hex().upper()
    verify = f"00200080{len(holder.text_pin):02X}{pin_hex}"
    yield ["apdu", f"00A4040C0A{TEXT_AP}", "00A4020C020011", verify], none
    yield ["issuer", "crl", "-o", str(out / "auth.crl")], none
    yield ["issuer", "crl", "--kind", "sign"], none
    yield ["emulator", "list"], none
    yield ["emulator", "show", CARD], frozenset({BASIC_4})


def test_the_cli_writes_no_secret_or_personal_item_where_it_should_not(
    card: tuple[Path, Persona], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    home, holder = card
    inputs = tmp_path / "inputs"  # outside the home: these are the user's own files
    inputs.mkdir()
    (inputs / "document.txt").write_bytes(b"a document\n")
    (inputs / "document.pdf").write_bytes(minimal_pdf())
    env = {
        "MYNAKIT_HOME": str(home),
        "MYNAKIT_AUTH_PIN": holder.auth_pin,
        "MYNAKIT_SIGN_PASSWORD": holder.sign_password,
        "MYNAKIT_TEXT_PIN": holder.text_pin,
        "MYNAKIT_CHECK_CODE_A": holder.check_code_a,
        "MYNAKIT_CHECK_CODE_B": holder.check_code_b,
        "MYNAKIT_CARD_PIN": holder.card_pin,
    }
    blobs: list[Blob] = []
    failures: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for mode, options in MODES.items():
            out = home / "out" / mode
            out.mkdir(parents=True)
            for arguments, allowed in commands(out, inputs, holder):
                result = run_main(["--reader", READER, *options, *arguments], env=env)
                origin = f"{mode} {' '.join(arguments[:3])}"
                if result.exit_code != 0:
                    failures.append(f"{origin}: exit {result.exit_code}: {result.stderr}")
                blobs.append(Blob(f"{origin} stdout", result.stdout_bytes, allowed))
                blobs.append(Blob(f"{origin} stderr", result.stderr_bytes))
    assert not failures, "\n".join(failures)
    traces = b"".join(blob.content for blob in blobs if blob.origin.startswith("trace "))
    assert traces.count(b"\n> ") > 50, "--trace printed no APDUs: the trace scan would be empty"
    log_text = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert any(record.name.startswith("mynakit") for record in caplog.records), (
        "-vv logged nothing of mynakit's: the log scan would be empty"
    )
    blobs.append(Blob("log records", log_text.encode()))

    excluded = secret_store(CardLayout.of(home / "cards", CARD))
    # The sandbox issuer's copy of the signature certificate it issued holds the basic-4 items
    # as every signature certificate does (docs/card.md §9.2): 0600, like the outputs above.
    sign_serial = int(load_card_state(home / "cards", CARD).serials["sign"])
    personal = {home / "issuer" / "certificates" / f"{sign_serial:x}.pem"} | {
        home / "out" / mode / name for mode in MODES for name in PERSONAL_OUTPUTS
    }
    for path in personal:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    scanned = 0
    for path in sorted(home.rglob("*")):
        if not path.is_file() or path in excluded or path in personal:
            continue
        blobs.append(
            Blob(
                str(path.relative_to(home)),
                path.read_bytes(),
                binary=path.suffix in BINARY_SUFFIXES,
            )
        )
        scanned += 1
    assert scanned > 10, scanned

    leaks = scan(blobs, needles_of(holder))
    assert not leaks, "\n".join(leaks)


def test_the_demo_writes_no_my_number_or_pin(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``mynakit demo`` runs its own card (the holder of its seed) through the counter. Its
    eligibility database and the receipt computer's result files hold the insured person's name
    and birth date by design (the qualification answer, docs/services.md §A.4), so only the My
    Number and the PINs are looked for there; stdout, stderr and the log records get the full
    scan."""
    seed = "privacy-scan-demo"
    holder = generate_persona(seed)
    needles = needles_of(holder)
    blobs: list[Blob] = []
    with caplog.at_level(logging.DEBUG):
        for mode, options in (("trace", ["--trace", "-vv"]), ("json", ["--json"])):
            demo_home = tmp_path / mode
            arguments = [*options, "demo", "--home", str(demo_home), "--seed", seed]
            result = run_main(arguments, env={"MYNAKIT_HOME": str(tmp_path / "home")})
            assert result.exit_code == 0, result.output
            blobs += [
                Blob(f"demo {mode} stdout", result.stdout_bytes),
                Blob(f"demo {mode} stderr", result.stderr_bytes),
            ]
    log_text = "\n".join(record.getMessage() for record in caplog.records)
    blobs.append(Blob("demo log records", log_text.encode()))
    files = [
        Blob(str(path.relative_to(tmp_path)), path.read_bytes(), frozenset({BASIC_4}), True)
        for path in sorted(tmp_path.rglob("*"))
        if path.is_file()
    ]
    # The right holder: the demo's records carry this seed's holder's name.
    assert any(holder.name.encode() in blob.content for blob in files)
    leaks = scan(blobs + files, needles)
    assert not leaks, "\n".join(leaks)


# -- the scanner finds what it is meant to find ----------------------------------------------------


@pytest.mark.parametrize("form", ["raw", "hex lower", "hex upper", "spaced hex"])
def test_the_scanner_finds_a_planted_pin_and_my_number(
    card: tuple[Path, Persona], form: str
) -> None:
    _, holder = card
    needles = needles_of(holder)
    for needle in needles:
        if needle.kind == SECRET or needle.kind == MY_NUMBER:
            raw = needle.value.encode()
            planted = {
                "raw": raw,
                "hex lower": raw.hex().encode(),
                "hex upper": raw.hex().upper().encode(),
                "spaced hex": " ".join(f"{byte:02X}" for byte in raw).encode(),
            }[form]
            blob = Blob("planted", b"VERIFY data: " + planted + b"\n")
            assert (
                f"planted: {needle.label} ({form.split(' ')[0] if form != 'spaced hex' else form})"
                in scan([blob], needles)
            )


def test_the_scanner_finds_a_planted_name_and_respects_what_a_command_may_print(
    card: tuple[Path, Persona],
) -> None:
    _, holder = card
    needles = needles_of(holder)
    leaked = Blob("log", holder.name.encode() + b" " + holder.address.encode().hex().encode())
    assert {"log: name (raw)", "log: address (hex)"} <= set(scan([leaked], needles))
    allowed = Blob("stdout", holder.name.encode(), frozenset({BASIC_4}))
    assert scan([allowed], needles) == []
    number = Blob("stdout", holder.my_number.encode(), frozenset({BASIC_4}))
    assert "stdout: My Number (raw)" in scan([number], needles)


def test_the_scanner_flags_real_cli_output_that_reveals(card: tuple[Path, Persona]) -> None:
    """``emulator show --reveal`` prints the My Number and every PIN on purpose: the same scan
    that passes the commands above must flag each of them here."""
    home, holder = card
    result = run_main(
        ["--json", "emulator", "show", CARD, "--reveal"], env={"MYNAKIT_HOME": str(home)}
    )
    assert result.exit_code == 0, result.output
    leaks = scan([Blob("show --reveal", result.stdout_bytes)], needles_of(holder))
    for label in ("My Number", "auth PIN", "sign password", "text PIN", "card PIN", "check code B"):
        assert f"show --reveal: {label} (raw)" in leaks, leaks
