"""What every application session shares: selecting the AP and its files, reading files in the
fewest APDUs, and verifying PINs without ever spending a try the caller did not ask for.

Rules from the protocol reference: SELECT AP ``00 A4 04 0C`` (§2); SELECT EF ``00 A4 02 0C``
(§5); READ BINARY by SFI without SELECT (§1 "Short-EF-ID addressing"); the retry query is an
empty VERIFY (§7.5); ``63C0`` on the exhausting try and ``6984`` afterwards (§11.1).
"""

from __future__ import annotations

from mynakit.card.errors import (
    FileNotFoundOnCardError,
    LastTryRefusedError,
    PinBlockedError,
    PinRequiredError,
    WrongPinError,
)
from mynakit.errors import UsageError
from mynakit.iso7816 import tlv
from mynakit.iso7816.apdu import SHORT_MAX_RESPONSE
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.iso7816.status import ApduError, StatusWord, tries_left
from mynakit.profiles import ApplicationProfile, CardProfile, KeyProfile, load_profile
from mynakit.transport.pinpad import PinPad, PinVerifyRequest

INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_READ_RECORD = 0xB2
INS_VERIFY = 0x20
SELECT_BY_NAME = 0x04
SELECT_EF = 0x02
NO_RESPONSE_DATA = 0x0C
KEY_OF_CURRENT_EF = 0x80

# The first read asks for this much: enough for a whole small file, and for a certificate's
# DER header, from which the rest is sized (§11.6: never assume a 4-byte header).
FIRST_READ_LENGTH = SHORT_MAX_RESPONSE


class ApplicationSession:
    """Base of the per-AP sessions. Constructing one selects the AP."""

    application_name: str = ""

    def __init__(
        self,
        protocol: ApduProtocol,
        profile: CardProfile | None = None,
        *,
        select: bool = True,
    ) -> None:
        self.protocol = protocol
        self.profile = profile or load_profile()
        self.application: ApplicationProfile = self.profile.application(self.application_name)
        self._verified: set[int] = set()
        if select:
            self.select()

    # -- selection ------------------------------------------------------------------------

    def select(self) -> None:
        """Select this AP. The card clears every verified PIN on DF selection (§12)."""
        try:
            self.protocol.send(
                0x00, INS_SELECT, SELECT_BY_NAME, NO_RESPONSE_DATA, self.application.aid
            )
        except ApduError as error:
            if error.sw == StatusWord.FILE_NOT_FOUND:
                raise FileNotFoundOnCardError(
                    f"this card has no {self.application.label}"
                ) from error
            raise
        self._verified.clear()

    def select_file(self, file_id: int) -> None:
        try:
            self.protocol.send(
                0x00, INS_SELECT, SELECT_EF, NO_RESPONSE_DATA, file_id.to_bytes(2, "big")
            )
        except ApduError as error:
            if error.sw == StatusWord.FILE_NOT_FOUND:
                raise FileNotFoundOnCardError(
                    f"file {file_id:04X} is not in the {self.application.label}"
                ) from error
            raise

    # -- reading --------------------------------------------------------------------------

    def read_file(self, name: str) -> bytes:
        """Read a whole transparent file in the fewest APDUs the link allows.

        Addressed by SFI (no SELECT, §1). The first answer carries the TLV/DER header, which
        sizes the rest; with extended length the whole remainder comes in one more command.
        Files without a TLV header (token, availability) use the profile's size.
        """
        file = self.application.file(name)
        try:
            return self._read_binary_all(file.file_id, file.size)
        except ApduError as error:
            self._raise_access_error(error, f"reading {name.replace('_', ' ')}")
            raise

    def _read_binary_all(self, file_id: int, known_size: int | None) -> bytes:
        first_length = known_size if known_size is not None else FIRST_READ_LENGTH
        if (
            known_size is None
            and self.profile.extended_length
            and self.protocol.extended_length is not False
        ):
            # The card takes extended Le (profile); when the reader's support is unknown the
            # protocol probes once and falls back to short APDUs for good (§1, user needs §4.4).
            # A reader that told its limits gets no more than it carries (docs/readers.md §2).
            first_length = self.protocol.max_extended_response
        data = self._read_binary(file_id, 0, first_length)
        total = known_size if known_size is not None else _tlv_total_length(data)
        while len(data) < total:
            want = min(total - len(data), self.protocol.max_response_length)
            chunk = self._read_binary_at(len(data), want)
            if not chunk:
                break
            data += chunk
        return data[:total] if total else data

    def _read_binary(self, file_id: int, offset: int, length: int) -> bytes:
        """First read of a file: by SFI with an 8-bit offset (P1 = 80|SFI, §5). Reading by SFI
        makes the file current (ISO 7816-4 §7.2.2), so the later reads need no SELECT."""
        return self.protocol.send(0x00, INS_READ_BINARY, 0x80 | file_id, offset, le=length)

    def _read_binary_at(self, offset: int, length: int) -> bytes:
        """Later reads: the SFI read made the file current, so a 15-bit offset works (§5)."""
        try:
            return self.protocol.send(
                0x00, INS_READ_BINARY, (offset >> 8) & 0x7F, offset & 0xFF, le=length
            )
        except ApduError as error:
            if error.sw == StatusWord.OFFSET_OUTSIDE_FILE:
                return b""  # end of file (§8 6B00)
            raise

    def read_record(self, file_id: int, record: int = 1) -> bytes:
        """READ RECORD by SFI: ``P2 = (SFI << 3) | 04`` (§5, §7.14)."""
        try:
            return self.protocol.send(
                0x00, INS_READ_RECORD, record, (file_id << 3) | 0x04, le=SHORT_MAX_RESPONSE
            )
        except ApduError as error:
            self._raise_access_error(error, "reading the record")
            raise

    # -- PINs -----------------------------------------------------------------------------

    def tries_left(self, key_name: str) -> int | None:
        """Tries left for a key, by the empty-VERIFY query that spends nothing (§7.5).

        ``None`` when the card does not report a count (it answers ``9000`` on some cards when
        the key was verified in this session; reference §11.5 — not the same as zero).
        """
        key = self.application.key(key_name)
        try:
            self.protocol.send(0x00, INS_VERIFY, 0x00, KEY_OF_CURRENT_EF | key.key_id)
        except ApduError as error:
            remaining = tries_left(error.sw)
            if remaining is not None:
                return remaining
            if error.sw in (
                StatusWord.REFERENCE_DATA_BLOCKED,
                StatusWord.AUTHENTICATION_METHOD_BLOCKED,
            ):
                return 0
            raise
        return None

    def verify(self, key_name: str, secret: str, *, force: bool = False) -> None:
        """Verify a PIN, password or check code, guarding the counter.

        The format is checked first (a malformed PIN never reaches the card); the retry
        counter is queried before every VERIFY, a blocked key raises at once, and the last try
        is refused unless ``force``. A failed VERIFY is never retried on its own.
        """
        key = self.application.key(key_name)
        if key.charset == "upper_alphanumeric":
            secret = secret.upper()  # registered in upper case (§4, [MC pin.rs])
        key.check_format(secret)
        self._guard_counter(key_name, force=force)
        try:
            self.protocol.send(
                0x00, INS_VERIFY, 0x00, KEY_OF_CURRENT_EF | key.key_id, secret.encode("ascii")
            )
        except ApduError as error:
            raise _pin_error(error, key) from error
        self._verified.add(key.key_id)

    def _guard_counter(self, key_name: str, *, force: bool) -> None:
        """Read the retry counter first: a blocked key raises, the last try needs ``force``."""
        key = self.application.key(key_name)
        what = key.label or key.name
        remaining = self.tries_left(key_name)
        if remaining == 0:
            raise PinBlockedError(what)
        if remaining == 1 and not force:
            raise LastTryRefusedError(what)

    def verify_on_pin_pad(self, key_name: str, pin_pad: PinPad, *, force: bool = False) -> None:
        """Verify with the PIN typed on the reader's keypad (PC/SC part 10
        FEATURE_VERIFY_PIN_DIRECT): the host never sees it. The counter guard of ``verify``
        applies unchanged; the keypad sends the VERIFY once and is never asked again on failure.
        """
        key = self.application.key(key_name)
        what = key.label or key.name
        if key.charset != "digits":
            raise UsageError(f"the {what} has letters, which a keypad cannot enter")
        if not pin_pad.accepts(key.min_length, key.max_length):
            raise UsageError(f"the reader's keypad does not take a {what} of this length")
        self._guard_counter(key_name, force=force)
        request = PinVerifyRequest(
            0x00, INS_VERIFY, 0x00, KEY_OF_CURRENT_EF | key.key_id, key.min_length, key.max_length
        )
        status = pin_pad.verify(request)
        if status != StatusWord.SUCCESS:
            raise _pin_error(ApduError(status, b"", "VERIFY on the PIN pad"), key)
        self._verified.add(key.key_id)

    def is_verified(self, key_name: str) -> bool:
        return self.application.key(key_name).key_id in self._verified

    def _raise_access_error(self, error: ApduError, doing: str) -> None:
        if error.sw == StatusWord.SECURITY_STATUS_NOT_SATISFIED:
            raise PinRequiredError(f"{doing} needs a PIN to be verified first") from error
        if error.sw == StatusWord.FILE_NOT_FOUND:
            raise FileNotFoundOnCardError(f"{doing}: not on this card") from error


def _pin_error(error: ApduError, key: KeyProfile) -> Exception:
    what = key.label or key.name
    remaining = tries_left(error.sw)
    if remaining == 0 or error.sw in (
        StatusWord.REFERENCE_DATA_BLOCKED,
        StatusWord.AUTHENTICATION_METHOD_BLOCKED,
    ):
        return PinBlockedError(what)
    if remaining is not None:
        return WrongPinError(what, remaining)
    return error


def _tlv_total_length(first_chunk: bytes) -> int:
    """Total length of the object at the start of a file, from its BER header (§11.6)."""
    if not first_chunk:
        return 0
    return tlv.read_header(first_chunk).total_length
