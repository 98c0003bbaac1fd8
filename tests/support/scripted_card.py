"""A minimal scripted card for pcsc transport tests that need no card application."""

from __future__ import annotations

from mynakit.transport.base import CardRemovedError

SCRIPTED_ATR = bytes.fromhex("3BE000FF8131FE4514")


class ScriptedCard:
    """A minimal card for transport tests that need no card application: SELECT answers
    9000, anything else 6D00; ``pull_on_command`` makes the next command pull the card."""

    def __init__(self, atr: bytes = SCRIPTED_ATR) -> None:
        self.atr = atr
        self.commands: list[bytes] = []
        self.resets = 0
        self.pull_on_command = False

    def execute(self, command: bytes) -> bytes:
        self.commands.append(command)
        if self.pull_on_command:
            raise CardRemovedError("fault injection: the card leaves the reader")
        return b"\x90\x00" if command[1:2] == b"\xa4" else b"\x6d\x00"

    def reset(self) -> None:
        self.resets += 1

    def power_up(self) -> None:
        pass

    def power_down(self) -> None:
        pass
