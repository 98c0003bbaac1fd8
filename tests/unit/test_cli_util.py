"""The CLI's shared helpers (``mynakit.cli.util``) and ``main``'s handling of global options."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from mynakit.card.jpki import DIGEST_INFO_PREFIXES
from mynakit.cli.main import hoist_global_options
from mynakit.cli.util import HASH_ALGORITHMS, pem_armor, read_input
from mynakit.errors import UsageError
from mynakit.jpki.inputs import InputKind, InputTooLargeError
from support.jpki_builders import build_root, ca_name

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("given", "hoisted"),
    [
        (["jpki", "cert", "--json"], ["--json", "jpki", "cert"]),
        (["jpki", "cert", "-r", "virtual:a", "-t", "sign"], ["-r", "virtual:a", "jpki", "cert",
                                                             "-t", "sign"]),
        (["readers", "--reader=x", "-vv", "--trace"], ["--reader=x", "-vv", "--trace", "readers"]),
        (["--json", "card", "info"], ["--json", "card", "info"]),
        # After "--" nothing is an option: an argument may be spelt like one.
        (["apdu", "--", "--json"], ["apdu", "--", "--json"]),
        # Subcommand options that only look alike stay where they are.
        (["jpki", "cert", "-t", "auth", "-o", "out.der"], ["jpki", "cert", "-t", "auth", "-o",
                                                           "out.der"]),
        (["-v", "apdu", "-vx"], ["-v", "apdu", "-vx"]),
    ],
)  # fmt: skip
def test_global_options_are_moved_in_front(given: list[str], hoisted: list[str]) -> None:
    assert hoist_global_options(given) == hoisted


def test_hash_algorithms_are_the_cards_digest_infos() -> None:
    assert set(HASH_ALGORITHMS) == set(DIGEST_INFO_PREFIXES)


def test_pem_armor_is_what_x509_libraries_write_and_read() -> None:
    now = dt.datetime.now(dt.UTC)
    certificate = build_root(
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ca_name("JPKI", "Test", "Root"),
        not_before=now,
        not_after=now + dt.timedelta(days=1),
    )
    der = certificate.public_bytes(Encoding.DER)
    armored = pem_armor("CERTIFICATE", der)
    assert armored == certificate.public_bytes(Encoding.PEM)
    assert x509.load_pem_x509_certificate(armored) == certificate


def test_read_input_is_capped_by_the_library_limit(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.write_bytes(b"x" * 10)
    assert read_input(str(source), InputKind.CERTIFICATE) == b"x" * 10
    with pytest.raises(InputTooLargeError, match="too large for a certificate"):
        read_input("/dev/zero", InputKind.CERTIFICATE)
    with pytest.raises(UsageError, match="cannot read"):
        read_input(str(tmp_path), InputKind.CERTIFICATE)


def test_command_modules_import_only_util_context_and_the_library() -> None:
    """No command module imports another (issue 8: jpki_pdf -> jpki_cms -> jpki_auth ->
    jpki_cert): shared code lives in cli/util.py, reader resolution in cli/context.py."""
    import ast

    import mynakit.cli

    allowed = {"mynakit.cli.util", "mynakit.cli.context"}
    folder = Path(mynakit.cli.__file__).parent
    offending = []
    for source in sorted(folder.glob("*.py")):
        if source.name in ("__main__.py", "main.py", "fast_path.py", "util.py", "context.py"):
            continue  # the entry points (main's fast path too) and the two shared modules
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            offending += [
                f"{source.name}: {name}"
                for name in names
                if name.startswith("mynakit.cli") and name not in allowed
            ]
    assert offending == []
