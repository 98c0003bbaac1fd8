"""Status words (docs/card.md §8) and the one exception type for a refused command.

The application layer (``mynakit.card``) translates ``ApduError`` into meaningful errors such as
``WrongPinError(tries_left)``; this module only names and describes status words.
"""

from __future__ import annotations

import enum

from mynakit.errors import CardError


class StatusWord(enum.IntEnum):
    """Status words this card uses, with their meaning in the docstring table below."""

    SUCCESS = 0x9000
    VERIFICATION_FAILED_NO_LIMIT = 0x6300
    WARNING_END_OF_FILE = 0x6282
    WRONG_LENGTH = 0x6700
    LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881
    SECURE_MESSAGING_NOT_SUPPORTED = 0x6882
    COMMAND_INCOMPATIBLE_WITH_FILE = 0x6981
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTHENTICATION_METHOD_BLOCKED = 0x6983
    REFERENCE_DATA_BLOCKED = 0x6984
    CONDITIONS_NOT_SATISFIED = 0x6985
    NO_CURRENT_EF = 0x6986
    SECURE_MESSAGING_DATA_MISSING = 0x6987
    SECURE_MESSAGING_DATA_INCORRECT = 0x6988
    SECURE_MESSAGING_SESSION_GONE = 0x69FC
    SECURITY_ENVIRONMENT_FAULTY = 0x66F1
    INCORRECT_DATA = 0x6A80
    FUNCTION_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    RECORD_NOT_FOUND = 0x6A83
    INCORRECT_P1_P2 = 0x6A86
    DATA_NOT_FOUND = 0x6A88
    OFFSET_OUTSIDE_FILE = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00


_MEANINGS: dict[int, str] = {
    StatusWord.SUCCESS: "success",
    StatusWord.VERIFICATION_FAILED_NO_LIMIT: "verification failed (key without retry limit)",
    StatusWord.WARNING_END_OF_FILE: "end of file reached before Le bytes",
    StatusWord.WRONG_LENGTH: "wrong length (Lc or Le)",
    StatusWord.LOGICAL_CHANNEL_NOT_SUPPORTED: "logical channel not supported",
    StatusWord.SECURE_MESSAGING_NOT_SUPPORTED: "secure messaging not supported",
    StatusWord.COMMAND_INCOMPATIBLE_WITH_FILE: "command incompatible with file structure",
    StatusWord.SECURITY_STATUS_NOT_SATISFIED: "security status not satisfied (PIN not verified)",
    StatusWord.AUTHENTICATION_METHOD_BLOCKED: "authentication method blocked",
    StatusWord.REFERENCE_DATA_BLOCKED: "PIN blocked (reference data locked)",
    StatusWord.CONDITIONS_NOT_SATISFIED: "conditions of use not satisfied",
    StatusWord.NO_CURRENT_EF: "no current elementary file",
    StatusWord.SECURE_MESSAGING_DATA_MISSING: "secure messaging data object missing",
    StatusWord.SECURE_MESSAGING_DATA_INCORRECT: "secure messaging data object incorrect",
    StatusWord.SECURE_MESSAGING_SESSION_GONE: "secure messaging session gone",
    StatusWord.SECURITY_ENVIRONMENT_FAULTY: "security environment faulty",
    StatusWord.INCORRECT_DATA: "incorrect data field",
    StatusWord.FUNCTION_NOT_SUPPORTED: "function not supported",
    StatusWord.FILE_NOT_FOUND: "file or application not found",
    StatusWord.RECORD_NOT_FOUND: "record not found",
    StatusWord.INCORRECT_P1_P2: "incorrect P1 P2",
    StatusWord.DATA_NOT_FOUND: "referenced data not found",
    StatusWord.OFFSET_OUTSIDE_FILE: "offset outside the file",
    StatusWord.INS_NOT_SUPPORTED: "instruction not supported",
    StatusWord.CLA_NOT_SUPPORTED: "class not supported",
    StatusWord.NO_PRECISE_DIAGNOSIS: "no precise diagnosis",
}


def tries_left(sw: int) -> int | None:
    """Tries left from a ``63Cx`` answer (docs/card.md §7.5), else ``None``."""
    return sw & 0x0F if sw & 0xFFF0 == 0x63C0 else None


def describe(sw: int) -> str:
    """A human description of any status word, known or not."""
    if sw in _MEANINGS:
        return _MEANINGS[sw]
    if sw >> 8 == 0x61:
        return f"{sw & 0xFF or 256} more bytes available (GET RESPONSE)"
    if sw >> 8 == 0x6C:
        return f"wrong Le, the card has {sw & 0xFF or 256} bytes"
    remaining = tries_left(sw)
    if remaining is not None:
        return f"verification failed, {remaining} tries left"
    return "unknown status word"


def status_name(sw: int) -> str:
    try:
        return StatusWord(sw).name
    except ValueError:
        return f"SW_{sw:04X}"


class ApduError(CardError):
    """The card answered a command with a status word other than ``9000``."""

    def __init__(self, sw: int, data: bytes = b"", command: str | None = None) -> None:
        self.sw = sw
        self.data = data
        self.command = command
        where = f" to {command}" if command else ""
        super().__init__(f"card answered {sw:04X}{where}: {describe(sw)}")

    @property
    def status(self) -> StatusWord | None:
        try:
            return StatusWord(self.sw)
        except ValueError:
            return None

    @property
    def tries_left(self) -> int | None:
        return tries_left(self.sw)
