"""End to end: the dashboard (firmware/www/index.html) in headless Chromium against the simulator.

Starts `python tools/simulate.py --host 127.0.0.1 --port PORT` (MICROWS_SIMULATOR=path
replaces the script, e.g. with a mock device), opens http://127.0.0.1:PORT/ and checks:
the page goes live, the charts receive points at the set rate, the LED toggle reaches
the device and is acknowledged, a rate change changes the stream, and stopping and
restarting the simulator on the same port reconnects the page without a reload.
Writes a screenshot of the live page to artifacts/dashboard.png.

Needs Chromium and playwright: see host_tests/browser/harness.py (skipped, with a warning, without them).
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "browser"))
from harness import ROOT, Dashboard, Simulator, browser, build_www, free_port  # noqa: E402,F401 (browser: a fixture)


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
    failed = """(sel) => { const n = hello.sensors.length, v = Array(n).fill(1), e = Array(n).fill(null);
        v[0] = null; e[0] = "OSError: [Errno 19] ENODEV";
        onMessage(JSON.stringify({ t: "s", seq: lastSeq + 1, ms: X[X.length - 1] - off + 1, v, e }));
        return document.querySelector(sel).textContent; }"""
    # shown at once: the device's next good sample (at most a period later) clears it
    assert dash.js(failed, card) == "sensor error: OSError: [Errno 19] ENODEV"
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
