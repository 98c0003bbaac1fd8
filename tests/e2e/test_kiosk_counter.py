"""The counter end to end: virtual cards in pcscd's vpcd reader, PC/SC card events, the terminal,
the eligibility HTTP API on loopback (SQLite), and the kiosk page in Debian's headless Chromium
driven through chromium-driver, tapped as a holder taps it (docs/services.md §A.2, §A.8).

Each scenario reaches its state and words on the page; a screenshot of every state is kept under
the session's pytest folder (``artefacts/kiosk``, printed at the end of the module).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mynakit.cli.demo import Holder, SandboxCounter
from mynakit.emulator.pcscd import VPCD_READER, PcscdSession
from mynakit.emulator.vpcd import VpcdBridge
from mynakit.services.eligibility.oqs import OqsBridge, OqsFolders
from mynakit.terminal.kiosk import KioskServer, kiosk_for
from mynakit.terminal.machine import Terminal
from mynakit.terminal.runner import TerminalRunner
from mynakit.transport.pcsc import PcscConnection
from mynakit.transport.readers import CardMonitor
from mynakit.transport.trace import TracingConnection

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_SECONDS = 30.0


# -- the counter ----------------------------------------------------------------------------------


class CounterRig:
    """The counter's parts and the holder's hands: insert and pull cards, tap the page."""

    def __init__(self, world: SandboxCounter, artefacts: Path) -> None:
        self.world = world
        self.artefacts = artefacts
        self.connections: list[TracingConnection] = []
        self.bridge: VpcdBridge | None = None
        self.driver: Any = None
        self.kiosk: KioskServer | None = None
        self.scenario = "start"
        self.bridge_files: OqsBridge | None = None

    def connect(self, reader: str) -> TracingConnection:
        connection = TracingConnection(PcscConnection.open(reader))
        self.connections.append(connection)
        return connection

    def insert(self, holder: Holder) -> None:
        self.connections.clear()
        if self.bridge is None:
            self.bridge = VpcdBridge(holder.card)
            self.bridge.start()
        else:
            self.bridge.insert_card(holder.card)

    def pull(self) -> None:
        assert self.bridge is not None
        self.bridge.remove_card()

    def verifies_with_data(self) -> int:
        count = 0
        for connection in self.connections:
            for command in connection.counter.commands:
                raw = command if isinstance(command, bytes) else command.encode()
                count += raw[1] == 0x20 and len(raw) > 4
        return count

    # -- the page --

    def body_state(self) -> str:
        from selenium.webdriver.common.by import By

        return str(self.driver.find_element(By.TAG_NAME, "body").get_attribute("data-state"))

    def wait_for(self, state: str, *words: str) -> None:
        """Wait until the page shows ``state`` with ``words``; keep its screenshot."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            WebDriverWait(self.driver, WAIT_SECONDS, poll_frequency=0.1).until(
                lambda driver: self.body_state() == state
            )
        except TimeoutException:
            self.shoot(f"timeout-waiting-for-{state}")
            raise AssertionError(
                f"{self.scenario}: the page shows {self.body_state()!r}, not {state!r}"
            ) from None
        text = self.driver.find_element(By.ID, "patient").text
        for word in words:
            assert word in text, f"{self.scenario}/{state}: {word!r} not in {text!r}"
        self.shoot(state)

    def shoot(self, state: str) -> None:
        self.driver.save_screenshot(str(self.artefacts / f"{self.scenario}--{state}.png"))

    def tap(self, css: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.CSS_SELECTOR, css).click()

    def tap_pin(self, pin: str) -> None:
        for digit in pin:
            self.tap(f'.digit[data-digit="{digit}"]')
        self.tap("#pin-submit")

    def start_scenario(self, name: str) -> None:
        self.scenario = name
        self.wait_for("waiting_for_card", "マイナンバーカードを置いてください")


def _chromium() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in CI: Chromium's sandbox refuses to run as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1366,900",
        "--lang=ja-JP",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(argument)
    # Debian's driver, given by path: Selenium Manager downloads nothing.
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.getbasetemp() / "artefacts" / "kiosk"
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    print(f"\nkiosk screenshots: {folder}")


@pytest.fixture(scope="module")
def rig(
    pcscd: PcscdSession, tmp_path_factory: pytest.TempPathFactory, artefacts: Path
) -> Iterator[CounterRig]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()) or shutil.which("chromedriver") is None:
        message = "the e2e tier needs Debian's chromium and chromium-driver (tools/setup.sh --e2e)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with SandboxCounter(tmp_path_factory.mktemp("e2e-counter")) as world:
        rig = CounterRig(world, artefacts)
        rig.bridge_files = OqsBridge(OqsFolders(world.folders), world.service)
        terminal = Terminal(
            world.service,
            rig.connect,
            institution_code=world.institution_code,
            reader=VPCD_READER,
            result_sink=rig.bridge_files.write_face,
            visual_check=True,
        )
        monitor = CardMonitor(initial_events=True)
        with TerminalRunner(terminal) as runner:
            monitor.subscribe(runner.card_event)
            with monitor, kiosk_for(runner) as kiosk:
                rig.kiosk = kiosk
                rig.driver = _chromium()
                try:
                    rig.driver.get(kiosk.url)
                    yield rig
                finally:
                    rig.driver.quit()
                    if rig.bridge is not None:
                        rig.bridge.stop()


def _finish(rig: CounterRig) -> None:
    """The holder takes the card; the counter waits for the next one."""
    rig.pull()
    rig.wait_for("waiting_for_card", "マイナンバーカードを置いてください")


def _up_to_pin(rig: CounterRig, holder: Holder, tries: str = "残り 3 回") -> None:
    rig.insert(holder)
    rig.wait_for("choosing_method", "本人確認の方法を選んでください")
    rig.tap('button[data-action="choose"][data-value="pin"]')
    rig.wait_for("entering_pin", "暗証番号（4桁）を入力してください", tries)


def _check(rig: CounterRig, holder: Holder, state: str, *words: str) -> None:
    """The holder enters the PIN, gives no consent, and the page shows ``state``."""
    _up_to_pin(rig, holder)
    rig.tap_pin(holder.persona.auth_pin)
    rig.wait_for("taking_consents")
    rig.tap("#consents-submit")
    rig.wait_for(state, *words)
    _finish(rig)


def _wrong(pin: str) -> str:
    return "".join(str((int(digit) + 1) % 10) for digit in pin)


# -- the scenarios ---------------------------------------------------------------------------------


def test_valid_patient(rig: CounterRig) -> None:
    rig.start_scenario("valid")
    holder = rig.world.new_holder("e2e-valid")
    _up_to_pin(rig, holder)
    rig.tap_pin(holder.persona.auth_pin)
    rig.wait_for("taking_consents", "情報提供への同意")
    rig.tap('#consents button[data-value="PharmacistsInfo"]')
    rig.tap("#consents-submit")
    rig.wait_for("showing_result", "資格確認が完了しました", "資格は有効です")
    from selenium.webdriver.common.by import By

    staff = rig.driver.find_element(By.ID, "staff").text
    assert "サンドボックス健康保険組合" in staff and "PharmacistsInfo" in staff
    assert "1 有効" in staff and "3割" in staff
    face_file = rig.driver.find_element(By.ID, "result-file").text
    assert rig.bridge_files is not None
    assert (rig.bridge_files.folders.face / face_file).is_file()
    assert holder.persona.name not in rig.driver.page_source  # no name on the counter's page
    rig.tap('button[data-action="acknowledge"]')
    rig.wait_for("waiting_for_removal", "カードをお取りください")
    _finish(rig)
    assert rig.body_state() == "waiting_for_card"


def test_expired_qualification(rig: CounterRig) -> None:
    rig.start_scenario("expired-qualification")
    holder = rig.world.new_holder("e2e-expired", qualification="expired")
    _check(rig, holder, "showing_result", "資格が無効です")


def test_revoked_certificate(rig: CounterRig) -> None:
    rig.start_scenario("revoked-certificate")
    holder = rig.world.new_holder("e2e-revoked")
    rig.world.revoke_card(holder)
    _check(rig, holder, "certificate_revoked", "電子証明書が失効しています")


def test_renewed_card(rig: CounterRig) -> None:
    rig.start_scenario("renewed-card")
    holder = rig.world.new_holder("e2e-renewed")
    rig.world.renew_card(holder)
    _check(rig, holder, "showing_result", "資格は有効です")


def test_blocked_pin(rig: CounterRig) -> None:
    rig.start_scenario("blocked-pin")
    holder = rig.world.new_holder("e2e-blocked")
    rig.world.block_pin(holder)
    rig.insert(holder)
    rig.wait_for("choosing_method")
    rig.tap('button[data-action="choose"][data-value="pin"]')
    rig.wait_for("pin_blocked", "暗証番号がロックされています", "市区町村")
    assert rig.verifies_with_data() == 0  # the counter was read, no try was spent
    # The receptionist confirms the face instead, on the staff side of the page.
    rig.tap('button[data-action="choose"][data-value="visual"]')
    rig.wait_for("visual_check", "職員が本人確認をします")
    for digit in holder.persona.birth_date_code:
        rig.tap(f'.staff-digit[data-digit="{digit}"]')
    rig.tap("#staff-submit")
    rig.wait_for("taking_consents")
    rig.tap("#consents-submit")
    rig.wait_for("showing_result", "資格は有効です")
    from selenium.webdriver.common.by import By

    assert rig.driver.find_element(By.ID, "result-method").text == "目視確認 Visual check"
    _finish(rig)


def test_wrong_pin_then_the_right_one(rig: CounterRig) -> None:
    rig.start_scenario("wrong-then-right-pin")
    holder = rig.world.new_holder("e2e-wrong-pin")
    _up_to_pin(rig, holder)
    rig.tap_pin(_wrong(holder.persona.auth_pin))
    rig.wait_for("wrong_pin", "暗証番号が違います", "残り2回")
    rig.tap_pin(holder.persona.auth_pin)
    rig.wait_for("taking_consents")
    assert rig.verifies_with_data() == 2
    rig.tap("#consents-submit")
    rig.wait_for("showing_result", "資格は有効です")
    _finish(rig)


def test_card_pulled_mid_pin(rig: CounterRig) -> None:
    rig.start_scenario("card-pulled-mid-pin")
    holder = rig.world.new_holder("e2e-pulled")
    _up_to_pin(rig, holder)
    rig.tap('.digit[data-digit="1"]')
    rig.tap('.digit[data-digit="2"]')
    rig.pull()
    rig.wait_for("card_pulled", "カードが取り出されました")
    assert rig.verifies_with_data() == 0
    rig.wait_for("waiting_for_card")


def test_service_stopped(rig: CounterRig) -> None:
    rig.start_scenario("service-stopped")
    holder = rig.world.new_holder("e2e-service-down")
    rig.world.stop_service()
    try:
        _up_to_pin(rig, holder)
        rig.tap_pin(holder.persona.auth_pin)
        rig.wait_for("service_unreachable", "資格確認サービスに接続できません")
        assert rig.verifies_with_data() == 0
    finally:
        rig.world.start_service()
    _finish(rig)


def test_nothing_survives_between_holders(rig: CounterRig) -> None:
    rig.start_scenario("next-holder")
    from selenium.webdriver.common.by import By

    result = rig.driver.find_element(By.ID, "result")
    assert not result.is_displayed()
    for field in (
        "result-consents",
        "result-insurer",
        "result-validity",
        "result-method",
        "result-file",
    ):
        assert rig.driver.find_element(By.ID, field).get_attribute("textContent") == "-"
    screenshots = sorted(path.name for path in rig.artefacts.glob("*.png"))
    assert len(screenshots) >= 20, screenshots
