"""The eligibility HTTP API: institution isolation, consent gating and expiry, replayed,
expired and foreign authentications refused, and schemathesis finding no 5xx (bounded)."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from mynakit.card.jpki import JpkiAp
from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.ocsp_server import OcspServer
from mynakit.emulator.state import create_card, load_card, load_card_state
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.jpki.authentication import Challenge, ChallengeResponse, card_respond
from mynakit.jpki.trust import TrustStore
from mynakit.services.auth.store import CredentialStore
from mynakit.services.eligibility.assembly import build_service
from mynakit.services.eligibility.http import (
    INSTITUTION_SERVICE,
    INSURER_SERVICE,
    create_eligibility_app,
)
from mynakit.services.http import ServiceApp
from mynakit.services.issuer_link.http import HttpIssuerLink
from mynakit.services.store import Database, sqlite_url
from mynakit.transport.in_process import InProcessConnection
from support.clocks import OffsetClock
from support.eligibility_world import (
    CHECK_DAY,
    INSTITUTION,
    OTHER_INSTITUTION,
    EligibilityWorld,
    population,
    query_for,
)

pytestmark = pytest.mark.services


class Api:
    """The app behind a TestClient, with one credential per caller."""

    def __init__(self, world: EligibilityWorld, database: Database, clock: OffsetClock, url: str):
        self.world = world
        self.clock = clock
        self.service = build_service(
            database,
            TrustStore().with_sandbox(world.issuer.directory),
            revocation="ocsp",
            serial_link=HttpIssuerLink(url),
            card_ca=world.card_ca(),
            clock=clock,
        )
        self.database = database
        self.app = create_eligibility_app(self.service, database)
        self.client = TestClient(self.app)
        institutions = CredentialStore(database, INSTITUTION_SERVICE)
        self.institution = institutions.issue(INSTITUTION).credential
        self.other = institutions.issue(OTHER_INSTITUTION).credential
        self.insurer = CredentialStore(database, INSURER_SERVICE).issue("insurer").credential

    def post(self, path: str, body: Any = None, credential: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        return self.client.post(path, json=body, headers=headers)

    def answer(self, scenario: str) -> dict[str, str]:
        challenge = Challenge.from_dict(self.post("/v1/challenges").json())
        return self.world.respond(scenario, challenge).to_dict()

    def check(self, scenario: str, credential: str, **extra: Any) -> dict[str, Any]:
        body = {
            "identification": {"method": "pin", "authentication": self.answer(scenario)},
            "confirmation_date": CHECK_DAY.isoformat(),
            **extra,
        }
        response = self.post("/v1/checks/card", body, credential)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> EligibilityWorld:
    return EligibilityWorld.create(tmp_path_factory.mktemp("http-world"))


@pytest.fixture(scope="module")
def responder(world: EligibilityWorld) -> Iterator[OcspServer]:
    with OcspServer(world.issuer) as server:
        yield server


@pytest.fixture(scope="module")
def api(
    world: EligibilityWorld, responder: OcspServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    database = Database.open(
        sqlite_url(tmp_path_factory.mktemp("http-db") / "e.sqlite3"), chains=["eligibility"]
    )
    api = Api(world, database, OffsetClock(), responder.url)
    loaded = api.client.post(
        "/v1/insurers/records",
        content="\n".join(_json_line(record) for record in population()).encode(),
        headers={"Authorization": f"Bearer {api.insurer}"},
    )
    assert loaded.status_code == 200 and loaded.json() == {"loaded": len(population())}
    for scenario in ("valid", "several", "expired"):
        registered = api.post(
            "/v1/registrations",
            {"authentication": api.answer(scenario), "query": _query(scenario)},
        )
        assert registered.status_code == 200, registered.text
    yield api
    database.dispose()


def _json_line(record: Any) -> str:
    import json

    return json.dumps(record.to_dict(), ensure_ascii=False)


def _query(scenario: str, **changes: Any) -> dict[str, Any]:
    query = query_for(scenario)
    return {
        "insurer_number": query.insurer_number,
        "card_symbol": query.card_symbol,
        "card_number": query.card_number,
        "branch_number": query.branch_number,
        "birth_date": query.birth_date.isoformat(),
        **changes,
    }


def test_credentials_are_required_and_separate(api: Api) -> None:
    body = {"query": _query("valid")}
    assert api.post("/v1/checks/insurance-card", body).status_code == 401
    assert api.post("/v1/checks/insurance-card", body, "forged.secret").status_code == 401
    # An insurer's credential is not an institution's.
    assert api.post("/v1/checks/insurance-card", body, api.insurer).status_code == 401
    assert api.post("/v1/checks/insurance-card", body, api.institution).status_code == 200


def test_institutions_are_isolated(api: Api) -> None:
    result = api.check("valid", api.institution)
    check_id = result["check"]["check_id"]
    # The other institution cannot add consents to this check...
    refused = api.post(f"/v1/checks/{check_id}/consents", {"scopes": ["medication"]}, api.other)
    assert refused.status_code == 404
    # ...nor sees it among its own access records, which name no person.
    own = api.client.get(
        "/v1/institution/access-records", headers={"Authorization": f"Bearer {api.other}"}
    ).json()
    assert all(row["institution_code"] == OTHER_INSTITUTION for row in own)
    mine = api.client.get(
        "/v1/institution/access-records", headers={"Authorization": f"Bearer {api.institution}"}
    ).json()
    assert mine and all(row["institution_code"] == INSTITUTION for row in mine)
    assert all("person" not in str(row) for row in mine)


def test_consent_gating_and_expiry(api: Api) -> None:
    def entry(data: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = data["XmlMsg"]["MessageBody"]["ResultList"][0][
            "ResultOfQualificationConfirmation"
        ]
        return result

    plain = entry(api.check("valid", api.other))
    assert "LimitApplicationCertificateRelatedInfo" not in plain
    assert "SpecificDiseasesCertificateList" not in plain
    consented = entry(api.check("valid", api.other, consents=["limit_certificate"]))
    assert (
        consented["LimitApplicationCertificateRelatedInfo"][
            "LimitApplicationCertificateClassificationFlag"
        ]
        == "A03"
    )
    assert consented["SpecificDiseasesCertificateRelatedConsFlg"] == "1"
    api.clock.offset = dt.timedelta(hours=24, minutes=1)
    try:
        later = api.post(
            "/v1/checks/insurance-card",
            {"query": _query("valid"), "confirmation_date": CHECK_DAY.isoformat()},
            api.other,
        ).json()
    finally:
        api.clock.offset = dt.timedelta(0)
    expired = entry(later)
    assert "LimitApplicationCertificateRelatedInfo" not in expired
    assert expired["SpecificDiseasesCertificateRelatedConsFlg"] == "2"
    assert expired["LimitApplicationCertificateRelatedConsFlg"] == "0"


def test_replayed_expired_and_foreign_authentications(
    api: Api, tmp_path_factory: pytest.TempPathFactory
) -> None:
    answer = api.answer("valid")
    body = {"identification": {"method": "pin", "authentication": answer}}
    first = api.post("/v1/checks/card", body, api.institution).json()
    assert first["XmlMsg"]["MessageHeader"]["SegmentOfResult"] == "1"
    replay = api.post("/v1/checks/card", body, api.institution).json()
    assert replay["XmlMsg"]["MessageHeader"]["SegmentOfResult"] == "9"
    assert replay["check"]["refusal_reason"] == "replayed_nonce"

    late = api.answer("valid")
    api.clock.offset = dt.timedelta(minutes=6)
    try:
        expired = api.post(
            "/v1/checks/card",
            {"identification": {"method": "pin", "authentication": late}},
            api.institution,
        ).json()
    finally:
        api.clock.offset = dt.timedelta(0)
    assert expired["check"]["refusal_reason"] == "expired_nonce"

    # A card from an issuer the service does not trust.
    folder = tmp_path_factory.mktemp("foreign")
    foreign_issuer = SandboxIssuer.create(folder / "issuer")
    create_card(folder / "cards", "foreign", seed="foreign", issuer=foreign_issuer)
    card = load_card(folder / "cards", "foreign")
    challenge = Challenge.from_dict(api.post("/v1/challenges").json())
    connection = InProcessConnection(card)
    session = JpkiAp(ApduProtocol(connection, extended_length=connection.extended_length))
    pin = load_card_state(folder / "cards", "foreign").persona.auth_pin
    response = card_respond(session, challenge, pin)
    foreign = api.post(
        "/v1/checks/card",
        {"identification": {"method": "pin", "authentication": response.to_dict()}},
        api.institution,
    ).json()
    assert foreign["XmlMsg"]["MessageHeader"]["ErrorCode"] == "ESB0104"

    # A signature over another nonce (someone else's answer, relabelled).
    other = ChallengeResponse.from_dict(api.answer("several"))
    fresh = Challenge.from_dict(api.post("/v1/challenges").json())
    relabelled = ChallengeResponse(fresh.challenge_id, other.signature, other.certificate_der)
    forged = api.post(
        "/v1/checks/card",
        {"identification": {"method": "pin", "authentication": relabelled.to_dict()}},
        api.institution,
    ).json()
    assert forged["check"]["refusal_reason"] == "bad_signature"


def test_face_confirmation_over_http(api: Api) -> None:
    """Registration enrols the card; a visual check then needs no PIN, and says who looked."""

    def presence(scenario: str) -> dict[str, str]:
        challenge = Challenge.from_dict(api.post("/v1/presence-challenges").json())
        challenge_id, proof = api.world.prove_presence(scenario, challenge)
        return {"challenge_id": challenge_id, **proof.to_dict()}

    enrolled = api.post(
        "/v1/registrations",
        {
            "authentication": api.answer("renewed"),
            "query": _query("renewed"),
            "presence": presence("renewed"),
        },
    )
    assert enrolled.status_code == 200 and enrolled.json()["face_confirmation_enrolled"] is True
    certificate = base64.b64encode(api.world.certificate_without_pin("renewed")).decode()
    identification: dict[str, Any] = {
        "method": "visual",
        "certificate": certificate,
        "presence": presence("renewed"),
        "confirmed_by": "staff-42",
    }
    body = {"identification": identification, "confirmation_date": CHECK_DAY.isoformat()}
    result = api.post("/v1/checks/card", body, api.institution).json()
    assert result["XmlMsg"]["MessageHeader"]["SegmentOfResult"] == "1"
    assert result["check"] == {
        "check_id": result["check"]["check_id"],
        "confirmation_method": "visual",
        "confirmed_by": "staff-42",
        "refusal_reason": None,
    }
    # Without the staff member's name the request is refused before any check.
    nameless = {**body, "identification": {**identification, "confirmed_by": None}}
    assert api.post("/v1/checks/card", nameless, api.institution).status_code == 422


def test_holder_reads_only_own_history(api: Api) -> None:
    api.check("several", api.institution)
    response = api.post("/v1/holder/history", {"authentication": api.answer("several")})
    assert response.status_code == 200
    several = response.json()
    valid = api.post("/v1/holder/history", {"authentication": api.answer("valid")}).json()
    assert several and valid
    # Different people, different histories (the valid holder's many checks are not here).
    assert len(valid) > len(several)
    unregistered = api.post("/v1/holder/history", {"authentication": api.answer("none")})
    assert unregistered.status_code == 409


def test_registration_refusals(api: Api) -> None:
    wrong = api.post(
        "/v1/registrations",
        {"authentication": api.answer("none"), "query": _query("none", birth_date="1901-01-01")},
    )
    assert wrong.status_code == 409
    taken = api.post(
        "/v1/registrations",
        {"authentication": api.answer("valid"), "query": _query("several")},
    )
    assert taken.status_code == 409
    garbage = api.post(
        "/v1/registrations",
        {
            "authentication": {"challenge_id": "x", "signature": "!!", "certificate": "AA=="},
            "query": _query("valid"),
        },
    )
    assert garbage.status_code == 422


def test_no_server_errors(api: Api) -> None:
    """Any request the schema allows, without and with each kind of credential: never a 5xx.
    Bounded: a few examples per operation (the suite must stay fast)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_5xx(case: Any) -> None:
            for credential in (None, api.institution, api.insurer):
                headers = {"Authorization": f"Bearer {credential}"} if credential else {}
                response = case.call(headers=headers)
                assert response.status_code < 500, (case.method, case.path, response.text)

        no_5xx()


def test_concurrent_checks_are_each_answered_on_their_own(api: Api) -> None:
    """Checks that arrive together share transactions (group commit) and each still gets its
    own answer: the same answer sent twice at once is accepted once and refused once."""
    from concurrent.futures import ThreadPoolExecutor

    def body(answer: dict[str, str]) -> dict[str, Any]:
        return {
            "identification": {"method": "pin", "authentication": answer},
            "confirmation_date": CHECK_DAY.isoformat(),
        }

    scenarios = ["valid", "several", "expired", "valid", "several", "expired"]
    bodies = [body(api.answer(scenario)) for scenario in scenarios]
    bodies.append(bodies[0])  # the first answer again: a replay racing its original
    headers = {"Authorization": f"Bearer {api.institution}"}
    # An app of its own: its lifespan (one event loop for every request, as in a server)
    # closes its group commit at the end.
    app = create_eligibility_app(api.service, api.database)
    with TestClient(app) as client, ThreadPoolExecutor(len(bodies)) as pool:
        responses = list(
            pool.map(lambda b: client.post("/v1/checks/card", json=b, headers=headers), bodies)
        )
    assert all(response.status_code == 200 for response in responses)
    results = [response.json() for response in responses]
    segments = [r["XmlMsg"]["MessageHeader"]["SegmentOfResult"] for r in results]
    validity = [r["XmlMsg"]["MessageBody"].get("QualificationValidity") for r in results]
    assert validity[1:6] == ["5", "2", "1", "5", "2"]
    # Of the original and its replay exactly one was accepted.
    assert sorted([segments[0], segments[6]]) == ["1", "9"]
    refused = results[0] if segments[0] == "9" else results[6]
    assert refused["check"]["refusal_reason"] == "replayed_nonce"


def test_direct_and_fastapi_check_routes_answer_alike(api: Api) -> None:
    """The direct route of card checks (``ServiceApp.direct_route``) answers exactly as the
    documented FastAPI route: refused credentials, bodies that do not validate, bad base64,
    an unknown challenge (a refusal in the response message), and a good check."""
    # An app of its own: the module's app had its lifespan run (and its group commit closed)
    # by the schema test.
    app = create_eligibility_app(api.service, api.database)
    assert isinstance(app, ServiceApp)
    authorised = {"Authorization": f"Bearer {api.institution}"}

    def pin(answer: dict[str, str]) -> dict[str, Any]:
        return {
            "identification": {"method": "pin", "authentication": answer},
            "confirmation_date": CHECK_DAY.isoformat(),
        }

    def answers(bodies: list[dict[str, Any]]) -> list[tuple[int, Any]]:
        replies = [app_client.post("/v1/checks/card", **request) for request in bodies]
        out = []
        for reply in replies:
            data = reply.json()
            if reply.status_code == 200:  # the answer's own times and check id differ
                data["XmlMsg"]["MessageHeader"].pop("ProcessExecutionTime")
                data["check"].pop("check_id")
            out.append((reply.status_code, data))
        return out

    app_client = TestClient(app)
    good = api.answer("valid")
    requests: list[dict[str, Any]] = [
        {"json": pin(good)},  # no credential
        {"json": pin(good), "headers": {"Authorization": "Basic abc"}},
        {"json": pin(good), "headers": {"Authorization": "Bearer x.y"}},
        {"json": {"identification": {"method": "pin"}}, "headers": authorised},
        {"json": {"wrong": 1}, "headers": authorised},
        {"content": b"{not json", "headers": {**authorised, "Content-Type": "application/json"}},
        {"content": b"text", "headers": {**authorised, "Content-Type": "text/plain"}},
        {"json": pin({**good, "signature": "***"}), "headers": authorised},
        {"json": pin({**good, "challenge_id": "unknown"}), "headers": authorised},
    ]
    direct = answers(requests)
    saved = dict(app._direct)
    app._direct.clear()
    try:
        through_fastapi = answers(requests)
        fastapi_check = answers([{"json": pin(api.answer("valid")), "headers": authorised}])
    finally:
        app._direct.update(saved)
    assert direct == through_fastapi
    assert [status for status, _ in direct] == [401, 401, 401, 422, 422, 422, 422, 422, 200]
    assert direct[-1][1]["check"]["refusal_reason"] == "unknown_nonce"
    direct_check = answers([{"json": pin(good), "headers": authorised}])
    assert direct_check == fastapi_check
    assert direct_check[0][1]["XmlMsg"]["MessageBody"]["QualificationValidity"] == "1"
