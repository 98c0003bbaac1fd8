"""What ``jpki cert`` and ``jpki pkey sign`` must not import on their way to the card
(docs/architecture.md §10): pinned by tests/unit/test_cli_startup.py for the modules on the
path, by tests/pcsc/test_cli_through_pcscd.py for the commands run on a reader."""

from __future__ import annotations

#: Not on that path: the CLI framework, X.509, logging nobody configured, pathlib and
#: importlib.resources (the card profiles are found by path), dataclasses with the inspect
#: module it imports, typing (the value classes are ``mynakit.value_object``'s, types are for
#: mypy only), and the TOML parser (a warm profile cache is read with marshal).
NOT_ON_THE_FAST_PATH = (
    "click",
    "cryptography",
    "logging",
    "pathlib",
    "importlib.resources",
    "dataclasses",
    "inspect",
    "typing",
    "tomllib",
)
#: pyscard's object layer and generated wrapper: only its compiled extension is loaded
#: (``mynakit.transport.pyscard_binding``).
PYSCARD_BEYOND_THE_EXTENSION = ("smartcard", "smartcard.scard", "smartcard.scard.scard")
