"""The device end to end on CPython: the firmware's App on a real port,
real WebSocket clients (the websockets package) as dashboards."""

import asyncio
import json
import os
import socket
import struct
import sys
import time

import websockets

from access import CommandLimiter
from token_guard import token_matches
from fakes import Clock
from app import App
from boardfile import load_board
from config import parse_config
from hardware import hardware

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "host_tests", "server"))
from rawclient import upgrade_head  # noqa: E402

HOST_BOARD = load_board("host", os.path.join(ROOT, "boards"))


def make_app(**config):
    config.setdefault("board", "host")
    checked = parse_config(config, HOST_BOARD, "test")
    return App(HOST_BOARD, checked, hardware(seed=3), www=os.path.join(ROOT, "firmware", "www"),
               log=lambda *a: None)


def run(body, timeout=60):
    asyncio.run(asyncio.wait_for(body, timeout))


async def started(app):
    await app.start("127.0.0.1", 0)
    return "ws://127.0.0.1:%d" % app.server.port


async def next_of(ws, kind, timeout=5):
    """The next message of type kind, skipping samples and others."""
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        if message["t"] == kind:
            return message


def test_hello_then_samples_at_the_configured_rate_with_consecutive_seq():
    async def body():
        app = make_app(rate=10)
        url = await started(app)
        try:
            async with websockets.connect(url + "/ws") as ws:
                hello = json.loads(await ws.recv())
                assert hello["t"] == "hello" and hello["rate"] == 10.0 and not hello["readonly"]
                names = [s["name"] for s in hello["sensors"]]
                assert names == ["temperature", "humidity", "pressure", "light", "free_heap", "uptime"]
                samples = []
                start = time.monotonic()
                while time.monotonic() - start < 2.0:
                    samples.append(await next_of(ws, "s"))
                elapsed = time.monotonic() - start
                seqs = [s["seq"] for s in samples]
                assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
                assert 7 <= len(samples) / elapsed <= 13  # 10 Hz, loosely
                assert all(len(s["v"]) == len(names) for s in samples)
                assert all(isinstance(v, (int, float)) for s in samples for v in s["v"])
                ms = [s["ms"] for s in samples]
                assert ms == sorted(ms)
        finally:
            await app.stop()
    run(body())


def test_commands_are_answered_and_changes_reach_every_dashboard():
    async def body():
        app = make_app(rate=2)
        url = await started(app)
        try:
            async with websockets.connect(url + "/ws") as one, websockets.connect(url + "/ws") as two:
                await one.recv()
                await two.recv()
                await one.send(json.dumps({"cmd": "led", "on": True, "id": 1}))
                ack = await next_of(one, "ack")
                assert ack == {"t": "ack", "id": 1, "cmd": "led", "on": True}
                assert (await next_of(two, "state"))["outputs"] == {"led": True, "relay": False, "fan": 0}
                assert app.device.outputs["led"].value() is True

                await one.send(json.dumps({"cmd": "rate", "rate": 500, "id": 2}))
                error = await next_of(one, "error")
                assert error["id"] == 2 and "between" in error["error"]
                assert app.device.rate == 2.0

                for junk in ("not json", "[1,2]", '{"nocmd":1}', '{"cmd":"self_destruct"}', b"\xff\x00"):
                    await one.send(junk)
                    assert (await next_of(one, "error"))["error"]
                await one.send(json.dumps({"cmd": "info", "id": "x"}))
                info = await next_of(one, "info")
                assert info["id"] == "x" and info["clients"] == 2 and info["board"] == "host"
                assert "token" not in info
        finally:
            await app.stop()
    run(body())


def test_a_rate_change_changes_the_stream_at_once():
    async def body():
        app = make_app(rate=0.5)  # one sample every 2 s
        url = await started(app)
        try:
            async with websockets.connect(url + "/ws") as ws:
                await ws.recv()
                await next_of(ws, "s")
                await ws.send(json.dumps({"cmd": "rate", "rate": 20}))
                await next_of(ws, "ack")
                start = time.monotonic()
                count = 0
                while time.monotonic() - start < 1.0:
                    await next_of(ws, "s")
                    count += 1
                assert count >= 12  # 20 Hz, not one sample in 2 s
        finally:
            await app.stop()
    run(body())


def test_binary_stream_carries_the_same_readings():
    async def body():
        app = make_app(rate=10)
        url = await started(app)
        try:
            async with websockets.connect(url + "/ws") as text, websockets.connect(url + "/ws/bin") as binary:
                hello = json.loads(await binary.recv())
                assert hello["t"] == "hello"
                await text.recv()
                by_seq = {}
                for _ in range(6):
                    sample = await next_of(text, "s")
                    by_seq[sample["seq"]] = sample
                matched = 0
                for _ in range(6):
                    frame = await asyncio.wait_for(binary.recv(), 5)
                    if isinstance(frame, str):
                        continue
                    magic, version, count, seq, ms = struct.unpack_from("<BBHII", frame)
                    assert (magic, version, count) == (0x53, 1, len(hello["sensors"]))
                    assert len(frame) == 12 + 4 * count
                    values = struct.unpack_from("<%df" % count, frame, 12)
                    if seq in by_seq:
                        assert ms == by_seq[seq]["ms"]
                        for got, want in zip(values, by_seq[seq]["v"]):
                            assert abs(got - want) <= abs(want) * 1e-6 + 1e-3
                        matched += 1
                assert matched >= 3
        finally:
            await app.stop()
    run(body())


def test_a_dashboard_that_never_reads_does_not_stall_sampling_for_the_others():
    async def body():
        app = make_app(rate=20)
        url = await started(app)
        port = app.server.port
        loop = asyncio.get_running_loop()
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.setblocking(False)
        try:
            await loop.sock_connect(stuck, ("127.0.0.1", port))
            head, _ = upgrade_head()
            await loop.sock_sendall(stuck, head)
            async with websockets.connect(url + "/ws") as ws:
                await ws.recv()
                seqs = []
                start = time.monotonic()
                while time.monotonic() - start < 3.0:
                    seqs.append((await next_of(ws, "s"))["seq"])
                assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # nothing lost
                assert len(seqs) >= 40  # 20 Hz went on
        finally:
            stuck.close()
            await app.stop()
    run(body())


def test_with_a_token_only_a_dashboard_that_presents_it_may_command():
    async def body():
        app = make_app(token="s3cret-token")
        url = await started(app)
        try:
            async with websockets.connect(url + "/ws") as anonymous:
                hello = json.loads(await anonymous.recv())
                assert hello["readonly"] is True and "why" not in hello  # no token: the usual banner
                await anonymous.send(json.dumps({"cmd": "led", "on": True, "id": 1}))
                assert "read-only" in (await next_of(anonymous, "error"))["error"]
                assert app.device.outputs["led"].value() is False
            async with websockets.connect(url + "/ws?token=wrong") as wrong:
                hello = json.loads(await wrong.recv())
                assert hello["readonly"] is True and hello["why"] == "wrong token"
            async with websockets.connect(url + "/ws?token=s3cret%2Dtoken") as owner:
                assert json.loads(await owner.recv())["readonly"] is False
                await owner.send(json.dumps({"cmd": "led", "on": True, "id": 2}))
                assert (await next_of(owner, "ack"))["on"] is True
                await owner.send(json.dumps({"cmd": "info"}))
                assert "s3cret" not in json.dumps(await next_of(owner, "info"))
        finally:
            await app.stop()
    run(body())


def test_wrong_token_guesses_are_limited_per_address():
    async def body():
        app = make_app(token="s3cret-token")
        url = await started(app)

        async def hello(query, local="127.0.0.1"):
            async with websockets.connect(url + "/ws" + query, local_addr=(local, 0)) as ws:
                return json.loads(await ws.recv())

        try:
            for n in range(5):
                h = await hello("?token=guess%d" % n)
                assert h["readonly"] is True and h["why"] == "wrong token"
            # the sixth attempt from that address is refused, even with the right token
            h = await hello("?token=s3cret-token")
            assert h["readonly"] is True and "too many wrong tokens" in h["why"]
            assert "s3cret" not in json.dumps(h)
            # no token at all is still the plain read-only dashboard
            assert "why" not in await hello("")
            # another address is not affected
            assert (await hello("?token=s3cret-token", local="127.0.0.2"))["readonly"] is False
        finally:
            await app.stop()
    run(body())


def test_token_guard_window_lockout_and_bounded_table():
    from token_guard import TokenGuard

    clock = Clock()
    guard = TokenGuard("right", clock, guesses=5, window_ms=60000, lockout_ms=300000, slots=4)
    assert guard.check("a", None) == "none"
    for _ in range(4):
        assert guard.check("a", "x") == "wrong"
    clock.advance(61000)  # the window is over: the count starts again
    for _ in range(4):
        assert guard.check("a", "x") == "wrong"
    assert guard.check("a", "right") == "ok"
    assert guard.check("a", "x") == "wrong"  # the 5th within a minute
    assert guard.check("a", "right") == "refused"
    assert guard.check("b", "right") == "ok"
    clock.advance(299000)
    assert guard.check("a", "right") == "refused"
    clock.advance(2000)
    assert guard.check("a", "right") == "ok"
    for n in range(20):  # many guessers: the table stays small
        guard.check("guesser%d" % n, "x")
    assert len(guard._table) <= 4


def test_commands_beyond_the_rate_limit_are_refused_and_the_stream_goes_on():
    async def body():
        app = make_app(rate=5)
        url = await started(app)
        try:
            async with websockets.connect(url + "/ws") as ws:
                await ws.recv()
                for n in range(30):
                    await ws.send(json.dumps({"cmd": "info", "id": n}))
                answers = []
                while len(answers) < 30:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if message["t"] in ("info", "error"):
                        answers.append(message)
                refused = [a for a in answers if a["t"] == "error"]
                assert 10 <= len(answers) - len(refused) <= 12  # the burst, plus what refilled
                assert all("too many commands" in a["error"] for a in refused)
                # every answer, refusals included, carries its command's id
                assert sorted(a["id"] for a in answers) == list(range(30))
                await next_of(ws, "s")
        finally:
            await app.stop()
    run(body())


def test_token_comparison():
    assert token_matches("abc", "abc")
    assert not token_matches("abd", "abc")
    assert not token_matches("ab", "abc")
    assert not token_matches("abcd", "abc")
    assert not token_matches("", "")  # an empty token never matches: no token means no check


def test_limiter_refills_at_its_rate():
    now = [0]
    limiter = CommandLimiter(lambda: now[0], per_second=5, burst=2)
    assert limiter.allow() and limiter.allow() and not limiter.allow()
    now[0] += 199
    assert not limiter.allow()
    now[0] += 1
    assert limiter.allow() and not limiter.allow()


class WrappingClock:
    """ticks_ms of a port with 30-bit ticks: wraps every 2**30 ms (12.4 days)."""

    PERIOD = 2 ** 30

    def __init__(self):
        self.total = 0

    def __call__(self):
        return self.total % self.PERIOD

    @classmethod
    def diff(cls, new, old):
        return ((new - old + cls.PERIOD // 2) % cls.PERIOD) - cls.PERIOD // 2


def test_uptime_is_right_after_weeks_without_a_dashboard_and_across_tick_wraps():
    """No client, so nothing samples: uptime must still see every wrap."""
    async def body():
        clock = WrappingClock()
        hw = hardware(seed=3, clock=clock)
        hw["ticks_diff"] = WrappingClock.diff
        checked = parse_config({"board": "host"}, HOST_BOARD, "test")
        app = App(HOST_BOARD, checked, hw, www=os.path.join(ROOT, "firmware", "www"), log=lambda *a: None)
        app.keep_time_ms = 5  # "every minute", fast
        await app.start("127.0.0.1", 0)
        try:
            day = 86400 * 1000
            for _ in range(40):  # 40 days in steps of 1 day, unwatched; 3 wraps of the ticks
                clock.total += day
                await asyncio.sleep(0.02)
            url = "ws://127.0.0.1:%d/ws" % app.server.port
            async with websockets.connect(url) as ws:
                await ws.recv()
                await ws.send(json.dumps({"cmd": "info", "id": 1}))
                info = await next_of(ws, "info")
            assert info["uptime_s"] == 40 * 86400
            uptime_sensor = [s for s in app.device.sensors if s.name == "uptime"][0]
            assert uptime_sensor.read() == 40 * 86400
        finally:
            await app.stop()
    run(body())


def test_status_route_says_how_full_the_device_is():
    """GET /status: what a page whose WebSocket got 503 reads to say "device busy"."""
    import urllib.request

    async def body():
        app = make_app()
        url = await started(app)
        http = url.replace("ws://", "http://") + "/status"

        def get():
            with urllib.request.urlopen(http, timeout=5) as answer:
                assert answer.headers["Content-Type"].startswith("application/json")
                return json.loads(answer.read())

        try:
            loop = asyncio.get_running_loop()
            assert await loop.run_in_executor(None, get) == {
                "clients": 0, "max_clients": HOST_BOARD["max_clients"], "device": "microws"}
            async with websockets.connect(url + "/ws") as ws:
                await ws.recv()
                assert (await loop.run_in_executor(None, get))["clients"] == 1
        finally:
            await app.stop()
    run(body())
