"""Wiring of the eligibility service on the services layer: database, card authentication with
nonces in the database (shared by every server process), revocation, the issuer link.

The HTTP app, the CLI and the benchmark all build their service here, so the three run the
same verification.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Literal

from mynakit.card.cv_certificate import CardCaKeys
from mynakit.errors import UsageError
from mynakit.jpki.authentication import Authenticator
from mynakit.jpki.revocation import RevocationChecker, crl_checker, ocsp_checker
from mynakit.jpki.trust import TrustStore
from mynakit.services.auth.presence import PresenceChallenges
from mynakit.services.auth.store import DatabaseNonceStore
from mynakit.services.eligibility.core import (
    CertificateValidator,
    EligibilityService,
    SerialLink,
)
from mynakit.services.eligibility.store import SqlEligibilityRepository
from mynakit.services.issuer_link.revocation import RefreshingCrlChecker
from mynakit.services.store import Database

# "crl-cached": the issuer's CRL kept and refreshed by the service (every check still verifies
# its signature and freshness); "ocsp": one OCSP request per check; "crl": one CRL download per
# check. docs/services.md §B.5 on CRL and OCSP in practice.
RevocationSource = Literal["crl-cached", "ocsp", "crl", "none"]
NONCE_PURPOSE = "eligibility"
PRESENCE_PURPOSE = "eligibility-presence"


def revocation_checker(source: RevocationSource) -> RevocationChecker | None:
    if source == "crl-cached":
        return RefreshingCrlChecker()
    if source == "ocsp":
        return ocsp_checker()
    if source == "crl":
        return crl_checker()
    if source == "none":
        return None
    raise UsageError(f"revocation must be crl-cached, ocsp, crl or none, not {source!r}")


def build_service(
    database: Database,
    trust_store: TrustStore,
    *,
    revocation: RevocationSource = "crl-cached",
    serial_link: SerialLink | None = None,
    card_ca: CardCaKeys | None = None,
    production: bool = False,
    clock: Callable[[], dt.datetime] | None = None,
) -> EligibilityService:
    """An :class:`EligibilityService` on ``database`` (migrated by the caller). With
    ``card_ca`` (trusted card-CA keys) face/visual confirmation is accepted."""
    if production and revocation == "none":
        raise UsageError("production checks must check revocation")
    checker = revocation_checker(revocation)
    nonce_store = (
        DatabaseNonceStore(database, NONCE_PURPOSE, clock=clock)
        if clock is not None
        else DatabaseNonceStore(database, NONCE_PURPOSE)
    )
    authenticator = Authenticator(
        trust_store,
        revocation=checker if checker is not None else "none",
        production=production,
        nonce_store=nonce_store,
        clock=clock,
    )
    return EligibilityService(
        SqlEligibilityRepository(database, nonce_purpose=NONCE_PURPOSE),
        authenticator,
        certificate_validator=CertificateValidator(trust_store, checker, production=production),
        presence=(
            PresenceChallenges(DatabaseNonceStore(database, PRESENCE_PURPOSE), card_ca)
            if card_ca
            else None
        ),
        serial_link=serial_link,
        clock=clock,
    )
