"""MyKey resolutions in batches (``MyKeyPlatform.resolve_batch``, the group commit's batch
function), on SQLite and PostgreSQL: each request answered on its own, refusals commit only
their consumed nonce, a renewed certificate goes through the issuer link after the batch, and
an unexpected failure commits nothing (docs/services.md §B)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mynakit.emulator.issuer import SandboxIssuer
from mynakit.jpki.authentication import BadSignatureError, ReplayedNonceError
from mynakit.services.audit import store as audit_store
from mynakit.services.errors import ForbiddenError
from mynakit.services.mykey.core import (
    AUDIT_CHAIN,
    RegistrationRequiredError,
    Resolution,
    ResolveRequest,
)
from support.mykey import CounterCard, RunningPlatform, new_card, running_platform

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def cards_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mykey-batch-cards")


@pytest.fixture(scope="module")
def cards(cards_dir: Path, sandbox_issuer: SandboxIssuer) -> dict[str, CounterCard]:
    return {name: new_card(cards_dir, sandbox_issuer, name) for name in ("ann", "ben", "cho")}


@pytest.fixture
def renewed(
    cards_dir: Path, sandbox_issuer: SandboxIssuer, request: pytest.FixtureRequest
) -> CounterCard:
    return new_card(cards_dir, sandbox_issuer, f"renewed-{abs(hash(request.node.nodeid)) % 10**9}")


@pytest.fixture
def platform(
    database_url: str,
    sandbox_issuer: SandboxIssuer,
    cards_dir: Path,
    cards: dict[str, CounterCard],
) -> Iterator[RunningPlatform]:
    with running_platform(database_url, sandbox_issuer, cards_dir) as running:
        yield running


def _records(platform: RunningPlatform) -> int:
    verdict = audit_store.verify_family(platform.deployment.database, AUDIT_CHAIN)
    assert verdict.ok, verdict.problems
    return verdict.records


def test_a_batch_answers_each_request_on_its_own(
    platform: RunningPlatform, cards: dict[str, CounterCard], renewed: CounterCard
) -> None:
    holder = platform.holder
    client_id, library = platform.service_client("Batch library")
    for card in (cards["ann"], cards["ben"], renewed):
        holder.register(card.pin(holder))
    library.link(cards["ann"].pin(holder), "ANN-1")
    library.link(renewed.pin(holder), "REN-1")
    before = library.resolve(renewed.pin(holder))
    renewed.renew()  # the platform has not seen the new serial: the issuer link after the batch
    records_before = _records(platform)

    ann = cards["ann"].pin(holder)
    ben = cards["ben"].pin(holder)
    forged = dataclasses.replace(
        cards["ben"].pin(holder), certificate_der=cards["ann"].pin(holder).certificate_der
    )
    requests = [
        ResolveRequest(client_id, ann),
        ResolveRequest(client_id, ann),  # the same answer twice: the second is a replay
        ResolveRequest(client_id, ben),
        ResolveRequest(client_id, cards["cho"].pin(holder)),  # never registered
        ResolveRequest("no-such-service", cards["ann"].pin(holder)),
        ResolveRequest(client_id, forged),
        ResolveRequest(client_id, renewed.pin(holder)),
    ]
    answers = platform.deployment.platform.resolve_batch(requests)

    assert len(answers) == len(requests)
    first, replay, plain, unregistered, stranger, bad, after_renewal = answers
    assert isinstance(first, Resolution) and first.service_user_id == "ANN-1"
    assert isinstance(replay, ReplayedNonceError)
    assert isinstance(plain, Resolution) and plain.service_user_id is None
    assert plain.ppid != first.ppid
    assert isinstance(unregistered, RegistrationRequiredError)
    assert isinstance(stranger, ForbiddenError)
    assert isinstance(bad, BadSignatureError)
    assert isinstance(after_renewal, Resolution)
    assert after_renewal.service_user_id == "REN-1" and after_renewal.ppid == before["ppid"]
    # The same PPID as a resolution on its own gives.
    assert library.resolve(cards["ann"].pin(holder))["ppid"] == first.ppid
    # Three resolutions, the renewal's issuer-link record, the single resolution above.
    assert _records(platform) == records_before + 5


def test_refused_requests_still_use_up_their_nonces(
    platform: RunningPlatform, cards: dict[str, CounterCard]
) -> None:
    holder = platform.holder
    client_id, _ = platform.service_client("Refusing library")
    unregistered = cards["cho"].pin(holder)
    answers = platform.deployment.platform.resolve_batch([ResolveRequest(client_id, unregistered)])
    assert isinstance(answers[0], RegistrationRequiredError)
    holder.register(cards["cho"].pin(holder))
    again = platform.deployment.platform.resolve_batch([ResolveRequest(client_id, unregistered)])
    assert isinstance(again[0], ReplayedNonceError)


def test_an_unexpected_failure_commits_nothing_of_the_batch(
    platform: RunningPlatform, cards: dict[str, CounterCard], monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = platform.holder
    client_id, _ = platform.service_client("Failing library")
    holder.register(cards["ann"].pin(holder))
    holder.register(cards["ben"].pin(holder))
    requests = [
        ResolveRequest(client_id, cards["ann"].pin(holder)),
        ResolveRequest(client_id, cards["ben"].pin(holder)),
    ]
    records_before = _records(platform)
    from mynakit.services.mykey import store

    def broken(self: Any, entries: Any) -> None:
        raise RuntimeError("the disk is full")

    with monkeypatch.context() as patched:
        patched.setattr(store.SqlMyKeyRepository, "record_accesses", broken)
        with pytest.raises(RuntimeError):
            platform.deployment.platform.resolve_batch(requests)
    # Nothing committed: no record, and the nonces are still fresh.
    assert _records(platform) == records_before
    answers = platform.deployment.platform.resolve_batch(requests)
    assert all(isinstance(answer, Resolution) for answer in answers)
    assert _records(platform) == records_before + 2


def test_history_lists_records_of_the_earlier_sixteen_chains_too(
    platform: RunningPlatform,
) -> None:
    from mynakit.services.audit import AccessEntry, shard_chain
    from mynakit.services.mykey.core import AUDIT_SHARDS, EARLIER_AUDIT_SHARDS
    from mynakit.services.mykey.store import SqlMyKeyRepository

    def chains(subject: str) -> tuple[str, str]:
        return (
            shard_chain(AUDIT_CHAIN, subject, EARLIER_AUDIT_SHARDS[0]),
            shard_chain(AUDIT_CHAIN, subject, AUDIT_SHARDS),
        )

    subject = next(f"holder-{n}" for n in range(100) if len(set(chains(f"holder-{n}"))) == 2)
    earlier, _ = chains(subject)
    with platform.deployment.database.transaction() as session:
        # What a platform with 16 chains wrote for this holder, then what this one writes.
        audit_store.append(
            session, earlier, actor="holder", subject=subject, purpose="register", items=["x"]
        )
        repo = SqlMyKeyRepository(session, {})
        repo.record_accesses([AccessEntry("holder", subject, "show", ("x",))])
        records = repo.access_records(subject)
    assert [record.purpose for record in records] == ["show", "register"]
    assert records[1].chain == earlier and records[0].chain != earlier
