"""Reader limits and PIN-pad detection through a real pcscd: vpcd answers no part 10 feature
and no SCARD_ATTR_MAXINPUT (or reports 0x10000), so the limits stay as the driver says."""

from __future__ import annotations

from pathlib import Path

import pytest

from mynakit.card.jpki import JpkiAp
from mynakit.emulator.pcscd import VPCD_READER
from mynakit.emulator.vpcd import VpcdBridge
from mynakit.transport.limits import protocol_for
from mynakit.transport.pcsc import PcscConnection
from support.cli import invoke, ok_json

pytestmark = pytest.mark.pcsc


def test_limits_learnt_at_connect(pcsc_connection: PcscConnection) -> None:
    limits = pcsc_connection.limits
    assert limits.max_apdu_data in (None, 0x10000)
    assert pcsc_connection.extended_length is limits.extended_length
    assert pcsc_connection.pin_pad is None  # vpcd has no keypad
    protocol = protocol_for(pcsc_connection)
    assert JpkiAp.open(protocol).read_certificate("auth")


def test_check_reports_reader_limits(pcsc_vpcd_bridge: VpcdBridge, tmp_path: Path) -> None:
    report = ok_json(invoke(tmp_path, VPCD_READER, "check"))
    assert report["card"]["kind"] == "my_number_card"
    assert report["pin_pad"] is False
    assert set(report["reader_limits"]) >= {"max_response_data", "extended_length", "source"}
