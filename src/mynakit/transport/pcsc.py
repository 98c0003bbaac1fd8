"""The PC/SC connection, through pyscard's low-level binding (``transport/pyscard_binding.py``).

The low-level binding returns the PC/SC result code (``hresult``) of every call, so each failure
is mapped by code, never by message text, to a ``TransportError`` subclass whose message says
what to do (docs/readers.md §1.2 and §4.3: "service not running" 8010001D and "no reader"
8010002E are the errors users meet most). pyscard's ``list[int]`` APDUs stay inside this module:
the ``Connection`` seam is ``bytes`` in, ``bytes`` out.
"""

from __future__ import annotations

from mynakit.errors import TransportError, UsageError
from mynakit.transport.base import (
    CardRemovedError,
    NoCardError,
    NoReaderError,
    NoServiceError,
    ReaderBusyError,
    TransportTimeoutError,
    log_if_configured,
    require_command_apdu,
)
from mynakit.transport.limits import ReaderFeatures, ReaderLimits, learn_reader_features
from mynakit.transport.pinpad import PinPad
from mynakit.transport.pyscard_binding import scard

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from typing import Any, Final

LOGGER = "mynakit.transport.pcsc"
DEBUG = 10  # logging.DEBUG and INFO, spelt out: this module logs through log_if_configured
INFO = 20

# PC/SC result codes (pcsc-lite pcsclite.h; the same values as Windows winerror.h).
SCARD_S_SUCCESS: Final = 0x00000000
SCARD_E_CANCELLED: Final = 0x80100002
SCARD_E_INVALID_HANDLE: Final = 0x80100003
SCARD_E_UNKNOWN_READER: Final = 0x80100009
SCARD_E_TIMEOUT: Final = 0x8010000A
SCARD_E_SHARING_VIOLATION: Final = 0x8010000B
SCARD_E_NO_SMARTCARD: Final = 0x8010000C
SCARD_E_PROTO_MISMATCH: Final = 0x8010000F
SCARD_E_NOT_READY: Final = 0x80100010
SCARD_F_COMM_ERROR: Final = 0x80100013
SCARD_E_NOT_TRANSACTED: Final = 0x80100016
SCARD_E_READER_UNAVAILABLE: Final = 0x80100017
SCARD_E_NO_SERVICE: Final = 0x8010001D
SCARD_E_SERVICE_STOPPED: Final = 0x8010001E
SCARD_E_UNSUPPORTED_FEATURE: Final = 0x8010001F
SCARD_E_NO_READERS_AVAILABLE: Final = 0x8010002E
SCARD_E_COMM_DATA_LOST: Final = 0x8010002F
SCARD_W_UNSUPPORTED_CARD: Final = 0x80100065
SCARD_W_UNRESPONSIVE_CARD: Final = 0x80100066
SCARD_W_UNPOWERED_CARD: Final = 0x80100067
SCARD_W_RESET_CARD: Final = 0x80100068
SCARD_W_REMOVED_CARD: Final = 0x80100069

#: The pseudo-reader whose state changes when readers are plugged in or out (PC/SC part 5).
PNP_NOTIFICATION: Final = "\\\\?PnP?\\Notification"

_INSTALL_HINT = (
    "on Debian/Ubuntu: sudo apt-get install pcscd, then sudo systemctl start pcscd.socket "
    "(or run pcscd -f)"
)


class CardResetError(TransportError):
    """Another program reset the card: selected applications and verified PINs are gone."""


def unsigned(hresult: int) -> int:
    """PC/SC codes as the unsigned 32-bit values the specs and users write (8010001D)."""
    return hresult & 0xFFFFFFFF


def error_for(hresult: int, action: str, reader: str | None = None) -> TransportError:
    """The mynakit error for a failed PC/SC call, with a message that says what to do.

    ``action`` names what was being done ("connect", "transmit", ...): a card that is gone
    means "no card" when connecting but "card removed" in the middle of a command.
    """
    code = unsigned(hresult)
    where = f"reader {reader!r}" if reader else "the reader"
    suffix = f" [PC/SC {action}: 0x{code:08X}]"
    if code in (SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED):
        return NoServiceError(
            "the PC/SC service (pcscd) is not running or cannot be reached: start it "
            f"({_INSTALL_HINT}); inside a Flatpak/Snap sandbox, the sandbox's pcsc-lite must "
            "match the host's" + suffix
        )
    if code in (SCARD_F_COMM_ERROR, SCARD_E_COMM_DATA_LOST):
        return NoServiceError(
            "lost the connection to the PC/SC service (pcscd stopped or restarted): start it "
            "again and retry" + suffix
        )
    if code == SCARD_E_NO_READERS_AVAILABLE:
        return NoReaderError(
            "no card reader is connected: plug one in; if it is plugged in, its driver may be "
            "missing (CCID readers need libccid; ACS readers such as the NTT Com ACR1251 need "
            "libacsccid1; Sony RC-S380 has no pcsc-lite driver)" + suffix
        )
    if code in (SCARD_E_UNKNOWN_READER, SCARD_E_READER_UNAVAILABLE):
        return NoReaderError(
            f"{where} is not available (unplugged, or its name is wrong): run "
            "`mynakit readers` to list the connected readers" + suffix
        )
    if code == SCARD_E_SHARING_VIOLATION:
        return ReaderBusyError(
            f"{where} is in use by another program (a browser, a JPKI client, or another "
            "mynakit): close it, or wait for it to finish, then retry" + suffix
        )
    if code in (SCARD_E_TIMEOUT,):
        return TransportTimeoutError(
            f"{where} did not answer in time: check the card is placed firmly (for contactless "
            "readers keep it still on the reader) and retry" + suffix
        )
    if code == SCARD_W_RESET_CARD:
        return CardResetError(
            "another program reset the card: reconnect and start the operation again "
            "(any entered PIN has to be entered again)" + suffix
        )
    if code in (SCARD_E_NO_SMARTCARD, SCARD_W_REMOVED_CARD) and action in ("connect", "status"):
        return NoCardError(
            f"no card in {where}: insert the My Number card (chip side as the reader shows, "
            "or place it on a contactless reader) and retry" + suffix
        )
    if code in (SCARD_E_NO_SMARTCARD, SCARD_W_REMOVED_CARD):
        return CardRemovedError(
            f"the card was removed from {where} during the operation: put it back and start "
            "the operation again" + suffix
        )
    if code in (SCARD_W_UNRESPONSIVE_CARD, SCARD_W_UNPOWERED_CARD, SCARD_W_UNSUPPORTED_CARD):
        return NoCardError(
            f"the card in {where} does not answer: take it out and insert it again (check "
            "it is the right way round and the chip is clean)" + suffix
        )
    if code == SCARD_E_PROTO_MISMATCH:
        return TransportError(
            f"{where} and the card found no common protocol (T=0 or T=1): try another "
            "reader" + suffix
        )
    if code == SCARD_E_NOT_TRANSACTED:
        return TransportError(
            f"the card in {where} did not complete the command (moved, or a contact problem): "
            "hold it still and retry" + suffix
        )
    if code == SCARD_E_INVALID_HANDLE:
        return TransportError("the card connection is closed: open a new one" + suffix)
    message = scard.SCardGetErrorMessage(hresult)
    return TransportError(f"PC/SC {action} on {where} failed: {message}" + suffix)


def check(hresult: int, action: str, reader: str | None = None) -> None:
    """Raise the mapped error unless ``hresult`` is success."""
    if hresult != SCARD_S_SUCCESS:
        raise error_for(hresult, action, reader)


# --- contexts and reader lists, shared with mynakit.transport.readers --------------------------


def establish_context() -> Any:
    """A PC/SC context (an opaque pyscard handle); raises ``NoServiceError`` without pcscd."""
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    check(hresult, "establish context")
    return context


def release_context(context: Any) -> None:
    hresult = scard.SCardReleaseContext(context)
    if hresult != SCARD_S_SUCCESS:
        log_if_configured(LOGGER, DEBUG, "SCardReleaseContext: 0x%08X", unsigned(hresult))


def reader_names(context: Any) -> list[str]:
    """Names of the connected readers; empty when there are none (not an error here)."""
    hresult, names = scard.SCardListReaders(context, [])
    if unsigned(hresult) == SCARD_E_NO_READERS_AVAILABLE:
        return []
    check(hresult, "list readers")
    return list(names)


def reader_states(context: Any, names: list[str]) -> list[tuple[str, int, bytes]]:
    """The current (name, event state, ATR) of each reader, without waiting."""
    if not names:
        return []
    hresult, states = scard.SCardGetStatusChange(
        context, 0, [(name, scard.SCARD_STATE_UNAWARE) for name in names]
    )
    check(hresult, "get status")
    return [(name, int(state), bytes(atr)) for name, state, atr in states]


def resolve_reader_name(wanted: str, available: list[str]) -> str:
    """The reader ``wanted`` names: exact, else a unique case-insensitive substring.

    ``--reader`` takes a fragment ("ACR", "00 01") the way users type it.
    """
    if wanted in available:
        return wanted
    matches = [name for name in available if wanted.casefold() in name.casefold()]
    if len(matches) == 1:
        return matches[0]
    listing = ", ".join(repr(name) for name in available) or "none"
    if not matches:
        raise NoReaderError(f"no reader matches {wanted!r}; connected readers: {listing}")
    raise UsageError(
        f"{wanted!r} matches several readers ({', '.join(repr(m) for m in matches)}): "
        "give more of the name"
    )


# --- the connection ----------------------------------------------------------------------------


class PcscConnection:
    """A ``Connection`` to the card in one PC/SC reader.

    Open it with ``PcscConnection.open()``. ``notes`` collects things the user should know but
    that are not errors (an exclusive connection that fell back to shared).
    """

    def __init__(
        self,
        context: Any,
        card_handle: Any,
        reader_name: str,
        protocol: int,
        share_mode: int,
    ) -> None:
        self._context: Any | None = context
        self._card_handle: Any | None = card_handle
        self._reader_name = reader_name
        self._protocol = protocol
        self._share_mode = share_mode
        self._atr = b""
        self.notes: list[str] = []
        self._atr = self._read_atr()
        # Learnt before the first command, so the first large read already fits the reader
        # (docs/readers.md §2: RC-S300 522-byte CCID messages, ACR122U short APDUs only).
        self._features: ReaderFeatures = learn_reader_features(self)

    @classmethod
    def open(cls, reader_name: str | None = None, *, exclusive: bool = True) -> PcscConnection:
        """Connect to the card in ``reader_name`` (exact name or a unique fragment of it), or to
        the first reader holding a card when ``None``.

        Exclusive access keeps other programs from interleaving commands between our SELECT and
        READ; if another program holds the card, it falls back to shared access with a note.
        """
        context = establish_context()
        try:
            names = reader_names(context)
            if not names:
                raise error_for(SCARD_E_NO_READERS_AVAILABLE, "list readers")
            if reader_name is not None:
                chosen = resolve_reader_name(reader_name, names)
            else:
                chosen = _first_reader_with_card(context, names)
            return cls._connect(context, chosen, exclusive=exclusive)
        except BaseException:
            release_context(context)
            raise

    @classmethod
    def _connect(cls, context: Any, reader: str, *, exclusive: bool) -> PcscConnection:
        protocols = scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        share_mode = scard.SCARD_SHARE_EXCLUSIVE if exclusive else scard.SCARD_SHARE_SHARED
        hresult, card_handle, protocol = scard.SCardConnect(context, reader, share_mode, protocols)
        note = None
        if exclusive and unsigned(hresult) == SCARD_E_SHARING_VIOLATION:
            share_mode = scard.SCARD_SHARE_SHARED
            hresult, card_handle, protocol = scard.SCardConnect(
                context, reader, share_mode, protocols
            )
            note = (
                f"another program is using {reader!r}: opened it shared, so that program "
                "could send commands between ours"
            )
        check(hresult, "connect", reader)
        connection = cls(context, card_handle, reader, protocol, share_mode)
        if note is not None:
            log_if_configured(LOGGER, INFO, "%s", note)
            connection.notes.append(note)
        return connection

    @property
    def atr(self) -> bytes:
        return self._atr

    @property
    def reader_name(self) -> str:
        return self._reader_name

    @property
    def protocol(self) -> str:
        """``"T=0"`` or ``"T=1"``, as negotiated."""
        return "T=1" if self._protocol == scard.SCARD_PROTOCOL_T1 else "T=0"

    @property
    def exclusive(self) -> bool:
        return bool(self._share_mode == scard.SCARD_SHARE_EXCLUSIVE)

    @property
    def max_apdu_data_size(self) -> int | None:
        """The reader's dwMaxAPDUDataSize (PC/SC part 10), ``None`` if it does not say."""
        return self._features.limits.max_apdu_data

    @property
    def limits(self) -> ReaderLimits:
        return self._features.limits

    @property
    def extended_length(self) -> bool | None:
        # dwMaxAPDUDataSize 0 means short APDUs only; anything above a short APDU's 255 data
        # bytes means extended APDUs pass; SCARD_ATTR_MAXINPUT caps each exchange.
        return self._features.limits.extended_length

    @property
    def pin_pad(self) -> PinPad | None:
        """The reader's keypad (PC/SC part 10 FEATURE_VERIFY_PIN_DIRECT), if it has one."""
        if self._features.verify_pin_direct is None:
            return None
        return PinPad(self, self._features)

    # -- ReaderPort: SCardControl and SCardGetAttrib ------------------------------------------

    def control(self, control_code: int, data: bytes = b"") -> bytes | None:
        hresult, answer = scard.SCardControl(self._require_open(), control_code, list(data))
        if hresult != SCARD_S_SUCCESS:
            # Many drivers (Debian's vpcd 3.3 among them) answer no control codes at all.
            log_if_configured(
                LOGGER, DEBUG, "SCardControl 0x%08X: 0x%08X", control_code, unsigned(hresult)
            )
            return None
        return bytes(answer)

    def attribute(self, attribute_id: int) -> bytes | None:
        hresult, answer = scard.SCardGetAttrib(self._require_open(), attribute_id)
        if hresult != SCARD_S_SUCCESS:
            log_if_configured(
                LOGGER, DEBUG, "SCardGetAttrib 0x%08X: 0x%08X", attribute_id, unsigned(hresult)
            )
            return None
        return bytes(answer)

    def transmit(self, command: bytes) -> bytes:
        require_command_apdu(command)
        card_handle = self._require_open()
        hresult, response = scard.SCardTransmit(card_handle, self._protocol, list(command))
        if hresult != SCARD_S_SUCCESS:
            raise self._transmit_error(hresult)
        if len(response) < 2:
            # No SW1 SW2. Debian's vpcd 3.3 reports a card pulled mid-command this way (success,
            # zero bytes); a real reader may too after a contact glitch.
            if not self._card_still_present():
                raise error_for(SCARD_W_REMOVED_CARD, "transmit", self._reader_name)
            raise TransportError(
                f"{self._reader_name!r} returned {len(response)} bytes instead of a response "
                "APDU: take the card out, insert it again and retry"
            )
        return bytes(response)

    def reset(self, *, cold: bool = False) -> bytes:
        card_handle = self._require_open()
        initialization = scard.SCARD_UNPOWER_CARD if cold else scard.SCARD_RESET_CARD
        hresult, protocol = scard.SCardReconnect(
            card_handle,
            self._share_mode,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
            initialization,
        )
        check(hresult, "reset", self._reader_name)
        self._protocol = protocol
        self._atr = self._read_atr()
        return self._atr

    def close(self) -> None:
        """Disconnect and release the context.

        An exclusive connection resets the card, so no verified PIN outlives it
        (docs/architecture.md: the terminal forgets the PIN). A shared one leaves the card as it is:
        a reset would break the other program's session, and that program could already act on our
        PIN state.
        """
        card_handle, self._card_handle = self._card_handle, None
        context, self._context = self._context, None
        if card_handle is not None:
            disposition = scard.SCARD_RESET_CARD if self.exclusive else scard.SCARD_LEAVE_CARD
            hresult = scard.SCardDisconnect(card_handle, disposition)
            if hresult != SCARD_S_SUCCESS:
                # The card may already be gone; closing must still succeed.
                log_if_configured(LOGGER, DEBUG, "SCardDisconnect: 0x%08X", unsigned(hresult))
        if context is not None:
            release_context(context)

    @property
    def closed(self) -> bool:
        return self._card_handle is None

    def _require_open(self) -> Any:
        if self._card_handle is None:
            raise TransportError(f"the connection to {self._reader_name!r} is closed")
        return self._card_handle

    def _read_atr(self) -> bytes:
        hresult, _reader, _state, _protocol, atr = scard.SCardStatus(self._require_open())
        check(hresult, "status", self._reader_name)
        return bytes(atr)

    def _transmit_error(self, hresult: int) -> TransportError:
        if unsigned(hresult) == SCARD_E_NOT_TRANSACTED and not self._card_still_present():
            # pcscd reports the first failed exchange after a pull as "not transacted"
            # and only later as "removed": tell the user what actually happened.
            return error_for(SCARD_W_REMOVED_CARD, "transmit", self._reader_name)
        return error_for(hresult, "transmit", self._reader_name)

    def _card_still_present(self, settle_seconds: float = 1.0) -> bool:
        """Whether the card is still in the reader, giving pcscd ``settle_seconds`` to notice a
        removal (it polls readers such as vpcd every 0.4 s)."""
        if self._context is None:
            return False
        try:
            states = reader_states(self._context, [self._reader_name])
            if not states or not states[0][1] & scard.SCARD_STATE_PRESENT:
                return False
            hresult, changed = scard.SCardGetStatusChange(
                self._context, int(settle_seconds * 1000), [(self._reader_name, states[0][1])]
            )
        except TransportError:
            return False
        if unsigned(hresult) == SCARD_E_TIMEOUT:
            return True
        if hresult != SCARD_S_SUCCESS:
            return False
        return bool(changed[0][1] & scard.SCARD_STATE_PRESENT)

    def __enter__(self) -> PcscConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _first_reader_with_card(context: Any, names: list[str]) -> str:
    states = reader_states(context, names)
    for name, state, _atr in states:
        if state & scard.SCARD_STATE_PRESENT and not state & scard.SCARD_STATE_MUTE:
            return name
    listing = ", ".join(repr(name) for name in names)
    raise NoCardError(
        f"no card in any reader ({listing}): insert the My Number card, or name a reader "
        "with --reader"
    )
