"""PC/SC result codes map to errors that say what to do (docs/readers.md §1.2, §4.3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mynakit.emulator.pcscd as pcscd_module
from mynakit.emulator.pcscd import _without_vpcd_message, vpcd_configured
from mynakit.errors import TransportError, UsageError
from mynakit.transport.base import (
    CardRemovedError,
    NoCardError,
    NoReaderError,
    NoServiceError,
    ReaderBusyError,
    TransportTimeoutError,
)
from mynakit.transport.limits import (
    max_apdu_data_size,
    parse_feature_request,
    parse_tlv_properties,
)
from mynakit.transport.pcsc import (
    CardResetError,
    error_for,
    resolve_reader_name,
    unsigned,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("hresult", "action", "error_class", "advice"),
    [
        (0x8010001D, "establish context", NoServiceError, "start it"),
        (0x8010001E, "transmit", NoServiceError, "start it"),
        (0x80100013, "transmit", NoServiceError, "start it again"),
        (0x8010002E, "list readers", NoReaderError, "plug one in"),
        (0x80100009, "connect", NoReaderError, "mynakit readers"),
        (0x8010000C, "connect", NoCardError, "insert the My Number card"),
        (0x80100069, "connect", NoCardError, "insert the My Number card"),
        (0x80100069, "transmit", CardRemovedError, "put it back"),
        (0x8010000C, "transmit", CardRemovedError, "put it back"),
        (0x8010000B, "connect", ReaderBusyError, "another program"),
        (0x8010000A, "transmit", TransportTimeoutError, "retry"),
        (0x80100066, "connect", NoCardError, "insert it again"),
        (0x80100068, "transmit", CardResetError, "reconnect"),
    ],
)
def test_result_codes_map_to_errors_with_advice(
    hresult: int, action: str, error_class: type[TransportError], advice: str
) -> None:
    error = error_for(hresult, action, "ACS ACR39U 00 00")
    assert type(error) is error_class
    assert advice in str(error)
    assert f"0x{hresult:08X}" in str(error)


def test_signed_result_codes_map_like_unsigned() -> None:
    # Some bindings hand back the 32-bit code as a negative int.
    signed = 0x8010001D - (1 << 32)
    assert unsigned(signed) == 0x8010001D
    assert isinstance(error_for(signed, "establish context"), NoServiceError)


def test_unknown_code_is_still_a_transport_error_with_the_code() -> None:
    error = error_for(0x80100024, "transmit", "R")
    assert type(error) is TransportError
    assert "0x80100024" in str(error)


def test_feature_request_lists_control_codes() -> None:
    # FEATURE_VERIFY_PIN_DIRECT (06) and FEATURE_GET_TLV_PROPERTIES (12), codes big-endian.
    answer = bytes.fromhex("06 04 42 33 00 06 12 04 42 33 00 12")
    assert parse_feature_request(answer) == {0x06: 0x42330006, 0x12: 0x42330012}


def test_tlv_properties_give_max_apdu_size_little_endian() -> None:
    # vpcd's answer: dwMaxAPDUDataSize 0x10000; CCID readers add vendor and product ids.
    assert max_apdu_data_size(bytes.fromhex("0A 04 00 00 01 00")) == 0x10000
    answer = bytes.fromhex("0B 02 E6 08 0C 02 37 34 0A 04 00 00 00 00")
    properties = parse_tlv_properties(answer)
    assert properties[0x0B] == 0x08E6
    assert max_apdu_data_size(answer) == 0
    assert max_apdu_data_size(bytes.fromhex("0B 02 E6 08")) is None


def test_truncated_tlv_properties_keep_what_parsed() -> None:
    assert parse_tlv_properties(bytes.fromhex("0B 02 E6 08 0A 04 00")) == {0x0B: 0x08E6}


READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01", "ACS ACR1251 Dual Reader 00 00"]


def test_reader_names_resolve_exactly_or_by_unique_fragment() -> None:
    assert resolve_reader_name("Virtual PCD 00 01", READERS) == "Virtual PCD 00 01"
    assert resolve_reader_name("acr1251", READERS) == "ACS ACR1251 Dual Reader 00 00"


def test_ambiguous_reader_fragment_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="several readers"):
        resolve_reader_name("Virtual", READERS)


def test_unknown_reader_lists_the_connected_ones() -> None:
    with pytest.raises(NoReaderError, match="Virtual PCD 00 00"):
        resolve_reader_name("SCR3310", READERS)


def test_vpcd_configuration_is_found_in_reader_conf(tmp_path: Path) -> None:
    (tmp_path / "libccidtwin").write_text("LIBPATH /usr/lib/pcsc/drivers/serial/libccidtwin.so\n")
    assert not vpcd_configured(tmp_path)
    (tmp_path / "vpcd").write_text("LIBPATH /usr/lib/pcsc/drivers/serial/libifdvpcd.so\n")
    assert vpcd_configured(tmp_path)
    assert not vpcd_configured(tmp_path / "missing")


def test_pcscd_without_vpcd_message_says_what_to_do() -> None:
    message = _without_vpcd_message(["Gemalto PC Twin Reader 00 00"])
    assert "Gemalto PC Twin Reader 00 00" in message
    assert "restart" in message


def test_missing_packages_without_consent_is_unavailable_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(pcscd_module, "running_pcscd_readers", lambda: None)
    monkeypatch.setattr(pcscd_module, "missing_packages", lambda: ["vsmartcard-vpcd"])
    with pytest.raises(pcscd_module.PcscdUnavailableError, match="apt-get install -y pcscd"):
        pcscd_module.ensure_pcscd(tmp_path, allow_install=False)


def test_running_pcscd_without_vpcd_is_a_setup_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(pcscd_module, "running_pcscd_readers", lambda: ["SCR3310 00 00"])
    with pytest.raises(pcscd_module.PcscdSetupError, match="SCR3310"):
        pcscd_module.ensure_pcscd(tmp_path, allow_install=True)


@pytest.mark.parametrize(
    ("ci", "consent", "allowed_as_root"),
    [("true", "", True), ("", "1", True), ("", "", False), ("false", "0", False)],
)
def test_installation_needs_ci_or_explicit_consent(
    monkeypatch: pytest.MonkeyPatch, ci: str, consent: str, allowed_as_root: bool
) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv(pcscd_module.INSTALL_ENV, consent)
    # pcscd.py calls os.geteuid() through the os module, so patching the module patches it.
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert pcscd_module.installation_allowed() is allowed_as_root
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert pcscd_module.installation_allowed() is False
