"""What every application session shares: selecting the AP and its files, reading files in the
fewest APDUs, PIN status, verifying and changing PINs without ever spending a try the caller
did not ask for.

Rules of docs/card.md: SELECT AP ``00 A4 04 0C`` (docs/card.md §2); SELECT EF ``00 A4 02 0C``
(docs/card.md §5); READ BINARY by SFI without SELECT (docs/card.md §1 "Short-EF-ID addressing"); the
retry query is an empty VERIFY (docs/card.md §7.5); the change commands ``00 24 01 80`` and
``80 32 00 80`` (docs/card.md §7.12); ``63C0`` on the exhausting try and ``6984`` afterwards
(docs/card.md §11.1).
"""

from __future__ import annotations

from mynakit.card.errors import (
    FileNotFoundOnCardError,
    LastTryRefusedError,
    PinBlockedError,
    PinRequiredError,
    WrongPinError,
)
from mynakit.card.pin_status import PinStatus
from mynakit.errors import PinError, UsageError
from mynakit.iso7816 import tlv
from mynakit.iso7816.apdu import SHORT_MAX_RESPONSE
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.iso7816.status import ApduError, StatusWord, tries_left
from mynakit.profiles import ApplicationProfile, CardProfile, KeyProfile, load_profile
from mynakit.transport.pinpad import PinPad, PinVerifyRequest

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import ClassVar

INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_READ_RECORD = 0xB2
INS_VERIFY = 0x20
SELECT_BY_NAME = 0x04
SELECT_EF = 0x02
NO_RESPONSE_DATA = 0x0C
KEY_OF_CURRENT_EF = 0x80
WRONG_LE_SW1 = 0x6C  # 6Cxx: wrong Le, xx bytes available (ISO/IEC 7816-4 §5.6)
INS_CHANGE_REFERENCE_DATA = 0x24
# 00 24 01 80: only the new value in the data field (docs/card.md §7.12)
CHANGE_REPLACE_WITH_NEW = 0x01
#: Check code A is the My Number itself (docs/card.md §4): its check digit is known before any
#: VERIFY.
CHECK_CODE_A = "check_code_a"
#: Secrets that open with the holder's birth date as era ``YYMMDD`` (docs/card.md §4): check code B
#: (then the expiry year and the security code) and the visual AP's birth-date code.
STARTS_WITH_ERA_DATE = frozenset({"check_code_b", "birth_date_code"})

# The first read asks for this much: enough for a whole small file, and for a certificate's
# DER header, from which the rest is sized (docs/card.md §11.6: never assume a 4-byte header).
FIRST_READ_LENGTH = SHORT_MAX_RESPONSE


class ApplicationSession:
    """Base of the per-AP sessions. Constructing one selects the AP.

    Each session declares its keys: ``pin_keys`` (what :meth:`pin_status` reads),
    ``changeable_pins`` (what :meth:`change_pin` may change, the first being the default) and
    ``unlock_keys_by_length`` (which secret :meth:`unlock` means, told apart by its length).
    """

    application_name: ClassVar[str] = ""
    pin_keys: ClassVar[tuple[str, ...]] = ()
    changeable_pins: ClassVar[tuple[str, ...]] = ()
    unlock_keys_by_length: ClassVar[Mapping[int, str]] = {}

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
        """Select this AP. The card clears every verified PIN on DF selection (docs/card.md §12)."""
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

        Addressed by SFI (no SELECT, docs/card.md §1). The first answer carries the TLV/DER header,
        which sizes the rest; with extended length the whole remainder comes in one more command.
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
            # protocol probes once and falls back to short APDUs for good (docs/card.md §1).
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
        """First read of a file: by SFI with an 8-bit offset (P1 = 80|SFI, docs/card.md §5). Reading
        by SFI makes the file current (ISO 7816-4 §7.2.2), so the later reads need no SELECT."""
        return self.protocol.send(0x00, INS_READ_BINARY, 0x80 | file_id, offset, le=length)

    def _read_binary_at(self, offset: int, length: int) -> bytes:
        """Later reads: the SFI read made the file current, so a 15-bit offset works
        (docs/card.md §5)."""
        try:
            return self.protocol.send(
                0x00, INS_READ_BINARY, (offset >> 8) & 0x7F, offset & 0xFF, le=length
            )
        except ApduError as error:
            if error.sw == StatusWord.OFFSET_OUTSIDE_FILE:
                return b""  # end of file (docs/card.md §8 6B00)
            raise

    def read_record(self, file_id: int, record: int = 1) -> bytes:
        """READ RECORD by SFI: ``P2 = (SFI << 3) | 04`` (docs/card.md §5, §7.14)."""
        try:
            return self.protocol.send(
                0x00, INS_READ_RECORD, record, (file_id << 3) | 0x04, le=SHORT_MAX_RESPONSE
            )
        except ApduError as error:
            self._raise_access_error(error, "reading the record")
            raise

    # -- PINs -----------------------------------------------------------------------------

    def tries_left(self, key_name: str) -> int | None:
        """Tries left for a key, by the empty-VERIFY query that spends nothing (docs/card.md §7.5).

        ``None`` when the card does not report a count (it answers ``9000`` on some cards when
        the key was verified in this session; docs/card.md §11.5 — not the same as zero).
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

    def key_status(self, key_name: str) -> PinStatus:
        """One key's retry counter by the empty VERIFY, which spends nothing (docs/card.md §7.5)."""
        key = self.application.key(key_name)
        return PinStatus(
            application=self.application.name,
            key_name=key.name,
            key_id=key.key_id,
            label=key.label or key.name,
            tries_left=self.tries_left(key_name),
            max_tries=key.tries,
        )

    def pin_status(self) -> list[PinStatus]:
        """Tries left for every key of ``pin_keys``; spends nothing (docs/card.md §7.5)."""
        return [self.key_status(name) for name in self.pin_keys]

    def verify(self, key_name: str, secret: str, *, force: bool = False) -> None:
        """Verify a PIN, password or check code, guarding the counter.

        The format is checked first (a malformed PIN never reaches the card); the retry
        counter is queried before every VERIFY, a blocked key raises at once, and the last try
        is refused unless ``force``. A failed VERIFY is never retried on its own.
        """
        key = self.application.key(key_name)
        secret = checked_secret(key, secret)
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

    def unlock(self, secret: str, *, key: str | None = None, force: bool = False) -> str:
        """Verify the secret of ``unlock_keys_by_length`` that ``secret``'s length names (or
        ``key``); returns the key name verified. The text and visual APs both unlock here, so
        check codes are validated the same way on both (ASCII digits, the check digit of check
        code A) before any VERIFY."""
        key_name = key or self.unlock_keys_by_length.get(len(secret))
        if key_name is None:
            choices = ", ".join(
                f"the {self.application.key(name).label or name} ({length} digits)"
                for length, name in sorted(self.unlock_keys_by_length.items())
            )
            raise UsageError(f"give {choices}")
        self.verify(key_name, secret, force=force)
        return key_name

    def change_pin(
        self, old: str, new: str, *, key: str | None = None, force: bool = False
    ) -> None:
        """Change one of ``changeable_pins`` (the first when ``key`` is None),
        docs/card.md §7.12."""
        key_name = key or (self.changeable_pins[0] if self.changeable_pins else None)
        if key_name is None or key_name not in self.changeable_pins:
            allowed = ", ".join(self.changeable_pins) or "none"
            raise UsageError(
                f"the {self.application.label} has no changeable PIN {key_name!r} "
                f"(changeable: {allowed})"
            )
        self.change_secret(key_name, old, new, force=force)

    def change_secret(self, key_name: str, old: str, new: str, *, force: bool = False) -> None:
        """Change a PIN: SELECT its key EF, guarded VERIFY of the old value, then the change
        command of the profile: ``00 24 01 80`` (ISO) or ``80 32 00 80`` (JICSAP CHANGE KEY),
        docs/card.md §7.12.

        The new value is format-checked before anything is sent, so a typo in it costs nothing.
        The key EF is selected first because both change commands name the key as "the current
        EF" (P2 = 80); VERIFY by SFI does not change the current EF. The change command is sent
        once: ``ApduProtocol`` never re-sends it (it carries a secret).
        """
        key = self.application.key(key_name)
        new = checked_secret(key, new)
        checked_secret(key, old)
        self.select_file(key.key_id)
        self.verify(key_name, old, force=force)
        cla, ins = key.change_instruction >> 8, key.change_instruction & 0xFF
        p1 = CHANGE_REPLACE_WITH_NEW if ins == INS_CHANGE_REFERENCE_DATA else 0x00
        try:
            self.protocol.send(cla, ins, p1, KEY_OF_CURRENT_EF, new.encode("ascii"))
        except ApduError as error:
            if error.sw == StatusWord.SECURITY_STATUS_NOT_SATISFIED:
                raise PinRequiredError(
                    f"the card refused to change the {key.label or key.name}"
                ) from error
            raise

    def is_verified(self, key_name: str) -> bool:
        return self.application.key(key_name).key_id in self._verified

    def _raise_access_error(self, error: ApduError, doing: str) -> None:
        if error.sw == StatusWord.SECURITY_STATUS_NOT_SATISFIED:
            raise PinRequiredError(f"{doing} needs a PIN to be verified first") from error
        if error.sw == StatusWord.FILE_NOT_FOUND:
            raise FileNotFoundOnCardError(f"{doing}: not on this card") from error


def checked_secret(key: KeyProfile, secret: str) -> str:
    """``secret`` as the card registers it, or a one-line ``UsageError`` when it can never be
    right: wrong length, not ASCII digits (full-width and superscript digits included), not
    upper-case ASCII letters and digits, check code A with a wrong My Number check digit
    (docs/card.md Appendix A), or check code B / the birth-date code not opening with an era
    ``YYMMDD`` date (docs/card.md §4). Nothing is sent to the card."""
    if key.charset == "upper_alphanumeric":
        secret = secret.upper()  # registered in upper case (docs/card.md §4)
    key.check_format(secret)
    what = key.label or key.name
    if key.name == CHECK_CODE_A:
        # Only the text and visual APs' check code A needs it: the JPKI commands skip the import.
        from mynakit.personal import is_valid_my_number

        if not is_valid_my_number(secret):
            raise UsageError(f"the {what} has a wrong check digit")
    if key.name in STARTS_WITH_ERA_DATE and not _is_era_date(secret[:6]):
        # The message never quotes the digits: they are the holder's birth date.
        raise UsageError(
            f"the {what} does not start with a birth date as era YYMMDD "
            "(year 01-99, month 01-12, day 01-31)"
        )
    return secret


def _is_era_date(yymmdd: str) -> bool:
    """Era year, month and day in range (docs/card.md §4); the era itself is not part of the
    code."""
    if len(yymmdd) != 6:
        return False
    year, month, day = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
    return 1 <= year <= 99 and 1 <= month <= 12 and 1 <= day <= 31


def _pin_error(error: ApduError, key: KeyProfile) -> Exception:
    what = key.label or key.name
    remaining = tries_left(error.sw)
    if remaining == 0:
        return PinBlockedError(what, by_this_entry=True)
    if error.sw in (StatusWord.REFERENCE_DATA_BLOCKED, StatusWord.AUTHENTICATION_METHOD_BLOCKED):
        return PinBlockedError(what)
    if remaining is not None:
        return WrongPinError(what, remaining)
    if error.sw >> 8 == WRONG_LE_SW1:
        # ApduProtocol never re-sends a command with a secret after 6Cxx (docs/card.md §8):
        # say so, and that the counter is worth reading before another entry.
        return PinError(
            f"the card answered {error.sw:04X} (wrong length) to the {what}; it was sent once "
            "and not again. Check the tries left (mynakit pin status) before another entry"
        )
    return error


def _tlv_total_length(first_chunk: bytes) -> int:
    """Total length of the object at the start of a file, from its BER header
    (docs/card.md §11.6)."""
    if not first_chunk:
        return 0
    return tlv.read_header(first_chunk).total_length
