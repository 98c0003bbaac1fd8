"""The MyKey platform's tables and its :class:`~mynakit.services.mykey.core.MyKeyRepository`
over SQLAlchemy: one repository per transaction, committed when the operation's block ends.
A uniqueness race (the same serial registered twice at once, a random ID drawn twice) surfaces
as :class:`~mynakit.services.mykey.core.StoreRaceError` and the core retries the operation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import cast

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    delete,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from mynakit.jpki.authentication import Challenge, NonceState
from mynakit.services.audit import AccessEntry, AccessRecord, shard_chain
from mynakit.services.audit import store as audit
from mynakit.services.auth.store import ClientRow, consume_nonces
from mynakit.services.mykey.core import (
    AUDIT_CHAIN,
    AUDIT_SHARDS,
    EARLIER_AUDIT_SHARDS,
    PIN_NONCE_PURPOSE,
    Holder,
    Link,
    MyKeyRepository,
    ServiceInfo,
    StoreRaceError,
)
from mynakit.services.store import Base, Database, UtcDateTime

CHAIN = "mykey"  # the Alembic chain (mykey/migrations)


class SettingRow(Base):
    __tablename__ = "mykey_settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class HolderRow(Base):
    __tablename__ = "mykey_holders"

    holder_ref: Mapped[str] = mapped_column(String(32), primary_key=True)
    mykey_id: Mapped[str] = mapped_column(String(32))
    unique_key: Mapped[str] = mapped_column(String(48), unique=True)
    scheme: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    serial_link_consent: Mapped[bool] = mapped_column(Boolean)
    tap_key: Mapped[str | None] = mapped_column(String(64))
    id_clashes: Mapped[int] = mapped_column(Integer)
    registered_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    def to_holder(self) -> Holder:
        return Holder(
            holder_ref=self.holder_ref,
            mykey_id=self.mykey_id,
            scheme=self.scheme,
            status=self.status,
            serial_link_consent=self.serial_link_consent,
            tap_key=self.tap_key,
            id_clashes=self.id_clashes,
            registered_at=self.registered_at,
            unique_key=self.unique_key,
        )


class SerialRow(Base):
    __tablename__ = "mykey_serials"

    serial: Mapped[str] = mapped_column(String(48), primary_key=True)
    holder_ref: Mapped[str] = mapped_column(
        String(32), ForeignKey("mykey_holders.holder_ref"), index=True
    )
    current: Mapped[bool] = mapped_column(Boolean)
    bound_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class ServiceRow(Base):
    __tablename__ = "mykey_services"

    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey(ClientRow.client_id), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(200))
    require_pin: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class LinkRow(Base):
    __tablename__ = "mykey_links"
    __table_args__ = (
        UniqueConstraint("client_id", "service_user_id", name="uq_mykey_links_service_user"),
    )

    holder_ref: Mapped[str] = mapped_column(
        String(32), ForeignKey("mykey_holders.holder_ref"), primary_key=True
    )
    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("mykey_services.client_id"), primary_key=True
    )
    service_user_id: Mapped[str] = mapped_column(String(64))
    linked_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class SqlMyKeyRepository:
    def __init__(self, session: Session, secret_cache: dict[str, bytes]) -> None:
        self.session = session
        # The PPID secret never changes after the migration drew it: read once per process.
        self._secret_cache = secret_cache

    def ppid_secret(self) -> bytes:
        secret = self._secret_cache.get("ppid_secret")
        if secret is None:
            row = self.session.get(SettingRow, "ppid_secret")
            if row is None:
                raise StoreRaceError("the MyKey settings are missing: run the migrations")
            secret = self._secret_cache["ppid_secret"] = bytes.fromhex(row.value)
        return secret

    def holder_for_serial(self, serial: int, *, current_only: bool = True) -> Holder | None:
        # Core statements built once, not ORM objects: this runs in every resolution.
        statement = _CURRENT_HOLDER_OF_SERIAL if current_only else _HOLDER_OF_SERIAL
        row = self.session.connection().execute(statement, {"serial": str(serial)}).first()
        return Holder(*row) if row is not None else None

    def holder(self, holder_ref: str) -> Holder | None:
        row = self.session.get(HolderRow, holder_ref)
        return row.to_holder() if row is not None else None

    def mykey_id_taken(self, unique_key: str) -> bool:
        found = self.session.scalars(
            select(HolderRow.holder_ref).where(HolderRow.unique_key == unique_key)
        ).first()
        return found is not None

    def add_holder(self, holder: Holder, serial: int) -> None:
        self.session.add(
            HolderRow(
                holder_ref=holder.holder_ref,
                mykey_id=holder.mykey_id,
                unique_key=holder.unique_key,
                scheme=holder.scheme,
                status=holder.status,
                serial_link_consent=holder.serial_link_consent,
                tap_key=holder.tap_key,
                id_clashes=holder.id_clashes,
                registered_at=holder.registered_at,
            )
        )
        self.session.flush()
        self.session.add(
            SerialRow(
                serial=str(serial),
                holder_ref=holder.holder_ref,
                current=True,
                bound_at=holder.registered_at,
            )
        )
        self._flush()

    def save_holder(self, holder: Holder) -> None:
        row = self.session.get(HolderRow, holder.holder_ref)
        if row is None:
            raise StoreRaceError("the holder disappeared")
        row.mykey_id = holder.mykey_id
        row.unique_key = holder.unique_key
        row.scheme = holder.scheme
        row.status = holder.status
        row.serial_link_consent = holder.serial_link_consent
        row.tap_key = holder.tap_key
        row.id_clashes = holder.id_clashes
        row.registered_at = holder.registered_at
        self._flush()

    def bind_serial(self, holder_ref: str, serial: int, at: dt.datetime) -> None:
        for row in self.session.scalars(
            select(SerialRow).where(SerialRow.holder_ref == holder_ref, SerialRow.current)
        ):
            row.current = False
        self.session.add(
            SerialRow(serial=str(serial), holder_ref=holder_ref, current=True, bound_at=at)
        )
        self._flush()

    def links(self, holder_ref: str) -> list[Link]:
        rows = self.session.execute(
            select(LinkRow, ServiceRow.name)
            .join(ServiceRow, ServiceRow.client_id == LinkRow.client_id)
            .where(LinkRow.holder_ref == holder_ref)
            .order_by(LinkRow.linked_at)
        )
        return [
            Link(row.holder_ref, row.client_id, row.service_user_id, row.linked_at, name)
            for row, name in rows
        ]

    def link(self, holder_ref: str, client_id: str) -> Link | None:
        row = (
            self.session.connection()
            .execute(_LINK, {"holder_ref": holder_ref, "client_id": client_id})
            .first()
        )
        return Link(holder_ref, client_id, row[0], row[1]) if row is not None else None

    def add_link(self, link: Link) -> None:
        self.session.add(
            LinkRow(
                holder_ref=link.holder_ref,
                client_id=link.client_id,
                service_user_id=link.service_user_id,
                linked_at=link.linked_at,
            )
        )
        try:
            self.session.flush()
        except IntegrityError as error:
            from mynakit.services.errors import ConflictError

            raise ConflictError(
                "this service user ID is already linked to another holder"
            ) from error

    def remove_link(self, holder_ref: str, client_id: str) -> bool:
        row = self.session.get(LinkRow, (holder_ref, client_id))
        if row is None:
            return False
        self.session.delete(row)
        self.session.flush()
        return True

    def remove_links(self, holder_ref: str) -> None:
        self.session.execute(delete(LinkRow).where(LinkRow.holder_ref == holder_ref))

    def service(self, client_id: str) -> ServiceInfo | None:
        row = self.session.connection().execute(_SERVICE, {"client_id": client_id}).first()
        return ServiceInfo(client_id, row[0], bool(row[1])) if row is not None else None

    def counter_lookups(
        self, pairs: Sequence[tuple[str, int]]
    ) -> list[tuple[ServiceInfo | None, Holder | None, Link | None]]:
        if not pairs:
            return []
        services: dict[str, ServiceInfo] = {}
        found: dict[tuple[str, str], tuple[Holder, Link | None]] = {}
        rows = self.session.connection().execute(
            _COUNTER_LOOKUPS,
            {
                "client_ids": sorted({client_id for client_id, _ in pairs}),
                "serials": sorted({str(serial) for _, serial in pairs}),
            },
        )
        for row in rows:
            client_id, name, require_pin, serial = row[:4]
            services.setdefault(client_id, ServiceInfo(client_id, name, bool(require_pin)))
            holder_fields = row[4 : 4 + len(_HOLDER_COLUMNS)]
            if serial is None or holder_fields[0] is None:
                continue  # the service matched, no requested serial is bound
            holder = Holder(*holder_fields)
            service_user_id, linked_at = row[4 + len(_HOLDER_COLUMNS) :]
            link = (
                Link(holder.holder_ref, client_id, service_user_id, linked_at)
                if service_user_id is not None
                else None
            )
            found[(client_id, serial)] = (holder, link)
        answers: list[tuple[ServiceInfo | None, Holder | None, Link | None]] = []
        for client_id, serial in pairs:
            service = services.get(client_id)
            bound = found.get((client_id, str(serial))) if service is not None else None
            if bound is None:
                answers.append((service, None, None))
            else:
                # Each request gets its own Holder: the core may change one it was given.
                holder, link = bound
                answers.append((service, replace(holder), link))
        return answers

    def consume_pin_nonces(
        self, challenge_ids: Sequence[str], at: dt.datetime
    ) -> list[tuple[NonceState, Challenge | None]]:
        return consume_nonces(self.session.connection(), PIN_NONCE_PURPOSE, challenge_ids, at)

    def add_service(self, service: ServiceInfo, at: dt.datetime) -> None:
        self.session.add(
            ServiceRow(
                client_id=service.client_id,
                name=service.name,
                require_pin=service.require_pin,
                created_at=at,
            )
        )
        self._flush()

    def service_links(self, client_id: str, limit: int) -> list[Link]:
        rows = self.session.scalars(
            select(LinkRow)
            .where(LinkRow.client_id == client_id)
            .order_by(LinkRow.linked_at)
            .limit(limit)
        )
        return [
            Link(row.holder_ref, row.client_id, row.service_user_id, row.linked_at) for row in rows
        ]

    def record_access(
        self, *, actor: str, subject: str, purpose: str, items: list[str], method: str | None
    ) -> None:
        self.record_accesses([AccessEntry(actor, subject, purpose, tuple(items), method)])

    def record_accesses(self, entries: Sequence[AccessEntry]) -> None:
        # Sharded by subject, so a holder's records stay in one chain (audit.shard_chain).
        audit.append_many(
            self.session,
            [
                (shard_chain(AUDIT_CHAIN, entry.subject or "", AUDIT_SHARDS), entry)
                for entry in entries
            ],
        )

    def access_records(self, subject: str) -> list[AccessRecord]:
        chains = {
            shard_chain(AUDIT_CHAIN, subject, shards)
            for shards in (AUDIT_SHARDS, *EARLIER_AUDIT_SHARDS)
        }
        records = [
            record for chain in chains for record in audit.records_for(self.session, chain, subject)
        ]
        # Newest first, as records_for answers for one chain.
        records.sort(key=lambda record: (record.recorded_at, record.position), reverse=True)
        return records

    def _flush(self) -> None:
        try:
            self.session.flush()
        except IntegrityError as error:
            raise StoreRaceError("a concurrent request changed the same record") from error


_HOLDERS = cast("Table", HolderRow.__table__)
_SERIALS = cast("Table", SerialRow.__table__)
_LINKS = cast("Table", LinkRow.__table__)
_SERVICES = cast("Table", ServiceRow.__table__)
# In the order of Holder's fields.
_HOLDER_COLUMNS = (
    _HOLDERS.c.holder_ref,
    _HOLDERS.c.mykey_id,
    _HOLDERS.c.scheme,
    _HOLDERS.c.status,
    _HOLDERS.c.serial_link_consent,
    _HOLDERS.c.tap_key,
    _HOLDERS.c.id_clashes,
    _HOLDERS.c.registered_at,
    _HOLDERS.c.unique_key,
)
_HOLDER_OF_SERIAL = (
    select(*_HOLDER_COLUMNS)
    .join(_SERIALS, _SERIALS.c.holder_ref == _HOLDERS.c.holder_ref)
    .where(_SERIALS.c.serial == bindparam("serial"))
)
_CURRENT_HOLDER_OF_SERIAL = _HOLDER_OF_SERIAL.where(_SERIALS.c.current.is_(True))
_LINK = select(_LINKS.c.service_user_id, _LINKS.c.linked_at).where(
    _LINKS.c.holder_ref == bindparam("holder_ref"), _LINKS.c.client_id == bindparam("client_id")
)
# The services, the holders bound to the serials and their links, in one round trip (every
# batch of resolutions asks exactly this): a row per (service, bound serial); the outer joins
# leave the holder and link empty when no serial is bound, the link when there is none.
_COUNTER_LOOKUPS = (
    select(
        _SERVICES.c.client_id,
        _SERVICES.c.name,
        _SERVICES.c.require_pin,
        _SERIALS.c.serial,
        *_HOLDER_COLUMNS,
        _LINKS.c.service_user_id,
        _LINKS.c.linked_at,
    )
    .select_from(
        _SERVICES.outerjoin(
            _SERIALS,
            and_(
                _SERIALS.c.serial.in_(bindparam("serials", expanding=True)),
                _SERIALS.c.current.is_(True),
            ),
        )
        .outerjoin(_HOLDERS, _HOLDERS.c.holder_ref == _SERIALS.c.holder_ref)
        .outerjoin(
            _LINKS,
            and_(
                _LINKS.c.holder_ref == _SERIALS.c.holder_ref,
                _LINKS.c.client_id == _SERVICES.c.client_id,
            ),
        )
    )
    .where(_SERVICES.c.client_id.in_(bindparam("client_ids", expanding=True)))
)
_SERVICE = select(_SERVICES.c.name, _SERVICES.c.require_pin).where(
    _SERVICES.c.client_id == bindparam("client_id")
)


def unit_of_work(database: Database) -> UnitOfWorkFactory:
    return UnitOfWorkFactory(database)


class UnitOfWorkFactory:
    """Callable giving a repository inside one committed-on-exit transaction."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._secret_cache: dict[str, bytes] = {}

    @contextmanager
    def __call__(self) -> Iterator[MyKeyRepository]:
        try:
            with self.database.transaction() as session:
                yield SqlMyKeyRepository(session, self._secret_cache)
        except IntegrityError as error:
            raise StoreRaceError("a concurrent request changed the same record") from error
