"""The server's steady state allocates nothing, proven on real MicroPython
with real sockets: the unix port runs host_tests/mp_alloc/zero_alloc_server.py,
which locks its heap (micropython.heap_lock) on request. Any allocation
while it is locked raises MemoryError, and the client would get a close
1011 or lose the connection instead of its answers.
"""

import asyncio
import os
import socket
import subprocess
import time

import pytest

from host_tests.processes import free_port, micropython_command
import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "zero_alloc_server.py")


@pytest.fixture
def server():
    port = free_port()
    proc = subprocess.Popen([micropython_command(), "-X", "heapsize=256k", SERVER, str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    assert line.startswith("ready"), line + proc.stdout.read()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    proc.terminate()
    output = proc.communicate(timeout=5)[0]
    print(output)
    assert "MemoryError" not in output, output


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def test_echo_broadcast_and_pings_allocate_nothing_with_the_heap_locked(server):
    async def body():
        url = "ws://127.0.0.1:%d" % server
        async with websockets.connect(url + "/echo") as ws, \
                websockets.connect(url + "/push") as push1, websockets.connect(url + "/push") as push2:
            for _ in range(50):  # warm up: every path has run once
                await ws.send(b"w" * 16)
                await ws.recv()
            await ws.send("!bcast 1")
            await ws.recv()
            await push1.recv()
            await push2.recv()

            await ws.send("!lock")
            assert await ws.recv() == "locked"
            started = time.monotonic()
            for i in range(300):
                await ws.send(bytes([i % 256]) * 16)
                assert await ws.recv() == bytes([i % 256]) * 16
                await ws.send("text %d" % i)
                assert await ws.recv() == "text %d" % i
            for i in range(100):
                payload = bytes([i % 256]) * 1024
                await ws.send(payload)
                assert await ws.recv() == payload
            await ws.send("!bcast 5")
            assert await ws.recv() == "locked"
            for client in (push1, push2):
                for _ in range(5):
                    frame = await client.recv()
                    assert len(frame) == 64 and frame[:3] == b"ABC"
            for client in (ws, push1, push2):
                await asyncio.wait_for(await client.ping(), 5)  # the server's pong
            # long enough for the server's keepalive pings (every 0.5 s) to go out
            await asyncio.sleep(max(0, 1.5 - (time.monotonic() - started)))
            await ws.send("!unlock")
            answer = await ws.recv()
            # "unlocked <lock was effective> <messages echoed locked> <broadcasts locked>"
            assert answer == "unlocked 1 700 5", answer
            assert ws.latency > 0 or push1.latency > 0  # keepalive pings reached the clients
            await ws.send("after")
            assert await ws.recv() == "after"
    run(body())
