"""Card-level errors, translated from status words at the application layer
(docs/architecture.md §3): the CLI and integrators catch these, never raw status words."""

from __future__ import annotations

from mynakit.errors import CardError, PinError


class WrongPinError(PinError):
    """The card refused the PIN; ``tries_left`` more attempts remain."""

    def __init__(self, what: str, tries_left: int) -> None:
        self.tries_left = tries_left
        plural = "try" if tries_left == 1 else "tries"
        super().__init__(f"wrong {what}: {tries_left} {plural} left")


class PinBlockedError(PinError):
    """The counter reached zero. Only a municipal office can unblock it (docs/card.md §4)."""

    def __init__(self, what: str, *, by_this_entry: bool = False) -> None:
        # by_this_entry: the card answered 63C0 to this VERIFY, so the entry was wrong and
        # spent the last try; the holder must hear both (docs/card.md §8).
        self.by_this_entry = by_this_entry
        wrong = f"wrong {what}: that was the last try, and " if by_this_entry else ""
        super().__init__(
            f"{wrong}the {what} is blocked; take the card to your municipal office "
            "(市区町村窓口) to reset it"
        )


class LastTryRefusedError(PinError):
    """One try is left and the caller did not force: spending it could block the PIN."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"only one try is left for the {what}; a wrong entry would block it. "
            "Retry with --force (or force=True) if you are sure"
        )


class PinRequiredError(PinError):
    """The operation needs a PIN that was not verified first (card answered 6982)."""


class FileNotFoundOnCardError(CardError):
    """A file or application the operation needs is not on this card."""
