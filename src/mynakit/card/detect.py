"""What card is in the reader: My Number card, smartphone JPKI token, Juki card, or unknown.

Identification is by SELECT of the JPKI AP and the token file's label (docs/card.md §6.10,
docs/readers.md: identify the card, not the ATR); the ATR only names the card in diagnostics.
"""

from __future__ import annotations

import enum

from mynakit.card.base import ApplicationSession
from mynakit.card.errors import FileNotFoundOnCardError
from mynakit.errors import DataError
from mynakit.iso7816.status import ApduError
from mynakit.profiles import load_profile
from mynakit.value_object import ValueObject

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from typing import Final

    from mynakit.iso7816.protocol import ApduProtocol


class CardKind(enum.Enum):
    MY_NUMBER_CARD = "my_number_card"
    # "token" here is the JPKI token kind, not a secret (ruff S105 would say otherwise).
    SMARTPHONE_TOKEN_ANDROID = "smartphone_token_android"  # noqa: S105
    SMARTPHONE_TOKEN_IPHONE = "smartphone_token_iphone"  # noqa: S105
    JUKI_CARD = "juki_card"
    UNKNOWN = "unknown"

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    CardKind.MY_NUMBER_CARD: "My Number card (個人番号カード)",
    CardKind.SMARTPHONE_TOKEN_ANDROID: "smartphone JPKI token, Android (スマホ用電子証明書)",
    CardKind.SMARTPHONE_TOKEN_IPHONE: "smartphone JPKI token, iPhone (スマホ用電子証明書)",
    CardKind.JUKI_CARD: "Juki card (住基カード)",
    CardKind.UNKNOWN: "not a JPKI card",
}

# docs/card.md §6.10: labels are space-padded ASCII in the first 32 bytes of EF 0006.
_LABELS = {
    "JPKIAPICCTOKEN2": CardKind.MY_NUMBER_CARD,
    "JPKIAPGPSETOKEN": CardKind.SMARTPHONE_TOKEN_ANDROID,
    "JPKIAPIOSTOKEN": CardKind.SMARTPHONE_TOKEN_IPHONE,
    "JPKIAPICCTOKEN": CardKind.JUKI_CARD,
}


class CardIdentity(ValueObject):
    __slots__ = ("atr", "atr_known", "kind", "token_label")

    def __init__(
        self,
        kind: CardKind,
        token_label: str | None,
        atr: bytes,
        atr_known: bool,  # the ATR is one of the real cards' ATRs in the profile
    ) -> None:
        self.kind: Final = kind
        self.token_label: Final = token_label
        self.atr: Final = atr
        self.atr_known: Final = atr_known

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "description": self.kind.description,
            "token_label": self.token_label,
            "atr": self.atr.hex().upper(),
            "atr_known": self.atr_known,
        }


class _TokenReader(ApplicationSession):
    application_name = "jpki"


def token_kind(label: str) -> CardKind:
    # Real cards pad with spaces; some emulators with NULs (docs/card.md §11.8): trim both.
    return _LABELS.get(label.strip(" \x00"), CardKind.UNKNOWN)


def parse_token_label(data: bytes) -> tuple[CardKind, str]:
    """Kind and trimmed label from the token file EF 0006: its first 32 bytes
    (docs/card.md §6.10)."""
    if len(data) < 32:
        raise DataError(f"the JPKI token file holds {len(data)} bytes, not 32 or more")
    try:
        label = data[:32].decode("ascii").strip(" \x00")
    except UnicodeDecodeError as error:
        raise DataError("the JPKI token label is not ASCII") from error
    return token_kind(label), label


def identify(protocol: ApduProtocol, atr: bytes) -> CardIdentity:
    """Identify the card in two APDUs: SELECT JPKI AP, READ token (by SFI)."""
    profile = load_profile()
    atr_known = atr in profile.known_atrs or atr == profile.atr
    try:
        token = _TokenReader(protocol, profile).read_file("token")
    except (FileNotFoundOnCardError, ApduError):
        return CardIdentity(CardKind.UNKNOWN, None, atr, atr_known)
    kind, label = parse_token_label(token)
    return CardIdentity(kind, label, atr, atr_known)
