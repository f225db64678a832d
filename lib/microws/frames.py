"""RFC 6455 section 5: the frame header, opcodes and close codes.

      0                   1                   2                   3
      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
     +-+-+-+-+-------+-+-------------+-------------------------------+
     |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
     |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
     |N|V|V|V|       |S|             |   (if payload len==126/127)   |
     | |1|2|3|       |K|             |                               |
     +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
     |     Extended payload length continued, if payload len == 127  |
     + - - - - - - - - - - - - - - - +-------------------------------+
     |                               |Masking-key, if MASK set to 1  |
     +-------------------------------+-------------------------------+

Pure helpers: the connection state machine parses headers incrementally
itself (it reads them in pieces); these build and check them.
"""

import struct

from .compat import const

# A constant: MicroPython compiles the block below away (annotations are
# strings it never evaluates); mypy takes any TYPE_CHECKING as true.
TYPE_CHECKING = const(0)
if TYPE_CHECKING:
    from typing import Optional, Union

    from circuitpython_typing import ReadableBuffer, WriteableBuffer

# Opcodes (5.2)
OP_CONTINUATION = const(0x0)
OP_TEXT = const(0x1)
OP_BINARY = const(0x2)
OP_CLOSE = const(0x8)
OP_PING = const(0x9)
OP_PONG = const(0xA)

FIN = const(0x80)
RSV_BITS = const(0x70)
OPCODE_BITS = const(0x0F)
MASK_BIT = const(0x80)
LENGTH_BITS = const(0x7F)

MAX_CONTROL_PAYLOAD = const(125)
MAX_HEADER = const(14)  # 2 + 8-byte length + 4-byte mask
MAX_SERVER_HEADER = const(10)  # a server's frames are never masked

# Close status codes (7.4.1)
CLOSE_NORMAL = const(1000)
CLOSE_GOING_AWAY = const(1001)
CLOSE_PROTOCOL_ERROR = const(1002)
CLOSE_UNSUPPORTED_DATA = const(1003)
CLOSE_NO_STATUS = const(1005)  # never sent: "no code in the close frame"
CLOSE_ABNORMAL = const(1006)  # never sent: "the TCP connection just dropped"
CLOSE_INVALID_DATA = const(1007)
CLOSE_POLICY_VIOLATION = const(1008)
CLOSE_TOO_BIG = const(1009)
CLOSE_MANDATORY_EXTENSION = const(1010)
CLOSE_INTERNAL_ERROR = const(1011)


def is_valid_close_code(code: int) -> bool:
    """May this code appear in a close frame on the wire? (7.4.1, 7.4.2)

    1000-1003 and 1007-1011 are the RFC's own; 3000-4999 belong to libraries
    and applications. 1004-1006 and 1015 are reserved, and the rest below
    3000 is unassigned by the RFC (as Autobahn's 7.9.x cases expect).
    """
    if 1000 <= code <= 1003 or 1007 <= code <= 1011:
        return True
    return 3000 <= code <= 4999


def header_size(payload_length: int, masked: bool = False) -> int:
    """Bytes the header of a frame with this payload needs."""
    if payload_length < 126:
        size = 2
    elif payload_length < 0x10000:
        size = 4
    else:
        size = 10
    return size + 4 if masked else size


def extended_length_size(length_field: int) -> int:
    """Bytes of extended payload length that follow the 7-bit field."""
    if length_field == 126:
        return 2
    if length_field == 127:
        return 8
    return 0


def write_header(buf: "WriteableBuffer", offset: int, opcode: int, payload_length: int, fin: bool = True,
                 mask: "Optional[ReadableBuffer]" = None) -> int:
    """Write a frame header into buf at offset; return its size.

    Allocates nothing, so a connection can build frames into buffers it
    owns. `mask`, when given, is a 4-byte buffer (a client's frames).
    """
    buf[offset] = (FIN if fin else 0) | opcode
    mask_bit = MASK_BIT if mask is not None else 0
    if payload_length < 126:
        buf[offset + 1] = mask_bit | payload_length
        size = 2
    elif payload_length < 0x10000:
        buf[offset + 1] = mask_bit | 126
        struct.pack_into(">H", buf, offset + 2, payload_length)
        size = 4
    else:
        buf[offset + 1] = mask_bit | 127
        struct.pack_into(">Q", buf, offset + 2, payload_length)
        size = 10
    if mask is not None:
        buf[offset + size] = mask[0]
        buf[offset + size + 1] = mask[1]
        buf[offset + size + 2] = mask[2]
        buf[offset + size + 3] = mask[3]
        size += 4
    return size


def close_payload(code: "Optional[int]" = None, reason: "Union[str, bytes]" = b"") -> bytes:
    """The body of a close frame (5.5.1): a 2-byte code, then UTF-8 reason."""
    if code is None:
        if reason:
            raise ValueError("a close reason needs a close code")
        return b""
    if not is_valid_close_code(code):
        raise ValueError("invalid close code %d" % code)
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    if len(reason) > MAX_CONTROL_PAYLOAD - 2:
        raise ValueError("close reason longer than 123 bytes")
    return struct.pack(">H", code) + reason
