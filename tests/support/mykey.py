"""Helpers for MyKey platform tests: virtual cards on disk (so the issuer can renew them), the
card's side of PIN and tap calls, and a platform wired to the sandbox issuer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from mynakit.card.cv_certificate import CardCaKeys
from mynakit.card.jpki import JpkiAp
from mynakit.card.presence import PresenceProof
from mynakit.emulator.card_files import CARD_CA_TEXT_KEY_NUMBER, CARD_CA_VISUAL_KEY_NUMBER, key_id
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.ocsp_server import OcspServer
from mynakit.emulator.personas import Persona
from mynakit.emulator.state import (
    CardState,
    card_ca_public_keys,
    create_card,
    load_card_state,
    renew_card_certificate,
)
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.jpki.authentication import ChallengeResponse
from mynakit.jpki.trust import TrustStore
from mynakit.services.mykey.assembly import MyKeyDeployment, open_platform
from mynakit.services.mykey.client import MyKeyClient, card_authentication, card_tap
from mynakit.services.mykey.http import create_mykey_app
from mynakit.transport.in_process import InProcessConnection


@dataclass
class CounterCard:
    """A persistent virtual card; ``protocol`` opens it in-process unless told otherwise."""

    cards_dir: Path
    name: str
    issuer: SandboxIssuer
    # Loaded once: parsing the card's private keys is the slow part of opening it. PIN
    # counters are still saved to disk as they change.
    _state: CardState | None = None
    # True: every operation puts the card into pcscd's vpcd reader and talks PC/SC to it.
    through_pcscd: bool = False

    @property
    def state(self) -> CardState:
        if self._state is None:
            self._state = load_card_state(self.cards_dir, self.name)
        return self._state

    @property
    def persona(self) -> Persona:
        return self.state.persona

    @property
    def auth_serial(self) -> int:
        return self.state.serials["auth"]

    @contextmanager
    def protocol(self) -> Iterator[ApduProtocol]:
        card = VirtualCard(self.state.card_profile(), self.state)
        if self.through_pcscd:
            from mynakit.emulator.pcscd import card_in_virtual_reader
            from mynakit.transport.pcsc import PcscConnection

            with card_in_virtual_reader(card) as bridge:
                pcsc = PcscConnection.open(bridge.reader_name)
                try:
                    yield ApduProtocol(pcsc)
                finally:
                    pcsc.close()
            return
        connection = InProcessConnection(card)
        try:
            yield ApduProtocol(connection, extended_length=True)
        finally:
            connection.close()

    def pin(self, client: MyKeyClient) -> ChallengeResponse:
        challenge = client.challenge()
        with self.protocol() as protocol:
            return card_authentication(JpkiAp(protocol), challenge, self.persona.auth_pin)

    def tap(self, client: MyKeyClient) -> tuple[bytes, str, PresenceProof]:
        challenge = client.tap_challenge()
        with self.protocol() as protocol:
            certificate, proof = card_tap(protocol, challenge, self.persona.birth_date_code)
        return certificate, challenge.challenge_id, proof

    def enrolment(self, client: MyKeyClient) -> tuple[str, PresenceProof]:
        _, challenge_id, proof = self.tap(client)
        return challenge_id, proof

    def renew(self) -> int:
        """Renew the auth certificate at the issuer (new key on the card); the new serial."""
        renew_card_certificate(self.cards_dir, self.name, "auth", self.issuer)
        self._state = None
        return self.auth_serial


def new_card(cards_dir: Path, issuer: SandboxIssuer, name: str) -> CounterCard:
    create_card(cards_dir, name, issuer=issuer, seed=f"mykey-{name}")
    return CounterCard(cards_dir, name, issuer)


def trusted_card_ca(cards_dir: Path) -> CardCaKeys:
    keys = card_ca_public_keys(cards_dir)
    return {key_id(CARD_CA_TEXT_KEY_NUMBER): keys, key_id(CARD_CA_VISUAL_KEY_NUMBER): keys}


@dataclass
class RunningPlatform:
    """A platform on one database, reached through its HTTP app in-process."""

    deployment: MyKeyDeployment
    app: FastAPI
    holder: MyKeyClient  # no credential: holder calls
    admin: MyKeyClient

    def service_client(self, name: str, *, require_pin: bool = False) -> tuple[str, MyKeyClient]:
        added = self.admin.add_service(name, require_pin=require_pin)
        http = TestClient(self.app)
        return added["client_id"], MyKeyClient(http=http, credential=added["credential"])


ADMIN_TOKEN = "test-admin-token"


@contextmanager
def running_platform(
    database_url: str,
    issuer: SandboxIssuer,
    cards_dir: Path,
    *,
    scheme: str = "issued8",
    clock: Callable[[], dt.datetime] | None = None,
) -> Iterator[RunningPlatform]:
    """The platform with the sandbox issuer's responder (OCSP, CRL, issuer link) on loopback;
    the CRL is fetched again for every check, so a revocation is seen at once."""
    with OcspServer(issuer) as responder:
        deployment = open_platform(
            database_url,
            issuer_url=responder.url,
            trust_store=TrustStore().with_sandbox(issuer),
            card_ca=trusted_card_ca(cards_dir),
            scheme=scheme,
            crl_refresh=dt.timedelta(0),
            clock=clock,
        )
        app = create_mykey_app(deployment, admin_token=ADMIN_TOKEN)
        platform = RunningPlatform(
            deployment,
            app,
            MyKeyClient(http=TestClient(app)),
            MyKeyClient(http=TestClient(app), admin_token=ADMIN_TOKEN),
        )
        try:
            yield platform
        finally:
            deployment.close()
