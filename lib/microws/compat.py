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


def _unmask_bigint(buf, start, end, mask, phase):
    """CPython: one whole-buffer integer XOR runs at C speed."""
    n = end - start
    if n <= 0:
        return
    view = memoryview(buf)[start:end]
    key = bytes(mask[phase & 3 :]) + bytes(mask[: phase & 3])
    key = key * (n // 4 + 1)
    value = int.from_bytes(view, "little") ^ int.from_bytes(key[:n], "little")
    view[:] = value.to_bytes(n, "little")


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


async def _await(awaitable):
    return await awaitable


def wait_for_ms(awaitable, timeout_ms):
    """asyncio.wait_for in milliseconds. MicroPython's wants a coroutine,
    not any awaitable (a bare sleep or drain raises TypeError there)."""
    return asyncio.wait_for(_await(awaitable), timeout_ms / 1000)
