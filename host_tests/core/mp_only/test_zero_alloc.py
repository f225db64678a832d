"""The core allocates nothing per message: proved under MicroPython with the
heap locked (any allocation then raises MemoryError).

The receive path is: bytes written into the connection's buffer where it
asks (here a byte loop stands in for the socket's C readinto, which does not
allocate either), then received(), then the event's payload read in place.
The send path is: frame headers written into the connection's preallocated
buffers, pongs built by the protocol, broadcast frames built in place.
"""

import micropython

from microws.connection import EV_BINARY, EV_PING, EV_TEXT
from microws.frames import (
    OP_BINARY,
    OP_CONTINUATION,
    OP_PING,
    OP_TEXT,
)
from microws.sansio import EventConnection, encode_frame, write_header_before

MASK = b"\x37\xfa\x21\x3d"
ROUNDS = 200


def deliver(conn, frame):
    """Write a frame into conn the way the server's reads do; last event."""
    i = 0
    n = len(frame)
    event = 0
    buf = conn.buffer
    while i < n:
        pos = conn.read_pos
        k = conn.read_size
        if k > n - i:
            k = n - i
        j = 0
        while j < k:
            buf[pos + j] = frame[i + j]
            j += 1
        i += k
        event = conn.received(k)
    return event


def steady_state_frames():
    text = "temp\u00e9rature 21,5 \u00b0C \U0001f321".encode("utf-8")
    return (
        encode_frame(OP_TEXT, b'{"cmd":"info"}', mask=MASK),
        encode_frame(OP_TEXT, text, mask=MASK),
        encode_frame(OP_BINARY, bytes(range(64)), mask=MASK),
        encode_frame(OP_PING, b"keepalive", mask=MASK),
        encode_frame(OP_BINARY, bytes(300), mask=MASK),  # 16-bit length
        encode_frame(OP_TEXT, text[:7], fin=False, mask=MASK),  # split inside a character
        encode_frame(OP_PING, b"", mask=MASK),
        encode_frame(OP_CONTINUATION, text[7:], mask=MASK),
    )


def run_locked(conn, frames, counts, broadcast):
    """The measured loop; everything it touches exists before the lock."""
    micropython.heap_lock()
    try:
        r = 0
        while r < ROUNDS:
            f = 0
            while f < len(frames):
                event = deliver(conn, frames[f])
                if event == EV_TEXT or event == EV_BINARY:
                    counts[event] += 1
                    counts[0] += conn.buffer[conn.event_start]  # read in place
                    # echo: header into header_out, payload would follow
                    size = conn.frame_header(event, conn.event_size)
                    counts[3] += len(conn.header_view(size))
                elif event == EV_PING:
                    counts[EV_PING] += 1
                    counts[4] += conn.control_size
                    conn.control_size = 0  # sent
                f += 1
            # a broadcast frame built in place, room reserved for its header
            counts[5] += write_header_before(broadcast, 10, OP_TEXT, 20)
            r += 1
    finally:
        micropython.heap_unlock()


def test_receive_and_send_allocate_nothing_with_heap_locked():
    conn = EventConnection(1024)
    frames = steady_state_frames()
    counts = [0] * 10
    broadcast = bytearray(30)
    run_locked(conn, frames, counts, broadcast)  # raises MemoryError if anything allocates
    assert counts[EV_TEXT] == 3 * ROUNDS
    assert counts[EV_BINARY] == 2 * ROUNDS
    assert counts[EV_PING] == 2 * ROUNDS
    assert counts[4] == (2 + 9 + 2) * ROUNDS  # two pongs: 9-byte and empty payload
    assert counts[3] == (2 + 2 + 2 + 4 + 2) * ROUNDS
    assert counts[5] == 8 * ROUNDS


def test_heap_lock_does_catch_an_allocation():
    # The proof above is only as good as the lock: show that it bites.
    micropython.heap_lock()
    try:
        try:
            bytearray(8)
            caught = False
        except MemoryError:
            caught = True
    finally:
        micropython.heap_unlock()
    assert caught


def test_messages_received_with_heap_locked_are_intact():
    conn = EventConnection(1024)
    frames = steady_state_frames()
    counts = [0] * 10
    run_locked(conn, frames, counts, bytearray(30))
    assert deliver(conn, frames[1]) == EV_TEXT
    assert conn.event_text() == "temp\u00e9rature 21,5 \u00b0C \U0001f321"
    assert deliver(conn, frames[2]) == EV_BINARY
    assert conn.event_payload() == bytes(range(64))
