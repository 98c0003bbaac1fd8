"""Secrets that can never be right are refused by the card layer before any VERIFY, whichever
command carries them (issue 7): a check code A with a wrong check digit, full-width or
superscript digits. One line, exit code 2, no try spent."""

from __future__ import annotations

from pathlib import Path

import pytest

from mynakit.cli.main import main
from mynakit.emulator.personas import Persona
from mynakit.emulator.state import create_card, load_card_state
from mynakit.errors import UsageError

pytestmark = pytest.mark.emulator

READER = "virtual:dave"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("mynakit-home")
    create_card(directory / "cards", "dave", seed="cli-dave")
    return directory


@pytest.fixture(scope="module")
def dave(home: Path) -> Persona:
    return load_card_state(home / "cards", "dave").persona


def counters(home: Path) -> dict[object, int]:
    state = load_card_state(home / "cards", "dave")
    return {reference: record.tries_left for reference, record in state.pins.items()}


def wrong_check_digit(number: str) -> str:
    return number[:11] + str((int(number[11]) + 1) % 10)


@pytest.mark.parametrize(
    ("arguments", "variable", "secret"),
    [
        (("text", "mynumber", "-c", "a"), "MYNAKIT_CHECK_CODE_A", "wrong-check-digit"),
        (
            ("visual", "photo", "-c", "a", "-o", "OUTPUT"),
            "MYNAKIT_CHECK_CODE_A",
            "wrong-check-digit",
        ),
        (("text", "mynumber", "-c", "pin"), "MYNAKIT_TEXT_PIN", "１２３４"),
        (("text", "mynumber", "-c", "pin"), "MYNAKIT_TEXT_PIN", "¹²³⁴"),
        (("text", "mynumber", "-c", "a"), "MYNAKIT_CHECK_CODE_A", "１２３４５６７８９０１８"),
        (("jpki", "pkey", "sign", "-t", "auth", "--raw", "INPUT"), "MYNAKIT_AUTH_PIN", "１２３４"),
    ],
)
def test_never_right_secrets_spend_no_try(
    home: Path,
    dave: Persona,
    arguments: tuple[str, ...],
    variable: str,
    secret: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if secret == "wrong-check-digit":
        secret = wrong_check_digit(dave.check_code_a)
    document = tmp_path / "input.bin"
    document.write_bytes(b"\x30\x31")
    paths = {"INPUT": str(document), "OUTPUT": str(tmp_path / "photo.jp2")}
    argv = ["--reader", READER, *(paths.get(item, item) for item in arguments)]
    monkeypatch.setenv("MYNAKIT_HOME", str(home))
    monkeypatch.setenv(variable, secret)
    before = counters(home)
    # Through main(), the CLI's one error boundary: a one-line message and exit code 2.
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == UsageError.exit_code
    error = capsys.readouterr().err
    assert error.startswith("Error: ") and error.count("\n") == 1, error
    assert "Traceback" not in error
    assert counters(home) == before
