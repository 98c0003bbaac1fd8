"""Typed records of the eligibility service: insured records, requests, results, consents.

Names of the fields follow the public response elements (docs/services.md §A.4) in snake case;
:meth:`CheckResult.to_message` gives the element names and string values a receipt computer's
file reads (``XmlMsg``/``MessageHeader``/``MessageBody``), and :meth:`CheckResult.from_message`
reads them back. No web framework, no SQL: the store and HTTP layers wrap these.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mynakit.card.presence import PresenceProof
from mynakit.errors import DataError, UsageError
from mynakit.jpki.authentication import ChallengeResponse
from mynakit.services.eligibility.codes import (
    CharacterCodeIdentifier,
    ConsentFlag,
    ConsentScope,
    IdentityConfirmationMethod,
    InsuredCardClassification,
    LimitCertificateClassification,
    LimitClassificationFlag,
    PersonalFamilyClassification,
    PreschoolClassification,
    PrescriptionIssueSelect,
    ProcessingResultStatus,
    QualificationValidity,
    ReasonOfLoss,
    ReferenceClassification,
    ResultErrorCode,
    SegmentOfResult,
    Sex,
    SpecificDiseaseCategory,
)

# The counter, the receipt computer and the response speak Japan time (docs/services.md §A.4:
# ProcessExecutionTime YYYYMMDDHHmmss, QualificationConfirmationDate yyyyMMdd carry no zone).
JAPAN_TIME = dt.timezone(dt.timedelta(hours=9), "JST")

INSURER_NUMBER_LENGTH = 8
INSTITUTION_CODE_LENGTH = 10


class InvalidRecordError(UsageError):
    """An insured record or a request field breaks the format the service accepts."""


# -- formatting of the public string values -------------------------------------------------------


def format_date(value: dt.date) -> str:
    """yyyyMMdd, as every date element of the response (docs/services.md §A.4)."""
    return value.strftime("%Y%m%d")


def parse_date(text: str, label: str = "date") -> dt.date:
    """Read a yyyyMMdd or ISO date; a clear one-line error otherwise."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{8}", text):
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidRecordError(f"{label} {text!r} is not a date (yyyyMMdd)") from None


def format_time(value: dt.datetime) -> str:
    """YYYYMMDDHHmmss in Japan time (ProcessExecutionTime, …ConsTime, …AvailableTime)."""
    return value.astimezone(JAPAN_TIME).strftime("%Y%m%d%H%M%S")


def parse_time(text: str, label: str = "time") -> dt.datetime:
    try:
        naive = dt.datetime.strptime(text.strip(), "%Y%m%d%H%M%S")
    except ValueError:
        raise InvalidRecordError(f"{label} {text!r} is not a time (YYYYMMDDHHmmss)") from None
    return naive.replace(tzinfo=JAPAN_TIME)


# Dates outside this range are input errors, not people (and would overflow date arithmetic).
EARLIEST_DATE = dt.date(1850, 1, 1)
LATEST_DATE = dt.date(2200, 12, 31)


def check_date_range(value: dt.date, label: str) -> dt.date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise InvalidRecordError(f"{label} {value.isoformat()} is out of range")
    return value


def japan_today(now: dt.datetime) -> dt.date:
    return now.astimezone(JAPAN_TIME).date()


# -- field normalisation --------------------------------------------------------------------------


def normalize_insurer_number(value: str) -> str:
    """An insurer number as the file interface expects it: 8 digits, zero-padded on the left
    (国保 numbers have 6; docs/services.md §A.4, InsurerNumber)."""
    text = value.strip()
    if not re.fullmatch(r"\d{6,8}", text):
        raise InvalidRecordError(f"insurer number {value!r} must be 6 to 8 digits")
    return text.rjust(INSURER_NUMBER_LENGTH, "0")


def normalize_branch_number(value: str) -> str:
    """枝番: two digits (docs/services.md §A.1, §A.4)."""
    text = value.strip()
    if not re.fullmatch(r"\d{2}", text):
        raise InvalidRecordError(f"branch number {value!r} must be 2 digits")
    return text


def normalize_institution_code(value: str) -> str:
    """医療機関等コード: 10 digits (docs/services.md §A.4, MedicalInstitutionCode)."""
    text = value.strip()
    if not re.fullmatch(r"\d{10}", text):
        raise InvalidRecordError(f"medical institution code {value!r} must be 10 digits")
    return text


def normalize_card_field(value: str, label: str, *, may_be_empty: bool = False) -> str:
    """記号 or 番号 as printed: compared in NFKC so full- and half-width digits match, at most
    38 characters (the public material gives no maximum; docs/services.md §A.4). Some cards
    (後期高齢者 cards, for one) print no symbol, so a symbol may be empty."""
    text = unicodedata.normalize("NFKC", value).strip()
    if (not text and not may_be_empty) or len(text) > 38:
        raise InvalidRecordError(f"{label} {value!r} must be 1 to 38 characters")
    if any(unicodedata.category(c).startswith("C") for c in text):
        raise InvalidRecordError(f"{label} {value!r} contains control characters")
    return text


# Full-width katakana, half-width katakana (U+FF61-FF9F, allowed in NameKana: docs/services.md
# §A.4), the prolonged sound mark and spaces.
_KANA = re.compile(r"[\u30A0-\u30FF\uFF61-\uFF9F\u3000 ]+")


def check_kana(value: str, label: str) -> str:
    if not _KANA.fullmatch(value):
        raise InvalidRecordError(f"{label} must be katakana (full- or half-width)")
    return value


def check_person_key(value: str) -> str:
    """The per-person key that ties one individual's records across insurers.

    The national intermediate server ties them through the My Number (docs/services.md §A.1);
    the sandbox uses an opaque key instead and refuses anything shaped like a My Number
    (12 digits), so a careless import cannot put one into the store.
    """
    text = value.strip()
    if not re.fullmatch(r"[A-Za-z0-9_-]{8,64}", text):
        raise InvalidRecordError("person key must be 8 to 64 letters, digits, '-' or '_'")
    if re.fullmatch(r"\d{12}", text):
        raise InvalidRecordError("person key looks like a My Number; use an opaque key")
    return text


# -- insured records ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ElderlyRecipientCertificate:
    """高齢受給者証 (ElderlyRecipientCertificateInfo, docs/services.md §A.4)."""

    issuance_date: dt.date
    valid_from: dt.date
    valid_until: dt.date
    contribution_ratio: str  # percent as the element carries it: "20", "30"

    def to_message(self) -> dict[str, str]:
        return {
            "ElderlyRecipientCertificateDate": format_date(self.issuance_date),
            "ElderlyRecipientValidStartDate": format_date(self.valid_from),
            "ElderlyRecipientValidEndDate": format_date(self.valid_until),
            "ElderlyRecipientContributionRatio": self.contribution_ratio,
        }

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> ElderlyRecipientCertificate:
        return cls(
            issuance_date=parse_date(data["ElderlyRecipientCertificateDate"]),
            valid_from=parse_date(data["ElderlyRecipientValidStartDate"]),
            valid_until=parse_date(data["ElderlyRecipientValidEndDate"]),
            contribution_ratio=str(data["ElderlyRecipientContributionRatio"]),
        )


@dataclass(frozen=True)
class LimitCertificate:
    """限度額適用認定証 (LimitApplicationCertificateRelatedInfo, docs/services.md §A.4)."""

    classification: LimitCertificateClassification
    classification_flag: LimitClassificationFlag
    issuance_date: dt.date
    valid_from: dt.date
    valid_until: dt.date
    long_term_hospitalization_date: dt.date | None = None  # 長期入院該当年月日

    def to_message(self) -> dict[str, str]:
        message = {
            "LimitApplicationCertificateClassification": self.classification.value,
            "LimitApplicationCertificateClassificationFlag": self.classification_flag.value,
            "LimitApplicationCertificateDate": format_date(self.issuance_date),
            "LimitApplicationCertificateValidStartDate": format_date(self.valid_from),
            "LimitApplicationCertificateValidEndDate": format_date(self.valid_until),
        }
        if self.long_term_hospitalization_date is not None:
            message["LimitApplicationCertificateLongTermDate"] = format_date(
                self.long_term_hospitalization_date
            )
        return message

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> LimitCertificate:
        long_term = data.get("LimitApplicationCertificateLongTermDate")
        return cls(
            classification=LimitCertificateClassification(
                data["LimitApplicationCertificateClassification"]
            ),
            classification_flag=LimitClassificationFlag(
                data["LimitApplicationCertificateClassificationFlag"]
            ),
            issuance_date=parse_date(data["LimitApplicationCertificateDate"]),
            valid_from=parse_date(data["LimitApplicationCertificateValidStartDate"]),
            valid_until=parse_date(data["LimitApplicationCertificateValidEndDate"]),
            long_term_hospitalization_date=parse_date(long_term) if long_term else None,
        )


@dataclass(frozen=True)
class SpecificDiseaseCertificate:
    """特定疾病療養受療証 (SpecificDiseasesCertificateList entry, docs/services.md §A.4)."""

    disease_category: SpecificDiseaseCategory
    issuance_date: dt.date
    valid_from: dt.date
    valid_until: dt.date
    self_pay_limit_yen: int  # 自己負担限度額

    def to_message(self) -> dict[str, str]:
        return {
            "SpecificDiseasesDiseaseCategory": self.disease_category.value,
            "SpecificDiseasesCertificateDate": format_date(self.issuance_date),
            "SpecificDiseasesValidStartDate": format_date(self.valid_from),
            "SpecificDiseasesValidEndDate": format_date(self.valid_until),
            "SpecificDiseasesSelfPay": str(self.self_pay_limit_yen),
        }

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> SpecificDiseaseCertificate:
        return cls(
            disease_category=SpecificDiseaseCategory(data["SpecificDiseasesDiseaseCategory"]),
            issuance_date=parse_date(data["SpecificDiseasesCertificateDate"]),
            valid_from=parse_date(data["SpecificDiseasesValidStartDate"]),
            valid_until=parse_date(data["SpecificDiseasesValidEndDate"]),
            self_pay_limit_yen=int(data["SpecificDiseasesSelfPay"]),
        )


@dataclass(frozen=True)
class InsuredRecord:
    """One qualification of one person at one insurer, as the insurer loads it.

    ``person_key`` ties one individual's qualifications across insurers (see
    :func:`check_person_key`); it never leaves the service.
    """

    person_key: str
    insurer_number: str
    insurer_name: str
    card_symbol: str
    card_number: str
    branch_number: str
    personal_family: PersonalFamilyClassification
    name: str
    name_kana: str
    birth_date: dt.date
    sex1: Sex
    qualification_date: dt.date
    card_classification: InsuredCardClassification = InsuredCardClassification.GENERAL
    insured_name: str | None = None  # 世帯主/被保険者氏名 (the insured person of a dependant)
    name_of_other: str | None = None
    name_of_other_kana: str | None = None
    sex2: Sex | None = None
    address: str | None = None
    post_number: str | None = None
    disqualification_date: dt.date | None = None
    reason_of_loss: ReasonOfLoss | None = None
    card_issuance_date: dt.date | None = None
    card_valid_from: dt.date | None = None
    card_valid_until: dt.date | None = None
    partial_contribution_ratio: str | None = None  # "010" = 1割 (後期高齢者)
    elderly_certificate: ElderlyRecipientCertificate | None = None
    limit_certificate: LimitCertificate | None = None
    specific_diseases: tuple[SpecificDiseaseCertificate, ...] = ()

    def normalized(self) -> InsuredRecord:
        """The record with normalised fields, or :class:`InvalidRecordError` naming the field."""
        if not self.name.strip():
            raise InvalidRecordError("name must not be empty")
        check_kana(self.name_kana, "name kana")
        if self.name_of_other_kana:
            check_kana(self.name_of_other_kana, "alias kana")
        if self.post_number is not None and not re.fullmatch(r"\d{3}-?\d{4}", self.post_number):
            raise InvalidRecordError(f"postcode {self.post_number!r} must be 123-4567")
        if self.disqualification_date is not None:
            if self.disqualification_date < self.qualification_date:
                raise InvalidRecordError("the loss date is before the qualification date")
        elif self.reason_of_loss is not None:
            raise InvalidRecordError("a reason of loss needs a loss date")
        if self.partial_contribution_ratio is not None and not re.fullmatch(
            r"\d{3}", self.partial_contribution_ratio
        ):
            raise InvalidRecordError("copay ratio must be a 3-digit percentage such as 010")
        check_date_range(self.birth_date, "birth date")
        check_date_range(self.qualification_date, "qualification date")
        if self.disqualification_date is not None:
            check_date_range(self.disqualification_date, "loss date")
        post = self.post_number
        if post is not None and "-" not in post:
            post = f"{post[:3]}-{post[3:]}"
        return replace(
            self,
            person_key=check_person_key(self.person_key),
            insurer_number=normalize_insurer_number(self.insurer_number),
            card_symbol=normalize_card_field(self.card_symbol, "card symbol", may_be_empty=True),
            card_number=normalize_card_field(self.card_number, "card number"),
            branch_number=normalize_branch_number(self.branch_number),
            post_number=post,
        )

    def qualified_on(self, day: dt.date) -> bool:
        """Qualified on ``day``: acquired by then and not yet lost. The loss date (資格喪失日) is
        the first day without the qualification."""
        if day < self.qualification_date:
            return False
        return self.disqualification_date is None or day < self.disqualification_date

    @property
    def card_key(self) -> tuple[str, str, str, str]:
        """What identifies the insurance card: insurer, symbol, number, branch."""
        return (self.insurer_number, self.card_symbol, self.card_number, self.branch_number)

    def to_dict(self) -> dict[str, Any]:
        """JSON-lines form of the bulk import (dates ISO, codes as their public values)."""
        return {
            "person_key": self.person_key,
            "insurer_number": self.insurer_number,
            "insurer_name": self.insurer_name,
            "card_classification": self.card_classification.value,
            "card_symbol": self.card_symbol,
            "card_number": self.card_number,
            "branch_number": self.branch_number,
            "personal_family": self.personal_family.value,
            "insured_name": self.insured_name,
            "name": self.name,
            "name_kana": self.name_kana,
            "name_of_other": self.name_of_other,
            "name_of_other_kana": self.name_of_other_kana,
            "birth_date": self.birth_date.isoformat(),
            "sex1": self.sex1.value,
            "sex2": self.sex2.value if self.sex2 else None,
            "address": self.address,
            "post_number": self.post_number,
            "qualification_date": self.qualification_date.isoformat(),
            "disqualification_date": _iso(self.disqualification_date),
            "reason_of_loss": self.reason_of_loss.value if self.reason_of_loss else None,
            "card_issuance_date": _iso(self.card_issuance_date),
            "card_valid_from": _iso(self.card_valid_from),
            "card_valid_until": _iso(self.card_valid_until),
            "partial_contribution_ratio": self.partial_contribution_ratio,
            "elderly_certificate": (
                self.elderly_certificate.to_message() if self.elderly_certificate else None
            ),
            "limit_certificate": (
                self.limit_certificate.to_message() if self.limit_certificate else None
            ),
            "specific_diseases": [item.to_message() for item in self.specific_diseases],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InsuredRecord:
        """Read the JSON-lines form; :class:`InvalidRecordError` names the bad field."""
        try:
            elderly = data.get("elderly_certificate")
            limit = data.get("limit_certificate")
            record = cls(
                person_key=str(data["person_key"]),
                insurer_number=str(data["insurer_number"]),
                insurer_name=str(data["insurer_name"]),
                card_classification=InsuredCardClassification(
                    str(data.get("card_classification") or "01")
                ),
                card_symbol=str(data["card_symbol"] or ""),  # empty CSV cells read as None
                card_number=str(data["card_number"]),
                branch_number=str(data["branch_number"]),
                personal_family=PersonalFamilyClassification(str(data["personal_family"])),
                insured_name=_optional_text(data.get("insured_name")),
                name=str(data["name"]),
                name_kana=str(data["name_kana"]),
                name_of_other=_optional_text(data.get("name_of_other")),
                name_of_other_kana=_optional_text(data.get("name_of_other_kana")),
                birth_date=parse_date(str(data["birth_date"]), "birth date"),
                sex1=Sex(str(data["sex1"])),
                sex2=Sex(str(data["sex2"])) if data.get("sex2") else None,
                address=_optional_text(data.get("address")),
                post_number=_optional_text(data.get("post_number")),
                qualification_date=parse_date(
                    str(data["qualification_date"]), "qualification date"
                ),
                disqualification_date=_optional_date(data.get("disqualification_date")),
                reason_of_loss=(
                    ReasonOfLoss(str(data["reason_of_loss"]))
                    if data.get("reason_of_loss")
                    else None
                ),
                card_issuance_date=_optional_date(data.get("card_issuance_date")),
                card_valid_from=_optional_date(data.get("card_valid_from")),
                card_valid_until=_optional_date(data.get("card_valid_until")),
                partial_contribution_ratio=_optional_text(data.get("partial_contribution_ratio")),
                elderly_certificate=(
                    ElderlyRecipientCertificate.from_message(elderly) if elderly else None
                ),
                limit_certificate=LimitCertificate.from_message(limit) if limit else None,
                specific_diseases=tuple(
                    SpecificDiseaseCertificate.from_message(item)
                    for item in data.get("specific_diseases") or ()
                ),
            )
        except KeyError as error:
            raise InvalidRecordError(f"insured record lacks the field {error.args[0]}") from None
        except (TypeError, ValueError) as error:
            if isinstance(error, InvalidRecordError):
                raise
            raise InvalidRecordError(f"insured record has a bad value: {error}") from None
        return record.normalized()


def preschool_on(birth_date: dt.date, day: dt.date) -> bool:
    """未就学 (PreschoolClassification 1): before the 1 April on which the child's school year
    starts school. A school year runs 2 April to 1 April (学校教育法 §17 counts age the day
    before the birthday), and it starts school seven Aprils after its own start."""
    cohort = birth_date.year if birth_date > dt.date(birth_date.year, 4, 1) else birth_date.year - 1
    return day < dt.date(cohort + 7, 4, 1)


# -- requests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PinAuthentication:
    """The holder entered the PIN: the card signed the service's nonce (docs/services.md §A.2)."""

    response: ChallengeResponse

    @property
    def method(self) -> IdentityConfirmationMethod:
        return IdentityConfirmationMethod.PIN


@dataclass(frozen=True)
class FaceConfirmation:
    """Face recognition or a staff member's visual check instead of the PIN (docs/services.md
    §A.2 items 2 and 4). The real readers read the certificate with keys a toolkit cannot have
    (特定機関認証), so the sandbox models it: the certificate read without PIN, proof that the
    card enrolled at registration is on the reader (its visual AP key answered the service's
    presence challenge, docs/card.md §7.13), and who confirmed the face."""

    method: IdentityConfirmationMethod
    certificate_der: bytes
    presence_challenge_id: str  # the service's presence challenge the card answered
    presence: PresenceProof = field(repr=False)  # docs/card.md §7.13
    confirmed_by: str = ""  # staff identifier at the counter, or "face-recognition:<device>"

    def __post_init__(self) -> None:
        if self.method is IdentityConfirmationMethod.PIN:
            raise InvalidRecordError("face confirmation must be 'face' or 'visual', not 'pin'")
        if not self.confirmed_by.strip() or len(self.confirmed_by) > 64:
            raise InvalidRecordError("face confirmation needs who confirmed (1 to 64 characters)")


CardIdentification = PinAuthentication | FaceConfirmation


@dataclass(frozen=True)
class CardCheckRequest:
    """A check with the My Number card (ReferenceClassification 1)."""

    institution_code: str
    identification: CardIdentification
    confirmation_date: dt.date | None = None  # default: today in Japan
    arbitrary_file_identifier: str | None = None
    consents: frozenset[ConsentScope] = frozenset()  # answered on the reader before the result
    purpose: str = "qualification-check"


@dataclass(frozen=True)
class InsuranceCardQuery:
    """QualificationConfirmSearchInfo: the insurance-card (or 資格確認書) data of the query."""

    insurer_number: str
    card_symbol: str
    card_number: str
    branch_number: str
    birth_date: dt.date
    limit_consent: bool = False  # LimitApplicationCertificateRelatedConsFlg

    def normalized(self) -> InsuranceCardQuery:
        check_date_range(self.birth_date, "birth date")
        return replace(
            self,
            insurer_number=normalize_insurer_number(self.insurer_number),
            card_symbol=normalize_card_field(self.card_symbol, "card symbol", may_be_empty=True),
            card_number=normalize_card_field(self.card_number, "card number"),
            branch_number=normalize_branch_number(self.branch_number),
        )

    def to_message(self) -> dict[str, str]:
        return {
            "InsurerNumber": self.insurer_number,
            "InsuredCardSymbol": self.card_symbol,
            "InsuredIdentificationNumber": self.card_number,
            "InsuredBranchNumber": self.branch_number,
            "Birthdate": format_date(self.birth_date),
            "LimitApplicationCertificateRelatedConsFlg": "1" if self.limit_consent else "0",
        }

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> InsuranceCardQuery:
        try:
            return cls(
                insurer_number=str(data["InsurerNumber"]),
                card_symbol=str(data["InsuredCardSymbol"]),
                card_number=str(data["InsuredIdentificationNumber"]),
                branch_number=str(data["InsuredBranchNumber"]),
                birth_date=parse_date(str(data["Birthdate"]), "Birthdate"),
                limit_consent=str(data.get("LimitApplicationCertificateRelatedConsFlg", "0"))
                == "1",
            ).normalized()
        except KeyError as error:
            raise InvalidRecordError(f"search info lacks {error.args[0]}") from None


@dataclass(frozen=True)
class InsuranceCardCheckRequest:
    """A check by insurance-card data for people without a card (ReferenceClassification 2)."""

    institution_code: str
    query: InsuranceCardQuery
    confirmation_date: dt.date | None = None
    arbitrary_file_identifier: str | None = None
    purpose: str = "qualification-check"


@dataclass(frozen=True)
class RegistrationRequest:
    """初回登録: bind the card's authentication certificate to an insured person, matched by the
    insurance data the holder confirms (never by My Number; docs/services.md §A.1)."""

    authentication: ChallengeResponse
    query: InsuranceCardQuery
    # (presence challenge id, proof): enrols the card's own key so that face or visual
    # confirmation can later tell this holder's card from any other genuine card.
    presence: tuple[str, PresenceProof] | None = None


@dataclass(frozen=True)
class Registration:
    serial: int
    registered_at: dt.datetime
    insurer_number: str
    already_registered: bool
    face_confirmation_enrolled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "face_confirmation_enrolled": self.face_confirmation_enrolled,
            "serial": self.serial,
            "serial_hex": f"{self.serial:X}",
            "registered_at": self.registered_at.isoformat(),
            "insurer_number": self.insurer_number,
            "already_registered": self.already_registered,
        }


# -- consents -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Consent:
    """A holder's consent at one institution for one scope, from ``given_at`` to ``expires_at``
    (24 hours for viewing consent, docs/services.md §A.2 item 7)."""

    institution_code: str
    scope: ConsentScope
    given_at: dt.datetime
    expires_at: dt.datetime
    method: str  # "card-reader" (the holder at the reader) or "institution-statement" (flag)

    def holds_at(self, now: dt.datetime) -> bool:
        return self.given_at <= now < self.expires_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "institution_code": self.institution_code,
            "scope": self.scope.name.lower(),
            "element": self.scope.value,
            "given_at": self.given_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "method": self.method,
        }


# -- the result -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageHeader:
    """MessageHeader of the response (docs/services.md §A.4)."""

    process_execution_time: dt.datetime
    qualification_confirmation_date: dt.date
    medical_institution_code: str
    reference_classification: ReferenceClassification
    segment_of_result: SegmentOfResult
    arbitrary_file_identifier: str | None = None
    error_code: ResultErrorCode | None = None
    error_message: str | None = None
    character_code_identifier: CharacterCodeIdentifier = CharacterCodeIdentifier.UTF_8

    def to_message(self) -> dict[str, str]:
        message = {
            "ProcessExecutionTime": format_time(self.process_execution_time),
            "QualificationConfirmationDate": format_date(self.qualification_confirmation_date),
            "MedicalInstitutionCode": self.medical_institution_code,
        }
        if self.arbitrary_file_identifier is not None:
            message["ArbitraryFileIdentifier"] = self.arbitrary_file_identifier
        message["ReferenceClassification"] = self.reference_classification.value
        message["SegmentOfResult"] = self.segment_of_result.value
        if self.error_code is not None:
            message["ErrorCode"] = self.error_code.value
        if self.error_message is not None:
            message["ErrorMessage"] = self.error_message
        message["CharacterCodeIdentifier"] = self.character_code_identifier.value
        return message

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> MessageHeader:
        error_code = data.get("ErrorCode")
        return cls(
            process_execution_time=parse_time(str(data["ProcessExecutionTime"])),
            qualification_confirmation_date=parse_date(str(data["QualificationConfirmationDate"])),
            medical_institution_code=str(data["MedicalInstitutionCode"]),
            arbitrary_file_identifier=_optional_text(data.get("ArbitraryFileIdentifier")),
            reference_classification=ReferenceClassification(str(data["ReferenceClassification"])),
            segment_of_result=SegmentOfResult(str(data["SegmentOfResult"])),
            error_code=ResultErrorCode(str(error_code)) if error_code else None,
            error_message=_optional_text(data.get("ErrorMessage")),
            character_code_identifier=CharacterCodeIdentifier(
                str(data.get("CharacterCodeIdentifier", "0"))
            ),
        )


@dataclass(frozen=True)
class ConsentState:
    """The …ConsFlg / …ConsTime / …AvailableTime triple of one scope in a result."""

    scope: ConsentScope
    flag: ConsentFlag
    given_at: dt.datetime | None = None
    available_until: dt.datetime | None = None

    def to_message(self) -> dict[str, str]:
        prefix = self.scope.value
        message = {f"{prefix}ConsFlg": self.flag.value}
        if self.given_at is not None:
            message[f"{prefix}ConsTime"] = format_time(self.given_at)
        if self.available_until is not None and self.scope.is_viewing_consent:
            message[f"{prefix}AvailableTime"] = format_time(self.available_until)
        return message

    @classmethod
    def from_message(cls, scope: ConsentScope, data: Mapping[str, Any]) -> ConsentState:
        prefix = scope.value
        given = data.get(f"{prefix}ConsTime")
        until = data.get(f"{prefix}AvailableTime")
        return cls(
            scope=scope,
            flag=ConsentFlag(str(data.get(f"{prefix}ConsFlg", "0"))),
            given_at=parse_time(str(given)) if given else None,
            available_until=parse_time(str(until)) if until else None,
        )


_RECORD_ELEMENTS: tuple[tuple[str, str], ...] = (
    ("InsuredCardClassification", "card_classification"),
    ("InsurerNumber", "insurer_number"),
    ("InsuredCardSymbol", "card_symbol"),
    ("InsuredIdentificationNumber", "card_number"),
    ("InsuredBranchNumber", "branch_number"),
    ("PersonalFamilyClassification", "personal_family"),
    ("InsuredName", "insured_name"),
    ("Name", "name"),
    ("NameOfOther", "name_of_other"),
    ("NameKana", "name_kana"),
    ("NameOfOtherKana", "name_of_other_kana"),
    ("Sex1", "sex1"),
    ("Sex2", "sex2"),
    ("Birthdate", "birth_date"),
    ("Address", "address"),
    ("PostNumber", "post_number"),
    ("QualificationDate", "qualification_date"),
    ("DisqualificationDate", "disqualification_date"),
    ("ReasonOfLoss", "reason_of_loss"),
    ("InsuredCertificateIssuanceDate", "card_issuance_date"),
    ("InsuredCardValidDate", "card_valid_from"),
    ("InsuredCardExpirationDate", "card_valid_until"),
    ("InsuredPartialContributionRatio", "partial_contribution_ratio"),
    ("InsurerName", "insurer_name"),
)


@dataclass(frozen=True)
class ResultOfQualificationConfirmation:
    """One entry of ResultList (docs/services.md §A.4). The consent-gated items
    (``limit_certificate``, ``specific_diseases``) are present only while the consent holds."""

    record: InsuredRecord
    preschool: bool
    consents: tuple[ConsentState, ...]
    limit_certificate: LimitCertificate | None = None
    specific_diseases: tuple[SpecificDiseaseCertificate, ...] = ()
    specific_diseases_consent: ConsentFlag = ConsentFlag.NOT_GIVEN

    def consent(self, scope: ConsentScope) -> ConsentState:
        for state in self.consents:
            if state.scope is scope:
                return state
        return ConsentState(scope, ConsentFlag.NOT_GIVEN)

    def to_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {}
        for element, attribute in _RECORD_ELEMENTS:
            value = getattr(self.record, attribute)
            if value is None:
                continue
            if isinstance(value, dt.date):
                message[element] = format_date(value)
            else:
                message[element] = str(value)
        if self.preschool:
            message["PreschoolClassification"] = PreschoolClassification.PRESCHOOL.value
        if self.record.elderly_certificate is not None:
            message["ElderlyRecipientCertificateInfo"] = (
                self.record.elderly_certificate.to_message()
            )
        for state in self.consents:
            message.update(state.to_message())
        if self.limit_certificate is not None:
            message["LimitApplicationCertificateRelatedInfo"] = self.limit_certificate.to_message()
        message["SpecificDiseasesCertificateRelatedConsFlg"] = self.specific_diseases_consent.value
        if self.specific_diseases:
            message["SpecificDiseasesCertificateList"] = [
                {"SpecificDiseasesCertificateInfo": item.to_message()}
                for item in self.specific_diseases
            ]
        return message

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> ResultOfQualificationConfirmation:
        """Read an entry back. The person key is not in the message: it reads as ``"-"``."""
        values: dict[str, Any] = {}
        for element, attribute in _RECORD_ELEMENTS:
            if element in data and data[element] not in (None, ""):
                values[attribute] = data[element]
        elderly = data.get("ElderlyRecipientCertificateInfo")
        record = InsuredRecord(
            person_key="-",
            insurer_number=str(values["insurer_number"]),
            insurer_name=str(values.get("insurer_name", "")),
            card_classification=InsuredCardClassification(values.get("card_classification", "01")),
            card_symbol=str(values.get("card_symbol", "")),  # cards without a symbol
            card_number=str(values["card_number"]),
            branch_number=str(values["branch_number"]),
            personal_family=PersonalFamilyClassification(values["personal_family"]),
            insured_name=values.get("insured_name"),
            name=str(values["name"]),
            name_kana=str(values.get("name_kana", "")),
            name_of_other=values.get("name_of_other"),
            name_of_other_kana=values.get("name_of_other_kana"),
            birth_date=parse_date(str(values["birth_date"])),
            sex1=Sex(values["sex1"]),
            sex2=Sex(values["sex2"]) if "sex2" in values else None,
            address=values.get("address"),
            post_number=values.get("post_number"),
            qualification_date=parse_date(str(values["qualification_date"])),
            disqualification_date=_optional_date(values.get("disqualification_date")),
            reason_of_loss=(
                ReasonOfLoss(values["reason_of_loss"]) if "reason_of_loss" in values else None
            ),
            card_issuance_date=_optional_date(values.get("card_issuance_date")),
            card_valid_from=_optional_date(values.get("card_valid_from")),
            card_valid_until=_optional_date(values.get("card_valid_until")),
            partial_contribution_ratio=values.get("partial_contribution_ratio"),
            elderly_certificate=(
                ElderlyRecipientCertificate.from_message(elderly) if elderly else None
            ),
        )
        limit = data.get("LimitApplicationCertificateRelatedInfo")
        diseases = data.get("SpecificDiseasesCertificateList") or []
        return cls(
            record=record,
            preschool=data.get("PreschoolClassification") == PreschoolClassification.PRESCHOOL,
            consents=tuple(ConsentState.from_message(scope, data) for scope in ConsentScope),
            limit_certificate=LimitCertificate.from_message(limit) if limit else None,
            specific_diseases=tuple(
                SpecificDiseaseCertificate.from_message(item["SpecificDiseasesCertificateInfo"])
                for item in diseases
            ),
            specific_diseases_consent=ConsentFlag(
                str(data.get("SpecificDiseasesCertificateRelatedConsFlg", "0"))
            ),
        )


@dataclass(frozen=True)
class MessageBody:
    """MessageBody of the response (docs/services.md §A.4)."""

    processing_result_status: ProcessingResultStatus
    qualification_validity: QualificationValidity | None = None
    results: tuple[ResultOfQualificationConfirmation, ...] = ()
    search_info: InsuranceCardQuery | None = None  # echo of the query (classification 2)
    processing_result_code: str | None = None
    processing_result_message: str | None = None
    prescription_issue_select: PrescriptionIssueSelect | None = None

    def to_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {}
        if self.search_info is not None:
            message["QualificationConfirmSearchInfo"] = self.search_info.to_message()
        if self.prescription_issue_select is not None:
            message["PrescriptionIssueSelect"] = self.prescription_issue_select.value
        message["ProcessingResultStatus"] = self.processing_result_status.value
        if self.processing_result_code is not None:
            message["ProcessingResultCode"] = self.processing_result_code
        if self.processing_result_message is not None:
            message["ProcessingResultMessage"] = self.processing_result_message
        if self.qualification_validity is not None:
            message["QualificationValidity"] = self.qualification_validity.value
        if self.results:
            message["ResultList"] = [
                {"ResultOfQualificationConfirmation": result.to_message()}
                for result in self.results
            ]
        return message

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> MessageBody:
        search = data.get("QualificationConfirmSearchInfo")
        validity = data.get("QualificationValidity")
        prescription = data.get("PrescriptionIssueSelect")
        return cls(
            processing_result_status=ProcessingResultStatus(str(data["ProcessingResultStatus"])),
            qualification_validity=QualificationValidity(str(validity)) if validity else None,
            results=tuple(
                ResultOfQualificationConfirmation.from_message(
                    item["ResultOfQualificationConfirmation"]
                )
                for item in data.get("ResultList") or []
            ),
            search_info=InsuranceCardQuery.from_message(search) if search else None,
            processing_result_code=_optional_text(data.get("ProcessingResultCode")),
            processing_result_message=_optional_text(data.get("ProcessingResultMessage")),
            prescription_issue_select=(
                PrescriptionIssueSelect(str(prescription)) if prescription else None
            ),
        )


@dataclass(frozen=True)
class CheckResult:
    """The answer to a check, shaped like the real response, plus what the sandbox adds:
    ``check_id`` (to record consents given after the result), how the holder was identified
    and who confirmed the face, and the machine reason of a refusal."""

    header: MessageHeader
    body: MessageBody
    check_id: str | None = None
    confirmation_method: IdentityConfirmationMethod | None = None
    confirmed_by: str | None = None
    refusal_reason: str | None = None  # e.g. "revoked", "expired", "replayed_nonce"
    certificate_serial: int | None = field(default=None, repr=False)

    @property
    def accepted(self) -> bool:
        return self.header.segment_of_result is SegmentOfResult.NORMAL

    @property
    def validity(self) -> QualificationValidity | None:
        return self.body.qualification_validity

    def to_message(self) -> dict[str, Any]:
        """``{"XmlMsg": {"MessageHeader": …, "MessageBody": …}}`` with the public element
        names and string values (docs/services.md §A.4), ready for an XML writer."""
        return {
            "XmlMsg": {
                "MessageHeader": self.header.to_message(),
                "MessageBody": self.body.to_message(),
            }
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the HTTP API and ``--json``: the message plus the sandbox fields.
        The certificate serial is left out: the institution has no use for it."""
        data = self.to_message()
        data["check"] = {
            "check_id": self.check_id,
            "confirmation_method": (
                self.confirmation_method.value if self.confirmation_method else None
            ),
            "confirmed_by": self.confirmed_by,
            "refusal_reason": self.refusal_reason,
        }
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        try:
            message = data["XmlMsg"]
            extra = data.get("check") or {}
            method = extra.get("confirmation_method")
            return cls(
                header=MessageHeader.from_message(message["MessageHeader"]),
                body=MessageBody.from_message(message["MessageBody"]),
                check_id=extra.get("check_id"),
                confirmation_method=IdentityConfirmationMethod(method) if method else None,
                confirmed_by=extra.get("confirmed_by"),
                refusal_reason=extra.get("refusal_reason"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"not an eligibility result: {error}") from error


@dataclass(frozen=True)
class AccessRecordView:
    """One access to a holder's data as the holder sees it (docs/services.md §A.2; never the
    content, only who, when, why, which items and how the holder was identified)."""

    institution_code: str
    accessed_at: dt.datetime
    purpose: str
    items: tuple[str, ...]
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "institution_code": self.institution_code,
            "accessed_at": self.accessed_at.isoformat(),
            "purpose": self.purpose,
            "items": list(self.items),
            "method": self.method,
        }


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _optional_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text else None


def _optional_date(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    return parse_date(str(value))
