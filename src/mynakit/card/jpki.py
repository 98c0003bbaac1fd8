"""The JPKI AP (公的個人認証AP): token, certificates, PIN status and change, signatures.

APDUs per docs/card.md §7.1-§7.8 and §5.1: certificates are read by SFI (base session),
PINs are verified through the guarded ``ApplicationSession.verify`` (counter first, never the
last try without ``force``), and signatures use ``80 2A 00 <80|SFI>`` with a host-built
DigestInfo, so no SELECT of the key EF is needed (P2 97 auth key, 9A sign key).
"""

from __future__ import annotations

from mynakit.card.base import KEY_OF_CURRENT_EF, ApplicationSession
from mynakit.card.detect import CardKind, parse_token_label
from mynakit.card.errors import PinRequiredError
from mynakit.errors import DataError, UsageError
from mynakit.iso7816 import tlv
from mynakit.iso7816.apdu import SHORT_MAX_RESPONSE
from mynakit.iso7816.status import ApduError, StatusWord
from mynakit.profiles import load_profile
from mynakit.value_object import ValueObject

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from typing import Final, Literal

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding as asymmetric_padding
    from cryptography.hazmat.primitives.asymmetric import rsa, utils

    from mynakit.iso7816.protocol import ApduProtocol
    from mynakit.profiles import CardProfile

    KeyKind = Literal["auth", "sign"]
    CertificateName = Literal["auth", "sign", "auth_ca", "sign_ca"]
    HashName = Literal["sha1", "sha256", "sha384", "sha512"]

INS_COMPUTE_DIGITAL_SIGNATURE = 0x2A
CLA_PROPRIETARY = 0x80
SIGN_DIGEST_INFO_AS_GIVEN = 0x00  # docs/card.md §5.1 P1 = 00: PKCS#1 v1.5 over the data as supplied
# PKCS#1 v1.5 type-1 padding needs 11 bytes of a 256-byte block (docs/card.md §5.1: "1-245 bytes").
MAX_DIGEST_INFO_LENGTH = 245

SMARTPHONE_PROFILE = "smartphone-jpki-token"


# DigestInfo prefixes, exact bytes of docs/card.md §5.1.
DIGEST_INFO_PREFIXES: dict[str, bytes] = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
DIGEST_LENGTHS = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}

_CERTIFICATE_FILES = {
    "auth": "auth_certificate",
    "sign": "sign_certificate",
    "auth_ca": "auth_ca_certificate",
    "sign_ca": "sign_ca_certificate",
}
_PRIVATE_KEYS = {"auth": "auth_key", "sign": "sign_key"}
#: The PIN that unlocks each JPKI private key (docs/card.md §4).
PIN_OF_KEY = {"auth": "auth_pin", "sign": "sign_password"}


def digest_info(hash_algorithm: str, digest: bytes) -> bytes:
    """The DER DigestInfo the card signs: the exact prefix of docs/card.md §5.1 followed by the
    digest."""
    prefix = DIGEST_INFO_PREFIXES.get(hash_algorithm)
    if prefix is None:
        raise UsageError(
            f"unsupported hash {hash_algorithm!r}; use one of {', '.join(DIGEST_INFO_PREFIXES)}"
        )
    if len(digest) != DIGEST_LENGTHS[hash_algorithm]:
        raise UsageError(
            f"a {hash_algorithm} digest has {DIGEST_LENGTHS[hash_algorithm]} bytes, "
            f"not {len(digest)}"
        )
    return prefix + digest


def profile_for_token(kind: CardKind) -> CardProfile:
    """The card profile for a token: smartphone tokens guard the auth certificate
    (docs/card.md §7.2)."""
    if kind in (CardKind.SMARTPHONE_TOKEN_ANDROID, CardKind.SMARTPHONE_TOKEN_IPHONE):
        return load_profile(SMARTPHONE_PROFILE)
    return load_profile()


class Token(ValueObject):
    """What the JPKI AP's token file says the card is (docs/card.md §6.10)."""

    __slots__ = ("kind", "label")

    def __init__(self, kind: CardKind, label: str) -> None:
        self.kind: Final = kind
        self.label: Final = label

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind.value, "description": self.kind.description, "label": self.label}


class JpkiAp(ApplicationSession):
    """The JPKI AP. Constructing it selects the AP; :meth:`open` also reads the token and picks
    the matching card profile, which is what a caller that does not know the card wants."""

    application_name = "jpki"
    pin_keys = ("auth_pin", "sign_password")
    changeable_pins = ("auth_pin", "sign_password")

    def __init__(
        self, protocol: ApduProtocol, profile: CardProfile | None = None, *, select: bool = True
    ) -> None:
        super().__init__(protocol, profile, select=select)
        self._token: Token | None = None
        self._certificates: dict[str, bytes] = {}

    @classmethod
    def open(cls, protocol: ApduProtocol) -> JpkiAp:
        """Select the AP, read the token (2 APDUs, docs/card.md §7.1) and use the token's
        profile."""
        session = cls(protocol)
        token = session.token()
        profile = profile_for_token(token.kind)
        if profile is not session.profile:
            session.profile = profile
            session.application = profile.application(cls.application_name)
        return session

    # -- token ---------------------------------------------------------------------------------

    def token(self) -> Token:
        """Read the token label (EF 0006) once: card, smartphone token or Juki card
        (docs/card.md §6.10)."""
        if self._token is None:
            self._token = Token(*parse_token_label(self.read_file("token")))
        return self._token

    # -- certificates --------------------------------------------------------------------------

    def read_certificate(self, kind: CertificateName) -> bytes:
        """The DER certificate of ``kind``. The signature certificate needs the sign password
        first (docs/card.md §11.4), and a smartphone token's auth certificate the auth PIN
        (docs/card.md §7.2)."""
        file_name = _CERTIFICATE_FILES.get(kind)
        if file_name is None:
            raise UsageError(f"no certificate kind {kind!r}; use {', '.join(_CERTIFICATE_FILES)}")
        if kind in self._certificates:
            return self._certificates[kind]
        file = self.application.file(file_name)
        if file.read_keys and not any(key_id in self._verified for key_id in file.read_keys):
            names = " or the ".join(
                self.application.keys[key_id].label or self.application.keys[key_id].name
                for key_id in file.read_keys
            )
            raise PinRequiredError(
                f"reading the {kind} certificate needs the {names}; verify it first"
            )
        try:
            data = self.read_file(file_name)
            # The DER header sizes the certificate (docs/card.md §11.6).
            total = tlv.der_sequence_length(data, "certificate")
        except DataError as error:
            raise DataError(
                f"EF {file.file_id:04X} holds no readable certificate: {error}"
            ) from error
        if total != len(data):
            raise DataError(
                f"the {kind} certificate on the card is truncated ({len(data)} bytes read)"
            )
        self._certificates[kind] = data
        return data

    # -- PINs ----------------------------------------------------------------------------------

    def verify_auth_pin(self, pin: str, *, force: bool = False) -> None:
        self.verify("auth_pin", pin, force=force)

    def verify_sign_password(self, password: str, *, force: bool = False) -> None:
        self.verify("sign_password", password, force=force)

    # -- signatures ----------------------------------------------------------------------------

    def sign(self, key: KeyKind, digest_info_bytes: bytes) -> bytes:
        """Sign a DER DigestInfo with the auth or sign key: ``80 2A 00 97|9A``
        (docs/card.md §5.1, §7.7)."""
        private_key = self.application.key(_PRIVATE_KEYS[_checked_key(key)])
        pin = self.application.key(PIN_OF_KEY[key])
        if pin.key_id not in self._verified:
            raise PinRequiredError(
                f"signing with the {key} key needs the {pin.label or pin.name}; verify it first"
            )
        if not 1 <= len(digest_info_bytes) <= MAX_DIGEST_INFO_LENGTH:
            raise UsageError(
                f"the card signs 1-{MAX_DIGEST_INFO_LENGTH} bytes (a DigestInfo), "
                f"not {len(digest_info_bytes)}"
            )
        try:
            signature = self.protocol.send(
                CLA_PROPRIETARY,
                INS_COMPUTE_DIGITAL_SIGNATURE,
                SIGN_DIGEST_INFO_AS_GIVEN,
                KEY_OF_CURRENT_EF | private_key.key_id,
                digest_info_bytes,
                le=SHORT_MAX_RESPONSE,
            )
        except ApduError as error:
            if error.sw == StatusWord.SECURITY_STATUS_NOT_SATISFIED:
                raise PinRequiredError(
                    f"the card refused the {key} key: its PIN is not verified"
                ) from error
            raise
        if not signature:
            raise DataError("the card answered the signature command with no signature")
        return signature

    def sign_digest(self, key: KeyKind, hash_algorithm: HashName, digest: bytes) -> bytes:
        """Sign a digest computed on the host, wrapped in the DigestInfo of docs/card.md §5.1."""
        return self.sign(key, digest_info(hash_algorithm, digest))

    def private_key(self, key: KeyKind) -> CardPrivateKey:
        return CardPrivateKey(self, key)


def _checked_key(key: str) -> KeyKind:
    if key not in _PRIVATE_KEYS:
        raise UsageError(f"no JPKI key {key!r}; use auth or sign")
    return key  # type: ignore[return-value]


class CardPrivateKey:
    """A card key shaped like cryptography's ``RSAPrivateKey.sign``, so
    CMS and PDF signers can use it. Hashing happens on the host; the card signs the DigestInfo.
    It does not claim the whole ABC: the private key never leaves the card."""

    def __init__(self, session: JpkiAp, key: KeyKind) -> None:
        self.session = session
        self.key: KeyKind = _checked_key(key)
        self._public_key: rsa.RSAPublicKey | None = None

    def sign(
        self,
        data: bytes,
        padding: asymmetric_padding.AsymmetricPadding | None = None,
        algorithm: hashes.HashAlgorithm | utils.Prehashed | None = None,
    ) -> bytes:
        # cryptography only here: reading a certificate or signing a DigestInfo never needs it,
        # and its import costs a CLI command about 7 ms of start-up (tools/bench/README.md).
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding as asymmetric_padding
        from cryptography.hazmat.primitives.asymmetric import utils

        chosen_padding = padding if padding is not None else asymmetric_padding.PKCS1v15()
        if not isinstance(chosen_padding, asymmetric_padding.PKCS1v15):
            raise UsageError("the card signs with PKCS#1 v1.5 only (docs/card.md §5.1)")
        chosen = algorithm if algorithm is not None else hashes.SHA256()
        if isinstance(chosen, utils.Prehashed):
            name, digest = chosen._algorithm.name, data
        else:
            hasher = hashes.Hash(chosen)
            hasher.update(data)
            name, digest = chosen.name, hasher.finalize()
        return self.session.sign_digest(self.key, _hash_name(name), digest)

    def public_key(self) -> rsa.RSAPublicKey:
        if self._public_key is None:
            # cryptography directly: the relying side (mynakit.jpki) sits above this layer.
            from cryptography import x509
            from cryptography.hazmat.primitives.asymmetric import rsa

            try:
                certificate = x509.load_der_x509_certificate(
                    self.session.read_certificate(self.key)
                )
            except ValueError as error:
                raise DataError(f"the card's {self.key} certificate is malformed") from error
            key = certificate.public_key()
            if not isinstance(key, rsa.RSAPublicKey):
                raise DataError("the card's certificate does not hold an RSA key")
            self._public_key = key
        return self._public_key

    @property
    def key_size(self) -> int:
        return self.public_key().key_size


def _hash_name(name: str) -> HashName:
    if name not in DIGEST_INFO_PREFIXES:
        raise UsageError(f"the card signs sha1, sha256, sha384 or sha512 digests, not {name}")
    return name  # type: ignore[return-value]
