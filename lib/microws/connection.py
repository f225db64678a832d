"""The server side of one WebSocket connection (RFC 6455 sections 5-7), sans I/O.

The connection owns one receive buffer, allocated once. Whoever does the I/O
asks where the next bytes go (`read_pos`, `read_size`: exactly the bytes the
parser needs, never more), writes them there, and calls `received(n)`. The
parser works in place: it unmasks, validates UTF-8 as bytes arrive, and
reassembles a fragmented message where it lies. `received` answers with an
event code; a message stays in the buffer (`event_start`, `event_size`) until
the next bytes are written. Control frames the protocol itself answers (pong,
the close reply, the close that fails the connection) are built into
`control_out` and must be sent before more input is given.

None of that allocates, so a board can run it for ever with a fixed heap.
The allocating conveniences (`receive_data`, `data_to_send`, `send_text`...)
serve tests, tools and simple callers.
"""

from .compat import const, unmask, utf8_chunk_is_valid
from .frames import close_payload, extended_length_size, is_valid_close_code, write_header
from .utf8 import feed as utf8_feed

# RFC 6455 numbers, as in frames.py: private constants are folded into the
# code (no global lookup per use, no entry in this module's globals).
_OP_CONTINUATION = const(0x0)
_OP_TEXT = const(0x1)
_OP_BINARY = const(0x2)
_OP_CLOSE = const(0x8)
_OP_PONG = const(0xA)
_MAX_CONTROL_PAYLOAD = const(125)
_MAX_SERVER_HEADER = const(10)
_CLOSE_NORMAL = const(1000)
_CLOSE_PROTOCOL_ERROR = const(1002)
_CLOSE_NO_STATUS = const(1005)
_CLOSE_INVALID_DATA = const(1007)
_CLOSE_TOO_BIG = const(1009)

# A constant: MicroPython compiles the block below away (annotations are
# strings it never evaluates); mypy takes any TYPE_CHECKING as true.
TYPE_CHECKING = const(0)
if TYPE_CHECKING:
    from typing import Optional

# What received() reports. Message and control events reuse their opcodes.
EV_NONE = const(0)  # nothing yet: give it the next read_size bytes
EV_TEXT = const(1)  # a whole text message at event_start/event_size
EV_BINARY = const(2)  # a whole binary message
EV_CLOSE = const(8)  # the peer closed (close_code); a reply may wait in control_out
EV_PING = const(9)  # a ping; its pong waits in control_out
EV_PONG = const(10)  # a pong (keepalive)
EV_FAILED = const(16)  # protocol violation: a close with fail_code waits in control_out

# Connection states (7.1)
OPEN = const(1)
CLOSING = const(2)  # we sent a close and wait for the peer's
CLOSED = const(3)  # close handshake done, or the transport is gone

DEFAULT_MAX_MESSAGE = const(1024)
# Room behind the largest message for a control frame that arrives between
# fragments: its header is read where the next fragment would go.
CONTROL_ROOM = const(139)  # MAX_HEADER (14) + MAX_CONTROL_PAYLOAD (125)

# Parser steps
_HEADER = const(0)  # the first two bytes
_EXTENDED = const(1)  # extended length and masking key
_PAYLOAD = const(2)
_DONE = const(3)


class ConnectionClosed(Exception):
    """Sending after the close handshake started."""


class Connection:
    """The state machine of one server-side connection."""

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE, max_frame_size: "Optional[int]" = None) -> None:
        self.max_message_size = max_message_size
        self.max_frame_size = max_frame_size or max_message_size
        self.buffer = bytearray(max_message_size + CONTROL_ROOM)
        self.view = memoryview(self.buffer)
        # Outgoing control frames (pong, close) built by the protocol itself.
        self.control_out = bytearray(2 + _MAX_CONTROL_PAYLOAD)
        # Header of an outgoing data frame, sent in front of the payload.
        self.header_out = bytearray(_MAX_SERVER_HEADER)
        self.view2 = self.view[2:]  # where a header's extended length and mask are read
        self._mask = bytearray(4)
        self.reset()

    def reset(self) -> None:
        """A new connection in the same buffers (a server reuses them)."""
        self.control_size = 0
        self.state = OPEN
        self.close_code = None  # type: Optional[int]  # the peer's close code, once received
        # The code we failed the connection with (a protocol violation):
        # from then on input is discarded.
        self.fail_code = None  # type: Optional[int]
        self.event_start = 0
        self.event_size = 0
        self._utf8 = 0  # the UTF-8 state of a text message (utf8.feed)

        self.read_pos = 0
        self.read_size = 2
        self._step = _HEADER
        self._frame_start = 0  # where this frame's header, then payload, lies
        self._fin = False
        self._opcode = 0
        self._payload_left = 0
        self._payload_done = 0
        self._message_size = 0  # bytes of the current (fragmented) message so far
        self._message_opcode = 0  # 0: no fragmented message in progress
        self._discarding = False  # reading a frame only to skip it
        self._sending_fragments = False

    # ------------------------------------------------------------------ input

    def received(self, n: int) -> int:
        """n bytes were written at read_pos; parse them, return an event."""
        if n <= 0 or self._step == _DONE:
            return EV_NONE
        if n > self.read_size:
            raise ValueError("more bytes than asked for")
        if self._step == _PAYLOAD:
            return self._payload_received(n)
        self.read_pos += n
        self.read_size -= n
        if self.read_size:
            return EV_NONE
        if self._step == _HEADER:
            return self._header_complete()
        return self._extended_complete()

    def receive_eof(self) -> int:
        """The peer's TCP stream ended."""
        if self.state != CLOSED:
            self.state = CLOSED
            if self.close_code is None:
                self.close_code = 1006  # closed abnormally (7.1.5)
        self._step = _DONE
        self.read_size = 0
        return EV_CLOSE

    def _header_complete(self):
        # 5.2: FIN, RSV1-3, opcode | MASK, payload length
        start = self._frame_start
        b0 = self.buffer[start]
        b1 = self.buffer[start + 1]
        self._fin = b0 & 0x80 != 0
        self._opcode = b0 & 0x0F
        masked = b1 & 0x80 != 0
        length = b1 & 0x7F
        event = EV_NONE
        if self.fail_code is None:
            kind = b0 & 0x7F  # RSV bits and opcode
            if masked and (kind == _OP_BINARY or kind == _OP_TEXT) and not self._message_opcode:
                reason = None  # the usual frame: a whole message, or its first fragment
            else:
                reason = self._header_violation(b0, masked, length)
            if reason is not None:
                event = self._fail(_CLOSE_PROTOCOL_ERROR, reason)
            elif self._opcode == _OP_TEXT:
                self._utf8 = 0  # a new text message starts
        # Even a bad frame is read to its end: the peer's close may follow it.
        extra = 4 if masked else 0
        if length > 125:
            extra += extended_length_size(length)
        self._payload_left = length  # final unless an extended length follows
        self._step = _EXTENDED
        self.read_size = extra
        if extra:
            return event
        following = self._extended_complete()
        return event or following

    def _header_violation(self, b0, masked, length):
        """Why this header breaks RFC 6455 section 5, or None."""
        opcode = b0 & 0x0F
        if b0 & 0x70:
            return b"reserved bits set"  # no extension was negotiated
        if opcode >= _OP_CLOSE:
            if opcode > _OP_PONG:
                return b"reserved opcode"
            if not self._fin:
                return b"fragmented control frame"  # 5.5
            if length > _MAX_CONTROL_PAYLOAD:
                return b"control frame too long"  # 5.5
        elif opcode > _OP_BINARY:
            return b"reserved opcode"
        elif opcode == _OP_CONTINUATION:
            if not self._message_opcode:
                return b"nothing to continue"  # 5.4
        elif self._message_opcode:
            return b"new message inside a fragmented one"  # 5.4
        if not masked:
            return b"client frames must be masked"  # 5.1
        return None

    def _extended_complete(self):
        buf = self.buffer
        pos = self._frame_start + 2
        length = self._payload_left
        if length == 126:
            length = (buf[pos] << 8) | buf[pos + 1]
            pos += 2
        elif length == 127:
            if buf[pos] | buf[pos + 1] | buf[pos + 2] | buf[pos + 3]:
                # 4 GiB or more (2**63 among them) exceeds every limit; the rest
                # of such a stream is not worth reading, and the number is not
                # worth building (a board's small ints have 31 bits).
                event = EV_NONE if self.fail_code is not None else self._fail(_CLOSE_TOO_BIG, b"message too big")
                self._step = _DONE
                self.read_size = 0
                return event
            length = (buf[pos + 4] << 24) | (buf[pos + 5] << 16) | (buf[pos + 6] << 8) | buf[pos + 7]
            pos += 8
        if pos < self.read_pos:  # a masking key follows
            mask = self._mask
            mask[0] = buf[pos]
            mask[1] = buf[pos + 1]
            mask[2] = buf[pos + 2]
            mask[3] = buf[pos + 3]
        event = EV_NONE
        if self._opcode < _OP_CLOSE and self.fail_code is None:
            if length > self.max_frame_size or self._message_size + length > self.max_message_size:
                # 1009 before a byte of the payload is read (7.4.1)
                event = self._fail(_CLOSE_TOO_BIG, b"message too big")
        self._discarding = self.fail_code is not None and (self._opcode < _OP_CLOSE or length > _MAX_CONTROL_PAYLOAD)
        self._payload_left = length
        self._payload_done = 0
        self._step = _PAYLOAD
        following = self._want_payload()
        return event or following

    def _want_payload(self):
        if self._discarding:
            # Read in buffer-sized pieces and forget: input after a failure.
            self.read_pos = 0
            self.read_size = min(self._payload_left, len(self.buffer))
        else:
            self.read_pos = self._frame_start + self._payload_done
            self.read_size = self._payload_left
        if self.read_size:
            return EV_NONE
        return self._frame_complete()

    def _payload_received(self, n):
        start = self.read_pos
        self._payload_left -= n
        event = EV_NONE
        if not self._discarding:
            unmask(self.buffer, start, start + n, self._mask, self._payload_done)
            opcode = self._opcode
            if self.fail_code is None and (opcode == _OP_TEXT or (
                    opcode == _OP_CONTINUATION and self._message_opcode == _OP_TEXT)):
                # Fail fast: invalid UTF-8 is refused in the read it arrives in.
                if self._utf8 or not utf8_chunk_is_valid(self.buffer, start, start + n):
                    self._utf8 = utf8_feed(self._utf8, self.buffer, start, start + n)
                    if self._utf8 < 0:
                        event = self._fail(_CLOSE_INVALID_DATA, b"invalid UTF-8")
                        self._discarding = True
        self._payload_done += n
        following = self._want_payload()
        return event or following

    def _frame_complete(self):
        opcode = self._opcode
        start = self._frame_start
        size = self._payload_done
        self._step = _HEADER
        self.read_size = 2
        if self._discarding:
            self._discarding = False
            self._frame_start = self.read_pos = 0
            return EV_NONE
        if opcode >= _OP_CLOSE:
            self.read_pos = start  # the next header overwrites this payload
            return self._control_frame(opcode, start, size)
        if opcode != _OP_CONTINUATION:
            self._message_opcode = opcode
        self._message_size += size
        if not self._fin:
            self._frame_start = self.read_pos = self._message_size
            return EV_NONE
        event = self._message_opcode
        self.event_start = 0
        self.event_size = self._message_size
        self._message_size = 0
        self._message_opcode = 0
        self._frame_start = self.read_pos = 0
        if event == _OP_TEXT and self._utf8:
            return self._fail(_CLOSE_INVALID_DATA, b"text ends inside a character")
        return event

    def _control_frame(self, opcode, start, size):
        self.event_start = start
        self.event_size = size
        if opcode == _OP_CLOSE:
            return self._close_frame(start, size)
        if self.fail_code is not None:
            return EV_NONE
        if opcode == _OP_PONG:
            return EV_PONG
        if self.state != OPEN:
            return EV_NONE  # no pong once our close is on its way
        self._build_pong(start, size)
        return EV_PING

    def _close_frame(self, start, size):
        """5.5.1 and 7.1.5: the peer's close; echo its code unless we sent ours.
        Both closes are out then: the handshake is over, nothing more is read."""
        event = EV_CLOSE
        buf = self.buffer
        code = (buf[start] << 8) | buf[start + 1] if size > 1 else _CLOSE_NO_STATUS
        if self.fail_code is not None:
            self.event_size = 0  # the peer's answer to our close: not inspected
        elif size == 1 or (size and not is_valid_close_code(code)):
            event = self._fail(_CLOSE_PROTOCOL_ERROR, b"invalid close frame")
        elif size > 2 and utf8_feed(0, buf, start + 2, start + size):
            event = self._fail(_CLOSE_INVALID_DATA, b"close reason is not UTF-8")
        else:
            self.close_code = code
            if size:
                self.event_start = start + 2
                self.event_size = size - 2
            if self.state == OPEN:
                self._build_close(None if code == _CLOSE_NO_STATUS else code, None)
        self.state = CLOSED
        self._step = _DONE
        self.read_size = 0
        return event

    def _fail(self, code, reason):
        """_Fail the WebSocket Connection_ (7.1.7): queue a close, then discard
        input, still reading frame by frame for the peer's close."""
        self.fail_code = code
        if self.state == OPEN:
            self._build_close(code, reason)
        self._message_opcode = 0
        self._message_size = 0
        return EV_FAILED

    # ---------------------------------------------------- outgoing control frames

    def _build_pong(self, start, size):
        """The pong into control_out, its payload copied byte by byte: a slice
        would allocate, and a ping carries at most 125 bytes."""
        out = self.control_out
        out[0] = 0x80 | _OP_PONG
        out[1] = size
        buf = self.buffer
        i = 0
        while i < size:
            out[2 + i] = buf[start + i]
            i += 1
        self.control_size = 2 + size

    def _build_close(self, code, reason):
        """A close frame into control_out; code None sends an empty body."""
        out = self.control_out
        out[0] = 0x80 | _OP_CLOSE
        size = 0
        if code is not None:
            out[2] = code >> 8
            out[3] = code & 0xFF
            size = 2
            if reason:
                size += len(reason)
                out[4 : size + 2] = reason
        out[1] = size
        self.control_size = 2 + size
        self.state = CLOSING

    # ------------------------------------------------------------ outgoing data

    def frame_header(self, opcode: int, length: int, fin: bool = True) -> int:
        """Write the header of an outgoing data frame into header_out.

        Returns the header size; send that much of header_out, then the payload.
        Pass the message's opcode for every fragment: continuation frames
        are written as such.
        """
        if self.state != OPEN:
            raise ConnectionClosed("the close handshake has started")
        if opcode >= _OP_CLOSE:
            if not fin or length > _MAX_CONTROL_PAYLOAD:
                raise ValueError("control frames are single and at most 125 bytes")
            wire_opcode = opcode
        else:
            wire_opcode = _OP_CONTINUATION if self._sending_fragments else opcode
            self._sending_fragments = not fin
        return write_header(self.header_out, 0, wire_opcode, length, fin)

    def start_close(self, code: int = _CLOSE_NORMAL, reason: str = "") -> bool:
        """Begin the closing handshake (7.1.2): the close goes into control_out.

        Returns False when a close was already sent (nothing to send again).
        """
        if self.state != OPEN:
            return False
        body = close_payload(code, reason)  # validates code and reason
        self._build_close(code, body[2:])
        return True
