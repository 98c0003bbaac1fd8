"""The sandbox population generator and the bulk import formats (docs/services.md §A.4)."""

from __future__ import annotations

import collections
import datetime as dt
import io

import pytest

from mynakit.services.eligibility.codes import (
    PersonalFamilyClassification,
    QualificationValidity,
)
from mynakit.services.eligibility.core import decide_validity
from mynakit.services.eligibility.models import InvalidRecordError
from mynakit.services.eligibility.population import (
    generate_population,
    half_width_kana,
    read_records,
    write_records,
)

pytestmark = pytest.mark.unit

DAY = dt.date(2026, 12, 1)


def test_population_has_the_cases_the_service_must_answer() -> None:
    records = list(generate_population(6000, seed="unit", reference_day=DAY))
    assert len(records) == 6000
    assert records == list(generate_population(6000, seed="unit", reference_day=DAY))
    people: dict[str, list[object]] = collections.defaultdict(list)
    for record in records:
        people[record.person_key].append(record)
    codes = collections.Counter(
        decide_validity(group, group, DAY)[0]  # type: ignore[arg-type]
        for group in people.values()
    )
    assert codes[QualificationValidity.VALID] > 4000
    assert codes[QualificationValidity.INVALID] > 50  # lost, nothing newer
    assert codes[QualificationValidity.SEVERAL] >= 1  # qualified twice at once
    assert (
        codes[QualificationValidity.INVALID_NEWER_EXISTS] + codes[QualificationValidity.VALID] > 0
    )
    assert len({r.insurer_number for r in records}) >= 8  # several insurers
    dependants = [r for r in records if r.personal_family is PersonalFamilyClassification.FAMILY]
    assert dependants and all(r.branch_number != "00" and r.insured_name for r in dependants)
    assert any(r.elderly_certificate for r in records)  # 70-74
    assert any(r.partial_contribution_ratio for r in records)  # 後期高齢者
    assert any(r.limit_certificate for r in records)
    assert any(any("\uff61" <= c <= "\uff9f" for c in r.name_kana) for r in records)
    job_changes = [g for g in people.values() if len({r.insurer_number for r in g}) > 1]  # type: ignore[attr-defined]
    assert job_changes
    assert all(len(r.person_key) > 12 and not r.person_key.isdigit() for r in records)


@pytest.mark.parametrize("record_format", ["jsonl", "csv"])
def test_formats_round_trip(record_format: str) -> None:
    records = list(generate_population(300, seed="formats", reference_day=DAY))
    buffer = io.StringIO()
    assert write_records(records, buffer, record_format) == 300  # type: ignore[arg-type]
    buffer.seek(0)
    assert list(read_records(buffer, record_format)) == records  # type: ignore[arg-type]


def test_bad_lines_name_their_line() -> None:
    good = io.StringIO()
    write_records(generate_population(2, seed="bad", reference_day=DAY), good, "jsonl")
    lines = good.getvalue().splitlines()
    with pytest.raises(InvalidRecordError, match=r"^line 3: not JSON"):
        list(read_records(io.StringIO("\n".join([*lines, "{oops"])), "jsonl"))
    with pytest.raises(InvalidRecordError, match="CSV header lacks"):
        list(read_records(io.StringIO("a,b\n1,2\n"), "csv"))


def test_half_width_kana() -> None:
    assert half_width_kana("ヤマダ　タロウ") == "ﾔﾏﾀﾞ ﾀﾛｳ"
