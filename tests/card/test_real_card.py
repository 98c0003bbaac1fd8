"""Read-only checks against a REAL My Number card: run with ``--reader NAME`` (never by default).

Nothing here verifies a PIN or signs: no PIN counter changes. Reading the authentication
certificate needs no PIN on a plastic card (docs/card.md §3.1), and the PIN status is the
empty VERIFY that spends nothing (docs/card.md §7.5).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mynakit.card.detect import CardKind, identify
from mynakit.card.jpki import JpkiAp
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.jpki.certificates import CertificateKind, parse_certificate
from mynakit.jpki.trust import TrustStore
from mynakit.jpki.validation import validate_path
from mynakit.transport.pcsc import PcscConnection

pytestmark = pytest.mark.card


@pytest.fixture(scope="module")
def protocol(request: pytest.FixtureRequest) -> Iterator[ApduProtocol]:
    reader = request.config.getoption("--reader")
    with PcscConnection.open(reader, exclusive=False) as connection:
        yield ApduProtocol(connection, extended_length=connection.extended_length)


def test_the_card_is_a_jpki_card(protocol: ApduProtocol) -> None:
    identity = identify(protocol, b"")
    assert identity.kind is not CardKind.UNKNOWN, "not a JPKI card in that reader"


def test_auth_certificate_is_production_and_chains_to_jlis(protocol: ApduProtocol) -> None:
    session = JpkiAp.open(protocol)
    if session.token().kind is not CardKind.MY_NUMBER_CARD:
        pytest.skip("a smartphone token needs the PIN to read its certificate")
    certificate = parse_certificate(session.read_certificate("auth"))
    assert certificate.kind is CertificateKind.AUTH
    common_name = certificate.subject_common_name
    assert common_name is not None and len(common_name) == 23
    path = validate_path(certificate, TrustStore.jlis(), purpose=CertificateKind.AUTH)
    assert path.is_production


def test_pin_status_spends_nothing(protocol: ApduProtocol) -> None:
    session = JpkiAp.open(protocol)
    first = {status.key_name: status.tries_left for status in session.pin_status()}
    second = {status.key_name: status.tries_left for status in session.pin_status()}
    assert first == second
