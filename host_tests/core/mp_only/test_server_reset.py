"""The asyncio server under MicroPython when the peer's connection resets.

The WebAssembly port has no sockets, so a small in-memory object plays
MicroPython's asyncio Stream (readinto, write that tries the socket at once,
drain, s.close, wait_closed). A reset makes reads and writes raise OSError,
as lwIP does; the server must end the connection cleanly (MicroPython has no
ConnectionError: catching it there would be a NameError).
"""

import asyncio

from microws.frames import OP_TEXT, encode_frame
from microws.server import ConnectionClosed, Server

MASK = b"\x11\x22\x33\x44"
HEAD = (b"GET /ws HTTP/1.1\r\nHost: d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
ECONNRESET = 104


class Socket:
    def __init__(self, stream):
        self.stream = stream

    def close(self):
        self.stream.closed = True
        self.stream.more.set()


class Stream:
    """One accepted connection: the peer's bytes come from feed()."""

    def __init__(self):
        self.incoming = bytearray()
        self.written = bytearray()
        self.more = asyncio.Event()
        self.reset = False
        self.closed = False
        self.s = Socket(self)
        self.out_buf = b""

    def feed(self, data):
        self.incoming += data
        self.more.set()

    def reset_by_peer(self):
        self.reset = True
        self.more.set()

    async def readinto(self, buf):
        await asyncio.sleep_ms(0)
        while not self.incoming:
            if self.reset:
                raise OSError(ECONNRESET)
            if self.closed:
                return 0
            self.more.clear()
            await self.more.wait()
        n = min(len(buf), len(self.incoming))
        buf[:n] = self.incoming[:n]
        self.incoming = self.incoming[n:]
        return n

    async def readline(self):
        line = bytearray()
        while not line.endswith(b"\n"):
            one = bytearray(1)
            if not await self.readinto(one):
                break
            line += one
        return bytes(line)

    async def read(self, n=-1):
        buf = bytearray(n if n > 0 else 4096)
        got = await self.readinto(buf)
        return bytes(buf[:got])

    def write(self, data):
        if self.reset or self.closed:
            raise OSError(ECONNRESET)
        self.written += data

    async def drain(self):
        await asyncio.sleep_ms(0)
        if self.reset:
            raise OSError(ECONNRESET)

    def close(self):
        pass

    async def wait_closed(self):
        self.closed = True
        self.more.set()

    def get_extra_info(self, name):
        return ("10.0.0.9", 50000) if name == "peername" else None


async def until(condition, what):
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep_ms(1)
    raise AssertionError("timed out waiting for " + what)


def make_server(handler):
    server = Server(max_clients=4, ping_interval=0, log=lambda *args: None)
    server.websocket("/ws")(handler)
    return server


async def test_a_reset_while_the_handler_waits_ends_the_connection_cleanly():
    seen = []
    ended = []

    async def handler(ws):
        async for message in ws:
            seen.append(message)
        ended.append(ws.close_code)

    server = make_server(handler)
    stream = Stream()
    task = asyncio.create_task(server._serve_client(stream, stream))
    stream.feed(HEAD + encode_frame(OP_TEXT, b"hello", mask=MASK))
    await until(lambda: seen, "the first message")
    stream.reset_by_peer()
    await asyncio.wait_for(task, 5)  # a NameError or OSError would surface here
    assert seen == ["hello"]
    assert ended == [1006]
    assert not server.clients
    assert stream.closed


async def test_send_after_a_reset_raises_connection_closed():
    outcome = []
    proceed = asyncio.Event()

    async def handler(ws):
        await ws.receive()
        await proceed.wait()
        try:
            for _ in range(3):
                await ws.send("reading 21.5")
            outcome.append("sent")
        except ConnectionClosed:
            outcome.append("closed")
        except Exception as error:  # OSError or NameError would be the bug
            outcome.append(repr(error))

    server = make_server(handler)
    stream = Stream()
    task = asyncio.create_task(server._serve_client(stream, stream))
    stream.feed(HEAD + encode_frame(OP_TEXT, b"start", mask=MASK))
    await until(lambda: server.clients, "the client")
    stream.reset = True  # writes fail; the reader has not noticed yet
    proceed.set()
    await until(lambda: outcome, "the handler")
    assert outcome == ["closed"], outcome
    stream.reset_by_peer()
    await asyncio.wait_for(task, 5)
    assert not server.clients


async def test_broadcast_to_a_reset_client_leaves_the_others_served():
    async def handler(ws):
        async for _ in ws:
            pass

    server = make_server(handler)
    good, bad = Stream(), Stream()
    tasks = [asyncio.create_task(server._serve_client(s, s)) for s in (good, bad)]
    for stream in (good, bad):
        stream.feed(HEAD)
    await until(lambda: len(server.clients) == 2, "two clients")
    bad.reset = True
    group = server.group("/ws")
    before = len(good.written)
    for i in range(20):
        group.broadcast("sample %d" % i)
        await asyncio.sleep_ms(1)
    await until(lambda: len(server.clients) == 1, "the reset client to go")
    assert len(good.written) - before >= 20 * len(b"sample 0")
    bad.reset_by_peer()
    good.reset_by_peer()
    for task in tasks:
        await asyncio.wait_for(task, 5)
    assert not server.clients
