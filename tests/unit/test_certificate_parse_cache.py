"""parse_certificate_cached: the parse of certificate bytes kept for a relying party that sees
the same certificates again and again; signature certificates (basic-4 information) and
malformed input are never kept."""

from __future__ import annotations

import datetime as dt

import pytest

from mynakit.errors import DataError
from mynakit.jpki import certificates
from mynakit.jpki.certificates import CertificateKind, parse_certificate_cached
from support.jpki_builders import auth_certificate, der, named_key, sign_certificate

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
NOT_BEFORE, NOT_AFTER = NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=365)


@pytest.fixture(autouse=True)
def empty_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(certificates, "_PARSED", {})


def _auth(serial: int) -> bytes:
    return der(
        auth_certificate(
            named_key("cache-ca"),
            named_key("cache-holder"),
            serial=serial,
            not_before=NOT_BEFORE,
            not_after=NOT_AFTER,
        )
    )


def test_the_same_bytes_give_the_same_parsed_certificate() -> None:
    first = parse_certificate_cached(_auth(1001))
    again = parse_certificate_cached(bytes(bytearray(_auth(1001))))
    assert again is first
    assert first.kind is CertificateKind.AUTH and first.serial_number == 1001
    assert parse_certificate_cached(_auth(1002)).serial_number == 1002


def test_signature_certificates_are_parsed_but_never_kept() -> None:
    sign_der = der(
        sign_certificate(
            named_key("cache-ca"),
            named_key("cache-holder"),
            not_before=NOT_BEFORE,
            not_after=NOT_AFTER,
        )
    )
    first = parse_certificate_cached(sign_der)
    assert first.kind is CertificateKind.SIGN
    assert parse_certificate_cached(sign_der) is not first
    assert sign_der not in certificates._PARSED


def test_malformed_bytes_raise_every_time() -> None:
    broken = _auth(1003)[:-1]
    for _ in range(2):
        with pytest.raises(DataError):
            parse_certificate_cached(broken)
    assert not certificates._PARSED


def test_the_cache_is_bounded_and_drops_the_least_recently_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(certificates, "PARSE_CACHE_ENTRIES", 2)
    oldest, kept, newest = _auth(2001), _auth(2002), _auth(2003)
    parse_certificate_cached(oldest)
    parse_certificate_cached(kept)
    parse_certificate_cached(oldest)  # used again: now the newest
    parse_certificate_cached(newest)
    assert list(certificates._PARSED) == [oldest, newest]
