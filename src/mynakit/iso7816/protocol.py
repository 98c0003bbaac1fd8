"""The one object that owns APDU encoding on the wire (docs/architecture.md §3).

Applications call ``send`` with fields; this object chooses short or extended length, chains
long data, follows ``61xx`` with GET RESPONSE and resends a read with the right Le after
``6Cxx``, so no card session repeats any of that.

Only commands that are safe to repeat (selection and reads, :func:`is_repeatable`) are ever
sent twice. A command that carries a secret or changes state (VERIFY with data, CHANGE
REFERENCE DATA, the JICSAP ``80 32`` change, ``80 2A`` signatures) is sent once: a ``6Cxx`` or
an extended-length refusal to it is surfaced as the status, never answered by re-sending it,
so one PIN entry can never spend two tries (docs/card.md §7.6, §8).
"""

from __future__ import annotations

from mynakit.errors import TransportError
from mynakit.iso7816.apdu import (
    EXTENDED_MAX_RESPONSE,
    SHORT_MAX_DATA,
    SHORT_MAX_RESPONSE,
    CommandApdu,
    ResponseApdu,
)
from mynakit.iso7816.status import ApduError

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # the seam is checked by mypy only: at run time a plain base class

INS_GET_RESPONSE = 0xC0
CLA_CHAINING = 0x10
# Answers that mean "not this length form" rather than "not this command" (ISO 7816-4 §5.1.3).
_EXTENDED_REFUSALS = (0x6700, 0x6D00, 0x6E00)
# A card that keeps answering 61xx must not make us loop forever.
_MAX_GET_RESPONSE_ROUNDS = 512
# Interindustry instructions that neither carry a secret nor change card state, so sending one
# again (with a corrected Le, or in the short form) has no effect a caller could regret
# (ISO/IEC 7816-4 §11): SELECT, READ BINARY, READ RECORD, GET DATA, GET RESPONSE.
_REPEATABLE_INSTRUCTIONS = frozenset({0xA4, 0xB0, 0xB1, 0xB2, 0xB3, 0xCA, 0xCB, INS_GET_RESPONSE})
CLA_PROPRIETARY_BIT = 0x80


def is_repeatable(command: CommandApdu) -> bool:
    """True when sending ``command`` twice is harmless: an interindustry selection or read.

    Everything else (VERIFY, CHANGE REFERENCE DATA, proprietary ``80 xx`` commands such as
    signatures and the JICSAP change, GET CHALLENGE) is sent at most once.
    """
    return not command.cla & CLA_PROPRIETARY_BIT and command.ins in _REPEATABLE_INSTRUCTIONS


class Transmitter(Protocol):
    """What the protocol needs of a connection: one raw APDU in, one raw response out."""

    def transmit(self, command: bytes) -> bytes: ...


class ApduProtocol:
    """Encodes commands for one connection and applies the ISO transmission rules.

    ``extended_length``: ``True`` when reader and card are known to support extended APDUs,
    ``False`` when known not to, ``None`` to find out on first need (the first extended command
    that the card or reader refuses switches the protocol to short APDUs for good).
    """

    def __init__(
        self,
        connection: Transmitter,
        *,
        extended_length: bool | None = None,
        max_response_data: int | None = None,
    ) -> None:
        self.connection = connection
        self.extended_length = extended_length
        #: The reader's cap on response data per exchange (PC/SC part 10 dwMaxAPDUDataSize or
        #: SCARD_ATTR_MAXINPUT), ``None`` when it did not say.
        self.max_response_data = max_response_data

    @property
    def max_extended_response(self) -> int:
        """The largest Le an extended command may carry through this reader."""
        return min(EXTENDED_MAX_RESPONSE, self.max_response_data or EXTENDED_MAX_RESPONSE)

    @property
    def max_response_length(self) -> int:
        """The largest Le worth asking for in one command."""
        return self.max_extended_response if self.extended_length else SHORT_MAX_RESPONSE

    def send(
        self,
        cla: int,
        ins: int,
        p1: int,
        p2: int,
        data: bytes = b"",
        le: int | None = None,
    ) -> bytes:
        """Send a command; return its data, or raise ``ApduError`` on any SW other than 9000."""
        response = self.transmit(CommandApdu(cla, ins, p1, p2, data, le))
        if not response.ok:
            raise ApduError(response.sw, response.data, f"{cla:02X} {ins:02X} {p1:02X} {p2:02X}")
        return response.data

    def transmit(self, command: CommandApdu) -> ResponseApdu:
        """Send a command with every transmission rule applied; the final SW is not checked."""
        if command.le is not None and command.le > self.max_extended_response:
            # The reader carries less than asked: ask for what fits, the caller reads on.
            command = command.with_le(max(self.max_extended_response, SHORT_MAX_RESPONSE))
        if command.needs_extended and self.extended_length is not False:
            try:
                response = self._exchange(command, extended=True)
            except TransportError:
                # A reader that cannot carry extended APDUs may fail the exchange instead of
                # answering 6700 (CCID short-APDU-level readers, docs/readers.md §2): use short
                # APDUs from now on, and send the command again only if it is a read.
                self.extended_length = False
                if not is_repeatable(command):
                    raise
                return self.transmit(command)
            if response.sw not in _EXTENDED_REFUSALS or self.extended_length:
                if self.extended_length is None and response.sw not in _EXTENDED_REFUSALS:
                    self.extended_length = True
                return self._follow(command, response)
            self.extended_length = False
            if not is_repeatable(command):
                # Learned: short APDUs only. The refused command itself is not sent again.
                return response
        if len(command.data) > SHORT_MAX_DATA:
            return self._follow(command, self._chain(command))
        if (command.le or 0) > SHORT_MAX_RESPONSE:
            # Short fallback for a long read: ask for 256 and let the caller continue from where
            # the answer ends, as every read loop must do anyway (the card may return fewer).
            command = command.with_le(SHORT_MAX_RESPONSE)
        return self._follow(command, self._exchange(command, extended=False))

    def _exchange(self, command: CommandApdu, *, extended: bool) -> ResponseApdu:
        return ResponseApdu.decode(self.connection.transmit(command.encode(extended=extended)))

    def _chain(self, command: CommandApdu) -> ResponseApdu:
        """Command chaining (ISO 7816-4 §5.1.1.1): CLA b5 set on every part but the last."""
        chunks = [
            command.data[start : start + SHORT_MAX_DATA]
            for start in range(0, len(command.data), SHORT_MAX_DATA)
        ]
        for chunk in chunks[:-1]:
            part = CommandApdu(
                command.cla | CLA_CHAINING, command.ins, command.p1, command.p2, chunk
            )
            response = self._exchange(part, extended=False)
            if not response.ok:
                return response
        last = CommandApdu(command.cla, command.ins, command.p1, command.p2, chunks[-1], command.le)
        return self._exchange(last, extended=False)

    def _follow(self, command: CommandApdu, response: ResponseApdu) -> ResponseApdu:
        """Apply 6Cxx (resend a read with the exact Le) and 61xx (GET RESPONSE until done).

        GET RESPONSE fetches what the card already computed, so it follows any command; the
        6Cxx resend repeats the command and is reserved to :func:`is_repeatable` ones.
        """
        if response.sw1 == 0x6C and is_repeatable(command):
            exact = command.with_le(response.sw2 or 256)
            response = self._exchange(exact, extended=False)
        data = response.data
        rounds = 0
        while response.sw1 == 0x61:
            rounds += 1
            if rounds > _MAX_GET_RESPONSE_ROUNDS:
                raise ApduError(response.sw, data, "GET RESPONSE (card never finished)")
            get_response = CommandApdu(
                command.cla & 0x03, INS_GET_RESPONSE, 0, 0, le=response.sw2 or 256
            )
            response = self._exchange(get_response, extended=False)
            data += response.data
        return ResponseApdu(data, response.sw)
