"""One session test body, three connections to the same virtual card: in-process, PC/SC
(pcscd + vpcd) and nfcpy (ISO-DEP over a radio that reaches the card). Each parameter carries
its own tier marker, so the PC/SC one runs in the pcsc tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from mynakit.card.errors import WrongPinError
from mynakit.card.jpki import JpkiAp
from mynakit.card.readout import ReadoutSecrets, standard_readout
from mynakit.card.text import TextAp
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.personas import Persona
from mynakit.jpki.certificates import parse_certificate
from mynakit.transport.base import Connection
from mynakit.transport.in_process import InProcessConnection
from mynakit.transport.limits import protocol_for
from mynakit.transport.nfc import NfcConnection
from support.nfc_radio import VirtualCardRadio, frontend_with

TRANSPORTS = [
    pytest.param("in-process", marks=pytest.mark.emulator),
    pytest.param("nfc", marks=pytest.mark.emulator),
    pytest.param("pcsc", marks=pytest.mark.pcsc),
]


@pytest.fixture(params=TRANSPORTS)
def connection(request: pytest.FixtureRequest, virtual_card: VirtualCard) -> Iterator[Connection]:
    kind = request.param
    if kind == "pcsc":
        opened: Connection = request.getfixturevalue("pcsc_connection")
        yield opened  # the fixture closes it
        return
    if kind == "nfc":
        opened = NfcConnection.on_frontend(frontend_with(VirtualCardRadio(virtual_card)))
    else:
        opened = InProcessConnection(virtual_card)
    try:
        yield opened
    finally:
        opened.close()


def test_standard_readout(connection: Connection, persona: Persona) -> None:
    secrets = ReadoutSecrets(persona.auth_pin, persona.sign_password, persona.text_pin)
    readout = standard_readout(protocol_for(connection), secrets)
    assert not readout.skipped
    assert readout.files["text/my_number"] == 17
    assert readout.files["visual/card_face"] > 1000
    assert readout.tries_left["jpki/auth_pin"] == 3


def test_identity_and_signature(connection: Connection, persona: Persona) -> None:
    protocol = protocol_for(connection)
    jpki = JpkiAp.open(protocol)
    jpki.verify_auth_pin(persona.auth_pin)
    signature = jpki.sign_digest("auth", "sha256", bytes(range(32)))
    key = parse_certificate(jpki.read_certificate("auth")).certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signature, bytes(range(32)), padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    text = TextAp(protocol)
    assert text.my_number(persona.text_pin) == persona.my_number
    assert text.basic_info().name == persona.basic_info.name


def test_wrong_pin_spends_one_try(connection: Connection, persona: Persona) -> None:
    jpki = JpkiAp.open(protocol_for(connection))
    wrong = "0000" if persona.auth_pin != "0000" else "1111"
    with pytest.raises(WrongPinError) as error:
        jpki.verify_auth_pin(wrong)
    assert error.value.tries_left == 2
    jpki.verify_auth_pin(persona.auth_pin)
    assert jpki.pin_status()[0].tries_left == 3
