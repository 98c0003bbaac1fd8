"""Bounded relying-side input (issue 7): size caps that name the limit, reads that stop on
endless sources, and the PEM decoder (RFC 7468)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

from mynakit.errors import DataError, UsageError
from mynakit.jpki.certificates import load_certificate, parse_certificate
from mynakit.jpki.cms import load_cms
from mynakit.jpki.inputs import (
    SIZE_LIMITS,
    InputKind,
    InputTooLargeError,
    check_input_size,
    decode_pem,
    pem_or_der,
    read_bounded,
)
from mynakit.jpki.pdf import verify_pdf
from mynakit.jpki.trust import TrustStore
from support.certificate_fuzz import FIXTURES

pytestmark = pytest.mark.unit

FOUR_MIB = 4 * 1024 * 1024


def pem(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der)  # 76-character lines
    return (
        b"-----BEGIN "
        + label.encode()
        + b"-----\n"
        + body
        + b"-----END "
        + label.encode()
        + b"-----\n"
    )


def test_caps_are_documented_and_ordered() -> None:
    assert SIZE_LIMITS[InputKind.CERTIFICATE] < SIZE_LIMITS[InputKind.CMS]
    assert SIZE_LIMITS[InputKind.CMS] < SIZE_LIMITS[InputKind.PDF]
    # A 4 MiB PEM body is over the certificate cap: refused before any parsing.
    assert SIZE_LIMITS[InputKind.CERTIFICATE] < FOUR_MIB


@pytest.mark.parametrize(
    ("parse", "kind"),
    [
        (parse_certificate, InputKind.CERTIFICATE),
        (load_certificate, InputKind.CERTIFICATE),
        (load_cms, InputKind.CMS),
        (lambda data: verify_pdf(data, TrustStore()), InputKind.PDF),
    ],
)
def test_library_parsers_refuse_input_over_the_cap_naming_it(
    parse: object, kind: InputKind
) -> None:
    limit = SIZE_LIMITS[kind]
    with pytest.raises(InputTooLargeError) as raised:
        parse(b"0" * (limit + 1))  # type: ignore[operator]
    message = str(raised.value)
    assert "\n" not in message
    assert f"{limit // (1024 * 1024)} MiB" in message
    assert raised.value.limit == limit
    assert isinstance(raised.value, UsageError)


def test_a_4_mib_pem_certificate_is_refused_by_size() -> None:
    body = pem("CERTIFICATE", bytes(3 * 1024 * 1024))
    assert len(body) > FOUR_MIB
    with pytest.raises(InputTooLargeError, match="1 MiB"):
        load_certificate(body, "big.pem")


def test_read_bounded_stops_on_an_endless_source() -> None:
    class Endless(io.RawIOBase):
        def __init__(self) -> None:
            self.handed_out = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
            buffer[:] = bytes(len(buffer))
            self.handed_out += len(buffer)
            return len(buffer)

    source = Endless()
    with pytest.raises(InputTooLargeError):
        read_bounded(io.BufferedReader(source), InputKind.CERTIFICATE, "stdin")
    # It read at most one buffer past the cap, not until memory ran out.
    assert source.handed_out <= SIZE_LIMITS[InputKind.CERTIFICATE] + 2 * 1024 * 1024


def test_read_bounded_from_dev_zero_and_missing_paths(tmp_path: Path) -> None:
    if Path("/dev/zero").exists():
        with pytest.raises(InputTooLargeError, match="/dev/zero"):
            read_bounded("/dev/zero", InputKind.CERTIFICATE)
    with pytest.raises(UsageError, match="cannot read"):
        read_bounded(tmp_path / "missing.der", InputKind.CERTIFICATE)
    with pytest.raises(UsageError, match="cannot read"):
        read_bounded(tmp_path, InputKind.CERTIFICATE)
    small = tmp_path / "small.der"
    small.write_bytes(b"abc")
    assert read_bounded(small, InputKind.CERTIFICATE) == b"abc"
    assert check_input_size(b"abc", InputKind.PDF) == b"abc"


def test_pem_round_trip_blocks_in_order_with_text_between() -> None:
    data = b"explanatory text\n" + pem("CMS", b"\x01\x02") + b"more\n" + pem("PKCS7", b"\x03")
    blocks = decode_pem(data)
    assert [(block.label, block.der) for block in blocks] == [
        ("CMS", b"\x01\x02"),
        ("PKCS7", b"\x03"),
    ]
    assert pem_or_der(b"\x30\x00", ("CMS",)) == [b"\x30\x00"]


def test_a_large_pem_body_decodes_in_one_pass() -> None:
    # 4 MiB of DER in 76-character lines: the decoder joins the lines once and decodes once
    # (linear by construction; tools/bench/bench_pem.py shows the time ratio per size).
    der = bytes(range(256)) * (FOUR_MIB // 256)
    assert decode_pem(pem("CMS", der))[0].der == der


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"-----BEGIN CMS-----\nAAAA\n", "no matching END"),
        (b"-----BEGIN CMS-----\nAAAA\n-----END PKCS7-----\n", "no matching END"),
        (b"-----BEGIN CMS-----\n!!!!\n-----END CMS-----\n", "not base64"),
        (b"-----BEGIN CMS\nAAAA\n-----END CMS-----\n", "not closed"),
        (b"no pem here", "no PEM block"),
    ],
)
def test_malformed_pem_is_a_data_error(data: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message):
        decode_pem(data)


def test_pem_with_another_label_is_named() -> None:
    with pytest.raises(DataError, match="'PRIVATE KEY'"):
        load_cms(pem("PRIVATE KEY", b"\x30\x00"))


def test_load_certificate_reads_der_and_pem_alike() -> None:
    der = (FIXTURES / "sandbox_auth.der").read_bytes()
    assert load_certificate(der) == load_certificate(pem("CERTIFICATE", der))
    with pytest.raises(DataError, match="2 PEM certificates"):
        load_certificate(pem("CERTIFICATE", der) * 2)
