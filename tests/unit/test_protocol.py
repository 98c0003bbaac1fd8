"""Exact APDU bytes for each transmission rule of ``ApduProtocol`` (issue: foundation).

The connection here is the suite's ``ScriptedCard`` (tests/support): a fake of the transport
seam that asserts every byte the protocol sends.
"""

from __future__ import annotations

import pytest

from mynakit.iso7816.protocol import ApduProtocol
from mynakit.iso7816.status import ApduError
from support.scripted_card import ScriptedCard

pytestmark = pytest.mark.unit


def test_get_response_after_61xx() -> None:
    card = ScriptedCard(
        [
            ("00B0000000", "01026110"),  # card has 16 more bytes
            ("00C0000010", "AA" * 16 + "6102"),
            ("00C0000002", "BBBB9000"),
        ]
    )
    data = ApduProtocol(card).send(0x00, 0xB0, 0, 0, le=256)
    assert data == bytes.fromhex("0102") + b"\xaa" * 16 + b"\xbb\xbb"
    assert card.done()


def test_a_read_is_resent_with_exact_le_after_6cxx() -> None:
    card = ScriptedCard([("00B0000020", "6C11"), ("00B0000011", "11" * 17 + "9000")])
    assert ApduProtocol(card).send(0x00, 0xB0, 0, 0, le=0x20) == b"\x11" * 17
    assert card.done()


def test_6c00_means_256() -> None:
    card = ScriptedCard([("00B0000001", "6C00"), ("00B0000000", "00" * 256 + "9000")])
    assert len(ApduProtocol(card).send(0x00, 0xB0, 0, 0, le=1)) == 256


def test_chaining_when_lc_does_not_fit_short() -> None:
    data = bytes(range(256)) + bytes(44)  # 300 bytes: 255 + 45
    card = ScriptedCard(
        [
            ("10DA0000FF" + data[:255].hex(), "9000"),
            ("00DA00002D" + data[255:].hex(), "9000"),
        ]
    )
    ApduProtocol(card, extended_length=False).send(0x00, 0xDA, 0, 0, data)
    assert card.done()


def test_chaining_stops_at_the_first_refusal() -> None:
    card = ScriptedCard([("10DA0000FF" + "00" * 255, "6A80")])
    with pytest.raises(ApduError) as raised:
        ApduProtocol(card, extended_length=False).send(0x00, 0xDA, 0, 0, bytes(300))
    assert raised.value.sw == 0x6A80


def test_extended_le_when_supported() -> None:
    card = ScriptedCard([("00B08A00000000", "30" * 1573 + "9000")])
    protocol = ApduProtocol(card, extended_length=True)
    assert protocol.max_response_length == 65536
    assert len(protocol.send(0x00, 0xB0, 0x8A, 0x00, le=65536)) == 1573


def test_extended_lc_when_supported() -> None:
    card = ScriptedCard([("802A008000012C" + "00" * 300 + "0100", "AB" * 256 + "9000")])
    signature = ApduProtocol(card, extended_length=True).send(0x80, 0x2A, 0, 0x80, bytes(300), 256)
    assert signature == b"\xab" * 256


def test_unknown_support_probes_then_falls_back_to_short_for_good() -> None:
    card = ScriptedCard(
        [
            ("00B08A00000000", "6700"),  # reader or card refuses extended length
            ("00B08A0000", "42" * 256 + "9000"),  # same read, short: 256 bytes at most
            ("00B0010000", "43" * 256 + "9000"),  # later long reads go short directly
        ]
    )
    protocol = ApduProtocol(card)
    assert protocol.extended_length is None
    assert protocol.send(0x00, 0xB0, 0x8A, 0x00, le=65536) == b"\x42" * 256
    assert protocol.extended_length is False
    assert protocol.max_response_length == 256
    assert protocol.send(0x00, 0xB0, 0x01, 0x00, le=1000) == b"\x43" * 256
    assert card.done()


def test_unknown_support_learns_extended_works() -> None:
    card = ScriptedCard([("00B08A00000000", "01" * 700 + "9000")])
    protocol = ApduProtocol(card)
    protocol.send(0x00, 0xB0, 0x8A, 0x00, le=65536)
    assert protocol.extended_length is True


def test_extended_known_supported_passes_errors_through() -> None:
    card = ScriptedCard([("00B08A00000000", "6700")])
    with pytest.raises(ApduError) as raised:
        ApduProtocol(card, extended_length=True).send(0x00, 0xB0, 0x8A, 0x00, le=65536)
    assert raised.value.sw == 0x6700


def test_status_words_other_than_9000_raise_with_the_command() -> None:
    card = ScriptedCard([("00200098", "63C2")])
    with pytest.raises(ApduError) as raised:
        ApduProtocol(card).send(0x00, 0x20, 0x00, 0x98)
    assert raised.value.tries_left == 2
    assert "00 20 00 98" in str(raised.value)


def test_a_card_that_never_finishes_61xx_is_stopped() -> None:
    class Endless:
        def transmit(self, command: bytes) -> bytes:
            return bytes.fromhex("006101")

    with pytest.raises(ApduError, match="never finished"):
        ApduProtocol(Endless()).send(0x00, 0xB0, 0, 0, le=1)


# -- commands that carry a secret or change state are never re-sent (docs/card.md §7.6) ------


@pytest.mark.parametrize(
    ("fields", "encoded"),
    [
        # VERIFY with the auth PIN: a resend would spend a second try for one entry.
        ((0x00, 0x20, 0x00, 0x98, b"1234", 4), "00200098043132333404"),
        # CHANGE REFERENCE DATA (ISO) and the JICSAP 80 32 change (docs/card.md §7.12).
        ((0x00, 0x24, 0x01, 0x80, b"5678", 4), "00240180043536373804"),
        ((0x80, 0x32, 0x00, 0x80, b"5678", 4), "80320080043536373804"),
        # COMPUTE DIGITAL SIGNATURE (docs/card.md §5.1).
        ((0x80, 0x2A, 0x00, 0x97, bytes(51), 0x20), "802A009733" + "00" * 51 + "20"),
    ],
)
def test_6cxx_to_a_command_with_a_secret_or_side_effect_is_surfaced_not_resent(
    fields: tuple[int, int, int, int, bytes, int], encoded: str
) -> None:
    card = ScriptedCard([(encoded, "6C10")])
    cla, ins, p1, p2, data, le = fields
    with pytest.raises(ApduError) as raised:
        ApduProtocol(card).send(cla, ins, p1, p2, data, le)
    assert raised.value.sw == 0x6C10
    assert card.sent_hex == [encoded.upper()]  # sent exactly once


def test_extended_refusal_of_a_signature_is_not_resent_short() -> None:
    digest = bytes(300)  # needs extended Lc; the reader's refusal must not cause a second send
    encoded = "802A009700012C" + digest.hex() + "0100"
    card = ScriptedCard([(encoded, "6700")])
    protocol = ApduProtocol(card)
    with pytest.raises(ApduError) as raised:
        protocol.send(0x80, 0x2A, 0x00, 0x97, digest, 256)
    assert raised.value.sw == 0x6700
    assert card.sent_hex == [encoded.upper()]
    assert protocol.extended_length is False  # learned for the reads that follow


def test_61xx_after_a_signature_still_fetches_the_answer() -> None:
    # GET RESPONSE does not repeat the signature: it collects what the card already computed.
    card = ScriptedCard([("802A0097010100", "6180"), ("00C0000080", "AB" * 128 + "9000")])
    assert ApduProtocol(card).send(0x80, 0x2A, 0x00, 0x97, b"\x01", 256) == b"\xab" * 128
    assert card.done()


def test_select_and_get_data_are_repeatable_but_verify_and_proprietary_are_not() -> None:
    from mynakit.iso7816.apdu import CommandApdu
    from mynakit.iso7816.protocol import is_repeatable

    assert is_repeatable(CommandApdu(0x00, 0xA4, 0x04, 0x0C, b"\xd3"))
    assert is_repeatable(CommandApdu(0x00, 0xB0, 0x81, 0x00, le=256))
    assert is_repeatable(CommandApdu(0x00, 0xCA, 0x01, 0x00, le=256))
    assert not is_repeatable(CommandApdu(0x00, 0x20, 0x00, 0x98))
    assert not is_repeatable(CommandApdu(0x80, 0xB0, 0x00, 0x00, le=1))
    assert not is_repeatable(CommandApdu(0x00, 0x84, 0x00, 0x00, le=8))  # GET CHALLENGE


def test_a_transport_error_on_an_extended_signature_is_not_followed_by_a_resend() -> None:
    from mynakit.errors import TransportError

    class FailsExtended:
        def __init__(self) -> None:
            self.sent: list[bytes] = []

        def transmit(self, command: bytes) -> bytes:
            self.sent.append(command)
            raise TransportError("the reader cannot carry this APDU")

    connection = FailsExtended()
    protocol = ApduProtocol(connection)
    with pytest.raises(TransportError):
        protocol.send(0x80, 0x2A, 0x00, 0x97, bytes(300), 256)
    assert len(connection.sent) == 1
    assert protocol.extended_length is False


def test_a_verify_answered_6cxx_is_a_pin_error_saying_it_was_sent_once() -> None:
    from mynakit.card.jpki import JpkiAp
    from mynakit.errors import PinError

    card = ScriptedCard(
        [
            ("00200098", "63C3"),  # the counter, read first
            ("002000980431323334", "6C04"),  # the VERIFY: answered 6C04, and not sent again
        ]
    )
    session = JpkiAp(ApduProtocol(card), select=False)
    with pytest.raises(PinError, match="sent once and not again"):
        session.verify("auth_pin", "1234")
    assert card.done()
