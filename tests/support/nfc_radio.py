"""A virtual card on the air: an nfcpy device driver whose radio reaches a ``VirtualCard``.

nfcpy's ``ContactlessFrontend`` talks to a driver (``nfc.clf.device.Device``: sense, exchange
frames, frame sizes); this one plays the PICC side of ISO/IEC 14443-3 Type B (SENSB_RES, ATTRIB)
and 14443-4 (I-blocks with chaining both ways, R(ACK), R(NAK) presence checks, S(DESELECT)), and
passes each reassembled APDU to the card. Everything above it is nfcpy's own code (sensing,
activation, the ISO-DEP initiator) and mynakit's ``NfcConnection``: the radio is fake, the card
is real (the virtual card).
"""

from __future__ import annotations

from typing import Any

import nfc.clf

from mynakit.emulator.card_os import VirtualCard

# SENSB_RES (ATQB): 50, PUPI, application data, protocol info. Application data and protocol
# info as in a documented My Number card ATR (docs/card.md §1, JPKI (06)): FSCI 8 (256-byte
# frames), ISO 14443-4 compliant, FWI 10.
PUPI = bytes.fromhex("1A2B3C4D")
APPLICATION_DATA = bytes.fromhex("000005E0")
PROTOCOL_INFO = bytes.fromhex("B381A1")
SENSB_RES = b"\x50" + PUPI + APPLICATION_DATA + PROTOCOL_INFO
EXPECTED_ATR = bytes.fromhex("3B888001000005E0B381A1007F")
MAX_FRAME = 256  # FSD from ATTRIB param 2 (08) and the card's FSC
_PCB_I_BLOCK = 0x02
_PCB_CHAINING = 0x10
_PCB_R_ACK = 0xA2
_PCB_R_NAK = 0xB2
_PCB_S_DESELECT = 0xC2
_ATTRIB = 0x1D


class VirtualCardRadio:
    """An nfcpy driver with ``card`` in its field (``remove()``/``insert()`` move it)."""

    def __init__(self, card: VirtualCard | None) -> None:
        self.card = card
        self.frames: list[bytes] = []  # every frame the reader sent, for the tests
        self.apdus: list[bytes] = []
        self._powered = False
        self._command = b""
        self._pending: list[bytes] = []

    # -- the card moves ---------------------------------------------------------------------

    def remove(self) -> None:
        self.card = None
        self._powered = False

    def insert(self, card: VirtualCard) -> None:
        self.card = card
        self._powered = False

    # -- nfc.clf.device.Device --------------------------------------------------------------

    def mute(self) -> None:
        self._powered = False  # RF field off: the card loses power

    def sense_tta(self, target: Any) -> None:
        return None

    def sense_ttf(self, target: Any) -> None:
        return None

    def sense_dep(self, target: Any) -> None:
        return None

    def sense_ttb(self, target: Any) -> Any:
        if self.card is None:
            return None
        if not self._powered:
            self.card.reset()  # field on: power-on state (ISO/IEC 14443-3)
            self._powered = True
        self._command = b""
        self._pending = []
        return nfc.clf.RemoteTarget(target.brty, sensb_res=bytearray(SENSB_RES))

    def get_max_send_data_size(self, target: Any) -> int:
        return 290  # the RC-S380 (port100 driver) frame buffer

    def get_max_recv_data_size(self, target: Any) -> int:
        return 290

    def turn_on_led_and_buzzer(self) -> None:
        pass

    def turn_off_led_and_buzzer(self) -> None:
        pass

    def close(self) -> None:
        self.card = None

    def send_cmd_recv_rsp(self, target: Any, data: bytearray, timeout: float) -> bytearray:
        if self.card is None or not self._powered:
            raise nfc.clf.TimeoutError("no card in the field")
        frame = bytes(data)
        self.frames.append(frame)
        return bytearray(self._answer(frame))

    # -- the PICC side of ISO/IEC 14443-4 ---------------------------------------------------

    def _answer(self, frame: bytes) -> bytes:
        pcb = frame[0]
        block = pcb & 0x01
        if pcb == _ATTRIB:
            if frame[1:5] != PUPI or frame[6] & 0x0F != 0x08:
                raise nfc.clf.ProtocolError("ATTRIB for another card or FSD")
            return b"\x00"  # MBLI 0, CID 0
        if pcb & 0xE2 == _PCB_I_BLOCK:
            self._command += frame[1:]
            if pcb & _PCB_CHAINING:
                return bytes((_PCB_R_ACK | block,))
            command, self._command = self._command, b""
            self.apdus.append(command)
            assert self.card is not None
            response = self.card.execute(command)
            size = MAX_FRAME - 3  # PCB and CRC
            self._pending = [response[i : i + size] for i in range(0, len(response), size)]
            return self._next_block(block)
        if pcb & 0xF6 == _PCB_R_ACK and self._pending:
            return self._next_block(block)
        if pcb & 0xF6 == _PCB_R_NAK:
            return bytes((_PCB_R_ACK | block,))  # presence check: the card is here
        if pcb == _PCB_S_DESELECT:
            self._powered = False
            return bytes((_PCB_S_DESELECT,))
        raise nfc.clf.ProtocolError(f"unexpected PCB {pcb:02X}")

    def _next_block(self, block: int) -> bytes:
        chunk = self._pending.pop(0)
        chaining = _PCB_CHAINING if self._pending else 0
        return bytes((_PCB_I_BLOCK | chaining | block,)) + chunk


def frontend_with(radio: VirtualCardRadio) -> Any:
    """nfcpy's real ``ContactlessFrontend`` driving ``radio`` instead of a USB chip."""
    frontend = nfc.ContactlessFrontend()
    frontend.device = radio
    return frontend
