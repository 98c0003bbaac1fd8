"""Personas: deterministic synthetic holders in the forms the card stores."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from mynakit.emulator.personas import Persona, card_expiry, generate_persona
from mynakit.errors import DataError, UsageError
from mynakit.personal import EraDate, is_valid_my_number, my_number_check_digit
from mynakit.profiles import load_profile

pytestmark = pytest.mark.emulator

SEEDS = [0, 1, 2, "alice", "bob", 12345, "x" * 40]


def test_same_seed_same_persona() -> None:
    assert generate_persona("alice") == generate_persona("alice")
    assert generate_persona(7) == generate_persona("7")
    assert generate_persona("alice") != generate_persona("bob")


def test_no_seed_gives_fresh_personas_with_their_seed_recorded() -> None:
    first, second = generate_persona(), generate_persona()
    assert first.seed != second.seed
    assert generate_persona(first.seed) == first


@pytest.mark.parametrize("seed", SEEDS)
def test_my_number_has_a_valid_check_digit(seed: object) -> None:
    persona = generate_persona(seed)  # type: ignore[arg-type]
    assert is_valid_my_number(persona.my_number)
    assert int(persona.my_number[-1]) == my_number_check_digit(persona.my_number[:11])


@pytest.mark.parametrize("seed", SEEDS)
def test_fields_have_the_card_formats(seed: object) -> None:
    persona = generate_persona(seed)  # type: ignore[arg-type]
    # docs/card.md §6.2: U+3000 between family and given
    family, given = persona.name.split("\u3000")
    assert family and given
    assert "\u3000" in persona.name_kana
    assert re.search("[０-９]", persona.address) and not re.search("[0-9]", persona.address)
    assert re.fullmatch(r"[0-9]{4}", persona.auth_pin)
    assert re.fullmatch(r"[A-Z0-9]{6,16}", persona.sign_password)
    assert re.search("[A-Z]", persona.sign_password) and re.search("[0-9]", persona.sign_password)
    assert re.fullmatch(r"[0-9]{4}", persona.text_pin)
    assert re.fullmatch(r"[0-9]{4}", persona.card_pin)
    assert re.fullmatch(r"[0-9]{4}", persona.security_code)
    assert re.fullmatch(r"[0-9]{15}", persona.card_serial)
    assert re.fullmatch(r"[0-9]{5}", persona.municipality_code)
    assert persona.card_expiry > persona.issue_date >= persona.birth_date
    assert persona.sex.card_code in ("1", "2")
    assert persona.name_roman.isascii() and persona.address_roman.isascii()


@pytest.mark.parametrize("seed", SEEDS)
def test_every_profile_pin_key_gets_a_well_formed_value(seed: object) -> None:
    persona = generate_persona(seed)  # type: ignore[arg-type]
    for application in load_profile().applications.values():
        for key in application.keys.values():
            if key.kind == "pin" and key.tries > 0:
                key.check_format(persona.reference_data(key.name))


def test_check_codes() -> None:
    persona = generate_persona("codes")
    assert persona.check_code_a == persona.my_number
    era = EraDate.from_date(persona.birth_date).yymmdd
    assert persona.birth_date_code == era
    assert persona.check_code_b == era + str(persona.card_expiry.year) + persona.security_code


def test_unknown_key_name_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        generate_persona(1).reference_data("no_such_key")


def test_repr_hides_personal_data() -> None:
    persona = generate_persona("private")
    text = repr(persona)
    for secret in (persona.my_number, persona.name, persona.auth_pin, persona.sign_password):
        assert secret not in text


def test_summary_reveals_secrets_only_when_asked() -> None:
    persona = generate_persona("summary")
    hidden = persona.summary()
    assert "my_number" not in hidden and "auth_pin" not in hidden
    assert persona.my_number not in str(hidden.values())
    shown = persona.summary(reveal=True)
    assert shown["my_number"] == persona.my_number
    assert shown["sign_password"] == persona.sign_password


def test_json_round_trip_and_malformed_record() -> None:
    persona = generate_persona("json")
    assert Persona.from_json(persona.to_json()) == persona
    broken = persona.to_json()
    del broken["my_number"]
    with pytest.raises(DataError) as raised:
        Persona.from_json(broken)
    assert persona.my_number not in str(raised.value)


@pytest.mark.parametrize(
    ("birth", "issue", "expected"),
    [
        # The 10th birthday after issue: this year's, if still ahead, is the first.
        (dt.date(1980, 2, 17), dt.date(2025, 2, 16), dt.date(2034, 2, 17)),
        (dt.date(1980, 2, 17), dt.date(2025, 3, 1), dt.date(2035, 2, 17)),
        (dt.date(2015, 6, 1), dt.date(2025, 1, 10), dt.date(2029, 6, 1)),  # under 18: the 5th
        (dt.date(2000, 2, 29), dt.date(2021, 3, 1), dt.date(2031, 2, 28)),  # no 29 Feb in 2031
    ],
)
def test_card_expiry_rule(birth: dt.date, issue: dt.date, expected: dt.date) -> None:
    assert card_expiry(birth, issue) == expected
