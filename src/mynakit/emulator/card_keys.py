"""The virtual card's private keys: RSA-2048 keys that sign and never hand themselves out."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from mynakit.emulator.card_files import RSA_MODULUS_BYTES
from mynakit.errors import DataError, UsageError


class CardKey:
    """An RSA-2048 private key that signs but never hands itself out.

    The card OS and the file builder only ever ask for signatures; serialising the key is for
    the card's own folder only (``to_pkcs8_pem``, called by ``mynakit.emulator.card_layout``).
    """

    __slots__ = ("_key", "_numbers")

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        if key.key_size != RSA_MODULUS_BYTES * 8:
            raise UsageError(f"card keys are RSA-2048, not {key.key_size} bits")
        self._key = key
        self._numbers = key.private_numbers()
        numbers = self._numbers
        # A cheap consistency check (the full one is skipped on load, see from_pkcs8_pem): a
        # CRT signature from a damaged key would be wrong, and could even give the key away.
        if (
            numbers.d % (numbers.p - 1) != numbers.dmp1
            or numbers.d % (numbers.q - 1) != numbers.dmq1
            or numbers.iqmp * numbers.q % numbers.p != 1
        ):
            raise DataError("a card key's private numbers do not fit together")

    @classmethod
    def generate(cls) -> CardKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def __repr__(self) -> str:
        return "CardKey(<RSA-2048 private key>)"

    def __deepcopy__(self, memo: dict[int, Any]) -> CardKey:
        return self  # immutable; shared between forks of a state

    def public_key(self) -> rsa.RSAPublicKey:
        return self._key.public_key()

    def sign_pkcs1_v15(self, payload: bytes) -> bytes:
        """RSA over ``00 01 FF… 00 payload`` (PKCS#1 v1.5 type 1, RFC 8017 §9.2 step 5); the
        card pads whatever the terminal sends (docs/card.md §5.1), so this takes any payload up
        to k-11."""
        if not 1 <= len(payload) <= RSA_MODULUS_BYTES - 11:
            raise UsageError(f"a PKCS#1 v1.5 payload has 1-{RSA_MODULUS_BYTES - 11} bytes")
        block = b"\x00\x01" + b"\xff" * (RSA_MODULUS_BYTES - 3 - len(payload)) + b"\x00" + payload
        return self._raw(block)

    def sign_pss_sha256(self, data: bytes, *, prehashed: bool, salt_length: int) -> bytes:
        """RSASSA-PSS with SHA-256 and MGF1-SHA-256 (80 2A P1=04/05, docs/card.md §5.1)."""
        algorithm: hashes.HashAlgorithm | utils.Prehashed = (
            utils.Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256()
        )
        return self._key.sign(
            data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt_length), algorithm
        )

    def _raw(self, block: bytes) -> bytes:
        # cryptography has no raw RSA signing; compute m^d mod n with the CRT private numbers.
        numbers = self._numbers
        message = int.from_bytes(block, "big")
        modulus = numbers.public_numbers.n
        if message >= modulus:
            raise UsageError("the block to sign is not smaller than the modulus")
        half_p = pow(message, numbers.dmp1, numbers.p)
        half_q = pow(message, numbers.dmq1, numbers.q)
        combined = half_q + (numbers.iqmp * (half_p - half_q) % numbers.p) * numbers.q
        return combined.to_bytes(RSA_MODULUS_BYTES, "big")

    def to_pkcs8_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pkcs8_pem(cls, data: bytes, where: str) -> CardKey:
        try:
            # The full RSA consistency check costs ~65 ms a key, six keys on every card opened
            # (each `--reader virtual:` command). These keys were generated and written (0600)
            # by this package; __init__ still checks that the private numbers fit together.
            key = serialization.load_pem_private_key(
                data, password=None, unsafe_skip_rsa_key_validation=True
            )
        except ValueError:
            raise DataError(f"{where} is not a PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise DataError(f"{where} is not an RSA key")
        return cls(key)
