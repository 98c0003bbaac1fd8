"""The MyKey platform end to end on in-process virtual cards, through its HTTP app, on SQLite
and PostgreSQL: register, renew at the issuer, revoke, services, PPIDs, tap mode
(docs/services.md §B.2-§B.5)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from mynakit.emulator.issuer import SandboxIssuer
from mynakit.services import audit
from mynakit.services.audit import store as audit_store
from mynakit.services.errors import ForbiddenError, NotFoundError
from mynakit.services.mykey.core import AUDIT_CHAIN
from support.mykey import CounterCard, RunningPlatform, new_card, running_platform

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def cards_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mykey-cards")


@pytest.fixture(scope="module")
def alice(cards_dir: Path, sandbox_issuer: SandboxIssuer) -> CounterCard:
    return new_card(cards_dir, sandbox_issuer, "alice")


@pytest.fixture(scope="module")
def bob(cards_dir: Path, sandbox_issuer: SandboxIssuer) -> CounterCard:
    return new_card(cards_dir, sandbox_issuer, "bob")


@pytest.fixture
def fresh_card(
    cards_dir: Path, sandbox_issuer: SandboxIssuer, request: pytest.FixtureRequest
) -> CounterCard:
    """A card of its own, for tests that renew or revoke at the issuer."""
    name = f"fresh-{abs(hash(request.node.nodeid)) % 10**9}"
    return new_card(cards_dir, sandbox_issuer, name)


@pytest.fixture
def platform(
    database_url: str,
    sandbox_issuer: SandboxIssuer,
    cards_dir: Path,
    alice: CounterCard,
    bob: CounterCard,
) -> Iterator[RunningPlatform]:
    with running_platform(database_url, sandbox_issuer, cards_dir) as running:
        yield running


def test_register_is_idempotent_and_ids_are_issued8(
    platform: RunningPlatform, alice: CounterCard, bob: CounterCard
) -> None:
    holder = platform.holder
    first = holder.register(alice.pin(holder))
    assert first["created"] and first["scheme"] == "issued8"
    assert len(first["mykey_id"]) == 8 and first["mykey_id"].isalnum()
    again = holder.register(alice.pin(holder))
    assert again["mykey_id"] == first["mykey_id"] and not again["created"]
    other = holder.register(bob.pin(holder))
    assert other["mykey_id"] != first["mykey_id"]
    assert holder.show(alice.pin(holder))["mykey_id"] == first["mykey_id"]


def test_renewal_keeps_the_mykey_id_and_links_and_the_old_serial_stops(
    platform: RunningPlatform, fresh_card: CounterCard
) -> None:
    holder = platform.holder
    client_id, library = platform.service_client("City library")
    registered = holder.register(fresh_card.pin(holder))
    library.link(fresh_card.pin(holder), "LIB-0001")
    before = library.resolve(fresh_card.pin(holder))
    old_serial = fresh_card.auth_serial
    old_challenge = holder.challenge()
    with fresh_card.protocol() as protocol:
        from mynakit.card.jpki import JpkiAp
        from mynakit.jpki.authentication import card_respond

        old_answer = card_respond(JpkiAp(protocol), old_challenge, fresh_card.persona.auth_pin)

    new_serial = fresh_card.renew()
    assert new_serial != old_serial
    after = library.resolve(fresh_card.pin(holder))
    assert after["service_user_id"] == "LIB-0001"
    assert after["ppid"] == before["ppid"]
    view = holder.show(fresh_card.pin(holder))
    assert view["mykey_id"] == registered["mykey_id"]
    assert [link["service_user_id"] for link in view["links"]] == ["LIB-0001"]
    assert client_id in {link["client_id"] for link in view["links"]}
    # The old certificate (signed before renewal, revoked as superseded) no longer resolves.
    with pytest.raises(ForbiddenError) as refused:
        library.resolve(old_answer)
    assert refused.value.code == "certificate_revoked"
    assert "superseded" in str(refused.value)


def test_renewal_without_consent_is_a_new_holder(
    platform: RunningPlatform, fresh_card: CounterCard
) -> None:
    holder = platform.holder
    first = holder.register(fresh_card.pin(holder), consent_serial_link=False)
    fresh_card.renew()
    with pytest.raises(NotFoundError):
        holder.show(fresh_card.pin(holder))
    second = holder.register(fresh_card.pin(holder))
    assert second["created"] and second["mykey_id"] != first["mykey_id"]


def test_revoked_certificate_is_refused_with_the_reason(
    platform: RunningPlatform, fresh_card: CounterCard, sandbox_issuer: SandboxIssuer
) -> None:
    holder = platform.holder
    _, library = platform.service_client("Library")
    holder.register(fresh_card.pin(holder))
    sandbox_issuer.revoke(fresh_card.auth_serial, x509.ReasonFlags.key_compromise)
    with pytest.raises(ForbiddenError) as refused:
        library.resolve(fresh_card.pin(holder))
    assert refused.value.code == "certificate_revoked"
    assert "keyCompromise" in str(refused.value)


def test_holder_changes_and_revokes_the_mykey_id(
    platform: RunningPlatform, alice: CounterCard, bob: CounterCard
) -> None:
    holder = platform.holder
    taken = holder.register(bob.pin(holder))["mykey_id"]
    holder.register(alice.pin(holder))
    changed = holder.change(alice.pin(holder), "alice001")
    assert changed == {"changed": True, "mykey_id": "ALICE001", "clashes": 0, "suggested_id": None}
    for clash in (1, 2):
        answer = holder.change(alice.pin(holder), taken)
        assert answer["changed"] is False and answer["clashes"] == clash
        assert answer["suggested_id"] is None
    third = holder.change(alice.pin(holder), taken)
    assert third["clashes"] == 3 and third["suggested_id"] is not None
    assert third["suggested_id"] != taken and third["mykey_id"] == "ALICE001"
    random_id = holder.change(alice.pin(holder), None)
    assert random_id["changed"] and len(random_id["mykey_id"]) == 8

    _, library = platform.service_client("Library")
    library.link(alice.pin(holder), "LIB-A")
    revoked = holder.revoke(alice.pin(holder))
    assert revoked["status"] == "revoked" and revoked["links"] == []
    with pytest.raises(ForbiddenError) as refused:
        library.resolve(alice.pin(holder))
    assert refused.value.code == "mykey_id_revoked"
    renewed = holder.register(alice.pin(holder))
    assert renewed["created"] and renewed["mykey_id"] != random_id["mykey_id"]


def test_services_see_only_their_own_ids_and_pseudonyms(
    platform: RunningPlatform, alice: CounterCard, bob: CounterCard
) -> None:
    holder = platform.holder
    registered = holder.register(alice.pin(holder))
    holder.register(bob.pin(holder))
    library_id, library = platform.service_client("Library")
    points_id, points = platform.service_client("Points")
    library.link(alice.pin(holder), "LIB-7")
    points.link(alice.pin(holder), "PT-9")
    at_library = library.resolve(alice.pin(holder))
    at_points = points.resolve(alice.pin(holder))
    assert at_library["service_user_id"] == "LIB-7" and at_points["service_user_id"] == "PT-9"
    assert at_library["ppid"] != at_points["ppid"]
    bob_at_library = library.resolve(bob.pin(holder))
    assert bob_at_library["service_user_id"] is None
    assert bob_at_library["ppid"] != at_library["ppid"]
    for answer in (at_library, at_points, bob_at_library):
        assert registered["mykey_id"] not in str(answer)
    # Each service lists only its own links.
    assert [link["service_user_id"] for link in library.service_links()] == ["LIB-7"]
    assert [link["service_user_id"] for link in points.service_links()] == ["PT-9"]
    # A library card number belongs to one holder.
    from mynakit.services.errors import ConflictError

    with pytest.raises(ConflictError):
        library.link(bob.pin(holder), "LIB-7")
    # Unlink by the holder.
    view = holder.unlink(alice.pin(holder), points_id)
    assert [link["client_id"] for link in view["links"]] == [library_id]
    assert points.resolve(alice.pin(holder))["service_user_id"] is None


def test_tap_mode(platform: RunningPlatform, alice: CounterCard, bob: CounterCard) -> None:
    holder = platform.holder
    _, library = platform.service_client("Library")
    _, bank = platform.service_client("Strict service", require_pin=True)
    holder.register(bob.pin(holder))  # bob never enrolled the card key
    holder.register(alice.pin(holder), presence=alice.enrolment(holder))
    library.link(alice.pin(holder), "LIB-T")

    certificate, challenge_id, proof = alice.tap(holder)
    tapped = library.resolve_tap(certificate, challenge_id, proof)
    assert tapped["assurance"] == "tap" and tapped["service_user_id"] == "LIB-T"
    assert library.resolve(alice.pin(holder))["assurance"] == "pin"

    # A replayed answer: the challenge is single use.
    with pytest.raises(Exception) as replayed:
        library.resolve_tap(certificate, challenge_id, proof)
    assert getattr(replayed.value, "code", "") == "replayed_nonce"
    # A forged answer: the signature of another challenge.
    _, other_challenge, _ = alice.tap(holder)
    with pytest.raises(ForbiddenError) as forged:
        library.resolve_tap(certificate, other_challenge, proof)
    assert forged.value.code == "tap_refused"
    # Alice's certificate with Bob's card on the reader.
    bob_certificate, bob_challenge, bob_proof = bob.tap(holder)
    with pytest.raises(ForbiddenError) as swapped:
        library.resolve_tap(certificate, bob_challenge, bob_proof)
    assert swapped.value.code == "tap_refused"
    with pytest.raises(ForbiddenError) as not_enrolled:
        _, challenge, proof = bob.tap(holder)
        library.resolve_tap(bob_certificate, challenge, proof)
    assert not_enrolled.value.code == "tap_not_enrolled"
    # A service that requires PIN refuses tap.
    certificate, challenge_id, proof = alice.tap(holder)
    with pytest.raises(ForbiddenError) as strict:
        bank.resolve_tap(certificate, challenge_id, proof)
    assert strict.value.code == "pin_required"


def test_history_lists_own_records_and_the_chain_verifies(
    platform: RunningPlatform, alice: CounterCard, bob: CounterCard
) -> None:
    holder = platform.holder
    holder.register(alice.pin(holder))
    holder.register(bob.pin(holder))
    _, library = platform.service_client("Library")
    library.resolve(alice.pin(holder))
    library.resolve(bob.pin(holder))
    alice_records = holder.history(alice.pin(holder))
    purposes = [record["purpose"] for record in alice_records]
    assert purposes[:2] == ["history", "resolve"] and purposes[-1] == "register"
    assert any(record["actor"] == "service Library" for record in alice_records)
    bob_records = holder.history(bob.pin(holder))
    assert {r["record_hash"] for r in alice_records}.isdisjoint(
        {r["record_hash"] for r in bob_records}
    )
    verdict = audit_store.verify_family(platform.deployment.database, AUDIT_CHAIN)
    assert verdict.ok and verdict.records >= 6
    assert platform.admin.verify_audit()["ok"] is True
    assert audit.GENESIS_HASH  # the chain starts from the documented genesis


def test_cn14_scheme_uses_the_certificate_string(
    database_url: str, sandbox_issuer: SandboxIssuer, cards_dir: Path, alice: CounterCard
) -> None:
    with running_platform(database_url, sandbox_issuer, cards_dir, scheme="cn14") as running:
        holder = running.holder
        registered = holder.register(alice.pin(holder))
        from mynakit.jpki.certificates import parse_certificate

        with alice.protocol() as protocol:
            from mynakit.card.jpki import JpkiAp

            certificate = parse_certificate(JpkiAp(protocol).read_certificate("auth"))
        assert registered["scheme"] == "cn14"
        assert registered["mykey_id"] == certificate.random_string
        assert holder.register(alice.pin(holder))["mykey_id"] == certificate.random_string
        from mynakit.services.errors import InvalidRequestError

        with pytest.raises(InvalidRequestError):
            holder.change(alice.pin(holder), "ABCDEFGH")
