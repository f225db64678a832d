"""The server's I/O on CPython: asyncio streams, and the C-speed parts of the
standard library where MicroPython has viper.

CPython has heap to spare and a costly pass of the event loop (tens of
microseconds), so here: a read takes whatever has arrived (often many
frames), and the frames written in one pass of the event loop leave in one
send. The transport buffers what the client has not taken; past 64 KiB a
sender waits for it to drain, and broadcasts queue instead.
"""

import asyncio

BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 12\r\nConnection: close\r\nRetry-After: 5\r\n\r\nout of heap\n"
READ_CHUNK = 256 * 1024
HIGH_WATER = 64 * 1024  # asyncio's default: drain() waits above it
CLOSE_LINGER_S = 0.25  # between our FIN and the socket's close
WRITES_KEEP_COPIES = True  # a write keeps a copy of what it is given: give it bytes, shared by every client
SENDS_BEFORE_YIELD = 1 << 30  # never: sends past HIGH_WATER wait in drain()


# --- unmasking ----------------------------------------------------------------
# CPython has no vector XOR; two ways run at C speed. Up to a few hundred
# bytes: the payload as one integer, XORed with the key repeated by a
# multiplication. Beyond: every 4th byte through a translation table, four
# strided passes (the integer conversions cost about 2 ns a byte, this 1.3).
_BIGINT_MAX = 512
_REPEAT = None  # _REPEAT[k]: k ones, one every 32 bits (the key times it: k copies)
_XOR_TABLES = None  # _XOR_TABLES[m]: the bytes 0..255 XOR m


def unmask(buf, start, end, mask, phase):
    """CPython: XOR in place, the payload as one integer or in 4 strided passes."""
    global _REPEAT, _XOR_TABLES
    n = end - start
    if n <= 0:
        return
    p = phase & 3
    if n <= _BIGINT_MAX:
        if _REPEAT is None:
            _REPEAT = [int.from_bytes(b"\x01\x00\x00\x00" * k, "little") for k in range(_BIGINT_MAX // 4 + 2)]
        key = int.from_bytes(mask[p:] + mask[:p] if p else mask, "little") * _REPEAT[(n + 3) >> 2]
        value = int.from_bytes(buf[start:end], "little") ^ key
        if n & 3:
            value &= (1 << (n << 3)) - 1  # the key's last copy went past the end
        buf[start:end] = value.to_bytes(n, "little")
        return
    if _XOR_TABLES is None:
        _XOR_TABLES = [bytes(i ^ m for i in range(256)) for m in range(256)]
    for k in range(4):
        part = slice(start + k, end, 4)
        buf[part] = buf[part].translate(_XOR_TABLES[mask[(p + k) & 3]])



# --- UTF-8 ------------------------------------------------------------------------


def utf8_chunk_is_valid(buf, start, end):
    """True when CPython's strict decoder accepts the chunk (then it is valid
    RFC 3629 UTF-8 and ends on a character boundary)."""
    try:
        bytes(memoryview(buf)[start:end]).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- one connection ------------------------------------------------------------------


class Link:
    """One TCP connection as the server uses it: a stream reader and writer."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.transport = writer.transport
        try:
            self.peer = writer.get_extra_info("peername")
        except (KeyError, AttributeError):
            self.peer = None
        self.buffer = None
        self._chunk = None  # what the last read brought, not yet parsed
        self._chunk_pos = 0
        self._eof = False
        self._filling = None  # the read read_soon() started
        self._parts = []  # written in this pass of the event loop
        self._size = 0
        self._backlog = 0  # the transport's buffer at the last flush

    # ----------------------------------------------- request head, plain HTTP

    async def read_line(self, limit):
        try:
            return await self.reader.readline()
        except ValueError:  # longer than the stream's own limit (64 KiB)
            return bytes(limit)  # too long for the head: answered with 431

    async def write_all(self, data):
        self.write_now(data, 0, len(data))
        await self.drain()

    # ----------------------------------------------------------- WebSocket

    def attach(self, conn):
        self.buffer = conn.buffer

    def read_now(self, pos, size):
        """Copy up to size bytes of what has arrived to buffer[pos:]: None when
        nothing is waiting, 0 at the end of the stream."""
        chunk = self._chunk
        if chunk is None:
            return 0 if self._eof else None
        at = self._chunk_pos
        n = len(chunk) - at
        if n > size:
            n = size
        self.buffer[pos : pos + n] = chunk[at : at + n]
        at += n
        if at == len(chunk):
            self._chunk = None
        else:
            self._chunk_pos = at
        return n

    async def wait_readable(self):
        if self._filling is not None:  # read_soon() is reading already
            await self._filling
            return
        data = await self.reader.read(READ_CHUNK)
        if data:
            self._chunk = memoryview(data)
            self._chunk_pos = 0
        else:
            self._eof = True

    def read_soon(self):
        """For a handler busy elsewhere (housekeeping calls this): read in
        the background, so that its pongs and its client's close are seen.
        read_now() only hands out what a read brought."""
        if self._filling is None and self._chunk is None and not self._eof:
            self._filling = asyncio.ensure_future(self._fill())

    async def _fill(self):
        try:
            data = await self.reader.read(READ_CHUNK)
        except (OSError, asyncio.IncompleteReadError):
            data = b""
        finally:
            self._filling = None
        if data:
            self._chunk = memoryview(data)
            self._chunk_pos = 0
        else:
            self._eof = True

    def has_room(self, size):
        """Can size more bytes be written with no drain() needed after?"""
        return self._size + self._backlog + size <= HIGH_WATER

    def must_drain(self):
        """Might drain() wait, or report a lost connection?"""
        return self._size + self._backlog > HIGH_WATER

    def write_now(self, buf, start, size):
        """Keep the bytes for this pass's one send (a copy: the caller's
        buffers are reused) and schedule it; all of them are taken."""
        if not self._parts:
            asyncio.get_running_loop().call_soon(self.flush)
        if start or size != len(buf) or type(buf) is not bytes:
            buf = bytes(memoryview(buf)[start : start + size])
        self._parts.append(buf)
        self._size += size
        return size

    def write_frame(self, header, header_size, payload, size):
        """A frame's header and payload; the bytes taken (all of them)."""
        self.write_now(header, 0, header_size)
        return header_size + self.write_now(payload, 0, size)

    def flush(self):
        parts = self._parts
        if not parts:
            return
        self._parts = []
        self._size = 0
        transport = self.transport
        if transport.is_closing():
            self._backlog = HIGH_WATER + 1  # the next drain() reports it
            return  # aborted or closed: nothing will be sent
        self.writer.write(parts[0] if len(parts) == 1 else b"".join(parts))
        self._backlog = transport.get_write_buffer_size()

    async def drain(self):
        self.flush()
        await self.writer.drain()
        self._backlog = self.transport.get_write_buffer_size()

    def refuse(self):
        """Out of memory before any 101: answer 503 and close."""
        self.write_now(BUSY, 0, len(BUSY))
        self.close()

    def close(self):
        """Send what is written and end our side (FIN); close a moment later.
        Closing at once, with input unread (a pong that crossed our close),
        would reset the connection, and the peer could lose our close frame."""
        if self._filling is not None:
            self._filling.cancel()
        self.flush()
        transport = self.transport
        if transport.is_closing():
            return
        if transport.can_write_eof():
            try:
                transport.write_eof()
                asyncio.get_running_loop().call_later(CLOSE_LINGER_S, self._close_transport)
                return
            except (OSError, RuntimeError):
                pass
        self._close_transport()

    def _close_transport(self):
        transport = self.transport
        if transport.is_closing():
            return
        transport.close()
        if transport.get_write_buffer_size():
            asyncio.get_running_loop().call_later(2, transport.abort)  # a peer that never reads


class Receiver:
    """ws.receive_message(): read and parse until a message is whole."""

    def __init__(self, ws):
        self.ws = ws

    def start(self):
        return self._run()

    async def _run(self):
        ws = self.ws
        while not ws._pump():
            try:
                await ws.link.wait_readable()
            except (OSError, asyncio.IncompleteReadError):
                ws.link._eof = True
        return ws.message


class Sender:
    """A send that must wait: for queued frames, or for the transport to drain."""

    def __init__(self, ws):
        self.ws = ws

    def start(self):
        return self._run()

    async def _run(self):
        ws = self.ws
        from .connection import ConnectionClosed

        try:
            while not ws._continue_send():
                await ws.link.drain()
            if ws.link.must_drain():
                await ws.link.drain()
        except OSError as error:
            ws._lost()
            raise ConnectionClosed("connection lost: %s" % error)


class Done:
    """An awaitable that is already done."""

    def __await__(self):
        return iter(())


class Yield:
    """Never used on CPython (SENDS_BEFORE_YIELD), here for the same names."""

    def __await__(self):
        return asyncio.sleep(0).__await__()


class Listener:
    def __init__(self, server):
        self.server = server

    @property
    def port(self):
        sockets = getattr(self.server, "sockets", None)
        return sockets[0].getsockname()[1] if sockets else None

    async def close(self):
        self.server.close()
        try:
            await asyncio.wait_for(self.server.wait_closed(), 1)
        except asyncio.TimeoutError:
            pass


async def listen(server, host, port, ssl):
    async def serve(reader, writer):
        await server._serve_client(Link(reader, writer))

    if ssl is None:
        listener = await asyncio.start_server(serve, host, port)
    else:
        listener = await asyncio.start_server(serve, host, port, ssl=ssl)
    return Listener(listener)
