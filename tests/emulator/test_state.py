"""Persistent virtual cards: created once, the same keys, files and PIN counters in every run and
every process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.state import (
    CardState,
    create_card,
    default_issuer_directory,
    eject_card,
    find_card_by_serial,
    insert_card,
    inserted_card,
    list_cards,
    load_card,
    load_card_state,
    remove_card,
    renew_card_certificate,
)
from mynakit.errors import DataError, UsageError
from mynakit.paths import mynakit_home
from mynakit.profiles import load_profile

pytestmark = pytest.mark.emulator

JPKI = load_profile().application("jpki").aid
SELECT_JPKI = bytes((0x00, 0xA4, 0x04, 0x0C, len(JPKI))) + JPKI
DIGEST_INFO = bytes.fromhex("3031300D060960864801650304020105000420") + bytes(32)


@pytest.fixture(scope="module")
def cards(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SandboxIssuer]:
    """A base directory with one persistent card, "alice" (built once for the module)."""
    root = tmp_path_factory.mktemp("home")
    base = root / "cards"
    issuer = SandboxIssuer.create(root / "issuer")
    create_card(base, "alice", seed="alice", issuer=issuer)
    return base, issuer


def copy_card(cards: tuple[Path, SandboxIssuer], tmp_path: Path) -> Path:
    """A private copy of the module's card, so a test may change its counters."""
    import shutil

    base = tmp_path / "cards"
    shutil.copytree(cards[0], base)
    return base


def test_create_writes_the_documented_layout(cards: tuple[Path, SandboxIssuer]) -> None:
    directory = cards[0] / "alice"
    for name in ("card.json", "persona.json", "pins.json", "card-ca.pem"):
        assert (directory / name).is_file()
    assert (directory / "keys" / "jpki-0017.pem").is_file()
    assert (directory / "files" / "jpki" / "000A.bin").is_file()
    assert (directory / "files" / "common" / "0001.1.rec").is_file()
    assert (directory / "keys" / "jpki-0017.pem").stat().st_mode & 0o077 == 0
    assert not [p for p in directory.rglob(".*")]  # no temporary files left behind
    card = json.loads((directory / "card.json").read_text())
    assert card["profile"] == "mynumber-card" and set(card["serials"]) == {"auth", "sign"}


def test_load_gives_back_the_same_card(cards: tuple[Path, SandboxIssuer]) -> None:
    base, issuer = cards
    first, second = load_card(base, "alice"), load_card(base, "alice")
    assert first.state.files == second.state.files
    assert first.state.persona == second.state.persona
    assert first.state.persona.seed == "alice"
    certificate = x509.load_der_x509_certificate(first.state.files[("jpki", 0x000A)])
    assert certificate.issuer == issuer.auth_root.subject
    # The key on the card is the one the certificate names.
    persona = first.state.persona
    pin = persona.auth_pin.encode()
    first.execute(SELECT_JPKI)
    assert first.execute(bytes((0, 0x20, 0, 0x98, len(pin))) + pin) == b"\x90\x00"
    response = first.execute(bytes((0x80, 0x2A, 0, 0x97, len(DIGEST_INFO))) + DIGEST_INFO + b"\0")
    key = certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(response[:-2], bytes(32), padding.PKCS1v15(), _prehashed())


def _prehashed() -> utils.Prehashed:
    return utils.Prehashed(hashes.SHA256())


def test_counters_persist_across_processes(
    cards: tuple[Path, SandboxIssuer], tmp_path: Path
) -> None:
    base = copy_card(cards, tmp_path)
    script = textwrap.dedent(
        f"""
        from mynakit.emulator.state import load_card
        card = load_card({str(base)!r}, "alice")
        aid = bytes.fromhex({JPKI.hex()!r})
        assert card.execute(bytes((0, 0xA4, 4, 0x0C, len(aid))) + aid) == b"\\x90\\x00"
        wrong = "0000" if card.state.persona.auth_pin != "0000" else "1111"
        print(card.execute(bytes((0, 0x20, 0, 0x98, 4)) + wrong.encode()).hex())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "63c2"
    card = load_card(base, "alice")
    card.execute(SELECT_JPKI)
    assert card.execute(bytes.fromhex("00200098")) == b"\x63\xc2"  # the other process's try
    pin = card.state.persona.auth_pin.encode()
    assert card.execute(bytes((0, 0x20, 0, 0x98, 4)) + pin) == b"\x90\x00"
    again = load_card(base, "alice")
    again.execute(SELECT_JPKI)
    assert again.execute(bytes.fromhex("00200098")) == b"\x63\xc3"  # the reset was saved too


def test_changed_pin_persists(cards: tuple[Path, SandboxIssuer], tmp_path: Path) -> None:
    base = copy_card(cards, tmp_path)
    card = load_card(base, "alice")
    pin = card.state.persona.text_pin.encode()
    text = load_profile().application("text").aid
    card.execute(bytes((0, 0xA4, 4, 0x0C, len(text))) + text)
    assert card.execute(bytes((0, 0x20, 0, 0x91, 4)) + pin) == b"\x90\x00"
    assert card.execute(bytes.fromhex("0024019104") + b"4321") == b"\x90\x00"
    reloaded = load_card(base, "alice")
    reloaded.execute(bytes((0, 0xA4, 4, 0x0C, len(text))) + text)
    assert reloaded.execute(bytes.fromhex("0020009104") + b"4321") == b"\x90\x00"


def test_list_find_and_remove(cards: tuple[Path, SandboxIssuer], tmp_path: Path) -> None:
    base = copy_card(cards, tmp_path)
    listings = list_cards(base)
    assert [listing.name for listing in listings] == ["alice"]
    serial = listings[0].serials["auth"]
    assert find_card_by_serial(base, serial) == ("alice", "auth")
    assert find_card_by_serial(base, serial + 12345) is None
    insert_card(base, "alice")
    remove_card(base, "alice")
    assert list_cards(base) == []
    assert inserted_card(base) is None  # removing the card ejected it
    with pytest.raises(UsageError):
        remove_card(base, "alice")
    assert list_cards(tmp_path / "nowhere") == []


def test_insert_and_eject(cards: tuple[Path, SandboxIssuer], tmp_path: Path) -> None:
    base = copy_card(cards, tmp_path)
    assert inserted_card(base) is None
    insert_card(base, "alice")
    assert inserted_card(base) == "alice"
    assert eject_card(base) == "alice"
    assert eject_card(base) is None
    with pytest.raises(UsageError):
        insert_card(base, "nobody")


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "../x", "x" * 65, "名前"])
def test_bad_card_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError):
        load_card_state(tmp_path, name)


def test_duplicate_and_missing_cards(cards: tuple[Path, SandboxIssuer]) -> None:
    base, issuer = cards
    with pytest.raises(UsageError):
        create_card(base, "alice", issuer=issuer)
    with pytest.raises(UsageError):
        load_card(base, "bob")


def test_damaged_state_is_a_data_error(cards: tuple[Path, SandboxIssuer], tmp_path: Path) -> None:
    base = copy_card(cards, tmp_path)
    (base / "alice" / "pins.json").write_text("{not json")
    with pytest.raises(DataError):
        load_card(base, "alice")
    (base / "alice" / "pins.json").unlink()
    with pytest.raises(DataError):
        load_card(base, "alice")


def test_renewal_puts_a_new_key_and_certificate_on_the_card(
    cards: tuple[Path, SandboxIssuer], tmp_path: Path
) -> None:
    base = copy_card(cards, tmp_path)
    _, issuer = cards
    before = load_card_state(base, "alice")
    old_serial, certificate = renew_card_certificate(base, "alice", "auth", issuer)
    assert old_serial == before.serials["auth"]
    after = load_card(base, "alice")
    assert after.state.serials["auth"] == certificate.serial_number != old_serial
    assert x509.load_der_x509_certificate(after.state.files[("jpki", 0x000A)]) == certificate
    assert issuer.status(old_serial).state.value == "revoked"
    pin = after.state.persona.auth_pin.encode()
    after.execute(SELECT_JPKI)
    after.execute(bytes((0, 0x20, 0, 0x98, 4)) + pin)
    response = after.execute(bytes((0x80, 0x2A, 0, 0x97, len(DIGEST_INFO))) + DIGEST_INFO + b"\0")
    key = certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(response[:-2], bytes(32), padding.PKCS1v15(), _prehashed())


def test_create_with_blocked_pin(cards: tuple[Path, SandboxIssuer], tmp_path: Path) -> None:
    _, issuer = cards
    create_card(tmp_path, "blocked", seed=3, issuer=issuer, blocked=(("jpki", "auth_pin"),))
    card = load_card(tmp_path, "blocked")
    card.execute(SELECT_JPKI)
    assert card.execute(bytes.fromhex("00200098")) == b"\x63\xc0"


def test_smartphone_token_profile(cards: tuple[Path, SandboxIssuer], tmp_path: Path) -> None:
    _, issuer = cards
    create_card(tmp_path, "phone", profile="smartphone-jpki-token", issuer=issuer)
    card = load_card(tmp_path, "phone")
    assert set(card.profile.applications) == {"jpki"}
    card.execute(SELECT_JPKI)
    assert card.execute(bytes.fromhex("00B0860020"))[:15] == b"JPKIAPGPSETOKEN"
    assert card.execute(bytes.fromhex("00B08A0010")) == b"\x69\x82"  # docs/card.md §7.2: PIN first


def test_fork_is_independent_and_unsaved(virtual_card_template: CardState) -> None:
    fork = virtual_card_template.fork()
    reference = next(iter(fork.pins))
    fork.pins[reference].tries_left = 0
    assert virtual_card_template.pins[reference].tries_left > 0
    assert fork.directory is None


def test_default_directories(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MYNAKIT_HOME", str(tmp_path))
    assert mynakit_home() == tmp_path
    monkeypatch.delenv("MYNAKIT_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert mynakit_home() == tmp_path / "data" / "mynakit"
    assert default_issuer_directory(tmp_path / "cards") == tmp_path.resolve() / "issuer"


def test_card_from_a_profile_file_keeps_its_choices(
    cards: tuple[Path, SandboxIssuer], tmp_path: Path
) -> None:
    _, issuer = cards
    profile_file = tmp_path / "answers-9000.toml"
    profile_file.write_text(
        'base = "mynumber-card"\n[choices]\nretry_query_after_verify = "9000"\n', encoding="utf-8"
    )
    create_card(tmp_path / "cards", "custom", seed=4, issuer=issuer, profile=str(profile_file))
    card = load_card(tmp_path / "cards", "custom")
    assert card.profile.choices["retry_query_after_verify"] == "9000"
    card.execute(SELECT_JPKI)
    pin = card.state.persona.auth_pin.encode()
    assert card.execute(bytes((0, 0x20, 0, 0x98, 4)) + pin) == b"\x90\x00"
    assert card.execute(bytes.fromhex("00200098")) == b"\x90\x00"
