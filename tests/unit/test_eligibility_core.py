"""The eligibility core's pure parts: the validity decision, record checks, preschool age and
the response message round trip (docs/services.md §A.4)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from mynakit.services.eligibility.codes import (
    ConsentFlag,
    ConsentScope,
    LimitCertificateClassification,
    LimitClassificationFlag,
    PersonalFamilyClassification,
    ProcessingResultStatus,
    QualificationValidity,
    ReasonOfLoss,
    ReferenceClassification,
    SegmentOfResult,
    Sex,
    SpecificDiseaseCategory,
)
from mynakit.services.eligibility.core import decide_validity
from mynakit.services.eligibility.models import (
    CheckResult,
    ConsentState,
    ElderlyRecipientCertificate,
    InsuranceCardQuery,
    InsuredRecord,
    InvalidRecordError,
    LimitCertificate,
    MessageBody,
    MessageHeader,
    ResultOfQualificationConfirmation,
    SpecificDiseaseCertificate,
    format_time,
    preschool_on,
)

pytestmark = pytest.mark.unit

DAY = dt.date(2026, 12, 1)


def _record(**changes: object) -> InsuredRecord:
    base = InsuredRecord(
        person_key="person-0001",
        insurer_number="06130012",
        insurer_name="サンドボックス健康保険組合",
        card_symbol="12",
        card_number="3456",
        branch_number="01",
        personal_family=PersonalFamilyClassification.INSURED,
        name="診療 太郎",
        name_kana="ｼﾝﾘｮｳ ﾀﾛｳ",
        birth_date=dt.date(1980, 5, 6),
        sex1=Sex.MALE,
        qualification_date=dt.date(2020, 4, 1),
    )
    return replace(base, **changes).normalized()  # type: ignore[arg-type]


def test_one_holding_qualification_is_valid() -> None:
    record = _record()
    assert decide_validity([record], [record], DAY) == (QualificationValidity.VALID, [record])


def test_lost_qualification_is_invalid_and_listed() -> None:
    lost = _record(disqualification_date=dt.date(2026, 11, 1), reason_of_loss=ReasonOfLoss.OTHER)
    assert decide_validity([lost], [lost], DAY) == (QualificationValidity.INVALID, [lost])


def test_loss_date_is_the_first_day_without_qualification() -> None:
    lost = _record(disqualification_date=DAY)
    assert decide_validity([lost], [lost], DAY)[0] is QualificationValidity.INVALID
    day_before = DAY - dt.timedelta(days=1)
    assert decide_validity([lost], [lost], day_before)[0] is QualificationValidity.VALID


def test_lost_with_a_newer_qualification_is_code_3() -> None:
    lost = _record(disqualification_date=dt.date(2026, 11, 1))
    newer = _record(
        insurer_number="01130015", card_symbol="7", qualification_date=dt.date(2026, 12, 15)
    )
    # by card data: the old card is named; the person's newer qualification shows as code 3
    assert decide_validity([lost], [lost, newer], DAY) == (
        QualificationValidity.INVALID_NEWER_EXISTS,
        [lost],
    )
    # by card, once the newer one holds it is simply valid
    later = dt.date(2026, 12, 20)
    assert decide_validity([lost, newer], [lost, newer], later) == (
        QualificationValidity.VALID,
        [newer],
    )


def test_no_started_qualification_is_code_4() -> None:
    future = _record(qualification_date=dt.date(2027, 1, 1))
    assert decide_validity([], [], DAY) == (QualificationValidity.NO_QUALIFICATION, [])
    assert decide_validity([future], [future], DAY)[0] is QualificationValidity.NO_QUALIFICATION


def test_two_holding_qualifications_are_code_5() -> None:
    first = _record()
    second = _record(insurer_number="39130018", card_symbol="9", card_number="1")
    validity, listed = decide_validity([first, second], [first, second], DAY)
    assert validity is QualificationValidity.SEVERAL
    assert set(listed) == {first, second}


def test_record_normalisation_and_refusals() -> None:
    record = _record(insurer_number="138057", card_number="３４５６", post_number="1000001")
    assert record.insurer_number == "00138057"
    assert record.card_number == "3456"
    assert record.post_number == "100-0001"
    with pytest.raises(InvalidRecordError, match="insurer number"):
        _record(insurer_number="12345")
    with pytest.raises(InvalidRecordError, match="branch"):
        _record(branch_number="1")
    with pytest.raises(InvalidRecordError, match="My Number"):
        _record(person_key="123456789012")
    with pytest.raises(InvalidRecordError, match="katakana"):
        _record(name_kana="しんりょう")
    with pytest.raises(InvalidRecordError, match="loss date"):
        _record(disqualification_date=dt.date(2019, 1, 1))


def test_json_lines_form_round_trips() -> None:
    record = _record(
        elderly_certificate=ElderlyRecipientCertificate(
            dt.date(2026, 8, 1), dt.date(2026, 8, 1), dt.date(2027, 7, 31), "20"
        ),
        limit_certificate=LimitCertificate(
            LimitCertificateClassification.LIMIT,
            LimitClassificationFlag.A03,
            dt.date(2026, 4, 1),
            dt.date(2026, 4, 1),
            dt.date(2027, 3, 31),
        ),
        specific_diseases=(
            SpecificDiseaseCertificate(
                SpecificDiseaseCategory.DIALYSIS,
                dt.date(2025, 1, 1),
                dt.date(2025, 1, 1),
                dt.date(2027, 12, 31),
                10000,
            ),
        ),
    )
    assert InsuredRecord.from_dict(record.to_dict()) == record
    with pytest.raises(InvalidRecordError, match="lacks the field name"):
        InsuredRecord.from_dict({k: v for k, v in record.to_dict().items() if k != "name"})


@pytest.mark.parametrize(
    ("birth", "day", "expected"),
    [
        (dt.date(2020, 5, 1), dt.date(2027, 3, 31), True),
        (dt.date(2020, 5, 1), dt.date(2027, 4, 1), False),
        (dt.date(2020, 4, 1), dt.date(2026, 4, 1), False),  # 1 April births start a year early
        (dt.date(2020, 4, 2), dt.date(2026, 4, 1), True),
    ],
)
def test_preschool(birth: dt.date, day: dt.date, expected: bool) -> None:
    assert preschool_on(birth, day) is expected


def test_result_message_uses_public_names_and_round_trips() -> None:
    now = dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.UTC)
    record = _record()
    states = tuple(
        ConsentState(scope, ConsentFlag.GIVEN, now, now + dt.timedelta(hours=24))
        if scope is ConsentScope.MEDICATION
        else ConsentState(scope, ConsentFlag.NOT_GIVEN)
        for scope in ConsentScope
    )
    result = CheckResult(
        header=MessageHeader(
            process_execution_time=now,
            qualification_confirmation_date=DAY,
            medical_institution_code="1312345678",
            reference_classification=ReferenceClassification.INSURANCE_CARD_DATA,
            segment_of_result=SegmentOfResult.NORMAL,
            arbitrary_file_identifier="file-1",
        ),
        body=MessageBody(
            processing_result_status=ProcessingResultStatus.NORMAL,
            qualification_validity=QualificationValidity.VALID,
            results=(ResultOfQualificationConfirmation(record, False, states),),
            search_info=InsuranceCardQuery("06130012", "12", "3456", "01", record.birth_date),
        ),
        check_id="abc",
    )
    message = result.to_message()["XmlMsg"]
    assert message["MessageHeader"]["ProcessExecutionTime"] == "20261201093000"  # Japan time
    assert message["MessageHeader"]["ReferenceClassification"] == "2"
    entry = message["MessageBody"]["ResultList"][0]["ResultOfQualificationConfirmation"]
    assert entry["InsurerNumber"] == "06130012"
    assert entry["NameKana"] == "ｼﾝﾘｮｳ ﾀﾛｳ"
    assert entry["Birthdate"] == "19800506"
    assert entry["PharmacistsInfoConsFlg"] == "1"
    assert entry["PharmacistsInfoAvailableTime"] == format_time(now + dt.timedelta(hours=24))
    assert entry["LimitApplicationCertificateRelatedConsFlg"] == "0"
    assert "LimitApplicationCertificateRelatedInfo" not in entry
    back = CheckResult.from_dict(result.to_dict())
    assert back.to_message() == result.to_message()
    # A card without a symbol (後期高齢者 cards print none) reads back as such.
    no_symbol = replace(result.body.results[0], record=replace(record, card_symbol=""))
    body = replace(result.body, results=(no_symbol,))
    again = CheckResult.from_dict(replace(result, body=body).to_dict())
    assert again.body.results[0].record.card_symbol == ""
    assert back.check_id == "abc"
