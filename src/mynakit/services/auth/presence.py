"""Card-presence challenges for services (tap, face or visual confirmation without a PIN).

A service hands out a nonce (kept in a :class:`~mynakit.jpki.authentication.NonceStore`, so
every server process shares it and a replay is refused by all), the card answers it with the
visual AP's own key (``mynakit.card.presence``, docs/card.md §7.13), and :meth:`verify`
consumes the nonce, checks the answer down to a trusted card-CA key and returns the card key's
fingerprint. A service compares that fingerprint with the one it enrolled for the holder at a
PIN registration: the presence proof shows *a* genuine card is on the reader, the enrolled
fingerprint shows it is *this holder's* card.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable

from mynakit.card.cv_certificate import CardCaKeys
from mynakit.card.presence import PresenceProof, ap_key_fingerprint, verify_presence
from mynakit.errors import MynakitError, UsageError
from mynakit.jpki.authentication import (
    NONCE_LENGTH,
    AuthenticationError,
    Challenge,
    ExpiredNonceError,
    NonceState,
    NonceStore,
    ReplayedNonceError,
    UnknownNonceError,
)

DEFAULT_PRESENCE_LIFETIME = dt.timedelta(minutes=5)


class PresenceRefusedError(AuthenticationError):
    """The card-presence answer did not verify (forged, for another nonce, untrusted CA)."""


class PresenceChallenges:
    def __init__(
        self,
        nonces: NonceStore,
        card_ca: CardCaKeys,
        *,
        lifetime: dt.timedelta = DEFAULT_PRESENCE_LIFETIME,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if lifetime <= dt.timedelta(0):
            raise UsageError("the presence challenge lifetime must be positive")
        self._nonces = nonces
        self._card_ca = card_ca
        self._lifetime = lifetime
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def begin(self) -> Challenge:
        now = self._clock()
        challenge = Challenge(
            challenge_id=secrets.token_urlsafe(16),
            nonce=secrets.token_bytes(NONCE_LENGTH),
            issued_at=now,
            expires_at=now + self._lifetime,
        )
        self._nonces.save(challenge)
        return challenge

    def verify(self, challenge_id: str, proof: PresenceProof) -> str:
        """Consume the challenge and check the card's answer; return the card key fingerprint.
        The challenge is used up even when the answer fails: one try per nonce."""
        state, challenge = self._nonces.consume(challenge_id)
        if state is NonceState.UNKNOWN or challenge is None:
            raise UnknownNonceError("this presence challenge was not issued here")
        if state is NonceState.USED:
            raise ReplayedNonceError("this presence challenge was already answered")
        if self._clock() > challenge.expires_at:
            raise ExpiredNonceError("the presence challenge expired; request a new one")
        try:
            key = verify_presence(proof, challenge.nonce, self._card_ca)
        except MynakitError as error:  # PresenceProofError, or a malformed record (DataError)
            raise PresenceRefusedError(str(error)) from error
        return ap_key_fingerprint(key)
