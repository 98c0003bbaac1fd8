"""Card-presence challenge of the visual AP (docs/card.md §7.13): proof that a genuine card is
on the reader, with no PIN (the holder's birth date opens the age record, as at a counter).

The card makes a random challenge (GET CHALLENGE ``00 84 00 00 10``) and signs, with the AP's
own card key (``80 2A 00 00``, no credential), the SHA-256 DigestInfo of the relying party's
nonce followed by that challenge. The relying party checks the chain down to that key:

    trusted card-CA key --(EF 0004 CV certificate, docs/card.md §6.5)--> issuer (municipality) key
    issuer key --(EF 0001 age record DF13, docs/card.md §6.9)--> card key DF12 --> the challenge
    signature

The relying party's nonce makes the answer fresh; the card's challenge makes the card add
randomness of its own, as in docs/card.md §7.13. The age record holds the birth date (DF11), which
the signature covers: a relying party checks it in memory and must not keep it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mynakit.card.cv_certificate import CardCaKeys, CvCertificate
from mynakit.card.jpki import digest_info
from mynakit.card.visual import AgeRecord, VisualAp
from mynakit.errors import DataError, VerificationError

INS_GET_CHALLENGE = 0x84
INS_COMPUTE_SIGNATURE = 0x2A
CARD_CHALLENGE_LENGTH = 16  # docs/card.md §7.13: 00 84 00 00 10
AP_OWN_KEY = 0x00  # docs/card.md §7.13: P2=00 names the AP's own key, no credential needed
SIGNATURE_LENGTH = 256  # RSA-2048 (docs/card.md §6.5)
PRESENCE_APPLICATIONS = ("visual",)


class PresenceProofError(VerificationError):
    """The card-presence answer does not verify (wrong key, replayed, forged, untrusted CA)."""


@dataclass(frozen=True)
class PresenceProof:
    """The card's answer to a relying party's nonce: everything the relying party checks."""

    application: str  # "visual"
    card_challenge: bytes
    signature: bytes
    ap_certificate: bytes = field(repr=False)  # EF 0004, the CV certificate ``7F21 ...``
    age_record: bytes = field(repr=False)  # EF 0001: certifies the card key (personal data)

    def to_dict(self) -> dict[str, str]:
        return {
            "application": self.application,
            "card_challenge": base64.b64encode(self.card_challenge).decode("ascii"),
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "ap_certificate": base64.b64encode(self.ap_certificate).decode("ascii"),
            "age_record": base64.b64encode(self.age_record).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PresenceProof:
        try:
            application = str(data["application"])
            proof = cls(
                application=application,
                card_challenge=base64.b64decode(data["card_challenge"], validate=True),
                signature=base64.b64decode(data["signature"], validate=True),
                ap_certificate=base64.b64decode(data["ap_certificate"], validate=True),
                age_record=base64.b64decode(data["age_record"], validate=True),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as error:
            raise DataError(f"not a card-presence proof: {error}") from error
        if application not in PRESENCE_APPLICATIONS:
            raise DataError(f"card-presence proofs come from {PRESENCE_APPLICATIONS}")
        return proof


def signed_message(nonce: bytes, card_challenge: bytes) -> bytes:
    return nonce + card_challenge


def prove_presence(session: VisualAp, nonce: bytes, birth_date_code: str) -> PresenceProof:
    """The visual AP session's answer to a relying party's nonce: VERIFY the birth-date code
    (the session refuses a last try), GET CHALLENGE, the card key's signature over
    SHA-256(nonce ‖ challenge), then EF 0004 and EF 0001 by SFI."""
    session.verify("birth_date_code", birth_date_code)
    card_challenge = session.protocol.send(
        0x00, INS_GET_CHALLENGE, 0x00, 0x00, le=CARD_CHALLENGE_LENGTH
    )
    if len(card_challenge) != CARD_CHALLENGE_LENGTH:
        raise DataError(f"GET CHALLENGE returned {len(card_challenge)} bytes, not 16")
    digest = hashlib.sha256(signed_message(nonce, card_challenge)).digest()
    signature = session.protocol.send(
        0x80, INS_COMPUTE_SIGNATURE, 0x00, AP_OWN_KEY, digest_info("sha256", digest), le=0x100
    )
    return PresenceProof(
        application=session.application.name,
        card_challenge=card_challenge,
        signature=signature,
        ap_certificate=session.read_file("ap_certificate"),
        age_record=session.read_file("age_record"),
    )


def ap_key_fingerprint(public_key: rsa.RSAPublicKey) -> str:
    """SHA-256 of the AP key's SubjectPublicKeyInfo, hex: how a relying party remembers a card."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def verify_presence(
    proof: PresenceProof, nonce: bytes, trusted_card_ca: CardCaKeys
) -> rsa.RSAPublicKey:
    """Check ``proof`` against the relying party's ``nonce``; return the card key."""
    certificate = CvCertificate.parse(proof.ap_certificate)
    chain = certificate.chain_check(trusted_card_ca)
    if not chain.verified:
        raise PresenceProofError(f"the card's AP certificate is not trusted: {chain.note}")
    record = AgeRecord.parse(proof.age_record)
    try:
        certificate.public_key.verify(
            record.signature, record.signed_data, padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        raise PresenceProofError(
            "the age record's card key is not signed by the certified issuer key"
        ) from None
    if len(proof.card_challenge) != CARD_CHALLENGE_LENGTH:
        raise PresenceProofError("the card challenge must be 16 bytes (docs/card.md §7.13)")
    try:
        record.public_key.verify(
            proof.signature,
            signed_message(nonce, proof.card_challenge),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except InvalidSignature:
        raise PresenceProofError(
            "the card-presence signature does not verify over this nonce with the card's key"
        ) from None
    return record.public_key
