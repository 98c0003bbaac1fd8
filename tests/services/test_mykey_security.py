"""Who may do what on the MyKey platform (docs/services.md §B.3): services act only for
themselves, holders read only their own records, credentials and nonces are checked."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mynakit.emulator.issuer import SandboxIssuer
from mynakit.services.auth.store import CredentialStore
from mynakit.services.errors import ForbiddenError, NotAuthenticatedError, NotFoundError
from support.clocks import OffsetClock
from support.mykey import CounterCard, RunningPlatform, new_card, running_platform

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def cards_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mykey-security-cards")


@pytest.fixture(scope="module")
def carol(cards_dir: Path, sandbox_issuer: SandboxIssuer) -> CounterCard:
    return new_card(cards_dir, sandbox_issuer, "carol")


@pytest.fixture(scope="module")
def dave(cards_dir: Path, sandbox_issuer: SandboxIssuer) -> CounterCard:
    return new_card(cards_dir, sandbox_issuer, "dave")


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
def platform(
    database_url: str,
    sandbox_issuer: SandboxIssuer,
    cards_dir: Path,
    carol: CounterCard,
    dave: CounterCard,
    clock: OffsetClock,
) -> Iterator[RunningPlatform]:
    with running_platform(database_url, sandbox_issuer, cards_dir, clock=clock) as running:
        yield running


def test_a_service_acts_only_for_itself(
    platform: RunningPlatform, carol: CounterCard, dave: CounterCard
) -> None:
    holder = platform.holder
    holder.register(carol.pin(holder))
    holder.register(dave.pin(holder))
    _, service_a = platform.service_client("Service A")
    _, service_b = platform.service_client("Service B")
    service_b.link(carol.pin(holder), "B-1")
    # A resolving Carol learns nothing of B: no B user ID, a PPID of its own.
    at_a = service_a.resolve(carol.pin(holder))
    at_b = service_b.resolve(carol.pin(holder))
    assert at_a["service_user_id"] is None and at_a["ppid"] != at_b["ppid"]
    assert "B-1" not in str(at_a)
    # A's listing holds none of B's links; A cannot take over B's user ID for itself either
    # (links are per service: the same text at A is A's own ID).
    assert service_a.service_links() == []
    service_a.link(carol.pin(holder), "B-1")
    assert service_b.resolve(carol.pin(holder))["ppid"] == at_b["ppid"]
    assert [link["service_user_id"] for link in service_b.service_links()] == ["B-1"]
    # Service credentials do not open holder endpoints' data of someone else: a holder call
    # needs the holder's card; a credential alone resolves nobody.
    with pytest.raises(NotAuthenticatedError):
        service_a.resolve(replace(carol.pin(holder), signature=b"\0" * 256))


def test_a_holder_reads_only_their_own_records(
    platform: RunningPlatform, carol: CounterCard, dave: CounterCard
) -> None:
    holder = platform.holder
    holder.register(carol.pin(holder))
    holder.register(dave.pin(holder))
    _, library = platform.service_client("Library")
    library.resolve(carol.pin(holder))
    dave_records = holder.history(dave.pin(holder))
    assert all(record["actor"] != "service Library" for record in dave_records)
    # Dave's certificate with Carol's signature over Dave's challenge: refused.
    challenge = holder.challenge()
    with dave.protocol() as protocol:
        from mynakit.card.jpki import JpkiAp
        from mynakit.jpki.authentication import card_respond

        dave_answer = card_respond(JpkiAp(protocol), challenge, dave.persona.auth_pin)
    carol_answer = carol.pin(holder)
    forged = replace(dave_answer, certificate_der=carol_answer.certificate_der)
    with pytest.raises(NotAuthenticatedError) as refused:
        holder.history(forged)
    assert refused.value.code == "bad_signature"


def test_missing_forged_expired_and_revoked_credentials_are_refused(
    platform: RunningPlatform, carol: CounterCard, clock: OffsetClock
) -> None:
    holder = platform.holder
    holder.register(carol.pin(holder))
    added = platform.admin.add_service("Library")
    good = holder.acting_as(credential=added["credential"])
    good.resolve(carol.pin(holder))
    with pytest.raises(NotAuthenticatedError):
        holder.resolve(carol.pin(holder))  # missing
    forged = added["credential"][:-3] + "abc"
    with pytest.raises(NotAuthenticatedError):
        holder.acting_as(credential=forged).resolve(carol.pin(holder))
    # Issued by another platform on the same database.
    other = CredentialStore(platform.deployment.database, "eligibility").issue("Clinic")
    with pytest.raises(NotAuthenticatedError):
        holder.acting_as(credential=other.credential).resolve(carol.pin(holder))
    # A credential the platform issued but for no registered service.
    bare = platform.deployment.credentials.issue("No service")
    with pytest.raises(ForbiddenError):
        holder.acting_as(credential=bare.credential).resolve(carol.pin(holder))
    # Expiring: good today, refused after its lifetime.
    expiring = platform.admin.add_service("Short", lifetime_days=1)
    short = holder.acting_as(credential=expiring["credential"])
    short.resolve(carol.pin(holder))
    clock.offset = dt.timedelta(days=2)
    with pytest.raises(NotAuthenticatedError):
        short.resolve(carol.pin(holder))
    clock.offset = dt.timedelta(0)
    platform.deployment.credentials.revoke(added["client_id"])
    with pytest.raises(NotAuthenticatedError):
        good.resolve(carol.pin(holder))
    # The admin API needs its token.
    with pytest.raises(NotAuthenticatedError):
        holder.acting_as(admin_token="guess").add_service("Evil")


def test_replayed_expired_and_unknown_nonces_are_refused(
    platform: RunningPlatform, carol: CounterCard, clock: OffsetClock
) -> None:
    holder = platform.holder
    answer = carol.pin(holder)
    holder.register(answer)
    with pytest.raises(NotAuthenticatedError) as replayed:
        holder.show(answer)
    assert replayed.value.code == "replayed_nonce"
    late = carol.pin(holder)
    clock.offset = dt.timedelta(minutes=10)
    with pytest.raises(NotAuthenticatedError) as expired:
        holder.show(late)
    assert expired.value.code == "expired_nonce"
    clock.offset = dt.timedelta(0)
    with pytest.raises(NotAuthenticatedError) as unknown:
        holder.show(replace(carol.pin(holder), challenge_id="never-issued"))
    assert unknown.value.code == "unknown_nonce"
    # A tap challenge cannot be spent as a PIN challenge.
    tap = holder.tap_challenge()
    with pytest.raises(NotAuthenticatedError):
        holder.show(replace(carol.pin(holder), challenge_id=tap.challenge_id))


def test_a_refused_resolution_still_uses_up_its_nonce(
    platform: RunningPlatform, carol: CounterCard
) -> None:
    """At the counter the nonce is consumed in the resolution's own transaction; a refused
    answer still commits that (one try per nonce), and a replay is refused as a replay."""
    holder = platform.holder
    holder.register(carol.pin(holder))
    _, service = platform.service_client("Counter")
    answer = carol.pin(holder)
    with pytest.raises(NotAuthenticatedError) as forged:
        service.resolve(replace(answer, signature=b"\0" * 256))
    assert forged.value.code == "bad_signature"
    with pytest.raises(NotAuthenticatedError) as replayed:
        service.resolve(answer)
    assert replayed.value.code == "replayed_nonce"
    fresh = carol.pin(holder)
    service.resolve(fresh)
    with pytest.raises(NotAuthenticatedError) as again:
        service.resolve(fresh)
    assert again.value.code == "replayed_nonce"
    tap = holder.tap_challenge()
    with pytest.raises(NotAuthenticatedError) as foreign:
        service.resolve(replace(carol.pin(holder), challenge_id=tap.challenge_id))
    assert foreign.value.code == "unknown_nonce"


def test_unregistered_card_is_told_to_register(
    platform: RunningPlatform, dave: CounterCard
) -> None:
    _, library = platform.service_client("Library")
    with pytest.raises(NotFoundError) as refused:
        library.resolve(dave.pin(platform.holder))
    assert refused.value.code == "not_registered"
