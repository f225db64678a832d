"""Property tests of the two parsers that face the network.

Any bytes, split at any points, lead only to a defined outcome: an HTTP
error answer, a close with a defined code, or messages. Never an unexpected
exception, never a buffer beyond the configured limits. Structured frames
are checked against an independent model of RFC 6455's receiving rules
(strategies.expected).
"""

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import DEFINED_FAIL_CODES, MAX_MESSAGE, expected, frame

from microws.connection import (
    EV_BINARY,
    EV_CLOSE,
    EV_FAILED,
    EV_PING,
    EV_PONG,
    EV_TEXT,
)
from microws.handshake import HandshakeError, HeadReader, accept
from microws.sansio import EventConnection

# Deterministic in CI: the same examples every run; failures found by the
# long fuzz run (tools/fuzz.py) come back as corpus files instead.
settings.register_profile("microws", derandomize=True, max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("microws")

NAMES = {EV_TEXT: "text", EV_BINARY: "binary", EV_PING: "ping", EV_PONG: "pong", EV_CLOSE: "close",
         EV_FAILED: "fail"}


def feed(conn, data, cuts):
    """Feed data in pieces cut at the given points; collect events as the model names them."""
    buffer = conn.buffer
    size = len(buffer)
    events = []
    points = sorted(set(c for c in cuts if 0 < c < len(data)))
    start = 0
    for end in points + [len(data)]:
        for event, value in conn.receive_data(data[start:end]):
            name = NAMES[event]
            if event == EV_CLOSE:
                value = value[0]
            events.append((name, value))
        assert conn.buffer is buffer and len(conn.buffer) == size  # never replaced, never grown
        start = end
    conn.data_to_send()
    return events


def until_final(events):
    """Events up to the first close or failure. Nothing may follow a close;
    after a failure only the peer's close (completing the handshake) may."""
    for i, (name, _) in enumerate(events):
        if name == "close":
            assert len(events) == i + 1, "events after a close: %r" % (events[i:],)
            return events
        if name == "fail":
            rest = events[i + 1:]
            assert rest == [] or (len(rest) == 1 and rest[0][0] == "close"), "after a failure: %r" % (rest,)
            return events[: i + 1]
    return events


# ------------------------------------------------------------------ frames

texts = st.text(max_size=40).map(lambda t: t.encode("utf-8"))
raw = st.binary(max_size=300)
cut_text = st.tuples(texts, st.integers(0, 3)).map(lambda p: p[0][: max(0, len(p[0]) - p[1])])


@st.composite
def frames(draw):
    """(fin, rsv, opcode, payload, masked): mostly well-formed, sometimes not."""
    opcode = draw(st.sampled_from((0, 0, 1, 1, 2, 2, 8, 9, 10, 9, 10, 3, 11)))
    if opcode == 8:
        payload = draw(st.one_of(
            st.just(b""),
            st.binary(min_size=1, max_size=1),
            st.tuples(st.sampled_from((1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1012, 1015,
                                       2999, 3000, 4999, 5000, 999, 0)), cut_text)
            .map(lambda p: struct.pack(">H", p[0]) + p[1]),
            st.binary(min_size=2, max_size=130),
        ))
    elif opcode in (1, 0):
        payload = draw(st.one_of(texts, cut_text, raw, st.just(b"\xed\xa0\x80"), st.just(b"\xf0\x9f")))
    else:
        payload = draw(st.one_of(raw, st.binary(min_size=120, max_size=140)))
    fin = draw(st.sampled_from((True, True, True, False)))
    rsv = draw(st.sampled_from((0,) * 12 + (1, 4)))
    masked = draw(st.sampled_from((True,) * 15 + (False,)))
    return fin, rsv, opcode, payload, masked


@given(st.lists(frames(), max_size=8), st.lists(st.integers(0, 4000), max_size=12),
       st.sampled_from((7, None)))
def test_server_reports_what_the_rfc_says_for_any_frames_split_anywhere(spec, cuts, form):
    data = b"".join(frame(opcode, payload, fin, b"\x5a\x01\xc3\x7e" if masked else None, rsv,
                          None if form is None or len(payload) > 125 else None)
                    for fin, rsv, opcode, payload, masked in spec)
    conn = EventConnection(MAX_MESSAGE)
    got = until_final(feed(conn, data, cuts))
    assert got == expected(spec), "frames %r" % (spec,)


@given(st.lists(frames(), max_size=6), st.lists(st.integers(0, 2000), max_size=8))
def test_server_sees_the_same_events_whole_or_in_pieces(spec, cuts):
    data = b"".join(frame(opcode, payload, fin, b"\x01\x02\x03\x04" if masked else None, rsv)
                    for fin, rsv, opcode, payload, masked in spec)
    whole = feed(EventConnection(MAX_MESSAGE), data, [])
    pieces = feed(EventConnection(MAX_MESSAGE), data, cuts)
    byte_by_byte = feed(EventConnection(MAX_MESSAGE), data, range(len(data)))
    assert whole == pieces == byte_by_byte


@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=10))
def test_any_bytes_give_only_defined_events(data, cuts):
    conn = EventConnection(64)
    events = until_final(feed(conn, data, cuts))
    for name, value in events:
        if name == "fail":
            assert value in DEFINED_FAIL_CODES
        elif name in ("text",):
            assert len(value.encode("utf-8")) <= 64
        elif name in ("binary", "ping", "pong"):
            assert len(value) <= (64 if name == "binary" else 125)


@given(st.integers(126, 2 ** 64 - 1), st.sampled_from((1, 2, 0)), st.booleans())
def test_any_announced_length_over_the_limit_fails_1009_before_the_payload(length, opcode, fin):
    conn = EventConnection(MAX_MESSAGE)
    form = b"\xfe" + struct.pack(">H", length) if length < 65536 else b"\xff" + struct.pack(">Q", length)
    first = b"\x01\x00" + b"\x80" if opcode == 0 else b""  # a message to continue
    if opcode == 0:
        first = frame(1, b"a", fin=False)
    head = bytes(((0x80 if fin else 0) | opcode,)) + form + b"\x00\x00\x00\x00"
    events = feed(conn, first + head, [])
    if length > MAX_MESSAGE - (1 if opcode == 0 else 0):
        assert events == [("fail", 1009)]
    else:
        assert events == []


# --------------------------------------------------------------- handshake

VALID_HEAD = (b"GET /ws HTTP/1.1\r\nHost: device\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
DEFINED_STATUSES = (400, 403, 405, 426, 431)


def run_head(data, max_size):
    """Feed data line by line (as the server does); the outcome, or None if more is needed."""
    reader = HeadReader(max_size)
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        line = data[start:] if end < 0 else data[start:end + 1]
        if end < 0:
            line = line[: max_size - reader.size + 1]
        start += len(line)
        try:
            if reader.feed_line(line):
                response = accept(reader.request(), None, None)
                return ("accepted", response)
        except HandshakeError as error:
            assert error.status in DEFINED_STATUSES, error.status
            response = error.response()
            assert response.startswith(b"HTTP/1.1 %d " % error.status)
            return ("refused", error.status)
        assert reader.size <= max_size
        if end < 0:
            return None
    return None


@given(st.binary(max_size=700), st.sampled_from((64, 256, 4096)))
def test_any_request_bytes_get_an_answer_or_wait_for_more(data, max_size):
    outcome = run_head(data, max_size)
    if outcome is not None and outcome[0] == "accepted":
        assert outcome[1].startswith(b"HTTP/1.1 101 ")


@given(st.integers(0, len(VALID_HEAD) - 1), st.binary(min_size=1, max_size=3), st.booleans())
def test_a_mutated_valid_request_is_accepted_or_refused_cleanly(at, replacement, insert):
    data = VALID_HEAD[:at] + replacement + VALID_HEAD[at + (0 if insert else len(replacement)):]
    outcome = run_head(data, 4096)
    assert outcome is None or outcome[0] in ("accepted", "refused")
    if outcome and outcome[0] == "accepted":
        assert b"\r\nSec-WebSocket-Accept: " in outcome[1]


def test_the_valid_request_itself_is_accepted():
    assert run_head(VALID_HEAD, 4096)[0] == "accepted"
