"""Credentials, database nonces and the issuer link over HTTP (sandbox issuer on loopback)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends
from fastapi.testclient import TestClient

from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.ocsp_server import OcspServer
from mynakit.jpki.authentication import Challenge, NonceState
from mynakit.services.auth import ServiceClient
from mynakit.services.auth.store import CredentialStore, DatabaseNonceStore, consume_nonces
from mynakit.services.errors import NotAuthenticatedError
from mynakit.services.http import create_app, error_responses, service_client_dependency
from mynakit.services.issuer_link import SerialLinkConsentError, predecessors
from mynakit.services.issuer_link.http import HttpIssuerLink
from mynakit.services.store import Database
from support.clocks import FixedClock

pytestmark = pytest.mark.services


def test_credentials_are_checked(database: Database) -> None:
    clock = FixedClock()
    store = CredentialStore(database, "mykey", clock=clock)
    issued = store.issue("City library", lifetime=dt.timedelta(days=1))
    assert "secret" not in repr(issued) or issued.secret not in repr(issued)
    client = store.authenticate(issued.credential)
    assert client.client_id == issued.client_id and client.name == "City library"

    forged = f"{issued.client_id}.{issued.secret[:-2]}xx"
    for bad in (None, "", "garbage", forged, f"svc_0000000000000000.{issued.secret}"):
        with pytest.raises(NotAuthenticatedError):
            store.authenticate(bad)
    # Another platform on the same database does not accept it.
    with pytest.raises(NotAuthenticatedError):
        CredentialStore(database, "eligibility", clock=clock).authenticate(issued.credential)
    clock.now += dt.timedelta(days=2)
    with pytest.raises(NotAuthenticatedError):
        store.authenticate(issued.credential)

    other = store.issue("Points")
    store.authenticate(other.credential)
    store.revoke(other.client_id)
    with pytest.raises(NotAuthenticatedError):
        store.authenticate(other.credential)


def test_a_revocation_elsewhere_is_honoured_within_the_cache_bound(database: Database) -> None:
    """A server process keeps a credential's row at most CREDENTIAL_CACHE_SECONDS; a revocation
    made by another process (another store on the same database) is honoured after that."""
    from mynakit.services.auth.store import CREDENTIAL_CACHE_SECONDS

    ticks = [0.0]
    server = CredentialStore(database, "mykey", cache_clock=lambda: ticks[0])
    operator = CredentialStore(database, "mykey")
    issued = operator.issue("Library")
    server.authenticate(issued.credential)
    operator.revoke(issued.client_id)
    ticks[0] += CREDENTIAL_CACHE_SECONDS
    with pytest.raises(NotAuthenticatedError):
        server.authenticate(issued.credential)
    # Checked on every call, never cached: a wrong secret for a cached row.
    second = operator.issue("Points")
    server.authenticate(second.credential)
    with pytest.raises(NotAuthenticatedError):
        server.authenticate(f"{second.client_id}.{second.secret[:-2]}xx")


def test_secret_is_stored_hashed(database: Database) -> None:
    from sqlalchemy import select

    from mynakit.services.auth.store import ClientRow

    issued = CredentialStore(database, "mykey").issue("Library")
    with database.transaction() as session:
        row = session.scalars(select(ClientRow)).one()
    assert issued.secret not in row.secret_hash


def _challenge(lifetime: dt.timedelta = dt.timedelta(minutes=5)) -> Challenge:
    import secrets

    now = dt.datetime.now(dt.UTC)
    return Challenge(secrets.token_urlsafe(16), secrets.token_bytes(32), now, now + lifetime)


def test_nonce_is_single_use_across_processes(database_url: str) -> None:
    """Engines of their own stand for server processes: exactly one sees the nonce fresh."""
    databases = [Database.open(database_url) for _ in range(4)]
    stores = [DatabaseNonceStore(database, "holder") for database in databases]
    challenge = _challenge()
    stores[0].save(challenge)
    results: list[NonceState] = []
    barrier = threading.Barrier(len(stores))

    def consume(store: DatabaseNonceStore) -> None:
        barrier.wait()
        results.append(store.consume(challenge.challenge_id)[0])

    threads = [threading.Thread(target=consume, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(state.value for state in results) == ["fresh", "used", "used", "used"]
    assert stores[1].consume("never-issued") == (NonceState.UNKNOWN, None)
    # A nonce of one purpose cannot be spent for another.
    other = _challenge()
    stores[0].save(other)
    assert DatabaseNonceStore(databases[0], "tap").consume(other.challenge_id)[0] is (
        NonceState.UNKNOWN
    )
    state, returned = stores[2].consume(other.challenge_id)
    assert state is NonceState.FRESH and returned == other
    for database in databases:
        database.dispose()


def test_http_app_maps_credentials(database: Database) -> None:
    store = CredentialStore(database, "mykey")
    issued = store.issue("Library")
    app = create_app("test")
    authenticated = service_client_dependency(store)

    @app.get("/whoami", responses=error_responses(401))
    def whoami(client: ServiceClient = Depends(authenticated)) -> dict[str, str]:  # noqa: B008
        return {"client_id": client.client_id}

    http = TestClient(app)
    assert http.get("/whoami").json()["error"] == "not_authenticated"
    assert http.get("/whoami", headers={"Authorization": "Bearer x.y"}).status_code == 401
    answer = http.get("/whoami", headers={"Authorization": f"Bearer {issued.credential}"})
    assert answer.status_code == 200 and answer.json() == {"client_id": issued.client_id}


@pytest.fixture
def issuer_server(sandbox_issuer: SandboxIssuer) -> Iterator[OcspServer]:
    with OcspServer(sandbox_issuer, port=0) as server:
        yield server


def _new_key() -> rsa.RSAPublicKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()


def test_issuer_link_over_http(sandbox_issuer: SandboxIssuer, issuer_server: OcspServer) -> None:
    first = sandbox_issuer.issue_auth_certificate(_new_key())
    second = sandbox_issuer.renew(first.serial_number, _new_key())
    third = sandbox_issuer.renew(second.serial_number, _new_key())
    link = HttpIssuerLink(issuer_server.url)
    assert link.previous_serial(first.serial_number) is None
    assert link.previous_serial(third.serial_number) == second.serial_number
    assert predecessors(link, third.serial_number) == [second.serial_number, first.serial_number]
    status = link.status(first.serial_number)
    assert status.state == "revoked" and status.reason == "superseded"
    assert link.status(third.serial_number).state == "good"
    assert link.status(999_999_999_999).state == "unknown"

    no_consent = sandbox_issuer.renew(third.serial_number, _new_key(), consent_serial_link=False)
    with pytest.raises(SerialLinkConsentError):
        link.previous_serial(no_consent.serial_number)
    sandbox_issuer.revoke(no_consent.serial_number, x509.ReasonFlags.key_compromise)
    assert link.status(no_consent.serial_number).reason == "keyCompromise"
    link.close()


def test_a_batch_of_nonces_is_consumed_in_one_statement_with_an_answer_each(
    database: Database,
) -> None:
    store = DatabaseNonceStore(database, "holder")
    fresh, spent, foreign = _challenge(), _challenge(), _challenge()
    for challenge in (fresh, spent):
        store.save(challenge)
    DatabaseNonceStore(database, "tap").save(foreign)
    store.consume(spent.challenge_id)
    ids = [fresh.challenge_id, spent.challenge_id, "never-issued", foreign.challenge_id]
    with database.transaction() as session:
        answers = consume_nonces(
            session.connection(), "holder", [*ids, fresh.challenge_id], dt.datetime.now(dt.UTC)
        )
    assert answers == [
        (NonceState.FRESH, fresh),
        (NonceState.USED, spent),
        (NonceState.UNKNOWN, None),
        (NonceState.UNKNOWN, None),  # issued for another purpose
        (NonceState.USED, fresh),  # the same challenge answered twice in one batch
    ]
    # The batch committed: the fresh one is spent for everyone now.
    assert store.consume(fresh.challenge_id)[0] is NonceState.USED
