"""The root of mynakit's exception tree.

Every expected failure is a ``MynakitError``; the CLI's one error boundary maps each subclass to
a one-line message and an exit code (see ``mynakit.cli.main``). Subpackages define their own
subclasses next to the code that raises them, all rooted here.
"""

from __future__ import annotations


class MynakitError(Exception):
    """Base of every error mynakit raises on purpose."""

    #: Process exit code the CLI uses for this kind of error.
    exit_code: int = 1


class UsageError(MynakitError):
    """The caller asked for something that cannot be done as asked (bad argument, bad input)."""

    exit_code = 2


class DataError(MynakitError):
    """Bytes from a card, a file or a peer do not have the expected structure."""

    exit_code = 3


class TransportError(MynakitError):
    """The reader, pcscd or the link to the card failed. The message says what to do."""

    exit_code = 4


class CardError(MynakitError):
    """The card refused a command or is not the kind of card expected."""

    exit_code = 5


class PinError(CardError):
    """A PIN (or password, or check code) problem."""

    exit_code = 6


class VerificationError(MynakitError):
    """A certificate, signature, or authentication did not verify."""

    exit_code = 7
