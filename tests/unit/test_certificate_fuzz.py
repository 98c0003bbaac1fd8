"""Mutated certificates raise only the library's documented errors (issue 7).

A bounded, seeded run over the bundled J-LIS roots and sandbox-issued certificates
(tests/support/certificates): parsing, every accessor, trust-anchor loading and path
validation. The large run is ``tools/fuzz_certificates.py --count 100000``.
"""

from __future__ import annotations

import random

import pytest

from mynakit.errors import DataError
from mynakit.jpki.certificates import parse_certificate
from support.certificate_fuzz import corpus, mutate, parse_tree, run

pytestmark = pytest.mark.unit

CI_COUNT = 3000


def test_seeded_mutants_raise_only_documented_errors() -> None:
    report = run(CI_COUNT, seed=7)
    assert report.inputs == CI_COUNT
    shown = "\n".join(error for error, _ in report.escapes[:5])
    assert not report.escapes, f"{len(report.escapes)} mutants escaped:\n{shown}"
    # The run reached past the parser: some mutants parse and are judged by validation.
    assert report.outcomes["DataError"] > 0
    assert report.outcomes["CertificateValidationError"] > 0


def test_the_mutator_is_deterministic_per_seed() -> None:
    originals = corpus()
    first = [mutate(random.Random(3), originals[0]) for _ in range(5)]
    again = [mutate(random.Random(3), originals[0]) for _ in range(5)]
    assert first == again


@pytest.mark.parametrize(
    "mutation",
    ["version", "duplicate_extension", "issuer_utf8", "san_utf8", "negative_serial"],
)
def test_named_mutations_are_data_errors(mutation: str) -> None:
    # The cases of issue 7 that escaped as InvalidVersion, DuplicateExtension, ValueError and
    # UnicodeDecodeError before parse_certificate parsed every part eagerly.
    sign = corpus()[-1]
    tree = parse_tree(sign)
    assert tree.children is not None
    tbs = tree.children[0].children
    assert tbs is not None
    if mutation == "version":
        assert tbs[0].children is not None
        tbs[0].children[0].value = b"\x05"
    elif mutation == "duplicate_extension":
        extensions = tbs[-1].children[0].children  # type: ignore[index]
        assert extensions is not None
        extensions.append(extensions[0])
    elif mutation == "issuer_utf8":
        issuer = tbs[3]
        strings = [node for node in issuer.walk() if node.tag == 0x0C]
        strings[0].value = b"\xff\xfe" + strings[0].value
    elif mutation == "san_utf8":
        der = tree.encode()
        marker = "田中".encode()  # the fixture holder's surname, inside a SAN otherName
        assert marker in der
        mutated = der.replace(marker, b"\xe7\x94" + b"\xff" + marker[3:], 1)
        with pytest.raises(DataError):
            parse_certificate(mutated).basic_info  # noqa: B018
        return
    elif mutation == "negative_serial":
        tbs[1].value = b"\xff\x01"
    with pytest.raises(DataError):
        parse_certificate(tree.encode())


def test_the_large_run_tool_reports_counts_by_type(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "tools" / "fuzz_certificates.py"
    specification = importlib.util.spec_from_file_location("fuzz_certificates", path)
    assert specification is not None and specification.loader is not None
    tool = importlib.util.module_from_spec(specification)
    specification.loader.exec_module(tool)
    monkeypatch.setattr("sys.argv", ["fuzz_certificates.py", "--count", "200", "--json"])
    assert tool.main() == 0
    report = json.loads(capsys.readouterr().out)
    assert report["inputs"] == 200 and report["escaped"] == 0
    assert sum(report["outcomes"].values()) == 200
