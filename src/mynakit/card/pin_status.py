"""A key's retry counter as the card reports it without spending a try (docs/card.md §7.5)."""

from __future__ import annotations

from mynakit.value_object import ValueObject

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from typing import Final


class PinStatus(ValueObject):
    """Tries left on one key, learned without spending a try (docs/card.md §7.5)."""

    __slots__ = ("application", "key_id", "key_name", "label", "max_tries", "tries_left")

    def __init__(
        self,
        application: str,
        key_name: str,
        key_id: int,
        label: str,
        tries_left: int | None,  # None: the card did not report a count (docs/card.md §11.5)
        max_tries: int,
    ) -> None:
        self.application: Final = application
        self.key_name: Final = key_name
        self.key_id: Final = key_id
        self.label: Final = label
        self.tries_left: Final = tries_left
        self.max_tries: Final = max_tries

    @property
    def blocked(self) -> bool:
        return self.tries_left == 0

    def to_dict(self) -> dict[str, object]:
        return {
            "application": self.application,
            "key": self.key_name,
            "key_id": f"{self.key_id:04X}",
            "label": self.label,
            "tries_left": self.tries_left,
            "max_tries": self.max_tries,
            "blocked": self.blocked,
        }
