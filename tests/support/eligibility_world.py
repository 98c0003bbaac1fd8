"""A small sandbox world for the eligibility tests: a sandbox issuer, virtual cards on disk
(one per scenario), and the insured population behind them.

Every scenario of the eligibility issue has its own holder and card, so revoking or renewing
one cannot disturb another. The check date is fixed (``CHECK_DAY``); certificates are checked
at the real time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from mynakit.card.cv_certificate import CardCaKeys
from mynakit.card.jpki import JpkiAp
from mynakit.card.presence import PresenceProof, prove_presence
from mynakit.card.visual import VisualAp
from mynakit.emulator.card_files import CARD_CA_TEXT_KEY_NUMBER, CARD_CA_VISUAL_KEY_NUMBER, key_id
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.faults import Faults
from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.state import create_card, load_card, load_card_state
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.jpki.authentication import Challenge, ChallengeResponse, card_respond
from mynakit.services.eligibility.codes import (
    LimitCertificateClassification,
    LimitClassificationFlag,
    PersonalFamilyClassification,
    ReasonOfLoss,
    Sex,
    SpecificDiseaseCategory,
)
from mynakit.services.eligibility.models import (
    InsuranceCardQuery,
    InsuredRecord,
    LimitCertificate,
    SpecificDiseaseCertificate,
)
from mynakit.transport.base import Connection
from mynakit.transport.in_process import InProcessConnection

CHECK_DAY = dt.date(2026, 12, 1)
INSTITUTION = "1312345678"
OTHER_INSTITUTION = "2712345670"

SCENARIOS = ("valid", "expired", "newer", "none", "several", "revoked", "renewed", "blocked")


def _record(person: str, index: int, **changes: object) -> InsuredRecord:
    values: dict[str, object] = {
        "person_key": f"person-{person}",
        "insurer_number": "06130012",
        "insurer_name": "サンドボックス健康保険組合",
        "card_symbol": "77",
        "card_number": f"{10000 + index}",
        "branch_number": "00",
        "personal_family": PersonalFamilyClassification.INSURED,
        "name": f"資格 {person}",
        "name_kana": "ｼｶｸ ﾀﾛｳ",
        "birth_date": dt.date(1970 + index, 1 + index, 10),
        "sex1": Sex.MALE if index % 2 else Sex.FEMALE,
        "address": "東京都千代田区霞が関1-2-2",
        "post_number": "100-8916",
        "qualification_date": dt.date(2020, 4, 1),
    }
    values.update(changes)
    return InsuredRecord(**values).normalized()  # type: ignore[arg-type]


def population() -> list[InsuredRecord]:
    """The insured records behind the scenario cards (one person per scenario)."""
    limit = LimitCertificate(
        LimitCertificateClassification.LIMIT,
        LimitClassificationFlag.A03,
        dt.date(2026, 4, 1),
        dt.date(2026, 4, 1),
        dt.date(2027, 3, 31),
    )
    dialysis = SpecificDiseaseCertificate(
        SpecificDiseaseCategory.DIALYSIS,
        dt.date(2025, 1, 1),
        dt.date(2025, 1, 1),
        dt.date(2027, 12, 31),
        10000,
    )
    return [
        _record("valid", 0, limit_certificate=limit, specific_diseases=(dialysis,)),
        _record(
            "expired",
            1,
            disqualification_date=dt.date(2026, 10, 1),
            reason_of_loss=ReasonOfLoss.OTHER,
        ),
        _record(
            "newer",
            2,
            disqualification_date=dt.date(2026, 11, 1),
            reason_of_loss=ReasonOfLoss.OTHER_INSURANCE,
        ),
        _record(
            "newer",
            2,
            insurer_number="01130015",
            insurer_name="サンドボックス協会けんぽ",
            card_symbol="5",
            card_number="20002",
            qualification_date=dt.date(2026, 12, 15),
        ),
        _record("none", 3, qualification_date=dt.date(2027, 1, 1)),
        _record("several", 4),
        _record(
            "several",
            4,
            insurer_number="39130018",
            insurer_name="サンドボックス後期高齢者医療広域連合",
            card_symbol="",
            card_number="99004",
            partial_contribution_ratio="010",
        ),
        _record("revoked", 5),
        _record("renewed", 6),
        _record("blocked", 7),
    ]


def first_record(scenario: str) -> InsuredRecord:
    return next(r for r in population() if r.person_key == f"person-{scenario}")


def query_for(scenario: str, *, limit_consent: bool = False) -> InsuranceCardQuery:
    record = first_record(scenario)
    return InsuranceCardQuery(
        record.insurer_number,
        record.card_symbol,
        record.card_number,
        record.branch_number,
        record.birth_date,
        limit_consent=limit_consent,
    )


class RecordingConnection:
    """Keeps every command sent, to prove which APDUs never went to the card."""

    def __init__(self, inner: Connection) -> None:
        self.inner = inner
        self.commands: list[bytes] = []
        self.atr = inner.atr
        self.reader_name = inner.reader_name
        self.extended_length = inner.extended_length

    def transmit(self, command: bytes) -> bytes:
        self.commands.append(bytes(command))
        return self.inner.transmit(command)

    def verifies_with_data(self) -> list[bytes]:
        """VERIFY commands that carried a PIN (an empty VERIFY only asks the counter)."""
        return [apdu for apdu in self.commands if apdu[1] == 0x20 and len(apdu) > 5]


@dataclass
class EligibilityWorld:
    """The issuer and the scenario cards (on disk under ``cards``)."""

    issuer: SandboxIssuer
    cards: Path
    pins: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, directory: Path) -> EligibilityWorld:
        issuer = SandboxIssuer.create(directory / "issuer")
        world = cls(issuer=issuer, cards=directory / "cards")
        for scenario in SCENARIOS:
            blocked = (("jpki", "auth_pin"),) if scenario == "blocked" else ()
            create_card(
                world.cards,
                scenario,
                seed=f"eligibility-{scenario}",
                issuer=issuer,
                blocked=blocked,
            )
            world.pins[scenario] = load_card_state(world.cards, scenario).persona.auth_pin
        return world

    def card(self, scenario: str, *, faults: Faults | None = None) -> VirtualCard:
        return load_card(self.cards, scenario, faults=faults)

    def serial(self, scenario: str) -> int:
        return load_card_state(self.cards, scenario).serials["auth"]

    def card_ca(self) -> CardCaKeys:
        """The card-CA keys of every scenario card, trusted for presence proofs."""
        keys = []
        for scenario in SCENARIOS:
            key = load_card_state(self.cards, scenario).card_ca_public_key()
            if key is not None:
                keys.append(key)
        return {
            key_id(CARD_CA_VISUAL_KEY_NUMBER): keys,
            key_id(CARD_CA_TEXT_KEY_NUMBER): keys,
        }

    def prove_presence(
        self, scenario: str, challenge: Challenge, connection: Connection | None = None
    ) -> tuple[str, PresenceProof]:
        """The card of ``scenario`` answers a presence challenge (no PIN; docs/card.md §7.13)."""
        link = connection if connection is not None else InProcessConnection(self.card(scenario))
        visual = VisualAp(ApduProtocol(link, extended_length=link.extended_length))
        birth_date_code = load_card_state(self.cards, scenario).persona.birth_date_code
        return challenge.challenge_id, prove_presence(visual, challenge.nonce, birth_date_code)

    def certificate_without_pin(self, scenario: str, connection: Connection | None = None) -> bytes:
        link = connection if connection is not None else InProcessConnection(self.card(scenario))
        session = JpkiAp(ApduProtocol(link, extended_length=link.extended_length))
        return session.read_certificate("auth")

    def respond(
        self, scenario: str, challenge: Challenge, connection: Connection | None = None
    ) -> ChallengeResponse:
        """The card of ``scenario`` answers ``challenge`` with its PIN."""
        link = connection if connection is not None else InProcessConnection(self.card(scenario))
        session = JpkiAp(ApduProtocol(link, extended_length=link.extended_length))
        return card_respond(session, challenge, self.pins[scenario])
