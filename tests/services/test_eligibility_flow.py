"""The eligibility service end to end on virtual cards, in-process: registration (初回登録),
every validity code, a revoked and a renewed certificate, a blocked PIN and a card pulled
mid-PIN, consents and the holder's access history (docs/services.md §A.2, §A.4, §A.8)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace

import pytest
from cryptography import x509

from mynakit.card.errors import PinBlockedError
from mynakit.card.jpki import JpkiAp
from mynakit.emulator.faults import Faults
from mynakit.emulator.ocsp_server import OcspServer
from mynakit.emulator.state import renew_card_certificate
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.jpki.authentication import card_respond
from mynakit.jpki.trust import TrustStore
from mynakit.services.eligibility import store as store_module
from mynakit.services.eligibility.assembly import build_service
from mynakit.services.eligibility.codes import (
    ConsentFlag,
    ConsentScope,
    IdentityConfirmationMethod,
    QualificationValidity,
    ReferenceClassification,
    ResultErrorCode,
    SegmentOfResult,
)
from mynakit.services.eligibility.core import EligibilityService, RegistrationError
from mynakit.services.eligibility.models import (
    CardCheckRequest,
    CheckResult,
    FaceConfirmation,
    InsuranceCardCheckRequest,
    PinAuthentication,
    RegistrationRequest,
)
from mynakit.services.eligibility.store import SqlEligibilityRepository
from mynakit.services.issuer_link.http import HttpIssuerLink
from mynakit.services.store import Database, sqlite_url
from mynakit.services.store.postgres_cluster import ThrowawayCluster
from mynakit.transport.base import CardRemovedError
from mynakit.transport.in_process import InProcessConnection
from support.eligibility_world import (
    CHECK_DAY,
    INSTITUTION,
    OTHER_INSTITUTION,
    EligibilityWorld,
    RecordingConnection,
    population,
    query_for,
)

pytestmark = pytest.mark.services

DATABASE_KINDS = ("sqlite", "postgresql")


@pytest.fixture(scope="module", params=DATABASE_KINDS)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """One database per kind for the module (the scenarios build on one another)."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path_factory.mktemp("eligibility-db") / "services.sqlite3")
        name = None
    else:
        cluster: ThrowawayCluster = request.getfixturevalue("postgres_cluster")
        name = "eligibility_flow"
        url = cluster.create_database(name)
    database = Database.open(url, chains=["eligibility"])
    yield database
    database.dispose()
    if name is not None:
        cluster.drop_database(name)


@pytest.fixture(scope="module")
def world(database: Database, tmp_path_factory: pytest.TempPathFactory) -> EligibilityWorld:
    # One world per database: the revoked and renewed cards change their issuer's state.
    return EligibilityWorld.create(tmp_path_factory.mktemp("eligibility-world"))


@pytest.fixture(scope="module")
def responder(world: EligibilityWorld) -> Iterator[OcspServer]:
    with OcspServer(world.issuer) as server:
        yield server


@pytest.fixture(scope="module")
def service(
    database: Database, world: EligibilityWorld, responder: OcspServer
) -> EligibilityService:
    service = build_service(
        database,
        TrustStore().with_sandbox(world.issuer.directory),
        revocation="ocsp",
        serial_link=HttpIssuerLink(responder.url),
        card_ca=world.card_ca(),
    )
    service.load_records(population())
    for scenario in ("valid", "expired", "newer", "none", "several", "revoked", "renewed"):
        challenge = service.begin_authentication()
        # The valid and renewed holders also enrol their card for face confirmation.
        presence = (
            world.prove_presence(scenario, service.begin_presence())
            if scenario in ("valid", "renewed")
            else None
        )
        registration = service.register(
            RegistrationRequest(world.respond(scenario, challenge), query_for(scenario), presence)
        )
        assert registration.face_confirmation_enrolled is (presence is not None)
    return service


def check(
    service: EligibilityService, world: EligibilityWorld, scenario: str, **options: object
) -> CheckResult:
    challenge = service.begin_authentication()
    response = world.respond(scenario, challenge)
    request = CardCheckRequest(
        institution_code=str(options.pop("institution", INSTITUTION)),
        identification=PinAuthentication(response),
        confirmation_date=CHECK_DAY,
        **options,  # type: ignore[arg-type]
    )
    return service.check_by_card(request)


def test_valid_patient(service: EligibilityService, world: EligibilityWorld) -> None:
    result = check(service, world, "valid")
    assert result.accepted
    assert result.validity is QualificationValidity.VALID
    assert result.header.reference_classification is ReferenceClassification.MY_NUMBER_CARD
    assert result.confirmation_method is IdentityConfirmationMethod.PIN
    (entry,) = result.body.results
    assert entry.record.person_key == "person-valid"
    # No consent: the limit certificate and the specific disease stay out.
    assert entry.limit_certificate is None and entry.specific_diseases == ()
    message = result.to_message()["XmlMsg"]
    assert message["MessageBody"]["QualificationValidity"] == "1"
    assert message["MessageHeader"]["SegmentOfResult"] == "1"


@pytest.mark.parametrize(
    ("scenario", "validity"),
    [
        ("expired", QualificationValidity.INVALID),
        ("newer", QualificationValidity.INVALID_NEWER_EXISTS),
        ("none", QualificationValidity.NO_QUALIFICATION),
        ("several", QualificationValidity.SEVERAL),
    ],
)
def test_validity_codes(
    service: EligibilityService,
    world: EligibilityWorld,
    scenario: str,
    validity: QualificationValidity,
) -> None:
    result = check(service, world, scenario)
    assert result.accepted
    assert result.validity is validity
    expected_entries = {"expired": 1, "newer": 1, "none": 0, "several": 2}[scenario]
    assert len(result.body.results) == expected_entries


def test_same_query_by_insurance_card_data(service: EligibilityService) -> None:
    result = service.check_by_insurance_card(
        InsuranceCardCheckRequest(INSTITUTION, query_for("newer"), confirmation_date=CHECK_DAY)
    )
    assert result.header.reference_classification is ReferenceClassification.INSURANCE_CARD_DATA
    assert result.validity is QualificationValidity.INVALID_NEWER_EXISTS
    assert result.body.search_info == query_for("newer").normalized()
    unknown = query_for("valid")
    unknown = type(unknown)(
        unknown.insurer_number, unknown.card_symbol, "0", "00", unknown.birth_date
    )
    missing = service.check_by_insurance_card(
        InsuranceCardCheckRequest(INSTITUTION, unknown, confirmation_date=CHECK_DAY)
    )
    assert missing.validity is QualificationValidity.NO_QUALIFICATION
    assert missing.body.results == ()


def test_consent_gates_limit_certificate_and_expires(
    service: EligibilityService, world: EligibilityWorld
) -> None:
    result = check(service, world, "valid", consents=frozenset({ConsentScope.LIMIT_CERTIFICATE}))
    (entry,) = result.body.results
    assert entry.limit_certificate is not None and entry.specific_diseases
    assert entry.consent(ConsentScope.LIMIT_CERTIFICATE).flag is ConsentFlag.GIVEN
    assert entry.specific_diseases_consent is ConsentFlag.GIVEN
    # Another institution sees nothing of that consent.
    other = check(service, world, "valid", institution=OTHER_INSTITUTION)
    assert other.body.results[0].limit_certificate is None
    # 24 hours later the consent has expired.
    original = service._clock
    service._clock = lambda: original() + dt.timedelta(hours=24, seconds=1)
    try:
        later = service.check_by_insurance_card(
            InsuranceCardCheckRequest(INSTITUTION, query_for("valid"), confirmation_date=CHECK_DAY)
        )
    finally:
        service._clock = original
    (entry,) = later.body.results
    assert entry.limit_certificate is None
    assert entry.specific_diseases_consent is ConsentFlag.EXPIRED


def test_consent_after_the_result(service: EligibilityService, world: EligibilityWorld) -> None:
    result = check(service, world, "valid")
    assert result.check_id is not None
    with pytest.raises(Exception, match="no recent check"):
        service.give_consents(OTHER_INSTITUTION, result.check_id, {ConsentScope.MEDICATION})
    updated = service.give_consents(INSTITUTION, result.check_id, {ConsentScope.MEDICATION})
    state = updated.body.results[0].consent(ConsentScope.MEDICATION)
    assert state.flag is ConsentFlag.GIVEN
    assert state.available_until is not None and state.given_at is not None
    assert state.available_until - state.given_at == dt.timedelta(hours=24)


def test_revoked_certificate_is_refused_with_the_reason(
    service: EligibilityService, world: EligibilityWorld
) -> None:
    world.issuer.revoke(world.serial("revoked"), x509.ReasonFlags.key_compromise)
    result = check(service, world, "revoked")
    assert result.header.segment_of_result is SegmentOfResult.ABNORMAL_END
    assert result.header.error_code is ResultErrorCode.CERTIFICATE_REVOKED
    assert result.refusal_reason == "revoked"
    assert "key" in (result.header.error_message or "").lower()
    assert result.body.results == ()


def test_renewed_card_is_found_through_the_serial_link(
    service: EligibilityService, world: EligibilityWorld
) -> None:
    old_serial, new_certificate = renew_card_certificate(
        world.cards, "renewed", "auth", world.issuer
    )
    assert new_certificate.serial_number != old_serial
    result = check(service, world, "renewed")
    assert result.validity is QualificationValidity.VALID
    assert result.body.results[0].record.person_key == "person-renewed"
    # The card key enrolled with the old certificate carries over to the renewed one.
    assert face_check(service, world, "renewed").accepted


def face_check(
    service: EligibilityService, world: EligibilityWorld, scenario: str, *, card: str | None = None
) -> CheckResult:
    """Face/visual confirmation: ``scenario``'s certificate read without PIN, the presence
    proof of ``card`` (default the same card), a named staff member."""
    presence_id, proof = world.prove_presence(card or scenario, service.begin_presence())
    return service.check_by_card(
        CardCheckRequest(
            institution_code=INSTITUTION,
            identification=FaceConfirmation(
                method=IdentityConfirmationMethod.VISUAL,
                certificate_der=world.certificate_without_pin(scenario),
                presence_challenge_id=presence_id,
                presence=proof,
                confirmed_by="staff-007",
            ),
            confirmation_date=CHECK_DAY,
        )
    )


def test_face_confirmation_without_pin(
    service: EligibilityService, world: EligibilityWorld
) -> None:
    result = face_check(service, world, "valid")
    assert result.accepted and result.validity is QualificationValidity.VALID
    assert result.confirmation_method is IdentityConfirmationMethod.VISUAL
    assert result.confirmed_by == "staff-007"
    records = service.repository.access_records("person-valid")
    assert records[-1].method == "visual (confirmed by staff-007)"
    # Another genuine card on the reader with this holder's certificate is refused.
    swapped = face_check(service, world, "valid", card="several")
    assert swapped.header.error_code is ResultErrorCode.PRESENCE_NOT_PROVEN
    assert "not the card" in (swapped.header.error_message or "")
    # A holder who never enrolled the card cannot be checked without the PIN.
    unenrolled = face_check(service, world, "several")
    assert unenrolled.header.error_code is ResultErrorCode.PRESENCE_NOT_PROVEN
    # A presence answer is good once.
    presence_id, proof = world.prove_presence("valid", service.begin_presence())
    request = CardCheckRequest(
        INSTITUTION,
        FaceConfirmation(
            IdentityConfirmationMethod.FACE,
            world.certificate_without_pin("valid"),
            presence_id,
            proof,
            "face-recognition:reader-1",
        ),
        confirmation_date=CHECK_DAY,
    )
    assert service.check_by_card(request).accepted
    replayed = service.check_by_card(request)
    assert replayed.header.error_code is ResultErrorCode.PRESENCE_NOT_PROVEN


def test_blocked_pin_sends_no_verify(service: EligibilityService, world: EligibilityWorld) -> None:
    traced = RecordingConnection(InProcessConnection(world.card("blocked")))
    session = JpkiAp(ApduProtocol(traced, extended_length=traced.extended_length))
    (auth_status, _) = session.pin_status()
    assert auth_status.tries_left == 0
    challenge = service.begin_authentication()
    with pytest.raises(PinBlockedError):
        card_respond(session, challenge, world.pins["blocked"])
    assert traced.commands and traced.verifies_with_data() == []


def test_card_pulled_mid_pin_records_no_check(
    service: EligibilityService, world: EligibilityWorld
) -> None:
    repository = service.repository
    before = len(repository.access_records("person-valid"))
    card = world.card("valid", faults=Faults(remove_after=2, remove_mid_command=True))
    challenge = service.begin_authentication()
    with pytest.raises(CardRemovedError):
        world.respond("valid", challenge, InProcessConnection(card))
    assert len(repository.access_records("person-valid")) == before


def test_replayed_and_foreign_authentications_are_refused(
    service: EligibilityService, world: EligibilityWorld
) -> None:
    challenge = service.begin_authentication()
    response = world.respond("valid", challenge)
    first = service.check_by_card(
        CardCheckRequest(INSTITUTION, PinAuthentication(response), confirmation_date=CHECK_DAY)
    )
    assert first.accepted
    replay = service.check_by_card(
        CardCheckRequest(INSTITUTION, PinAuthentication(response), confirmation_date=CHECK_DAY)
    )
    assert replay.header.error_code is ResultErrorCode.AUTHENTICATION_REFUSED
    assert replay.refusal_reason == "replayed_nonce"


def test_refused_check_still_uses_up_its_nonce(
    service: EligibilityService, world: EligibilityWorld
) -> None:
    # The nonce is consumed in the check's own transaction; a refusal commits that and
    # nothing else, so a nonce allows one try (docs/services.md §A.8).
    repository = service.repository
    before = len(repository.access_records("person-valid"))
    challenge = service.begin_authentication()
    response = world.respond("valid", challenge)
    tampered = replace(
        response, signature=bytes([response.signature[0] ^ 1]) + response.signature[1:]
    )
    refused = service.check_by_card(
        CardCheckRequest(INSTITUTION, PinAuthentication(tampered), confirmation_date=CHECK_DAY)
    )
    assert refused.refusal_reason == "bad_signature"
    again = service.check_by_card(
        CardCheckRequest(INSTITUTION, PinAuthentication(response), confirmation_date=CHECK_DAY)
    )
    assert again.refusal_reason == "replayed_nonce"
    assert len(repository.access_records("person-valid")) == before


def test_registration_needs_matching_insurer_data(
    service: EligibilityService, world: EligibilityWorld
) -> None:
    challenge = service.begin_authentication()
    wrong = query_for("valid")
    wrong = type(wrong)(
        wrong.insurer_number, wrong.card_symbol, wrong.card_number, "00", dt.date(1900, 1, 1)
    )
    with pytest.raises(RegistrationError, match="no insured person"):
        service.register(RegistrationRequest(world.respond("valid", challenge), wrong))
    challenge = service.begin_authentication()
    with pytest.raises(RegistrationError, match="another insured person"):
        service.register(
            RegistrationRequest(world.respond("valid", challenge), query_for("expired"))
        )


def test_holder_lists_own_access_records(
    service: EligibilityService, world: EligibilityWorld
) -> None:
    check(service, world, "several")
    challenge = service.begin_authentication()
    history = service.history(world.respond("several", challenge))
    assert history and all(view.institution_code == INSTITUTION for view in history)
    assert {view.method for view in history} == {"pin"}
    assert all("qualification" in view.items for view in history)


BATCH_INSTITUTION = "1399999999"


def test_checks_of_one_batch_share_a_transaction_and_answer_each_on_its_own(
    service: EligibilityService, world: EligibilityWorld
) -> None:
    repository = service.repository
    before = len(repository.access_records("person-valid"))

    def pin(scenario: str) -> PinAuthentication:
        return PinAuthentication(world.respond(scenario, service.begin_authentication()))

    first = pin("valid")
    tampered = pin("valid")
    tampered = PinAuthentication(
        replace(
            tampered.response,
            signature=bytes([tampered.response.signature[0] ^ 1]) + tampered.response.signature[1:],
        )
    )
    limit = frozenset({ConsentScope.LIMIT_CERTIFICATE})
    answers = service.check_by_card_batch(
        [
            CardCheckRequest(BATCH_INSTITUTION, first, CHECK_DAY, consents=limit),
            # The consent given by the first check holds for the second, as if committed first.
            CardCheckRequest(BATCH_INSTITUTION, pin("valid"), CHECK_DAY),
            CardCheckRequest(BATCH_INSTITUTION, first, CHECK_DAY),  # a replay in the same batch
            CardCheckRequest(BATCH_INSTITUTION, tampered, CHECK_DAY),
            CardCheckRequest(BATCH_INSTITUTION, pin("several"), CHECK_DAY),
            CardCheckRequest("12", pin("valid"), CHECK_DAY),
        ]
    )
    results = [answer for answer in answers if isinstance(answer, CheckResult)]
    assert len(results) == 6
    given, sees_consent, replay, bad, several, malformed = results
    assert given.validity is QualificationValidity.VALID
    assert given.body.results[0].limit_certificate is not None
    assert sees_consent.body.results[0].limit_certificate is not None
    assert replay.refusal_reason == "replayed_nonce"
    assert bad.refusal_reason == "bad_signature"
    assert several.validity is QualificationValidity.SEVERAL
    assert malformed.refusal_reason == "malformed_request"
    # Two accepted checks of this holder: two access records, in a chain that verifies.
    assert len(repository.access_records("person-valid")) == before + 2
    assert isinstance(repository, SqlEligibilityRepository)
    assert all(verdict.ok for verdict in repository.verify_access_chains())
    # The refused check's nonce was used up with the batch.
    again = service.check_by_card(
        CardCheckRequest(
            BATCH_INSTITUTION,
            PinAuthentication(replace(tampered.response, signature=first.response.signature)),
            CHECK_DAY,
        )
    )
    assert again.refusal_reason == "replayed_nonce"


def test_a_batch_that_fails_while_recording_commits_nothing(
    service: EligibilityService, world: EligibilityWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = service.repository
    before = len(repository.access_records("person-valid"))
    response = world.respond("valid", service.begin_authentication())
    request = CardCheckRequest(BATCH_INSTITUTION, PinAuthentication(response), CHECK_DAY)

    def fail(self: object, writes: object) -> None:
        raise RuntimeError("the database went away")

    with monkeypatch.context() as patch:
        patch.setattr(store_module._SqlCheckBatch, "commit_checks", fail)
        with pytest.raises(RuntimeError, match="went away"):
            service.check_by_card_batch([request])
    assert len(repository.access_records("person-valid")) == before
    # Nothing was committed, not even the nonce: the same answer is still fresh.
    assert service.check_by_card(request).accepted
