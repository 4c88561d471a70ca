"""End to end in a real browser: `streamlit run` headless on a free port, driven by Debian's
Chromium through Playwright. Builds the small demo, moves the N slider and sees the crop count
change, trains a short run and sees it finish, opens the comparison page and sees two GradCAM
images. Screenshots of every page go to a temporary folder, or to docs/screenshots/ (linked
from the README) when LADD_SCREENSHOTS=docs is set, so a plain test run leaves the tree clean:

    LADD_SCREENSHOTS=docs LADD_E2E_DEMO_SIZE=full .venv/bin/python -m pytest tests/browser
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("LADD_SCREENSHOTS") == "docs"
    else Path(os.environ.get("TMPDIR", "/tmp")) / "ladd-e2e-screenshots"
)
CHROME_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEMO_SIZE = os.environ.get("LADD_E2E_DEMO_SIZE", "small")
JOB_TIMEOUT_MS = 420_000

if not CHROMIUM.exists():
    pytest.skip(
        "Debian chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
        allow_module_level=True,
    )
try:
    from playwright.sync_api import expect, sync_playwright
except ImportError as err:  # pragma: no cover - depends on the environment
    pytest.skip(f"playwright cannot be imported ({err})", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The dashboard on a free port over an empty workspace; yields its base URL."""
    port = free_port()
    workspace = tmp_path_factory.mktemp("e2e-workspace")
    env = {**os.environ, "LADD_WORKSPACE": str(workspace), "PYTHONUNBUFFERED": "1"}
    env.pop("LADD_CACHE_DIR", None)
    log = open(workspace / "streamlit.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app/main.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.flush()
                pytest.fail(
                    f"streamlit did not start:\n{(workspace / 'streamlit.log').read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROME_ARGS)
        yield b
        b.close()


def settle(page, timeout: float = 60) -> None:
    """Wait until the app has stopped running its script (the status widget is gone)."""
    page.wait_for_load_state("networkidle")
    deadline = time.time() + timeout
    quiet_since = None
    while time.time() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.time()
        elif time.time() - quiet_since > 0.8:
            return
        time.sleep(0.2)


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def metric_value(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]', has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def go(page, base: str, url_path: str) -> None:
    page.goto(f"{base}/{url_path}")
    page.locator('[data-testid="stApp"]').wait_for()
    settle(page)


def test_dashboard_end_to_end(server, browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1600}, color_scheme="light")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    # Home: build the demo in the background and watch it finish.
    go(page, server, "")
    expect(page.get_by_role("heading", name="LADD Studio")).to_be_visible()
    page.get_by_role("radio", name=DEMO_SIZE, exact=True).click()
    settle(page)
    page.get_by_role("button", name="Build the demo").click()
    expect(page.get_by_text(re.compile(r"Demo \(shapes, \w+\): done in"))).to_be_visible(
        timeout=JOB_TIMEOUT_MS
    )
    settle(page)
    shot(page, "home")

    # Distilled images.
    go(page, server, "distilled")
    expect(page.get_by_text("Format detected")).to_be_visible(timeout=60_000)
    page.locator(".stPlotlyChart").first.wait_for()
    shot(page, "distilled")

    # Sub-sampling: move the N slider, the crop count follows.
    go(page, server, "subsampling")
    expect(page.locator('[data-testid="stMetric"]', has_text="Labels per image")).to_be_visible(
        timeout=60_000
    )
    before = int(metric_value(page, "Labels per image"))
    slider = page.get_by_role("slider", name="N (crops per side)")
    slider.focus()
    slider.press("ArrowLeft")
    settle(page)
    expect(
        page.locator('[data-testid="stMetric"]', has_text="Labels per image").locator(
            '[data-testid="stMetricValue"]'
        )
    ).not_to_have_text(str(before), timeout=30_000)
    after = int(metric_value(page, "Labels per image"))
    n_before = round(before**0.5)
    assert after == (n_before - 1) ** 2
    assert "sub_n=" in page.url  # the view is in the URL
    shot(page, "subsampling")

    # Soft labels across labeler epochs.
    go(page, server, "soft-labels")
    expect(page.get_by_text("Over the whole set, per labeler epoch")).to_be_visible(timeout=120_000)
    settle(page, 120)
    shot(page, "soft_labels")

    # Deployment training: a short run in the background, then it is in the runs table.
    go(page, server, "training")
    epochs = page.get_by_label("Epochs")
    epochs.fill("2")
    epochs.press("Enter")
    settle(page)
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_text(re.compile(r"Training: .*: done in"))).to_be_visible(
        timeout=JOB_TIMEOUT_MS
    )
    settle(page)
    shot(page, "training")

    # Compare: the demo's baseline against the demo's LADD run, two GradCAM overlays side by side.
    go(page, server, "compare")
    page.locator('[data-testid="stSelectbox"]', has_text="Run B").click()
    page.get_by_role("option", name=re.compile("demo ladd")).click()
    settle(page)
    assert "cmp_b=" in page.url
    cams = page.locator(".st-key-cam_section .stPlotlyChart")
    expect(cams).to_have_count(2, timeout=120_000)
    expect(page.get_by_text("GradCAM of").first).to_be_visible()
    settle(page)
    shot(page, "compare")
    page.locator(".st-key-cam_section").scroll_into_view_if_needed()
    page.locator(".st-key-cam_section").screenshot(path=str(SHOTS / "compare_cams.png"))
    # The same view in the dark theme (no theme base is set, so Streamlit follows the system).
    dark = browser.new_context(viewport={"width": 1440, "height": 1600}, color_scheme="dark")
    dpage = dark.new_page()
    go(dpage, server, "compare?" + page.url.split("?", 1)[1])  # the shared view, by its URL
    expect(dpage.locator(".st-key-cam_section .stPlotlyChart")).to_have_count(2, timeout=120_000)
    settle(dpage)
    shot(dpage, "compare_dark")
    dark.close()

    assert not page.locator('[data-testid="stException"]').count()
    assert not errors, errors
    context.close()
