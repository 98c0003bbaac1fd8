"""``jpki cert`` and ``jpki pkey sign`` print, write and fail the same through the fast path as
through click (docs/architecture.md §10): every form the fast path takes, with and without
``--json``, against the same virtual card in the same state, through ``main()``.

Each run starts from a copy of one pristine ``MYNAKIT_HOME``, so PIN counters and card state
are the same for both paths (a wrong PIN spends a try on each copy, never twice on one card).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from mynakit.card.jpki import digest_info
from mynakit.cli.fast_path import plan_for
from mynakit.cli.main import hoist_global_options
from mynakit.emulator.personas import Persona
from mynakit.emulator.state import create_card, load_card_state
from support.cli import CliResult, run_main

pytestmark = pytest.mark.emulator

CARD = "virtual:carol"
DOCUMENT = "document.txt"
DIGEST_INFO = "digest-info.der"
MISSING = "missing-folder/out.bin"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("pristine-home")
    create_card(home / "cards", "carol", seed="fast-path-carol")
    return home


@pytest.fixture(scope="module")
def carol(pristine: Path) -> Persona:
    return load_card_state(pristine / "cards", "carol").persona


def _forms(carol_pin: str, carol_password: str) -> list[tuple[list[str], dict[str, str], str]]:
    """(arguments, environment, standard input) for every form compared."""
    auth = {"MYNAKIT_AUTH_PIN": carol_pin}
    sign = {"MYNAKIT_SIGN_PASSWORD": carol_password}
    return [
        (["jpki", "cert"], {}, ""),
        (["jpki", "cert", "-t", "auth_ca"], {}, ""),
        (["jpki", "cert", "-t", "sign-ca", "-f", "pem"], {}, ""),
        (["jpki", "cert", "-t", "sign"], sign, ""),
        (["jpki", "cert", "-t", "signature", "--show-personal"], sign, ""),
        (["jpki", "cert", "-t", "sign", "--pin-stdin", "-f", "pem"], {}, carol_password + "\n"),
        (["jpki", "cert", "-f", "pem"], {}, ""),
        (["jpki", "cert", "-f", "pem", "--trace"], {}, ""),
        (["--trace", "jpki", "pkey", "sign", "-t", "auth", DOCUMENT], auth, ""),
        (["jpki", "cert", "-f", "der", "-o", "out/auth.der"], {}, ""),
        (["jpki", "cert", "--format=pem", "--output=out/auth.pem"], {}, ""),
        (["jpki", "cert", "-o", "out/auth.txt"], {}, ""),
        (["jpki", "cert", "-t", "sign", "-f", "der", "-o", "out/sign.der"], sign, ""),
        (["jpki", "cert", "-f", "der", "-o", "-"], {}, ""),
        (["jpki", "pkey", "sign", "-t", "auth", DOCUMENT], auth, ""),
        (["jpki", "pkey", "sign", "-t", "auth", DOCUMENT, "-o", "out/auth.sig"], auth, ""),
        (["jpki", "pkey", "sign", "-t", "auth", DOCUMENT, "-o", "-"], auth, ""),
        (["jpki", "pkey", "sign", "-t", "auth", "-d", "sha1", DOCUMENT], auth, ""),
        (["jpki", "pkey", "sign", DOCUMENT, "--digest=sha512"], sign, ""),
        (["jpki", "pkey", "sign", "-t", "sign", "--raw", DIGEST_INFO, "-o", "out/s.sig"], sign, ""),
        (["jpki", "pkey", "sign", "-t", "auth", DOCUMENT, "--pin-stdin"], {}, carol_pin + "\n"),
        (["jpki", "pkey", "sign", "-t", "auth", "-"], auth, "the document on stdin"),
        # Failures: before the card (bad kind, missing input, unwritable output, stdin twice,
        # no such card) and on the card (wrong PIN, no PIN at all).
        (["jpki", "cert", "-t", "nonsense"], {}, ""),
        (["jpki", "cert", "-f", "der", "-o", MISSING], {}, ""),
        (["jpki", "pkey", "sign", "-t", "auth", "no-such-file.txt"], auth, ""),
        (["jpki", "pkey", "sign", "-t", "auth", DOCUMENT, "-o", MISSING], auth, ""),
        (["jpki", "pkey", "sign", "-t", "auth", "-", "--pin-stdin"], auth, "1234\n"),
        (["jpki", "pkey", "sign", "-t", "auth", DOCUMENT], {"MYNAKIT_AUTH_PIN": "0000"}, ""),
        (["jpki", "pkey", "sign", "-t", "auth", DOCUMENT], {}, ""),
        (["jpki", "cert", "-t", "sign"], {"MYNAKIT_SIGN_PASSWORD": "WRONG1"}, ""),
        (["--reader", "virtual:nobody", "jpki", "cert"], {}, ""),
    ]


def _run(
    pristine: Path, work: Path, arguments: list[str], env: dict[str, str], stdin: str, fast: bool
) -> tuple[CliResult, dict[str, tuple[bytes, int]]]:
    """One run from a fresh copy of the pristine home; what it printed and the files it left
    in ``work/out`` (content and mode)."""
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(pristine, home)
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    result = run_main(
        arguments, env={"MYNAKIT_HOME": str(home), **env}, stdin=stdin, fast_path=fast
    )
    written = {
        path.name: (path.read_bytes(), path.stat().st_mode & 0o777) for path in out.iterdir()
    }
    return result, written


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_fast_path_and_click_print_write_and_fail_alike(
    pristine: Path,
    carol: Persona,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    as_json: bool,
) -> None:
    monkeypatch.chdir(tmp_path)  # the forms name their files relative to it
    document = b"the contract, signed with the card"
    (tmp_path / DOCUMENT).write_bytes(document)
    (tmp_path / DIGEST_INFO).write_bytes(digest_info("sha256", hashlib.sha256(document).digest()))
    for words, env, stdin in _forms(carol.auth_pin, carol.sign_password):
        arguments = ["--reader", CARD, *(["--json"] if as_json else []), *words]
        if words[0] == "--reader":
            arguments = [*words, *(["--json"] if as_json else [])]
        assert plan_for(hoist_global_options(arguments)) is not None, arguments
        fast, fast_files = _run(pristine, tmp_path, arguments, env, stdin, fast=True)
        slow, slow_files = _run(pristine, tmp_path, arguments, env, stdin, fast=False)
        assert (fast.exit_code, fast.stdout_bytes, fast.stderr_bytes) == (
            slow.exit_code,
            slow.stdout_bytes,
            slow.stderr_bytes,
        ), arguments
        assert fast_files == slow_files, arguments
        assert "Traceback" not in fast.stderr, (arguments, fast.stderr)
    # Not vacuous: the runs above succeeded and failed in the ways they were meant to.
    ok, _ = _run(pristine, tmp_path, ["--reader", CARD, "jpki", "cert", "-f", "pem"], {}, "", True)
    assert ok.exit_code == 0 and ok.stdout.startswith("-----BEGIN CERTIFICATE-----")
    wrong, _ = _run(
        pristine,
        tmp_path,
        ["--reader", CARD, "jpki", "pkey", "sign", "-t", "auth", DOCUMENT],
        {"MYNAKIT_AUTH_PIN": "0000"},
        "",
        True,
    )
    assert carol.auth_pin != "0000" and wrong.exit_code == 6
