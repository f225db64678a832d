"""Small pure-Python SHA-1 (FIPS 180-4, section 6.1).

Only used where the MicroPython build has no ``hashlib.sha1`` (for example the
WebAssembly port).  The WebSocket handshake hashes about 60 bytes once per
connection, so speed hardly matters.  The interface follows ``hashlib``:

    h = sha1(b"abc"); h.update(b"def"); h.digest()  # 20 bytes

``digest()`` does not change the object, so ``update`` may continue after it.
"""

import struct

try:
    from typing import TYPE_CHECKING
except ImportError:  # MicroPython: annotations are strings, never evaluated
    TYPE_CHECKING = False  # type: ignore[misc]
if TYPE_CHECKING:
    from circuitpython_typing import ReadableBuffer

_MASK = 0xFFFFFFFF


def _compress(h, block, offset):
    """Process one 64-byte block of ``block`` starting at ``offset``,
    updating the five state words in the list ``h``."""
    w = list(struct.unpack_from(">16I", block, offset))
    for t in range(16, 80):
        x = w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]
        w.append(((x << 1) | (x >> 31)) & _MASK)
    a, b, c, d, e = h
    for t in range(80):
        if t < 20:
            f = (b & c) | (~b & d)
            k = 0x5A827999
        elif t < 40:
            f = b ^ c ^ d
            k = 0x6ED9EBA1
        elif t < 60:
            f = (b & c) | (b & d) | (c & d)
            k = 0x8F1BBCDC
        else:
            f = b ^ c ^ d
            k = 0xCA62C1D6
        tmp = ((((a << 5) | (a >> 27)) & _MASK) + f + e + k + w[t]) & _MASK
        e = d
        d = c
        c = ((b << 30) | (b >> 2)) & _MASK
        b = a
        a = tmp
    h[0] = (h[0] + a) & _MASK
    h[1] = (h[1] + b) & _MASK
    h[2] = (h[2] + c) & _MASK
    h[3] = (h[3] + d) & _MASK
    h[4] = (h[4] + e) & _MASK


class sha1:
    digest_size = 20
    block_size = 64
    name = "sha1"

    def __init__(self, data: "ReadableBuffer" = b"") -> None:
        self._h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
        self._pending = bytearray()  # fewer than 64 bytes not yet compressed
        self._length = 0  # total message length in bytes
        if data:
            self.update(data)

    def update(self, data: "ReadableBuffer") -> None:
        n = len(data)
        self._length += n
        pos = 0
        pending = self._pending
        if pending:
            take = 64 - len(pending)
            if take > n:
                take = n
            pending.extend(data[:take])
            pos = take
            if len(pending) < 64:
                return
            _compress(self._h, pending, 0)
            pending = self._pending = bytearray()
        while n - pos >= 64:
            _compress(self._h, data, pos)
            pos += 64
        if pos < n:
            pending.extend(data[pos:])

    def digest(self) -> bytes:
        h = list(self._h)
        bits = self._length * 8
        tail = bytearray(self._pending)
        tail.append(0x80)
        while len(tail) % 64 != 56:
            tail.append(0)
        tail.extend(struct.pack(">II", (bits >> 32) & _MASK, bits & _MASK))
        for off in range(0, len(tail), 64):
            _compress(h, tail, off)
        return struct.pack(">5I", h[0], h[1], h[2], h[3], h[4])

    def hexdigest(self) -> str:
        out = []
        for byte in self.digest():
            out.append("%02x" % byte)
        return "".join(out)

    def copy(self) -> "sha1":
        other = sha1()
        other._h = list(self._h)
        other._pending = bytearray(self._pending)
        other._length = self._length
        return other
