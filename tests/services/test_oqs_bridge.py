"""The receipt computer's folder interface (docs/services.md §A.4) against the real eligibility
service core: every request of a test set gets the right ``res`` file, written atomically."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import replace
from pathlib import Path

import pytest

from mynakit.jpki.authentication import Authenticator
from mynakit.jpki.trust import TrustStore
from mynakit.services.eligibility.codes import (
    PersonalFamilyClassification,
    ReasonOfLoss,
    Sex,
)
from mynakit.services.eligibility.core import (
    EligibilityService,
    InMemoryEligibilityRepository,
)
from mynakit.services.eligibility.models import CheckResult, InsuredRecord
from mynakit.services.eligibility.oqs import OqsBridge, OqsFolders, remove_temporaries

pytestmark = pytest.mark.services

DAY = dt.date(2026, 12, 1)
INSTITUTION = "1310000017"


def _record(person: str, number: str, **changes: object) -> InsuredRecord:
    base = InsuredRecord(
        person_key=person,
        insurer_number="06139991",
        insurer_name="サンドボックス健康保険組合",
        card_symbol="サンド",
        card_number=number,
        branch_number="01",
        personal_family=PersonalFamilyClassification.INSURED,
        name="診療 太郎",
        name_kana="ｼﾝﾘｮｳ ﾀﾛｳ",
        birth_date=dt.date(1980, 5, 6),
        sex1=Sex.MALE,
        qualification_date=dt.date(2020, 4, 1),
    )
    return replace(base, **changes).normalized()  # type: ignore[arg-type]


@pytest.fixture
def service() -> EligibilityService:
    repository = InMemoryEligibilityRepository()
    service = EligibilityService(repository, Authenticator(TrustStore.jlis(), revocation="crl"))
    service.load_records(
        [
            _record("person-valid-01", "1001"),
            _record(
                "person-lost-0002",
                "1002",
                disqualification_date=dt.date(2026, 10, 1),
                reason_of_loss=ReasonOfLoss.OTHER,
            ),
            _record(
                "person-newer-003",
                "1003",
                disqualification_date=dt.date(2026, 10, 1),
                reason_of_loss=ReasonOfLoss.OTHER_INSURANCE,
            ),
            _record(
                "person-newer-003",
                "2003",
                insurer_number="01130012",
                insurer_name="全国健康保険協会",
                qualification_date=dt.date(2026, 10, 1),
            ),
        ]
    )
    return service


@pytest.fixture
def bridge(tmp_path: Path, service: EligibilityService) -> OqsBridge:
    clock = lambda: dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.UTC)  # noqa: E731
    return OqsBridge(OqsFolders(tmp_path / "oqs"), service, clock=clock)


def _request(
    number: str, *, encoding: str = "UTF-8", skip: str = "", symbol: str = "サンド"
) -> str:
    fields = {
        "InsurerNumber": "06139991",
        "InsuredCardSymbol": symbol,
        "InsuredIdentificationNumber": number,
        "InsuredBranchNumber": "01",
        "Birthdate": "19800506",
        "LimitApplicationCertificateRelatedConsFlg": "0",
    }
    body = "".join(f"<{name}>{value}</{name}>" for name, value in fields.items() if name != skip)
    return (
        f"<?xml version='1.0' encoding='{encoding}' standalone='no'?>\n"
        "<XmlMsg><MessageHeader>"
        f"<QualificationConfirmationDate>{DAY:%Y%m%d}</QualificationConfirmationDate>"
        f"<MedicalInstitutionCode>{INSTITUTION}</MedicalInstitutionCode>"
        "<ArbitraryFileIdentifier>karte-42</ArbitraryFileIdentifier>"
        "</MessageHeader><MessageBody><QualificationConfirmSearchInfo>"
        f"{body}</QualificationConfirmSearchInfo></MessageBody></XmlMsg>\n"
    )


def _drop(bridge: OqsBridge, name: str, content: str | bytes, encoding: str = "utf-8") -> None:
    data = content if isinstance(content, bytes) else content.encode(encoding)
    (bridge.folders.req / name).write_bytes(data)


def _response(bridge: OqsBridge, name: str) -> ElementTree.Element:
    """Parse a response with the standard library's parser (the test's own files are trusted).
    expat reads no multi-byte encoding by itself, so Shift_JIS files are decoded first, as
    the declaration says, and given to it as text."""
    data = (bridge.folders.res / name).read_bytes()
    if b'encoding="Shift_JIS"' in data.split(b"\n", 1)[0]:
        text = data.decode("cp932").split("\n", 1)[1]
        return ElementTree.fromstring(text)
    return ElementTree.fromstring(data)


def test_every_request_of_the_test_set_gets_its_response(bridge: OqsBridge) -> None:
    _drop(bridge, "OQSsiquc01req_20261201093000001.xml", _request("1001"))
    _drop(bridge, "OQSsiquc01req_20261201093000002.xml", _request("1002"))
    _drop(bridge, "OQSsiquc01req_20261201093000003.xml", _request("1003"))
    _drop(bridge, "OQSsiquc01req_20261201093000004.xml", _request("9999"))
    _drop(
        bridge,
        "OQSsiquc01req_20261201093000005.xml",
        _request("1001", encoding="Shift_JIS"),
        encoding="cp932",
    )
    _drop(bridge, "OQSsiquc01req_20261201093000006.xml", _request("1001", skip="Birthdate"))
    _drop(bridge, "OQSsiquc01req_20261201093000007.xml", "<XmlMsg><MessageHeader>")
    _drop(bridge, "OQSmuquc01req_20261201093000008.xml", _request("1001"))
    outcomes = {outcome.request: outcome for outcome in bridge.process_pending()}
    assert len(outcomes) == 8
    assert list(bridge.folders.req.iterdir()) == []

    def validity(stamp: str) -> str | None:
        return _response(bridge, f"OQSsiquc01res_{stamp}.xml").findtext(
            "MessageBody/QualificationValidity"
        )

    assert validity("20261201093000001") == "1"
    assert validity("20261201093000002") == "2"
    assert validity("20261201093000003") == "3"
    assert validity("20261201093000004") == "4"
    valid = _response(bridge, "OQSsiquc01res_20261201093000001.xml")
    assert valid.findtext("MessageHeader/ReferenceClassification") == "2"
    assert valid.findtext("MessageHeader/SegmentOfResult") == "1"
    assert valid.findtext("MessageHeader/ArbitraryFileIdentifier") == "karte-42"
    assert valid.findtext("MessageHeader/CharacterCodeIdentifier") == "0"
    entries = valid.findall("MessageBody/ResultList/ResultOfQualificationConfirmation")
    assert len(entries) == 1
    assert entries[0].findtext("InsurerNumber") == "06139991"
    assert entries[0].findtext("NameKana") == "ｼﾝﾘｮｳ ﾀﾛｳ"

    shift_jis = (bridge.folders.res / "OQSsiquc01res_20261201093000005.xml").read_bytes()
    assert shift_jis.startswith(b'<?xml version="1.0" encoding="Shift_JIS"')
    assert "サンドボックス健康保険組合".encode("cp932") in shift_jis
    parsed = _response(bridge, "OQSsiquc01res_20261201093000005.xml")
    assert parsed.findtext("MessageHeader/CharacterCodeIdentifier") == "1"
    assert parsed.findtext("MessageBody/QualificationValidity") == "1"

    for stamp, words in (
        ("20261201093000006", "Birthdate"),
        ("20261201093000007", "well-formed"),
    ):
        refused = _response(bridge, f"OQSsiquc01res_{stamp}.xml")
        assert refused.findtext("MessageHeader/SegmentOfResult") == "9"
        assert refused.findtext("MessageHeader/ErrorCode") == "ESB0001"
        assert words in (refused.findtext("MessageHeader/ErrorMessage") or "")
        assert refused.findtext("MessageBody/ProcessingResultStatus") == "2"
        assert (bridge.folders.rejected / f"OQSsiquc01req_{stamp}.xml").exists()
    unknown = _response(bridge, "OQSmuquc01res_20261201093000008.xml")
    assert unknown.findtext("MessageHeader/SegmentOfResult") == "9"
    assert "not supported" in (unknown.findtext("MessageHeader/ErrorMessage") or "")
    assert (bridge.folders.rejected / "OQSmuquc01req_20261201093000008.xml").exists()
    assert not outcomes["OQSmuquc01req_20261201093000008.xml"].accepted
    assert sorted(path.name for path in bridge.folders.done.iterdir()) == [
        f"OQSsiquc01req_2026120109300000{index}.xml" for index in range(1, 6)
    ]


def test_results_read_back_into_the_model(bridge: OqsBridge) -> None:
    _drop(bridge, "OQSsiquc01req_1.xml", _request("1001"))
    bridge.process_pending()
    from mynakit.services.eligibility.oqs import element_to_message

    root = _response(bridge, "OQSsiquc01res_1.xml")
    message = element_to_message(root)
    entries = message["MessageBody"]["ResultList"]["ResultOfQualificationConfirmation"]
    message["MessageBody"]["ResultList"] = [{"ResultOfQualificationConfirmation": entries}]
    result = CheckResult.from_dict({"XmlMsg": message})
    assert result.accepted
    assert result.body.results[0].record.card_number == "1001"


def test_entities_and_doctypes_are_refused(bridge: OqsBridge, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do-not-read")
    attack = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE XmlMsg [<!ENTITY leak SYSTEM "file://{secret}">]>\n'
        "<XmlMsg><MessageHeader><ArbitraryFileIdentifier>&leak;</ArbitraryFileIdentifier>"
        "</MessageHeader></XmlMsg>"
    )
    _drop(bridge, "OQSsiquc01req_2.xml", attack)
    [outcome] = bridge.process_pending()
    assert not outcome.accepted
    data = (bridge.folders.res / "OQSsiquc01res_2.xml").read_bytes()
    assert b"do-not-read" not in data
    assert (bridge.folders.rejected / "OQSsiquc01req_2.xml").exists()


def test_a_response_never_overwrites_an_earlier_one(bridge: OqsBridge) -> None:
    (bridge.folders.res / "OQSsiquc01res_3.xml").write_bytes(b"earlier")
    _drop(bridge, "OQSsiquc01req_3.xml", _request("1001"))
    [outcome] = bridge.process_pending()
    assert outcome.response == "OQSsiquc01res_3_1.xml"
    assert (bridge.folders.res / "OQSsiquc01res_3.xml").read_bytes() == b"earlier"


def test_a_crash_between_writing_and_renaming_leaves_no_half_file(
    tmp_path: Path, service: EligibilityService
) -> None:
    folders = OqsFolders(tmp_path / "oqs").create()
    (folders.req / "OQSsiquc01req_4.xml").write_text(_request("1001"), encoding="utf-8")
    # A child process writes the response and dies (os._exit, no clean-up) right before the
    # link that would give the file its name.
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "import mynakit.services.eligibility.oqs as oqs\n"
        "def crash(source, target): os._exit(9)\n"
        "oqs.os.link = crash\n"
        "oqs.write_new_file(Path(sys.argv[1]), 'OQSsiquc01res_4.xml', b'<XmlMsg>' * 1000)\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", script, str(folders.res)], capture_output=True, check=False
    )
    assert process.returncode == 9, process.stderr
    leftovers = list(folders.res.iterdir())
    assert [path for path in leftovers if not path.name.startswith(".")] == []
    assert len(leftovers) == 1 and leftovers[0].name.endswith(".tmp")
    # The next start removes the temporary and answers the request, which was never moved.
    bridge = OqsBridge(folders, service)
    assert remove_temporaries(folders.res) == []
    [outcome] = bridge.process_pending()
    assert outcome.accepted
    assert [path.name for path in folders.res.iterdir()] == ["OQSsiquc01res_4.xml"]
    ElementTree.fromstring((folders.res / "OQSsiquc01res_4.xml").read_bytes())


def test_face_results_land_in_face(bridge: OqsBridge, service: EligibilityService) -> None:
    from mynakit.services.eligibility.models import InsuranceCardCheckRequest, InsuranceCardQuery

    result = service.check_by_insurance_card(
        InsuranceCardCheckRequest(
            institution_code=INSTITUTION,
            query=InsuranceCardQuery("06139991", "サンド", "1001", "01", dt.date(1980, 5, 6)),
            confirmation_date=DAY,
        )
    )
    first = bridge.write_face(result)
    second = bridge.write_face(result)
    assert first != second  # same clock reading, still two files
    assert first.startswith("OQSsiquc01res_") and first.endswith(".xml")
    root = ElementTree.fromstring((bridge.folders.face / first).read_bytes())
    assert root.findtext("MessageBody/QualificationValidity") == "1"
