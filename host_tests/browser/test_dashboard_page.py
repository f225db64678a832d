"""The dashboard of issue 15 in headless Chromium against the real simulator: history on
connect, clock time from the page, the hover readout, CSV export, the stale banner, the
phone layout, pwm sliders, status tiles and the window choice.

The simulator runs without a wall clock (`--clock none`, as a board without NTP), so the
first page sets it. Pages run in UTC so that expected clock times can be computed here.
Needs Chromium and playwright: see harness.py (skipped, with a warning, without them).
"""

import csv
import io
import json
import os
import re
import sys
import time
from datetime import datetime, timezone

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, Dashboard, Simulator, browser, build_www, free_port  # noqa: E402,F401 (browser: a fixture)
from websockets.sync.client import connect  # noqa: E402

RATE = 10.0
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    build_www.build(os.path.join(ROOT, "firmware", "www"))
    device = Simulator(free_port(), str(tmp_path_factory.mktemp("simulator")),
                       ["--rate", str(RATE), "--clock", "none"])
    device.start()
    device.started = time.monotonic()
    try:
        yield device
    finally:
        device.stop()


def open_page(browser, sim, path="/", **options):
    page = browser.new_page(timezone_id="UTC", **options)
    page.set_default_timeout(10000)
    dash = Dashboard(page, sim)
    page.goto("http://127.0.0.1:%d%s" % (sim.port, path))
    return dash


@pytest.fixture
def dash(browser, sim):
    d = open_page(browser, sim, viewport={"width": 1280, "height": 800})
    yield d
    d.page.close()
    assert not d.errors, "JavaScript errors on the page: %s" % d.errors


def ask(sim, command):
    """One command from a client of our own (not the page): the device's answer, by its id."""
    with connect("ws://127.0.0.1:%d/ws" % sim.port, open_timeout=5) as ws:
        hello = json.loads(ws.recv(timeout=5))
        ws.send(json.dumps(dict(command, id="t")))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            m = json.loads(ws.recv(timeout=5))
            if m.get("id") == "t":
                return hello, m
    pytest.fail("no answer to %r" % command)


def utc_clock(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%H:%M:%S")


def test_history_is_drawn_within_a_second_of_opening(browser, sim):
    time.sleep(max(0.0, sim.started + 6.0 - time.monotonic()))  # the device has run for a while
    dash = open_page(browser, sim, viewport={"width": 1280, "height": 800})
    try:
        opened = time.monotonic()
        # at 10 Hz, six seconds of samples: about 60, where one second of live data is 10
        dash.wait("() => X.length >= 45 && +document.querySelector('[data-sensor=temperature]').dataset.points >= 45",
                  timeout=1.0, what="the device's history on the charts")
        assert time.monotonic() - opened < 1.5
        held = dash.js("() => ({ S, X, capacity: hello.history })")
        assert held["capacity"] > 0
        assert held["S"][0] <= 5, "the history starts at the device's first samples: %s" % held["S"][:5]
        assert held["X"] == sorted(held["X"]) and len(set(held["S"])) == len(held["S"])
        # history and the live stream meet without a gap: consecutive seqs up to the newest
        assert held["S"] == list(range(held["S"][0], held["S"][0] + len(held["S"])))
    finally:
        dash.page.close()
    assert not dash.errors, dash.errors


def test_samples_keep_their_seq_order_when_the_device_clock_arrives_late(dash):
    # History rows without ts are placed on this page's clock (a guess, late by however long they took
    # to arrive); the device's clock, set from the page, is earlier by the time command's trip. The first
    # live sample with a ts must not land before the rows it follows. Run in one turn of the page's
    # event loop, on a store of its own, so the live stream cannot interleave.
    dash.wait_live()
    got = dash.js("""() => {
        const saved = [X, S, seen, anchored, off, sensors.map((s) => s.v)];
        X = []; S = []; seen = new Map(); anchored = false;
        sensors.forEach((s) => { s.v = []; });
        const now = Date.now(), period = 1000 / rate;
        const rows = [];
        for (let q = 0; q < 20; q++) rows.push([q, 5000 + q * period, null, [q]]);
        onHistory({ t: "h", rows }); onHistory({ t: "h", rows: [], done: true });
        // the device's clock: 800 ms behind the guess (a loaded machine)
        const ts = now - 800 - 500 / rate + period;
        onSample({ t: "s", seq: 20, ms: 5000 + 20 * period, ts, v: [20] });
        onSample({ t: "s", seq: 21, ms: 5000 + 21 * period, ts: ts + period, v: [21] });
        const out = { S: S.slice(), X: X.slice(), v: sensors[0].v.slice(), seen: [...seen.values()] };
        [X, S, seen, anchored, off] = saved;
        if (typeof guessed !== "undefined") guessed = null;  // the device's clock again
        sensors.forEach((s, i) => { s.v = saved[5][i]; });
        dirty = true;
        return out;
    }""")
    assert got["S"] == list(range(22))
    assert got["v"] == [float(q) for q in range(22)]  # the values moved with their samples
    assert got["X"] == sorted(got["X"]) and sorted(got["seen"]) == got["X"]
    period = got["X"][21] - got["X"][20]
    assert all(abs(b - a - period) < 1 for a, b in zip(got["X"], got["X"][1:]))  # one clock for all


def test_the_page_sets_a_device_clock_and_times_are_clock_times(dash, sim):
    dash.wait_live()
    # a live sample with its ts (the history alone sets lastTs but not lastSeq)
    dash.wait("() => lastSeq != null && lastTs != null", timeout=5.0, what="a live sample with a wall-clock ts")
    hello, info = ask(sim, {"cmd": "time", "ms": int(time.time() * 1000) - 3600000})
    assert hello["clock"] is True  # a dashboard set it ...
    assert info["clock"] == "dashboard"  # ... and a later time command does not change it
    newest = dash.js("() => [X[S.lastIndexOf(lastSeq)], lastTs]")  # the newest sample is at its ts
    assert newest[0] == newest[1] and abs(newest[1] / 1000 - time.time()) < 5, newest
    first_label = dash.js("() => clock(X[X.length - 1], 1)")
    assert first_label == utc_clock(newest[0])


def test_hover_readout_shows_the_value_and_time_at_that_point(dash):
    dash.wait_live()
    dash.wait("() => X.length > 20 && lastTs != null && X[X.length - 1] - X[0] > 8000", what="data with clock times")
    canvas = dash.page.locator("[data-sensor=temperature] canvas")
    tip = dash.page.locator("[data-sensor=temperature] .tip")
    box = canvas.bounding_box()
    seen = []
    for at in (0.9, 0.995):  # about 6 s and 0.3 s before the right end of a 60 s window
        dash.page.mouse.move(box["x"] + box["width"] * at, box["y"] + box["height"] / 2)
        dash.wait("(n) => hover && hover.i != null && hover.px > n", arg=box["width"] * at - 2, what="the hover")
        tip.wait_for(state="visible", timeout=3000)
        # in one turn: the chart scrolls, so the point under a still pointer changes
        i, value, x, unit, text = dash.js("""() => [hover.i, sensors[0].v[hover.i], X[hover.i], sensors[0].unit,
            document.querySelector("[data-sensor=temperature] .tip").textContent]""")
        assert value is not None
        assert text == "%s %s · %s" % (dash.js("(v) => fmt(v)", value), unit, utc_clock(x)), text
        assert re.match(r"^-?\d+\.\d\d °C · \d\d:\d\d:\d\d$", text)
        seen.append((i, x))
    (i0, x0), (i1, x1) = seen
    assert i1 > i0 and 3000 < x1 - x0 < 9000, seen  # the point under the pointer, not just any
    dash.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] + 200)
    tip.wait_for(state="hidden", timeout=3000)


def test_csv_download_holds_the_rows_the_page_holds(dash):
    dash.wait_live()
    dash.wait("() => X.length > 20", what="some data")
    with dash.page.expect_download() as got:
        held = dash.js("""() => { const cs = sensors.filter((s) => s.show !== "tile");
            const held = { X: X.slice(), labels: cs.map((s) => s.label + (s.unit ? " (" + s.unit + ")" : "")),
                           v: cs.map((s) => s.v.slice()) };
            document.querySelector("#export").click();
            return held; }""")
    download = got.value
    assert download.suggested_filename.endswith(".csv")
    text = open(download.path(), encoding="utf-8-sig").read()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["time"] + held["labels"]
    assert "Temperature (°C)" in rows[0] and not any("Uptime" in h for h in rows[0])  # tiles are not columns
    assert len(rows) - 1 == len(held["X"]) > 20
    for row, x in zip(rows[1:], held["X"]):
        when = datetime.fromisoformat(row[0].replace("Z", "+00:00"))
        assert abs(when.timestamp() * 1000 - x) < 1
    for k, column in enumerate(held["v"]):
        assert [float(r[1 + k]) if r[1 + k] else None for r in rows[1:]] == column


def test_the_stale_banner_says_since_when_while_the_device_is_paused(browser, tmp_path):
    sim = Simulator(free_port(), str(tmp_path), ["--rate", "2"])
    sim.start()
    dash = None
    try:
        dash = open_page(browser, sim)
        dash.wait_live()
        # history rows alone are enough: a device that stops right after them is stale too
        dash.wait("() => X.length >= 2", what="samples")
        assert dash.page.is_hidden("#stale")
        sim.pause()
        paused = time.monotonic()
        dash.wait("() => !document.querySelector('#stale').hidden", timeout=4.0, what="the stale banner")
        assert time.monotonic() - paused < 3.5  # about three sample periods (at least 2 s)
        dash.wait("() => /^last update [4-9] s ago$/.test(document.querySelector('#stale').textContent)",
                  timeout=6.0, what="the banner to count the seconds")
        sim.resume()
        dash.wait("() => document.querySelector('#stale').hidden && document.querySelector('#state').dataset.state === 'live'",
                  timeout=20.0, what="the banner to go once samples come again")
    finally:
        if dash:
            dash.page.close()
        sim.stop()
    assert not dash.errors, dash.errors


def test_on_a_phone_controls_and_status_are_visible_without_scrolling(browser, sim):
    dash = open_page(browser, sim, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        dash.wait_live()
        dash.wait("() => document.querySelectorAll('[data-output]').length >= 1", what="the controls")
        assert dash.js("() => scrollY") == 0
        items = ["#ctl", "#tiles", "#rate-apply", "#state"] + [
            '[data-output="%s"]' % n for n in dash.js("() => Object.keys(outputs)")]
        for sel in items:
            box = dash.page.locator(sel).bounding_box()
            assert box and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], (sel, box)
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (sel, box)
        assert dash.js("() => document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
        for box in [c.bounding_box() for c in dash.page.locator("[data-sensor] canvas").all()]:
            assert box["width"] >= 300 and box["height"] >= 150, box  # a chart keeps a readable size
        # a touch on a chart shows the readout, and it stays when the finger lifts
        canvas = dash.page.locator("[data-sensor=temperature] canvas")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        dash.page.touchscreen.tap(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2)
        tip = dash.page.locator("[data-sensor=temperature] .tip")
        tip.wait_for(state="visible", timeout=3000)
        dash.page.wait_for_timeout(500)
        assert tip.is_visible() and re.match(r"^-?\d+\.\d\d °C · ", tip.text_content())
    finally:
        dash.page.close()
    assert not dash.errors, dash.errors


def test_a_pwm_slider_sets_the_output_on_the_device(dash, sim):
    dash.wait_live()
    slider = dash.page.locator("input[type=range][data-output]").first
    assert slider.count() == 1, "the host board has no pwm output"
    name = slider.get_attribute("data-output")
    control = [c for c in dash.js("() => hello.controls") if c["name"] == name][0]
    assert float(slider.get_attribute("min")) == control["min"] and float(slider.get_attribute("max")) == control["max"]
    target = control["min"] + (control["max"] - control["min"]) * 0.4
    move = """([sel, v]) => { const e = document.querySelector(sel); e.value = v;
        e.dispatchEvent(new Event("input")); e.dispatchEvent(new Event("change")); }"""
    sel = 'input[data-output="%s"]' % name
    text = dash.command(lambda: dash.js(move, [sel, target]), "the %s slider" % name)
    assert text == "✓ %s set to %g%s" % (control["label"], target, " " + control["unit"] if control.get("unit") else "")
    _, info = ask(sim, {"cmd": "info"})
    assert info["outputs"][name] == target
    assert "%s %g" % (control["label"], target) in sim.log()  # the simulated output says so
    # the keyboard works too: End is the top of the range
    slider.focus()
    dash.command(lambda: dash.page.keyboard.press("End"), "End on the slider")
    _, info = ask(sim, {"cmd": "info"})
    assert info["outputs"][name] == control["max"]
    # a state from the device (another dashboard moved it) moves the slider
    dash.js("(n) => onMessage(JSON.stringify({ t: 'state', outputs: { [n]: 7 } }))", name)
    assert slider.input_value() == "7"


def test_status_values_are_tiles_in_human_units(dash):
    dash.wait_live()
    labels = dict(dash.js("() => hello.sensors.map((s) => [s.name, s.label])"))
    # clients and dropped come with the device info, free memory and uptime with the first live sample: wait for both
    dash.wait("""() => ['[data-tile=clients]', '[data-sensor=free_heap]', '[data-sensor=uptime]'].every(
        (sel) => document.querySelector(sel + ' .val').textContent !== '–')""", what="info and a sample in the tiles")
    tiles = dash.js("""() => Object.fromEntries([...document.querySelectorAll('.tile')].map(
        (t) => [t.dataset.sensor || t.dataset.tile, [t.querySelector('span').textContent, t.querySelector('.val').textContent]]))""")
    assert tiles["free_heap"][0] == labels["free_heap"] == "Free memory"
    assert re.match(r"^\d+(\.\d)? (B|KB|MB)$", tiles["free_heap"][1]), tiles
    assert re.match(r"^(\d+ s|\d+ min \d+ s)$", tiles["uptime"][1]), tiles
    assert int(tiles["clients"][1]) >= 1 and int(tiles["dropped"][1]) >= 0
    assert dash.page.locator("[data-sensor=uptime] canvas").count() == 0  # not a chart
    human = dash.js("() => [human(7980, 's'), human(39117, 'B'), human(-61, 'dBm'), human(-80, 'dBm'), human(21.456, '°C')]")
    assert human == ["2 h 13 min", "38.2 KB", "-61 dBm, good", "-80 dBm, weak", "21.46 °C"]


def test_the_window_is_a_choice_and_the_page_keeps_it(dash):
    dash.wait_live()
    dash.wait("() => X.length > 5", what="data")
    note = "[data-sensor=temperature] .mm"
    for button, says in (("1 min", "last 60 s"), ("all", "all held"), ("10 min", "last 10 min")):
        dash.page.click("#window >> text='%s'" % button)
        assert dash.page.get_attribute("#window >> text='%s'" % button, "aria-pressed") == "true"
        assert dash.page.locator("#window [aria-pressed=true]").count() == 1
        dash.wait("([sel, s]) => document.querySelector(sel).textContent.endsWith(s)", arg=[note, says],
                  timeout=3.0, what="the chart to say " + says)
    dash.page.click("#window >> text='1 min'")
    dash.page.reload()
    dash.wait_live()
    assert dash.page.get_attribute("#window >> text='1 min'", "aria-pressed") == "true"


def test_a_reconnect_does_not_hold_samples_twice(dash):
    dash.wait_live()
    dash.wait("() => X.length > 20", what="data")
    before = dash.js("() => X.length")
    dash.js("() => drop()")  # as when the network goes: the page reconnects and gets the history again
    dash.wait("() => live && X.length > %d" % (before + 5), timeout=15.0, what="data after reconnecting")
    held = dash.js("() => S")
    assert len(set(held)) == len(held), "a sample is held twice"
    assert held == list(range(held[0], held[0] + len(held)))  # and none is missing: the ring had them


def test_read_only_pages_show_the_controls_disabled(browser, tmp_path):
    sim = Simulator(free_port(), str(tmp_path), ["--token", "page-secret"])
    sim.start()
    try:
        dash = open_page(browser, sim)
        dash.wait_live()
        assert dash.page.is_visible("#readonly")
        outputs = dash.page.locator("[data-output]")
        assert outputs.count() >= 2
        for k in range(outputs.count()):
            assert outputs.nth(k).is_disabled()
        dash.page.goto("http://127.0.0.1:%d/?token=page-secret" % sim.port)
        dash.wait_live()
        assert all(outputs.nth(k).is_enabled() for k in range(outputs.count()))
        dash.page.close()
        assert not dash.errors, dash.errors
    finally:
        sim.stop()


def test_older_firmware_without_labels_gets_names_and_tiles_by_name(dash):
    """A hello of today's firmware before issue 15 (no label, show, controls, clock)."""
    dash.wait_live()
    old = {"t": "hello", "device": "old", "board": "esp32", "fw": "0.0.9", "rate": 1, "readonly": False,
           "sensors": [{"name": "temperature", "unit": "°C"}, {"name": "free_heap", "unit": "B"},
                       {"name": "uptime", "unit": "s"}, {"name": "rssi", "unit": "dBm"},
                       {"name": "soil_moisture", "unit": "%"}],
           "outputs": {"led": True}}
    sample = {"t": "s", "seq": 1, "ms": 1000, "v": [21.5, 39117, 7980, -61, 33.0]}
    dash.js("""([hello, sample]) => { ws.onmessage = null;  // the simulator's stream no longer reaches the page
        onMessage(JSON.stringify(hello)); onMessage(JSON.stringify(sample)); }""", [old, sample])
    dash.wait("() => document.querySelector('[data-sensor=uptime] .val').textContent !== '–'", timeout=3.0,
              what="the tiles")
    got = dash.js("""() => ({
        tiles: [...document.querySelectorAll('.tile[data-sensor]')].map((t) => [t.dataset.sensor,
            t.querySelector('span').textContent, t.querySelector('.val').textContent]),
        charts: [...document.querySelectorAll('article[data-sensor] h2')].map((h) => h.textContent),
        led: document.querySelector('[data-output=led]').getAttribute('aria-checked'),
        sent: Object.values(pending).map((p) => p.msg.cmd) })""")
    assert got["tiles"] == [["free_heap", "Free memory", "38.2 KB"], ["uptime", "Uptime", "2 h 13 min"],
                            ["rssi", "Wi-Fi signal", "-61 dBm, good"]]
    assert got["charts"] == ["Temperature", "Soil moisture"]
    assert got["led"] == "true"
    assert "time" not in got["sent"]  # no clock key: an older device would not know the command
