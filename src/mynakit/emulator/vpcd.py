"""The vpcd bridge: puts a virtual card into pcscd through vsmartcard's ``vpcd`` reader driver.

vpcd is a pcscd reader driver that listens on TCP (127.0.0.1:35963 for ``Virtual PCD 00 00``,
35964 for ``Virtual PCD 00 01``) and forwards everything a PC/SC application does with that
reader to the one card program connected there. The bridge is that card program: it connects as
the TCP client and answers vpcd's messages from a card object (docs/testing.md §5.1):

- every message, both ways, is a 2-byte big-endian length followed by that many bytes;
- a 1-byte message is a control request: ``00`` power off, ``01`` power on, ``02`` reset,
  ``04`` get ATR. Only get-ATR is answered (with the ATR); the others get no reply;
- a longer message is a command APDU, answered with the response APDU (data ‖ SW1 SW2);
- an empty reply, or a closed socket, makes vpcd eject the card: closing the socket is how the
  bridge pulls the card out of the reader, so an empty payload is never sent.

Latency: vpcd writes the length and the payload in separate segments; with delayed ACK on our
side each APDU then stalls about 48 ms. Setting ``TCP_QUICKACK`` before every receive (Linux
resets it after each ACK) brings the round trip to about 95 µs (docs/testing.md §4).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Protocol, runtime_checkable

from mynakit.errors import DataError, TransportError, UsageError
from mynakit.transport.base import CardRemovedError
from mynakit.transport.trace import TRAFFIC

logger = logging.getLogger("mynakit.emulator.vpcd")

DEFAULT_HOST = "127.0.0.1"
#: vpcd's first slot (``#define VPCDPORT 35963``, 0x8C7B); slot n listens on this port + n.
DEFAULT_PORT = 35963
VPCD_SLOT_COUNT = 2

CONTROL_POWER_OFF = 0x00
CONTROL_POWER_ON = 0x01
CONTROL_RESET = 0x02
CONTROL_GET_ATR = 0x04

CARD_INTERNAL_ERROR = b"\x6f\x00"

_LENGTH = struct.Struct("!H")
MAX_PAYLOAD = 0xFFFF  # vpcd's sendToVICC refuses longer messages (docs/testing.md §5.1)
#: Seconds between attempts to reach vpcd while it is not listening (pcscd not up yet).
RECONNECT_INTERVAL = 0.2
#: vpcd notices a closed link only at pcscd's next presence poll (every 0.4 s,
#: docs/testing.md §5.1). A card put back sooner would be accepted in the same poll and pcscd would
#: never report the removal, so the bridge keeps a re-inserted card out this long after a removal.
REMOVAL_SETTLE_SECONDS = 0.5


class VpcdCard(Protocol):
    """What the bridge needs from a card: ``mynakit.emulator.card_os.VirtualCard`` fits.

    ``execute`` may raise ``CardRemovedError`` (fault injection: the card leaves mid-command).
    """

    @property
    def atr(self) -> bytes: ...

    def execute(self, command: bytes) -> bytes: ...

    def reset(self) -> None: ...

    def power_up(self) -> None: ...

    def power_down(self) -> None: ...


@runtime_checkable
class Reinsertable(Protocol):
    """A card that remembers being pulled out (``VirtualCard`` after a removal fault)."""

    @property
    def removed(self) -> bool: ...

    def reinsert(self) -> None: ...


class VpcdProtocolError(DataError):
    """vpcd sent something outside its protocol, or the card gave an answer vpcd cannot carry."""


class VpcdConnectionClosedError(TransportError):
    """The TCP link to vpcd closed (pcscd stopped, vpcd ejected the card, or we pulled it)."""


def vpcd_reader_name(port: int = DEFAULT_PORT) -> str:
    """The PC/SC reader name pcscd gives the vpcd slot on ``port``.

    pcsc-lite names readers ``"%s %02X %02lX"`` (friendly name, reader index, slot), and vpcd's
    slot n listens on 35963 + n (docs/testing.md §5.2). The reader index is 00 when vpcd is the only
    configured reader driver, as on a test machine.
    """
    slot = port - DEFAULT_PORT
    if not 0 <= slot < VPCD_SLOT_COUNT:
        raise UsageError(
            f"vpcd listens on ports {DEFAULT_PORT}..{DEFAULT_PORT + VPCD_SLOT_COUNT - 1}, "
            f"not {port}"
        )
    return f"Virtual PCD 00 {slot:02X}"


# --- framing (pure functions over a socket; unit-tested with a socketpair) --------------------


def _quick_ack(sock: socket.socket) -> None:
    # Only TCP has delayed ACKs; a socketpair (unit tests) has nothing to set.
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    """Read exactly ``size`` bytes, looping over short reads (TCP may split any message).

    Raises ``VpcdConnectionClosedError`` if the peer closes before all bytes have arrived.
    """
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        _quick_ack(sock)  # docs/testing.md: the option resets itself, so before every recv
        chunk = sock.recv(remaining)
        if not chunk:
            raise VpcdConnectionClosedError(
                f"vpcd closed the connection with {remaining} of {size} bytes unread"
            )
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def receive_message(sock: socket.socket) -> bytes:
    """Read one length-prefixed message from vpcd."""
    (length,) = _LENGTH.unpack(receive_exactly(sock, _LENGTH.size))
    if length == 0:
        raise VpcdProtocolError("vpcd sent an empty message")
    return receive_exactly(sock, length)


def encode_message(payload: bytes) -> bytes:
    """Length-prefix ``payload``; refuses what vpcd would take as an eject (empty) or reject."""
    if not payload:
        raise VpcdProtocolError("refusing to send vpcd an empty message (vpcd would eject)")
    if len(payload) > MAX_PAYLOAD:
        raise VpcdProtocolError(
            f"a {len(payload)}-byte message does not fit vpcd's 2-byte length (max {MAX_PAYLOAD})"
        )
    return _LENGTH.pack(len(payload)) + payload


def answer_message(card: VpcdCard, message: bytes) -> bytes | None:
    """What the card answers to one vpcd message, or ``None`` for control messages with no reply.

    ``CardRemovedError`` from the card propagates: the caller closes the socket.
    """
    if len(message) == 1:
        control = message[0]
        if control == CONTROL_GET_ATR:
            # pcscd polls presence with get-ATR every 0.4 s: log below DEBUG (docs/testing.md §5.1).
            logger.log(TRAFFIC, "vpcd: get ATR")
            return card.atr
        if control == CONTROL_POWER_ON:
            logger.debug("vpcd: power on")
            card.power_up()
        elif control == CONTROL_POWER_OFF:
            logger.debug("vpcd: power off")
            card.power_down()
        elif control == CONTROL_RESET:
            logger.debug("vpcd: reset")
            card.reset()
        else:
            raise VpcdProtocolError(f"vpcd sent unknown control byte {control:02X}")
        return None
    try:
        response = card.execute(message)
    except CardRemovedError:
        raise
    except Exception:
        # A bug in the card program must not take the reader down with it: answer as a card
        # with an internal error would (6F00, ISO 7816-4 "no precise diagnosis").
        logger.exception("vpcd: the card failed on APDU %s", message[:4].hex(" ").upper())
        return CARD_INTERNAL_ERROR
    if len(response) < 2:
        # vpcd would take a short (or empty) answer as the card leaving (docs/testing.md §5.1).
        logger.error("vpcd: the card answered %d bytes, not a response APDU", len(response))
        return CARD_INTERNAL_ERROR
    # Headers and lengths only: the data may hold a PIN (docs/architecture.md §6).
    logger.log(
        TRAFFIC,
        "vpcd: APDU %s (%d bytes) -> SW %s (%d bytes)",
        message[:4].hex(" ").upper(),
        len(message),
        response[-2:].hex().upper(),
        len(response),
    )
    return response


def serve_connection(sock: socket.socket, card: VpcdCard) -> None:
    """Answer vpcd on ``sock`` until the connection closes (``VpcdConnectionClosedError``)."""
    while True:
        message = receive_message(sock)
        reply = answer_message(card, message)
        if reply is not None:
            # One sendall per message so length and payload leave in one segment.
            sock.sendall(encode_message(reply))


# --- the bridge --------------------------------------------------------------------------------


class VpcdBridge:
    """Serves a card to vpcd on ``host:port``, reconnecting whenever vpcd drops the link.

    ``start()`` runs it on a daemon thread, ``serve_forever()`` in the calling thread; ``stop()``
    ends either. ``remove_card()`` closes the socket, which pcscd sees as the card being pulled,
    and ``insert_card(card)`` puts a card (the same or another) back. A card whose ``execute``
    raises ``CardRemovedError`` is pulled the same way, in the middle of the command.
    """

    def __init__(
        self,
        card: VpcdCard | None,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        reconnect_interval: float = RECONNECT_INTERVAL,
    ) -> None:
        if not 0 < port < 65536:
            raise UsageError(f"not a TCP port: {port}")
        self.host = host
        self.port = port
        self.reconnect_interval = reconnect_interval
        self._card = card
        self._socket: socket.socket | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._state = threading.Condition()
        self._connected = False
        self._removed_at: float | None = None
        #: Increments on every new TCP connection to vpcd (tests wait on it).
        self.connection_count = 0

    @property
    def card(self) -> VpcdCard | None:
        """The card in the reader, ``None`` while it is pulled out."""
        with self._state:
            return self._card

    @property
    def connected(self) -> bool:
        """Whether the bridge holds a TCP connection to vpcd right now."""
        with self._state:
            return self._connected

    @property
    def reader_name(self) -> str:
        return vpcd_reader_name(self.port)

    def start(self) -> None:
        """Serve on a background thread; returns at once."""
        with self._state:
            if self._thread is not None and self._thread.is_alive():
                raise UsageError("the vpcd bridge is already running")
            self._stopping = False
            self._thread = threading.Thread(
                target=self.serve_forever, name=f"vpcd-bridge-{self.port}", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Pull the card, stop serving, and wait for the background thread to end."""
        with self._state:
            self._stopping = True
            self._close_socket_locked()
            self._state.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def remove_card(self) -> None:
        """Pull the card out: close the link, so pcscd reports the reader empty."""
        with self._state:
            self._card = None
            self._close_socket_locked()
            self._state.notify_all()
        logger.info("vpcd bridge: card removed from %s", self.reader_name)

    def insert_card(self, card: VpcdCard) -> None:
        """Put ``card`` into the reader (replacing any card there). A card pulled out by a
        removal fault is reinserted first, as a person would push it back in."""
        if isinstance(card, Reinsertable) and card.removed:
            card.reinsert()
        with self._state:
            self._close_socket_locked()
            self._card = card
            self._state.notify_all()
        logger.info("vpcd bridge: card inserted into %s", self.reader_name)

    def wait_connected(self, timeout: float) -> bool:
        """Wait until the bridge is connected to vpcd; ``False`` on timeout."""
        with self._state:
            return self._state.wait_for(lambda: self._connected or self._stopping, timeout)

    def serve_forever(self) -> None:
        """Connect to vpcd and answer it until ``stop()``; reconnects when vpcd drops the link."""
        announced_waiting = False
        while True:
            with self._state:
                self._state.wait_for(lambda: self._stopping or self._card is not None)
                if self._stopping:
                    return
                card = self._card
                if self._removed_at is not None:
                    settle_until = self._removed_at + REMOVAL_SETTLE_SECONDS
                    self._state.wait_for(
                        lambda: self._stopping, max(0.0, settle_until - time.monotonic())
                    )
                    if self._stopping:
                        return
            assert card is not None
            try:
                sock = socket.create_connection((self.host, self.port), timeout=2.0)
            except OSError as error:
                if not announced_waiting:
                    logger.info(
                        "vpcd bridge: waiting for vpcd on %s:%d (%s); is pcscd running with "
                        "vsmartcard-vpcd?",
                        self.host,
                        self.port,
                        error,
                    )
                    announced_waiting = True
                with self._state:
                    self._state.wait_for(lambda: self._stopping, self.reconnect_interval)
                continue
            announced_waiting = False
            sock.settimeout(None)
            # NODELAY for our replies; QUICKACK (set before each recv) for vpcd's split writes.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._state:
                if self._stopping or self._card is not card:
                    sock.close()  # stopped or card swapped while we were connecting
                    continue
                self._socket = sock
                self._connected = True
                self.connection_count += 1
                self._state.notify_all()
            logger.info("vpcd bridge: connected to vpcd at %s:%d", self.host, self.port)
            self._serve_one_connection(sock, card)

    def _serve_one_connection(self, sock: socket.socket, card: VpcdCard) -> None:
        try:
            serve_connection(sock, card)
        except CardRemovedError:
            logger.info("vpcd bridge: the card left the reader in the middle of a command")
            with self._state:
                if self._card is card:
                    self._card = None
                self._removed_at = time.monotonic()
        except (VpcdConnectionClosedError, OSError) as error:
            # vpcd dropped us (pcscd restarted, or it ejected the card), or remove_card/stop
            # closed the socket from another thread: the loop reconnects if a card is still in.
            logger.debug("vpcd bridge: connection ended: %s", error)
            with self._state:
                self._removed_at = time.monotonic()
        except VpcdProtocolError as error:
            logger.warning("vpcd bridge: %s; dropping the connection", error)
        finally:
            with self._state:
                if self._socket is sock:
                    self._socket = None
                self._connected = False
                self._state.notify_all()
            sock.close()

    def _close_socket_locked(self) -> None:
        if self._socket is not None:
            self._removed_at = time.monotonic()
            # shutdown() wakes a recv() blocked in the serving thread; close() alone does not.
            with contextlib.suppress(OSError):  # already closed by the peer
                self._socket.shutdown(socket.SHUT_RDWR)
            self._socket = None

    def __enter__(self) -> VpcdBridge:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(
    card_name: str,
    base_dir: Path,
    port: int = DEFAULT_PORT,
    *,
    host: str = DEFAULT_HOST,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve the stored virtual card ``card_name`` to pcscd until SIGINT or SIGTERM.

    This is what ``mynakit emulator serve NAME`` runs. ``announce`` receives one-line progress
    messages for the user (the CLI writes them to stderr).
    """
    from mynakit.emulator.state import load_card  # the emulator's persistent card store

    card = load_card(base_dir, card_name)
    reader_name = vpcd_reader_name(port)
    bridge = VpcdBridge(card, host, port)
    finished = threading.Event()

    def request_stop(signal_number: int, frame: FrameType | None) -> None:
        finished.set()

    previous_handlers = {
        signal_number: signal.signal(signal_number, request_stop)
        for signal_number in (signal.SIGINT, signal.SIGTERM)
    }
    bridge.start()
    try:
        if announce is not None:
            announce(
                f"serving card {card_name!r} in reader {reader_name!r} "
                f"(vpcd at {host}:{port}); press Ctrl-C to remove it"
            )
            if not bridge.wait_connected(timeout=2.0):
                announce(
                    f"vpcd is not listening on {host}:{port} yet: start pcscd with the "
                    "vsmartcard-vpcd driver installed (the card goes in as soon as it is up)"
                )
        # Event.wait with a timeout keeps the main thread responsive to signals.
        while not finished.wait(0.5):
            pass
    finally:
        bridge.stop()
        for signal_number, handler in previous_handlers.items():
            signal.signal(signal_number, handler)
        if announce is not None:
            announce(f"card {card_name!r} removed from {reader_name!r}")
