"""End to end: the dashboard (firmware/www/index.html) in headless Chromium against the simulator.

Starts `python tools/simulate.py --host 127.0.0.1 --port PORT` (MICROWS_SIMULATOR=path
replaces the script, e.g. with a mock device), opens http://127.0.0.1:PORT/ and checks:
the page goes live, the charts receive points at the set rate, the LED toggle reaches
the device and is acknowledged, a rate change changes the stream, and stopping and
restarting the simulator on the same port reconnects the page without a reload.
Writes a screenshot of the live page to artifacts/dashboard.png.

Needs Debian's Chromium and the Python playwright package (never `playwright install`):

    apt-get install -y chromium
    python3 -m pip install playwright

Without them these tests (only these) are skipped, with a warning. MICROWS_CHROMIUM
names another Chromium binary.
"""

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INSTALL = "apt-get install -y chromium && python3 -m pip install playwright  (do not run `playwright install`)"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-proxy-server",
]


def _find_chromium():
    for candidate in (os.environ.get("MICROWS_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


CHROMIUM = _find_chromium()
_missing = []
if importlib.util.find_spec("playwright") is None:
    _missing.append("the Python package playwright")
if CHROMIUM is None:
    _missing.append("Chromium (/usr/bin/chromium)")
if _missing:
    _reason = "dashboard browser tests SKIPPED: %s not installed; install with: %s" % (" and ".join(_missing), INSTALL)
    warnings.warn(_reason)
    sys.stderr.write("\n*** WARNING: %s ***\n" % _reason)
    pytest.skip(_reason, allow_module_level=True)

from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

_spec = importlib.util.spec_from_file_location("build_www", os.path.join(ROOT, "tools", "build_www.py"))
build_www = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_www)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Simulator:
    """The simulator as a child process on a fixed port; start, stop, start again."""

    def __init__(self, port, log_dir, extra_args=()):
        self.extra_args = list(extra_args)
        script = os.environ.get("MICROWS_SIMULATOR") or os.path.join("tools", "simulate.py")
        self.script = os.path.join(ROOT, script)
        self.port = port
        self.log_path = os.path.join(log_dir, "simulator.log")
        self.proc = None

    def start(self, timeout=20.0):
        if not os.path.isfile(self.script):
            pytest.fail("simulator not found: %s (set MICROWS_SIMULATOR to another script)" % self.script)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, self.script, "--host", "127.0.0.1", "--port", str(self.port)] + self.extra_args,
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("the simulator exited with %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        pytest.fail("the simulator did not listen on port %d within %.0f s:\n%s" % (self.port, timeout, self.log()))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""


class Dashboard:
    def __init__(self, page, sim):
        self.page = page
        self.sim = sim
        self.errors = []
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def js(self, expression, arg=None):
        return self.page.evaluate(expression, arg)

    def wait(self, predicate, arg=None, timeout=10.0, what="condition"):
        try:
            self.page.wait_for_function(predicate, arg=arg, timeout=timeout * 1000, polling=100)
            return
        except PlaywrightTimeout:
            pass
        pytest.fail("timed out (%.0f s) waiting for %s; page: %s\nsimulator log:\n%s"
                    % (timeout, what, self.snapshot(), self.sim.log()), pytrace=False)

    def snapshot(self):
        return self.js("""() => ({state: document.querySelector('#state').dataset.state,
            text: document.querySelector('#state').textContent,
            status: document.querySelector('#status').textContent,
            received: document.querySelector('#received-rate').textContent,
            points: [...document.querySelectorAll('[data-sensor]')].map(e => e.dataset.points)})""")

    def state(self):
        return self.js("() => document.querySelector('#state').dataset.state")

    def points(self):
        """Points received so far: the most of any chart (a sensor may fail a read now and then)."""
        return self.js("() => Math.max(0, ...[...document.querySelectorAll('[data-sensor]')]"
                       ".map(e => +e.dataset.points))")

    def received_rate(self):
        return float(self.page.text_content("#received-rate"))

    def wait_live(self, timeout=10.0):
        self.wait("() => document.querySelector('#state').dataset.state === 'live'", timeout=timeout, what="live")

    def command(self, action, what, timeout=5.0):
        """Do action (a click...), then wait for the device's ack of that command on #status."""
        before = self.js("() => document.querySelector('#status').dataset.id || ''")
        action()
        self.wait("""(before) => { const s = document.querySelector('#status');
                      return s.dataset.id && s.dataset.id !== before && s.dataset.kind !== 'pending'; }""",
                  arg=before, timeout=timeout, what="an answer to " + what)
        kind = self.js("() => document.querySelector('#status').dataset.kind")
        text = self.page.text_content("#status")
        assert kind == "ack", "the device answered %s with an error: %s" % (what, text)
        return text

    def set_rate(self, rate):
        self.page.fill("#rate-input", str(rate))
        return self.command(lambda: self.page.click("#rate-apply"), "rate %s" % rate)

    def count(self, seconds):
        """Points received over seconds, as a rate."""
        p0, t0 = self.points(), time.monotonic()
        self.page.wait_for_timeout(seconds * 1000)
        p1, t1 = self.points(), time.monotonic()
        return (p1 - p0) / (t1 - t0)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def dash(browser, tmp_path_factory):
    build_www.build(os.path.join(ROOT, "firmware", "www"))  # the simulator serves the .gz: never a stale one
    sim = Simulator(free_port(), str(tmp_path_factory.mktemp("simulator")))
    sim.start()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(10000)
        dashboard = Dashboard(page, sim)
        page.goto("http://127.0.0.1:%d/" % sim.port)
        yield dashboard
        page.close()
        assert not dashboard.errors, "JavaScript errors on the page: %s" % dashboard.errors
    finally:
        sim.stop()


def rate_limits(dash):
    lo = float(dash.page.get_attribute("#rate-input", "min"))
    hi = float(dash.page.get_attribute("#rate-input", "max"))
    return lo, hi


def clamp(rate, limits):
    return min(max(rate, limits[0]), limits[1])


def test_page_goes_live_and_shows_the_sensors(dash):
    dash.wait_live()
    assert dash.js("() => document.querySelectorAll('[data-sensor] canvas').length") >= 1
    dash.wait("() => [...document.querySelectorAll('[data-sensor]')].some(e => +e.dataset.points >= 2)",
              timeout=10.0, what="the first samples")
    assert dash.page.is_enabled("#rate-apply") or dash.page.is_visible("#readonly")
    # the info panel is filled after connecting
    dash.wait("() => document.querySelector('#info [data-field=board]').textContent !== '–'", what="device info")


def test_charts_receive_points_at_the_set_rate(dash):
    dash.wait_live()
    rate = clamp(5.0, rate_limits(dash))
    assert "Rate set to" in dash.set_rate(rate)
    dash.page.wait_for_timeout(600)  # let the new rate settle
    measured = dash.count(3.0)
    assert rate * 0.6 - 0.5 <= measured <= rate * 1.4 + 0.5, "%.2f points/s at %s Hz" % (measured, rate)
    assert abs(dash.received_rate() - rate) <= rate * 0.3 + 0.3, dash.snapshot()


def test_led_toggle_reaches_the_device(dash):
    dash.wait_live()
    toggle = dash.page.locator("#led-toggle")
    if toggle.count() == 0:
        toggle = dash.page.locator("[data-output]").first
    assert toggle.count() == 1, "the device has no output to switch"
    name = toggle.get_attribute("data-output")
    was = toggle.get_attribute("aria-checked") == "true"
    text = dash.command(toggle.click, "switching %s" % name)
    assert name in text.lower() and ("on" if not was else "off") in text
    want = "false" if was else "true"
    dash.wait("([name, want]) => document.querySelector('[data-output=\"' + name + '\"]').getAttribute('aria-checked') === want",
              arg=[name, want], what="the toggle to show the new state")
    dash.command(lambda: dash.page.click("#info-refresh"), "info")
    shown = dash.page.text_content('#info [data-field="outputs"]')
    assert "%s %s" % (name, "off" if was else "on") in shown, shown


def test_rate_change_changes_the_stream(dash):
    dash.wait_live()
    limits = rate_limits(dash)
    slow, fast = clamp(2.0, limits), clamp(10.0, limits)
    if fast == slow:
        pytest.skip("the device allows a single rate: %s" % (limits,))
    for rate in (fast, slow):
        dash.set_rate(rate)
        assert dash.page.text_content("#device-rate") == ("%g" % rate)
        dash.wait("(r) => Math.abs(+document.querySelector('#received-rate').textContent - r) <= r * 0.2 + 0.2",
                  arg=rate, timeout=8.0, what="the received rate to reach %s Hz" % rate)
        if rate == fast:
            measured = dash.count(2.5)
            assert rate * 0.6 <= measured <= rate * 1.4, "%.2f points/s at %s Hz" % (measured, rate)
            os.makedirs(os.path.join(ROOT, "artifacts"), exist_ok=True)
            dash.page.screenshot(path=os.path.join(ROOT, "artifacts", "dashboard.png"))


def test_a_refused_command_is_matched_to_what_the_page_sent(dash):
    """Commands beyond the device's rate limit are answered with an error that
    carries their id: the page says why, never "No answer to ..."."""
    dash.wait_live()
    dash.js("() => { for (let i = 0; i < 25; i++) send({ cmd: 'info' }, false, 'Asking for device info'); }")
    dash.wait("() => /too many commands/.test(document.querySelector('#status').textContent)",
              timeout=5.0, what="the rate limit's error on #status")
    dash.wait("() => Object.keys(pending).length === 0", timeout=4.0,
              what="every command, refused ones too, to be matched to its answer")
    dash.page.wait_for_timeout(5500)  # past the page's 5 s answer timeout
    assert "No answer" not in dash.page.text_content("#status")
    dash.page.wait_for_timeout(2200)  # let the device's limiter refill for the tests after


def test_a_failing_sensor_shows_its_error_on_its_card(dash):
    """The stream's "e" (firmware/PROTOCOL.md) reaches the card: sensor error: <reason>."""
    dash.wait_live()
    first = dash.js("() => hello.sensors[0].name")
    card = '[data-sensor="%s"] .mm' % first
    failed = """() => { const n = hello.sensors.length, v = Array(n).fill(1), e = Array(n).fill(null);
        v[0] = null; e[0] = "OSError: [Errno 19] ENODEV";
        onMessage(JSON.stringify({ t: "s", seq: lastSeq + 1, ms: lastMs + 1, v, e })); }"""
    dash.js(failed)
    dash.wait("(sel) => document.querySelector(sel).textContent === 'sensor error: OSError: [Errno 19] ENODEV'",
              arg=card, timeout=3.0, what="the sensor error on the card")
    # the device's next real sample (no "e"): the card recovers
    dash.wait("(sel) => !document.querySelector(sel).textContent.startsWith('sensor error')",
              arg=card, timeout=5.0, what="the card to recover")


def test_reconnects_after_the_device_comes_back(dash):
    dash.wait_live()
    before = dash.points()
    dash.js("() => { window.e2eMarker = 42; }")  # gone if the page reloads
    dash.sim.stop()
    dash.wait("() => ['reconnecting', 'unreachable'].includes(document.querySelector('#state').dataset.state)",
              timeout=8.0, what="the page to notice the device is gone")
    dash.wait("() => /reconnecting in \\d+ s/.test(document.querySelector('#state').textContent)",
              timeout=5.0, what="a reconnect countdown")
    assert dash.page.is_disabled("#info-refresh")
    kept = dash.points()
    assert kept >= before  # the data stays
    dash.sim.start()
    dash.wait_live(timeout=15.0)  # backoff: the next attempt is at most a few seconds away
    dash.wait("(n) => Math.max(...[...document.querySelectorAll('[data-sensor]')].map(e => +e.dataset.points)) >= n",
              arg=kept + 3, timeout=10.0, what="new points after reconnecting")
    assert dash.js("() => window.e2eMarker") == 42, "the page reloaded"


def test_with_a_token_the_page_is_read_only_unless_opened_with_it(browser, tmp_path):
    sim = Simulator(free_port(), str(tmp_path), ["--token", "e2e-Secret"])
    sim.start()
    try:
        page = browser.new_page()
        page.set_default_timeout(10000)
        anonymous = Dashboard(page, sim)
        page.goto("http://127.0.0.1:%d/" % sim.port)
        anonymous.wait_live()
        assert page.is_visible("#readonly")
        assert "wrong token" not in page.text_content("#readonly")
        assert page.is_disabled("#rate-apply")
        page.goto("http://127.0.0.1:%d/?token=not-it" % sim.port)
        anonymous.wait_live()
        assert page.is_visible("#readonly") and page.is_disabled("#rate-apply")
        assert "wrong token" in page.text_content("#readonly")
        page.goto("http://127.0.0.1:%d/?token=e2e-Secret" % sim.port)
        anonymous.wait_live()
        assert not page.is_visible("#readonly")
        toggle = page.locator("[data-output]").first
        assert "on" in anonymous.command(toggle.click, "switching the LED with the token")
        assert not anonymous.errors, anonymous.errors
        page.close()
        assert "e2e-Secret" not in sim.log(), "the token was logged"
    finally:
        sim.stop()


def test_a_full_device_says_busy_and_the_page_gets_in_when_a_place_frees(browser, tmp_path):
    sim = Simulator(free_port(), str(tmp_path), ["--max-clients", "1"])
    sim.start()
    try:
        url = "http://127.0.0.1:%d/" % sim.port
        first_page = browser.new_page()
        first = Dashboard(first_page, sim)
        first_page.goto(url)
        first.wait_live()
        second_page = browser.new_page()
        second = Dashboard(second_page, sim)
        second_page.goto(url)
        second.wait("() => document.querySelector('#state').dataset.state === 'busy'", timeout=10.0,
                    what="the second page to say the device is busy")
        text = second_page.text_content("#state")
        assert text.startswith("device busy: 1 dashboards already open (limit 1)"), text
        assert "unreachable" not in text
        first_page.close()  # a place frees: the busy page retries and gets in
        second.wait_live(timeout=20.0)
        assert not second.errors and not first.errors, (first.errors, second.errors)
        second_page.close()
    finally:
        sim.stop()
