"""The virtual card's operating system: executes the card profile byte for byte.

Structure (APs, EFs, keys, access rules, PIN policies) and every UNCONFIRMED behaviour come from
the card profile (``card_profiles/*.toml``, its ``[choices]``); this module holds only the ISO
7816-4 / JICSAP command semantics of docs/card.md §5, §7, §8 and §12. Handlers raise
``_StatusWordError(sw)``, which becomes the status word. Nothing else leaves ``execute``:
malformed input is 6700, an internal bug 6F00; only the removal fault and a command to a
powered-down card raise (transport errors, as a reader reports them), and a ``DataError`` when
the card's own files (``pins.json``) are broken or cannot be written.

PIN records are the only state processes share: VERIFY and the change commands run whole under
the card's file lock with the counters re-read (``CardState.command``), so concurrent processes
see what one card serialising its commands would show.

Private keys stay inside: the card holds ``CardKey`` objects that only sign, and this class has
no accessor that returns one.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from mynakit.emulator.card_files import RSA_MODULUS_BYTES, sha256_digest_info
from mynakit.emulator.card_keys import CardKey
from mynakit.emulator.card_state import CardState
from mynakit.emulator.faults import Faults, VirtualCardRemovedError
from mynakit.emulator.pin_records import PinRecord
from mynakit.errors import DataError, MynakitError, TransportError, UsageError
from mynakit.iso7816.apdu import CommandApdu
from mynakit.iso7816.status import StatusWord
from mynakit.profiles import ApplicationProfile, CardProfile, FileProfile, KeyProfile

logger = logging.getLogger(__name__)

SW = StatusWord
_COMMAND_CHAINING_NOT_SUPPORTED = 0x6884  # ISO 7816-4 §5.1.1: CLA b5 set, card does not chain
_MAX_SHORT_CHALLENGE = 256
_SIGNATURE_SCHEMES = range(0x00, 0x06)  # 80 2A P1 (docs/card.md §5.1)
_PKCS1_MAX_PAYLOAD = RSA_MODULUS_BYTES - 11
_SHA256_LENGTH = 32
_MAX_MESSAGE = 255
_TERMINAL_CERTIFICATE_LENGTH = 307  # docs/card.md §1: the 80 A2 body seen on real cards


class _StatusWordError(Exception):
    """A handler's non-9000 answer (internal: becomes the status word)."""

    def __init__(self, sw: int, data: bytes = b"") -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw
        self.data = data


@dataclass(frozen=True)
class _Reply:
    data: bytes = b""
    sw: int = SW.SUCCESS
    signed: bool = False  # an RSA signature was computed (for the latency model)


Handler = Callable[["VirtualCard", CommandApdu, bool], _Reply]


class VirtualCard:
    """A My Number card in software. ``execute`` takes a command APDU and returns the response
    APDU (data + SW1 SW2), exactly as the card in a reader would."""

    def __init__(
        self, profile: CardProfile, persona_state: CardState, *, faults: Faults | None = None
    ) -> None:
        if persona_state.profile_name != profile.kind:
            raise UsageError(
                f"this card state was built for {persona_state.profile_name!r}, "
                f"not {profile.kind!r}"
            )
        self._profile = profile
        self._state = persona_state
        self._faults = faults or Faults()
        self._choices = profile.choices
        self._power_on_aid = bytes.fromhex(str(self._choices.get("power_on_df_aid", "")))
        self._atr = presented_atr(profile)
        self._reselect_keeps_verification = _reselect_keeps_verification(profile)
        self._corruption_random = self._faults.corruption_random()
        self._apdu_count = 0
        self._removal_armed = self._faults.remove_after is not None
        self._removed = False
        self._powered = True
        self._application: ApplicationProfile | None = None
        self._current_ef: int | None = None
        self._verified: set[int] = set()
        self._pending_response = b""
        for application, key_name in self._faults.blocked:
            persona_state.block(application, key_name, profile)

    # -- the card in the reader -------------------------------------------------------------------

    @property
    def atr(self) -> bytes:
        """The ATR the card presents: the profile's ``[choices] atr`` (docs/card.md §1)."""
        return self._atr

    @property
    def profile(self) -> CardProfile:
        return self._profile

    @property
    def state(self) -> CardState:
        """Persona, files and PIN counters (for tests and the CLI; keys only sign)."""
        return self._state

    @property
    def faults(self) -> Faults:
        return self._faults

    @property
    def removed(self) -> bool:
        """True once the removal fault has fired; a vpcd bridge reports "no card" then."""
        return self._removed

    def reinsert(self) -> None:
        """Put a removed card back, powered up; the removal fault has fired and stays off."""
        self._removed = False
        self._removal_armed = False
        self.power_up()

    def power_up(self) -> None:
        self._powered = True
        self._reset_logical_state()

    def power_down(self) -> None:
        self._powered = False
        self._reset_logical_state()

    def reset(self) -> None:
        """Warm reset: back to the power-on state (ISD current, nothing verified,
        docs/card.md §1)."""
        self._powered = True
        self._reset_logical_state()

    def _reset_logical_state(self) -> None:
        self._application = None
        self._current_ef = None
        self._verified.clear()
        self._pending_response = b""

    # -- execution --------------------------------------------------------------------------------

    def execute(self, command: bytes) -> bytes:
        """Run one command APDU; return data + SW. Only the removal fault, and a ``DataError``
        for broken card files, raise."""
        if self._removed:
            raise VirtualCardRemovedError("the virtual card has been removed from the reader")
        if not self._powered:
            raise TransportError("the virtual card is not powered; reset it first")
        self._apdu_count += 1
        limit = self._faults.remove_after if self._removal_armed else None
        if limit is not None and self._apdu_count > limit and not self._faults.remove_mid_command:
            self._removed = True
            raise VirtualCardRemovedError("the virtual card was removed from the reader")
        reply = self._process(bytes(command))
        if limit is not None and self._apdu_count > limit:
            # Removed while working: the command's effects (a saved PIN counter) stay.
            self._removed = True
            raise VirtualCardRemovedError("the virtual card was removed during a command")
        response = reply.data + reply.sw.to_bytes(2, "big")
        if self._faults.corruption is not None:
            response = self._faults.corruption.apply(response, self._corruption_random)
        if self._faults.latency is not None:
            time.sleep(self._faults.latency.delay(len(command), len(response), signed=reply.signed))
        return response

    def _process(self, raw: bytes) -> _Reply:
        try:
            try:
                apdu = CommandApdu.decode(raw)
            except MynakitError:
                return _Reply(sw=SW.WRONG_LENGTH)
            extended = _is_extended(raw)
            reply = self._dispatch(apdu, extended)
        except _StatusWordError as refusal:
            reply = _Reply(refusal.data, refusal.sw)
        except DataError:
            # The card's own files are broken or cannot be written (pins.json): not an answer a
            # card gives, so say which file, as loading would. No comparison has been made.
            raise
        except Exception:  # a bug must not escape into the reader as a crash
            logger.exception("virtual card: internal error (answered 6F00)")
            reply = _Reply(sw=SW.NO_PRECISE_DIAGNOSIS)
        if raw[1:2] != bytes((_INS_GET_RESPONSE,)):
            self._pending_response = b""
        if self._faults.t0 and len(raw) >= 4:
            return self._t0_transport(raw, reply)
        return reply

    def _dispatch(self, apdu: CommandApdu, extended: bool) -> _Reply:
        cla = apdu.cla
        if cla == 0xFF:
            raise _StatusWordError(SW.CLA_NOT_SUPPORTED)  # ISO 7816-4 §5.4.1: FF is invalid
        proprietary = bool(cla & 0x80)
        # docs/card.md §1: only channel 0 (channel bits of CLA 0x-3x, 4x-7x, and of the
        # proprietary 8x).
        if apdu.channel != 0 or (proprietary and cla & 0x03):
            raise _StatusWordError(SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
        if cla & 0xE0 == 0x20 or (proprietary and cla & 0xF0 != 0x80):
            raise _StatusWordError(SW.CLA_NOT_SUPPORTED)  # invalid, reserved, or a class it lacks
        if cla & 0x10 and not proprietary:
            raise _StatusWordError(_COMMAND_CHAINING_NOT_SUPPORTED)
        if cla & 0x0C and cla & 0xC0 in (0x00, 0x80):
            # No secure messaging (real cards offer it in the text AP only, docs/card.md §7.15).
            raise _StatusWordError(SW.SECURE_MESSAGING_NOT_SUPPORTED)
        if extended and (not self._profile.extended_length or self._faults.t0):
            raise _StatusWordError(SW.WRONG_LENGTH)  # T=0 carries no extended APDUs (ISO 7816-3)
        handler = _HANDLERS.get((proprietary, apdu.ins))
        if handler is None:
            raise _StatusWordError(SW.INS_NOT_SUPPORTED)
        return handler(self, apdu, extended)

    # -- T=0 transport (fault) --------------------------------------------------------------------

    def _t0_transport(self, raw: bytes, reply: _Reply) -> _Reply:
        """Re-shape a response as a T=0 card sends it (ISO 7816-3 §12.2; 7816-4 §5.3.4)."""
        apdu_case = _case_of(raw)
        if raw[1] == _INS_GET_RESPONSE or not reply.data:
            return reply
        if apdu_case in (3, 4):
            # T=0 cannot send data back in a command that carried data: announce it instead.
            self._pending_response = reply.data
            return _Reply(sw=_more_data(len(reply.data)), signed=reply.signed)
        if apdu_case == 2:
            expected = (raw[4] or 256) if len(raw) == 5 else None
            if expected is not None and expected != len(reply.data):
                return _Reply(sw=0x6C00 | (len(reply.data) & 0xFF), signed=reply.signed)
        return reply

    def _get_response(self, apdu: CommandApdu, extended: bool) -> _Reply:
        if apdu.p1 != 0 or apdu.p2 != 0:
            raise _StatusWordError(SW.INCORRECT_P1_P2)
        if apdu.data:
            raise _StatusWordError(SW.WRONG_LENGTH)
        pending = self._pending_response
        if not pending:
            raise _StatusWordError(SW.CONDITIONS_NOT_SATISFIED)
        wanted = apdu.le if apdu.le is not None else 256
        if wanted > len(pending):
            raise _StatusWordError(
                0x6C00 | (len(pending) & 0xFF)
            )  # wrong Le: here is the right one
        chunk, rest = pending[:wanted], pending[wanted:]
        self._pending_response = rest
        if rest:
            return _Reply(chunk, _more_data(len(rest)))
        return _Reply(chunk)

    # -- SELECT (00 A4) ---------------------------------------------------------------------------

    def _select(self, apdu: CommandApdu, extended: bool) -> _Reply:
        if apdu.p1 == 0x04:
            return self._select_df_by_name(apdu)
        if apdu.p1 in (0x00, 0x02):
            if apdu.p2 not in (0x0C, 0x00):
                raise _StatusWordError(SW.INCORRECT_P1_P2)
            if not apdu.data:
                if apdu.p1 == 0x00:
                    # docs/card.md §1: "00 A4 00 00" answers 6A86 after reset and 9000 without
                    # changing the DF once an AP is selected; there is no selectable MF.
                    if self._application is None:
                        raise _StatusWordError(SW.INCORRECT_P1_P2)
                    return _Reply()
                raise _StatusWordError(SW.WRONG_LENGTH)
            if len(apdu.data) != 2:
                raise _StatusWordError(SW.WRONG_LENGTH)
            file_id = int.from_bytes(apdu.data, "big")
            application = self._application
            if application is None or not self._has_ef(application, file_id):
                raise _StatusWordError(SW.FILE_NOT_FOUND)  # includes 3F00 (docs/card.md §1)
            self._current_ef = file_id
            return _Reply()
        raise _StatusWordError(SW.INCORRECT_P1_P2)

    def _select_df_by_name(self, apdu: CommandApdu) -> _Reply:
        if apdu.p2 not in (0x0C, 0x00):
            raise _StatusWordError(SW.INCORRECT_P1_P2)
        name = apdu.data
        if not name:
            raise _StatusWordError(SW.WRONG_LENGTH)
        if self._power_on_aid and name == self._power_on_aid:
            self._reset_logical_state()  # docs/card.md §1: the ISD is the power-on state
            return _Reply()
        target = self._profile.application_by_aid(name)
        if target is None and self._choices.get("select_by_aid_prefix", False):
            target = next(
                (a for a in self._profile.applications.values() if a.aid.startswith(name)), None
            )
        if target is None:
            raise _StatusWordError(SW.FILE_NOT_FOUND)
        # docs/card.md §12: selecting another DF resets the security status; re-selecting the
        # current one does only if the profile says so (choice reselect_current_df).
        if target is not self._application or not self._reselect_keeps_verification:
            self._verified.clear()
        self._application = target
        self._current_ef = None
        # P2=00 asks for FCI; the card is not known to return any (docs/card.md §2), so
        # neither do we.
        return _Reply()

    # -- READ BINARY (00 B0) / READ RECORD (00 B2) ------------------------------------------------

    def _read_binary(self, apdu: CommandApdu, extended: bool) -> _Reply:
        if apdu.data or apdu.le is None:
            raise _StatusWordError(SW.WRONG_LENGTH)
        if apdu.p1 & 0x80:
            if apdu.p1 & 0x60:
                raise _StatusWordError(SW.INCORRECT_P1_P2)
            file = self._file_by_short_id(apdu.p1 & 0x1F)
            offset = apdu.p2
        else:
            file = self._current_file()
            offset = (apdu.p1 << 8) | apdu.p2  # 15-bit offset (docs/card.md §5)
        if file.structure != "binary":
            raise _StatusWordError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
        self._require_read_access(file)
        content = self._state.files[(self._require_application().name, file.file_id)]
        if offset >= len(content):
            raise _StatusWordError(SW.OFFSET_OUTSIDE_FILE)  # JICSAP 7.3.1, docs/card.md §8
        data = content[offset : offset + apdu.le]
        if len(data) < apdu.le and self._choices.get("short_read_at_end_sw") == "6282":
            return _Reply(data, SW.WARNING_END_OF_FILE)
        return _Reply(data)

    def _read_record(self, apdu: CommandApdu, extended: bool) -> _Reply:
        if apdu.data or apdu.le is None:
            raise _StatusWordError(SW.WRONG_LENGTH)
        short_id, mode = apdu.p2 >> 3, apdu.p2 & 0x07
        if mode == 0x05 and not self._choices.get("read_records_from_supported", False):
            # docs/card.md §8: P2=05 on cards lacking it
            raise _StatusWordError(SW.FUNCTION_NOT_SUPPORTED)
        if mode != 0x04:
            raise _StatusWordError(SW.INCORRECT_P1_P2)
        file = self._file_by_short_id(short_id) if short_id else self._current_file()
        if file.structure != "record":
            raise _StatusWordError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
        self._require_read_access(file)
        records = self._state.records[(self._require_application().name, file.file_id)]
        if not 1 <= apdu.p1 <= len(records):
            raise _StatusWordError(SW.RECORD_NOT_FOUND)
        return _Reply(records[apdu.p1 - 1][: apdu.le])

    # -- VERIFY (00 20), CHANGE REFERENCE DATA (00 24), CHANGE KEY (80 32) -----------------------

    # The PIN records are the card's only state shared between processes: the commands that
    # read or change them run whole under the card's lock, with the counters re-read from disk,
    # as a real card runs one command at a time (docs/card.md §7.5, §11.1).

    def _verify(self, apdu: CommandApdu, extended: bool) -> _Reply:
        with self._state.command():
            return self._verify_locked(apdu)

    def _verify_locked(self, apdu: CommandApdu) -> _Reply:
        if apdu.p1 != 0x00:
            raise _StatusWordError(SW.INCORRECT_P1_P2)
        key = self._pin_key(apdu.p2)
        record = self._pin_record(key)
        if not apdu.data:
            # docs/card.md §7.5: the retry query; spends nothing.
            if (
                key.key_id in self._verified
                and self._choices.get("retry_query_after_verify") == "9000"
            ):
                return _Reply()
            raise _StatusWordError(0x63C0 | min(record.tries_left, 0x0F))
        if record.tries_left <= 0:
            # docs/card.md §11.1: 6984 once blocked
            raise _StatusWordError(SW.REFERENCE_DATA_BLOCKED)
        # Spend the try and save it before comparing, so pulling the card cannot refund it.
        record.tries_left -= 1
        self._state.save_pins()
        if secrets.compare_digest(apdu.data, record.value):
            record.tries_left = record.max_tries
            self._state.save_pins()
            self._verified.add(key.key_id)
            return _Reply()
        self._verified.discard(key.key_id)
        raise _StatusWordError(0x63C0 | min(record.tries_left, 0x0F))  # 63C0 on the exhausting try

    def _change_reference_data(self, apdu: CommandApdu, extended: bool) -> _Reply:
        if apdu.p1 != 0x01:
            # only "new value after VERIFY" (docs/card.md §5)
            raise _StatusWordError(SW.INCORRECT_P1_P2)
        return self._change(apdu, instruction=0x0024)

    def _change_key(self, apdu: CommandApdu, extended: bool) -> _Reply:
        if apdu.p1 != 0x00:
            raise _StatusWordError(SW.INCORRECT_P1_P2)
        return self._change(apdu, instruction=0x8032)

    def _change(self, apdu: CommandApdu, *, instruction: int) -> _Reply:
        with self._state.command():
            return self._change_locked(apdu, instruction)

    def _change_locked(self, apdu: CommandApdu, instruction: int) -> _Reply:
        key = self._pin_key(apdu.p2)
        record = self._pin_record(key)
        if key.change_instruction != instruction:
            raise _StatusWordError(SW.FUNCTION_NOT_SUPPORTED)
        if record.tries_left <= 0:
            raise _StatusWordError(SW.REFERENCE_DATA_BLOCKED)
        if key.key_id not in self._verified:
            raise _StatusWordError(self._security_not_satisfied())
        if not apdu.data:
            raise _StatusWordError(SW.WRONG_LENGTH)
        try:
            key.check_format(apdu.data.decode("ascii"))
        except (UnicodeDecodeError, UsageError):
            raise _StatusWordError(SW.INCORRECT_DATA) from None
        record.value = bytes(apdu.data)
        record.tries_left = record.max_tries
        self._state.save_pins()
        return _Reply()

    # -- COMPUTE DIGITAL SIGNATURE (80 2A) --------------------------------------------------------

    def _compute_signature(self, apdu: CommandApdu, extended: bool) -> _Reply:
        if apdu.p1 not in _SIGNATURE_SCHEMES:
            raise _StatusWordError(SW.INCORRECT_P1_P2)
        if apdu.p2 == 0x80:
            key = self._private_key_profile(self._require_current_ef_id())
        elif apdu.p2 == 0x00:
            key = self._ap_signing_key(self._require_application_or(SW.INCORRECT_P1_P2))
            if self._choices.get("ap_key_signature_needs_credential", False) and not self._verified:
                raise _StatusWordError(self._security_not_satisfied())
        elif 0x81 <= apdu.p2 <= 0x9E:
            self._require_application_or(SW.DATA_NOT_FOUND)
            key = self._private_key_profile(apdu.p2 & 0x1F, not_found=SW.DATA_NOT_FOUND)
        else:
            raise _StatusWordError(SW.INCORRECT_P1_P2)
        application = self._require_application()
        if key.unlocked_by is not None and key.unlocked_by not in self._verified:
            # docs/card.md §12: 6982 without the PIN
            raise _StatusWordError(self._security_not_satisfied())
        if apdu.le is not None and apdu.le < RSA_MODULUS_BYTES:
            raise _StatusWordError(SW.WRONG_LENGTH)
        signature = _sign(
            self._state.card_keys[(application.name, key.key_id)],
            apdu.p1,
            apdu.data,
            int(self._choices.get("pss_salt_length", _SHA256_LENGTH)),
        )
        return _Reply(signature, signed=True)

    def _ap_signing_key(self, application: ApplicationProfile) -> KeyProfile:
        """docs/card.md §7.13: P2=00 in a card-face AP is the AP's own key, usable with no
        credential."""
        for key in application.keys.values():
            if key.kind == "private_key" and key.unlocked_by is None:
                return key
        raise _StatusWordError(SW.INCORRECT_P1_P2)

    def _private_key_profile(
        self, key_id: int, *, not_found: int = SW.COMMAND_INCOMPATIBLE_WITH_FILE
    ) -> KeyProfile:
        key = self._require_application().keys.get(key_id)
        if key is None or key.kind != "private_key":
            raise _StatusWordError(not_found)
        return key

    # -- SET PUBLIC IC KEY / verify terminal CV certificate (80 A2) ----------------------------

    def _terminal_certificate(self, apdu: CommandApdu, extended: bool) -> _Reply:
        """docs/card.md §5: 80 A2 takes a terminal CV certificate (a 307-byte body, extended
        Lc, docs/card.md §1); P1-P2 other than 00 C1 answer 6A86 (docs/card.md §8). A body of
        any other length is a wrong length, 6700, as public clients expect of a 256-byte body.
        The sandbox knows no terminal CA, so a certificate of the right length cannot be
        verified: 6A80 (incorrect data, ISO/IEC 7816-4 §5.6)."""
        if (apdu.p1, apdu.p2) != (0x00, 0xC1):
            raise _StatusWordError(SW.INCORRECT_P1_P2)
        if len(apdu.data) != _TERMINAL_CERTIFICATE_LENGTH:
            raise _StatusWordError(SW.WRONG_LENGTH)
        raise _StatusWordError(SW.INCORRECT_DATA)

    # -- GET CHALLENGE (00 84) --------------------------------------------------------------------

    def _get_challenge(self, apdu: CommandApdu, extended: bool) -> _Reply:
        if apdu.p1 != 0 or apdu.p2 != 0:
            raise _StatusWordError(SW.INCORRECT_P1_P2)
        if extended:
            # docs/card.md §1: the extended form is refused (choice: extended_get_challenge_sw).
            raise _StatusWordError(
                int(str(self._choices.get("extended_get_challenge_sw", "6985")), 16)
            )
        if apdu.data or apdu.le is None or apdu.le > _MAX_SHORT_CHALLENGE:
            raise _StatusWordError(SW.WRONG_LENGTH)
        return _Reply(secrets.token_bytes(apdu.le))

    # -- helpers ----------------------------------------------------------------------------------

    def _require_application(self) -> ApplicationProfile:
        return self._require_application_or(SW.FILE_NOT_FOUND)

    def _require_application_or(self, sw: int) -> ApplicationProfile:
        if self._application is None:
            raise _StatusWordError(sw)
        return self._application

    @staticmethod
    def _has_ef(application: ApplicationProfile, file_id: int) -> bool:
        return file_id in application.files or file_id in application.keys

    def _require_current_ef_id(self) -> int:
        if self._application is None or self._current_ef is None:
            raise _StatusWordError(SW.NO_CURRENT_EF)
        return self._current_ef

    def _current_file(self) -> FileProfile:
        file_id = self._require_current_ef_id()
        file = self._require_application().files.get(file_id)
        if file is None:
            raise _StatusWordError(
                SW.COMMAND_INCOMPATIBLE_WITH_FILE
            )  # a key EF has no content to read
        return file

    def _file_by_short_id(self, short_id: int) -> FileProfile:
        """SFI addressing (docs/card.md §1: every EF id is 0001-001E and doubles as its SFI)."""
        application = self._require_application()
        if short_id == 0:
            raise _StatusWordError(SW.INCORRECT_P1_P2)
        file = application.files.get(short_id)
        if file is None:
            if short_id in application.keys:
                raise _StatusWordError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
            raise _StatusWordError(SW.FILE_NOT_FOUND)
        self._current_ef = file.file_id  # ISO 7816-4 §7.2.2: SFI access selects the file
        return file

    def _require_read_access(self, file: FileProfile) -> None:
        if file.read_keys and not any(key in self._verified for key in file.read_keys):
            raise _StatusWordError(self._security_not_satisfied())

    def _security_not_satisfied(self) -> int:
        return int(str(self._choices.get("security_not_satisfied_sw", "6982")), 16)

    def _pin_key(self, p2: int) -> KeyProfile:
        """P2=80: the key of the current EF; P2=80|SFI: that key directly (docs/card.md §5)."""
        if p2 == 0x80:
            key_id = self._require_current_ef_id()
            key = self._require_application().keys.get(key_id)
            if key is None or key.kind != "pin":
                raise _StatusWordError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
            return key
        if 0x81 <= p2 <= 0x9E:
            application = self._require_application_or(SW.DATA_NOT_FOUND)
            key = application.keys.get(p2 & 0x1F)
            if key is None or key.kind != "pin":
                raise _StatusWordError(SW.DATA_NOT_FOUND)
            return key
        raise _StatusWordError(SW.INCORRECT_P1_P2)

    def _pin_record(self, key: KeyProfile) -> PinRecord:
        return self._state.pins[(self._require_application().name, key.key_id)]


def _sign(key: CardKey, scheme: int, data: bytes, salt_length: int) -> bytes:
    """80 2A P1 schemes of docs/card.md §5.1 (myna-card's probing; P1=00 is the interoperable
    default)."""
    if scheme == 0x00:
        if not 1 <= len(data) <= _PKCS1_MAX_PAYLOAD:
            raise _StatusWordError(SW.WRONG_LENGTH)
        # data as supplied: a DigestInfo, not checked (docs/card.md §5.1)
        return key.sign_pkcs1_v15(data)
    if scheme in (0x02, 0x04) and len(data) != _SHA256_LENGTH:
        raise _StatusWordError(SW.WRONG_LENGTH)
    if scheme in (0x01, 0x03, 0x05) and not 1 <= len(data) <= _MAX_MESSAGE:
        raise _StatusWordError(SW.WRONG_LENGTH)
    if scheme == 0x01:
        return key.sign_pkcs1_v15(hashlib.sha256(data).digest())
    if scheme == 0x02:
        return key.sign_pkcs1_v15(sha256_digest_info(data))
    if scheme == 0x03:
        return key.sign_pkcs1_v15(sha256_digest_info(hashlib.sha256(data).digest()))
    return key.sign_pss_sha256(data, prehashed=scheme == 0x04, salt_length=salt_length)


def _is_extended(raw: bytes) -> bool:
    """Whether the command used the extended length form (ISO 7816-4 §5.1): a 00 byte then
    2-byte length fields, recognisable from the body length."""
    body = raw[4:]
    return len(body) >= 3 and body[0] == 0x00


def _more_data(length: int) -> int:
    """61xx: xx bytes still available, 00 meaning 256 or more (ISO 7816-4 §5.1.3)."""
    return 0x6100 | (min(length, 256) & 0xFF)


def _case_of(raw: bytes) -> int:
    try:
        return CommandApdu.decode(raw).case
    except MynakitError:
        return 1


_INS_GET_RESPONSE = 0xC0

# (proprietary class, INS) -> handler. Proprietary = CLA 80 (JICSAP and JPKI commands,
# docs/card.md §5).
_HANDLERS: dict[tuple[bool, int], Handler] = {
    (False, 0xA4): VirtualCard._select,
    (False, 0xB0): VirtualCard._read_binary,
    (False, 0xB2): VirtualCard._read_record,
    (False, 0x20): VirtualCard._verify,
    (False, 0x24): VirtualCard._change_reference_data,
    (False, 0x84): VirtualCard._get_challenge,
    (False, _INS_GET_RESPONSE): VirtualCard._get_response,
    (True, 0x2A): VirtualCard._compute_signature,
    (True, 0x32): VirtualCard._change_key,
    (True, 0xA2): VirtualCard._terminal_certificate,
}


def presented_atr(profile: CardProfile) -> bytes:
    """The ATR named by the profile's ``[choices] atr`` in its ``[choices.atrs]`` table, or the
    ``[card] atr`` when the profile names none (docs/card.md §1)."""
    choice = profile.choices.get("atr")
    if choice is None:
        return profile.atr
    table = profile.choices.get("atrs", {})
    if not isinstance(table, dict) or choice not in table:
        raise UsageError(
            f"card profile {profile.kind!r}: ATR choice {choice!r} is not one of "
            f"{sorted(table) if isinstance(table, dict) else []}"
        )
    try:
        return bytes.fromhex(str(table[choice]))
    except ValueError:
        raise UsageError(f"card profile {profile.kind!r}: ATR {choice!r} is not hex") from None


_RESELECT_CHOICES = {"clears_verification": False, "keeps_verification": True}


def _reselect_keeps_verification(profile: CardProfile) -> bool:
    choice = str(profile.choices.get("reselect_current_df", "clears_verification"))
    if choice not in _RESELECT_CHOICES:
        raise UsageError(
            f"card profile {profile.kind!r}: reselect_current_df is one of "
            f"{sorted(_RESELECT_CHOICES)}, not {choice!r}"
        )
    return _RESELECT_CHOICES[choice]
