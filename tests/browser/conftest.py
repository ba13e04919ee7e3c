"""The browser tests' fixtures: ``careflow up --seed-demo`` in its own process on free ports
(``seeded_cloud``), a headless Chromium driven through Debian's chromedriver (``browser``),
and ``screenshot`` (PNGs under test-output/browser/ at the repository root).

Selenium never downloads anything (no Selenium Manager, no telemetry): the driver is
Debian's ``chromium-driver`` and the browser Debian's ``chromium``, which ``make test``
installs (see the Makefile's ``browser-deps``)."""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from careflow.localcloud.cloud import free_port_run
from tests.e2e.support import CAREFLOW, ENV

# before selenium is imported: no usage statistics, and Selenium Manager never goes online
os.environ.setdefault("SE_AVOID_STATS", "true")
os.environ.setdefault("SE_OFFLINE", "true")

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "browser"
SEED_TIMEOUT = 180.0  # seconds until `seeded:`; the demo seeding takes most of it
STOP_TIMEOUT = 30.0
NOT_INSTALLED = (
    "headless Chromium is not installed: run make test "
    "(it installs Debian's chromium and chromium-driver)"
)


@dataclass
class SeededCloud:
    """``careflow up --seed-demo`` running in a subprocess, seeded and serving."""

    api_base: str  # http://127.0.0.1:<api port>, the /v1 API and the ops page
    port: int  # the local cloud (moto); its control endpoint is port + 1
    control_port: int
    api_port: int
    mllp_port: int
    process: subprocess.Popen[str]
    started_in: float  # seconds from the process start to its `seeded:` line
    output: collections.deque[str] = field(repr=False)  # its last output lines

    def last_output(self, lines: int = 40) -> str:
        return "".join(list(self.output)[-lines:])


def _ports() -> tuple[int, int, int]:
    """The cloud's run (port, port + 1), the API's (port + 2) and the MLLP listener's
    (port + 3): four free ports in a row below the kernel's ephemeral range, so that no
    client socket (seeding opens many) is handed the API's port before it binds, some
    20 s later (a fresh clone's run once lost it that way)."""
    port = free_port_run(4)
    return port, port + 2, port + 3


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGINT (``careflow up`` stops its servers and prints `stopped`), then kill."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _chromium() -> tuple[str, str]:
    """Debian's chromium and chromedriver on PATH, else the test fails with one line."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        pytest.fail(NOT_INSTALLED, pytrace=False)
    return chromium, chromedriver


@pytest.fixture(scope="session")
def seeded_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededCloud]:
    """One ``careflow up --seed-demo`` per test process (each xdist worker its own), on
    free ports, in its own working directory and HOME; stopped at the session's end."""
    _chromium()  # no browser, no use seeding for it: fail at once
    port, api_port, mllp_port = _ports()
    home = tmp_path_factory.mktemp("careflow-up")
    env = {**ENV, "HOME": str(home)}  # the e2e tests' environment, a home of its own
    env.pop("CAREFLOW_ENDPOINT", None)  # --port says where
    command = [
        CAREFLOW,
        "up",
        "--seed-demo",
        "--port",
        str(port),
        "--api-port",
        str(api_port),
        "--mllp-port",
        str(mllp_port),
    ]
    started = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=home,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: collections.deque[str] = collections.deque(maxlen=200)
    seeded = threading.Event()

    def _read() -> None:  # to its end, so that the pipe never fills while the tests run
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if line.startswith("seeded:"):
                seeded.set()

    reader = threading.Thread(target=_read, name="careflow-up-output", daemon=True)
    reader.start()
    try:
        while not seeded.wait(0.2):
            if proc.poll() is not None:
                reader.join(5)
                pytest.fail(
                    f"careflow up --seed-demo exited ({proc.returncode}) before `seeded:`:\n"
                    + "".join(list(output)[-40:]),
                    pytrace=False,
                )
            if time.monotonic() - started > SEED_TIMEOUT:
                pytest.fail(
                    f"careflow up --seed-demo printed no `seeded:` in {SEED_TIMEOUT:.0f} s:\n"
                    + "".join(list(output)[-40:]),
                    pytrace=False,
                )
        cloud = SeededCloud(
            api_base=f"http://127.0.0.1:{api_port}",
            port=port,
            control_port=port + 1,
            api_port=api_port,
            mllp_port=mllp_port,
            process=proc,
            started_in=time.monotonic() - started,
            output=output,
        )
        print(f"careflow up --seed-demo seeded in {cloud.started_in:.1f} s", file=sys.stderr)
        yield cloud
    finally:
        stopping = time.monotonic()
        _stop(proc)
        reader.join(5)
        print(
            f"careflow up stopped ({proc.returncode}) in {time.monotonic() - stopping:.1f} s: "
            + "".join(list(output)[-2:]).strip().replace("\n", " | "),
            file=sys.stderr,
        )


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    """A headless Chromium WebDriver (Debian's chromium through Debian's chromedriver)."""
    chromium, chromedriver = _chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--metrics-recording-only",
    ):
        options.add_argument(argument)
    service = Service(executable_path=chromedriver, log_output=str(tmp_path / "chromedriver.log"))
    started = time.monotonic()
    driver = webdriver.Chrome(service=service, options=options)
    print(f"headless Chromium started in {time.monotonic() - started:.2f} s", file=sys.stderr)
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()  # the browser, then chromedriver (Service.stop)


def screenshot(driver: object, name: str) -> Path:
    """The page as a PNG: test-output/browser/<name>.png at the repository root."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9._-]+', '-', name).strip('-')}.png"
    if not driver.save_screenshot(str(path)):  # type: ignore[attr-defined]
        pytest.fail(f"the screenshot {path} was not saved", pytrace=False)
    return path
