"""The one scripted card of the test suite: a fake of the two-method transport seam and of the
card interface the vpcd bridge drives, answering from a script so that tests assert every byte.

Two ways to use it:

- with a script of ``(expected command hex, response hex)`` pairs, each command must be the
  next expected one, byte for byte (``transmit``/``execute`` fail the test otherwise), and
  :meth:`ScriptedCard.done` says whether the whole script was used;
- without a script it answers SELECT with ``9000`` and anything else with ``6D00`` (INS not
  supported), which is what transport and vpcd tests need of a card without applications.
"""

from __future__ import annotations

from collections.abc import Iterable

from mynakit.transport.base import CardRemovedError

SCRIPTED_ATR = bytes.fromhex("3BE000FF8131FE4514")
INS_SELECT = 0xA4


class ScriptedCard:
    """A card answering from a script (or SELECT -> 9000, else 6D00, without one).

    ``commands`` holds every command received; ``calls`` every call of the card interface in
    order (``"execute <hex>"``, ``"reset"``, ``"power_up"``, ``"power_down"``). With
    ``pull_on_command`` set, the next command pulls the card (``CardRemovedError``).
    """

    def __init__(
        self, script: Iterable[tuple[str, str]] | None = None, *, atr: bytes = SCRIPTED_ATR
    ) -> None:
        self.script: list[tuple[bytes, bytes]] | None = (
            None
            if script is None
            else [(bytes.fromhex(command), bytes.fromhex(response)) for command, response in script]
        )
        self.atr = atr
        self.commands: list[bytes] = []
        self.calls: list[str] = []
        self.resets = 0
        self.pull_on_command = False

    # -- the transport seam (ApduProtocol's Transmitter) -----------------------------------

    def transmit(self, command: bytes) -> bytes:
        return self.execute(command)

    # -- the card interface (vpcd bridge, PC/SC transport fakes) ---------------------------

    def execute(self, command: bytes) -> bytes:
        self.commands.append(bytes(command))
        self.calls.append(f"execute {bytes(command).hex()}")
        if self.pull_on_command:
            raise CardRemovedError("fault injection: the card leaves the reader")
        if self.script is None:
            return b"\x90\x00" if command[1:2] == bytes((INS_SELECT,)) else b"\x6d\x00"
        assert self.script, f"unexpected command {bytes(command).hex().upper()}"
        expected, response = self.script.pop(0)
        assert bytes(command).hex().upper() == expected.hex().upper(), (
            f"sent {bytes(command).hex().upper()}, script expected {expected.hex().upper()}"
        )
        return response

    def reset(self) -> None:
        self.resets += 1
        self.calls.append("reset")

    def power_up(self) -> None:
        self.calls.append("power_up")

    def power_down(self) -> None:
        self.calls.append("power_down")

    def done(self) -> bool:
        """Every scripted command was sent."""
        return not self.script

    @property
    def sent_hex(self) -> list[str]:
        """The commands received, as upper-case hex strings (for exact-sequence asserts)."""
        return [command.hex().upper() for command in self.commands]
