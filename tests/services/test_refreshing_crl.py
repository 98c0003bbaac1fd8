"""RefreshingCrlChecker: a downloaded CRL is verified once per issuer certificate, every check
still looks the certificate up and checks freshness, a CRL from the wrong issuer is refused
on every check, and a refresh brings new revocations (docs/services.md §B.5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from mynakit.card.jpki import JpkiAp
from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.ocsp_server import OcspServer
from mynakit.jpki.revocation import RevocationCheckError, RevocationState
from mynakit.services.issuer_link.revocation import RefreshingCrlChecker
from support.mykey import CounterCard, new_card

pytestmark = pytest.mark.services


def _auth_certificate(card: CounterCard) -> x509.Certificate:
    with card.protocol() as protocol:
        return x509.load_der_x509_certificate(JpkiAp(protocol).read_certificate("auth"))


def test_checks_share_one_verified_download_until_the_refresh(tmp_path: Path) -> None:
    issuer = SandboxIssuer.create(tmp_path / "issuer")
    stranger = SandboxIssuer.create(tmp_path / "stranger")
    card = new_card(tmp_path / "cards", issuer, "crl-card")
    other = new_card(tmp_path / "cards", issuer, "crl-other")
    certificate, other_certificate = (_auth_certificate(each) for each in (card, other))
    root = next(root for root in issuer.roots if root.subject == certificate.issuer)
    foreign_root = next(root for root in stranger.roots if root.subject == certificate.issuer)
    checker = RefreshingCrlChecker()
    with OcspServer(issuer):
        for _ in range(3):
            assert checker(certificate, root).state is RevocationState.GOOD
        assert checker.downloads == 1
        # Same DN, another key: the cached CRL does not verify with it, on every check.
        for _ in range(2):
            with pytest.raises(RevocationCheckError, match="signature"):
                checker(certificate, foreign_root)
        issuer.revoke(other.auth_serial, x509.ReasonFlags.key_compromise)
        assert checker(other_certificate, root).state is RevocationState.GOOD  # not refreshed
        checker.refresh()
        status = checker(other_certificate, root)
        assert status.state is RevocationState.REVOKED
        assert status.reason is x509.ReasonFlags.key_compromise
        assert checker(certificate, root).state is RevocationState.GOOD
        assert checker.downloads == 2
