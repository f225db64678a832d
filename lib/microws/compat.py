"""The one place that knows whether we run on MicroPython or CPython.

Everything else in microws imports runtime-dependent names from here, so a
difference between the two runtimes is handled once, next to its reason.
"""

import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"

try:
    from micropython import const  # noqa: F401  (folded away at compile time)
except ImportError:

    def const(value):
        return value


try:
    from time import ticks_add, ticks_diff, ticks_ms  # noqa: F401
except ImportError:
    import time as _time

    def ticks_ms():
        return int(_time.monotonic() * 1000)

    def ticks_diff(new, old):
        return new - old

    def ticks_add(ticks, delta):
        return ticks + delta


# --- SHA-1 for Sec-WebSocket-Accept -----------------------------------------
# Boards with Wi-Fi have hashlib.sha1; some builds (the WebAssembly port among
# them) do not, and fall back to a small pure-Python SHA-1.
try:
    from hashlib import sha1 as _native_sha1

    _native_sha1(b"")
except (ImportError, AttributeError):
    _native_sha1 = None

if _native_sha1 is not None:
    sha1 = _native_sha1
else:
    from .sha1 import sha1  # noqa: F401

HAVE_NATIVE_SHA1 = _native_sha1 is not None


# --- Unmasking ---------------------------------------------------------------
# unmask(buf, start, end, mask, phase) XORs buf[start:end] in place with the
# 4-byte mask, starting at byte `phase` of the mask (a frame's payload may
# arrive in several reads). It must allocate nothing on MicroPython.


def _unmask_python(buf, start, end, mask, phase):
    """Portable fallback: one XOR per byte, nothing allocated."""
    m0 = mask[phase & 3]
    m1 = mask[(phase + 1) & 3]
    m2 = mask[(phase + 2) & 3]
    m3 = mask[(phase + 3) & 3]
    i = start
    last4 = end - 3
    while i < last4:
        buf[i] ^= m0
        buf[i + 1] ^= m1
        buf[i + 2] ^= m2
        buf[i + 3] ^= m3
        i += 4
    if i < end:
        buf[i] ^= m0
        if i + 1 < end:
            buf[i + 1] ^= m1
            if i + 2 < end:
                buf[i + 2] ^= m2


# CPython has no vector XOR; two ways run at C speed. Up to a few hundred
# bytes: the payload as one integer, XORed with the key repeated by a
# multiplication. Beyond: every 4th byte through a translation table, four
# strided passes (the integer conversions cost about 2 ns a byte, this 1.3).
_BIGINT_MAX = 512
_REPEAT = None  # _REPEAT[k]: k ones, one every 32 bits (the key times it: k copies)
_XOR_TABLES = None  # _XOR_TABLES[m]: the bytes 0..255 XOR m


def _unmask_bigint(buf, start, end, mask, phase):
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


# The viper version is compiled at run time because mpy-cross refuses native
# code without a target architecture, and ports without a native emitter (the
# WebAssembly one) raise SyntaxError; those keep the portable loop.
_VIPER_UNMASK = """
@micropython.viper
def unmask(buf: ptr8, start: int, end: int, mask: ptr8, phase: int):
    i = start
    j = phase
    while i < end:
        buf[i] ^= mask[j & 3]
        i += 1
        j += 1
"""


def _load_viper_unmask():
    try:
        import micropython

        scope = {"micropython": micropython}
        exec(_VIPER_UNMASK, scope)
        return scope["unmask"]
    except Exception:  # SyntaxError, or no native emitter on this port
        return None


if IS_MICROPYTHON:
    unmask = _load_viper_unmask() or _unmask_python
else:
    unmask = _unmask_bigint

UNMASK_KIND = (
    "viper" if unmask not in (_unmask_python, _unmask_bigint) else
    ("python" if unmask is _unmask_python else "bigint")
)


# --- UTF-8 fast path -----------------------------------------------------------
# CPython's strict decoder agrees with RFC 3629, so when it accepts a chunk
# that starts on a character boundary the chunk is valid and ends on one.
# MicroPython's decoder is lax (overlongs, surrogates pass): it never decides.
if IS_MICROPYTHON:

    def utf8_chunk_is_valid(buf, start, end):
        return False

else:

    def utf8_chunk_is_valid(buf, start, end):
        try:
            bytes(memoryview(buf)[start:end]).decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True


# --- asyncio streams -----------------------------------------------------------
# MicroPython hands the server one Stream for reading and writing; CPython a
# StreamReader and a StreamWriter. MicroPython's Stream has readinto() and
# keeps unsent bytes in `out_buf` until drain(); its close() does nothing and
# wait_closed() closes the socket. CPython's reader has no readinto().
try:
    import asyncio
except ImportError:  # MicroPython before 1.21
    import uasyncio as asyncio  # noqa: F401

if IS_MICROPYTHON:

    async def read_into(reader, view):
        """Read up to len(view) bytes into view; 0 at the end of the stream."""
        while True:
            n = await reader.readinto(view)
            if n is not None:
                return n

    def pending_output(writer):
        return len(writer.out_buf)

    def abort(writer):
        """Drop the TCP connection now, unsent bytes and all."""
        try:
            writer.s.close()
        except OSError:
            pass

    async def close_stream(writer):
        await writer.wait_closed()

    def sleep_ms(ms):
        return asyncio.sleep_ms(ms)

else:

    async def read_into(reader, view):
        """Read up to len(view) bytes into view; 0 at the end of the stream."""
        data = await reader.read(len(view))
        n = len(data)
        view[:n] = data
        return n

    def pending_output(writer):
        transport = writer.transport
        return 0 if transport.is_closing() else transport.get_write_buffer_size()

    def abort(writer):
        """Drop the TCP connection now, unsent bytes and all."""
        writer.transport.abort()

    async def close_stream(writer):
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ConnectionError):
            pass

    def sleep_ms(ms):
        return asyncio.sleep(ms / 1000)



# --- how the server moves bytes ----------------------------------------------
# MicroPython: read exactly what the parser asks for, straight into the
# connection's buffer (no second buffer on a small heap); one message waits
# for the handler at a time; every write goes to the stream at once.
# CPython: the reader hands out new bytes anyway, so take whatever has
# arrived (one await for many frames) and feed it to the parser piece by
# piece; let messages wait for the handler (up to 64 or 64 KiB: one task
# switch and one send for a burst of them, where each pass of the event loop
# costs tens of microseconds); and join the frames written in one pass of
# the event loop into one send.
if IS_MICROPYTHON:
    READ_CHUNK = 0
    RECEIVE_QUEUE = 1
    RECEIVE_QUEUE_BYTES = 64 * 1024

    async def _raise(error):
        raise error

    class Output:
        """The server's writes to one client (MicroPython: the stream itself).

        The stream's write() tries the socket at once, so a reset connection
        raises there; keep the error for drain() to raise, as CPython's
        transport does, so every caller meets it in one place.
        """

        def __init__(self, writer):
            self.writer = writer
            self.error = None

        def write(self, data):
            if self.error is None:
                try:
                    self.writer.write(data)
                except OSError as error:
                    self.error = error

        def flush(self):
            pass

        def must_drain(self):
            # Always: the stream keeps what the socket did not take until
            # drain(), and drain() is where a sending task yields to others.
            return True

        def has_room(self, size):
            return False  # every frame goes through the broadcast queue

        def drain(self):
            if self.error is not None:
                return _raise(self.error)
            return self.writer.drain()

else:
    READ_CHUNK = 256 * 1024
    RECEIVE_QUEUE = 64
    RECEIVE_QUEUE_BYTES = 64 * 1024
    _HIGH_WATER = 64 * 1024  # asyncio's default: drain() waits above it

    class Output:
        """The server's writes to one client, joined per pass of the event loop.

        write() keeps the data (a copy of anything mutable: header views are
        reused, a caller's bytearray may change) and schedules one flush,
        which runs once the tasks that are ready have had their turn: the
        replies to a burst of messages leave in one send.
        """

        def __init__(self, writer):
            self.writer = writer
            self.transport = writer.transport
            self._parts = []
            self._size = 0
            self._backlog = 0  # the transport's buffer at the last flush

        def write(self, data):
            if type(data) is not bytes:
                data = bytes(data)
            if not self._parts:
                asyncio.get_running_loop().call_soon(self.flush)
            self._parts.append(data)
            self._size += len(data)

        def flush(self):
            parts = self._parts
            if not parts:
                return
            self._parts = []
            self._size = 0
            transport = self.transport
            if transport.is_closing():
                self._backlog = _HIGH_WATER + 1  # the next drain() reports it
                return  # aborted or closed: nothing will be sent
            self.writer.write(parts[0] if len(parts) == 1 else b"".join(parts))
            self._backlog = transport.get_write_buffer_size()

        def must_drain(self):
            """Might drain() wait, or report a lost connection?"""
            return self._size + self._backlog > _HIGH_WATER

        def has_room(self, size):
            """Can size more bytes be written with no drain() needed after?"""
            return self._size + self._backlog + size <= _HIGH_WATER

        async def drain(self):
            self.flush()
            await self.writer.drain()
            self._backlog = self.transport.get_write_buffer_size()


async def _await(awaitable):
    return await awaitable


def wait_for_ms(awaitable, timeout_ms):
    """asyncio.wait_for in milliseconds. MicroPython's wants a coroutine,
    not any awaitable (a bare sleep or drain raises TypeError there)."""
    return asyncio.wait_for(_await(awaitable), timeout_ms / 1000)
