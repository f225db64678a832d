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
    from time import ticks_diff, ticks_ms  # noqa: F401
except ImportError:
    import time as _time

    def ticks_ms():
        return int(_time.monotonic() * 1000)

    def ticks_diff(new, old):
        return new - old


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


# The viper versions are compiled at run time because mpy-cross refuses native
# code without a target architecture, and ports without a native emitter (the
# WebAssembly one) raise SyntaxError; those keep the portable code. One
# source, compiled once: the compiler's heap is given back after import.
_VIPER = """
@micropython.viper
def unmask(buf: ptr8, start: int, end: int, mask: ptr8, phase: int):
    i = start
    j = phase
    while i < end:
        buf[i] ^= mask[j & 3]
        i += 1
        j += 1

@micropython.viper
def is_ascii(buf: ptr8, start: int, end: int) -> bool:
    i = start
    while i < end:
        if buf[i] & 0x80:
            return False
        i += 1
    return True

@micropython.viper
def copy(dst: ptr8, at: int, src: ptr8, n: int):
    i = 0
    while i < n:
        dst[at + i] = src[i]
        i += 1
"""


def _load_viper():
    try:
        import micropython

        scope = {"micropython": micropython}
        exec(_VIPER, scope)
        return scope
    except Exception:  # SyntaxError, no native emitter, or no heap for the compiler
        return None


_viper = _load_viper() if IS_MICROPYTHON else None
viper_copy = _viper["copy"] if _viper else None  # copy(dst, at, src, n), or None

if _viper:
    unmask = _viper["unmask"]
    UNMASK_KIND = "viper"
elif IS_MICROPYTHON:
    unmask = _unmask_python
    UNMASK_KIND = "python"
else:
    from .runtime_cpython import unmask  # noqa: F811 (C-speed parts of the standard library)

    UNMASK_KIND = "bigint"


# --- UTF-8 fast path -----------------------------------------------------------
# CPython's strict decoder agrees with RFC 3629, so when it accepts a chunk
# that starts on a character boundary the chunk is valid and ends on one.
# MicroPython's decoder is lax (overlongs, surrogates pass): there a chunk
# is decided only when it is all ASCII (viper), else the validator reads it.
if _viper:
    utf8_chunk_is_valid = _viper["is_ascii"]
elif IS_MICROPYTHON:

    def utf8_chunk_is_valid(buf, start, end):
        return False

else:
    from .runtime_cpython import utf8_chunk_is_valid  # noqa: F401


# --- asyncio and the server's I/O ----------------------------------------------
try:
    import asyncio
except ImportError:  # MicroPython before 1.21
    import uasyncio as asyncio  # noqa: F401


def load_runtime():
    """The module that moves the server's bytes on this runtime. MicroPython:
    its sockets, driven without allocating (runtime_micropython.py). CPython:
    asyncio streams, with writes joined per pass of the event loop
    (runtime_cpython.py). Imported on demand: the sans-I/O core needs
    neither, and the WebAssembly port has no sockets."""
    if IS_MICROPYTHON:
        from . import runtime_micropython as runtime
    else:
        from . import runtime_cpython as runtime
    return runtime


if IS_MICROPYTHON:

    def sleep_ms(ms):
        return asyncio.sleep_ms(ms)

else:

    def sleep_ms(ms):
        return asyncio.sleep(ms / 1000)


async def _await(awaitable):
    return await awaitable


def wait_for_ms(awaitable, timeout_ms):
    """asyncio.wait_for in milliseconds. MicroPython's wants a coroutine,
    not any awaitable (a bare sleep or drain raises TypeError there)."""
    return asyncio.wait_for(_await(awaitable), timeout_ms / 1000)
