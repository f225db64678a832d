"""microws: a WebSocket server for MicroPython boards, and CPython.

The protocol core (handshake, frames, utf8, connection) is sans-I/O; the
asyncio server sits on top of it.
"""

__version__ = "0.1.0"
