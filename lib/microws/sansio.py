"""Allocating conveniences over the sans-I/O core, for tests, tools and
simple callers: bytes in, (event, value) pairs and bytes to send out.

The server never imports this module: its per-client path allocates
nothing (connection.py), so a board does not pay the heap of this code.
"""

from .connection import DEFAULT_MAX_MESSAGE, EV_CLOSE, EV_FAILED, EV_NONE, EV_TEXT, OPEN, Connection, ConnectionClosed
from .frames import CLOSE_NORMAL, OP_BINARY, OP_PING, OP_TEXT, header_size, write_header
from .compat import const, unmask
from .handshake import DEFAULT_MAX_HEAD, HandshakeError, HeadReader
from .utf8 import feed as utf8_feed

TYPE_CHECKING = const(0)
if TYPE_CHECKING:
    from typing import Any, List, Optional, Tuple, Union

    from circuitpython_typing import ReadableBuffer, WriteableBuffer

    from .handshake import Request


def encode_frame(opcode: int, payload: "ReadableBuffer" = b"", fin: bool = True,
                 mask: "Optional[ReadableBuffer]" = None, rsv: int = 0) -> bytes:
    """A whole frame as new bytes: convenient for tests, tools and clients.

    Not for the per-frame path of a connection (it allocates).
    """
    n = len(payload)
    frame = bytearray(header_size(n, mask is not None) + n)
    size = write_header(frame, 0, opcode, n, fin, mask)
    frame[0] |= rsv << 4
    frame[size:] = payload
    if mask is not None:
        unmask(frame, size, size + n, mask, 0)
    return bytes(frame)


class EventConnection(Connection):
    """A Connection that takes and gives bytes: receive_data() returns
    events with their values, replies and sends queue for data_to_send()."""

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE, max_frame_size: "Optional[int]" = None) -> None:
        super().__init__(max_message_size, max_frame_size)
        out = memoryview(self.header_out)
        self._header_views = (out[:2], out[:4], out[:10])  # made once: header_view() allocates nothing

    def reset(self) -> None:
        super().reset()
        self._pending = None  # type: Optional[List[bytes]]

    @property
    def failed(self) -> bool:
        """A protocol violation was found: input is discarded."""
        return self.fail_code is not None

    def control_view(self) -> memoryview:
        """The control frame waiting to be sent (allocates a view on MicroPython)."""
        return memoryview(self.control_out)[: self.control_size]

    def header_view(self, size: int) -> memoryview:
        """A preallocated view of the first `size` bytes of header_out."""
        return self._header_views[0 if size == 2 else (1 if size == 4 else 2)]

    def check_can_send_message(self) -> None:
        """For a frame built elsewhere (a broadcast encoded once for all)."""
        if self.state != OPEN:
            raise ConnectionClosed("the close handshake has started")
        if self._sending_fragments:
            raise ValueError("a fragmented message is being sent")

    def receive_view(self) -> memoryview:
        """Where the next bytes go, as a view (allocates on MicroPython)."""
        return self.view[self.read_pos : self.read_pos + self.read_size]

    def event_payload(self) -> bytes:
        """The current event's payload as new bytes."""
        return bytes(self.view[self.event_start : self.event_start + self.event_size])

    def event_text(self) -> str:
        return self.event_payload().decode("utf-8")

    def receive_data(self, data: "ReadableBuffer") -> "List[Tuple[int, Any]]":
        """Feed bytes from the network; return a list of (event, value).

        value: str for EV_TEXT, bytes for EV_BINARY/EV_PING/EV_PONG,
        (code, reason) for EV_CLOSE, the close code for EV_FAILED.
        Control replies are queued for data_to_send().
        """
        events = []
        data = memoryview(data)
        i = 0
        while i < len(data) and self.read_size:
            n = min(self.read_size, len(data) - i)
            self.buffer[self.read_pos : self.read_pos + n] = data[i : i + n]
            i += n
            event = self.received(n)
            if event != EV_NONE:
                events.append((event, self._event_value(event)))
            self._queue_control()
        return events

    def _event_value(self, event):
        if event == EV_TEXT:
            return self.event_text()
        if event == EV_CLOSE:
            return (self.close_code, self.event_text())
        if event == EV_FAILED:
            return self.fail_code
        return self.event_payload()

    def _queue_control(self):
        if self.control_size:
            self._queue(bytes(self.control_out[: self.control_size]))
            self.control_size = 0

    def _queue(self, data):
        if self._pending is None:
            self._pending = []
        self._pending.append(data)

    def data_to_send(self) -> bytes:
        """Bytes queued by receive_data() and the send_*() conveniences."""
        if not self._pending:
            return b""
        data = b"".join(self._pending)
        self._pending = None
        return data

    def send_message(self, data: "Union[str, ReadableBuffer]", fin: bool = True, opcode: "Optional[int]" = None) -> None:
        """Queue a text (str) or binary message, or one fragment of it."""
        if opcode is None:
            opcode = OP_TEXT if isinstance(data, str) else OP_BINARY
        if isinstance(data, str):
            data = data.encode("utf-8")
        size = self.frame_header(opcode, len(data), fin)
        self._queue(bytes(self.header_out[:size]) + bytes(data))

    def send_ping(self, payload: "ReadableBuffer" = b"") -> None:
        size = self.frame_header(OP_PING, len(payload))
        self._queue(bytes(self.header_out[:size]) + bytes(payload))

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """start_close(), queued for data_to_send()."""
        if self.start_close(code, reason):
            self._queue_control()


def write_header_before(buf: "WriteableBuffer", payload_start: int, opcode: int, payload_length: int,
                        fin: bool = True) -> int:
    """Write an unmasked header so that it ends exactly at payload_start.

    With room reserved in front of the payload (MAX_SERVER_HEADER bytes), a
    whole frame then goes out in one write, with no copy of the payload.
    Returns the offset where the frame starts.
    """
    start = payload_start - header_size(payload_length)
    if start < 0:
        raise ValueError("no room for the frame header")
    write_header(buf, start, opcode, payload_length, fin)
    return start


def parse_request(head: bytes, max_size: int = DEFAULT_MAX_HEAD) -> "Request":
    """Parse a whole request head (everything up to and including CRLF CRLF)."""
    if len(head) > max_size:
        raise HandshakeError(431, "request head larger than %d bytes" % max_size)
    end = head.find(b"\r\n\r\n")
    if end < 0:
        raise HandshakeError(400, "request head is incomplete")
    reader = HeadReader(max_size)
    for line in head[: end + 2].split(b"\r\n")[:-1]:
        reader.feed_line(line + b"\r\n")
    return reader.request()


class Utf8Validator:
    """utf8.feed() with its state kept: validate a message part by part."""

    def __init__(self) -> None:
        self._state = 0

    def reset(self) -> None:
        """Forget everything: start a new message."""
        self._state = 0

    def feed(self, buf: "ReadableBuffer", start: int, end: int) -> bool:
        """Validate ``buf[start:end]`` as the next part of the message.

        False as soon as the input seen so far cannot be the beginning of
        valid UTF-8 (then for good, until ``reset()``); True otherwise, even
        inside a character (see ``complete()``).
        """
        self._state = utf8_feed(self._state, buf, start, end)
        return self._state >= 0

    def complete(self) -> bool:
        """True if no error was seen and no multi-byte sequence is open,
        i.e. the message may end here."""
        return self._state == 0

    def failed(self) -> bool:
        """True once invalid input has been seen (until ``reset()``)."""
        return self._state < 0


def is_valid(data: "ReadableBuffer") -> bool:
    """Return True if the whole buffer ``data`` is strict, complete UTF-8."""
    return utf8_feed(0, data, 0, len(data)) == 0
