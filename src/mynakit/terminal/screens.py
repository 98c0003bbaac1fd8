"""The counter terminal's states and the words each one shows, Japanese first, English second.

Every failure has its own state and its own words (docs/services.md §A.2 counter flow,
docs/services.md §A.8 error cases), so a patient at the reader and a receptionist behind the counter
both know what happened and what to do next. A :class:`Screen` is what the kiosk page and the
command line render: the state, its words, the buttons it offers, and the counter-safe part of the
result. It never carries a PIN, a name, a birth date, an address or the My Number.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class TerminalState(enum.Enum):
    READER_UNPLUGGED = "reader_unplugged"
    WAITING_FOR_CARD = "waiting_for_card"
    READING_CARD = "reading_card"
    CHOOSING_METHOD = "choosing_method"
    CONFIRMING_LAST_TRY = "confirming_last_try"
    ENTERING_PIN = "entering_pin"
    VISUAL_CHECK = "visual_check"
    WRONG_PIN = "wrong_pin"
    VERIFYING = "verifying"
    QUERYING = "querying"
    SHOWING_RESULT = "showing_result"
    TAKING_CONSENTS = "taking_consents"
    WAITING_FOR_REMOVAL = "waiting_for_removal"
    CARD_LEFT_BEHIND = "card_left_behind"
    # failures
    PIN_BLOCKED = "pin_blocked"
    CARD_PULLED = "card_pulled"
    UNKNOWN_CARD = "unknown_card"
    CERTIFICATE_EXPIRED = "certificate_expired"
    CERTIFICATE_REVOKED = "certificate_revoked"
    CERTIFICATE_REFUSED = "certificate_refused"
    NOT_REGISTERED = "not_registered"
    NO_QUALIFICATION = "no_qualification"
    SERVICE_UNREACHABLE = "service_unreachable"
    CARD_ERROR = "card_error"

    @property
    def is_failure(self) -> bool:
        return self in FAILURE_STATES


FAILURE_STATES = frozenset(
    {
        TerminalState.PIN_BLOCKED,
        TerminalState.CARD_PULLED,
        TerminalState.UNKNOWN_CARD,
        TerminalState.CERTIFICATE_EXPIRED,
        TerminalState.CERTIFICATE_REVOKED,
        TerminalState.CERTIFICATE_REFUSED,
        TerminalState.NOT_REGISTERED,
        TerminalState.NO_QUALIFICATION,
        TerminalState.SERVICE_UNREACHABLE,
        TerminalState.READER_UNPLUGGED,
        TerminalState.CARD_ERROR,
    }
)


@dataclass(frozen=True)
class Words:
    """A title and a sentence in Japanese and in English; ``{tries}`` is filled in."""

    title_ja: str
    message_ja: str
    title_en: str
    message_en: str


WORDS: dict[TerminalState, Words] = {
    TerminalState.READER_UNPLUGGED: Words(
        "カードリーダーが接続されていません",
        "受付の職員にお知らせください。",
        "The card reader is not connected",
        "Please tell the reception staff.",
    ),
    TerminalState.WAITING_FOR_CARD: Words(
        "マイナンバーカードを置いてください",
        "カードはご自身でカードリーダーに置いてください。",
        "Please place your My Number card",
        "Put the card on the reader yourself.",
    ),
    TerminalState.READING_CARD: Words(
        "カードを読み取っています",
        "カードを動かさないでください。",
        "Reading the card",
        "Please do not move the card.",
    ),
    TerminalState.CHOOSING_METHOD: Words(
        "本人確認の方法を選んでください",
        "暗証番号（4桁）を入力してください。職員による目視確認を選べる窓口もあります。",
        "Choose how to confirm your identity",
        "Enter your 4-digit PIN, or let the staff confirm your face.",
    ),
    TerminalState.CONFIRMING_LAST_TRY: Words(
        "暗証番号の入力は残り1回です",
        "間違えるとロックされ、市区町村の窓口での手続きが必要になります。"
        "入力を続けますか。目視確認も選べます。",
        "Only one PIN try is left",
        "A wrong PIN would lock it and you would have to visit your municipal office. "
        "Continue, or choose confirmation by staff.",
    ),
    TerminalState.ENTERING_PIN: Words(
        "暗証番号（4桁）を入力してください",
        "利用者証明用電子証明書の暗証番号です。残り{tries}回。",
        "Enter your 4-digit PIN",
        "The PIN of the user-authentication certificate. {tries} tries left.",
    ),
    TerminalState.VISUAL_CHECK: Words(
        "職員が本人確認をします",
        "カードを置いたまま、職員の確認をお待ちください。",
        "The staff will confirm your identity",
        "Leave the card on the reader and wait for the staff.",
    ),
    TerminalState.WRONG_PIN: Words(
        "暗証番号が違います",
        "もう一度入力してください。残り{tries}回。",
        "Wrong PIN",
        "Please enter it again. {tries} tries left.",
    ),
    TerminalState.VERIFYING: Words(
        "本人確認をしています",
        "カードを動かさないでください。",
        "Confirming your identity",
        "Please do not move the card.",
    ),
    TerminalState.QUERYING: Words(
        "資格を確認しています",
        "しばらくお待ちください。",
        "Checking your insurance",
        "Please wait a moment.",
    ),
    TerminalState.SHOWING_RESULT: Words(
        "資格確認が完了しました",
        "{result_ja}",
        "Insurance check complete",
        "{result_en}",
    ),
    TerminalState.TAKING_CONSENTS: Words(
        "情報提供への同意",
        "医師・薬剤師があなたの情報を見ることに同意しますか。",
        "Consent to share information",
        "Do you allow the doctor or pharmacist to see this information?",
    ),
    TerminalState.WAITING_FOR_REMOVAL: Words(
        "カードをお取りください",
        "受付が完了しました。カードをお忘れなく。",
        "Please take your card",
        "Check-in is complete. Do not forget your card.",
    ),
    TerminalState.CARD_LEFT_BEHIND: Words(
        "カードが残っています",
        "マイナンバーカードをお取りください。",
        "Your card is still in the reader",
        "Please take your My Number card.",
    ),
    TerminalState.PIN_BLOCKED: Words(
        "暗証番号がロックされています",
        "お住まいの市区町村の窓口でロックを解除してください。"
        "本日は職員による目視確認で受付できます。",
        "The PIN is locked",
        "Please have it reset at your municipal office. "
        "Today the staff can confirm your identity instead.",
    ),
    TerminalState.CARD_PULLED: Words(
        "カードが取り出されました",
        "最初からやり直してください。",
        "The card was taken out",
        "Please start again.",
    ),
    TerminalState.UNKNOWN_CARD: Words(
        "このカードは使用できません",
        "マイナンバーカードを置いてください。",
        "This card cannot be used",
        "Please place a My Number card.",
    ),
    TerminalState.CERTIFICATE_EXPIRED: Words(
        "電子証明書の有効期限が切れています",
        "市区町村の窓口で更新してください。受付の職員にお知らせください。",
        "The card's certificate has expired",
        "Please renew it at your municipal office, and tell the reception staff.",
    ),
    TerminalState.CERTIFICATE_REVOKED: Words(
        "電子証明書が失効しています",
        "このカードでは確認できません。受付の職員にお知らせください。",
        "The card's certificate has been revoked",
        "This card cannot be used for the check. Please tell the reception staff.",
    ),
    TerminalState.CERTIFICATE_REFUSED: Words(
        "電子証明書を確認できませんでした",
        "受付の職員にお知らせください。",
        "The card's certificate could not be verified",
        "Please tell the reception staff.",
    ),
    TerminalState.NOT_REGISTERED: Words(
        "保険証としての利用登録がありません",
        "資格確認書または保険証をお持ちの場合は受付にお出しください。",
        "This card is not registered for insurance use",
        "Please show your eligibility certificate or insurance card at reception.",
    ),
    TerminalState.NO_QUALIFICATION: Words(
        "該当する資格がありません",
        "受付の職員にお知らせください。",
        "No insurance qualification was found",
        "Please tell the reception staff.",
    ),
    TerminalState.SERVICE_UNREACHABLE: Words(
        "資格確認サービスに接続できません",
        "受付の職員にお知らせください。カードをお取りください。",
        "The eligibility service cannot be reached",
        "Please tell the reception staff and take your card.",
    ),
    TerminalState.CARD_ERROR: Words(
        "カードを読み取れませんでした",
        "カードを置き直してください。",
        "The card could not be read",
        "Please place the card again.",
    ),
}

#: Words for the qualification validity code of the response (docs/services.md §A.4, OQSCD006).
VALIDITY_WORDS: dict[str, tuple[str, str]] = {
    "1": ("資格は有効です。", "Your insurance is valid."),
    "2": (
        "資格が無効です。受付の職員にお知らせください。",
        "Your insurance is no longer valid. Please tell the reception staff.",
    ),
    "3": (
        "この資格は無効ですが、新しい資格があります。受付の職員にお知らせください。",
        "This insurance has ended, but a newer one exists. Please tell the reception staff.",
    ),
    "4": ("該当する資格がありません。", "No insurance qualification was found."),
    "5": (
        "複数の資格が見つかりました。受付の職員にお知らせください。",
        "Several qualifications were found. Please tell the reception staff.",
    ),
}


@dataclass(frozen=True)
class Choice:
    """A button the screen offers: ``action`` is what the kiosk sends back."""

    action: str
    label_ja: str
    label_en: str
    value: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "action": self.action,
            "label_ja": self.label_ja,
            "label_en": self.label_en,
            "value": self.value,
        }


@dataclass(frozen=True)
class Screen:
    """One moment of the terminal, as the patient and the receptionist see it."""

    state: TerminalState
    sequence: int
    title_ja: str
    message_ja: str
    title_en: str
    message_en: str
    pin_pad: bool = False
    #: The receptionist's pad (birth date from the card face, for the visual check).
    staff_pad: bool = False
    tries_left: int | None = None
    choices: tuple[Choice, ...] = ()
    #: Counter-safe result items for the receptionist (validity, insurer, copay ratio, consents).
    result: dict[str, Any] | None = None
    #: Where the result file for the receipt computer was written (its name only).
    result_file: str | None = None
    #: A line for the receptionist: what to do at the counter.
    staff_note_ja: str = ""
    staff_note_en: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "failure": self.state.is_failure,
            "sequence": self.sequence,
            "title_ja": self.title_ja,
            "message_ja": self.message_ja,
            "title_en": self.title_en,
            "message_en": self.message_en,
            "pin_pad": self.pin_pad,
            "staff_pad": self.staff_pad,
            "tries_left": self.tries_left,
            "choices": [choice.to_dict() for choice in self.choices],
            "result": self.result,
            "result_file": self.result_file,
            "staff_note_ja": self.staff_note_ja,
            "staff_note_en": self.staff_note_en,
        }
