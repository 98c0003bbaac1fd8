"""verify_raw_signature: the check ``pkey verify`` makes, in the library (issue 8)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from mynakit.card.jpki import digest_info
from mynakit.jpki.certificates import SANDBOX_AUTH_POLICY_OID, parse_certificate
from mynakit.jpki.raw_signature import verify_raw_signature
from support.jpki_builders import TEST_AUTH_CA_NAME, build_end_entity, key_usage

pytestmark = pytest.mark.unit

CONTENT = b"challenge from the relying party"


@pytest.fixture(scope="module")
def holder() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    certificate = build_end_entity(
        key,  # self-issued is enough: no path validation here
        TEST_AUTH_CA_NAME,
        key,
        common_name="AB12CD34EF56GHSANDBOX01",
        policies=[SANDBOX_AUTH_POLICY_OID],
        usage=key_usage(digital_signature=True),
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=1),
    )
    return key, certificate.public_bytes(Encoding.DER)


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha384", "sha512"])
def test_hashed_signature_verifies_and_names_its_hash(
    holder: tuple[rsa.RSAPrivateKey, bytes], algorithm: str
) -> None:
    key, der = holder
    chosen = {
        "sha1": hashes.SHA1(),
        "sha256": hashes.SHA256(),
        "sha384": hashes.SHA384(),
        "sha512": hashes.SHA512(),
    }[algorithm]
    signature = key.sign(CONTENT, padding.PKCS1v15(), chosen)
    check = verify_raw_signature(der, CONTENT, signature)
    assert check.valid and check.digest_algorithm == algorithm
    assert check.to_dict() == {"valid": True, "digest": algorithm}
    assert not verify_raw_signature(parse_certificate(der), CONTENT + b"!", signature).valid


def test_raw_signature_and_garbage(holder: tuple[rsa.RSAPrivateKey, bytes]) -> None:
    key, der = holder
    block = digest_info("sha256", hashlib.sha256(CONTENT).digest())
    from cryptography.hazmat.primitives.asymmetric import utils

    signature = key.sign(
        hashlib.sha256(CONTENT).digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
    )
    assert verify_raw_signature(der, block, signature, raw=True).valid
    assert not verify_raw_signature(der, CONTENT, signature, raw=True).valid
    for garbage in (b"", b"\x00" * 256, b"\x01" * 300):
        check = verify_raw_signature(der, CONTENT, garbage)
        assert not check.valid and check.digest_algorithm is None
