"""Client frames for property tests, and the outcome RFC 6455 says they have.

`frame()` builds one frame's bytes; `expected()` is a small, independent
model of the receiving rules (what a server must report for a sequence of
frames), written from the RFC rather than from lib/microws, so the two can
disagree.
"""

import os
import struct

MAX_MESSAGE = 256
DEFINED_FAIL_CODES = (1002, 1007, 1009)


def frame(opcode, payload, fin=True, mask=b"\x37\xfa\x21\x3d", rsv=0, length_form=None):
    """One frame. length_form forces the 7/16/64-bit length encoding."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    size = len(payload)
    form = length_form or (7 if size < 126 else 16 if size < 65536 else 64)
    masked = 0x80 if mask is not None else 0
    if form == 7:
        head = bytes((b0, masked | size))
    elif form == 16:
        head = bytes((b0, masked | 126)) + struct.pack(">H", size)
    else:
        head = bytes((b0, masked | 127)) + struct.pack(">Q", size)
    if mask is None:
        return head + bytes(payload)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


def utf8_ok(data):
    try:
        bytes(data).decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def close_code_ok(payload):
    if len(payload) < 2:
        return len(payload) == 0
    code = struct.unpack(">H", payload[:2])[0]
    return code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011) or 3000 <= code <= 4999


def close_ok(payload):
    """Whether a close frame's payload is valid (RFC 6455 5.5.1, 7.4)."""
    if len(payload) == 0:
        return True
    if len(payload) == 1:
        return False
    code = struct.unpack(">H", payload[:2])[0]
    valid = code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011) or 3000 <= code <= 4999
    return valid and utf8_ok(payload[2:])


def expected(frames, max_message=MAX_MESSAGE):
    """The events a server reports for frames [(fin, rsv, opcode, payload, masked)]:
    ("text", str) / ("binary", bytes) / ("ping", bytes) / ("pong", bytes) /
    ("close", code) / ("fail", code); nothing after a close or a failure."""
    events = []
    message_opcode = None
    parts = []
    for fin, rsv, opcode, payload, masked in frames:
        if not masked or rsv or opcode in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15):
            return events + [("fail", 1002)]
        if opcode >= 8:
            if not fin or len(payload) > 125:
                return events + [("fail", 1002)]
            if opcode == 8:
                if not close_ok(payload):
                    # a bad code is 1002 even when the reason is bad too (the RFC
                    # allows either; the code is checked first)
                    return events + [("fail", 1007 if close_code_ok(payload) else 1002)]
                return events + [("close", struct.unpack(">H", payload[:2])[0] if payload else 1005)]
            events.append(("ping" if opcode == 9 else "pong", bytes(payload)))
            continue
        if opcode == 0 and message_opcode is None:
            return events + [("fail", 1002)]
        if opcode != 0 and message_opcode is not None:
            return events + [("fail", 1002)]
        if opcode != 0:
            message_opcode = opcode
            parts = []
        parts.append(bytes(payload))
        if sum(len(p) for p in parts) > max_message:
            return events + [("fail", 1009)]
        whole = b"".join(parts)
        if message_opcode == 1 and not utf8_ok(whole) and not _could_continue(whole, fin):
            return events + [("fail", 1007)]
        if fin:
            if message_opcode == 1:
                events.append(("text", whole.decode("utf-8")))
            else:
                events.append(("binary", whole))
            message_opcode = None
    return events


def _could_continue(data, fin):
    """Invalid so far, or only an unfinished sequence that a later fragment may complete?"""
    if fin:
        return False
    for cut in range(1, 4):
        if len(data) >= cut and utf8_ok(data[:-cut]) and _is_prefix_of_a_character(data[-cut:]):
            return True
    return False


def _is_prefix_of_a_character(tail):
    for extra in range(0x80, 0xC0):
        for more in (b"", b"\x80", b"\x80\x80"):
            if utf8_ok(tail + bytes((extra,)) + more):
                return True
    return False


def random_mask():
    return os.urandom(4)
