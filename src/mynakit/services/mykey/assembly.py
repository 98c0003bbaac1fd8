"""Putting a MyKey platform together from a database URL and the issuer's base URL: the
database (migrated), credentials, nonces in the database, the JPKI authenticator with a
refreshing CRL, the HTTP issuer link. The HTTP app, the CLI and the tests all start here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from mynakit.card.cv_certificate import CardCaKeys
from mynakit.jpki.authentication import Authenticator
from mynakit.jpki.revocation import RevocationChecker
from mynakit.jpki.trust import TrustStore
from mynakit.services.auth.store import CredentialStore, DatabaseNonceStore
from mynakit.services.issuer_link import IssuerLink
from mynakit.services.issuer_link.http import HttpIssuerLink
from mynakit.services.issuer_link.revocation import DEFAULT_REFRESH, RefreshingCrlChecker
from mynakit.services.mykey import store
from mynakit.services.mykey.core import PIN_NONCE_PURPOSE, TAP_NONCE_PURPOSE, MyKeyPlatform
from mynakit.services.store import Database, utc_now

SERVICE = "mykey"


@dataclass
class MyKeyDeployment:
    platform: MyKeyPlatform
    credentials: CredentialStore
    database: Database
    revocation: RevocationChecker

    def close(self) -> None:
        self.database.dispose()


def open_platform(
    database_url: str | None,
    *,
    issuer_url: str,
    trust_store: TrustStore,
    card_ca: CardCaKeys | None = None,
    scheme: str = "issued8",
    revocation: RevocationChecker | None = None,
    crl_refresh: dt.timedelta = DEFAULT_REFRESH,
    issuer_link: IssuerLink | None = None,
    production: bool = False,
    clock: Callable[[], dt.datetime] | None = None,
) -> MyKeyDeployment:
    """Open (and migrate) the database and wire the platform. Revocation defaults to the
    issuer's CRL, downloaded and refreshed by the platform (docs/services.md §B.5)."""
    database = Database.open(database_url, chains=[store.CHAIN])
    now = clock or utc_now
    checker: RevocationChecker = revocation or RefreshingCrlChecker(refresh=crl_refresh, clock=now)
    authenticator = Authenticator(
        trust_store,
        revocation=checker,
        nonce_store=DatabaseNonceStore(database, PIN_NONCE_PURPOSE, clock=now),
        production=production,
        clock=now,
    )
    platform = MyKeyPlatform(
        store.unit_of_work(database),
        authenticator=authenticator,
        tap_nonces=DatabaseNonceStore(database, TAP_NONCE_PURPOSE, clock=now),
        issuer_link=issuer_link or HttpIssuerLink(issuer_url),
        trust_store=trust_store,
        revocation=checker,
        card_ca=card_ca,
        scheme=scheme,
        clock=now,
    )
    credentials = CredentialStore(database, SERVICE, clock=now)
    return MyKeyDeployment(platform, credentials, database, checker)
