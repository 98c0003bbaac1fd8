"""The eligibility service's storage on the services layer (SQLAlchemy 2; SQLite or PostgreSQL).

:class:`SqlEligibilityRepository` implements the core's ``EligibilityRepository``: a check,
its consents and its access record are one transaction (the access record through the shared
hash-chained audit, ``mynakit.services.audit.store``), committed before the answer leaves.
:func:`bulk_load` imports insured records in one transaction: PostgreSQL's COPY, batched
inserts on SQLite.

Access records are spread over ``ACCESS_CHAINS`` audit chains by a hash of the person key:
appends to one chain are serialised by its head row, so one chain for every check in the
country would make every check wait for the previous one's commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    insert,
    null,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from mynakit.errors import UsageError
from mynakit.jpki.authentication import Challenge, NonceState
from mynakit.services.audit import AccessEntry as AuditEntry
from mynakit.services.audit import ChainVerdict
from mynakit.services.audit import store as audit_store
from mynakit.services.auth.store import consume_nonces
from mynakit.services.eligibility.codes import (
    ConsentScope,
    InsuredCardClassification,
    PersonalFamilyClassification,
    ReasonOfLoss,
    ReferenceClassification,
    Sex,
)
from mynakit.services.eligibility.core import (
    AccessEntry,
    CardHolder,
    CheckBatch,
    CheckRecord,
    CheckWrite,
    InsurerSummary,
)
from mynakit.services.eligibility.models import (
    Consent,
    ElderlyRecipientCertificate,
    InsuranceCardQuery,
    InsuredRecord,
    LimitCertificate,
    SpecificDiseaseCertificate,
)
from mynakit.services.store import Base, Database, UtcDateTime

SERVICE_CHAIN = "eligibility"
ACCESS_CHAINS = 16
ACCESS_CHAIN_PREFIX = "eligibility-"
# Rows per INSERT batch on SQLite, and how often progress is reported.
LOAD_BATCH = 5000


class InsuredRow(Base):
    __tablename__ = "eligibility_insured"
    __table_args__ = (
        UniqueConstraint(
            "insurer_number",
            "card_symbol",
            "card_number",
            "branch_number",
            "qualification_date",
            name="uq_eligibility_insured_card_qualification",
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    person_key: Mapped[str] = mapped_column(String(64), index=True)
    insurer_number: Mapped[str] = mapped_column(String(8))
    insurer_name: Mapped[str] = mapped_column(String(200))
    card_classification: Mapped[str] = mapped_column(String(2))
    card_symbol: Mapped[str] = mapped_column(String(38))
    card_number: Mapped[str] = mapped_column(String(38))
    branch_number: Mapped[str] = mapped_column(String(2))
    personal_family: Mapped[str] = mapped_column(String(1))
    insured_name: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    name_kana: Mapped[str] = mapped_column(String(200))
    name_of_other: Mapped[str | None] = mapped_column(String(200))
    name_of_other_kana: Mapped[str | None] = mapped_column(String(200))
    birth_date: Mapped[dt.date] = mapped_column(Date)
    sex1: Mapped[str] = mapped_column(String(1))
    sex2: Mapped[str | None] = mapped_column(String(1))
    address: Mapped[str | None] = mapped_column(String(400))
    post_number: Mapped[str | None] = mapped_column(String(8))
    qualification_date: Mapped[dt.date] = mapped_column(Date)
    disqualification_date: Mapped[dt.date | None] = mapped_column(Date)
    reason_of_loss: Mapped[str | None] = mapped_column(String(2))
    card_issuance_date: Mapped[dt.date | None] = mapped_column(Date)
    card_valid_from: Mapped[dt.date | None] = mapped_column(Date)
    card_valid_until: Mapped[dt.date | None] = mapped_column(Date)
    partial_contribution_ratio: Mapped[str | None] = mapped_column(String(3))
    elderly_certificate: Mapped[str | None] = mapped_column(Text)
    limit_certificate: Mapped[str | None] = mapped_column(Text)
    specific_diseases: Mapped[str | None] = mapped_column(Text)


class CardRow(Base):
    """A registered card: the authentication certificate's serial -> the insured person."""

    __tablename__ = "eligibility_cards"

    serial: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_key: Mapped[str] = mapped_column(String(64), index=True)
    registered_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    predecessor: Mapped[str | None] = mapped_column(String(64))
    superseded_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    # SHA-256 of the visual AP key enrolled for face/visual confirmation (no personal data).
    card_key: Mapped[str | None] = mapped_column(String(64))


class ConsentRow(Base):
    __tablename__ = "eligibility_consents"
    __table_args__ = (
        Index("ix_eligibility_consents_person_key", "person_key", "institution_code"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    person_key: Mapped[str] = mapped_column(String(64))
    institution_code: Mapped[str] = mapped_column(String(10))
    scope: Mapped[str] = mapped_column(String(64))
    given_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    method: Mapped[str] = mapped_column(String(32))


class CheckRow(Base):
    __tablename__ = "eligibility_checks"

    check_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    institution_code: Mapped[str] = mapped_column(String(10))
    person_key: Mapped[str] = mapped_column(String(64))
    checked_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    confirmation_date: Mapped[dt.date] = mapped_column(Date)
    reference_classification: Mapped[str] = mapped_column(String(1))
    method: Mapped[str] = mapped_column(String(32))
    confirmed_by: Mapped[str | None] = mapped_column(String(64))
    query: Mapped[str | None] = mapped_column(Text)


_INSURED_COLUMNS = [column.name for column in InsuredRow.__table__.columns if column.name != "id"]


def access_chain(person_key: str) -> str:
    """The audit chain of one person's access records (stable: a hash of the key)."""
    digest = hashlib.sha256(person_key.encode("utf-8")).digest()
    return f"{ACCESS_CHAIN_PREFIX}{int.from_bytes(digest[:4], 'big') % ACCESS_CHAINS}"


def record_to_row(record: InsuredRecord) -> dict[str, Any]:
    return {
        "person_key": record.person_key,
        "insurer_number": record.insurer_number,
        "insurer_name": record.insurer_name,
        "card_classification": record.card_classification.value,
        "card_symbol": record.card_symbol,
        "card_number": record.card_number,
        "branch_number": record.branch_number,
        "personal_family": record.personal_family.value,
        "insured_name": record.insured_name,
        "name": record.name,
        "name_kana": record.name_kana,
        "name_of_other": record.name_of_other,
        "name_of_other_kana": record.name_of_other_kana,
        "birth_date": record.birth_date,
        "sex1": record.sex1.value,
        "sex2": record.sex2.value if record.sex2 else None,
        "address": record.address,
        "post_number": record.post_number,
        "qualification_date": record.qualification_date,
        "disqualification_date": record.disqualification_date,
        "reason_of_loss": record.reason_of_loss.value if record.reason_of_loss else None,
        "card_issuance_date": record.card_issuance_date,
        "card_valid_from": record.card_valid_from,
        "card_valid_until": record.card_valid_until,
        "partial_contribution_ratio": record.partial_contribution_ratio,
        "elderly_certificate": (
            _json(record.elderly_certificate.to_message()) if record.elderly_certificate else None
        ),
        "limit_certificate": (
            _json(record.limit_certificate.to_message()) if record.limit_certificate else None
        ),
        "specific_diseases": (
            _json([item.to_message() for item in record.specific_diseases])
            if record.specific_diseases
            else None
        ),
    }


def row_to_record(row: InsuredRow | Row[Any]) -> InsuredRecord:
    return InsuredRecord(
        person_key=row.person_key,
        insurer_number=row.insurer_number,
        insurer_name=row.insurer_name,
        card_classification=InsuredCardClassification(row.card_classification),
        card_symbol=row.card_symbol,
        card_number=row.card_number,
        branch_number=row.branch_number,
        personal_family=PersonalFamilyClassification(row.personal_family),
        insured_name=row.insured_name,
        name=row.name,
        name_kana=row.name_kana,
        name_of_other=row.name_of_other,
        name_of_other_kana=row.name_of_other_kana,
        birth_date=row.birth_date,
        sex1=Sex(row.sex1),
        sex2=Sex(row.sex2) if row.sex2 else None,
        address=row.address,
        post_number=row.post_number,
        qualification_date=row.qualification_date,
        disqualification_date=row.disqualification_date,
        reason_of_loss=ReasonOfLoss(row.reason_of_loss) if row.reason_of_loss else None,
        card_issuance_date=row.card_issuance_date,
        card_valid_from=row.card_valid_from,
        card_valid_until=row.card_valid_until,
        partial_contribution_ratio=row.partial_contribution_ratio,
        elderly_certificate=(
            ElderlyRecipientCertificate.from_message(json.loads(row.elderly_certificate))
            if row.elderly_certificate
            else None
        ),
        limit_certificate=(
            LimitCertificate.from_message(json.loads(row.limit_certificate))
            if row.limit_certificate
            else None
        ),
        specific_diseases=tuple(
            SpecificDiseaseCertificate.from_message(item)
            for item in (json.loads(row.specific_diseases) if row.specific_diseases else ())
        ),
    )


class DuplicateRecordError(UsageError):
    """A bulk load met a record already loaded (same card and qualification date)."""


Progress = Callable[[int], None]


def bulk_load(
    database: Database,
    records: Iterable[InsuredRecord],
    *,
    progress: Progress | None = None,
) -> int:
    """Load insured records in ONE transaction: all of them, or none when any is refused.

    PostgreSQL gets them through ``COPY ... FROM STDIN`` (the fast path its documentation
    recommends for bulk loading, "Populating a Database" §14.4.2); SQLite through
    batched INSERTs. ``progress`` is called with the running count.
    """
    count = 0
    try:
        with database.transaction() as session:
            if database.dialect == "postgresql":
                count = _copy_postgresql(session, records, progress)
            else:
                count = _insert_sqlite(session, records, progress)
    except IntegrityError as error:
        raise DuplicateRecordError(
            "a record for the same card and qualification date is already loaded "
            "(nothing of this load was kept)"
        ) from error
    except Exception as error:
        if type(error).__name__ in ("UniqueViolation", "IntegrityError"):
            raise DuplicateRecordError(
                "a record for the same card and qualification date is already loaded "
                "(nothing of this load was kept)"
            ) from error
        raise
    return count


def _copy_postgresql(
    session: Session, records: Iterable[InsuredRecord], progress: Progress | None
) -> int:
    raw = session.connection().connection.driver_connection
    if raw is None:
        raise UsageError("no PostgreSQL connection for COPY")
    columns = ", ".join(_INSURED_COLUMNS)
    count = 0
    statement = f"COPY eligibility_insured ({columns}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for record in records:
            row = record_to_row(record)
            copy.write_row([row[name] for name in _INSURED_COLUMNS])
            count += 1
            if progress is not None and count % LOAD_BATCH == 0:
                progress(count)
    if progress is not None:
        progress(count)
    return count


def _insert_sqlite(
    session: Session, records: Iterable[InsuredRecord], progress: Progress | None
) -> int:
    # The DB-API's executemany with one prepared INSERT: several times faster than building
    # an ORM statement per batch (the load is one transaction either way).
    raw = session.connection().connection.driver_connection
    if raw is None:
        raise UsageError("no SQLite connection for the load")
    columns = ", ".join(_INSURED_COLUMNS)
    marks = ", ".join("?" for _ in _INSURED_COLUMNS)
    # Column names are this module's constants; values go as parameters.
    statement = f"INSERT INTO eligibility_insured ({columns}) VALUES ({marks})"  # noqa: S608
    count = 0
    cursor = raw.cursor()
    try:
        for batch in _batches(records, LOAD_BATCH):
            rows = [record_to_row(record) for record in batch]
            cursor.executemany(
                statement,
                [tuple(_sqlite_value(row[name]) for name in _INSURED_COLUMNS) for row in rows],
            )
            count += len(batch)
            if progress is not None:
                progress(count)
    finally:
        cursor.close()
    return count


def _sqlite_value(value: Any) -> Any:
    # SQLAlchemy stores dates on SQLite as ISO text; the raw driver must write the same.
    return value.isoformat() if isinstance(value, dt.date) else value


def _batches(records: Iterable[InsuredRecord], size: int) -> Iterator[list[InsuredRecord]]:
    batch: list[InsuredRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class SqlEligibilityRepository:
    """The core's ``EligibilityRepository`` over one :class:`Database`."""

    def __init__(self, database: Database, *, nonce_purpose: str | None = None) -> None:
        self.database = database
        # The purpose of the authenticator's nonces in this database (its DatabaseNonceStore),
        # so a PIN check consumes its nonce in the check's own transaction.
        self.nonce_purpose = nonce_purpose

    @classmethod
    def open(cls, url: str | None = None) -> SqlEligibilityRepository:
        return cls(Database.open(url, chains=[SERVICE_CHAIN]))

    def add_records(self, records: Iterable[InsuredRecord]) -> int:
        return bulk_load(self.database, records)

    def insurers(self) -> list[InsurerSummary]:
        with self.database.transaction() as session:
            rows = session.execute(
                select(
                    InsuredRow.insurer_number,
                    func.min(InsuredRow.insurer_name),
                    func.count(),
                )
                .group_by(InsuredRow.insurer_number)
                .order_by(InsuredRow.insurer_number)
            ).all()
        return [InsurerSummary(number, name, count) for number, name, count in rows]

    def records_for_person(self, person_key: str) -> list[InsuredRecord]:
        with self.database.transaction() as session:
            rows = session.scalars(
                select(InsuredRow).where(InsuredRow.person_key == person_key)
            ).all()
            return [row_to_record(row) for row in rows]

    def find_by_card(self, query: InsuranceCardQuery) -> list[InsuredRecord]:
        with self.database.transaction() as session:
            rows = session.scalars(
                select(InsuredRow).where(
                    InsuredRow.insurer_number == query.insurer_number,
                    InsuredRow.card_symbol == query.card_symbol,
                    InsuredRow.card_number == query.card_number,
                    InsuredRow.branch_number == query.branch_number,
                    InsuredRow.birth_date == query.birth_date,
                )
            ).all()
            return [row_to_record(row) for row in rows]

    def person_for_serial(self, serial: int) -> str | None:
        with self.database.transaction() as session:
            return session.scalars(
                select(CardRow.person_key).where(
                    CardRow.serial == str(serial), CardRow.superseded_at.is_(None)
                )
            ).one_or_none()

    def card_holder(self, serial: int, institution_code: str) -> CardHolder | None:
        with self.database.transaction() as session:
            return _card_holder(session, serial, institution_code)

    def card_key_for_serial(self, serial: int) -> str | None:
        with self.database.transaction() as session:
            return session.scalars(
                select(CardRow.card_key).where(
                    CardRow.serial == str(serial), CardRow.superseded_at.is_(None)
                )
            ).one_or_none()

    def bind_serial(
        self,
        serial: int,
        person_key: str,
        at: dt.datetime,
        predecessor: int | None,
        card_key: str | None = None,
    ) -> str:
        with self.database.transaction() as session:
            dialect_insert = (
                postgresql.insert if self.database.dialect == "postgresql" else sqlite.insert
            )
            session.execute(
                dialect_insert(CardRow)
                .values(
                    serial=str(serial),
                    person_key=person_key,
                    registered_at=at,
                    predecessor=str(predecessor) if predecessor is not None else None,
                    superseded_at=None,
                )
                .on_conflict_do_nothing(index_elements=["serial"])
            )
            bound = session.scalars(
                select(CardRow.person_key).where(CardRow.serial == str(serial))
            ).one()
            if bound == person_key and predecessor is not None:
                inherited = session.scalars(
                    select(CardRow.card_key).where(CardRow.serial == str(predecessor))
                ).one_or_none()
                session.execute(
                    update(CardRow)
                    .where(CardRow.serial == str(predecessor), CardRow.superseded_at.is_(None))
                    .values(superseded_at=at)
                )
                if inherited is not None and card_key is None:
                    card_key = inherited
            if bound == person_key and card_key is not None:
                session.execute(
                    update(CardRow).where(CardRow.serial == str(serial)).values(card_key=card_key)
                )
        return bound

    def consents_for(self, institution_code: str, person_key: str) -> list[Consent]:
        with self.database.transaction() as session:
            statement = select(ConsentRow).where(ConsentRow.person_key == person_key)
            if institution_code != "*":
                statement = statement.where(ConsentRow.institution_code == institution_code)
            rows = session.scalars(statement.order_by(ConsentRow.id)).all()
            return [_consent(row) for row in rows]

    def commit_check(
        self, check: CheckRecord, consents: Sequence[Consent], access: AccessEntry
    ) -> None:
        with self.database.transaction() as session:
            _record_check(session, check, consents, access)

    @contextmanager
    def check_batch(self) -> Iterator[CheckBatch | None]:
        """One transaction for a batch of PIN checks; ``None`` unless this repository was
        told the purpose of the authenticator's nonces (they live in the same database)."""
        if self.nonce_purpose is None:
            yield None
            return
        with self.database.transaction() as session:
            yield _SqlCheckBatch(session, self.nonce_purpose)

    def find_check(self, check_id: str) -> CheckRecord | None:
        with self.database.transaction() as session:
            row = session.get(CheckRow, check_id)
            if row is None:
                return None
            return CheckRecord(
                check_id=row.check_id,
                institution_code=row.institution_code,
                person_key=row.person_key,
                checked_at=row.checked_at,
                confirmation_date=row.confirmation_date,
                reference_classification=ReferenceClassification(row.reference_classification),
                method=row.method,
                confirmed_by=row.confirmed_by,
                query=InsuranceCardQuery.from_message(json.loads(row.query)) if row.query else None,
            )

    def access_records(self, subject: str) -> list[AccessEntry]:
        with self.database.transaction() as session:
            records = audit_store.records_for(session, access_chain(subject), subject)
        return [
            AccessEntry(
                subject=subject,
                institution_code=record.actor,
                accessed_at=record.recorded_at,
                purpose=record.purpose,
                items=record.items,
                method=record.method or "",
            )
            for record in reversed(records)
        ]

    def institution_access_records(self, institution_code: str) -> list[AccessEntry]:
        """An institution's own access records (for its audit), never another's."""
        entries: list[AccessEntry] = []
        with self.database.transaction() as session:
            for chain in range(ACCESS_CHAINS):
                rows = session.scalars(
                    select(audit_store.AuditRecordRow).where(
                        audit_store.AuditRecordRow.chain == f"{ACCESS_CHAIN_PREFIX}{chain}",
                        audit_store.AuditRecordRow.actor == institution_code,
                    )
                ).all()
                entries.extend(
                    AccessEntry(
                        subject=row.subject or "",
                        institution_code=row.actor,
                        accessed_at=row.recorded_at,
                        purpose=row.purpose,
                        items=tuple(json.loads(row.items)),
                        method=row.method or "",
                    )
                    for row in rows
                )
        return sorted(entries, key=lambda entry: entry.accessed_at)

    def verify_access_chains(self) -> list[ChainVerdict]:
        """Verify every access-record chain of the service."""
        names = [c for c in audit_store.chains(self.database) if c.startswith(ACCESS_CHAIN_PREFIX)]
        return [audit_store.verify(self.database, name) for name in names]

    def count_records(self) -> int:
        with self.database.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(InsuredRow)) or 0)


# The hot path's read, built once, as one Core statement on the session's connection (no ORM
# objects, one round trip): the active cards' people with every record of theirs (an outer
# join, so a bound person without records still resolves), and under them (UNION ALL) those
# people's consents at the institutions asked about. A row with a serial is a record row; a
# row without one is a consent row. The columns the other branch lacks are typed NULLs, so
# each column is converted the same way on both databases.
_INSURED = InsuredRow.__table__
_CARDS = CardRow.__table__
_CONSENTS = ConsentRow.__table__
_CONSENT_FIELDS = ("id", "institution_code", "scope", "given_at", "expires_at", "method")
_ACTIVE_CARDS = _CARDS.c.serial.in_(bindparam("serials", expanding=True)) & (
    _CARDS.c.superseded_at.is_(None)
)
_HOLDER_RECORDS = (
    select(
        _CARDS.c.serial,
        _CARDS.c.person_key.label("bound_person"),
        *_INSURED.c,
        *(
            type_coerce(null(), _CONSENTS.c[name].type).label(f"consent_{name}")
            for name in _CONSENT_FIELDS
        ),
    )
    .select_from(_CARDS.outerjoin(_INSURED, _INSURED.c.person_key == _CARDS.c.person_key))
    .where(_ACTIVE_CARDS)
)
_HOLDER_CONSENTS = select(
    type_coerce(null(), _CARDS.c.serial.type).label("serial"),
    _CONSENTS.c.person_key.label("bound_person"),
    *(type_coerce(null(), column.type).label(column.name) for column in _INSURED.c),
    *(_CONSENTS.c[name].label(f"consent_{name}") for name in _CONSENT_FIELDS),
).where(
    _CONSENTS.c.person_key.in_(select(_CARDS.c.person_key).where(_ACTIVE_CARDS)),
    _CONSENTS.c.institution_code.in_(bindparam("institution_codes", expanding=True)),
)
_HOLDERS = union_all(_HOLDER_RECORDS, _HOLDER_CONSENTS)
_INSERT_CHECK = insert(CheckRow)
_INSERT_CONSENT = insert(ConsentRow)


def _card_holder(session: Session, serial: int, institution_code: str) -> CardHolder | None:
    return _card_holders(session, [(serial, institution_code)])[0]


def _card_holders(session: Session, keys: Sequence[tuple[int, str]]) -> list[CardHolder | None]:
    """One statement for any number of ``(serial, institution_code)``."""
    if not keys:
        return []
    people: dict[str, str] = {}
    records: dict[str, list[tuple[int, InsuredRecord]]] = {}
    consents: dict[tuple[str, str], list[tuple[int, Consent]]] = {}
    rows = session.connection().execute(
        _HOLDERS,
        {
            "serials": sorted({str(serial) for serial, _ in keys}),
            "institution_codes": sorted({institution for _, institution in keys}),
        },
    )
    for row in rows:
        if row.serial is None:
            consent = Consent(
                institution_code=row.consent_institution_code,
                scope=ConsentScope(row.consent_scope),
                given_at=row.consent_given_at,
                expires_at=row.consent_expires_at,
                method=row.consent_method,
            )
            given = consents.setdefault((row.bound_person, consent.institution_code), [])
            given.append((row.consent_id, consent))
            continue
        people[row.serial] = row.bound_person
        found = records.setdefault(row.bound_person, [])
        if row.id is not None:
            found.append((row.id, row_to_record(row)))
    holders: list[CardHolder | None] = []
    for serial, institution in keys:
        person = people.get(str(serial))
        holders.append(
            None
            if person is None
            else CardHolder(
                person,
                [record for _, record in sorted(records[person], key=_first)],
                [
                    consent
                    for _, consent in sorted(consents.get((person, institution), ()), key=_first)
                ],
            )
        )
    return holders


def _first(pair: tuple[int, Any]) -> int:
    return pair[0]


def _record_check(
    session: Session, check: CheckRecord, consents: Sequence[Consent], access: AccessEntry
) -> None:
    _record_checks(session, [CheckWrite(check, consents, access)])


def _record_checks(session: Session, writes: Sequence[CheckWrite]) -> None:
    """Core multi-row INSERTs (no ORM objects to flush), in the caller's transaction: the
    checks, the consents given with them, their access records (one append for all)."""
    if not writes:
        return
    connection = session.connection()
    # One multi-row INSERT statement (a statement per row count, compiled once each) rather
    # than executemany, which the PostgreSQL driver sends as one statement per row.
    connection.execute(
        _INSERT_CHECK.values(
            [
                {
                    "check_id": write.check.check_id,
                    "institution_code": write.check.institution_code,
                    "person_key": write.check.person_key,
                    "checked_at": write.check.checked_at,
                    "confirmation_date": write.check.confirmation_date,
                    "reference_classification": write.check.reference_classification.value,
                    "method": write.check.method,
                    "confirmed_by": write.check.confirmed_by,
                    "query": _json(write.check.query.to_message()) if write.check.query else None,
                }
                for write in writes
            ]
        )
    )
    consents = [
        {
            "person_key": write.check.person_key,
            "institution_code": consent.institution_code,
            "scope": consent.scope.value,
            "given_at": consent.given_at,
            "expires_at": consent.expires_at,
            "method": consent.method,
        }
        for write in writes
        for consent in write.consents
    ]
    if consents:
        connection.execute(_INSERT_CONSENT.values(consents))
    # One append per access time (a batch's checks share theirs): the audit stamps each
    # append's records with one time.
    start = 0
    while start < len(writes):
        at = writes[start].access.accessed_at
        end = start
        while end < len(writes) and writes[end].access.accessed_at == at:
            end += 1
        audit_store.append_many(
            session,
            [
                (
                    access_chain(write.access.subject),
                    AuditEntry(
                        actor=write.access.institution_code,
                        subject=write.access.subject,
                        purpose=write.access.purpose,
                        items=write.access.items,
                        method=write.access.method,
                    ),
                )
                for write in writes[start:end]
            ],
            at=at,
        )
        start = end


class _SqlCheckBatch:
    """The core's ``CheckBatch`` on one open session (one transaction)."""

    def __init__(self, session: Session, nonce_purpose: str) -> None:
        self._session = session
        self._nonce_purpose = nonce_purpose

    def consume_pin_nonces(
        self, challenge_ids: Sequence[str], at: dt.datetime
    ) -> list[tuple[NonceState, Challenge | None]]:
        return consume_nonces(self._session.connection(), self._nonce_purpose, challenge_ids, at)

    def card_holders(self, keys: Sequence[tuple[int, str]]) -> list[CardHolder | None]:
        return _card_holders(self._session, keys)

    def commit_checks(self, writes: Sequence[CheckWrite]) -> None:
        _record_checks(self._session, writes)


def _consent(row: ConsentRow | Row[Any]) -> Consent:
    return Consent(
        institution_code=row.institution_code,
        scope=ConsentScope(row.scope),
        given_at=row.given_at,
        expires_at=row.expires_at,
        method=row.method,
    )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
