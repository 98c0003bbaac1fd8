"""Certificates for transcripts: well-formed X.509 of exactly the recorded certificate's length.

A transcript (``mynakit.emulator.transcripts``) must not carry the holder's certificates, yet a
card rebuilt from it must hand out certificates that parse, verify and chain, each of the
recorded length, so every read keeps its offsets and lengths. ``CertificateRedactor`` rebuilds a
recorded certificate field by field (RFC 5280 §4.1), every replacement of the same encoded
length:

- serial number: random, of the same length;
- issuer (and the issuer name in authorityKeyIdentifier and CRL distribution points): the
  transcript CA's name, the original's with every value but the country and the JPKI CA unit
  replaced by "mynakit transcript CA" (docs/card.md §9.3: the unit says what the CA is for);
- subject and subjectAltName: the persona's values, fitted to the recorded lengths; the
  signature certificate's name and address keep their character counts, so the substitute
  flags still cover them (docs/card.md §9.2);
- subjectPublicKeyInfo and subjectKeyIdentifier: a fresh RSA key of the recorded size and
  exponent, which the rebuilt card then uses for its key EF;
- certificatePolicies: the production JPKI policies become the sandbox ones (same encoded
  length), so a transcript certificate never passes for a real one;
- CRL and OCSP URLs: ``.invalid`` URLs (RFC 2606 §2), so no client ever asks J-LIS about it;
- signature: by the transcript CA, a fresh key of the recorded issuer's size.

Validity, key usages and the other profile extensions are kept: they are the JPKI profile's,
not the holder's. The transcript CA's private key is dropped once its certificates are signed,
so it can sign nothing else; its certificate goes into the transcript for verifiers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mynakit.emulator.issuer import CA_KEY_USAGE
from mynakit.errors import DataError
from mynakit.iso7816 import tlv
from mynakit.jpki.certificates import (
    ADDRESS_OID,
    ADDRESS_SUBSTITUTE_OID,
    AUTH_CA_UNIT,
    BIRTH_DATE_OID,
    NAME_OID,
    NAME_SUBSTITUTE_OID,
    PRODUCTION_POLICIES,
    SANDBOX_POLICIES,
    SIGN_CA_UNIT,
)

TRANSCRIPT_CA_TEXT = "mynakit transcript CA "  # jpki verify-cert's hint looks for it
INVALID_URL = "http://transcript.invalid/"
# What a certificate's substitute flag marks (docs/card.md §9.2).
SUBSTITUTE_CHARACTER = "\u3013"

_COUNTRY_NAME = "2.5.4.6"
_ORGANIZATIONAL_UNIT = "2.5.4.11"
_SUBJECT_KEY_IDENTIFIER = "2.5.29.14"
_SUBJECT_ALTERNATIVE_NAME = "2.5.29.17"
_AUTHORITY_KEY_IDENTIFIER = "2.5.29.35"
_CRL_DISTRIBUTION_POINTS = "2.5.29.31"
_CERTIFICATE_POLICIES = "2.5.29.32"
_AUTHORITY_INFORMATION_ACCESS = "1.3.6.1.5.5.7.1.1"
# Extensions kept byte for byte: the JPKI profile's, the same on every holder's certificate.
_PROFILE_EXTENSIONS = {
    "2.5.29.15",  # keyUsage
    "2.5.29.37",  # extKeyUsage
    "2.5.29.19",  # basicConstraints
    "2.5.29.18",  # issuerAltName: the CA's (docs/card.md §9.1)
}
# sha*WithRSAEncryption (RFC 8017 Appendix A.2.4).
_SIGNATURE_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "1.2.840.113549.1.1.5": hashes.SHA1,
    "1.2.840.113549.1.1.11": hashes.SHA256,
    "1.2.840.113549.1.1.12": hashes.SHA384,
    "1.2.840.113549.1.1.13": hashes.SHA512,
}
_TAG_OID = 0x06
_TAG_UTF8_STRING = 0x0C
_TAG_BMP_STRING = 0x1E
_TAG_NUMERIC_STRING = 0x12
_TAG_URI = 0x86  # GeneralName uniformResourceIdentifier [6]
_TAG_DIRECTORY_NAME = 0xA4  # GeneralName directoryName [4]
_TAG_OTHER_NAME = 0xA0  # GeneralName otherName [0]
_ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


# -- DER ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    tag: int
    start: int  # of the tag
    value_start: int
    end: int

    def value(self, data: bytes | bytearray) -> bytes:
        return bytes(data[self.value_start : self.end])


def _node(data: bytes | bytearray, offset: int) -> _Node:
    try:
        header = tlv.read_header(bytes(data), offset)
    except tlv.TlvError as error:
        raise DataError(f"not DER: {error}") from error
    value_start = offset + header.header_length
    end = value_start + header.length
    if end > len(data):
        raise DataError("not DER: a value runs past the end")
    return _Node(header.tag, offset, value_start, end)


def _children(data: bytes | bytearray, node: _Node) -> list[_Node]:
    found = []
    offset = node.value_start
    while offset < node.end:
        child = _node(data, offset)
        if child.end > node.end:
            raise DataError("not DER: a value runs past its parent")
        found.append(child)
        offset = child.end
    return found


def _constructed(tag: int) -> bool:
    return bool(tlv.tag_bytes(tag)[0] & 0x20)


def _leaves_under(data: bytes | bytearray, node: _Node) -> list[_Node]:
    if not _constructed(node.tag):
        return [node]
    return [leaf for child in _children(data, node) for leaf in _leaves_under(data, child)]


def _decode_oid(value: bytes) -> str:
    arcs: list[int] = []
    number = 0
    for byte in value:
        number = (number << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(number)
            number = 0
    if not arcs:
        return ""
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in (first, arcs[0] - 40 * first, *arcs[1:]))


def _encode_oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    encoded = b""
    for arc in (40 * arcs[0] + arcs[1], *arcs[2:]):
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        encoded += bytes(reversed(chunk))
    return encoded


# -- values of a given length -------------------------------------------------------------------


def _filler_text(seed: bytes, length: int, alphabet: str = _ALPHANUMERIC) -> str:
    stream = b""
    counter = 0
    while len(stream) < length:
        stream += hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return "".join(alphabet[byte % len(alphabet)] for byte in stream[:length])


def _string_value(tag: int, source: str, length: int, seed: bytes) -> bytes:
    """``source`` as a DER string of type ``tag``, exactly ``length`` bytes: cut at a character,
    completed with letters and digits (digits for a NumericString)."""
    if tag == _TAG_BMP_STRING:
        width, encoding = 2, "utf-16-be"
    else:
        width, encoding = 1, "utf-8"
    if tag != _TAG_UTF8_STRING:
        source = "".join(character for character in source if character.isascii())
    if tag == _TAG_NUMERIC_STRING:
        source = "".join(character for character in source if character.isdigit())
    fitted = b""
    for character in source:
        encoded = character.encode(encoding)
        if len(fitted) + len(encoded) > length:
            break
        fitted += encoded
    alphabet = "0123456789" if tag == _TAG_NUMERIC_STRING else _ALPHANUMERIC
    missing = (length - len(fitted)) // width
    fitted += _filler_text(seed, missing, alphabet).encode(encoding)
    return fitted.ljust(length, b"\x00")  # only an odd-length BMPString leaves a byte over


def _fit_characters(source: str, byte_length: int, characters: int, seed: bytes) -> str | None:
    """A UTF-8 text of exactly ``byte_length`` bytes and ``characters`` characters, opening with
    as much of ``source`` as fits; None where no text can have both lengths."""
    if not characters <= byte_length <= 3 * characters:
        return None  # the fill below has characters of 1 to 3 bytes
    chosen = ""
    used = 0
    for character in source:
        size = len(character.encode("utf-8"))
        left_characters = characters - len(chosen) - 1
        left_bytes = byte_length - used - size
        if left_characters < 0 or not left_characters <= left_bytes <= 3 * left_characters:
            break
        chosen += character
        used += size
    left_characters = characters - len(chosen)
    extra = byte_length - used - left_characters  # bytes beyond one per remaining character
    # Katakana (3 bytes) and Greek (2 bytes) are JIS X 0208 characters (docs/card.md §9.2), so
    # the fill needs no substitute flag.
    padding_text = ""
    filler = _filler_text(seed, left_characters)
    for index in range(left_characters):
        if extra >= 2:
            padding_text += "\u30a2"
            extra -= 2
        elif extra == 1:
            padding_text += "\u03b1"
            extra -= 1
        else:
            padding_text += filler[index]
    return chosen + padding_text


def _positive_integer(length: int, *, leading_zero: bool) -> bytes:
    """A random positive DER INTEGER value of ``length`` bytes (X.690 §8.3: minimal)."""
    body = bytearray(secrets.token_bytes(length))
    if leading_zero and length > 1:
        body[0] = 0
        body[1] |= 0x80
    else:
        body[0] = (body[0] & 0x7F) or 0x01
    return bytes(body)


def _invalid_url(length: int) -> bytes:
    text = INVALID_URL if length >= len(INVALID_URL) else "http://x.invalid/"
    return (text + "x" * length).encode("ascii")[:length]


# -- names --------------------------------------------------------------------------------------


def _attributes(data: bytes | bytearray, name: _Node) -> list[tuple[str, _Node]]:
    """(attribute OID, value) of every AttributeTypeAndValue of a Name (RFC 5280 §4.1.2.4)."""
    found = []
    for relative in _children(data, name):
        for attribute in _children(data, relative):
            parts = _children(data, attribute)
            if len(parts) == 2 and parts[0].tag == _TAG_OID:
                found.append((_decode_oid(parts[0].value(data)), parts[1]))
    return found


def _rename(data: bytearray, name: _Node, seed: bytes) -> None:
    """Make ``name`` the transcript CA's: the country and JPKI CA unit stay, the rest says
    "mynakit transcript CA"."""
    for oid, value in _attributes(data, name):
        text = value.value(data).decode("utf-8", errors="replace")
        if oid == _COUNTRY_NAME or (oid == _ORGANIZATIONAL_UNIT and text in _CA_UNITS):
            continue
        length = value.end - value.value_start
        source = (TRANSCRIPT_CA_TEXT * (length // len(TRANSCRIPT_CA_TEXT) + 1))[:length]
        if source.endswith(" "):
            source = source[:-1] + "."
        data[value.value_start : value.end] = _string_value(value.tag, source, length, seed)


_CA_UNITS = {AUTH_CA_UNIT, SIGN_CA_UNIT}


def _persona_subject(data: bytearray, name: _Node, persona: _Persona) -> None:
    occurrences: dict[str, int] = {}
    for oid, value in _attributes(data, name):
        if oid == _COUNTRY_NAME:
            continue
        index = occurrences.get(oid, 0)
        occurrences[oid] = index + 1
        values = persona.subject.get(oid, [])
        source = values[index] if index < len(values) else ""
        length = value.end - value.value_start
        seed = persona.seed + f"subject {oid} {index}".encode()
        data[value.value_start : value.end] = _string_value(value.tag, source, length, seed)


# -- the persona's certificate ------------------------------------------------------------------


@dataclass
class _Persona:
    seed: bytes
    subject: dict[str, list[str]] = field(default_factory=dict)
    other_names: dict[str, str] = field(default_factory=dict)


def _persona_values(persona_der: bytes | None, seed: bytes) -> _Persona:
    persona = _Persona(seed)
    if not persona_der:
        return persona
    try:
        parts = _Certificate.parse(persona_der)
        for oid, value in _attributes(persona_der, parts.subject):
            text = value.value(persona_der).decode("utf-8", errors="replace")
            persona.subject.setdefault(oid, []).append(text)
        for oid, extension in parts.extensions(persona_der):
            if oid == _SUBJECT_ALTERNATIVE_NAME:
                for other_oid, inner in _other_names(persona_der, extension):
                    text = inner.value(persona_der).decode("utf-8", errors="replace")
                    persona.other_names[other_oid] = text
    except DataError:
        return _Persona(seed)
    return persona


def _other_names(data: bytes | bytearray, general_names: _Node) -> list[tuple[str, _Node]]:
    """(type OID, the string inside [0] EXPLICIT) of every otherName (RFC 5280 §4.2.1.6)."""
    found = []
    for general_name in _children(data, general_names):
        if general_name.tag != _TAG_OTHER_NAME:
            continue
        parts = _children(data, general_name)
        if len(parts) == 2 and parts[0].tag == _TAG_OID and _constructed(parts[1].tag):
            inner = _children(data, parts[1])
            if len(inner) == 1 and not _constructed(inner[0].tag):
                found.append((_decode_oid(parts[0].value(data)), inner[0]))
    return found


# -- the certificate ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Certificate:
    """Where the fields of a DER certificate are (RFC 5280 §4.1)."""

    whole: _Node
    tbs: _Node
    signature_algorithm: _Node
    signature: _Node
    serial: _Node
    issuer: _Node
    subject: _Node
    public_key_info: _Node
    extension_list: _Node | None

    @classmethod
    def parse(cls, data: bytes | bytearray) -> _Certificate:
        whole = _node(data, 0)
        outer = _children(data, whole)
        if len(outer) != 3:
            raise DataError("not a certificate: it holds no tbsCertificate, algorithm, signature")
        tbs, algorithm, signature = outer
        fields = _children(data, tbs)
        if fields and fields[0].tag == 0xA0:
            fields = fields[1:]  # version [0]
        if len(fields) < 6:
            raise DataError("not a certificate: the tbsCertificate is short of fields")
        extension_list = None
        for extra in fields[6:]:
            if extra.tag == 0xA3:  # extensions [3]
                extension_list = _children(data, extra)[0]
        return cls(
            whole,
            tbs,
            algorithm,
            signature,
            fields[0],
            fields[2],
            fields[4],
            fields[5],
            extension_list,
        )

    def extensions(self, data: bytes | bytearray) -> list[tuple[str, _Node]]:
        """(OID, the DER inside extnValue) of every extension."""
        if self.extension_list is None:
            return []
        found = []
        for extension in _children(data, self.extension_list):
            parts = _children(data, extension)
            if len(parts) < 2 or parts[0].tag != _TAG_OID:
                raise DataError("not a certificate: a malformed extension")
            octets = parts[-1]
            found.append((_decode_oid(parts[0].value(data)), _node(data, octets.value_start)))
        return found


@dataclass
class _Authority:
    """A transcript CA standing in for one recorded issuer."""

    key: rsa.RSAPrivateKey
    serial: bytes
    key_identifier: bytes
    name: x509.Name | None = None
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None


@dataclass(frozen=True)
class RedactedCertificate:
    """A certificate for the transcript and the fresh key its public key belongs to."""

    der: bytes
    key: rsa.RSAPrivateKey

    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")


class CertificateRedactor:
    """Redacts the certificates of one transcript; one transcript CA per recorded issuer."""

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._authorities: dict[bytes, _Authority] = {}
        self._count = 0

    def redact(self, original: bytes, persona_der: bytes | None) -> RedactedCertificate:
        """``original`` rebuilt as described in the module docstring; raises ``DataError`` if
        it is not an RSA certificate this can rebuild at its length."""
        try:
            loaded = x509.load_der_x509_certificate(original)
            original_key = loaded.public_key()
        except ValueError as error:
            raise DataError(f"not a certificate: {error}") from error
        if not isinstance(original_key, rsa.RSAPublicKey):
            raise DataError("not an RSA certificate")
        data = bytearray(original)
        parts = _Certificate.parse(data)
        algorithm = _children(data, parts.signature_algorithm)[0]
        hash_class = _SIGNATURE_HASHES.get(_decode_oid(algorithm.value(data)))
        if hash_class is None:
            raise DataError("the certificate's signature algorithm is not sha*WithRSAEncryption")
        self._count += 1
        seed = self._seed + f"certificate {self._count}".encode()

        serial = parts.serial
        data[serial.value_start : serial.end] = _positive_integer(
            serial.end - serial.value_start, leading_zero=data[serial.value_start] == 0
        )
        authority = self._authority(data, parts)
        _rename(data, parts.issuer, seed + b"issuer")
        persona = _persona_values(persona_der, seed)
        _persona_subject(data, parts.subject, persona)

        key = _fresh_key(original_key.public_numbers().e, original_key.key_size)
        public_key_info = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        info = parts.public_key_info
        if len(public_key_info) != info.end - info.start:
            raise DataError("a fresh key of the recorded size encodes to another length")
        data[info.start : info.end] = public_key_info
        for oid, value in parts.extensions(data):
            self._redact_extension(data, oid, value, authority, key, persona)

        tbs = bytes(data[parts.tbs.start : parts.tbs.end])
        signature = authority.key.sign(tbs, padding.PKCS1v15(), hash_class())
        target = parts.signature
        if len(signature) != target.end - target.value_start - 1:
            raise DataError("the transcript CA's signature has another length")
        data[target.value_start + 1 : target.end] = signature  # after the unused-bits byte
        redacted = bytes(data)
        try:
            certificate = x509.load_der_x509_certificate(redacted)
            certificate.extensions  # noqa: B018 - parsed lazily: make it parse them now
        except ValueError as error:
            raise DataError(f"the rebuilt certificate does not parse: {error}") from error
        authority.name = certificate.issuer
        start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        authority.not_before = min(start, authority.not_before or start)
        authority.not_after = max(end, authority.not_after or end)
        return RedactedCertificate(redacted, key)

    def authority_certificates(self) -> list[x509.Certificate]:
        """The transcript CAs' certificates (self-signed; their keys are then dropped)."""
        built = []
        for authority in self._authorities.values():
            if authority.name is None or authority.not_before is None:
                continue
            assert authority.not_after is not None
            key = authority.key
            certificate = (
                x509.CertificateBuilder()
                .subject_name(authority.name)
                .issuer_name(authority.name)
                .public_key(key.public_key())
                .serial_number(int.from_bytes(authority.serial, "big"))
                .not_valid_before(authority.not_before - dt.timedelta(days=1))
                .not_valid_after(authority.not_after + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(CA_KEY_USAGE, critical=True)
                .add_extension(x509.SubjectKeyIdentifier(authority.key_identifier), critical=False)
                .sign(key, hashes.SHA256())
            )
            built.append(certificate)
        return built

    def _authority(self, data: bytearray, parts: _Certificate) -> _Authority:
        issuer = parts.issuer.value(data)
        authority = self._authorities.get(issuer)
        if authority is not None:
            return authority
        # The recorded issuer's key size is the signature's length (RFC 8017 §8.2.1).
        signature_bytes = parts.signature.end - parts.signature.value_start - 1
        serial_length, identifier_length = 8, 20
        for oid, value in parts.extensions(data):
            if oid == _AUTHORITY_KEY_IDENTIFIER:
                for child in _children(data, value):
                    if child.tag == 0x80:
                        identifier_length = child.end - child.value_start
                    elif child.tag == 0x82:
                        serial_length = child.end - child.value_start
        authority = _Authority(
            key=_fresh_key(65537, signature_bytes * 8),
            serial=_positive_integer(min(serial_length, 20), leading_zero=False),
            key_identifier=secrets.token_bytes(identifier_length),
        )
        self._authorities[issuer] = authority
        return authority

    def _redact_extension(
        self,
        data: bytearray,
        oid: str,
        value: _Node,
        authority: _Authority,
        key: rsa.RSAPrivateKey,
        persona: _Persona,
    ) -> None:
        if oid in _PROFILE_EXTENSIONS:
            return
        if oid == _SUBJECT_KEY_IDENTIFIER:
            digest = x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest
            length = value.end - value.value_start
            data[value.value_start : value.end] = (digest * (length // len(digest) + 1))[:length]
        elif oid == _AUTHORITY_KEY_IDENTIFIER:
            for child in _children(data, value):
                if child.tag == 0x80 and child.end - child.value_start == len(
                    authority.key_identifier
                ):
                    data[child.value_start : child.end] = authority.key_identifier
                elif child.tag == 0x82 and child.end - child.value_start == len(authority.serial):
                    data[child.value_start : child.end] = authority.serial
                elif child.tag == 0xA1:
                    self._rename_directory_names(data, child)
                else:
                    _fill(data, child, persona.seed + b"aki")
        elif oid == _CERTIFICATE_POLICIES:
            mapping = {
                _encode_oid(PRODUCTION_POLICIES[kind].dotted_string): _encode_oid(
                    SANDBOX_POLICIES[kind].dotted_string
                )
                for kind in PRODUCTION_POLICIES
            }
            for leaf in _leaves_under(data, value):
                replacement = mapping.get(leaf.value(data)) if leaf.tag == _TAG_OID else None
                if replacement is not None and len(replacement) == leaf.end - leaf.value_start:
                    data[leaf.value_start : leaf.end] = replacement
        elif oid in (_CRL_DISTRIBUTION_POINTS, _AUTHORITY_INFORMATION_ACCESS):
            self._rename_directory_names(data, value)
            for leaf in _leaves_under(data, value):
                if leaf.tag == _TAG_URI:
                    data[leaf.value_start : leaf.end] = _invalid_url(leaf.end - leaf.value_start)
        elif oid == _SUBJECT_ALTERNATIVE_NAME:
            _persona_alternative_names(data, value, persona)
        else:
            # An extension this profile does not have may say anything about the holder.
            _fill(data, value, persona.seed + oid.encode())

    def _rename_directory_names(self, data: bytearray, node: _Node) -> None:
        if not _constructed(node.tag):
            return
        for child in _children(data, node):
            if child.tag == _TAG_DIRECTORY_NAME:
                _rename(data, _children(data, child)[0], self._seed + b"directory")
            else:
                self._rename_directory_names(data, child)


def _fresh_key(exponent: int, bits: int) -> rsa.RSAPrivateKey:
    try:
        return rsa.generate_private_key(public_exponent=exponent, key_size=bits)
    except ValueError as error:  # an exponent or size cryptography does not generate
        raise DataError(f"cannot make an RSA-{bits} key with exponent {exponent}") from error


def _fill(data: bytearray, node: _Node, seed: bytes) -> None:
    """Every primitive value under ``node`` replaced: strings by letters and digits, OIDs,
    booleans and NULLs kept (they name things, not people), anything else by random bytes."""
    for leaf in _leaves_under(data, node):
        length = leaf.end - leaf.value_start
        if leaf.tag in (_TAG_OID, 0x01, 0x05):
            continue
        if leaf.tag in (0x0C, 0x12, 0x13, 0x14, 0x16, 0x1A, 0x1E, 0x81, 0x82, 0x86):
            source = _filler_text(seed + leaf.start.to_bytes(4, "big"), length)
            data[leaf.value_start : leaf.end] = _string_value(leaf.tag, source, length, seed)
        elif leaf.tag == 0x02 and length:
            data[leaf.value_start : leaf.end] = _positive_integer(length, leading_zero=False)
        elif leaf.tag == 0x03 and length:
            data[leaf.value_start + 1 : leaf.end] = secrets.token_bytes(length - 1)
        else:
            data[leaf.value_start : leaf.end] = secrets.token_bytes(length)


def _persona_alternative_names(data: bytearray, general_names: _Node, persona: _Persona) -> None:
    """The persona's basic-4 values in place of the holder's (docs/card.md §9.2): the name and
    address keep their byte and character counts, their flags mark the substitute characters."""
    names = _other_names(data, general_names)
    found = {oid: node for oid, node in names}
    replaced: set[int] = set()
    for text_oid, flags_oid in (
        (NAME_OID.dotted_string, NAME_SUBSTITUTE_OID.dotted_string),
        (ADDRESS_OID.dotted_string, ADDRESS_SUBSTITUTE_OID.dotted_string),
    ):
        text_node, flags_node = found.get(text_oid), found.get(flags_oid)
        if text_node is None:
            continue
        length = text_node.end - text_node.value_start
        original = text_node.value(data).decode("utf-8", errors="replace")
        characters = flags_node.end - flags_node.value_start if flags_node else len(original)
        seed = persona.seed + text_oid.encode()
        text = _fit_characters(persona.other_names.get(text_oid, ""), length, characters, seed)
        if text is None:
            continue  # left to the generic fill below
        data[text_node.value_start : text_node.end] = text.encode("utf-8")
        replaced.add(text_node.start)
        if flags_node is not None:
            flags = "".join("1" if ch == SUBSTITUTE_CHARACTER else "0" for ch in text)
            data[flags_node.value_start : flags_node.end] = flags.encode("ascii")
            replaced.add(flags_node.start)
    birth = found.get(BIRTH_DATE_OID.dotted_string)
    for oid, node in names:
        if node.start in replaced:
            continue
        length = node.end - node.value_start
        source = persona.other_names.get(oid, "")
        if node is birth and len(source.encode("utf-8")) != length:
            source = ""
        data[node.value_start : node.end] = _string_value(
            node.tag, source, length, persona.seed + oid.encode()
        )
    for general_name in _children(data, general_names):
        if general_name.tag != _TAG_OTHER_NAME:
            _fill(data, general_name, persona.seed + b"alternative name")
