"""The nfcpy connection: ISO 14443-4 Type B through a reader's own USB interface, for readers
with no PC/SC driver. The Sony RC-S380 has none on Linux (docs/readers.md §2: "no Linux PC/SC
driver", usable only through libusb stacks such as nfcpy), so ``--reader nfc:usb`` (or
``nfc:usb:054c:06c1``) reaches the card this way. nfcpy does not drive the RC-S300 (a different
chip); that reader works through pcscd and libccid.

nfcpy activates the card (ATTRIB) and runs the ISO-DEP block protocol, chaining frames both
ways, so APDUs of any length pass: the limit is the card's. The ATR is the one a PC/SC part 3
reader synthesises from ATQB, for diagnostics only: the card is identified by SELECT and the
token file (docs/card.md §7.1).

nfcpy is the optional extra ``nfc`` (``pip install mynakit[nfc]``); it is imported only here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from functools import reduce
from typing import Any, Final

from mynakit.errors import TransportError, UsageError
from mynakit.transport.base import (
    CardRemovedError,
    NoCardError,
    NoReaderError,
    require_command_apdu,
)
from mynakit.transport.limits import ReaderLimits
from mynakit.transport.readers import CardEvent, CardEventKind

logger = logging.getLogger("mynakit.transport.nfc")

NFC_PREFIX: Final = "nfc:"
DEFAULT_PATH: Final = "usb"
TYPE_B_106: Final = "106B"
# docs/card.md §1: RSA signatures over NFC need a long frame waiting time; the one published
# figure is a 5 s timeout around 80 2A.
COMMAND_TIMEOUT_SECONDS: Final = 5.0
# PC/SC part 3 §3.1.3.2.3: the ATR of a contactless Type B card is 3B 88 80 01, then ATQB's
# application data (4 bytes) and protocol info (3 bytes), then MBLI | 0, then TCK.
_ATR_PREFIX: Final = bytes.fromhex("3B888001")


def _nfc_module() -> Any:
    try:
        import nfc
        import nfc.clf
        import nfc.tag
    except ImportError as error:
        raise UsageError(
            "nfc readers need nfcpy: pip install 'mynakit[nfc]' (and a udev rule giving your user "
            "the reader's USB device)"
        ) from error
    return nfc


def nfc_path(reader: str) -> str:
    """The nfcpy device path of ``--reader nfc:usb[:VID:PID]``."""
    path = reader.removeprefix(NFC_PREFIX) or DEFAULT_PATH
    parts = path.split(":")
    if parts[0] != "usb" or len(parts) not in (1, 2, 3):
        raise UsageError(f"{reader!r}: use nfc:usb or nfc:usb:VID:PID (e.g. nfc:usb:054c:06c1)")
    return path


def synthesised_atr(sensb_res: bytes, mbli: int = 0) -> bytes:
    """The PC/SC part 3 ATR for a Type B card whose SENSB_RES (ATQB) is ``sensb_res``."""
    if len(sensb_res) < 12:
        raise TransportError(f"the card's ATQB has {len(sensb_res)} bytes, not 12")
    body = _ATR_PREFIX[1:] + sensb_res[5:12] + bytes(((mbli & 0x0F) << 4,))
    return _ATR_PREFIX[:1] + body + bytes((reduce(lambda a, b: a ^ b, body, 0),))


def open_frontend(path: str = DEFAULT_PATH) -> Any:
    """nfcpy's ``ContactlessFrontend`` on ``path``; no reader there raises ``NoReaderError``."""
    nfc = _nfc_module()
    try:
        return nfc.ContactlessFrontend(path)
    except OSError as error:
        raise NoReaderError(
            f"no NFC reader at {path!r} ({error}): plug in the RC-S380, and give your user "
            "access to its USB device (nfcpy's udev rule), or check with `python -m nfc`"
        ) from error


def wait_for_tag(frontend: Any, timeout: float | None) -> Any | None:
    """The activated Type B card on ``frontend``, or ``None`` after ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    options = {
        "targets": [TYPE_B_106],
        "on-connect": lambda tag: False,  # hand the tag back at once, do not wait for removal
        "beep-on-connect": False,
        "iterations": 1,
        "interval": 0.1,
    }
    while True:
        rounds = 0

        def after_one_round() -> bool:
            nonlocal rounds
            rounds += 1
            return rounds > 1

        tag = frontend.connect(rdwr=options, terminate=after_one_round)
        if tag is not None and hasattr(tag, "transceive"):
            return tag
        if deadline is not None and time.monotonic() >= deadline:
            return None
        time.sleep(0.05)  # no card yet: poll gently


class NfcConnection:
    """A ``Connection`` to the card on an nfcpy reader (the two-method seam: transmit, close)."""

    def __init__(self, frontend: Any, tag: Any, reader_name: str) -> None:
        self._frontend: Any | None = frontend
        self._tag: Any | None = tag
        self._reader_name = reader_name
        self._atr = synthesised_atr(bytes(tag.target.sensb_res))

    @classmethod
    def open(cls, reader: str = NFC_PREFIX + DEFAULT_PATH, *, timeout: float = 10.0) -> Any:
        """Open the reader named by ``nfc:usb[:VID:PID]`` and wait ``timeout`` s for a card."""
        path = nfc_path(reader)
        frontend = open_frontend(path)
        try:
            return cls.on_frontend(frontend, reader_name=f"{NFC_PREFIX}{path}", timeout=timeout)
        except BaseException:
            frontend.close()
            raise

    @classmethod
    def on_frontend(
        cls, frontend: Any, *, reader_name: str = "nfc", timeout: float | None = 10.0
    ) -> NfcConnection:
        """A connection to the card on an already open ``ContactlessFrontend``."""
        tag = wait_for_tag(frontend, timeout)
        if tag is None:
            raise NoCardError(
                f"no card on {reader_name!r}: place the My Number card flat on the reader and "
                "keep it still"
            )
        return cls(frontend, tag, reader_name)

    @property
    def atr(self) -> bytes:
        return self._atr

    @property
    def reader_name(self) -> str:
        return self._reader_name

    @property
    def limits(self) -> ReaderLimits:
        # ISO-DEP chaining in nfcpy carries any APDU length (ISO/IEC 14443-4 §7.5.2).
        return ReaderLimits(max_apdu_data=0x10000, source="ISO-DEP chaining (nfcpy)")

    @property
    def extended_length(self) -> bool | None:
        return True

    def transmit(self, command: bytes) -> bytes:
        require_command_apdu(command)
        tag = self._require_tag()
        nfc = _nfc_module()
        try:
            response = tag.transceive(bytearray(command), timeout=COMMAND_TIMEOUT_SECONDS)
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as error:
            if not self.card_present():
                raise CardRemovedError(
                    f"the card left {self._reader_name!r} during the operation: place it again "
                    "and start the operation again"
                ) from error
            raise TransportError(
                f"the exchange with the card on {self._reader_name!r} failed ({error}): keep the "
                "card still on the reader and retry"
            ) from error
        if response is None or len(response) < 2:
            raise TransportError(f"{self._reader_name!r} returned no response APDU")
        return bytes(response)

    def card_present(self) -> bool:
        """Whether the card still answers (an ISO-DEP presence check, R(NAK))."""
        tag = self._tag
        return bool(tag is not None and tag.is_present)

    def reset(self, *, cold: bool = False) -> bytes:
        """Contactless cards have no reset line: switch the field off and activate the card
        again, which puts it back in its power-on state (ISO/IEC 14443-3)."""
        frontend = self._require_frontend()
        tag = wait_for_tag(frontend, timeout=1.0)
        if tag is None:
            raise CardRemovedError(f"the card left {self._reader_name!r}")
        self._tag = tag
        self._atr = synthesised_atr(bytes(tag.target.sensb_res))
        return self._atr

    def events(
        self, *, stop: Callable[[], bool] = lambda: False, poll_seconds: float = 0.1
    ) -> Iterator[CardEvent]:
        """Card presence and removal on this reader: yields CARD_REMOVED when the card leaves
        and CARD_INSERTED (with its ATR) when one arrives, until ``stop()`` is true."""
        frontend = self._require_frontend()
        while not stop():
            if self._tag is not None:
                if self.card_present():
                    time.sleep(poll_seconds)
                    continue
                self._tag = None
                yield CardEvent(CardEventKind.CARD_REMOVED, self._reader_name)
                continue
            tag = wait_for_tag(frontend, timeout=poll_seconds)
            if tag is not None:
                self._tag = tag
                self._atr = synthesised_atr(bytes(tag.target.sensb_res))
                yield CardEvent(CardEventKind.CARD_INSERTED, self._reader_name, self._atr)

    def close(self) -> None:
        frontend, self._frontend = self._frontend, None
        self._tag = None
        if frontend is not None:
            try:
                frontend.close()
            except OSError as error:  # the reader may be unplugged already
                logger.debug("closing the NFC frontend: %s", error)

    def _require_frontend(self) -> Any:
        if self._frontend is None:
            raise TransportError(f"the connection to {self._reader_name!r} is closed")
        return self._frontend

    def _require_tag(self) -> Any:
        self._require_frontend()
        if self._tag is None:
            raise CardRemovedError(f"no card on {self._reader_name!r}: place the card again")
        return self._tag

    def __enter__(self) -> NfcConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
