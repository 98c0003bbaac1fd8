"""The eligibility check with the virtual cards inside pcscd (vpcd), as a counter terminal on
a real PC/SC stack runs it: every validity code, a revoked and a renewed certificate, face
confirmation, a blocked PIN (no VERIFY sent) and a card pulled mid-PIN (no check recorded)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography import x509

from mynakit.card.errors import PinBlockedError
from mynakit.card.jpki import JpkiAp
from mynakit.emulator.faults import Faults
from mynakit.emulator.ocsp_server import OcspServer
from mynakit.emulator.pcscd import VPCD_READER, PcscdSession, card_in_virtual_reader
from mynakit.emulator.state import renew_card_certificate
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.jpki.authentication import card_respond
from mynakit.jpki.trust import TrustStore
from mynakit.services.eligibility.assembly import build_service
from mynakit.services.eligibility.codes import (
    IdentityConfirmationMethod,
    QualificationValidity,
    ResultErrorCode,
)
from mynakit.services.eligibility.core import EligibilityService
from mynakit.services.eligibility.models import (
    CardCheckRequest,
    CheckResult,
    FaceConfirmation,
    PinAuthentication,
    RegistrationRequest,
)
from mynakit.services.issuer_link.http import HttpIssuerLink
from mynakit.services.store import Database, sqlite_url
from mynakit.transport.base import CardRemovedError
from mynakit.transport.pcsc import PcscConnection
from support.eligibility_world import (
    CHECK_DAY,
    INSTITUTION,
    EligibilityWorld,
    RecordingConnection,
    population,
    query_for,
)

pytestmark = pytest.mark.pcsc


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> EligibilityWorld:
    return EligibilityWorld.create(tmp_path_factory.mktemp("pcsc-world"))


@pytest.fixture(scope="module")
def service(
    world: EligibilityWorld, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EligibilityService]:
    database = Database.open(
        sqlite_url(tmp_path_factory.mktemp("pcsc-db") / "e.sqlite3"), chains=["eligibility"]
    )
    with OcspServer(world.issuer) as responder:
        service = build_service(
            database,
            TrustStore().with_sandbox(world.issuer.directory),
            revocation="ocsp",
            serial_link=HttpIssuerLink(responder.url),
            card_ca=world.card_ca(),
        )
        service.load_records(population())
        yield service
    database.dispose()


def _through_pcscd(
    world: EligibilityWorld, scenario: str, faults: Faults | None = None
) -> Iterator[PcscConnection]:
    with (
        card_in_virtual_reader(world.card(scenario, faults=faults)),
        PcscConnection.open(VPCD_READER) as connection,
    ):
        yield connection


def register(
    service: EligibilityService, world: EligibilityWorld, scenario: str, *, face: bool = False
) -> None:
    for connection in _through_pcscd(world, scenario):
        challenge = service.begin_presence()
        presence = world.prove_presence(scenario, challenge, connection) if face else None
        answer = world.respond(scenario, service.begin_authentication(), connection)
        service.register(RegistrationRequest(answer, query_for(scenario), presence))


def check(service: EligibilityService, world: EligibilityWorld, scenario: str) -> CheckResult:
    for connection in _through_pcscd(world, scenario):
        answer = world.respond(scenario, service.begin_authentication(), connection)
    return service.check_by_card(
        CardCheckRequest(INSTITUTION, PinAuthentication(answer), confirmation_date=CHECK_DAY)
    )


@pytest.mark.parametrize(
    ("scenario", "validity"),
    [
        ("valid", QualificationValidity.VALID),
        ("expired", QualificationValidity.INVALID),
        ("newer", QualificationValidity.INVALID_NEWER_EXISTS),
        ("none", QualificationValidity.NO_QUALIFICATION),
        ("several", QualificationValidity.SEVERAL),
    ],
)
def test_validity_through_pcscd(
    pcscd: PcscdSession,
    service: EligibilityService,
    world: EligibilityWorld,
    scenario: str,
    validity: QualificationValidity,
) -> None:
    register(service, world, scenario)
    result = check(service, world, scenario)
    assert result.accepted and result.validity is validity


def test_revoked_and_renewed_through_pcscd(
    pcscd: PcscdSession, service: EligibilityService, world: EligibilityWorld
) -> None:
    register(service, world, "revoked")
    world.issuer.revoke(world.serial("revoked"), x509.ReasonFlags.key_compromise)
    refused = check(service, world, "revoked")
    assert refused.header.error_code is ResultErrorCode.CERTIFICATE_REVOKED
    assert refused.refusal_reason == "revoked"

    register(service, world, "renewed", face=True)
    renew_card_certificate(world.cards, "renewed", "auth", world.issuer)
    renewed = check(service, world, "renewed")
    assert renewed.validity is QualificationValidity.VALID
    for connection in _through_pcscd(world, "renewed"):
        presence_id, proof = world.prove_presence("renewed", service.begin_presence(), connection)
        certificate = world.certificate_without_pin("renewed", connection)
    face = service.check_by_card(
        CardCheckRequest(
            INSTITUTION,
            FaceConfirmation(
                IdentityConfirmationMethod.FACE,
                certificate,
                presence_id,
                proof,
                "face-recognition:counter-2",
            ),
            confirmation_date=CHECK_DAY,
        )
    )
    assert face.accepted and face.confirmation_method is IdentityConfirmationMethod.FACE


def test_blocked_pin_and_pulled_card_through_pcscd(
    pcscd: PcscdSession, service: EligibilityService, world: EligibilityWorld
) -> None:
    for connection in _through_pcscd(world, "blocked"):
        recorded = RecordingConnection(connection)
        session = JpkiAp(ApduProtocol(recorded, extended_length=recorded.extended_length))
        auth_status, _ = session.pin_status()
        assert auth_status.tries_left == 0
        with pytest.raises(PinBlockedError):
            card_respond(session, service.begin_authentication(), world.pins["blocked"])
        assert recorded.commands  # the counter was asked...
        assert recorded.verifies_with_data() == []  # ...and no PIN was sent to find out

    register(service, world, "valid")
    before = len(service.repository.access_records("person-valid"))
    with pytest.raises(CardRemovedError):
        for connection in _through_pcscd(
            world, "valid", Faults(remove_after=2, remove_mid_command=True)
        ):
            world.respond("valid", service.begin_authentication(), connection)
    assert len(service.repository.access_records("person-valid")) == before
