"""Revocation for high-volume verification: the issuer's CRL, fetched and kept by the platform,
refreshed on a period and at the CRL's nextUpdate (docs/services.md §B.5: a daily CRL, OCSP
for same-day status). A downloaded CRL's issuer and signature are verified once per issuer
certificate (``mynakit.jpki.revocation.verify_crl``: a pure function of the CRL and that
certificate); every check still checks the certificate's issuer, the CRL's freshness and the
certificate's entry (``crl_status``). Nothing is kept about a certificate.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from cryptography import x509

from mynakit.jpki.revocation import (
    RevocationStatus,
    crl_status,
    crl_url,
    fetch_crl,
    verify_crl,
)

DEFAULT_REFRESH = dt.timedelta(minutes=5)


class RefreshingCrlChecker:
    """A :data:`mynakit.jpki.revocation.RevocationChecker` over cached CRLs, one per URL."""

    def __init__(
        self,
        *,
        refresh: dt.timedelta = DEFAULT_REFRESH,
        clock: Callable[[], dt.datetime] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.refresh_interval = refresh
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._timeout = timeout
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[x509.CertificateRevocationList, dt.datetime]] = {}
        # (id of a cached CRL, issuer certificate DER) pairs that verify_crl accepted; dropped
        # with the CRL at each refresh.
        self._verified: set[tuple[int, bytes]] = set()
        self.downloads = 0

    def __call__(self, certificate: x509.Certificate, issuer: x509.Certificate) -> RevocationStatus:
        crl = self._crl(crl_url(certificate))
        verified = (id(crl), issuer.tbs_certificate_bytes + issuer.signature)
        if verified not in self._verified:
            verify_crl(crl, issuer)
            with self._lock:
                if any(cached is crl for cached, _ in self._cache.values()):
                    self._verified.add(verified)
        return crl_status(certificate, crl, issuer, at=self._clock())

    def refresh(self) -> None:
        """Forget every cached CRL: the next check downloads again."""
        with self._lock:
            self._cache.clear()
            self._verified.clear()

    def _crl(self, url: str) -> x509.CertificateRevocationList:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(url)
            if cached is not None:
                crl, fetched_at = cached
                next_update = crl.next_update_utc
                stale = now - fetched_at >= self.refresh_interval or (
                    next_update is not None and now >= next_update
                )
                if not stale:
                    return crl
            # Downloading under the lock: concurrent checks wait for one download instead of
            # each fetching the same CRL.
            crl = fetch_crl(url, self._timeout)
            self.downloads += 1
            if cached is not None:  # the replaced CRL's verdicts go with it
                self._verified = {pair for pair in self._verified if pair[0] != id(cached[0])}
            self._cache[url] = (crl, now)
            return crl
