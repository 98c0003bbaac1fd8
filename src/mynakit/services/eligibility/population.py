"""Insured records in and out of files, and realistic sandbox populations.

Bulk import formats (docs/services.md §A.4 items, one record per line):

* JSON lines: :meth:`InsuredRecord.to_dict` per line;
* CSV with a header row: the same keys as columns; the nested certificates are JSON in their
  cell (``elderly_certificate``, ``limit_certificate``, ``specific_diseases``).

:func:`generate_population` makes households under several insurers with the cases the
service must answer: dependants, job changes (a lost qualification and a newer one),
retirement into 国保, people turning 75 (後期高齢者 with a copay ratio), 70-74 with an elderly
recipient certificate, limit certificates (A01-A06 under 70, B01-B10 from 70), specific-disease
certificates and people qualified twice at once. The same seed gives the same population.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal

from mynakit.services.eligibility.codes import (
    InsuredCardClassification,
    LimitCertificateClassification,
    LimitClassificationFlag,
    PersonalFamilyClassification,
    ReasonOfLoss,
    Sex,
    SpecificDiseaseCategory,
)
from mynakit.services.eligibility.models import (
    ElderlyRecipientCertificate,
    InsuredRecord,
    InvalidRecordError,
    LimitCertificate,
    SpecificDiseaseCertificate,
)

RecordFormat = Literal["jsonl", "csv"]
_NESTED = ("elderly_certificate", "limit_certificate", "specific_diseases")
CSV_COLUMNS = (
    "person_key",
    "insurer_number",
    "insurer_name",
    "card_classification",
    "card_symbol",
    "card_number",
    "branch_number",
    "personal_family",
    "insured_name",
    "name",
    "name_kana",
    "name_of_other",
    "name_of_other_kana",
    "birth_date",
    "sex1",
    "sex2",
    "address",
    "post_number",
    "qualification_date",
    "disqualification_date",
    "reason_of_loss",
    "card_issuance_date",
    "card_valid_from",
    "card_valid_until",
    "partial_contribution_ratio",
    *_NESTED,
)


def format_of(name: str) -> RecordFormat:
    """The format a file name implies (``.csv``; anything else is JSON lines)."""
    return "csv" if name.lower().endswith(".csv") else "jsonl"


def read_records(stream: IO[str], record_format: RecordFormat) -> Iterator[InsuredRecord]:
    """Records from a text stream; a bad line raises :class:`InvalidRecordError` with its
    line number (the caller's load then keeps nothing: it is one transaction)."""
    if record_format == "csv":
        reader = csv.DictReader(stream)
        missing = {"person_key", "insurer_number", "name"} - set(reader.fieldnames or ())
        if missing:
            raise InvalidRecordError(f"CSV header lacks {', '.join(sorted(missing))}")
        for row in reader:
            yield _parse(reader.line_num, _from_csv_row(reader.line_num, row))
        return
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise InvalidRecordError(f"line {number}: not JSON ({error.msg})") from None
        if not isinstance(data, dict):
            raise InvalidRecordError(f"line {number}: not a JSON object")
        yield _parse(number, data)


def write_records(
    records: Iterable[InsuredRecord], stream: IO[str], record_format: RecordFormat
) -> int:
    count = 0
    if record_format == "csv":
        writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for record in records:
            row = record.to_dict()
            for key in _NESTED:
                value = row[key]
                row[key] = json.dumps(value, ensure_ascii=False) if value else ""
            writer.writerow({key: "" if value is None else value for key, value in row.items()})
            count += 1
        return count
    for record in records:
        stream.write(json.dumps(record.to_dict(), ensure_ascii=False, separators=(",", ":")))
        stream.write("\n")
        count += 1
    return count


def _from_csv_row(line: int, row: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {key: (value if value != "" else None) for key, value in row.items()}
    for key in _NESTED:
        cell = data.get(key)
        if cell:
            try:
                data[key] = json.loads(cell)
            except ValueError:
                raise InvalidRecordError(f"line {line}: {key} is not JSON") from None
    return data


def _parse(line: int, data: dict[str, Any]) -> InsuredRecord:
    try:
        return InsuredRecord.from_dict(data)
    except InvalidRecordError as error:
        raise InvalidRecordError(f"line {line}: {error}") from None


# -- the generator ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Insurer:
    number: str
    name: str
    kind: str  # "employee", "national", "late-elderly"


# Sandbox insurers (numbers shaped like real ones: 協会けんぽ 01+pref, 健保組合 06, 国保 6 digits
# padded to 8, 後期高齢者 39+pref; docs/services.md §A.4 InsurerNumber). None is a real one.
INSURERS: tuple[Insurer, ...] = (
    Insurer("01130012", "サンドボックス協会けんぽ東京支部", "employee"),
    Insurer("01270019", "サンドボックス協会けんぽ大阪支部", "employee"),
    Insurer("06130501", "さくら電機健康保険組合", "employee"),
    Insurer("06131127", "ひかり商事健康保険組合", "employee"),
    Insurer("06271034", "なにわ物産健康保険組合", "employee"),
    Insurer("31130305", "サンドボックス共済組合", "employee"),
    Insurer("00138057", "砂場区国民健康保険", "national"),
    Insurer("00270017", "試験市国民健康保険", "national"),
    Insurer("00012047", "見本町国民健康保険", "national"),
    Insurer("39131002", "東京都後期高齢者医療広域連合(砂場)", "late-elderly"),
    Insurer("39271004", "大阪府後期高齢者医療広域連合(砂場)", "late-elderly"),
)
_EMPLOYEE = [insurer for insurer in INSURERS if insurer.kind == "employee"]
_NATIONAL = [insurer for insurer in INSURERS if insurer.kind == "national"]
_LATE_ELDERLY = [insurer for insurer in INSURERS if insurer.kind == "late-elderly"]

_SURNAMES = (
    ("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"),
    ("伊藤", "イトウ"), ("渡辺", "ワタナベ"), ("山本", "ヤマモト"), ("中村", "ナカムラ"),
    ("小林", "コバヤシ"), ("加藤", "カトウ"), ("吉田", "ヨシダ"), ("山田", "ヤマダ"),
)  # fmt: skip
_GIVEN = (
    ("太郎", "タロウ", Sex.MALE), ("翔", "ショウ", Sex.MALE), ("健一", "ケンイチ", Sex.MALE),
    ("大輔", "ダイスケ", Sex.MALE), ("花子", "ハナコ", Sex.FEMALE), ("陽子", "ヨウコ", Sex.FEMALE),
    ("美咲", "ミサキ", Sex.FEMALE), ("さくら", "サクラ", Sex.FEMALE), ("光", "ヒカル", Sex.NOT_SET),
)  # fmt: skip
_PLACES = (
    ("東京都砂場区見本", "100"), ("大阪府試験市中央", "530"), ("北海道見本町", "060"),
    ("福岡県試験市博多", "812"), ("愛知県砂場市栄", "460"), ("宮城県見本市青葉", "980"),
)  # fmt: skip
_HALF_WIDTH = str.maketrans(
    "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモ"
    "ヤユヨラリルレロワヲンァィゥェォッャュョー　",
    "ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜｦﾝｧｨｩｪｫｯｬｭｮｰ ",
)
_VOICED = {"ガ": "ｶﾞ", "ギ": "ｷﾞ", "グ": "ｸﾞ", "ゲ": "ｹﾞ", "ゴ": "ｺﾞ", "ザ": "ｻﾞ", "ジ": "ｼﾞ",
           "ズ": "ｽﾞ", "ゼ": "ｾﾞ", "ゾ": "ｿﾞ", "ダ": "ﾀﾞ", "ヂ": "ﾁﾞ", "ヅ": "ﾂﾞ", "デ": "ﾃﾞ",
           "ド": "ﾄﾞ", "バ": "ﾊﾞ", "ビ": "ﾋﾞ", "ブ": "ﾌﾞ", "ベ": "ﾍﾞ", "ボ": "ﾎﾞ", "パ": "ﾊﾟ",
           "ピ": "ﾋﾟ", "プ": "ﾌﾟ", "ペ": "ﾍﾟ", "ポ": "ﾎﾟ"}  # fmt: skip


def half_width_kana(text: str) -> str:
    """Full-width katakana as half-width, as many insurers register NameKana
    (docs/services.md §A.4)."""
    return "".join(_VOICED.get(c, c) for c in text).translate(_HALF_WIDTH)


def person_key(seed: str, index: int) -> str:
    """An opaque per-person key (never derived from anything personal)."""
    digest = hashlib.sha256(f"{seed}:{index}".encode()).hexdigest()
    return f"p-{digest[:20]}"


def _age_on(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


class _Generator:
    def __init__(self, seed: str, reference_day: dt.date) -> None:
        # Reproducible sandbox data, not secrets: a seeded generator is the point.
        self.random = random.Random(seed)  # noqa: S311
        self.seed = seed
        self.day = reference_day
        self.person_index = 0
        self.card_serial = 0

    def household(self) -> list[InsuredRecord]:
        rng = self.random
        surname, surname_kana = rng.choice(_SURNAMES)
        place, post_prefix = rng.choice(_PLACES)
        address = f"{place}{rng.randint(1, 9)}-{rng.randint(1, 30)}-{rng.randint(1, 20)}"
        post = f"{post_prefix}-{rng.randint(0, 9999):04d}"
        head_age = rng.choices((rng.randint(20, 64), rng.randint(65, 74), rng.randint(75, 99)),
                               weights=(70, 15, 15))[0]  # fmt: skip
        head_birth = self.day - dt.timedelta(days=365 * head_age + rng.randint(0, 364))
        half = rng.random() < 0.3
        records: list[InsuredRecord] = []
        if head_age >= 75:
            # 後期高齢者 are each insured in their own right (no dependants in that system).
            records += self._person_records(
                surname, surname_kana, head_birth, address, post, half, rng.choice(_LATE_ELDERLY)
            )
            return records
        insurer = rng.choice(_EMPLOYEE if head_age < 65 and rng.random() < 0.75 else _NATIONAL)
        members = [(head_birth, PersonalFamilyClassification.INSURED)]
        if head_age < 65:
            if rng.random() < 0.6:  # spouse
                spouse_age = max(20, min(74, head_age + rng.randint(-5, 5)))
                members.append(
                    (self.day - dt.timedelta(days=365 * spouse_age + rng.randint(0, 364)),
                     PersonalFamilyClassification.FAMILY)
                )  # fmt: skip
            for _ in range(rng.choices((0, 1, 2, 3), weights=(40, 25, 25, 10))[0]):
                child_age = rng.randint(0, min(22, max(0, head_age - 20)))
                members.append(
                    (self.day - dt.timedelta(days=365 * child_age + rng.randint(0, 364)),
                     PersonalFamilyClassification.FAMILY)
                )  # fmt: skip
        symbol = str(rng.randint(1, 9999)) if insurer.kind == "employee" else ""
        number = str(rng.randint(1, 9_999_999))
        head_name = None
        for branch, (birth, relation) in enumerate(members):
            records += self._person_records(
                surname, surname_kana, birth, address, post, half, insurer,
                symbol=symbol, number=number, branch=f"{branch:02d}", relation=relation,
                insured_name=head_name,
            )  # fmt: skip
            if head_name is None:
                head_name = records[0].name
        return records

    def _person_records(
        self,
        surname: str,
        surname_kana: str,
        birth: dt.date,
        address: str,
        post: str,
        half: bool,
        insurer: Insurer,
        *,
        symbol: str | None = None,
        number: str | None = None,
        branch: str = "00",
        relation: PersonalFamilyClassification = PersonalFamilyClassification.INSURED,
        insured_name: str | None = None,
    ) -> list[InsuredRecord]:
        rng = self.random
        given, given_kana, sex = rng.choice(_GIVEN)
        kana = f"{surname_kana}　{given_kana}"
        self.person_index += 1
        key = person_key(self.seed, self.person_index)
        age = _age_on(birth, self.day)
        base = {
            "person_key": key,
            "personal_family": relation,
            "insured_name": insured_name,
            "name": f"{surname}　{given}",
            "name_kana": half_width_kana(kana) if half else kana,
            "birth_date": birth,
            "sex1": sex,
            "sex2": sex if rng.random() < 0.02 else None,
            "address": address,
            "post_number": post,
        }
        symbol = symbol if symbol is not None else ""
        number = number if number is not None else str(rng.randint(1, 99_999_999))
        start = max(birth, self.day - dt.timedelta(days=rng.randint(30, 365 * 15)))
        records: list[InsuredRecord] = []
        story = rng.random()
        if (
            insurer.kind != "late-elderly"
            and relation is PersonalFamilyClassification.INSURED
            and age >= 22
            and story < 0.08
        ):
            # A job change: the old qualification lost, the new one at another insurer, which
            # sometimes starts only after the reference day (code 3 on the day).
            lost_on = self.day - dt.timedelta(days=rng.randint(-20, 400))
            old = rng.choice([i for i in _EMPLOYEE if i != insurer] or _EMPLOYEE)
            records.append(
                self._record(base, old, str(rng.randint(1, 9999)), str(rng.randint(1, 9_999_999)),
                             "00", min(start, lost_on - dt.timedelta(days=400)),
                             lost=lost_on, reason=ReasonOfLoss.OTHER_INSURANCE, age=age)
            )  # fmt: skip
            start = lost_on + dt.timedelta(days=rng.choice((0, 0, 0, 30)))
        elif story < 0.11:
            # Lost without a successor (moved abroad, 生活保護): code 2.
            lost_on = max(
                start + dt.timedelta(days=1), self.day - dt.timedelta(days=rng.randint(1, 300))
            )
            records.append(
                self._record(base, insurer, symbol, number, branch, start,
                             lost=lost_on,
                             reason=rng.choice((ReasonOfLoss.PUBLIC_ASSISTANCE,
                                                ReasonOfLoss.OTHER)),
                             age=age)
            )  # fmt: skip
            return records
        records.append(self._record(base, insurer, symbol, number, branch, start, age=age))
        if story > 0.995 and insurer.kind == "employee":
            # Qualified twice at once (an insurer's late loss report): code 5 until fixed.
            # 国保 insures each person in their own right.
            own = {**base, "personal_family": PersonalFamilyClassification.INSURED,
                   "insured_name": None}  # fmt: skip
            other = rng.choice(_NATIONAL)
            records.append(
                self._record(own, other, "", str(rng.randint(1, 9_999_999)), "00",
                             self.day - dt.timedelta(days=rng.randint(1, 200)), age=age)
            )  # fmt: skip
        return records

    def _record(
        self,
        base: dict[str, Any],
        insurer: Insurer,
        symbol: str,
        number: str,
        branch: str,
        start: dt.date,
        *,
        age: int,
        lost: dt.date | None = None,
        reason: ReasonOfLoss | None = None,
    ) -> InsuredRecord:
        rng = self.random
        valid_until = _add_years(start, rng.choice((1, 2, 5)))
        elderly = None
        ratio = None
        if insurer.kind == "late-elderly":
            ratio = rng.choices(("010", "020", "030"), weights=(70, 20, 10))[0]
        elif 70 <= age <= 74:
            issued = self.day - dt.timedelta(days=rng.randint(0, 300))
            elderly = ElderlyRecipientCertificate(
                issued, issued, _add_years(issued, 1), rng.choice(("20", "30"))
            )
        limit = None
        if rng.random() < 0.05:
            flags = list(LimitClassificationFlag)
            flag = rng.choice(flags[:6] if age < 70 else flags[6:])
            issued = self.day - dt.timedelta(days=rng.randint(0, 200))
            limit = LimitCertificate(
                rng.choice(list(LimitCertificateClassification)),
                flag,
                issued,
                issued,
                _add_years(issued, 1),
                long_term_hospitalization_date=None,
            )
        diseases: tuple[SpecificDiseaseCertificate, ...] = ()
        if rng.random() < 0.003:
            issued = self.day - dt.timedelta(days=rng.randint(0, 700))
            diseases = (
                SpecificDiseaseCertificate(
                    rng.choice(list(SpecificDiseaseCategory)),
                    issued,
                    issued,
                    _add_years(issued, 3),
                    rng.choice((10000, 20000)),
                ),
            )
        return InsuredRecord(
            insurer_number=insurer.number,
            insurer_name=insurer.name,
            card_classification=InsuredCardClassification.GENERAL,
            card_symbol=symbol,
            card_number=number,
            branch_number=branch,
            qualification_date=start,
            disqualification_date=lost,
            reason_of_loss=reason,
            card_issuance_date=start,
            card_valid_from=start,
            card_valid_until=valid_until if insurer.kind != "employee" else None,
            partial_contribution_ratio=ratio,
            elderly_certificate=elderly,
            limit_certificate=limit,
            specific_diseases=diseases,
            **base,
        ).normalized()


def generate_population(
    count: int, *, seed: str = "sandbox", reference_day: dt.date | None = None
) -> Iterator[InsuredRecord]:
    """``count`` insured records (whole households; the last may be cut), reproducible from
    ``seed``. Dates are spread around ``reference_day`` (default today)."""
    generator = _Generator(seed, reference_day or dt.date.today())
    produced = 0
    seen: set[int] = set()  # hashes of card keys: a million tuples would cost 150 MB
    while produced < count:
        for record in generator.household():
            key = hash((*record.card_key, record.qualification_date))
            if key in seen:  # two households drew the same card number: skip the clash
                continue
            seen.add(key)
            yield record
            produced += 1
            if produced >= count:
                return


def records_as_text(records: Iterable[InsuredRecord], record_format: RecordFormat) -> str:
    buffer = io.StringIO()
    write_records(records, buffer, record_format)
    return buffer.getvalue()
