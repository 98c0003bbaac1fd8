"""Synthetic card holders (personas) for virtual cards, generated deterministically from a seed.

A persona holds what a municipal office writes onto a real card: the basic-4 information in the
forms the card stores (kanji name with family and given names separated by U+3000, address with
full-width digits, docs/card.md §6.2), the My Number with a valid check digit (docs/card.md
Appendix A), the holder's PINs and password, the security code printed on the card, the expiry,
the card serial and the municipality code (docs/card.md §6.11). Every name, address and number
is invented; the same seed always gives the same persona, so a failing test can be replayed.

Keys are not part of a persona: RSA keys come from the operating system's random source when the
card is built (``mynakit.emulator.state``), so two cards from one seed share holder data only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import secrets
import string
from dataclasses import dataclass

from mynakit.errors import DataError, UsageError
from mynakit.personal import BasicInfo, EraDate, Sex, check_code_b, my_number_check_digit

# (kanji, kana, romanisation) — common family names.
_FAMILY_NAMES: tuple[tuple[str, str, str], ...] = (
    ("佐藤", "サトウ", "SATO"),
    ("鈴木", "スズキ", "SUZUKI"),
    ("高橋", "タカハシ", "TAKAHASHI"),
    ("田中", "タナカ", "TANAKA"),
    ("伊藤", "イトウ", "ITO"),
    ("渡辺", "ワタナベ", "WATANABE"),
    ("山本", "ヤマモト", "YAMAMOTO"),
    ("中村", "ナカムラ", "NAKAMURA"),
    ("小林", "コバヤシ", "KOBAYASHI"),
    ("加藤", "カトウ", "KATO"),
    ("吉田", "ヨシダ", "YOSHIDA"),
    ("山田", "ヤマダ", "YAMADA"),
)
_GIVEN_NAMES: dict[Sex, tuple[tuple[str, str, str], ...]] = {
    Sex.MALE: (
        ("太郎", "タロウ", "TARO"),
        ("健一", "ケンイチ", "KENICHI"),
        ("大輔", "ダイスケ", "DAISUKE"),
        ("翔太", "ショウタ", "SHOTA"),
        ("誠", "マコト", "MAKOTO"),
        ("浩二", "コウジ", "KOJI"),
    ),
    Sex.FEMALE: (
        ("花子", "ハナコ", "HANAKO"),
        ("陽子", "ヨウコ", "YOKO"),
        ("美咲", "ミサキ", "MISAKI"),
        ("恵", "メグミ", "MEGUMI"),
        ("由美", "ユミ", "YUMI"),
        ("さくら", "サクラ", "SAKURA"),
    ),
}
# (prefecture + city, romanisation, municipality code (5 digits, docs/card.md §6.11), town names)
_MUNICIPALITIES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("東京都千代田区", "CHIYODA-KU TOKYO", "13101", ("霞が関", "丸の内", "神田錦町")),
    ("北海道札幌市中央区", "CHUO-KU SAPPORO", "01101", ("北一条西", "大通西", "南三条東")),
    ("宮城県仙台市青葉区", "AOBA-KU SENDAI", "04101", ("一番町", "国分町", "本町")),
    ("神奈川県横浜市中区", "NAKA-KU YOKOHAMA", "14104", ("山下町", "本町", "日本大通")),
    ("愛知県名古屋市中区", "NAKA-KU NAGOYA", "23106", ("栄", "錦", "丸の内")),
    ("京都府京都市中京区", "NAKAGYO-KU KYOTO", "26104", ("河原町", "烏丸", "寺町")),
    ("大阪府大阪市北区", "KITA-KU OSAKA", "27127", ("梅田", "中之島", "天満")),
    ("広島県広島市中区", "NAKA-KU HIROSHIMA", "34101", ("大手町", "紙屋町", "基町")),
    ("福岡県福岡市中央区", "CHUO-KU FUKUOKA", "40133", ("天神", "大名", "赤坂")),
    ("沖縄県那覇市", "NAHA", "47201", ("泉崎", "久茂地", "松山")),
)

_FULL_WIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")
_PASSWORD_ALPHABET = string.ascii_uppercase + string.digits
# Birth dates and issue dates span a range that keeps every generated card valid today.
_OLDEST_BIRTH = dt.date(1935, 1, 1)
_YOUNGEST_BIRTH = dt.date(2003, 12, 31)
_FIRST_ISSUE = dt.date(2022, 1, 4)
_LAST_ISSUE = dt.date(2025, 12, 26)
_ADULT_AGE = 18  # a card issued at 18 or over lasts until the 10th birthday, else the 5th


@dataclass(frozen=True)
class Persona:
    """One synthetic holder. ``repr`` hides everything personal (docs/architecture.md §6)."""

    seed: str
    name: str  # kanji, family U+3000 given (docs/card.md §6.2)
    name_kana: str
    name_roman: str  # for the rendered card-face images
    address: str  # full-width digits, as on real cards
    address_roman: str
    birth_date: dt.date
    sex: Sex
    my_number: str
    auth_pin: str  # JPKI 0018, 4 digits
    sign_password: str  # JPKI 001B, 6-16 upper-case letters and digits
    text_pin: str  # text AP 0011, 4 digits
    card_pin: str  # common and Juki AP 001C, 4 digits
    security_code: str  # printed on the card face, 4 digits
    issue_date: dt.date
    card_expiry: dt.date
    card_serial: str  # 15 digits (docs/card.md §6.11)
    municipality_code: str  # 5 digits (docs/card.md §6.11)

    def __repr__(self) -> str:
        return f"Persona(seed={self.seed!r}, <personal data redacted>)"

    @property
    def basic_info(self) -> BasicInfo:
        return BasicInfo(self.name, self.address, self.birth_date, self.sex)

    @property
    def check_code_a(self) -> str:
        """照合番号A is the My Number itself (docs/card.md §4)."""
        return self.my_number

    @property
    def check_code_b(self) -> str:
        return check_code_b(self.birth_date, self.card_expiry.year, self.security_code)

    @property
    def birth_date_code(self) -> str:
        """The visual AP's 生年月日 key: era ``YYMMDD`` (docs/card.md §3.3)."""
        return EraDate.from_date(self.birth_date).yymmdd

    def reference_data(self, key_name: str) -> str:
        """The value a PIN key named ``key_name`` in the card profile is set to."""
        values = {
            "auth_pin": self.auth_pin,
            "sign_password": self.sign_password,
            "text_pin": self.text_pin,
            "check_code_a": self.check_code_a,
            "check_code_b": self.check_code_b,
            "birth_date_code": self.birth_date_code,
            "card_pin": self.card_pin,
            # Shown to holders as one PIN with the card PIN (docs/card.md §4).
            "juki_pin": self.card_pin,
        }
        try:
            return values[key_name]
        except KeyError:
            raise UsageError(f"a persona has no value for the card key {key_name!r}") from None

    def summary(self, *, reveal: bool = False) -> dict[str, object]:
        """What ``mynakit emulator show`` prints: no My Number and no PINs unless ``reveal``."""
        result: dict[str, object] = {
            "seed": self.seed,
            "name": self.name,
            "name_kana": self.name_kana,
            "address": self.address,
            "birth_date": self.birth_date.isoformat(),
            "sex": self.sex.value,
            "card_serial": self.card_serial,
            "municipality_code": self.municipality_code,
            "issue_date": self.issue_date.isoformat(),
            "card_expiry": self.card_expiry.isoformat(),
        }
        if reveal:
            result.update(
                my_number=self.my_number,
                auth_pin=self.auth_pin,
                sign_password=self.sign_password,
                text_pin=self.text_pin,
                card_pin=self.card_pin,
                security_code=self.security_code,
                check_code_b=self.check_code_b,
                birth_date_code=self.birth_date_code,
            )
        return result

    def to_json(self) -> dict[str, str]:
        return {
            "seed": self.seed,
            "name": self.name,
            "name_kana": self.name_kana,
            "name_roman": self.name_roman,
            "address": self.address,
            "address_roman": self.address_roman,
            "birth_date": self.birth_date.isoformat(),
            "sex": self.sex.card_code,
            "my_number": self.my_number,
            "auth_pin": self.auth_pin,
            "sign_password": self.sign_password,
            "text_pin": self.text_pin,
            "card_pin": self.card_pin,
            "security_code": self.security_code,
            "issue_date": self.issue_date.isoformat(),
            "card_expiry": self.card_expiry.isoformat(),
            "card_serial": self.card_serial,
            "municipality_code": self.municipality_code,
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Persona:
        try:
            return cls(
                seed=data["seed"],
                name=data["name"],
                name_kana=data["name_kana"],
                name_roman=data["name_roman"],
                address=data["address"],
                address_roman=data["address_roman"],
                birth_date=dt.date.fromisoformat(data["birth_date"]),
                sex=Sex.from_card_code(data["sex"]),
                my_number=data["my_number"],
                auth_pin=data["auth_pin"],
                sign_password=data["sign_password"],
                text_pin=data["text_pin"],
                card_pin=data["card_pin"],
                security_code=data["security_code"],
                issue_date=dt.date.fromisoformat(data["issue_date"]),
                card_expiry=dt.date.fromisoformat(data["card_expiry"]),
                card_serial=data["card_serial"],
                municipality_code=data["municipality_code"],
            )
        except (KeyError, ValueError) as error:
            # The type only: the message must not quote a field (it may be personal data).
            raise DataError(f"persona record is malformed: {type(error).__name__}") from None


def generate_persona(seed: int | str | None = None) -> Persona:
    """A new persona; the same ``seed`` always gives the same one. ``None`` picks a fresh seed."""
    seed_text = str(seed) if seed is not None else secrets.token_hex(8)
    # random.Random seeded with a hash, not the text, so "1" and 1 give the same persona and
    # the sequence does not depend on Python's string-seeding details. Synthetic test data:
    # reproducibility is the point, secrecy is not.
    digest = hashlib.sha256(seed_text.encode()).digest()
    rng = random.Random(int.from_bytes(digest[:16], "big"))  # noqa: S311
    sex = rng.choice((Sex.MALE, Sex.FEMALE))
    family = rng.choice(_FAMILY_NAMES)
    given = rng.choice(_GIVEN_NAMES[sex])
    prefecture_city, city_roman, municipality_code, towns = rng.choice(_MUNICIPALITIES)
    town = rng.choice(towns)
    chome, banchi, go = rng.randint(1, 9), rng.randint(1, 30), rng.randint(1, 20)
    address = f"{prefecture_city}{town}{chome}丁目{banchi}番{go}号".translate(_FULL_WIDTH_DIGITS)
    birth_date = _random_date(rng, _OLDEST_BIRTH, _YOUNGEST_BIRTH)
    issue_date = _random_date(rng, max(_FIRST_ISSUE, birth_date), _LAST_ISSUE)
    first_eleven = "".join(rng.choice(string.digits) for _ in range(11))
    return Persona(
        seed=seed_text,
        name=f"{family[0]}\u3000{given[0]}",
        name_kana=f"{family[1]}\u3000{given[1]}",
        name_roman=f"{family[2]} {given[2]}",
        address=address,
        address_roman=f"{chome}-{banchi}-{go} {city_roman}",
        birth_date=birth_date,
        sex=sex,
        my_number=first_eleven + str(my_number_check_digit(first_eleven)),
        auth_pin=_digits(rng, 4),
        sign_password=_sign_password(rng),
        text_pin=_digits(rng, 4),
        card_pin=_digits(rng, 4),
        security_code=_digits(rng, 4),
        issue_date=issue_date,
        card_expiry=card_expiry(birth_date, issue_date),
        card_serial=str(rng.randint(10**14, 10**15 - 1)),
        municipality_code=municipality_code,
    )


def card_expiry(birth_date: dt.date, issue_date: dt.date) -> dt.date:
    """The card lasts until the holder's 10th birthday after issue (5th if under 18 at issue)."""
    age_at_issue = (
        issue_date.year
        - birth_date.year
        - ((issue_date.month, issue_date.day) < (birth_date.month, birth_date.day))
    )
    birthdays = 10 if age_at_issue >= _ADULT_AGE else 5
    year = issue_date.year + birthdays
    if (issue_date.month, issue_date.day) < (birth_date.month, birth_date.day):
        year -= 1  # this year's birthday is still ahead, and counts as the first
    try:
        return birth_date.replace(year=year)
    except ValueError:  # born on 29 February, expiring in a common year
        return dt.date(year, 2, 28)


def _random_date(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randint(0, (last - first).days))


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def _sign_password(rng: random.Random) -> str:
    """6-16 upper-case letters and digits, with at least one of each (docs/card.md §4)."""
    length = rng.randint(6, 16)
    while True:
        candidate = "".join(rng.choice(_PASSWORD_ALPHABET) for _ in range(length))
        if any(c.isdigit() for c in candidate) and any(c.isalpha() for c in candidate):
            return candidate
