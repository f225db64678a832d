"""A minimal WebSocket client over asyncio streams, for tests that need to
misbehave (never read, never pong, send byte by byte) where a real client
library would not let them."""

import asyncio
import base64
import contextlib
import os
import struct

from microws.frames import OP_CLOSE
from microws.sansio import encode_frame
from microws.handshake import accept_key

MASK = b"\x11\x22\x33\x44"


def upgrade_head(path="/ws", host="127.0.0.1", extra=()):
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % host, "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
    lines.extend("%s: %s" % pair for pair in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), key


async def http_request(port, head, timeout=5):
    """Send raw bytes, return everything the server answers until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def split_response(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


class RawClient:
    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port, path="/ws", extra=()):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head, key = upgrade_head(path, extra=extra)
        writer.write(head)
        await writer.drain()
        response = await reader.readuntil(b"\r\n\r\n")
        status, headers, _ = split_response(response)
        assert status == 101, response
        assert headers["sec-websocket-accept"] == accept_key(key)
        return cls(reader, writer)

    def send_frame(self, opcode, payload=b"", fin=True):
        self.writer.write(encode_frame(opcode, payload, fin, MASK))

    async def send(self, opcode, payload=b"", fin=True):
        self.send_frame(opcode, payload, fin)
        await self.writer.drain()

    async def read_frame(self, timeout=5):
        """(opcode, payload) of the next frame; checks the server's framing."""
        head = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        assert head[0] & 0x70 == 0, "RSV bits from the server"
        assert head[1] & 0x80 == 0, "a server must not mask"
        length = head[1] & 0x7F
        if length == 126:
            length = struct.unpack(">H", await self.reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack(">Q", await self.reader.readexactly(8))[0]
        payload = await asyncio.wait_for(self.reader.readexactly(length), timeout)
        return head[0] & 0x0F, payload

    async def read_close(self, timeout=5):
        """The close code the server sends next, skipping other frames."""
        while True:
            opcode, payload = await self.read_frame(timeout)
            if opcode == OP_CLOSE:
                return struct.unpack(">H", payload[:2])[0] if payload else None

    async def at_eof(self, timeout=5):
        """True once the server has closed the TCP connection."""
        with contextlib.suppress(ConnectionError):
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            while data:
                data = await asyncio.wait_for(self.reader.read(65536), timeout)
        return True

    def close(self):
        self.writer.close()
