"""Wall-clock time: the time command's rules, ts on samples, NTP on a board,
the host's clock in the simulator."""
import asyncio
import json
import os

import pytest
import websockets

import wallclock
from app import App
from boardfile import load_board
from config import parse_config
from device import Device, sample_text
from fakes import Clock
from sensors.base import Sensor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST = load_board("host", os.path.join(ROOT, "boards"))
T = 1764590000000  # 2025-12-01T11:53:20Z


class One(Sensor):
    def _read(self):
        return 1


def device(clock, host_time=None):
    return Device(HOST, {"rate": 2}, [One("x")], [], clock, host_time=host_time)


def command(dev, obj, **kw):
    reply, change = dev.handle_command(json.dumps(obj), **kw)
    return json.loads(reply), (json.loads(change) if change else None)


def test_without_a_clock_samples_have_no_ts_and_hello_says_so():
    dev = device(Clock(1000))
    assert "ts" not in json.loads(sample_text(dev.read()))
    assert json.loads(dev.hello())["clock"] is False
    assert json.loads(dev.state())["clock"] is False


def test_the_first_dashboard_sets_the_clock_and_everyone_hears_it():
    clock = Clock(1000)
    dev = device(clock)
    reply, change = command(dev, {"cmd": "time", "ms": T, "id": 4})
    assert reply == {"t": "ack", "id": 4, "cmd": "time", "clock": "dashboard"}
    assert change["t"] == "state" and change["clock"] is True
    clock.advance(1500)
    assert json.loads(sample_text(dev.read()))["ts"] == T + 1500
    assert json.loads(dev.hello())["clock"] is True


def test_a_known_clock_is_not_changed_by_a_later_dashboard():
    clock = Clock(0)
    dev = device(clock)
    command(dev, {"cmd": "time", "ms": T})
    reply, change = command(dev, {"cmd": "time", "ms": T + 3600000, "id": 5}, readonly=True)
    assert reply == {"t": "ack", "id": 5, "cmd": "time", "clock": "dashboard"} and change is None
    assert dev.wall.now() == T


def test_a_read_only_dashboard_may_tell_the_time():
    dev = device(Clock(0))
    reply, change = command(dev, {"cmd": "time", "ms": T}, readonly=True)
    assert reply["t"] == "ack" and change["clock"] is True


@pytest.mark.parametrize("ms", [None, "1764590000000", True, 1000, wallclock.MIN_MS - 1, wallclock.MAX_MS,
                                float("1e30")])
def test_a_time_outside_2020_to_2100_or_not_a_number_is_an_error(ms):
    dev = device(Clock(0))
    message = {"cmd": "time", "id": 1}
    if ms is not None:
        message["ms"] = ms
    reply, change = command(dev, message)
    assert reply["t"] == "error" and "2020" in reply["error"] and reply["id"] == 1 and change is None
    assert not dev.wall.known()


def test_the_clock_follows_uptime_across_a_ticks_wrap():
    period = 1 << 30

    def diff(new, old):
        return ((new - old + period // 2) % period) - period // 2

    clock = Clock(period - 1000)
    dev = Device(HOST, {"rate": 2}, [One("x")], [], lambda: clock.now % period, diff=diff)
    command(dev, {"cmd": "time", "ms": T})
    clock.advance(3000)  # the ticks wrapped
    reading = dev.read()
    assert reading[1] == 2000 and reading[4] == T + 3000
    rows = []
    for chunk in dev.history_sender.chunks(dev.wall_at):
        rows += json.loads(chunk if isinstance(chunk, str) else bytes(chunk).decode())["rows"]
    assert rows[-1][2] == T + 3000


def test_the_simulator_knows_the_hosts_time_at_once():
    dev = device(Clock(0), host_time=lambda: T)
    assert dev.wall.source == "host" and json.loads(dev.hello())["clock"] is True
    reply, change = command(dev, {"cmd": "time", "ms": T + 99})
    assert reply["clock"] == "host" and change is None and dev.wall.now() == T


def test_ntp_unix_ms_counts_from_the_ports_epoch():
    class Ntp:
        timeout = 5

        def time(self):
            return 817905200  # seconds since 2000 (ESP32, rp2) = 2025-12-01T11:53:20Z

    ntp = Ntp()
    assert wallclock.ntp_unix_ms(ntp, 2000) == T + 500 and ntp.timeout == wallclock.NTP_TIMEOUT_S
    ntp.time = lambda: T // 1000  # a port with the 1970 epoch
    assert wallclock.ntp_unix_ms(ntp, 1970) == T + 500


class Keeper:
    """The part of wifi.Keeper the clock looks at."""

    def __init__(self, state):
        self.state = state
        self.uptime = None

    def poll(self):
        return 1000

    def info(self):
        return {"state": self.state}


def test_a_board_asks_ntp_once_joined_and_broadcasts_that_it_has_a_clock():
    async def body():
        config = parse_config({"board": "host", "rate": 2}, HOST, "test")
        asked = []

        def ntp():
            asked.append(1)
            if len(asked) == 1:
                raise OSError(110)  # no answer the first time
            return T

        keeper = Keeper("ap")
        lines = []
        app = App(HOST, config, {"seed": 1, "ntp": ntp, "gc": None}, www=os.path.join(ROOT, "firmware", "www"),
                  log=lambda *a: lines.append(" ".join(str(x) for x in a)), wifi=keeper)
        waits = []

        async def fast_sleep(ms):
            waits.append(ms)
            await asyncio.sleep(0.01)

        app.wifi_sleep = fast_sleep
        await app.start("127.0.0.1", 0)
        try:
            async with websockets.connect("ws://127.0.0.1:%d/ws" % app.server.port) as ws:
                assert json.loads(await ws.recv())["clock"] is False
                await asyncio.sleep(0.05)
                assert asked == []  # not joined: no NTP
                keeper.state = "joined"
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if message["t"] == "state":
                        break
                assert message["clock"] is True and app.device.wall.source == "ntp"
                assert len(asked) == 2
                assert wallclock.NTP_RETRY_MS in waits and wallclock.NTP_RESYNC_MS in waits
                assert any("NTP failed" in line for line in lines)
        finally:
            await app.stop()

    asyncio.run(asyncio.wait_for(body(), 20))


def test_a_firmware_without_ntptime_says_so_once_and_waits_for_a_dashboard():
    async def body():
        config = parse_config({"board": "host", "rate": 2}, HOST, "test")
        lines = []

        def ntp():
            raise ImportError("no module named 'ntptime'")

        app = App(HOST, config, {"seed": 1, "ntp": ntp, "gc": None}, www=os.path.join(ROOT, "firmware", "www"),
                  log=lambda *a: lines.append(" ".join(str(x) for x in a)), wifi=Keeper("joined"))

        async def fast_sleep(ms):
            await asyncio.sleep(0.01)

        app.wifi_sleep = fast_sleep
        await app.start("127.0.0.1", 0)
        try:
            await asyncio.sleep(0.2)
        finally:
            await app.stop()
        assert [line for line in lines if line.startswith("clock:")] == [
            "clock: this firmware has no ntptime: the first dashboard sets the clock"]
        assert not app.device.wall.known()

    asyncio.run(asyncio.wait_for(body(), 10))
