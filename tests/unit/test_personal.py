from __future__ import annotations

import datetime as dt

import pytest

from mynakit.errors import DataError, UsageError
from mynakit.personal import (
    BasicInfo,
    Era,
    EraDate,
    Sex,
    check_code_b,
    is_valid_my_number,
    my_number_check_digit,
)

pytestmark = pytest.mark.unit


def test_check_digit_worked_example() -> None:
    # docs/card.md Appendix A: 12345678901 -> 8.
    assert my_number_check_digit("12345678901") == 8
    assert is_valid_my_number("123456789018")
    assert not is_valid_my_number("123456789017")
    assert not is_valid_my_number("12345678901")
    with pytest.raises(UsageError):
        my_number_check_digit("1234567890a")


def test_check_code_b_confirmed_example() -> None:
    # docs/card.md §4: 1980-02-17 (昭和55), expiry 2035, code 2285.
    assert check_code_b(dt.date(1980, 2, 17), 2035, "2285") == "55021720352285"
    with pytest.raises(UsageError):
        check_code_b(dt.date(1980, 2, 17), 2035, "22a5")


@pytest.mark.parametrize(
    ("date", "era", "year", "text"),
    [
        (dt.date(2019, 5, 1), Era.REIWA, 1, "令和元年5月1日"),
        (dt.date(2019, 4, 30), Era.HEISEI, 31, "平成31年4月30日"),
        (dt.date(1989, 1, 7), Era.SHOWA, 64, "昭和64年1月7日"),
        (dt.date(1926, 12, 25), Era.SHOWA, 1, "昭和元年12月25日"),
        (dt.date(1912, 7, 29), Era.MEIJI, 45, "明治45年7月29日"),
    ],
)
def test_era_boundaries(date: dt.date, era: Era, year: int, text: str) -> None:
    era_date = EraDate.from_date(date)
    assert (era_date.era, era_date.year) == (era, year)
    assert str(era_date) == text
    assert era_date.to_date() == date


def test_certificate_birth_date_round_trip() -> None:
    value = EraDate.from_date(dt.date(1980, 2, 17)).certificate_value()
    assert value == "319800217"
    assert EraDate.from_certificate_value(value).to_date() == dt.date(1980, 2, 17)
    assert EraDate.from_certificate_value("019800217").era is Era.SHOWA  # 0: era unknown


@pytest.mark.parametrize("value", ["19800217", "4198002170", "319801317", "419800217"])
def test_bad_certificate_birth_dates_hide_the_value(value: str) -> None:
    with pytest.raises(DataError) as raised:
        EraDate.from_certificate_value(value)
    assert value not in str(raised.value)


def test_sex_codes() -> None:
    assert Sex.from_card_code("1") is Sex.MALE and Sex.FEMALE.card_code == "2"
    assert Sex.from_certificate_code("3") is Sex.UNKNOWN
    assert Sex.NOT_APPLICABLE.certificate_code == "3"
    with pytest.raises(DataError):
        Sex.from_card_code("7")


def test_basic_info_repr_hides_personal_data() -> None:
    info = BasicInfo("黒桐　幹也", "東京都", dt.date(1980, 2, 17), Sex.MALE)
    assert "黒桐" not in repr(info) and "1980" not in repr(info)
