"""wifi.Keeper in the App: the configured network is retried while the access
point is up and rejoined when the link drops, and the server goes on serving
all the while. A fake network and a fake clock: minutes pass in milliseconds."""

import asyncio
import json
import os

import websockets

import wifi
import wifi_join
from app import App
from boardfile import load_board
from config import parse_config
from fakes import Clock, FakeNetwork, ticks_diff
from hardware import hardware

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST_BOARD = load_board("host", os.path.join(ROOT, "boards"))
PASSWORD = "correct horse"
CONFIG = {"wifi_ssid": "home", "wifi_password": PASSWORD, "device_name": "", "ap_password": "", "port": 80}


def boot(net, clock, lines):
    """What main.py does: connect (blocking, before the server), then the keeper."""
    mode, _ = wifi_join.connect(CONFIG, net, clock.sleep_ms, clock, ticks_diff, 15000, log=lines.append)
    keeper = wifi.Keeper(CONFIG, net, clock, ticks_diff, mode, log=lines.append)
    checked = parse_config({"board": "host"}, HOST_BOARD, "test")
    app = App(HOST_BOARD, checked, hardware(seed=3), www=os.path.join(ROOT, "firmware", "www"),
              log=lines.append, wifi=keeper)

    async def fast_sleep(ms):  # the keeper's waits pass on the fake clock, quickly
        clock.advance(ms)
        await asyncio.sleep(0.0005)

    app.wifi_sleep = fast_sleep
    return mode, keeper, app


async def info(ws):
    await ws.send(json.dumps({"cmd": "info", "id": 1}))
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if message["t"] == "info":
            return message


async def scenario(net, clock, lines, event_at_ms, event, until):
    """Start the device, keep a dashboard open, do `event` at a fake time,
    wait for `until(keeper)`; the dashboard must see samples throughout."""
    mode, keeper, app = boot(net, clock, lines)
    await app.start("127.0.0.1", 0)
    url = "ws://127.0.0.1:%d/ws" % app.server.port
    try:
        async with websockets.connect(url) as ws:
            assert json.loads(await ws.recv())["t"] == "hello"
            start = clock.now
            done = False
            while clock.now - start < 20 * 60 * 1000:  # at most 20 fake minutes
                if event is not None and clock.now - start >= event_at_ms:
                    event()
                    event = None
                if event is None and until(keeper):
                    done = True
                    break
                await asyncio.sleep(0.001)
            assert done, "not joined after 20 minutes: %s\n%s" % (keeper.info(), "\n".join(lines))
            minutes = (clock.now - start) / 60000
            # the server never stopped: the open dashboard still streams, a new one gets in
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["t"] in ("s", "state", "info", "h")
            reported = await info(ws)
            async with websockets.connect(url) as again:
                assert json.loads(await again.recv())["t"] == "hello"
        return mode, keeper, reported, minutes
    finally:
        await app.stop()


def test_router_comes_back_after_2_minutes():
    net = FakeNetwork({})  # the router is still booting after a power cut
    clock = Clock()
    lines = []

    def router_back():
        net.networks["home"] = PASSWORD

    mode, keeper, reported, minutes = asyncio.run(asyncio.wait_for(scenario(
        net, clock, lines, 2 * 60 * 1000, router_back, lambda k: k.state == "joined"), 60))
    assert mode == "ap"  # it fell back at boot ...
    assert keeper.state == "joined" and net.WLAN(net.STA_IF).isconnected()  # ... and came back
    assert net.WLAN(net.AP_IF).active() is False  # the access point is off again
    assert 2 <= minutes <= 2 + wifi.RETRY_MAX_MS / 60000 + 1
    assert keeper.retries >= 2
    assert reported["wifi"]["state"] == "joined" and reported["wifi"]["retries"] == keeper.retries
    assert reported["wifi"]["changed_s"] >= 0
    assert any("connected to 'home'" in line for line in lines[-3:])
    assert not any(PASSWORD in line for line in lines)


def test_link_lost_for_30_seconds_is_rejoined():
    net = FakeNetwork({"home": PASSWORD})
    clock = Clock()
    lines = []
    state = {"back_at": None}

    def link_lost():
        del net.networks["home"]
        state["back_at"] = clock.now + 30000

    def rejoined(keeper):
        if state["back_at"] is not None and clock.now >= state["back_at"]:
            net.networks["home"] = PASSWORD
            state["back_at"] = None
        return state["back_at"] is None and keeper.state == "joined" and keeper.retries > 0

    mode, keeper, reported, minutes = asyncio.run(asyncio.wait_for(scenario(
        net, clock, lines, 10000, link_lost, rejoined), 60))
    assert mode == "station"
    assert keeper.state == "joined" and net.WLAN(net.STA_IF).isconnected()
    assert any("link to 'home' lost" in line for line in lines)
    assert net.WLAN(net.AP_IF).active() is False  # a short outage does not open the access point
    assert minutes < 2
    assert reported["wifi"]["state"] == "joined" and reported["wifi"]["retries"] >= 1


def test_backoff_is_capped_and_the_access_point_opens_after_a_long_outage():
    net = FakeNetwork({"home": PASSWORD})
    clock = Clock()
    lines = []
    mode, _ = wifi_join.connect(CONFIG, net, clock.sleep_ms, clock, ticks_diff, 15000, log=lines.append)
    keeper = wifi.Keeper(CONFIG, net, clock, ticks_diff, mode, log=lines.append)
    del net.networks["home"]  # gone for good
    starts = []
    for _ in range(20000):
        before = keeper._attempt
        clock.advance(keeper.poll())
        if keeper._attempt is not None and before is None:
            starts.append(clock.now)
    assert keeper.state == "ap" and net.WLAN(net.AP_IF).active() is True
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert max(gaps) <= wifi.RETRY_MAX_MS + wifi.ATTEMPT_MS + 2 * wifi.WATCH_MS
    assert gaps[-1] >= wifi.RETRY_MAX_MS  # it backed off to the cap, and no further
