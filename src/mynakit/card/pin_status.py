"""A key's retry counter as the card reports it without spending a try (docs/card.md §7.5)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PinStatus:
    """Tries left on one key, learned without spending a try (docs/card.md §7.5)."""

    application: str
    key_name: str
    key_id: int
    label: str
    tries_left: int | None  # None: the card did not report a count (docs/card.md §11.5)
    max_tries: int

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
