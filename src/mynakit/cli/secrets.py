"""Reading PINs and passwords for CLI commands: from an environment variable (scripts), from
stdin (``--pin-stdin``), or from a hidden prompt on stderr; never from the command line
(ARCHITECTURE.md conventions)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from mynakit.errors import UsageError

if TYPE_CHECKING:
    from mynakit.card.base import ApplicationSession

# One environment variable per secret, so a script can hold several without confusion.
ENVIRONMENT_VARIABLES = {
    "auth_pin": "MYNAKIT_AUTH_PIN",
    "sign_password": "MYNAKIT_SIGN_PASSWORD",
    "text_pin": "MYNAKIT_TEXT_PIN",
    "check_code_a": "MYNAKIT_CHECK_CODE_A",
    "check_code_b": "MYNAKIT_CHECK_CODE_B",
    "card_pin": "MYNAKIT_CARD_PIN",
    "birth_date_code": "MYNAKIT_BIRTH_DATE_CODE",
    "new_pin": "MYNAKIT_NEW_PIN",
}

pin_stdin_option = click.option(
    "--pin-stdin",
    is_flag=True,
    help="Read the PIN/password from the first line of standard input.",
)
force_option = click.option(
    "--force",
    is_flag=True,
    help="Allow spending the last PIN try (a wrong entry then blocks the PIN).",
)


def read_secret(key_name: str, label: str, *, from_stdin: bool = False) -> str:
    """The secret for ``key_name``; raises ``UsageError`` when none can be had (no stdin)."""
    variable = ENVIRONMENT_VARIABLES.get(key_name)
    if variable and os.environ.get(variable):
        return os.environ[variable]
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UsageError(f"--pin-stdin given but standard input had no {label}")
        return line
    if not sys.stdin.isatty():
        hint = f" or set {variable}" if variable else ""
        raise UsageError(f"the {label} is needed: use --pin-stdin{hint} (no terminal to prompt)")
    value = click.prompt(label, hide_input=True, err=True)
    assert isinstance(value, str)
    return value


def verify_from_user(
    session: ApplicationSession, key_name: str, *, from_stdin: bool, force: bool
) -> None:
    """Ask for the secret of ``key_name`` (env, stdin or hidden prompt) and verify it through
    the guarded ``ApplicationSession.verify``. The secret is not kept."""
    key = session.application.key(key_name)
    pin_pad = getattr(session.protocol.connection, "pin_pad", None)
    variable = ENVIRONMENT_VARIABLES.get(key_name)
    scripted = from_stdin or bool(variable and os.environ.get(variable))
    if pin_pad is not None and key.charset == "digits" and not scripted:
        # PC/SC part 10 FEATURE_VERIFY_PIN_DIRECT: the PIN goes from the keypad to the card and
        # never through this process; the counter guard still runs first.
        click.echo(f"Enter the {key.label or key.name} on the reader's keypad.", err=True)
        session.verify_on_pin_pad(key_name, pin_pad, force=force)
        return
    secret = read_secret(key_name, key.label or key.name, from_stdin=from_stdin)
    session.verify(key_name, secret, force=force)
