"""Many short connections leave nothing behind; wss:// with a certificate
made by the test."""

import asyncio
import gc
import os
import ssl
import subprocess
import sys
import tracemalloc

import pytest
import websockets

from microws.runtime_cpython import CLOSE_LINGER_S
from microws.server import Server

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "server"))
from rawclient import upgrade_head  # noqa: E402

CYCLES = int(os.environ.get("MICROWS_CYCLES", "10000"))
CLOSE_1000 = b"\x88\x82\x00\x00\x00\x00\x03\xe8"  # masked with a zero key


def echo_server(**options):
    server = Server(log=lambda *a: None, ping_interval=0, **options)

    @server.websocket("/ws")
    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    return server


async def one_cycle(port, head):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    answer = await reader.readuntil(b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 101 "), answer
    writer.write(CLOSE_1000)
    reply = await reader.readexactly(4)
    assert reply == b"\x88\x02\x03\xe8", reply
    assert await reader.read() == b""  # the server ends the TCP connection
    writer.close()
    await writer.wait_closed()


def live_connection_objects():
    """Streams and transports alive now: a leaked connection keeps them."""
    kinds = (asyncio.StreamReader, asyncio.StreamWriter, asyncio.Transport)
    return sum(1 for o in gc.get_objects() if isinstance(o, kinds))


async def settle():
    """Long enough for the server's delayed socket closes to run, then a
    full collection, so what is measured is what stays."""
    await asyncio.sleep(CLOSE_LINGER_S + 0.3)
    gc.collect()


def test_ten_thousand_connect_close_cycles_leave_no_memory_behind():
    """Two halves are measured apart. A leak grows in both; a one-off
    (a dict or the loop's task set growing a size) shows in one at most."""
    half = CYCLES // 2

    async def body():
        server = echo_server(max_clients=4)
        await server.start("127.0.0.1", 0)
        port = server.port
        head, _ = upgrade_head()
        try:
            for _ in range(500):  # warm up: caches, free lists, the loop's structures
                await one_cycle(port, head)
            await settle()
            marks = [(tracemalloc.get_traced_memory()[0], live_connection_objects())]
            for _ in range(2):
                for _ in range(half):
                    await one_cycle(port, head)
                await settle()
                marks.append((tracemalloc.get_traced_memory()[0], live_connection_objects()))
            assert server.clients == [] and server._links == []
            return marks
        finally:
            await server.stop()

    tracemalloc.start()
    try:
        marks = asyncio.run(asyncio.wait_for(body(), 300))
    finally:
        tracemalloc.stop()
    growth = [marks[i + 1][0] - marks[i][0] for i in range(2)]
    print("memory over two halves of %d cycles: %+d, %+d bytes; live streams and transports %s"
          % (half, growth[0], growth[1], [m[1] for m in marks]))
    assert marks[1][1] <= marks[0][1] and marks[2][1] <= marks[0][1], "connections stay alive: %s" % marks
    # 32 KB over 5,000 cycles is 6.5 bytes a cycle: any per-connection leak is more
    assert min(growth) < 32 * 1024, "grew in both halves: %s bytes over %d cycles each" % (growth, half)


def make_certificate(folder):
    """A self-signed certificate for 127.0.0.1, made by openssl or cryptography."""
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("openssl is needed to make the test certificate (apt-get install -y openssl)")
    return cert, key


def test_wss_echo_with_a_self_signed_certificate(tmp_path):
    cert, key = make_certificate(str(tmp_path))

    async def body():
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(cert, key)
        client_context = ssl.create_default_context(cafile=cert)
        server = echo_server()
        await server.start("127.0.0.1", 0, ssl=server_context)
        try:
            url = "wss://127.0.0.1:%d/ws" % server.port
            async with websockets.connect(url, ssl=client_context) as ws:
                for message in ("over TLS", b"\x00\x01" * 500, "é" * 300):
                    await ws.send(message)
                    assert await ws.recv() == message
            # a client that does not trust the certificate cannot connect
            try:
                async with websockets.connect(url, ssl=ssl.create_default_context()):
                    raise AssertionError("an untrusted certificate was accepted")
            except ssl.SSLCertVerificationError:
                pass
            # plain ws:// to the TLS port gets nothing useful, and the server goes on
            try:
                async with websockets.connect("ws://127.0.0.1:%d/ws" % server.port, open_timeout=3):
                    raise AssertionError("plain ws:// accepted on the TLS port")
            except (websockets.exceptions.InvalidMessage, websockets.exceptions.InvalidHandshake, OSError,
                    asyncio.TimeoutError, EOFError):
                pass
            async with websockets.connect(url, ssl=client_context) as ws:
                await ws.send("still serving")
                assert await ws.recv() == "still serving"
        finally:
            await server.stop()

    asyncio.run(asyncio.wait_for(body(), 60))


def test_a_flood_of_connections_beyond_the_limit_gets_503_while_the_served_keep_echoing():
    async def body():
        server = echo_server(max_clients=4)
        await server.start("127.0.0.1", 0)
        url = "ws://127.0.0.1:%d/ws" % server.port
        try:
            served = [await websockets.connect(url) for _ in range(4)]

            async def intruder():
                try:
                    async with websockets.connect(url, open_timeout=10):
                        return "accepted"
                except websockets.exceptions.InvalidStatus as error:
                    return error.response.status_code

            async def keep_echoing(ws, n):
                for i in range(n):
                    await ws.send("%d" % i)
                    assert await ws.recv() == "%d" % i
                return n

            results = await asyncio.gather(*[intruder() for _ in range(100)],
                                           *[keep_echoing(ws, 50) for ws in served])
            assert results[:100] == [503] * 100
            assert results[100:] == [50] * 4
            assert len(server.clients) == 4
            for ws in served:
                await ws.close()
        finally:
            await server.stop()

    asyncio.run(asyncio.wait_for(body(), 120))
