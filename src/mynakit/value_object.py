"""Small immutable value classes for the modules a CLI process imports on its way to the card.

``@dataclass`` would do the same job, but importing ``dataclasses`` (which imports ``inspect``)
and generating each class's methods at import costs more than OpenSC's whole
``pkcs15-tool --read-certificate`` run on the virtual card (docs/architecture.md §10), and the
modules ``jpki cert`` and ``jpki pkey sign`` import (APDUs, TLV, card profiles, transports,
the JPKI session, input reading) hold sixteen such classes. Their fields are the class's
``__slots__``; ``__init__`` is written out and annotates each field ``Final``, so mypy refuses
any later assignment, as ``frozen=True`` would at run time. Modules off that path (services,
emulator, most of the relying side) keep using dataclasses.
"""

from __future__ import annotations


class ValueObject:
    """Equality, hashing and ``repr`` from the fields named in the subclass's ``__slots__``."""

    __slots__: tuple[str, ...] = ()

    def _field_values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ValueObject) and type(other) is type(self):
            return self._field_values() == other._field_values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash((type(self), self._field_values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"
