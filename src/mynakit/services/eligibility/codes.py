"""Code tables of the online eligibility check (オンライン資格確認), as public element values.

Every value here is the string the response carries (docs/services.md §A.4); the enums give
them names. Where the public material names no value (the error codes of 別紙6-1 are not
public), the sandbox's own codes are marked as such.
"""

from __future__ import annotations

import enum


class ReferenceClassification(enum.StrEnum):
    """ReferenceClassification: how the person was identified (docs/services.md §A.4)."""

    MY_NUMBER_CARD = "1"
    INSURANCE_CARD_DATA = "2"


class SegmentOfResult(enum.StrEnum):
    """SegmentOfResult: 1 normal, 2 processing, 9 abnormal end (docs/services.md §A.4)."""

    NORMAL = "1"
    PROCESSING = "2"
    ABNORMAL_END = "9"


class ProcessingResultStatus(enum.StrEnum):
    """ProcessingResultStatus: 1 normal, 2 error (docs/services.md §A.4)."""

    NORMAL = "1"
    ERROR = "2"


class QualificationValidity(enum.StrEnum):
    """QualificationValidity, code table OQSCD006 (docs/services.md §A.4)."""

    VALID = "1"  # 有効
    INVALID = "2"  # 無効
    INVALID_NEWER_EXISTS = "3"  # 無効（新しい資格あり）
    NO_QUALIFICATION = "4"  # 該当資格なし
    SEVERAL = "5"  # 複数該当


class CharacterCodeIdentifier(enum.StrEnum):
    """CharacterCodeIdentifier: the encoding of the XML file (docs/services.md §A.4)."""

    UTF_8 = "0"
    SHIFT_JIS = "1"


class PrescriptionIssueSelect(enum.StrEnum):
    """PrescriptionIssueSelect: 1 electronic, 2 paper prescription (docs/services.md §A.4)."""

    ELECTRONIC = "1"
    PAPER = "2"


class InsuredCardClassification(enum.StrEnum):
    """InsuredCardClassification, code table OQSCD010 (docs/services.md §A.4)."""

    GENERAL = "01"  # 一般
    RETIRED = "02"  # 退職
    SHORT_TERM_GENERAL = "03"  # 短期(一般)
    SHORT_TERM_RETIRED = "04"  # 短期(退職)
    QUALIFICATION_CERTIFICATE = "05"  # 資格証明書
    SPECIAL_RETIRED = "06"  # 特例退職
    SELF_DEFENSE_FORCES = "07"  # 自衛官診療証


class PersonalFamilyClassification(enum.StrEnum):
    """PersonalFamilyClassification: 1 本人 (the insured), 2 家族 (a dependant)."""

    INSURED = "1"
    FAMILY = "2"


class Sex(enum.StrEnum):
    """Sex1 / Sex2: 1 男, 2 女, 3 未設定 (docs/services.md §A.4)."""

    MALE = "1"
    FEMALE = "2"
    NOT_SET = "3"


class ReasonOfLoss(enum.StrEnum):
    """ReasonOfLoss: why a qualification was lost (docs/services.md §A.4)."""

    DEATH = "01"  # 死亡
    PUBLIC_ASSISTANCE = "02"  # 生活保護受給開始
    OTHER_INSURANCE = "03"  # 医療保険等の資格取得
    OTHER = "99"  # その他


class PreschoolClassification(enum.StrEnum):
    """PreschoolClassification: 1 = not yet at school (未就学)."""

    PRESCHOOL = "1"


class LimitCertificateClassification(enum.StrEnum):
    """LimitApplicationCertificateClassification (限度額適用認定証, docs/services.md §A.4)."""

    LIMIT = "01"  # 限度額適用
    LIMIT_AND_STANDARD_REDUCTION = "02"  # 限度額適用・標準負担額減額
    STANDARD_REDUCTION = "03"  # 標準負担額減額


class LimitClassificationFlag(enum.StrEnum):
    """LimitApplicationCertificateClassificationFlag, code table OQSCD012: A01-A06 for people
    under 70, B01-B10 for 70 and over (docs/services.md §A.4)."""

    A01 = "A01"  # ア
    A02 = "A02"  # イ
    A03 = "A03"  # ウ
    A04 = "A04"  # エ
    A05 = "A05"  # オ
    A06 = "A06"  # オ（境）
    B01 = "B01"  # 現役並みⅢ
    B02 = "B02"  # 現役並みⅡ
    B03 = "B03"  # 現役並みⅠ
    B04 = "B04"  # 一般
    B05 = "B05"  # 低所得Ⅱ
    B06 = "B06"  # 低所得Ⅰ
    B07 = "B07"  # 低所得Ⅰ（老福）
    B08 = "B08"  # 低所得Ⅰ（境）
    B09 = "B09"  # 一般Ⅱ
    B10 = "B10"  # 一般Ⅰ


class SpecificDiseaseCategory(enum.StrEnum):
    """Disease category of a 特定疾病療養受療証, code table OQSCD013."""

    DIALYSIS = "1"  # 人工透析
    HEMOPHILIA = "2"  # 血友病
    HIV_BLOOD_PRODUCTS = "3"  # HIV (血液製剤)


class ConsentFlag(enum.StrEnum):
    """…ConsFlg of the response: 0 not consented, 1 consented; the specific-disease flag also
    has 2 for a consent that expired (docs/services.md §A.4)."""

    NOT_GIVEN = "0"
    GIVEN = "1"
    EXPIRED = "2"


class ConsentScope(enum.StrEnum):
    """What a holder consents to at the counter (docs/services.md §A.2 item 5,
    docs/services.md §A.4).

    The value is the prefix of the response elements that carry the consent: ``<prefix>ConsFlg``,
    ``<prefix>ConsTime`` and, for viewing consents, ``<prefix>AvailableTime``.
    """

    LIMIT_CERTIFICATE = "LimitApplicationCertificateRelated"  # 限度額情報 (and 特定疾病)
    MEDICATION = "PharmacistsInfo"  # 薬剤情報
    SPECIFIC_HEALTH_CHECKUPS = "SpecificHealthCheckupsInfo"  # 特定健診情報
    CLINICAL = "DiagnosisInfo"  # 診療情報
    OPERATION = "OperationInfo"  # 手術情報

    @property
    def is_viewing_consent(self) -> bool:
        """Viewing consents carry an AvailableTime in the response; the limit-certificate one
        carries only ConsFlg and ConsTime (docs/services.md §A.4)."""
        return self is not ConsentScope.LIMIT_CERTIFICATE


class IdentityConfirmationMethod(enum.StrEnum):
    """How the holder was identified at the counter (docs/services.md §A.2 item 2). PIN is the
    default rule; face recognition and a staff member's visual check use the certificate read
    without PIN (docs/services.md §A.2 item 4). Not an element of the public response."""

    PIN = "pin"
    FACE = "face"
    VISUAL = "visual"


class ResultErrorCode(enum.StrEnum):
    """ErrorCode values of an abnormal end (SegmentOfResult 9).

    The operator's table (別紙6-1 処理結果コード) is not public (docs/services.md §A.4), so these
    are the sandbox's own codes, each naming one cause a terminal must tell apart.
    """

    MALFORMED_REQUEST = "ESB0001"
    UNKNOWN_INSTITUTION = "ESB0002"
    AUTHENTICATION_REFUSED = "ESB0101"  # nonce unknown, replayed or expired; bad signature
    CERTIFICATE_REVOKED = "ESB0102"
    CERTIFICATE_EXPIRED = "ESB0103"
    CERTIFICATE_UNTRUSTED = "ESB0104"  # foreign root, wrong kind, bad key usage
    CARD_NOT_REGISTERED = "ESB0105"  # the card is not registered for insurance use
    PRESENCE_NOT_PROVEN = "ESB0106"  # face/visual mode without a valid card-presence proof
    REVOCATION_UNAVAILABLE = "ESB0107"  # the issuer's status could not be obtained
    INTERNAL_ERROR = "ESB0900"


# Human words for the error codes, Japanese first as a counter shows them.
ERROR_MESSAGES: dict[ResultErrorCode, str] = {
    ResultErrorCode.MALFORMED_REQUEST: "要求電文に誤りがあります (malformed request)",
    ResultErrorCode.UNKNOWN_INSTITUTION: (
        "医療機関等コードが登録されていません (unknown institution)"
    ),
    ResultErrorCode.AUTHENTICATION_REFUSED: "本人確認に失敗しました (authentication refused)",
    ResultErrorCode.CERTIFICATE_REVOKED: "電子証明書が失効しています (certificate revoked)",
    ResultErrorCode.CERTIFICATE_EXPIRED: "電子証明書の有効期限が切れています (certificate expired)",
    ResultErrorCode.CERTIFICATE_UNTRUSTED: "電子証明書を検証できません (certificate not trusted)",
    ResultErrorCode.CARD_NOT_REGISTERED: (
        "マイナ保険証の利用登録がされていません (card not registered for insurance use)"
    ),
    ResultErrorCode.PRESENCE_NOT_PROVEN: (
        "カードの真正性を確認できません (card presence not proven)"
    ),
    ResultErrorCode.REVOCATION_UNAVAILABLE: (
        "失効情報を確認できません (revocation status unavailable)"
    ),
    ResultErrorCode.INTERNAL_ERROR: "システムエラーが発生しました (internal error)",
}


class ProcessingResultCode(enum.StrEnum):
    """ProcessingResultCode of a normal end (the sandbox's own values; 別紙6-1 is not public)."""

    SUCCESS = "0000"
