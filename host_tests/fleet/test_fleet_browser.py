"""End to end: the fleet page in headless Chromium, a real Mosquitto and three simulated devices.

The devices are the real simulator with its MQTT uplink, in two processes:
`--devices 2 --name pair` (pair-1, pair-2) and `--device-name solo`, so that
killing one process takes exactly one device away. tools/fleet.py serves the
page, which connects to the broker's WebSocket listener. Checked, in order:
every card goes online with the labels and units of the retained info, and
its values change; a rate command is refused without the token and
acknowledged with it, and the device then samples faster; the outputs of the
info's controls (a switch, a pwm) are set from the page; the click-through
charts start from the retained history; garbage under the root breaks
nothing; a stopped process makes its devices stale; after a broker restart
the page and the devices come back by themselves; a killed device shows
offline (the broker's last-will). Writes a screenshot of that to
artifacts/fleet.png.

Needs Debian's Chromium, playwright and mosquitto (see test_dashboard_browser.py).
"""

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from host_tests.processes import stop_process

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "host_tests", "mqtt"))
from broker import Mosquitto, free_port  # noqa: E402  (the broker fixture the uplink tests use)
TOKEN = "fleet-secret"
CHROMIUM = os.environ.get("MICROWS_CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-proxy-server",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

_missing = [what for what, there in (
    ("the Python package playwright", importlib.util.find_spec("playwright") is not None),
    ("Chromium (%s)" % CHROMIUM, os.access(CHROMIUM, os.X_OK)),
) if not there]
if _missing:
    _reason = "fleet page browser tests SKIPPED: %s not installed (apt-get install -y chromium)" % " and ".join(_missing)
    sys.stderr.write("\n*** WARNING: %s ***\n" % _reason)
    pytest.skip(_reason, allow_module_level=True)

import paho.mqtt.client as mqtt  # noqa: E402
from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402


def wait_port(port, proc, log_path, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("%s exited with %s:\n%s" % (what, proc.returncode, tail(log_path)))
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail("%s did not listen on %d:\n%s" % (what, port, tail(log_path)))


def tail(path):
    try:
        with open(path, "rb") as f:
            return f.read()[-3000:].decode("utf-8", "replace")
    except OSError:
        return ""


def start(args, log_path):
    log = open(log_path, "ab")
    proc = subprocess.Popen([sys.executable] + args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc


def stop(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
        stop_process(proc, 10)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("fleet"))
    broker = Mosquitto(folder).start()
    common = ["--mqtt", "127.0.0.1:%d" % broker.port, "--token", TOKEN, "--rate", "2", "--host", "127.0.0.1"]
    simulate = os.path.join(ROOT, "tools", "simulate.py")
    pair_port = free_port()
    sims = {
        "pair": (start([simulate, "--devices", "2", "--name", "pair", "--port", str(pair_port)] + common,
                       os.path.join(folder, "pair.log")), pair_port, os.path.join(folder, "pair.log")),
    }
    solo_port = free_port()
    sims["solo"] = (start([simulate, "--device-name", "solo", "--port", str(solo_port), "--seed", "7"] + common,
                          os.path.join(folder, "solo.log")), solo_port, os.path.join(folder, "solo.log"))
    page_port = free_port()
    page_log = os.path.join(folder, "fleet.log")
    page = start([os.path.join(ROOT, "tools", "fleet.py"), "--broker", "ws://127.0.0.1:%d" % broker.ws_port,
                  "--port", str(page_port)], page_log)
    try:
        for name, (proc, port, log) in sims.items():
            wait_port(port, proc, log, "the simulator " + name)
        wait_port(page_port, page, page_log, "tools/fleet.py")
        yield {"broker": broker, "sims": sims, "url": "http://127.0.0.1:%d/" % page_port, "folder": folder}
    finally:
        stop(page)
        for proc, _, _ in sims.values():
            stop(proc)
        broker.stop()


def retained_info(broker, device, timeout=10.0):
    """The device's retained <prefix>/info, as a subscriber who just came gets it."""
    got = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, message: got.append(json.loads(message.payload))
    client.connect("127.0.0.1", broker.port)
    client.subscribe("microws/%s/info" % device)
    client.loop_start()
    deadline = time.monotonic() + timeout
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    client.loop_stop()
    client.disconnect()
    assert got, "no retained info from %s:\n%s" % (device, broker.log())
    return got[0]


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})  # one localStorage for the module
    yield ctx
    ctx.close()


class Page:
    def __init__(self, page, world):
        self.page = page
        self.world = world
        self.errors = []
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def js(self, expression, arg=None):
        return self.page.evaluate(expression, arg)

    def wait(self, predicate, arg=None, timeout=15.0, what="condition"):
        try:
            self.page.wait_for_function(predicate, arg=arg, timeout=timeout * 1000, polling=100)
        except PlaywrightTimeout:
            logs = "\n".join("--- %s\n%s" % (name, tail(log)) for name, (_, _, log) in self.world["sims"].items())
            pytest.fail("timed out (%.0f s) waiting for %s; cards: %s; errors: %s\n%s"
                        % (timeout, what, self.cards(), self.errors, logs), pytrace=False)

    def cards(self):
        return self.js("""() => Object.fromEntries([...document.querySelectorAll('.dev')].map(e => [e.dataset.device,
            {state: e.dataset.state, seq: Number(e.dataset.seq), samples: Number(e.dataset.samples),
             values: [...e.querySelectorAll('.v')].map(v => ({sensor: v.dataset.sensor,
                label: v.querySelector('.lb').textContent, unit: v.querySelector('small').textContent,
                text: v.querySelector('.num').textContent, points: v.querySelector('canvas')
                    ? Number(v.querySelector('canvas').dataset.points || 0) : null}))}]))""")

    def wait_states(self, states, timeout=15.0):
        self.wait("""want => Object.entries(want).every(([name, state]) =>
            document.querySelector(`.dev[data-device="${name}"]`)?.dataset.state === state)""",
                  states, timeout, "device states %s" % states)

    def wait_samples(self, names, timeout=15.0):
        """Until each card shows a sample (a card off screen shows only its state, and catches up
        when it scrolls in)."""
        self.wait("names => names.every(n => document.querySelector(`.dev[data-device=\"${n}\"]`)?.dataset.seq)",
                  list(names), timeout, "a sample on the cards of %s" % list(names))

    def replies(self):
        return self.js("() => [...document.querySelectorAll('#replies .reply')].map(e => JSON.parse(e.textContent))")


def open_page(context, world, hash_=""):
    page = Page(context.new_page(), world)
    page.page.goto(world["url"] + hash_)
    return page


HUMAN_UNITS = {"B": ("B", "KB", "MB"), "s": ("s", "min", "h")}
SCALED_BELOW = {"B": 1024, "KB": 1024, "s": 120, "min": 120}
ALL_ONLINE = {"pair-1": "online", "pair-2": "online", "solo": "online"}


def test_every_device_shows_up_live_with_its_labels_and_units(context, world):
    page = Page(context.new_page(), world)
    requests, sockets = [], []
    page.page.on("request", lambda request: requests.append(request.url))
    page.page.on("websocket", lambda ws: sockets.append(ws.url))
    page.page.goto(world["url"])
    page.wait_states(ALL_ONLINE, timeout=20)
    page.wait_samples(ALL_ONLINE)
    first = page.cards()
    assert set(first) == set(ALL_ONLINE), first
    page.wait("""seqs => Object.entries(seqs).every(([name, seq]) =>
        Number(document.querySelector(`.dev[data-device="${name}"]`).dataset.seq) >= seq + 3)""",
              {name: card["seq"] for name, card in first.items()}, what="three more samples on every card")
    later = page.cards()
    for name in ALL_ONLINE:
        info = retained_info(world["broker"], name)
        shown = later[name]["values"]
        assert [(v["sensor"], v["label"]) for v in shown] == [(s["name"], s["label"]) for s in info["sensors"]]
        for before, now, sensor in zip(first[name]["values"], shown, info["sensors"]):
            assert now["text"] not in ("", "—"), (name, now)
            # sizes and durations as a person reads them ("38.2 KB", "12 min"); the rest in the device's unit
            units = HUMAN_UNITS.get(sensor.get("unit", ""), (sensor.get("unit", ""),))
            assert now["unit"] in units and re.match(r"^-?\d+(\.\d+)?$", now["text"]), (name, now, sensor)
            if now["unit"] in SCALED_BELOW:  # scaled: never "6201386 B" or "7980 s"
                assert abs(float(now["text"])) < SCALED_BELOW[now["unit"]], (name, now)
            if sensor.get("show") == "chart":
                assert now["points"] >= 3, (name, now)  # the sparkline draws
        # simulated readings move: at least one value is not what it was
        assert [v["text"] for v in first[name]["values"]] != [v["text"] for v in shown], name
    assert page.errors == []
    # offline-capable: the page loads nothing but from tools/fleet.py (and the MQTT client's
    # timer worker, a blob: of the page's own), and its only WebSocket is to the broker
    own = (world["url"], "blob:" + world["url"].rstrip("/"))
    assert requests and all(url.startswith(own) for url in requests), requests
    assert sockets and all(url.startswith("ws://127.0.0.1:%d" % world["broker"].ws_port) for url in sockets), sockets
    page.page.close()


def test_rate_command_needs_the_token_and_gets_a_reply(context, world):
    page = open_page(context, world, "#device=solo")
    page.wait("() => document.querySelector('#detail')?.dataset.state === 'online'", what="solo's detail view")
    page.page.fill("#token", "")
    page.page.fill("#rate", "5")
    page.page.click("#set-rate")
    page.wait("() => document.querySelectorAll('#replies .reply').length >= 1", what="a reply")
    refused = page.replies()[0]
    assert refused["t"] == "error" and ("token" in refused["error"] or "read" in refused["error"]), refused

    page.page.fill("#token", TOKEN)
    page.page.dispatch_event("#token", "change")
    page.page.fill("#rate", "5")
    page.page.click("#set-rate")
    page.wait("() => document.querySelectorAll('#replies .reply').length >= 2", what="a second reply")
    ack = page.replies()[0]  # newest first
    assert ack["t"] == "ack" and ack["cmd"] == "rate" and ack["rate"] == 5, ack
    assert page.js("() => localStorage.getItem('microws-fleet:token:microws/solo')") == TOKEN
    # the device samples faster now: count its seq over three seconds
    newest = "() => window.microwsFleet.fleet.devices.get('solo').last.seq"
    before = page.js(newest)
    time.sleep(3)
    assert page.js(newest) - before >= 10, "at 5 Hz about 15 samples in 3 s, at 2 Hz 6"
    page.page.close()


def test_outputs_from_the_controls_switch_and_set(context, world):
    controls = retained_info(world["broker"], "solo")["controls"]
    kinds = {c["kind"] for c in controls}
    assert kinds == {"switch", "pwm"}, controls  # the host board has one of each
    page = open_page(context, world, "#device=solo")  # the token is in localStorage from the test before
    page.wait("() => document.querySelector('#detail')?.dataset.state === 'online'", what="solo's detail view")
    for control in controls:
        name = control["name"]
        answered = len(page.replies())
        if control["kind"] == "switch":
            page.page.click('[data-control="%s"]' % name)
            expected = {"on": True}
        else:
            value = (control["min"] + control["max"]) // 2 + 1
            page.js("""([name, value]) => { const input = document.querySelector(`[data-control="${name}"] input`);
                input.value = String(value); input.dispatchEvent(new Event("change")); }""", [name, value])
            expected = {"value": value}
        page.wait("n => document.querySelectorAll('#replies .reply').length > n", answered, what="the reply of " + name)
        reply = page.replies()[0]
        assert reply["t"] == "ack" and reply["cmd"] == name, reply
        assert {k: reply.get(k) for k in expected} == expected, reply
        if control["kind"] == "switch":
            page.wait("n => document.querySelector(`[data-control=\"${n}\"]`).getAttribute('aria-checked') === 'true'",
                      name, what="the switch shown on")
    # the device itself says so in its next retained info
    deadline = time.monotonic() + 10
    while True:
        outputs = retained_info(world["broker"], "solo")["outputs"]
        wanted = {c["name"]: (True if c["kind"] == "switch" else (c["min"] + c["max"]) // 2 + 1) for c in controls}
        if {k: outputs.get(k) for k in wanted} == wanted or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert {k: outputs.get(k) for k in wanted} == wanted, outputs
    page.page.close()


def test_click_through_charts_start_from_the_retained_history(context, world):
    # the rate change of the test before made the device publish its info again, history and all
    info = retained_info(world["broker"], "solo")
    history = info["history"]
    assert len(history) >= 5, "the device has sampled for a while: %d rows" % len(history)
    assert info["rate"] == 5
    page = open_page(context, world)
    page.wait_states({"solo": "online"})
    page.page.click('.dev[data-device="solo"] a.hd')
    page.wait("() => document.querySelector('#detail')?.dataset.device === 'solo'", what="the detail view")
    assert page.page.is_hidden("#fleet")
    charts = [s["name"] for s in info["sensors"] if s.get("show") == "chart"]
    assert charts, info["sensors"]
    # at once, the page has the retained rows (a live sample or two may have come too)
    page.wait("""want => want.names.every(n =>
        Number(document.querySelector(`#sensors [data-sensor="${n}"] canvas`)?.dataset.points || 0) >= want.rows)""",
              {"names": charts, "rows": len(history)}, timeout=5, what="charts holding the retained history")
    facts = page.js("() => Object.fromEntries([...document.querySelectorAll('#facts dt')].map(dt => "
                    "[dt.textContent, dt.nextElementSibling.textContent]))")
    assert facts["board"] == info["board"] and facts["uplink"] == "connected", facts
    page.page.click("#back")
    page.wait("() => !document.querySelector('#fleet').hidden && document.querySelector('#detail').hidden",
              what="back to all devices")
    page.page.close()


def test_garbage_under_the_root_breaks_nothing(context, world):
    page = open_page(context, world)
    page.wait_states(ALL_ONLINE)
    page.wait_samples(ALL_ONLINE)
    before = page.cards()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", world["broker"].port)
    client.loop_start()
    junk = [
        ("microws/junk/info", b"not json{", True),
        ("microws/junk/status", b"maybe", True),
        ("microws/junk/samples", b"\xff\xfe\x00", False),
        ("microws/junk/samples", b'{"t":"s","seq":"x","v":[1]}', False),
        ("microws/junk/samples", b"[" * 300000, False),
        ("microws/junk/samples", b'{"t":"s","seq":1,"ms":1,"v":["a",null,{}]}', False),
        ("microws/junk/reply", b'{"t":"ack","id":"not-ours"}', False),
        ("microws/junk/deeper/samples", b"{}", False),
    ]
    try:
        for topic, payload, retain in junk:
            client.publish(topic, payload, retain=retain).wait_for_publish(5)
        page.wait("""() => window.microwsFleet.fleet.bad >= 5
            && window.microwsFleet.fleet.devices.get('junk')?.samples.length === 1
            && document.querySelectorAll('.dev[data-device="junk"] .v').length === 3""",
                  what="the bad payloads counted, the one well-formed sample (of junk values) kept")
        cards = page.cards()
        assert cards["junk"]["state"] in ("online", "stale", "unknown"), cards["junk"]
        assert [v["text"] for v in cards["junk"]["values"]] == ["—"] * 3, cards["junk"]  # nothing made up
        # the real devices go on
        page.wait("""seqs => Object.entries(seqs).every(([name, seq]) =>
            Number(document.querySelector(`.dev[data-device="${name}"]`).dataset.seq) >= seq + 2)""",
                  {name: before[name]["seq"] for name in ALL_ONLINE}, what="the devices still streaming")
        assert page.errors == []
    finally:
        for topic in ("microws/junk/info", "microws/junk/status"):  # clear the retained junk
            client.publish(topic, b"", retain=True).wait_for_publish(5)
        client.loop_stop()
        client.disconnect()
    page.wait("() => !document.querySelector('.dev[data-device=\"junk\"]')", what="the cleared device removed")
    page.page.close()


def test_a_stopped_process_goes_stale_and_comes_back(context, world):
    page = open_page(context, world)
    page.wait_states(ALL_ONLINE)
    proc = world["sims"]["pair"][0]
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        page.wait_states({"pair-1": "stale", "pair-2": "stale", "solo": "online"}, timeout=20)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    page.wait_states(ALL_ONLINE, timeout=20)
    page.page.close()


def test_the_page_comes_back_after_a_broker_restart(context, world):
    page = open_page(context, world)
    page.wait_states(ALL_ONLINE)
    page.wait_samples(ALL_ONLINE)
    broker = world["broker"]
    broker.stop()
    page.wait("() => document.querySelector('#conn').dataset.state !== 'live'", what="the page seeing the broker gone")
    time.sleep(2)
    broker.start()  # the same ports, nothing retained: the devices publish their status and info again
    page.wait("() => document.querySelector('#conn').dataset.state === 'live'", timeout=20,
              what="the page connected again")
    seqs = {name: card["seq"] for name, card in page.cards().items() if name in ALL_ONLINE}
    page.wait("""seqs => Object.entries(seqs).every(([name, seq]) =>
        Number(document.querySelector(`.dev[data-device="${name}"]`).dataset.seq) >= seq + 2)""",
              seqs, timeout=40, what="samples again from every device, through the restarted broker")
    page.wait_states(ALL_ONLINE)
    assert page.errors == []
    page.page.close()


def test_a_killed_device_goes_offline_by_its_last_will(context, world):
    page = open_page(context, world)
    page.wait_states(ALL_ONLINE)
    world["sims"]["solo"][0].kill()
    page.wait_states({"solo": "offline", "pair-1": "online", "pair-2": "online"}, timeout=10)
    # a page opened later learns it from the retained status
    late = open_page(context, world)
    late.wait_states({"solo": "offline", "pair-1": "online", "pair-2": "online"}, timeout=10)
    assert page.errors == [] and late.errors == []
    # the README's docs/fleet.png is this, copied
    os.makedirs(os.path.join(ROOT, "artifacts"), exist_ok=True)
    page.page.screenshot(path=os.path.join(ROOT, "artifacts", "fleet.png"))
