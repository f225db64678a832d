"""The server under MicroPython against an independent client: `websockets`.

Each test starts host_tests/mp_server/serve.py under the MicroPython unix
port (1 MB heap, messages up to 64 KiB, lib/ loaded from source) and talks
to it over loopback.
"""

import asyncio
import json
import time

import pytest
import websockets
from mpclient import http_get
from websockets.exceptions import ConnectionClosed

HEAP = "1m"
MAX_SIZE = 65536
SIZES = [0, 1, 125, 126, 127, 1000, 65535, 65536]


def run(coroutine, timeout=60):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


@pytest.fixture
def server(mp_server):
    return mp_server(heap=HEAP, max_size=MAX_SIZE, max_clients=4)


def text_of_size(n):
    """A str of exactly n UTF-8 bytes, mostly two-byte characters."""
    return "\u00e9" * (n // 2) + "a" * (n % 2)


def binary_of_size(n):
    return bytes(i * 7 & 0xFF for i in range(n))


@pytest.mark.parametrize("size", SIZES)
def test_text_and_binary_echo_at_length_boundaries(server, size):
    async def body():
        async with websockets.connect(server.url()) as client:
            text = text_of_size(size)
            await client.send(text)
            assert await client.recv() == text
            data = binary_of_size(size)
            await client.send(data)
            assert await client.recv() == data
    run(body())
    server.assert_serving()


def test_fragmented_messages_from_the_client(server):
    async def body():
        async with websockets.connect(server.url()) as client:
            await client.send(["frag", "men", "ted \u00e9\U0001f600"])
            assert await client.recv() == "fragmented \u00e9\U0001f600"
            await client.send([b"\x01", b"", b"\x02\x03"])
            assert await client.recv() == b"\x01\x02\x03"
            # 16 fragments making exactly the largest message allowed
            parts = [binary_of_size(4096)] * 16
            await client.send(parts)
            assert await client.recv() == b"".join(parts)
            text_parts = [text_of_size(4096)] * 16
            await client.send(text_parts)
            assert await client.recv() == "".join(text_parts)
    run(body())


def test_ping_gets_pong(server):
    async def body():
        async with websockets.connect(server.url()) as client:
            for payload in (b"", b"are you there", bytes(range(125))):
                pong = await client.ping(payload)
                latency = await asyncio.wait_for(pong, 5)
                assert latency >= 0
            await client.send("after pings")
            assert await client.recv() == "after pings"
    run(body())


def test_client_close_code_and_reason(server):
    async def body():
        client = await websockets.connect(server.url())
        await client.send("hello")
        assert await client.recv() == "hello"
        await asyncio.wait_for(client.close(4000, "done here"), 10)
        assert client.protocol.close_sent.code == 4000
        assert client.protocol.close_rcvd is not None, "the server sent no close frame"
        assert client.protocol.close_rcvd.code == 4000  # the server echoes the code (RFC 6455 5.5.1)
    run(body())
    # the handler saw the client's code
    for _ in range(50):
        status, _, body = http_get(server.port, "/last-close")
        if json.loads(body.decode())["code"] is not None:
            break
        time.sleep(0.02)
    assert status == 200
    assert json.loads(body.decode()) == {"code": 4000}


@pytest.mark.parametrize("code, reason", [(1000, ""), (4321, "bye now"), (1001, "\u00e9t\u00e9 " * 20)])
def test_server_close_code_and_reason_reach_the_client(server, code, reason):
    async def body():
        async with websockets.connect(server.url("/close")) as client:
            await client.send("%d %s" % (code, reason))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(client.recv(), 10)
            assert client.protocol.close_rcvd is not None, "no close frame from the server"
            assert client.protocol.close_rcvd.code == code
            assert client.protocol.close_rcvd.reason == reason
            assert client.protocol.close_sent is not None and client.protocol.close_sent.code == code
    run(body())
    server.assert_serving()


@pytest.mark.parametrize("offered, chosen", [
    (["chat", "sensors.v1"], "sensors.v1"),
    (["sensors.v1", "sensors.v2"], "sensors.v1"),  # the client's order decides
    (["sensors.v2"], "sensors.v2"),
    (["chat"], None),
    (None, None),
])
def test_subprotocol_selection(server, offered, chosen):
    async def body():
        async with websockets.connect(server.url("/proto"), subprotocols=offered) as client:
            assert client.subprotocol == chosen
            assert client.response.headers.get("Sec-WebSocket-Protocol") == chosen
            assert await client.recv() == (chosen or "none")
            await client.send("and echo")
            assert await client.recv() == "and echo"
    run(body())


def test_many_messages_pipelined(server):
    count = 2000

    def message(i):
        if i % 3 == 0:
            return "message %d %s" % (i, "\u00e9" * (i % 200))
        return binary_of_size(i % 1500) + b"#%d" % i

    async def body():
        async with websockets.connect(server.url()) as client:
            async def send_all():
                for i in range(count):
                    await client.send(message(i))

            async def receive_all():
                for i in range(count):
                    got = await asyncio.wait_for(client.recv(), 10)
                    assert got == message(i), "message %d came back wrong or out of order" % i
                return count

            results = await asyncio.gather(send_all(), receive_all())
            assert results[1] == count
    run(body(), timeout=120)


def test_four_clients_interleaved(server):
    async def body():
        clients = [await websockets.connect(server.url()) for _ in range(4)]

        async def talk(i, client):
            for n in range(100):
                text = "client %d says %d" % (i, n)
                await client.send(text)
                assert await client.recv() == text
            await client.close()
            return client.protocol.close_rcvd.code

        assert await asyncio.gather(*(talk(i, c) for i, c in enumerate(clients))) == [1000] * 4
    run(body())


def test_message_over_the_limit_closes_with_1009_and_others_go_on(server):
    async def body():
        async with websockets.connect(server.url()) as other:
            async with websockets.connect(server.url()) as client:
                await client.send(bytes(MAX_SIZE + 1))
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(client.recv(), 10)
                assert client.protocol.close_rcvd is not None and client.protocol.close_rcvd.code == 1009
            await other.send("unaffected")
            assert await other.recv() == "unaffected"
    run(body())
    server.assert_serving()
