"""MyKey platform rules, with no web framework and no SQL (docs/services.md §B).

* Register (docs/services.md §B.2): a holder authenticates with the card (auth PIN) and gets one
* MyKey ID bound
  to the authentication certificate's serial; registering again returns the same one.
  Schemes: ``issued8`` (8 random alphanumerics, changeable and revocable by the holder) and
  ``cn14`` (the 14-character random part of the certificate's CN, unique together with the
  9-character terminal code; the "14 + 9" form is UNCONFIRMED in docs/services.md §B.2, kept as a
  named scheme).
* Renewal (docs/services.md §B.4): an unknown serial is looked up through the issuer link's
* previous-serial
  chain (only for holders who consented at registration); the MyKey ID and every link move to
  the new serial and the old ones stop resolving.
* Services (docs/services.md §B.3): a service links its own user ID to a holder (holder present,
* card
  authenticated); at its counter the card resolves to that ID and to a pairwise pseudonymous
  ID (PPID) unique to (holder, service). No answer to a service holds the MyKey ID, another
  service's ID or another service's PPID.
* Tap mode (かざし, docs/services.md §B.3 "Type 1", docs/services.md §B.5): the authentication
* certificate read without PIN plus
  the visual AP's card-presence proof (docs/card.md §7.13) for a card key enrolled at a PIN
  registration. Results carry the assurance (``pin`` or ``tap``); services that require PIN
  refuse tap.
* Every resolution, registration and holder read appends an access record (who, when,
  purpose, items: never content) to the ``mykey`` chain; the platform keeps mapping tables
  only, no usage history beyond those records (docs/services.md §B.1).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import string
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from mynakit.card.cv_certificate import CardCaKeys
from mynakit.card.presence import PresenceProof
from mynakit.errors import MynakitError
from mynakit.jpki.authentication import (
    Authenticator,
    Challenge,
    ChallengeResponse,
    NonceState,
    NonceStore,
    RevokedCertificateError,
    VerifiedIdentity,
    WrongCertificateKindError,
)
from mynakit.jpki.certificates import CertificateKind, parse_certificate
from mynakit.jpki.revocation import RevocationChecker
from mynakit.jpki.trust import TrustStore
from mynakit.jpki.validation import CertificateValidationError, ValidationFailure, validate_path
from mynakit.services.audit import AccessEntry, AccessRecord
from mynakit.services.auth.presence import PresenceChallenges, PresenceRefusedError
from mynakit.services.errors import (
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
)
from mynakit.services.issuer_link import IssuerLink, SerialLinkConsentError, predecessors

AUDIT_CHAIN = "mykey"  # a family of chains "mykey/<n>", one per shard of holders
# Each batch of resolutions locks the heads of the chains its holders' records go to until it
# commits, so two batches wait for each other only when they share a chain: with 16 chains
# almost every pair of batches did, and the batches of all workers committed one after the
# other; with 256, most pairs share none (tools/bench/README.md, bench_mykey.py).
AUDIT_SHARDS = 256
# Records written before AUDIT_SHARDS was 256 sit in the holder's chain among 16 (the same
# digest modulo 16): a holder's history lists both.
EARLIER_AUDIT_SHARDS = (16,)
# The nonce store purposes of PIN challenges and tap challenges (auth_nonces.purpose).
PIN_NONCE_PURPOSE = "mykey-pin"
TAP_NONCE_PURPOSE = "mykey-tap"
SCHEMES = ("issued8", "cn14")
ISSUED8_LENGTH = 8
ISSUED8_ALPHABET = string.ascii_uppercase + string.digits
# docs/services.md §B.2: after three duplicate errors the portal offers a random ID.
CLASHES_BEFORE_SUGGESTION = 3
ASSURANCE_PIN = "pin"
ASSURANCE_TAP = "tap"
TAP_NONCE_LIFETIME = dt.timedelta(minutes=2)
SERVICE_USER_ID_MAX = 64
# Retries of a whole operation when a concurrent one won a uniqueness race (same serial
# registered twice at once, the same random ID drawn twice).
_RACE_RETRIES = 5


class RegistrationRequiredError(NotFoundError):
    code = "not_registered"


class MyKeyIdRevokedError(ForbiddenError):
    code = "mykey_id_revoked"


class PinRequiredError(ForbiddenError):
    code = "pin_required"


class TapNotEnrolledError(ForbiddenError):
    code = "tap_not_enrolled"


class TapRefusedError(ForbiddenError):
    code = "tap_refused"


class StoreRaceError(ConflictError):
    """A uniqueness constraint fired because a concurrent transaction won: retry."""

    code = "concurrent_update"


# -- values ------------------------------------------------------------------------------------


@dataclass
class Holder:
    holder_ref: str  # platform-internal, random; the subject of access records
    mykey_id: str
    scheme: str
    status: str  # "active" or "revoked"
    serial_link_consent: bool
    tap_key: str | None  # SHA-256 of the enrolled card key, hex
    id_clashes: int
    registered_at: dt.datetime
    unique_key: str  # the MyKey ID (issued8) or "<CN string>:<terminal code>" (cn14)


@dataclass(frozen=True)
class ServiceInfo:
    client_id: str
    name: str
    require_pin: bool


@dataclass(frozen=True)
class Link:
    holder_ref: str
    client_id: str
    service_user_id: str
    linked_at: dt.datetime
    service_name: str = ""


@dataclass(frozen=True)
class HolderView:
    """What a holder sees about themselves after authenticating with the card."""

    mykey_id: str
    scheme: str
    status: str
    registered_at: dt.datetime
    tap_enabled: bool
    serial_link_consent: bool
    links: tuple[Link, ...] = ()
    created: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "mykey_id": self.mykey_id,
            "scheme": self.scheme,
            "status": self.status,
            "registered_at": self.registered_at.isoformat(),
            "tap_enabled": self.tap_enabled,
            "serial_link_consent": self.serial_link_consent,
            "created": self.created,
            "links": [
                {
                    "client_id": link.client_id,
                    "service": link.service_name,
                    "service_user_id": link.service_user_id,
                    "linked_at": link.linked_at.isoformat(),
                }
                for link in self.links
            ],
        }


@dataclass(frozen=True)
class ChangeResult:
    changed: bool
    mykey_id: str
    clashes: int
    suggested_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "mykey_id": self.mykey_id,
            "clashes": self.clashes,
            "suggested_id": self.suggested_id,
        }


@dataclass(frozen=True)
class Resolution:
    """What a service learns at its counter: its own ID for the holder and its PPID."""

    service_user_id: str | None
    ppid: str
    assurance: str
    resolved_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "service_user_id": self.service_user_id,
            "ppid": self.ppid,
            "assurance": self.assurance,
            "resolved_at": self.resolved_at.isoformat(),
        }


@dataclass(frozen=True)
class ResolveRequest:
    """One PIN resolution at a service's counter: the service and the card's answer."""

    client_id: str
    response: ChallengeResponse


@dataclass(frozen=True)
class TapRequest:
    """Tap mode: the certificate read without PIN and the card-presence proof."""

    challenge_id: str
    certificate_der: bytes
    presence: PresenceProof = field(repr=False)


# -- the storage seam ---------------------------------------------------------------------------


class MyKeyRepository(Protocol):
    """One transaction's view of the platform's tables (``mykey.store`` implements it)."""

    def ppid_secret(self) -> bytes: ...
    def consume_pin_nonces(
        self, challenge_ids: Sequence[str], at: dt.datetime
    ) -> list[tuple[NonceState, Challenge | None]]: ...
    def counter_lookups(
        self, pairs: Sequence[tuple[str, int]]
    ) -> list[tuple[ServiceInfo | None, Holder | None, Link | None]]: ...
    def holder_for_serial(self, serial: int, *, current_only: bool = True) -> Holder | None: ...
    def holder(self, holder_ref: str) -> Holder | None: ...
    def mykey_id_taken(self, unique_key: str) -> bool: ...
    def add_holder(self, holder: Holder, serial: int) -> None: ...
    def save_holder(self, holder: Holder) -> None: ...
    def bind_serial(self, holder_ref: str, serial: int, at: dt.datetime) -> None: ...
    def links(self, holder_ref: str) -> list[Link]: ...
    def link(self, holder_ref: str, client_id: str) -> Link | None: ...
    def add_link(self, link: Link) -> None: ...
    def remove_link(self, holder_ref: str, client_id: str) -> bool: ...
    def remove_links(self, holder_ref: str) -> None: ...
    def service(self, client_id: str) -> ServiceInfo | None: ...
    def add_service(self, service: ServiceInfo, at: dt.datetime) -> None: ...
    def service_links(self, client_id: str, limit: int) -> list[Link]: ...
    def record_access(
        self, *, actor: str, subject: str, purpose: str, items: list[str], method: str | None
    ) -> None: ...
    def record_accesses(self, entries: Sequence[AccessEntry]) -> None: ...
    def access_records(self, subject: str) -> list[AccessRecord]: ...


UnitOfWork = Callable[[], AbstractContextManager[MyKeyRepository]]
T = TypeVar("T")


# -- identifiers ----------------------------------------------------------------------------------


def new_issued8_id() -> str:
    return "".join(secrets.choice(ISSUED8_ALPHABET) for _ in range(ISSUED8_LENGTH))


def checked_issued8_id(text: str) -> str:
    """A holder-chosen ID: 8 alphanumerics (docs/services.md §B.2), compared case-insensitively
    (upper case)."""
    candidate = text.strip().upper()
    if len(candidate) != ISSUED8_LENGTH or any(c not in ISSUED8_ALPHABET for c in candidate):
        raise InvalidRequestError("a MyKey ID is 8 letters or digits (A-Z, 0-9)")
    return candidate


def pairwise_id(secret: bytes, holder_ref: str, client_id: str) -> str:
    """The PPID of (holder, service): HMAC-SHA256 under the platform's secret, so nobody without
    the secret can compute or join them, and each service's is unrelated to another's
    (docs/services.md §B.3)."""
    digest = hmac.new(secret, f"{holder_ref}\x00{client_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:20]).decode("ascii").lower()


def _unique_key(scheme: str, mykey_id: str, terminal_code: str | None) -> str:
    # cn14: the 14 characters are unique only together with the 9-character terminal code.
    return f"{mykey_id}:{terminal_code}" if scheme == "cn14" else mykey_id


# -- the platform ---------------------------------------------------------------------------------


class MyKeyPlatform:
    def __init__(
        self,
        unit_of_work: UnitOfWork,
        *,
        authenticator: Authenticator,
        tap_nonces: NonceStore,
        issuer_link: IssuerLink,
        trust_store: TrustStore,
        revocation: RevocationChecker | None,
        card_ca: CardCaKeys | None = None,
        scheme: str = "issued8",
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if scheme not in SCHEMES:
            raise InvalidRequestError(f"MyKey ID scheme must be one of {SCHEMES}")
        self._uow = unit_of_work
        self._authenticator = authenticator
        self._presence = PresenceChallenges(
            tap_nonces, card_ca or {}, lifetime=TAP_NONCE_LIFETIME, clock=clock
        )
        self._issuer_link = issuer_link
        self._trust_store = trust_store
        self._revocation = revocation
        self.scheme = scheme
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    # -- challenges --------------------------------------------------------------------------

    def begin(self) -> Challenge:
        """A nonce for the card to sign with the auth key (PIN)."""
        return self._authenticator.begin()

    def begin_tap(self) -> Challenge:
        """A nonce for the card-presence proof (tap mode, or tap enrollment)."""
        return self._presence.begin()

    # -- services (operator) -----------------------------------------------------------------

    def add_service(self, client_id: str, name: str, *, require_pin: bool) -> ServiceInfo:
        """Record a connected service whose credential ``client_id`` was just issued."""
        service = ServiceInfo(client_id, name, require_pin)
        with self._uow() as repo:
            repo.add_service(service, self._clock())
        return service

    def service(self, client_id: str) -> ServiceInfo:
        with self._uow() as repo:
            found = repo.service(client_id)
        if found is None:
            raise ForbiddenError("this credential belongs to no MyKey service")
        return found

    # -- holders -----------------------------------------------------------------------------

    def register(
        self,
        response: ChallengeResponse,
        *,
        consent_serial_link: bool = True,
        presence: tuple[str, PresenceProof] | None = None,
    ) -> HolderView:
        """Register (or find) the holder; ``presence`` = (tap challenge id, proof) enrolls the
        card key for tap mode. Registering again returns the same MyKey ID."""
        identity = self._authenticator.complete(
            response.challenge_id,
            response.signature,
            response.certificate_der,
            hash_algorithm=response.hash_algorithm,
        )
        tap_key = self._presence_key(*presence) if presence is not None else None
        existing = self._find_holder(identity.serial)
        return self._with_retries(
            lambda: self._register(identity, existing, consent_serial_link, tap_key)
        )

    def _register(
        self,
        identity: VerifiedIdentity,
        existing: str | None,
        consent: bool,
        tap_key: str | None,
    ) -> HolderView:
        now = self._clock()
        with self._uow() as repo:
            holder = repo.holder(existing) if existing is not None else None
            if holder is None:
                holder = repo.holder_for_serial(identity.serial)
            created = False
            if holder is None:
                mykey_id, terminal = self._new_id(repo, identity)
                holder = Holder(
                    holder_ref=secrets.token_hex(16),
                    mykey_id=mykey_id,
                    scheme=self.scheme,
                    status="active",
                    serial_link_consent=consent,
                    tap_key=tap_key,
                    id_clashes=0,
                    registered_at=now,
                    unique_key=_unique_key(self.scheme, mykey_id, terminal),
                )
                repo.add_holder(holder, identity.serial)
                created = True
            else:
                if holder.status == "revoked":
                    # A revoked MyKey ID is never reused: the holder gets a new one
                    # (docs/services.md §B.2).
                    mykey_id, terminal = self._new_id(repo, identity)
                    holder.mykey_id, holder.scheme, holder.status = mykey_id, self.scheme, "active"
                    holder.unique_key = _unique_key(self.scheme, mykey_id, terminal)
                    holder.registered_at = now
                    created = True
                holder.serial_link_consent = consent
                if tap_key is not None:
                    holder.tap_key = tap_key
                repo.save_holder(holder)
            repo.record_access(
                actor="holder",
                subject=holder.holder_ref,
                purpose="register",
                items=["mykey_id"],
                method=ASSURANCE_PIN,
            )
            return self._view(repo, holder, created=created)

    def show(self, response: ChallengeResponse) -> HolderView:
        identity = self._authenticate(response)
        holder_ref = self._require_holder_ref(identity.serial)
        with self._uow() as repo:
            holder = _present(repo.holder(holder_ref))
            repo.record_access(
                actor="holder",
                subject=holder.holder_ref,
                purpose="show",
                items=["mykey_id", "links"],
                method=ASSURANCE_PIN,
            )
            return self._view(repo, holder)

    def change(self, response: ChallengeResponse, new_id: str | None = None) -> ChangeResult:
        """Change an ``issued8`` ID to ``new_id``, or to a random one when None (自動生成)."""
        identity = self._authenticate(response)
        holder_ref = self._require_holder_ref(identity.serial)
        wanted = checked_issued8_id(new_id) if new_id is not None else None
        return self._with_retries(lambda: self._change(holder_ref, wanted))

    def _change(self, holder_ref: str, wanted: str | None) -> ChangeResult:
        with self._uow() as repo:
            holder = _active(_present(repo.holder(holder_ref)))
            if holder.scheme != "issued8":
                raise InvalidRequestError(
                    "a cn14 MyKey ID is the certificate's own string and cannot be changed"
                )
            if wanted is not None and wanted != holder.mykey_id and repo.mykey_id_taken(wanted):
                holder.id_clashes += 1
                suggestion = None
                if holder.id_clashes >= CLASHES_BEFORE_SUGGESTION:
                    suggestion = self._free_issued8(repo)
                repo.save_holder(holder)
                return ChangeResult(False, holder.mykey_id, holder.id_clashes, suggestion)
            holder.mykey_id = wanted if wanted is not None else self._free_issued8(repo)
            holder.unique_key = holder.mykey_id
            holder.id_clashes = 0
            repo.save_holder(holder)
            repo.record_access(
                actor="holder",
                subject=holder.holder_ref,
                purpose="change",
                items=["mykey_id"],
                method=ASSURANCE_PIN,
            )
            return ChangeResult(True, holder.mykey_id, 0)

    def revoke(self, response: ChallengeResponse) -> HolderView:
        """Revoke the MyKey ID (マイキーIDの失効, docs/services.md §B.2): every link is removed."""
        identity = self._authenticate(response)
        holder_ref = self._require_holder_ref(identity.serial)
        with self._uow() as repo:
            holder = _active(_present(repo.holder(holder_ref)))
            holder.status = "revoked"
            repo.remove_links(holder.holder_ref)
            repo.save_holder(holder)
            repo.record_access(
                actor="holder",
                subject=holder.holder_ref,
                purpose="revoke",
                items=["mykey_id", "links"],
                method=ASSURANCE_PIN,
            )
            return self._view(repo, holder)

    def unlink(self, response: ChallengeResponse, client_id: str) -> HolderView:
        identity = self._authenticate(response)
        holder_ref = self._require_holder_ref(identity.serial)
        with self._uow() as repo:
            holder = _present(repo.holder(holder_ref))
            if not repo.remove_link(holder.holder_ref, client_id):
                raise NotFoundError("no link to that service")
            repo.record_access(
                actor="holder",
                subject=holder.holder_ref,
                purpose="unlink",
                items=["service_user_id"],
                method=ASSURANCE_PIN,
            )
            return self._view(repo, holder)

    def history(self, response: ChallengeResponse) -> list[dict[str, Any]]:
        """The holder's own access records, newest first, with service names."""
        identity = self._authenticate(response)
        holder_ref = self._require_holder_ref(identity.serial)
        with self._uow() as repo:
            repo.record_access(
                actor="holder",
                subject=holder_ref,
                purpose="history",
                items=["access_records"],
                method=ASSURANCE_PIN,
            )
            records = repo.access_records(holder_ref)
            names: dict[str, str] = {}
            out = []
            for record in records:
                actor = record.actor
                if actor.startswith("service:"):
                    client_id = actor.removeprefix("service:")
                    if client_id not in names:
                        found = repo.service(client_id)
                        names[client_id] = found.name if found is not None else client_id
                    actor = f"service {names[client_id]}"
                entry = record.to_dict()
                entry["actor"] = actor
                out.append(entry)
            return out

    # -- services at the counter -------------------------------------------------------------

    def link(self, client_id: str, response: ChallengeResponse, service_user_id: str) -> Resolution:
        """The service ``client_id`` links its own user ID to the holder present with the card."""
        service_user_id = service_user_id.strip()
        if not 0 < len(service_user_id) <= SERVICE_USER_ID_MAX or not service_user_id.isprintable():
            raise InvalidRequestError(
                f"a service user ID is 1 to {SERVICE_USER_ID_MAX} printable characters"
            )
        identity = self._authenticate(response)
        holder_ref = self._require_holder_ref(identity.serial)
        with self._uow() as repo:
            service = self._service(repo, client_id)
            holder = _active(_present(repo.holder(holder_ref)))
            repo.remove_link(holder.holder_ref, service.client_id)
            repo.add_link(
                Link(holder.holder_ref, service.client_id, service_user_id, self._clock())
            )
            return self._record_resolution(
                repo, service.client_id, holder.holder_ref, service_user_id, ASSURANCE_PIN, "link"
            )

    def service_links(self, client_id: str, *, limit: int = 1000) -> list[dict[str, Any]]:
        """The calling service's own links: its user IDs, PPIDs and link times."""
        with self._uow() as repo:
            service = self._service(repo, client_id)
            secret = repo.ppid_secret()
            return [
                {
                    "service_user_id": link.service_user_id,
                    "ppid": pairwise_id(secret, link.holder_ref, service.client_id),
                    "linked_at": link.linked_at.isoformat(),
                }
                for link in repo.service_links(service.client_id, limit)
            ]

    def resolve(self, client_id: str, response: ChallengeResponse) -> Resolution:
        """PIN resolution: full JPKI verification, then the service's ID and PPID (a batch of
        one, :meth:`resolve_batch`)."""
        answer = self.resolve_batch([ResolveRequest(client_id, response)])[0]
        if isinstance(answer, MynakitError):
            raise answer
        return answer

    def resolve_batch(self, requests: Sequence[ResolveRequest]) -> list[Resolution | MynakitError]:
        """PIN resolutions of several counters at once, each answered on its own: its
        resolution, or the error that refused it.

        The common case is one transaction for the whole batch, so one commit however many
        requests it carries (docs/services.md §B): consume every nonce (one statement), verify
        each answer fully (nonce state and expiry, signature, chain, validity, revocation), find
        the services, the bound holders and their links (one statement), append every access
        record (one insert), commit. A refused request still commits its consumed nonce (one
        try per nonce) and nothing else; an unexpected failure raises and commits nothing.
        A certificate the platform has not seen (a renewal, docs/services.md §B.4) is followed
        through the issuer link after the commit, outside the transaction.
        """
        answers: list[Resolution | MynakitError | None] = [None] * len(requests)
        unbound: list[tuple[int, int]] = []  # (request index, serial) for the slow path
        with self._uow() as repo:
            now = self._clock()
            nonces = repo.consume_pin_nonces([r.response.challenge_id for r in requests], now)
            verified: list[tuple[int, int]] = []  # (request index, serial)
            checked = self._authenticator.check_consumed_each(
                nonces, [request.response for request in requests]
            )
            for index, identity in enumerate(checked):
                if isinstance(identity, MynakitError):
                    answers[index] = identity
                else:
                    verified.append((index, identity.serial))
            found = repo.counter_lookups(
                [(requests[index].client_id, serial) for index, serial in verified]
            )
            accesses: list[AccessEntry] = []
            resolved: list[tuple[int, str, str, str | None]] = []
            for (index, serial), (service, bound, link) in zip(verified, found, strict=True):
                client_id = requests[index].client_id
                try:
                    counter = _counter_check(service, bound, link, None, ASSURANCE_PIN, None)
                except MynakitError as error:
                    answers[index] = error
                    continue
                if counter is None:
                    unbound.append((index, serial))
                    continue
                holder, link = counter
                accesses.append(_resolution_access(client_id, holder.holder_ref, ASSURANCE_PIN))
                resolved.append((index, client_id, holder.holder_ref, _user_id(link)))
            # Outside any try: a failure while appending rolls the whole batch back.
            repo.record_accesses(accesses)
            secret = repo.ppid_secret()
            resolved_at = self._clock()
            for index, client_id, holder_ref, service_user_id in resolved:
                answers[index] = Resolution(
                    service_user_id,
                    pairwise_id(secret, holder_ref, client_id),
                    ASSURANCE_PIN,
                    resolved_at,
                )
        # A certificate the platform has not seen: follow the issuer link (docs/services.md
        # §B.4) outside any transaction, then resolve with the holder found. The answer was
        # verified above.
        for index, serial in unbound:
            try:
                answers[index] = self._resolve(
                    requests[index].client_id, serial, ASSURANCE_PIN, None
                )
            except MynakitError as error:
                answers[index] = error
        return [answer for answer in answers if answer is not None]

    def resolve_tap(self, client_id: str, request: TapRequest) -> Resolution:
        """Tap resolution: certificate path (chain, validity, revocation) + presence proof of
        the card key enrolled for this holder."""
        with self._uow() as repo:
            if self._service(repo, client_id).require_pin:
                raise PinRequiredError("this service requires PIN authentication, not tap")
        card_key = self._presence_key(request.challenge_id, request.presence)
        serial = self._validated_serial(request.certificate_der)
        return self._resolve(client_id, serial, ASSURANCE_TAP, card_key)

    def _resolve(
        self, client_id: str, serial: int, assurance: str, card_key: str | None
    ) -> Resolution:
        # The common case in one transaction: the serial is bound already. A certificate the
        # platform has not seen is first followed through the issuer link (docs/services.md §B.4),
        # outside any transaction, and the resolution runs again with the holder found.
        resolution = self._resolve_in_transaction(client_id, serial, None, assurance, card_key)
        if resolution is not None:
            return resolution
        holder_ref = self._require_holder_ref(serial)
        resolution = self._resolve_in_transaction(
            client_id, serial, holder_ref, assurance, card_key
        )
        if resolution is None:
            raise RegistrationRequiredError("this card is not registered with the MyKey platform")
        return resolution

    def _resolve_in_transaction(
        self,
        client_id: str,
        serial: int,
        holder_ref: str | None,
        assurance: str,
        card_key: str | None,
    ) -> Resolution | None:
        with self._uow() as repo:
            found = self._counter_lookup(repo, client_id, serial, holder_ref, assurance, card_key)
            if found is None:
                return None
            holder, link = found
            return self._record_resolution(
                repo, client_id, holder.holder_ref, _user_id(link), assurance
            )

    def _counter_lookup(
        self,
        repo: MyKeyRepository,
        client_id: str,
        serial: int,
        holder_ref: str | None,
        assurance: str,
        card_key: str | None,
    ) -> tuple[Holder, Link | None] | None:
        """The active holder of ``serial`` (or ``holder_ref``) and their link to the service;
        None when the serial is not bound (yet); refusals raise."""
        if holder_ref is None:
            # The common case: service, bound holder and link in one round trip.
            service, bound, link = repo.counter_lookups([(client_id, serial)])[0]
        else:
            service, bound = repo.service(client_id), repo.holder(holder_ref)
            link = repo.link(holder_ref, client_id)
        return _counter_check(service, bound, link, holder_ref, assurance, card_key)

    def _record_resolution(
        self,
        repo: MyKeyRepository,
        client_id: str,
        holder_ref: str,
        service_user_id: str | None,
        assurance: str,
        purpose: str = "resolve",
    ) -> Resolution:
        """Append the service's access record and answer with its user ID and PPID."""
        repo.record_accesses([_resolution_access(client_id, holder_ref, assurance, purpose)])
        return Resolution(
            service_user_id,
            pairwise_id(repo.ppid_secret(), holder_ref, client_id),
            assurance,
            self._clock(),
        )

    # -- helpers -------------------------------------------------------------------------------

    def _authenticate(self, response: ChallengeResponse) -> VerifiedIdentity:
        return self._authenticator.complete(
            response.challenge_id,
            response.signature,
            response.certificate_der,
            hash_algorithm=response.hash_algorithm,
        )

    def _require_holder_ref(self, serial: int) -> str:
        holder_ref = self._find_holder(serial)
        if holder_ref is None:
            raise RegistrationRequiredError(
                "this card is not registered with the MyKey platform; register with the PIN"
            )
        return holder_ref

    def _find_holder(self, serial: int) -> str | None:
        """The holder of ``serial``; a renewed certificate is followed back through the issuer
        link (docs/services.md §B.4) and the holder's MyKey ID and links move to it."""
        with self._uow() as repo:
            holder = repo.holder_for_serial(serial)
            if holder is not None:
                return holder.holder_ref
        # Asked outside any transaction: the issuer may be slow, the tables must not wait.
        try:
            chain = predecessors(self._issuer_link, serial)
        except SerialLinkConsentError:
            return None
        for old in chain:
            with self._uow() as repo:
                holder = repo.holder_for_serial(old, current_only=False)
                if holder is None:
                    continue
                if not holder.serial_link_consent:
                    return None
                repo.bind_serial(holder.holder_ref, serial, self._clock())
                repo.record_access(
                    actor="issuer_link",
                    subject=holder.holder_ref,
                    purpose="renewal",
                    items=["certificate_serial"],
                    method=None,
                )
                return holder.holder_ref
        return None

    def _presence_key(self, challenge_id: str, proof: PresenceProof) -> str:
        try:
            return self._presence.verify(challenge_id, proof)
        except PresenceRefusedError as error:
            raise TapRefusedError(str(error)) from error

    def _validated_serial(self, certificate_der: bytes) -> int:
        certificate = parse_certificate(certificate_der)
        if certificate.kind is not CertificateKind.AUTH:
            raise WrongCertificateKindError(
                ValidationFailure.WRONG_PURPOSE, "tap mode needs the authentication certificate"
            )
        try:
            validate_path(
                certificate,
                self._trust_store,
                at=self._clock(),
                purpose=CertificateKind.AUTH,
                require_production=self._authenticator.production,
                revocation=self._revocation,
            )
        except CertificateValidationError as error:
            if error.reason is ValidationFailure.REVOKED:
                raise RevokedCertificateError(error.reason, str(error)) from error
            from mynakit.jpki.authentication import CertificateRejectedError

            raise CertificateRejectedError(error.reason, str(error)) from error
        return certificate.serial_number

    def _service(self, repo: MyKeyRepository, client_id: str) -> ServiceInfo:
        found = repo.service(client_id)
        if found is None:
            raise ForbiddenError("this credential belongs to no MyKey service")
        return found

    def _new_id(self, repo: MyKeyRepository, identity: VerifiedIdentity) -> tuple[str, str | None]:
        if self.scheme == "cn14":
            key = _unique_key("cn14", identity.random_string, identity.terminal_code)
            if repo.mykey_id_taken(key):
                raise ConflictError("this certificate's CN string is already registered")
            return identity.random_string, identity.terminal_code
        return self._free_issued8(repo), None

    def _free_issued8(self, repo: MyKeyRepository) -> str:
        for _ in range(100):
            candidate = new_issued8_id()
            if not repo.mykey_id_taken(candidate):
                return candidate
        raise ConflictError("no free MyKey ID found; try again")

    def _view(self, repo: MyKeyRepository, holder: Holder, *, created: bool = False) -> HolderView:
        links = tuple(repo.links(holder.holder_ref)) if holder.status == "active" else ()
        return HolderView(
            mykey_id=holder.mykey_id,
            scheme=holder.scheme,
            status=holder.status,
            registered_at=holder.registered_at,
            tap_enabled=holder.tap_key is not None,
            serial_link_consent=holder.serial_link_consent,
            links=links,
            created=created,
        )

    def _with_retries(self, operation: Callable[[], T]) -> T:
        for attempt in range(_RACE_RETRIES):
            try:
                return operation()
            except StoreRaceError:
                if attempt == _RACE_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")


def _counter_check(
    service: ServiceInfo | None,
    bound: Holder | None,
    link: Link | None,
    holder_ref: str | None,
    assurance: str,
    card_key: str | None,
) -> tuple[Holder, Link | None] | None:
    """The counter's rules over what the lookup found: the active holder and their link, None
    when the serial is not bound (yet, and no ``holder_ref`` was given); refusals raise."""
    if service is None:
        raise ForbiddenError("this credential belongs to no MyKey service")
    if assurance == ASSURANCE_TAP and service.require_pin:
        raise PinRequiredError("this service requires PIN authentication, not tap")
    if bound is None and holder_ref is None:
        return None  # not bound yet: the caller follows the issuer link
    holder = _active(_present(bound))
    if card_key is not None:
        if holder.tap_key is None:
            raise TapNotEnrolledError(
                "tap mode needs the card key enrolled at a PIN registration first"
            )
        if not hmac.compare_digest(holder.tap_key, card_key):
            raise TapRefusedError("the card on the reader is not the registered card")
    return holder, link


def _resolution_access(
    client_id: str, holder_ref: str, assurance: str, purpose: str = "resolve"
) -> AccessEntry:
    """The access record of a service's resolution (or link): which items it learnt."""
    return AccessEntry(
        actor=f"service:{client_id}",
        subject=holder_ref,
        purpose=purpose,
        items=("service_user_id", "ppid"),
        method=assurance,
    )


def _user_id(link: Link | None) -> str | None:
    return link.service_user_id if link is not None else None


def _present(holder: Holder | None) -> Holder:
    if holder is None:
        raise RegistrationRequiredError("this card is not registered with the MyKey platform")
    return holder


def _active(holder: Holder) -> Holder:
    if holder.status != "active":
        raise MyKeyIdRevokedError("this MyKey ID was revoked by its holder; register again")
    return holder
