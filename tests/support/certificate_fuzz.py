"""A seeded mutator for DER certificates, and the harness that feeds mutants to the relying
side: parsing, every accessor, trust-anchor loading and path validation.

Only the library's documented errors (``MynakitError`` subclasses) may come out of the
harness; anything else is an escape. Used by tests/unit/test_certificate_fuzz.py (a bounded
count in CI) and tools/fuzz_certificates.py (the large run).

Mutations are of two families: raw byte edits that break the DER framing (bit flips, byte
values, truncation, insertion, deletion, length-byte changes) and structural edits that keep
the framing valid and break the meaning (version byte, duplicated or dropped extensions,
invalid UTF-8 or wrong string types in names and subjectAltName, swapped or re-tagged
elements), re-encoded with correct lengths so they reach the deeper checks.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from mynakit.errors import MynakitError
from mynakit.jpki.certificates import CertificateKind, JpkiCertificate, parse_certificate
from mynakit.jpki.inputs import decode_pem
from mynakit.jpki.trust import TrustStore
from mynakit.jpki.validation import validate_path

FIXTURES = Path(__file__).parent / "certificates"
# Inside the sandbox certificates' validity, so that mutants reach the later checks.
VALIDATION_TIME = dt.datetime(2027, 6, 1, tzinfo=dt.UTC)


# -- the corpus -------------------------------------------------------------------------------


def corpus() -> list[bytes]:
    """The bundled J-LIS roots and the sandbox-issued roots, auth and sign certificates."""
    certificates: list[bytes] = []
    roots = resources.files("mynakit.jpki") / "roots"
    for entry in sorted(roots.iterdir(), key=lambda item: item.name):
        if entry.name.endswith(".pem"):
            certificates.extend(block.der for block in decode_pem(entry.read_bytes()))
    certificates.extend(
        block.der for block in decode_pem((FIXTURES / "sandbox_roots.pem").read_bytes())
    )
    certificates.append((FIXTURES / "sandbox_auth.der").read_bytes())
    certificates.append((FIXTURES / "sandbox_sign.der").read_bytes())
    return certificates


def trust_store() -> TrustStore:
    """J-LIS production roots plus the sandbox roots the fixtures were issued under."""
    return TrustStore.jlis().with_sandbox(
        [block.der for block in decode_pem((FIXTURES / "sandbox_roots.pem").read_bytes())]
    )


# -- a minimal DER tree (single-byte tags: all a certificate uses) ----------------------------


@dataclass
class Node:
    tag: int
    value: bytes = b""
    children: list[Node] | None = None

    def encode(self) -> bytes:
        body = (
            b"".join(child.encode() for child in self.children)
            if self.children is not None
            else self.value
        )
        return bytes((self.tag,)) + _length(len(body)) + body

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children or ():
            yield from child.walk()


def _length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    size = (length.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + length.to_bytes(size, "big")


def parse_tree(data: bytes) -> Node:
    node, end = _parse(data, 0)
    if end != len(data):
        raise ValueError("trailing bytes")
    return node


def _parse(data: bytes, offset: int) -> tuple[Node, int]:
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte tag")
    first = data[offset + 1]
    position = offset + 2
    if first < 0x80:
        length = first
    else:
        size = first & 0x7F
        if size == 0 or size > 4:
            raise ValueError("length form")
        length = int.from_bytes(data[position : position + size], "big")
        position += size
    end = position + length
    if end > len(data):
        raise ValueError("truncated")
    value = data[position:end]
    children: list[Node] | None = None
    if tag & 0x20:
        children = []
        inner = position
        while inner < end:
            child, inner = _parse(data, inner)
            children.append(child)
        if inner != end:
            raise ValueError("children overrun")
    return Node(tag, value, children), end


# -- mutations --------------------------------------------------------------------------------

INTERESTING_BYTES = (0x00, 0x01, 0x02, 0x03, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0xFF)
STRING_TAGS = (0x0C, 0x13, 0x16, 0x1E, 0x14, 0x1C, 0x04, 0x05)  # UTF8, Printable, IA5, BMP...
INVALID_UTF8 = (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe3\x81", b"\xf8\x88\x80\x80\x80")


def _flip_bit(rng: random.Random, data: bytes) -> bytes:
    position = rng.randrange(len(data))
    return (
        data[:position] + bytes((data[position] ^ (1 << rng.randrange(8)),)) + data[position + 1 :]
    )


def _set_byte(rng: random.Random, data: bytes) -> bytes:
    position = rng.randrange(len(data))
    value = rng.choice(INTERESTING_BYTES) if rng.random() < 0.5 else rng.randrange(256)
    return data[:position] + bytes((value,)) + data[position + 1 :]


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


def _insert(rng: random.Random, data: bytes) -> bytes:
    position = rng.randrange(len(data) + 1)
    return data[:position] + rng.randbytes(rng.randint(1, 8)) + data[position:]


def _delete(rng: random.Random, data: bytes) -> bytes:
    position = rng.randrange(len(data))
    return data[:position] + data[position + rng.randint(1, 8) :]


def _length_byte(rng: random.Random, data: bytes) -> bytes:
    """Change one length field of the framing: off by one, zero, huge or long form."""
    headers = [index for index in range(len(data) - 1) if data[index] in (0x30, 0x31, 0xA0, 0xA3)]
    position = rng.choice(headers) + 1 if headers else rng.randrange(len(data))
    replacement = rng.choice(
        [
            bytes(((data[position] + 1) & 0xFF,)),
            bytes(((data[position] - 1) & 0xFF,)),
            b"\x00",
            b"\x80",
            b"\x84\xff\xff\xff\xff",
            b"\x85\x01\x00\x00\x00\x00",
        ]
    )
    return data[:position] + replacement + data[position + 1 :]


def _version_byte(rng: random.Random, data: bytes) -> bytes:
    marker = b"\xa0\x03\x02\x01"
    position = data.find(marker)
    if position == -1:
        return _set_byte(rng, data)
    value = rng.choice((0x00, 0x01, 0x03, 0x04, 0x7F, 0x80, 0xFF, rng.randrange(256)))
    at = position + len(marker)
    return data[:at] + bytes((value,)) + data[at + 1 :]


def _tbs(tree: Node) -> list[Node]:
    assert tree.children is not None
    tbs = tree.children[0].children
    assert tbs is not None
    return tbs


def _extensions(tree: Node) -> list[Node] | None:
    for element in _tbs(tree):
        if element.tag == 0xA3 and element.children:
            return element.children[0].children
    return None


def _duplicate_extension(rng: random.Random, tree: Node) -> None:
    extensions = _extensions(tree)
    if not extensions:
        raise ValueError("no extensions")
    extensions.insert(rng.randrange(len(extensions) + 1), rng.choice(extensions))


def _drop_extension(rng: random.Random, tree: Node) -> None:
    extensions = _extensions(tree)
    if not extensions:
        raise ValueError("no extensions")
    extensions.pop(rng.randrange(len(extensions)))


def _string_nodes(tree: Node) -> list[Node]:
    return [node for node in tree.walk() if node.children is None and node.tag in STRING_TAGS]


def _corrupt_string(rng: random.Random, tree: Node) -> None:
    """Invalid UTF-8 or a wrong string type in a name or an extension (issuer, subject, SAN)."""
    strings = _string_nodes(tree)
    if not strings:
        raise ValueError("no strings")
    node = rng.choice(strings)
    choice = rng.random()
    if choice < 0.6:
        position = rng.randrange(len(node.value) + 1)
        node.value = node.value[:position] + rng.choice(INVALID_UTF8) + node.value[position:]
    elif choice < 0.8:
        node.tag = rng.choice(STRING_TAGS)
    else:
        node.value = rng.randbytes(rng.randint(0, 24))


def _corrupt_extension_value(rng: random.Random, tree: Node) -> None:
    """Re-encode one extension's inner OCTET STRING with edits, so extension parsers see it."""
    extensions = _extensions(tree)
    if not extensions:
        raise ValueError("no extensions")
    extension = rng.choice(extensions)
    assert extension.children is not None
    octets = extension.children[-1]
    value = octets.value or b"\x00"
    for _ in range(rng.randint(1, 3)):
        value = rng.choice((_flip_bit, _set_byte, _truncate, _insert, _delete))(rng, value) or b""
    octets.value = value
    octets.children = None


def _swap_or_retag(rng: random.Random, tree: Node) -> None:
    nodes = [node for node in tree.walk() if node.children]
    node = rng.choice(nodes)
    assert node.children is not None
    if len(node.children) > 1 and rng.random() < 0.5:
        first, second = rng.sample(range(len(node.children)), 2)
        node.children[first], node.children[second] = node.children[second], node.children[first]
    else:
        target = rng.choice(node.children)
        target.tag = rng.choice((0x02, 0x04, 0x05, 0x06, 0x0C, 0x30, 0x31, 0x17, 0x18, 0xA0))


RawMutation = Callable[[random.Random, bytes], bytes]
TreeMutation = Callable[[random.Random, Node], None]
RAW_MUTATIONS: tuple[RawMutation, ...] = (
    _flip_bit,
    _set_byte,
    _truncate,
    _insert,
    _delete,
    _length_byte,
    _version_byte,
)
TREE_MUTATIONS: tuple[TreeMutation, ...] = (
    _duplicate_extension,
    _drop_extension,
    _corrupt_string,
    _corrupt_string,
    _corrupt_extension_value,
    _swap_or_retag,
)


def mutate(rng: random.Random, original: bytes) -> bytes:
    """One mutant of a certificate: a structural edit (half the time) or raw byte edits."""
    return _mutate(rng, original, TREE_MUTATIONS)


GENERIC_TREE_MUTATIONS: tuple[TreeMutation, ...] = (_corrupt_string, _swap_or_retag)


def mutate_der(rng: random.Random, original: bytes) -> bytes:
    """One mutant of any DER structure (a CMS signature, an OCSP response, a CRL): the raw
    byte edits, or the structural edits that assume no particular structure."""
    return _mutate(rng, original, GENERIC_TREE_MUTATIONS)


def _mutate(rng: random.Random, original: bytes, tree_mutations: Sequence[TreeMutation]) -> bytes:
    if rng.random() < 0.5:
        tree = parse_tree(original)
        try:
            rng.choice(tree_mutations)(rng, tree)
        except ValueError:
            return _flip_bit(rng, original)
        return tree.encode()
    data = original
    for _ in range(rng.randint(1, 3)):
        if not data:
            break
        data = rng.choice(RAW_MUTATIONS)(rng, data)
    return data


# -- the harness ------------------------------------------------------------------------------


def exercise(der: bytes, store: TrustStore) -> None:
    """Everything the relying side does with a certificate handed to it."""
    certificate = parse_certificate(der)
    _read_everything(certificate)
    if certificate.kind.is_ca:
        TrustStore().add(certificate)
        return
    validate_path(certificate, store, at=VALIDATION_TIME, purpose=certificate.kind)


def _read_everything(certificate: JpkiCertificate) -> None:
    facts: list[object] = [
        certificate.serial_number,
        certificate.not_before,
        certificate.not_after,
        certificate.issuer_name.rfc4514_string(),
        certificate.subject_name.rfc4514_string(),
        certificate.subject_common_name,
        certificate.policies,
        certificate.is_sandbox,
        repr(certificate),
    ]
    if certificate.kind is CertificateKind.AUTH:
        facts += [certificate.random_string, certificate.terminal_code]
    if certificate.kind is CertificateKind.SIGN:
        facts += [
            certificate.basic_info,
            certificate.birth_era_date,
            certificate.name_substitute_positions,
            certificate.address_substitute_positions,
        ]
    assert facts


@dataclass
class FuzzReport:
    inputs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    escapes: list[tuple[str, bytes]] = field(default_factory=list)  # (error, the mutant)


def run(
    count: int,
    seed: int,
    *,
    originals: Sequence[bytes] | None = None,
    progress: Callable[[int], None] | None = None,
) -> FuzzReport:
    """Feed ``count`` mutants (seeded: the same seed gives the same inputs) to the harness;
    count outcomes by error type ("accepted" when no error)."""
    rng = random.Random(seed)
    sources = list(originals) if originals is not None else corpus()
    store = trust_store()
    report = FuzzReport()
    for index in range(count):
        mutant = mutate(rng, rng.choice(sources))
        report.inputs += 1
        try:
            exercise(mutant, store)
        except MynakitError as error:
            report.outcomes[type(error).__name__] += 1
        except Exception as error:  # an escape is what the fuzzer looks for
            name = f"ESCAPED {type(error).__module__}.{type(error).__qualname__}"
            report.outcomes[name] += 1
            report.escapes.append((f"{name}: {error}", mutant))
        else:
            report.outcomes["accepted"] += 1
        if progress is not None and (index + 1) % 1000 == 0:
            progress(index + 1)
    return report
