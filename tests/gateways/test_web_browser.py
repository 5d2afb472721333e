"""The web page in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``)
driven by Selenium, against the real gateway and a real simulated service.

Screenshots at 360×740 (a phone) and 1280×800, light and dark, go to ``test-artifacts/web/``
(ignored by git) for a person to look at. Selenium is given the driver and the browser
explicitly, so Selenium Manager never tries to download anything. Deselect these tests locally
with ``-m 'not browser'``; under ``CI=true`` a missing browser fails them.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateways.webgateway import TOKEN, WebGateway, cli_ok, service_env, status_json
from tests.helpers import REPO, ServiceProcess, wait_until
from tests.servers import unavailable

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = REPO / "test-artifacts" / "web"
CHROME_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    unavailable("chromium is not installed (apt install chromium chromium-driver)")


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install -e '.[test]')")
    binary = _chromium()
    if not CHROMEDRIVER.is_file():
        unavailable(f"{CHROMEDRIVER} is missing (apt install chromium-driver)")
    profile = tempfile.mkdtemp(prefix="fc-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (*CHROME_ARGS, f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    previous = os.environ.get("SE_OFFLINE")
    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager reach the network
    try:
        browser = webdriver.Chrome(
            service=Service(executable_path=str(CHROMEDRIVER)), options=options
        )
    finally:
        if previous is None:
            os.environ.pop("SE_OFFLINE", None)
        else:
            os.environ["SE_OFFLINE"] = previous
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def box() -> Iterator[tuple[ServiceProcess, WebGateway]]:
    service = ServiceProcess(env=service_env(storage__commit_interval="1")).start()
    gateway = WebGateway(service)
    try:
        gateway.start()
        yield service, gateway
    finally:
        gateway.stop()
        service.cleanup()


def viewport(driver: Any, width: int, height: int, dark: bool = False) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )
    scheme = "dark" if dark else "light"
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
    )


def text(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    value: str = driver.find_element(By.ID, element_id).text
    return value


def shown(driver: Any, element_id: str) -> bool:
    from selenium.webdriver.common.by import By

    return bool(driver.find_element(By.ID, element_id).is_displayed())


def click(driver: Any, css: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, css).click()


def open_page(driver: Any, web: WebGateway) -> None:
    driver.get(web.url + "/")
    wait_until(lambda: text(driver, "conn-text") == "live", timeout=20, what="the page to go live")


def severe_console_messages(driver: Any) -> list[str]:
    """Script errors and CSP violations (an HTTP error answer the page expects is not one)."""
    return [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]
    ]


def test_the_page_shows_the_reading_and_updates_it_live(
    driver: Any, box: tuple[ServiceProcess, WebGateway]
) -> None:
    service, web = box
    viewport(driver, 360, 740)
    cli_ok(service, "sim", "set", "--temperature", "20", "--humidity", "33.3")
    open_page(driver, web)
    wait_until(
        lambda: (text(driver, "temp"), text(driver, "hum")) == ("20.0", "33.3"),
        what="20.0 °C / 33.3 % on the page",
    )
    assert text(driver, "temp-f") == "68.0 °F"
    assert text(driver, "box-name") == "default"
    assert re.fullmatch(r"read [\d.]+ s ago", text(driver, "age"))
    assert not shown(driver, "banner")
    assert not shown(driver, "drying-card")  # this service's status has no drying section
    driver.execute_script("window.notReloaded = true")

    cli_ok(service, "sim", "set", "--temperature", "25", "--humidity", "40")
    wait_until(
        lambda: (text(driver, "temp"), text(driver, "hum")) == ("25.0", "40.0"),
        what="the page to follow sim set without a reload",
    )
    assert driver.execute_script("return window.notReloaded") is True
    cli_ok(service, "sim", "clear")
    assert severe_console_messages(driver) == []  # no CSP violation, no script error

    # The CSP holds: an injected inline script does not run, and the browser reports it.
    driver.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.pwned = 1';"
        "document.body.append(s)"
    )
    assert driver.execute_script("return window.pwned") is None
    assert any("Content Security Policy" in m for m in severe_console_messages(driver))


def test_switching_the_heater_from_the_page_needs_a_login(
    driver: Any, box: tuple[ServiceProcess, WebGateway]
) -> None:
    from selenium.webdriver.common.by import By

    service, web = box
    viewport(driver, 360, 740)
    open_page(driver, web)
    click(driver, 'button[data-relay="heater"][data-action="on"]')
    wait_until(lambda: shown(driver, "login-panel"), what="the login form")
    assert "switch the heater" in text(driver, "login-why")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "login-360x740.png"))
    assert status_json(service)["heater"]["mode"] == "auto"

    token = driver.find_element(By.ID, "token")
    token.send_keys("wrong-token-wrong-token")
    click(driver, "#login-form button[type=submit]")
    wait_until(lambda: "wrong token" in text(driver, "login-error"), what="the login error")
    token.clear()
    token.send_keys(TOKEN)
    click(driver, "#login-form button[type=submit]")
    wait_until(lambda: not shown(driver, "login-panel"), what="the login to succeed")
    assert shown(driver, "logout-button")
    cookies = {c["name"]: c for c in driver.get_cookies()}
    assert cookies["filamentctl_default"]["httpOnly"] is True
    assert cookies["filamentctl_default"]["sameSite"] == "Strict"
    assert driver.execute_script("return document.cookie") == ""  # HttpOnly: not for scripts

    click(driver, 'button[data-relay="heater"][data-action="on"]')
    wait_until(lambda: shown(driver, "confirm"), what="the confirmation dialog")
    driver.save_screenshot(str(ARTIFACTS / "confirm-heater-on-360x740.png"))
    click(driver, "#confirm-ok")
    wait_until(lambda: text(driver, "heater-state") == "ON", what="the heater ON on the page")
    heater = status_json(service)["heater"]
    assert heater["mode"] == "manual" and heater["on"] is True
    pressed = driver.find_element(By.CSS_SELECTOR, 'button[data-relay="heater"][data-action="on"]')
    assert pressed.get_attribute("aria-pressed") == "true"

    click(driver, 'button[data-relay="heater"][data-action="auto"]')
    wait_until(lambda: status_json(service)["heater"]["mode"] == "auto", what="heater auto")
    assert severe_console_messages(driver) == []


def _chart_drawn(driver: Any) -> bool:
    from selenium.webdriver.common.by import By

    paths = driver.find_elements(By.CSS_SELECTOR, "#chart-temp path.series, #chart-hum path.series")
    return len(paths) == 2 and all(p.get_attribute("d").count("L") >= 1 for p in paths)


def test_screenshots_at_phone_and_desktop_sizes(
    driver: Any, box: tuple[ServiceProcess, WebGateway]
) -> None:
    from selenium.webdriver.common.by import By

    _, web = box
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width, height, dark in ((360, 740, False), (1280, 800, False), (360, 740, True)):
        viewport(driver, width, height, dark)
        open_page(driver, web)
        wait_until(lambda: _chart_drawn(driver), timeout=40, what="both charts drawn")
        # Mobile first: nothing sticks out sideways on a 360 px phone.
        assert driver.execute_script("return document.documentElement.scrollWidth") <= width
        name = f"dashboard-{width}x{height}{'-dark' if dark else ''}.png"
        assert driver.save_screenshot(str(ARTIFACTS / name))
    click(driver, 'button[data-range="21600"]')
    six = driver.find_element(By.CSS_SELECTOR, 'button[data-range="21600"]')
    assert six.get_attribute("aria-pressed") == "true"
    wait_until(lambda: "last 6 h" in text(driver, "temp-summary"), what="the 6 h chart")
    # Everything the page loaded came from the gateway itself: the page, its three static
    # files and the API (bench/web_gateway.py weighs exactly these).
    names = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    paths = {re.sub(r"^https?://[^/]+", "", n).split("?")[0] for n in names}
    assert paths <= {
        "/static/app.css",
        "/static/app.js",
        "/static/icon.svg",
        "/api/session",
        "/api/status",
        "/api/history",
        "/api/events",
    }, paths
    assert severe_console_messages(driver) == []


def test_the_page_says_disconnected_while_the_service_is_down_and_recovers(
    driver: Any, box: tuple[ServiceProcess, WebGateway]
) -> None:
    service, web = box
    viewport(driver, 360, 740)
    open_page(driver, web)
    service.stop()
    try:
        wait_until(lambda: shown(driver, "banner"), timeout=20, what="the disconnected banner")
        assert text(driver, "banner").startswith("Disconnected")
        assert text(driver, "conn-text") == "disconnected"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "disconnected-360x740.png"))
    finally:
        service.start()
    wait_until(lambda: not shown(driver, "banner"), timeout=40, what="the page to reconnect")
    assert text(driver, "conn-text") == "live"
