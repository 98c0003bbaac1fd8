"""JPKI user authentication (利用者証明) as a protocol, with no web framework in it.

The relying party hands out a random nonce (:meth:`Authenticator.begin`), the card signs the
DigestInfo of its SHA-256 hash with the authentication key (docs/card.md §5.1, §7.7),
and the relying party checks the answer (:meth:`Authenticator.complete`): the nonce is one it
issued, unexpired and unused; the signature is PKCS#1 v1.5 by the certificate's key; the
certificate is an authentication certificate (docs/card.md §9.1) that chains to a trusted root, is
valid now and is not revoked. Like ``register_begin``/``register_complete`` in python-fido2, the
core only returns values; a web layer stores nothing itself but the :class:`NonceStore` the
authenticator is given.

:func:`card_respond` is the card side: verify the auth PIN, sign, read the certificate.

Verifying JPKI signatures as a business needs the minister's approval under 公的個人認証法
§17 (docs/card.md §9.3, legal note); the sandbox issuer exists so this can be built and
tested without that.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mynakit.errors import DataError, MynakitError, UsageError, VerificationError
from mynakit.jpki.certificates import CertificateKind, JpkiCertificate, parse_certificate_cached
from mynakit.jpki.revocation import RevocationChecker, crl_checker, ocsp_checker
from mynakit.jpki.trust import TrustStore
from mynakit.jpki.validation import (
    CertificateValidationError,
    ValidatedPath,
    ValidationFailure,
    validate_path,
)

if TYPE_CHECKING:
    from mynakit.card.jpki import HashName, JpkiAp

NONCE_LENGTH = 32
DEFAULT_NONCE_LIFETIME = dt.timedelta(minutes=5)
# A challenge id is an opaque handle for the web layer (a form field, a cookie); 16 random
# bytes make it unguessable, so one client cannot complete another's challenge by id.
_CHALLENGE_ID_BYTES = 16

# SHA-1 DigestInfos are on the card's menu (docs/card.md §5.1), but a collision-prone hash has no
# place in a fresh authentication protocol; the relying party names the hash, so only strong ones.
AUTHENTICATION_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

_CARD_HASH_NAMES: dict[str, HashName] = {"sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}

RevocationMode = Literal["ocsp", "crl", "none"]


# -- errors ----------------------------------------------------------------------------------


class AuthenticationError(VerificationError):
    """The authentication response was refused."""


class UnknownNonceError(AuthenticationError):
    """The challenge id names no challenge this relying party issued (or it was forgotten)."""


class ReplayedNonceError(AuthenticationError):
    """The challenge was already answered once; each nonce is single use."""


class ExpiredNonceError(AuthenticationError):
    """The challenge was answered after its lifetime."""


class BadSignatureError(AuthenticationError):
    """The signature does not verify with the certificate's key over this nonce."""


class CertificateRejectedError(AuthenticationError):
    """The certificate did not validate; ``reason`` is the failed check."""

    def __init__(self, reason: ValidationFailure, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class RevokedCertificateError(CertificateRejectedError):
    """The issuer (OCSP or CRL) says the certificate is revoked."""


class UnknownRootError(CertificateRejectedError):
    """The certificate chains to no trusted root (by signature: the roots share one DN)."""


class WrongCertificateKindError(CertificateRejectedError):
    """The certificate is not an authentication certificate (a signature one, for example)."""


# -- challenges and their storage -------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """What the relying party sends the client: a nonce to sign, and the id to answer with."""

    challenge_id: str
    nonce: bytes
    issued_at: dt.datetime
    expires_at: dt.datetime

    def to_dict(self) -> dict[str, str]:
        """JSON-able form for a web layer (nonce in base64)."""
        return {
            "challenge_id": self.challenge_id,
            "nonce": base64.b64encode(self.nonce).decode("ascii"),
            "issued_at": self.issued_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Challenge:
        try:
            return cls(
                challenge_id=str(data["challenge_id"]),
                nonce=base64.b64decode(data["nonce"], validate=True),
                issued_at=dt.datetime.fromisoformat(data["issued_at"]),
                expires_at=dt.datetime.fromisoformat(data["expires_at"]),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as error:
            raise DataError(f"not a challenge: {error}") from error


class NonceState(enum.Enum):
    FRESH = "fresh"  # issued and not answered before: this call consumed it
    USED = "used"  # answered before
    UNKNOWN = "unknown"  # never issued here, or forgotten after it expired


class NonceStore(Protocol):
    """Server-side memory of issued challenges. ``consume`` must be atomic: of two concurrent
    calls for one id, exactly one sees FRESH (a database store does it in one UPDATE)."""

    def save(self, challenge: Challenge) -> None: ...

    def consume(self, challenge_id: str) -> tuple[NonceState, Challenge | None]: ...


class InMemoryNonceStore:
    """A :class:`NonceStore` for one process. Used challenges are remembered until one more
    lifetime has passed after expiry, so a late replay is still reported as a replay."""

    def __init__(self, clock: Callable[[], dt.datetime] | None = None) -> None:
        self._clock = clock or _utc_now
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Challenge, bool]] = {}

    def save(self, challenge: Challenge) -> None:
        with self._lock:
            self._forget_old()
            if challenge.challenge_id in self._entries:
                raise UsageError("a challenge with this id was already issued")
            self._entries[challenge.challenge_id] = (challenge, False)

    def consume(self, challenge_id: str) -> tuple[NonceState, Challenge | None]:
        with self._lock:
            entry = self._entries.get(challenge_id)
            if entry is None:
                return NonceState.UNKNOWN, None
            challenge, used = entry
            if used:
                return NonceState.USED, challenge
            self._entries[challenge_id] = (challenge, True)
            return NonceState.FRESH, challenge

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _forget_old(self) -> None:
        now = self._clock()
        stale = [
            challenge_id
            for challenge_id, (challenge, _) in self._entries.items()
            if now > challenge.expires_at + (challenge.expires_at - challenge.issued_at)
        ]
        for challenge_id in stale:
            del self._entries[challenge_id]


# -- responses and results --------------------------------------------------------------------


@dataclass(frozen=True)
class ChallengeResponse:
    """What the client sends back: the signature and the authentication certificate."""

    challenge_id: str
    signature: bytes
    certificate_der: bytes
    hash_algorithm: str = "sha256"

    def to_dict(self) -> dict[str, str]:
        return {
            "challenge_id": self.challenge_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "certificate": base64.b64encode(self.certificate_der).decode("ascii"),
            "hash_algorithm": self.hash_algorithm,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChallengeResponse:
        try:
            return cls(
                challenge_id=str(data["challenge_id"]),
                signature=base64.b64decode(data["signature"], validate=True),
                certificate_der=base64.b64decode(data["certificate"], validate=True),
                hash_algorithm=str(data.get("hash_algorithm", "sha256")),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as error:
            raise DataError(f"not an authentication response: {error}") from error


@dataclass(frozen=True)
class VerifiedIdentity:
    """Who authenticated. The authentication certificate names no person (docs/card.md §9.1):
    services link holders by ``serial`` (which changes at renewal) or by their own pseudonyms."""

    serial: int
    not_after: dt.datetime
    random_string: str
    terminal_code: str
    issuer_root: str  # the trusted root's subject DN
    issuer_root_serial: int
    production: bool
    revocation: str  # "good (ocsp)", "good (crl)" or "not checked"
    authenticated_at: dt.datetime
    certificate: JpkiCertificate

    def to_dict(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "serial_hex": f"{self.serial:X}",
            "not_after": self.not_after.isoformat(),
            "random_string": self.random_string,
            "terminal_code": self.terminal_code,
            "issuer_root": self.issuer_root,
            "issuer_root_serial": f"{self.issuer_root_serial:X}",
            "production": self.production,
            "revocation": self.revocation,
            "authenticated_at": self.authenticated_at.isoformat(),
        }


# -- the relying party ------------------------------------------------------------------------


class Authenticator:
    """Relying-party side of JPKI user authentication.

    ``revocation``: ``"ocsp"`` asks the responder named in the certificate, ``"crl"`` fetches
    the CRL it names, ``"none"`` skips the check (refused with ``production=True``); a
    :data:`~mynakit.jpki.revocation.RevocationChecker` may be passed instead. With
    ``production=True`` only production (J-LIS) roots are accepted.
    """

    def __init__(
        self,
        trust_store: TrustStore,
        *,
        revocation: RevocationMode | RevocationChecker = "ocsp",
        nonce_lifetime: dt.timedelta = DEFAULT_NONCE_LIFETIME,
        clock: Callable[[], dt.datetime] | None = None,
        production: bool = False,
        nonce_store: NonceStore | None = None,
    ) -> None:
        if nonce_lifetime <= dt.timedelta(0):
            raise UsageError("the nonce lifetime must be positive")
        if production and revocation == "none":
            raise UsageError("production authentication must check revocation (ocsp or crl)")
        self.trust_store = trust_store
        self.nonce_lifetime = nonce_lifetime
        self.production = production
        self._clock = clock or _utc_now
        self._revocation = _revocation_checker(revocation)
        self._revocation_label = revocation if isinstance(revocation, str) else "custom"
        self._nonces: NonceStore = (
            nonce_store if nonce_store is not None else InMemoryNonceStore(self._clock)
        )

    def begin(self) -> Challenge:
        """Issue a fresh challenge and remember it server-side."""
        now = self._now()
        challenge = Challenge(
            challenge_id=secrets.token_urlsafe(_CHALLENGE_ID_BYTES),
            nonce=secrets.token_bytes(NONCE_LENGTH),
            issued_at=now,
            expires_at=now + self.nonce_lifetime,
        )
        self._nonces.save(challenge)
        return challenge

    def complete(
        self,
        challenge_id: str,
        signature: bytes,
        certificate_der: bytes,
        *,
        hash_algorithm: str = "sha256",
    ) -> VerifiedIdentity:
        """Check a response to :meth:`begin`'s challenge; raise an :class:`AuthenticationError`
        subclass saying what failed, or return the verified identity.

        The challenge is consumed first, so a response that fails for any reason still uses it
        up: an attacker gets one try per nonce.
        """
        state, challenge = self._nonces.consume(challenge_id)
        return self.check_consumed(
            state, challenge, signature, certificate_der, hash_algorithm=hash_algorithm
        )

    def check_consumed_each(
        self,
        consumed: Sequence[tuple[NonceState, Challenge | None]],
        responses: Sequence[ChallengeResponse],
    ) -> list[VerifiedIdentity | MynakitError]:
        """:meth:`check_consumed` for each answer of a batch whose challenges were consumed
        together (one database statement): its identity, or the error that refused it."""
        results: list[VerifiedIdentity | MynakitError] = []
        for (state, challenge), response in zip(consumed, responses, strict=True):
            try:
                results.append(
                    self.check_consumed(
                        state,
                        challenge,
                        response.signature,
                        response.certificate_der,
                        hash_algorithm=response.hash_algorithm,
                    )
                )
            except MynakitError as error:
                results.append(error)
        return results

    def check_consumed(
        self,
        state: NonceState,
        challenge: Challenge | None,
        signature: bytes,
        certificate_der: bytes,
        *,
        hash_algorithm: str = "sha256",
    ) -> VerifiedIdentity:
        """The checks of :meth:`complete` after the challenge was consumed elsewhere: a server
        that consumes the nonce in the same database transaction as the rest of its work
        (one round of commits per request) passes what its nonce store's ``consume`` returned.
        Every check still runs: nonce state and expiry, signature, chain, validity, revocation.
        """
        algorithm_class = AUTHENTICATION_HASHES.get(hash_algorithm.lower())
        if state is NonceState.UNKNOWN or challenge is None:
            raise UnknownNonceError("this challenge was not issued here (or has been forgotten)")
        if state is NonceState.USED:
            raise ReplayedNonceError("this challenge was already answered; request a new one")
        now = self._now()
        if now > challenge.expires_at:
            raise ExpiredNonceError(
                f"the challenge expired at {challenge.expires_at.isoformat()}; request a new one"
            )
        if algorithm_class is None:
            raise UsageError(
                f"hash {hash_algorithm!r} is not accepted for authentication; use one of "
                + ", ".join(AUTHENTICATION_HASHES)
            )

        # The parse is cached by the DER bytes (a pure function of them); every check below
        # still runs on every call.
        certificate = parse_certificate_cached(certificate_der)
        if certificate.kind is not CertificateKind.AUTH:
            raise WrongCertificateKindError(
                ValidationFailure.WRONG_PURPOSE,
                f"a {certificate.kind.value} certificate cannot authenticate; "
                "the authentication certificate (利用者証明用電子証明書) is needed",
            )
        _verify_signature(certificate, signature, challenge.nonce, algorithm_class())
        path = self._validate(certificate, now)
        anchor = path.anchor
        status = path.revocation
        return VerifiedIdentity(
            serial=certificate.serial_number,
            not_after=certificate.not_after,
            random_string=certificate.random_string,
            terminal_code=certificate.terminal_code,
            issuer_root=anchor.subject_text,
            issuer_root_serial=anchor.certificate.serial_number,
            production=path.is_production,
            revocation=(
                f"{status.state.value} ({status.source})" if status is not None else "not checked"
            ),
            authenticated_at=now,
            certificate=certificate,
        )

    def _validate(self, certificate: JpkiCertificate, now: dt.datetime) -> ValidatedPath:
        try:
            return validate_path(
                certificate,
                self.trust_store,
                at=now,
                purpose=CertificateKind.AUTH,
                require_production=self.production,
                revocation=self._revocation,
            )
        except CertificateValidationError as error:
            raise _certificate_error(error) from error

    def _now(self) -> dt.datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise UsageError("the authenticator's clock must return aware datetimes")
        return now


# -- the card side ---------------------------------------------------------------------------


def card_respond(
    session: JpkiAp,
    challenge: Challenge,
    pin: str,
    *,
    force: bool = False,
    hash_algorithm: str = "sha256",
) -> ChallengeResponse:
    """Answer ``challenge`` with the card: verify the auth PIN, sign, read the certificate.

    The fewest APDUs the guarded session allows (docs/card.md §7.7 without the EF SELECTs): a retry
    query and VERIFY, one ``80 2A 00 97`` over the host-built DigestInfo, then the certificate by
    SFI (one READ BINARY with extended length, about five without). The certificate is read
    after VERIFY because a smartphone token guards it with the PIN (docs/card.md §7.2). ``force``
    allows spending the last PIN try.
    """
    name = hash_algorithm.lower()
    algorithm_class = AUTHENTICATION_HASHES.get(name)
    if algorithm_class is None:
        raise UsageError(
            f"hash {hash_algorithm!r} is not accepted for authentication; use one of "
            + ", ".join(AUTHENTICATION_HASHES)
        )
    hasher = hashes.Hash(algorithm_class())
    hasher.update(challenge.nonce)
    digest = hasher.finalize()
    session.verify_auth_pin(pin, force=force)
    signature = session.sign_digest("auth", _CARD_HASH_NAMES[name], digest)
    certificate_der = session.read_certificate("auth")
    return ChallengeResponse(
        challenge_id=challenge.challenge_id,
        signature=signature,
        certificate_der=certificate_der,
        hash_algorithm=name,
    )


def _verify_signature(
    certificate: JpkiCertificate,
    signature: bytes,
    nonce: bytes,
    algorithm: hashes.HashAlgorithm,
) -> None:
    # The card PKCS#1 v1.5-pads the DigestInfo it is given (docs/card.md §5.1), so the signature is
    # exactly RSASSA-PKCS1-v1_5 over the nonce with this hash.
    key = certificate.certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise BadSignatureError("the certificate's key is not RSA, as JPKI keys are")
    try:
        key.verify(signature, nonce, padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise BadSignatureError(
            f"the signature does not verify with the key of certificate "
            f"{certificate.serial_number} (signed by another card, or over another nonce)"
        ) from None


_CERTIFICATE_ERRORS: dict[ValidationFailure, type[CertificateRejectedError]] = {
    ValidationFailure.REVOKED: RevokedCertificateError,
    ValidationFailure.UNKNOWN_ISSUER: UnknownRootError,
    # Roots of one hierarchy share a DN (docs/card.md §9.3), so a certificate from a foreign root
    # with the same DN shows up as "no anchor's key verifies it": that is an unknown root too.
    ValidationFailure.BAD_SIGNATURE: UnknownRootError,
    ValidationFailure.WRONG_PURPOSE: WrongCertificateKindError,
}


def _certificate_error(error: CertificateValidationError) -> CertificateRejectedError:
    error_class = _CERTIFICATE_ERRORS.get(error.reason, CertificateRejectedError)
    return error_class(error.reason, str(error))


def _revocation_checker(
    revocation: RevocationMode | RevocationChecker,
) -> RevocationChecker | None:
    if revocation == "ocsp":
        return ocsp_checker()
    if revocation == "crl":
        return crl_checker()
    if revocation == "none":
        return None
    if callable(revocation):
        return revocation
    raise UsageError(f"revocation must be 'ocsp', 'crl' or 'none', not {revocation!r}")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
