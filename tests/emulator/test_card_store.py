"""The card store under stress: concurrent processes on one card, damaged files, read-only
folders, failed creation, and who may read what (docs/card.md §7.5, §11.1; docs/testing.md)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mynakit.atomic_files import PRIVATE_FOLDER, PUBLIC_FOLDER, ensure_folder, write_atomic
from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.state import (
    create_card,
    list_cards,
    load_card,
    load_card_state,
)
from mynakit.errors import DataError, UsageError
from mynakit.profiles import load_profile
from support.cli import fails_with, invoke, ok_json
from support.concurrent_verify import release, start_in_process, wait_until_ready

pytestmark = pytest.mark.emulator

JPKI = load_profile().application("jpki").aid
SELECT_JPKI = bytes((0x00, 0xA4, 0x04, 0x0C, len(JPKI))) + JPKI
AUTH_PIN_QUERY = bytes.fromhex("00200098")  # docs/card.md §7.5: retry query, spends nothing
PROCESSES = 10


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with one card, "alice", and its issuer (built once; tests copy it)."""
    root = tmp_path_factory.mktemp("home")
    create_card(root / "cards", "alice", seed="alice")
    return root


@pytest.fixture
def own_home(home: Path, tmp_path: Path) -> Path:
    """A private copy of the module's home, so a test may spend tries or break files."""
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    return copy


def wrong_pin(base: Path) -> str:
    right = load_card_state(base, "alice").persona.auth_pin
    return "0000" if right != "0000" else "1111"


def tries_left_on_disk(base: Path) -> int:
    card = load_card(base, "alice")
    card.execute(SELECT_JPKI)
    return card.execute(AUTH_PIN_QUERY)[-1] & 0x0F


# -- PIN tries under concurrency ------------------------------------------------------------------


def test_ten_processes_with_a_wrong_pin_spend_exactly_three_tries(own_home: Path) -> None:
    """Every child opened the card before any VERIFY: without the per-command lock all ten
    were told "wrong, 2 left" and the PIN never blocked."""
    base = own_home / "cards"
    children = start_in_process(base, "alice", wrong_pin(base), PROCESSES)
    wait_until_ready(children)
    answers = release(children)
    told_wrong = sorted(answer for answer in answers if answer.startswith("63c"))
    told_blocked = [answer for answer in answers if answer == "6984"]  # docs/card.md §11.1
    assert told_wrong == ["63c0", "63c1", "63c2"]
    assert len(told_blocked) == PROCESSES - 3
    assert tries_left_on_disk(base) == 0


def test_ten_cli_processes_with_a_wrong_pin_tell_three_wrong_and_seven_blocked(
    own_home: Path,
) -> None:
    """The issue's own reproduction, as whole ``mynakit jpki auth`` processes: the three that
    reach the comparison are told their PIN was wrong (the third that it spent the last try),
    the seven others that the PIN is blocked, and the counter ends at 0."""
    command = [str(MYNAKIT), "--reader", "virtual:alice", "jpki", "auth"]
    command += ["--revocation", "none", "--force"]
    environment = {
        **os.environ,
        "MYNAKIT_HOME": str(own_home),
        "MYNAKIT_AUTH_PIN": wrong_pin(own_home / "cards"),
    }
    children = [
        subprocess.Popen(
            command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(PROCESSES)
    ]
    errors = [child.communicate(timeout=120)[1].strip() for child in children]
    assert all(len(error.splitlines()) == 1 and "Traceback" not in error for error in errors)
    told_wrong = [error for error in errors if "wrong" in error]
    told_blocked = [error for error in errors if "wrong" not in error and "blocked" in error]
    assert len(told_wrong) == 3, errors
    assert sum("last try" in error and "blocked" in error for error in told_wrong) == 1
    assert len(told_blocked) == PROCESSES - 3, errors
    assert tries_left_on_disk(own_home / "cards") == 0


def test_a_card_open_in_this_process_sees_other_processes_tries(own_home: Path) -> None:
    base = own_home / "cards"
    card = load_card(base, "alice")  # loaded before the other processes spend their tries
    card.execute(SELECT_JPKI)
    children = start_in_process(base, "alice", wrong_pin(base), 2)
    wait_until_ready(children)
    assert sorted(release(children)) == ["63c1", "63c2"]
    assert card.execute(AUTH_PIN_QUERY) == b"\x63\xc1"
    wrong = wrong_pin(base).encode()
    assert card.execute(bytes((0, 0x20, 0, 0x98, 4)) + wrong) == b"\x63\xc0"
    assert tries_left_on_disk(base) == 0


ISSUE_CHILD = """
import sys
from cryptography.hazmat.primitives import serialization
from mynakit.emulator.issuer import SandboxIssuer
issuer = SandboxIssuer.open(sys.argv[1])
key = serialization.load_pem_public_key(sys.stdin.readline().encode().replace(b"|", b"\\n"))
issuer.certificate(int(sys.argv[2]))  # the register is loaded and in memory
print("ready", flush=True)
sys.stdin.readline()
print(issuer.issue_auth_certificate(key).serial_number, flush=True)
"""


def test_concurrent_issuance_loses_no_record(own_home: Path) -> None:
    """The issuer's register is read-modify-written under its lock too: five processes that
    each had the register in memory all get their certificate recorded."""
    from cryptography.hazmat.primitives import serialization

    folder = own_home / "issuer"
    issuer = SandboxIssuer.open(folder)
    before = set(issuer.issued_serials())
    key = load_card_state(own_home / "cards", "alice").card_keys[("jpki", 0x0017)].public_key()
    pem = (
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        .decode()
        .replace("\n", "|")
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", ISSUE_CHILD, str(folder), str(min(before))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        for _ in range(5)
    ]
    for child in children:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(pem + "\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "ready"
    issued = {int(serial) for serial in release(children)}
    assert len(issued) == 5
    assert set(SandboxIssuer.open(folder).issued_serials()) == before | issued


# -- damaged state --------------------------------------------------------------------------------


def second_card(home: Path) -> None:
    create_card(home / "cards", "bob", seed="bob")


def test_a_card_json_with_a_bad_serial_is_listed_as_broken(own_home: Path) -> None:
    base = own_home / "cards"
    second_card(own_home)
    card_file = base / "alice" / "card.json"
    document = json.loads(card_file.read_text())
    document["serials"]["auth"] = "12x4"
    card_file.write_text(json.dumps(document))
    listings = {listing.name: listing for listing in list_cards(base)}
    assert listings["bob"].problem is None and listings["bob"].serials
    assert listings["alice"].problem is not None and "card.json" in listings["alice"].problem
    with pytest.raises(DataError, match=r"alice/card\.json.*auth serial"):
        load_card(base, "alice")
    listed = ok_json(invoke(own_home, None, "emulator", "list"))
    problems = {card["name"]: card["problem"] for card in listed["cards"]}
    assert problems["bob"] is None and "card.json" in problems["alice"]
    text = invoke(own_home, None, "emulator", "list", as_json=False)
    assert text.exit_code == 0 and "alice  BROKEN" in text.stdout and "bob" in text.stdout
    # The other card still works, and so does the lookup by serial behind `issuer renew`.
    assert ok_json(invoke(own_home, "virtual:bob", "card", "info"))


def test_truncated_utf8_in_the_persona_names_the_file(own_home: Path) -> None:
    base = own_home / "cards"
    persona = base / "alice" / "persona.json"
    persona.write_bytes(persona.read_bytes().rstrip()[:-3] + "名".encode()[:2])
    with pytest.raises(DataError, match=r"persona\.json is not valid UTF-8"):
        load_card(base, "alice")
    result = invoke(own_home, "virtual:alice", "card", "info")
    assert "persona.json" in fails_with(result, DataError)  # one line at the CLI's boundary


@pytest.mark.parametrize(
    ("tries_left", "problem"), [(-1, "is outside 0-3"), (99, "is outside 0-3")]
)
def test_an_impossible_counter_in_pins_json_names_the_file(
    own_home: Path, tries_left: int, problem: str
) -> None:
    base = own_home / "cards"
    pins_file = base / "alice" / "pins.json"
    pins = json.loads(pins_file.read_text())
    pins["jpki/0018"]["tries_left"] = tries_left
    pins_file.write_text(json.dumps(pins))
    with pytest.raises(
        DataError, match=rf"pins\.json: jpki/0018 tries_left {tries_left} {problem}"
    ):
        load_card(base, "alice")


def test_pins_json_broken_while_the_card_is_open_is_named_not_answered(own_home: Path) -> None:
    base = own_home / "cards"
    card = load_card(base, "alice")
    card.execute(SELECT_JPKI)
    (base / "alice" / "pins.json").write_text('{"jpki/0018": {"tries_left": 3}}')
    with pytest.raises(DataError, match=r"pins\.json: jpki/0018 max_tries is not a whole number"):
        card.execute(AUTH_PIN_QUERY)


def test_a_damaged_private_key_is_named(own_home: Path) -> None:
    """Keys load without the slow full RSA check, so the cheap one must catch a damaged key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key_file = own_home / "cards" / "alice" / "keys" / "jpki-0017.pem"
    good = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(good, rsa.RSAPrivateKey)
    numbers = good.private_numbers()
    damaged = rsa.RSAPrivateNumbers(
        p=numbers.p,
        q=numbers.q,
        d=numbers.d,
        dmp1=numbers.dmp1 ^ 2,  # a flipped bit: CRT signatures would be wrong
        dmq1=numbers.dmq1,
        iqmp=numbers.iqmp,
        public_numbers=numbers.public_numbers,
    ).private_key(unsafe_skip_rsa_key_validation=True)
    key_file.write_bytes(
        damaged.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(DataError, match="private numbers do not fit together"):
        load_card(own_home / "cards", "alice")
    key_file.write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    with pytest.raises(DataError, match=r"jpki-0017\.pem is not a PEM private key"):
        load_card(own_home / "cards", "alice")


def test_a_pin_record_missing_from_pins_json_is_named(own_home: Path) -> None:
    pins_file = own_home / "cards" / "alice" / "pins.json"
    pins = json.loads(pins_file.read_text())
    del pins["jpki/0018"]
    pins_file.write_text(json.dumps(pins))
    with pytest.raises(DataError, match=r"pins\.json has no record for jpki/0018"):
        load_card(own_home / "cards", "alice")


@pytest.mark.parametrize(
    ("field", "value"), [("kind", "root"), ("revoked_at", "yesterday"), ("revocation_reason", 7)]
)
def test_a_malformed_issuer_record_names_the_file_and_serial(
    own_home: Path, field: str, value: object
) -> None:
    state_file = own_home / "issuer" / "state.json"
    state = json.loads(state_file.read_text())
    serial = next(iter(state["certificates"]))
    state["certificates"][serial][field] = value
    state_file.write_text(json.dumps(state))
    with pytest.raises(DataError, match=rf"state\.json: the record of certificate {serial}"):
        SandboxIssuer.open(own_home / "issuer")


MYNAKIT = Path(sys.executable).with_name("mynakit")


def run_in_read_only(home: Path, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``mynakit ARGS`` with ``MYNAKIT_HOME=home`` in a process that sees ``folder`` read-only: a
    read-only bind mount in a private mount namespace when root (root ignores permission
    bits), else mode 0500."""
    command = [str(MYNAKIT), *args]
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("root without unshare cannot make a folder read-only")
        command = [
            "unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"',
            str(folder), *command,
        ]  # fmt: skip
    else:
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "MYNAKIT_HOME": str(home)},
        )
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize(
    ("folder", "args", "message"),
    [
        (
            "cards/alice",
            ("--reader", "virtual:alice", "pin", "status"),
            "card folder {folder} is read-only: nothing could be saved",
        ),
        ("issuer", ("issuer", "crl"), "sandbox issuer folder {folder} is read-only"),
    ],
)
def test_a_read_only_folder_is_named_in_one_line(
    own_home: Path, folder: str, args: tuple[str, ...], message: str
) -> None:
    """A card whose counters cannot be saved takes no VERIFY at all; an issuer that cannot
    record a CRL number answers nothing."""
    path = own_home / folder
    result = run_in_read_only(own_home, path, *args)
    assert result.returncode == DataError.exit_code, result.stderr
    assert message.format(folder=path) in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


# -- failed creation leaves nothing behind --------------------------------------------------------


def test_a_card_creation_failing_after_issuance_withdraws_its_certificates(
    own_home: Path, tmp_path: Path
) -> None:
    """A profile whose token EF is too small fails while the files are built, after the issuer
    certified both keys: the issuer must end as it was."""
    issuer = SandboxIssuer.open(own_home / "issuer")
    before = sorted(issuer.issued_serials())
    certificates = sorted((own_home / "issuer" / "certificates").iterdir())
    profile = tmp_path / "tiny-token.toml"
    profile.write_text(
        'base = "mynumber-card"\n[[file_overrides]]\napplication = "jpki"\nid = "0006"\nsize = 4\n',
        encoding="utf-8",
    )
    with pytest.raises(DataError, match="the profile gives the file 4"):
        create_card(own_home / "cards", "carol", profile=str(profile), issuer=issuer)
    assert sorted(issuer.issued_serials()) == before
    assert sorted((own_home / "issuer" / "certificates").iterdir()) == certificates
    assert not (own_home / "cards" / "carol").exists()
    assert [path.name for path in (own_home / "cards").iterdir() if path.name.startswith(".")] == []


def test_a_bad_blocked_key_is_refused_before_issuance(own_home: Path) -> None:
    issuer = SandboxIssuer.open(own_home / "issuer")
    before = sorted(issuer.issued_serials())
    with pytest.raises(UsageError, match="not a PIN key"):
        create_card(own_home / "cards", "dave", issuer=issuer, blocked=(("jpki", "auth_key"),))
    assert sorted(issuer.issued_serials()) == before


# -- who may read what ----------------------------------------------------------------------------


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_personal_files_are_private_and_public_artefacts_readable(home: Path) -> None:
    card = home / "cards" / "alice"
    assert mode(home / "cards") == mode(card) == 0o700
    public_key = card / "card-ca.pem"  # the card CA's public key, for verifiers
    for path in card.rglob("*"):
        expected = (0o644 if path == public_key else 0o600) if path.is_file() else 0o700
        assert mode(path) == expected, path
    issuer = SandboxIssuer.open(home / "issuer")
    folder = home / "issuer" / "certificates"
    assert mode(folder) == 0o700
    serials = load_card_state(home / "cards", "alice").serials
    # The sign certificate carries basic-4 information (docs/card.md §9.2).
    assert mode(folder / f"{serials['sign']:x}.pem") == 0o600
    assert mode(folder / f"{serials['auth']:x}.pem") == 0o644
    for public in ("auth-root.pem", "sign-root.pem", "roots.pem"):
        assert mode(home / "issuer" / public) == 0o644
    for private in ("auth-root.key.pem", "sign-root.key.pem", "state.json"):
        assert mode(home / "issuer" / private) == 0o600
    assert issuer.directory == home / "issuer"


@pytest.mark.parametrize("wanted", [0o600, 0o644])
def test_the_atomic_writer_sets_the_mode_it_is_given(tmp_path: Path, wanted: int) -> None:
    old_mask = os.umask(0o077 if wanted == 0o644 else 0o000)
    try:
        target = tmp_path / "file"
        target.write_bytes(b"old")
        write_atomic(target, b"new", mode=wanted)
    finally:
        os.umask(old_mask)
    assert target.read_bytes() == b"new" and mode(target) == wanted
    assert [path.name for path in tmp_path.iterdir()] == ["file"]  # no temporary file left


def test_the_atomic_writer_names_a_folder_it_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"cannot write .*missing"):
        write_atomic(tmp_path / "missing" / "file", b"x", mode=0o600)


def test_folders_are_made_with_their_mode_and_existing_ones_only_tightened(tmp_path: Path) -> None:
    made = ensure_folder(tmp_path / "new" / "cards", mode=PRIVATE_FOLDER)
    assert mode(made) == mode(tmp_path / "new") == 0o700
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    ensure_folder(mine, mode=PUBLIC_FOLDER)
    assert mode(mine) == 0o700  # a folder the user closed is never opened up
    wide = tmp_path / "wide"
    wide.mkdir()
    wide.chmod(0o777)
    ensure_folder(wide, mode=PRIVATE_FOLDER)
    assert mode(wide) == 0o700
