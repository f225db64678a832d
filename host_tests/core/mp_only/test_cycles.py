"""Thousands of connections come and go under MicroPython: after a
collection the heap holds what it held before (gc.mem_alloc), so nothing
of a finished connection stays reachable."""

import asyncio
import gc

from microws.connection import EV_CLOSE, EV_TEXT
from microws.frames import OP_CLOSE, OP_TEXT, close_payload
from microws.sansio import encode_frame
from microws.handshake import HandshakeError, accept
from microws.sansio import EventConnection, parse_request

MASK = b"\x37\xfa\x21\x3d"
HEAD = (b"GET /ws HTTP/1.1\r\nHost: d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
BAD_HEAD = HEAD.replace(b"Version: 13", b"Version: 8")
CYCLES = 2000


def one_connection(text_frame, close_frame):
    response = accept(parse_request(HEAD), None, None)
    assert response.startswith(b"HTTP/1.1 101")
    try:
        parse_request(BAD_HEAD)
        accept(parse_request(BAD_HEAD), None, None)
        raise AssertionError("version 8 accepted")
    except HandshakeError as error:
        assert error.status == 426
    conn = EventConnection(256)
    events = conn.receive_data(text_frame) + conn.receive_data(close_frame)
    assert [e for e, _ in events] == [EV_TEXT, EV_CLOSE]
    assert conn.data_to_send()  # the close reply


async def settled_heap():
    """Heap in use after a collection. The WebAssembly port collects only once
    control has gone back to JavaScript: sleep, then collect again."""
    gc.collect()
    await asyncio.sleep_ms(20)
    gc.collect()
    await asyncio.sleep_ms(20)
    return gc.mem_alloc()


async def test_connections_that_come_and_go_leave_the_heap_as_it_was():
    text_frame = encode_frame(OP_TEXT, b"reading 21.5", mask=MASK)
    close_frame = encode_frame(OP_CLOSE, close_payload(1000, "bye"), mask=MASK)
    for _ in range(50):  # warm up: interned strings, caches
        one_connection(text_frame, close_frame)
    before = await settled_heap()
    for _ in range(CYCLES):
        one_connection(text_frame, close_frame)
    after = await settled_heap()
    # Each cycle allocates about 1.5 KB (the 395-byte receive buffer among it),
    # 3 MB in all: keeping any of it per connection would show as hundreds of
    # KB. A few KB is the conservative collector's noise (measured: 0.3 to 2 KB
    # whatever the number of cycles).
    assert after - before < 4096, "heap grew by %d bytes over %d connections" % (after - before, CYCLES)
