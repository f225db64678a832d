"""Helpers for the core tests, which run under CPython's pytest and under
MicroPython's own small runner: nothing here needs more than both have."""

from microws.sansio import encode_frame
from microws.sansio import EventConnection

# The masking key of RFC 6455's examples (5.7)
MASK = b"\x37\xfa\x21\x3d"


def client_frame(opcode, payload=b"", fin=True, rsv=0, mask=MASK):
    """A frame as a browser sends it: masked."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    return encode_frame(opcode, payload, fin, mask, rsv)


def feed(data, max_message_size=1024, split=0, conn=None):
    """Feed bytes to a new connection; return (events, bytes sent, conn).

    split=0 feeds everything at once, split=1 byte by byte, split=n in
    pieces of n bytes: partial reads are normal on Wi-Fi.
    """
    if conn is None:
        conn = EventConnection(max_message_size)
    events = []
    if split <= 0:
        events = conn.receive_data(data)
    else:
        i = 0
        while i < len(data):
            events.extend(conn.receive_data(data[i : i + split]))
            i += split
    return events, conn.data_to_send(), conn


def feed_every_way(data, max_message_size=1024):
    """Feed whole, byte by byte and in 3-byte pieces; all must agree.

    Returns (events, bytes sent, the connection fed byte by byte).
    """
    whole = feed(data, max_message_size)
    bytewise = feed(data, max_message_size, 1)
    pieces = feed(data, max_message_size, 3)
    assert whole[:2] == bytewise[:2], (whole[:2], bytewise[:2])
    assert whole[:2] == pieces[:2], (whole[:2], pieces[:2])
    return bytewise


def raises(exception_type, function, *args, **kwargs):
    """The exception a call raises; fail if it raises none."""
    try:
        function(*args, **kwargs)
    except exception_type as error:
        return error
    raise AssertionError("%s not raised" % exception_type.__name__)


def close_frame_of(sent):
    """(code, reason) of the close frame at the end of what the server sent."""
    assert sent[0] == 0x88, sent
    size = sent[1]
    body = sent[2 : 2 + size]
    assert len(sent) == 2 + size, "bytes after the close frame: %r" % sent
    if not body:
        return None, b""
    return (body[0] << 8) | body[1], body[2:]


UPGRADE_HEADERS = (
    ("Host", "device.local"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
)


def upgrade_request(replace=(), drop=(), add=(), request_line="GET /ws HTTP/1.1"):
    """An upgrade request head as bytes, with headers replaced, dropped or added."""
    replaced = {}
    for name, value in replace:
        replaced[name.lower()] = value
    lines = [request_line]
    for name, value in UPGRADE_HEADERS:
        if name.lower() in drop:
            continue
        lines.append("%s: %s" % (name, replaced.get(name.lower(), value)))
    for name, value in add:
        lines.append("%s: %s" % (name, value))
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
