"""Access records (アクセス記録): append-only and hash-chained, framework-free.

Every read or resolution of a person's data appends one record: who asked (``actor``), whose
data (``subject``, a platform-internal holder reference, never a My Number), when, why
(``purpose``), which items and by which method (``pin``/``tap``): never the content
(docs/services.md §B.1, privacy rules in docs/architecture.md).

Each record's hash covers its own fields and the previous record's hash; the chain's head
(position and hash of the newest record) is kept beside the records and updated in the same
transaction. :func:`verify_chain` then finds an edited record (its hash no longer matches), a
deleted one (a gap in positions, or a head that points past the last record), an inserted one
(a broken link or a position out of sequence) and a reordered pair (broken links).

``mynakit.services.audit.store`` keeps records in the database; this module only computes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

GENESIS_HASH = "0" * 64


def shard_chain(family: str, subject: str, shards: int) -> str:
    """The chain of ``family`` that ``subject``'s records go to: ``<family>/<n>``.

    One chain serialises its appends (each record links to the one before), so a busy service
    spreads its records over ``shards`` chains by subject: concurrent transactions then commit
    in parallel (and share their WAL flushes), while one subject's records stay in one chain,
    in order, where the subject lists them.
    """
    digest = hashlib.sha256(subject.encode("utf-8")).digest()
    return f"{family}/{int.from_bytes(digest[:4], 'big') % shards}"


@dataclass(frozen=True)
class AccessEntry:
    """What one access record says before it is placed in a chain (no position, no hashes)."""

    actor: str
    subject: str | None
    purpose: str
    items: tuple[str, ...]
    method: str | None = None


@dataclass(frozen=True)
class AccessRecord:
    chain: str
    position: int
    recorded_at: dt.datetime
    actor: str
    subject: str | None
    purpose: str
    items: tuple[str, ...]
    method: str | None
    previous_hash: str
    record_hash: str

    def to_dict(self) -> dict[str, object]:
        return {
            "position": self.position,
            "recorded_at": self.recorded_at.isoformat(),
            "actor": self.actor,
            "purpose": self.purpose,
            "items": list(self.items),
            "method": self.method,
            "record_hash": self.record_hash,
        }


def record_hash(
    *,
    chain: str,
    position: int,
    recorded_at: dt.datetime,
    actor: str,
    subject: str | None,
    purpose: str,
    items: Sequence[str],
    method: str | None,
    previous_hash: str,
) -> str:
    """SHA-256 over a canonical JSON array of the fields (UTC time to the microsecond)."""
    moment = recorded_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    canonical = json.dumps(
        [chain, position, moment, actor, subject, purpose, list(items), method, previous_hash],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def expected_hash(record: AccessRecord) -> str:
    return record_hash(
        chain=record.chain,
        position=record.position,
        recorded_at=record.recorded_at,
        actor=record.actor,
        subject=record.subject,
        purpose=record.purpose,
        items=record.items,
        method=record.method,
        previous_hash=record.previous_hash,
    )


def seal(
    entry: AccessEntry,
    *,
    chain: str,
    position: int,
    recorded_at: dt.datetime,
    previous_hash: str,
) -> AccessRecord:
    """The record ``entry`` becomes at ``position`` of ``chain``, its hash computed."""
    unsealed = AccessRecord(
        chain=chain,
        position=position,
        recorded_at=recorded_at,
        actor=entry.actor,
        subject=entry.subject,
        purpose=entry.purpose,
        items=entry.items,
        method=entry.method,
        previous_hash=previous_hash,
        record_hash="",
    )
    return dataclasses.replace(unsealed, record_hash=expected_hash(unsealed))


@dataclass
class ChainVerdict:
    """What :func:`verify_chain` found; ``ok`` when nothing."""

    chain: str
    records: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {
            "chain": self.chain,
            "records": self.records,
            "ok": self.ok,
            "problems": list(self.problems),
        }


def merged_verdict(family: str, verdicts: Iterable[ChainVerdict]) -> ChainVerdict:
    """One verdict for every chain of a family (problems prefixed with their chain)."""
    merged = ChainVerdict(family)
    for verdict in verdicts:
        merged.records += verdict.records
        merged.problems += [f"{verdict.chain}: {problem}" for problem in verdict.problems]
    return merged


# Enough to say what is wrong without flooding a report when a whole table was rewritten.
MAX_PROBLEMS = 20


def verify_chain(
    chain: str, records: Iterable[AccessRecord], head: tuple[int, str] | None
) -> ChainVerdict:
    """Check ``records`` (in position order) against each other and the stored ``head``."""
    verdict = ChainVerdict(chain)
    previous = GENESIS_HASH
    expected_position = 1
    for record in records:
        verdict.records += 1
        if record.position != expected_position:
            verdict.problems.append(
                f"record at position {record.position} where {expected_position} was expected "
                "(a record was deleted or inserted)"
            )
            expected_position = record.position
        if record.previous_hash != previous:
            verdict.problems.append(
                f"record {record.position} does not follow the record before it "
                "(deleted, inserted or reordered records)"
            )
        if expected_hash(record) != record.record_hash:
            verdict.problems.append(f"record {record.position} was altered after it was written")
        previous = record.record_hash
        expected_position += 1
        if len(verdict.problems) >= MAX_PROBLEMS:
            verdict.problems.append("stopped after too many problems")
            return verdict
    last_position = expected_position - 1
    if head is None:
        if verdict.records:
            verdict.problems.append("records exist but the chain head is missing")
    else:
        head_position, head_hash = head
        if head_position != last_position or head_hash != previous:
            verdict.problems.append(
                f"the chain head names record {head_position} but the log ends at "
                f"{last_position} (records were removed from or added to the end)"
            )
    return verdict
