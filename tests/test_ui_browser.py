"""The dashboard in a real browser: Debian's headless chromium driven by Selenium.

The pages are served by uvicorn in a thread, over real runs. Any SEVERE entry in the
browser's console (a script error, a failed load) fails the test. Each page's screenshot
is saved in the test's temporary directory; with ``PTDRY_UI_SCREENSHOTS=docs/img`` they are
also copied there (the pictures in docs/ui.md).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import sys
import tempfile
import threading
import time
import uuid

import pytest

from ptdry.db.interface import DBInterface

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _ui_runs import make_runs  # noqa: E402

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,900",
]  # fmt: skip


@pytest.fixture(scope="module")
def site():
    """``(base URL, run ids)`` of a dashboard with real runs, served by uvicorn in a thread."""
    import uvicorn

    from ptdry.ui.app import create_app
    from ptdry.ui.server import bind

    db = DBInterface(f"mongomock://ui-browser-{uuid.uuid4().hex[:8]}")
    ids = make_runs(db)
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(db), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", ids
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="ptdry-chromium-")
    options = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser, site):
    """The browser, checked after the test: no SEVERE console entry (``allowed`` may list
    substrings of entries a test expects, e.g. the 400 of a bad query)."""
    browser.get_log("browser")  # drop what earlier tests left
    allowed: list[str] = []
    yield browser, allowed
    severe = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    unexpected = [m for m in severe if not any(a in m for a in allowed)]
    assert not unexpected, "errors in the browser console:\n" + "\n".join(unexpected)


def wait_for(driver, script, timeout=15.0):
    """Poll a JavaScript expression until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return {script}")
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for: {script}"
        time.sleep(0.1)


def screenshot(driver, tmp_path, name):
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(height + 120, 600), 2400))
    time.sleep(0.3)  # the charts follow the new size
    path = tmp_path / f"ui-{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 900)
    target = os.environ.get("PTDRY_UI_SCREENSHOTS")
    if target:
        shutil.copy(path, pathlib.Path(target) / path.name)
    assert path.stat().st_size > 10_000
    return path


ROWS = "[...document.querySelectorAll('#runs tbody tr')].map(r => r.dataset.id)"
#: Pixels a chart's canvas has drawn (not transparent), over all charts on the page.
DRAWN = """(window.ptdryCharts || []).length && Math.min(...window.ptdryCharts.map(u => {
    const c = u.ctx.canvas, d = u.ctx.getImageData(0, 0, c.width, c.height).data;
    let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }))"""


def test_the_runs_page_filters_with_the_where_language(page, site, tmp_path):
    driver, allowed = page
    base, ids = site
    driver.get(base + "/")
    assert len(wait_for(driver, f"{ROWS}.length === 4 && {ROWS}")) == 4
    box = driver.find_element("name", "where")
    box.send_keys("trainer.model.optimizer.lr < 2e-2 and status = completed\n")
    shown = wait_for(driver, f"{ROWS}.length === 2 && {ROWS}")
    assert set(shown) == {ids["slow"], ids["fast"]}
    headers = driver.execute_script("return [...document.querySelectorAll('#runs th')].map(h => h.textContent)")
    assert "trainer.model.optimizer.lr" in headers and "val.accuracy" in headers
    assert "where=trainer.model.optimizer.lr" in driver.current_url  # shareable
    screenshot(driver, tmp_path, "runs")


def test_a_bad_query_is_explained_under_the_box_at_its_column(page, site):
    driver, allowed = page
    allowed.append("status of 400")  # the API's answer to the bad query
    base, _ = site
    driver.get(base + "/")
    wait_for(driver, f"{ROWS}.length === 4")
    driver.find_element("name", "where").send_keys("lr < 1e-3 and\n")
    message = wait_for(driver, "document.getElementById('where-error').textContent")
    assert message.splitlines()[0] == "lr < 1e-3 and"
    assert message.splitlines()[1] == " " * 13 + "^ expected a field name (like lr or trainer.optimizer.lr), found the end of the expression at column 14 in --where 'lr < 1e-3 and'"


def test_sorting_by_a_column_header(page, site):
    driver, _ = page
    base, ids = site
    driver.get(base + "/?name=digits")
    wait_for(driver, f"{ROWS}.length === 3")
    driver.find_element("css selector", "th[data-field='trainer.model.optimizer.lr']").click()
    assert wait_for(driver, f"{ROWS}[0] === '{ids['failed']}' && {ROWS}")[-1] == ids["slow"]  # highest lr first
    driver.find_element("css selector", "th[data-field='trainer.model.optimizer.lr']").click()
    wait_for(driver, f"{ROWS}[0] === '{ids['slow']}'")


def test_a_run_page_draws_the_curves_of_every_metric(page, site, tmp_path):
    driver, _ = page
    base, ids = site
    driver.get(base + "/")
    wait_for(driver, f"{ROWS}.length === 4")
    driver.find_element("css selector", f"tr[data-id='{ids['fast']}'] a").click()
    wait_for(driver, "document.querySelectorAll('.chart canvas').length >= 2")
    titles = wait_for(driver, "window.ptdryCharts.length >= 2 && window.ptdryCharts.map(u => u.ptdryTitle)")
    assert {"loss", "accuracy"} <= set(titles)
    assert wait_for(driver, DRAWN) > 200  # lines drawn on every canvas
    series = driver.execute_script("return window.ptdryCharts.map(u => u.series.slice(1).map(s => s.label)).flat()")
    assert {"train.loss", "val.loss", "val.accuracy"} <= set(series)
    text = driver.find_element("id", "main").text
    assert "digits v2" in text and "trainer" in text and "checkpoint/" in text
    screenshot(driver, tmp_path, "run")


def test_the_curve_controls_log_scale_smoothing_epochs_and_zoom(page, site):
    from selenium.webdriver import ActionChains

    driver, _ = page
    base, ids = site
    driver.get(f"{base}/runs/{ids['slow']}")
    wait_for(driver, DRAWN)
    driver.find_element("name", "log-scale").click()
    assert wait_for(driver, "window.ptdryCharts.length && window.ptdryCharts[0].scales.y.distr") == 3
    driver.execute_script("const s = document.querySelector('[name=smoothing]'); s.value = '0.6'; s.dispatchEvent(new Event('input'))")
    labels = wait_for(driver, "window.ptdryCharts.length && window.ptdryCharts[0].series.map(s => s.label)")
    assert any(label.endswith("(raw)") for label in labels)
    driver.find_element("css selector", "select[name=x-axis] option[value=epoch]").click()
    assert wait_for(driver, "window.ptdryCharts.length && window.ptdryCharts[0].axes[0].label") == "epoch"
    before = driver.execute_script("const x = window.ptdryCharts[0].scales.x; return x.max - x.min")
    over = driver.find_element("css selector", ".chart .u-over")
    ActionChains(driver).move_to_element_with_offset(over, -over.size["width"] // 4, 0).click_and_hold().move_by_offset(
        over.size["width"] // 4, 0
    ).release().perform()
    after = wait_for(driver, f"window.ptdryCharts.length && (() => {{ const x = window.ptdryCharts[0].scales.x; const r = x.max - x.min; return r < {before} * 0.7 && r; }})()")
    assert 0 < after < before


def test_a_failed_run_shows_its_error_and_traceback(page, site):
    driver, _ = page
    base, ids = site
    driver.get(f"{base}/runs/{ids['failed']}")
    error = wait_for(driver, "document.getElementById('error') && document.getElementById('error').textContent")
    assert "RuntimeError: loss exploded at step 5" in error and "Traceback (most recent call last)" in error


def test_two_runs_selected_in_the_table_are_compared(page, site, tmp_path):
    driver, _ = page
    base, ids = site
    driver.get(base + "/?name=digits")
    wait_for(driver, f"{ROWS}.length === 3")
    for key in ("slow", "fast"):
        driver.find_element("css selector", f"input.select[data-id='{ids[key]}']").click()
    driver.find_element("id", "compare").click()
    wait_for(driver, "location.pathname === '/compare'")
    assert wait_for(driver, DRAWN) > 200
    overlaid = driver.execute_script("return window.ptdryCharts.map(u => u.series.length - 1)")
    assert max(overlaid) == 2  # one curve per run
    diff = wait_for(driver, "document.getElementById('config-diff') && document.getElementById('config-diff').textContent")
    assert "trainer.model.optimizer.lr" in diff and "0.003" in diff and "0.01" in diff
    assert wait_for(driver, "document.querySelectorAll('#parcoords path.run').length") == 2
    screenshot(driver, tmp_path, "compare")
