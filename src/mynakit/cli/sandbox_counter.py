"""A clinic counter on one laptop: sandbox issuer, eligibility service, holders with virtual cards.

``mynakit demo``, ``mynakit terminal --sandbox`` and the terminal's tests build the same counter
from here: the sandbox issuer (playing J-LIS, OCSP on loopback), the eligibility service, insured
records for each generated holder, the holder's first registration of the card for insurance use
(初回登録, docs/services.md §A.1), and the receipt computer's folders (docs/services.md §A.4).
It sits in the CLI layer because it joins the emulator to the services, which never import it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from mynakit.emulator.card_os import VirtualCard
    from mynakit.emulator.issuer import SandboxIssuer
    from mynakit.emulator.ocsp_server import OcspServer
    from mynakit.emulator.personas import Persona
    from mynakit.services.eligibility.core import EligibilityClient, EligibilityService
    from mynakit.services.eligibility.models import InsuredRecord
    from mynakit.services.store import Database

#: The sandbox clinic's 10-digit medical institution code (docs/services.md §A.4).
SANDBOX_INSTITUTION_CODE = "1310000017"
SANDBOX_INSURER_NUMBER = "06139991"
SANDBOX_INSURER_NAME = "サンドボックス健康保険組合"

Qualification = Literal["valid", "expired", "renewed_insurer", "none", "several"]


@dataclass
class Holder:
    """A generated holder with a virtual card, known to the counter's service."""

    persona: Persona
    card: VirtualCard
    person_key: str
    records: list[InsuredRecord] = field(default_factory=list)

    @property
    def auth_serial(self) -> int:
        return self.card.state.serials["auth"]


class SandboxCounter:
    """The counter's world. Use as a context manager: it runs the OCSP responder."""

    def __init__(self, home: Path, *, institution_code: str = SANDBOX_INSTITUTION_CODE) -> None:
        from mynakit.emulator.issuer import SandboxIssuer

        self.home = home
        self.institution_code = institution_code
        self.issuer: SandboxIssuer = SandboxIssuer.open_or_create(home / "issuer")
        self.folders = home / "oqs"
        self._stack = contextlib.ExitStack()
        self._core: EligibilityService | None = None
        self._client: EligibilityClient | None = None
        self._server: BackgroundServer | None = None
        self._library: Any = None
        self._card_ca = _SandboxCardCa()
        self.responder: OcspServer | None = None
        self.database: Database
        self.credential: str | None = None  # the institution's, issued at the first start
        self._holders = 0

    def __enter__(self) -> SandboxCounter:
        from mynakit.emulator.ocsp_server import OcspServer

        self.responder = self._stack.enter_context(OcspServer(self.issuer))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    @property
    def core(self) -> EligibilityService:
        """The service's core in this process (insurers load records through it)."""
        if self._core is None:
            self._core = self._build_core()
        return self._core

    @property
    def service(self) -> EligibilityClient:
        """What the terminal talks to: the HTTP API on loopback through the HTTP client, as a
        counter reaches a real service; started on first use."""
        if self._client is None:
            self.start_service()
        assert self._client is not None
        return self._client

    @property
    def database_url(self) -> str:
        from mynakit.services.store import sqlite_url

        return sqlite_url(self.home / "eligibility.sqlite3")

    def _build_core(self) -> EligibilityService:
        """The eligibility service on SQLite (the embedded default), revocation by OCSP and the
        renewal link from the issuer over HTTP, as a deployment wires it."""
        from mynakit.jpki.trust import TrustStore
        from mynakit.services.eligibility.assembly import build_service
        from mynakit.services.issuer_link.http import HttpIssuerLink
        from mynakit.services.store import Database

        if self.responder is None:
            raise RuntimeError("use the sandbox counter as a context manager")
        self.database = Database.open(self.database_url, chains=["eligibility"])
        self._stack.callback(self.database.dispose)
        link = HttpIssuerLink(self.responder.url)
        self._stack.callback(link.close)
        return build_service(
            self.database,
            TrustStore.jlis().with_sandbox(self.issuer.directory),
            revocation="ocsp",
            serial_link=link,
            # Face or visual confirmation trusts the card-CA keys of the sandbox's cards; the
            # mapping grows as holders are made (docs/card.md §7.13).
            card_ca=self._card_ca,
        )

    def start_service(self) -> None:
        """Serve the HTTP API on 127.0.0.1 (the same port again after a stop)."""
        from mynakit.services.auth.store import CredentialStore
        from mynakit.services.eligibility.client import HttpEligibilityClient
        from mynakit.services.eligibility.http import INSTITUTION_SERVICE, create_eligibility_app

        core = self.core
        if self._server is None:
            self._server = BackgroundServer(create_eligibility_app(core, self.database))
            self._stack.callback(self.stop_service)
        self._server.start()
        if self._client is None:
            issued = CredentialStore(self.database, INSTITUTION_SERVICE).issue(
                self.institution_code
            )
            self.credential = issued.credential
            self._client = HttpEligibilityClient(self._server.url, issued.credential)
            self._stack.callback(self._client.close)

    @property
    def service_url(self) -> str:
        self.service  # noqa: B018 - started on first use
        assert self._server is not None
        return self._server.url

    def stop_service(self) -> None:
        """Stop the HTTP API (the counter then finds the service unreachable)."""
        if self._server is not None:
            self._server.stop()

    # -- the library counter (MyKey platform) ----------------------------------------------------

    def library(self) -> Any:
        """A MyKey platform on SQLite served on loopback, with a library registered as a
        service; returns the library's client (``MyKeyClient``) (docs/services.md §B.1, §B.3)."""
        if self._library is not None:
            return self._library
        from mynakit.jpki.revocation import ocsp_checker
        from mynakit.jpki.trust import TrustStore
        from mynakit.services.mykey.assembly import open_platform
        from mynakit.services.mykey.client import MyKeyClient
        from mynakit.services.mykey.http import add_service_with_credential, create_mykey_app
        from mynakit.services.store import sqlite_url

        if self.responder is None:
            raise RuntimeError("use the sandbox counter as a context manager")
        deployment = open_platform(
            sqlite_url(self.home / "mykey.sqlite3"),
            issuer_url=self.responder.url,
            trust_store=TrustStore.jlis().with_sandbox(self.issuer.directory),
            # OCSP on every resolution: the demo revokes and comes straight back.
            revocation=ocsp_checker(),
        )
        self._stack.callback(deployment.close)
        server = BackgroundServer(create_mykey_app(deployment))
        server.start()
        self._stack.callback(server.stop)
        service = add_service_with_credential(
            deployment, "sandbox city library", require_pin=True, lifetime_days=None
        )
        self._library = MyKeyClient(server.url, credential=service["credential"])
        self._stack.callback(self._library.close)
        return self._library

    def join_library(self, holder: Holder, library_user_number: str) -> None:
        """The holder registers a MyKey ID with the card and PIN, and the library links its
        own user number to it (the holder's PIN, as at the library's desk)."""
        from mynakit.card.jpki import JpkiAp
        from mynakit.iso7816.protocol import ApduProtocol
        from mynakit.jpki.authentication import card_respond
        from mynakit.transport.in_process import InProcessConnection

        library = self.library()
        for step in ("register", "link"):
            with InProcessConnection(holder.card) as connection:
                session = JpkiAp.open(ApduProtocol(connection, extended_length=True))
                response = card_respond(session, library.challenge(), holder.persona.auth_pin)
            if step == "register":
                library.register(response)
            else:
                library.link(response, library_user_number)
        holder.card.reset()

    # -- holders ---------------------------------------------------------------------------------

    def new_holder(
        self,
        seed: str,
        *,
        qualification: Qualification = "valid",
        register: bool = True,
        today: dt.date | None = None,
    ) -> Holder:
        """A holder with a fresh virtual card, insured records of the given kind, and (unless
        ``register=False``) the card registered for insurance use with the holder's PIN."""
        from mynakit.emulator.card_files import (
            CARD_CA_TEXT_KEY_NUMBER,
            CARD_CA_VISUAL_KEY_NUMBER,
            key_id,
        )
        from mynakit.emulator.personas import generate_persona
        from mynakit.emulator.state import new_virtual_card

        persona = generate_persona(seed)
        card = new_virtual_card(self.issuer, persona=persona)
        card_ca = card.state.card_ca_public_key()
        if card_ca is not None:
            for number in (CARD_CA_VISUAL_KEY_NUMBER, CARD_CA_TEXT_KEY_NUMBER):
                self._card_ca.setdefault(key_id(number), []).append(card_ca)
        self._holders += 1
        holder = Holder(persona, card, person_key=f"sandbox-person-{seed}"[:64])
        holder.records = _records_for(holder, qualification, today or dt.date.today())
        if holder.records:
            self._load(holder.records)
        if register and holder.records:
            self.register(holder)
        return holder

    def _load(self, records: list[InsuredRecord]) -> None:
        from mynakit.services.eligibility.store import DuplicateRecordError

        # The same holder again in a kept home: the records are there already.
        with contextlib.suppress(DuplicateRecordError):
            self.core.load_records(records)

    def register(self, holder: Holder) -> None:
        """初回登録 at the reader: the holder's PIN, the card signs, the data on the card; the
        card's visual AP key is enrolled too, for a later visual check (docs/card.md §7.13)."""
        from mynakit.card.jpki import JpkiAp
        from mynakit.card.presence import prove_presence
        from mynakit.card.visual import VisualAp
        from mynakit.iso7816.protocol import ApduProtocol
        from mynakit.jpki.authentication import card_respond
        from mynakit.services.eligibility.models import InsuranceCardQuery, RegistrationRequest
        from mynakit.transport.in_process import InProcessConnection

        record = holder.records[0]
        with InProcessConnection(holder.card) as connection:
            protocol = ApduProtocol(connection, extended_length=True)
            presence = self.service.begin_presence()
            proof = prove_presence(
                VisualAp(protocol), presence.nonce, holder.persona.birth_date_code
            )
            session = JpkiAp.open(protocol)
            challenge = self.service.begin_authentication()
            response = card_respond(session, challenge, holder.persona.auth_pin)
        self.service.register(
            RegistrationRequest(
                authentication=response,
                query=InsuranceCardQuery(
                    insurer_number=record.insurer_number,
                    card_symbol=record.card_symbol,
                    card_number=record.card_number,
                    branch_number=record.branch_number,
                    birth_date=record.birth_date,
                ),
                presence=(presence.challenge_id, proof),
            )
        )
        holder.card.reset()

    def renew_card(self, holder: Holder) -> int:
        """The municipal office renews the auth certificate: new key, new serial, old revoked
        (superseded), serial link kept. Returns the old serial."""
        from cryptography.hazmat.primitives import serialization

        from mynakit.emulator.state import CardKey

        state = holder.card.state
        jpki = holder.card.profile.application("jpki")
        key = jpki.key("auth_key")
        file = jpki.file("auth_certificate")
        old_serial = state.serials["auth"]
        new_key = CardKey.generate()
        certificate = self.issuer.renew(old_serial, new_key.public_key())
        state.card_keys[("jpki", key.key_id)] = new_key
        state.files[("jpki", file.file_id)] = certificate.public_bytes(serialization.Encoding.DER)
        state.serials["auth"] = certificate.serial_number
        return old_serial

    def revoke_card(self, holder: Holder) -> None:
        from cryptography import x509

        self.issuer.revoke(holder.auth_serial, x509.ReasonFlags.key_compromise)

    def block_pin(self, holder: Holder) -> None:
        holder.card.state.block("jpki", "auth_pin", holder.card.profile)


def _records_for(
    holder: Holder, qualification: Qualification, today: dt.date
) -> list[InsuredRecord]:
    from mynakit.services.eligibility.codes import (
        PersonalFamilyClassification,
        ReasonOfLoss,
        Sex,
    )
    from mynakit.services.eligibility.models import InsuredRecord

    if qualification == "none":
        return []
    persona = holder.persona
    number = str(int(hashlib.sha256(persona.seed.encode()).hexdigest(), 16) % 10**8).rjust(8, "0")
    base = InsuredRecord(
        person_key=holder.person_key,
        insurer_number=SANDBOX_INSURER_NUMBER,
        insurer_name=SANDBOX_INSURER_NAME,
        card_symbol="サンド",
        card_number=number,
        branch_number="01",
        personal_family=PersonalFamilyClassification.INSURED,
        name=persona.name,
        name_kana=persona.name_kana,
        birth_date=persona.birth_date,
        sex1={"MALE": Sex.MALE, "FEMALE": Sex.FEMALE}.get(persona.sex.name, Sex.NOT_SET),
        qualification_date=today - dt.timedelta(days=700),
        partial_contribution_ratio="030",
    )
    lost = replace(
        base,
        disqualification_date=today - dt.timedelta(days=30),
        reason_of_loss=ReasonOfLoss.OTHER_INSURANCE,
    )
    if qualification == "valid":
        return [base.normalized()]
    if qualification == "expired":
        return [lost.normalized()]
    newer = replace(
        base,
        insurer_number="01130012",
        insurer_name="全国健康保険協会 東京支部",
        card_symbol="1234",
        qualification_date=today - dt.timedelta(days=29),
    )
    if qualification == "renewed_insurer":
        return [lost.normalized(), newer.normalized()]
    return [base.normalized(), newer.normalized()]  # several


class _SandboxCardCa(dict[bytes, list[Any]]):
    """The card-CA keys of the sandbox's cards, by key id (every sandbox card certifies its
    card-face AP keys under the same ids). The service is built before the first card is
    made and trusts the keys of cards made later, so this trust list counts as configured
    even while it is empty."""

    def __bool__(self) -> bool:
        return True


class BackgroundServer:
    """An ASGI app served by uvicorn on 127.0.0.1 from a background thread; stoppable and
    restartable on the same port (a counter's service going down and coming back)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = _free_loopback_port()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        import uvicorn

        if self._thread is not None:
            return
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="mynakit-service", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start on {self.url}")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._server.should_exit = True
            thread.join(timeout)


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
