"""Coverage-guided fuzzing of the two parsers that face the network.

    python3 tools/fuzz.py frames    [--seconds 300] [--save]
    python3 tools/fuzz.py handshake [--seconds 300] [--save]

Runs atheris (libFuzzer for Python; `pip install atheris`) on check_frames or
check_handshake below: any input must lead to a defined outcome, never an
unexpected exception, never a buffer beyond its limit. A violation stops
the run and libFuzzer writes the input to artifacts/fuzz/crash-*.

The run starts from the regression corpus host_tests/hostile/corpus/TARGET/
and works in artifacts/fuzz/TARGET/. --save then merges what it found into
the regression corpus, keeping only inputs that reach new code
(libFuzzer -merge=1); the test command replays that corpus every run.

The same two checks are what host_tests/hostile/test_corpus.py replays.
"""

import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")
if LIB not in sys.path:
    sys.path.insert(0, LIB)

from microws.connection import EV_CLOSE, EV_FAILED, EV_NONE, EV_PING, EV_PONG, EV_TEXT  # noqa: E402
from microws.handshake import HandshakeError, HeadReader, accept  # noqa: E402
from microws.sansio import EventConnection  # noqa: E402

CORPUS = os.path.join(ROOT, "host_tests", "hostile", "corpus")
WORK = os.path.join(ROOT, "artifacts", "fuzz")
FAIL_CODES = (1002, 1007, 1009)
HTTP_STATUSES = (400, 403, 405, 426, 431)


def check_frames(data):
    """Input: 1 byte picks the message limit, 1 byte the piece size, then the
    client's bytes. Feeds them through the low-level API as the server does."""
    if len(data) < 2:
        return ()
    limit = 1 + data[0] * 4  # 1..1021 bytes
    piece = 1 + data[1]  # bytes per read, 1..256
    stream = memoryview(data)[2:]
    conn = EventConnection(limit)
    buffer = conn.buffer
    size = len(buffer)
    finished = False
    outcome = []
    at = 0
    while at < len(stream) and conn.read_size:
        if conn.read_pos < 0 or conn.read_pos + conn.read_size > size:
            raise AssertionError("read outside the buffer: %d+%d > %d" % (conn.read_pos, conn.read_size, size))
        n = min(conn.read_size, piece, len(stream) - at)
        buffer[conn.read_pos:conn.read_pos + n] = stream[at:at + n]
        at += n
        event = conn.received(n)
        if conn.buffer is not buffer or len(buffer) != size:
            raise AssertionError("the receive buffer was replaced or resized")
        if conn.control_size > 125 + 14:
            raise AssertionError("control reply too large: %d" % conn.control_size)
        conn.control_size = 0  # "sent"
        if event == EV_NONE:
            continue
        outcome.append(event if event != EV_FAILED else (event, conn.fail_code))
        if finished and event != EV_CLOSE:
            raise AssertionError("event %d after the connection failed or closed" % event)
        if event == EV_FAILED:
            if conn.fail_code not in FAIL_CODES:
                raise AssertionError("undefined close code %r" % conn.fail_code)
            finished = True
        elif event == EV_CLOSE:
            finished = True
        else:
            most = 125 if event in (EV_PING, EV_PONG) else limit  # control payloads: up to 125 always
            if conn.event_size > most or conn.event_start + conn.event_size > size:
                raise AssertionError("payload of %d bytes beyond the limit %d" % (conn.event_size, most))
            if event == EV_TEXT:
                conn.event_text()  # must be valid UTF-8: decoding may not fail
    return tuple(outcome)


def check_handshake(data):
    """Input: 1 byte picks the head limit, then the request bytes, read line
    by line as the server reads them."""
    if not data:
        return ()
    limit = 16 + data[0] * 16  # 16..4096 bytes
    reader = HeadReader(limit)
    head = bytes(data[1:])
    at = 0
    try:
        while at < len(head):
            end = head.find(b"\n", at)
            end = len(head) if end < 0 else end + 1
            line = head[at:min(end, at + limit - reader.size + 1)]
            at += len(line)
            if reader.feed_line(line):
                response = accept(reader.request(), None, None)
                if not response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"):
                    raise AssertionError("accepted without a 101: %r" % response[:40])
                return (101,)
            if reader.size > limit:
                raise AssertionError("head of %d bytes kept, limit %d" % (reader.size, limit))
    except HandshakeError as error:
        if error.status not in HTTP_STATUSES:
            raise AssertionError("undefined HTTP status %r" % error.status)
        if not error.response().startswith(b"HTTP/1.1 %d " % error.status):
            raise AssertionError("malformed error response")
        return (error.status, error.message)
    return ()


TARGETS = {"frames": check_frames, "handshake": check_handshake}


def seed_inputs():
    """A few well-formed and classic bad inputs to start from."""
    def masked(b0, payload, mask=b"\x11\x22\x33\x44"):
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        n = len(payload)
        length = bytes((0x80 | n,)) if n < 126 else b"\xfe" + struct.pack(">H", n)
        return bytes((b0,)) + length + mask + body

    frames = {
        "text_hello": b"\x40\x10" + masked(0x81, b"hello"),
        "fragments_with_ping": b"\x40\x03" + masked(0x01, b"he") + masked(0x89, b"p") + masked(0x80, b"llo"),
        "emoji_split": b"\x40\x01" + masked(0x01, "\U0001f600".encode()[:2]) + masked(0x80, "\U0001f600".encode()[2:]),
        "close_1000": b"\x40\x40" + masked(0x88, b"\x03\xe8bye"),
        "length_2_63": b"\x40\x40\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00",
        "unmasked": b"\x40\x40\x81\x05hello",
        "overlong_utf8": b"\x40\x40" + masked(0x81, b"\xc0\xaf"),
        "binary_126": b"\xff\x40" + masked(0x82, bytes(range(126))),
    }
    good = (b"GET /ws HTTP/1.1\r\nHost: d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    handshake = {
        "valid": b"\xff" + good,
        "version_8": b"\xff" + good.replace(b"Version: 13", b"Version: 8"),
        "short_key": b"\xff" + good.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"dGhl"),
        "tiny_limit": b"\x02" + good,
        "bare_lf": b"\xff" + good.replace(b"\r\n", b"\n"),
    }
    return {"frames": frames, "handshake": handshake}


def write_seeds():
    for target, inputs in seed_inputs().items():
        folder = os.path.join(CORPUS, target)
        os.makedirs(folder, exist_ok=True)
        for name, data in inputs.items():
            path = os.path.join(folder, "seed-" + name)
            if not os.path.exists(path):
                with open(path, "wb") as f:
                    f.write(data)


def save_new_outcomes(target, work, most=150):
    """Copy into the regression corpus the shortest found input of each new outcome."""
    check = TARGETS[target]
    folder = os.path.join(CORPUS, target)
    known = set()
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), "rb") as f:
            known.add(check(f.read()))
    found = {}
    for name in sorted(os.listdir(work)) if os.path.isdir(work) else []:
        with open(os.path.join(work, name), "rb") as f:
            data = f.read()
        outcome = check(data)
        if outcome not in known and (outcome not in found or len(data) < len(found[outcome][1])):
            found[outcome] = (name, data)
    kept = sorted(found.values(), key=lambda item: len(item[1]))[:most]
    for name, data in kept:
        with open(os.path.join(folder, "found-" + name[:16]), "wb") as f:
            f.write(data)
    print("%s: %d new outcomes saved to %s (%d known before)" % (target, len(kept), folder, len(known)))


def main(argv):
    if len(argv) < 1 or argv[0] not in TARGETS:
        sys.exit("usage: python3 tools/fuzz.py {frames|handshake} [--seconds N] [--save]")
    target = argv[0]
    seconds = 300
    if "--seconds" in argv:
        seconds = int(argv[argv.index("--seconds") + 1])
    try:
        import atheris
    except ImportError:
        sys.exit("tools/fuzz.py needs atheris: python3 -m pip install atheris  (wheels exist for CPython 3.8-3.11 "
                 "on Linux; the property tests in host_tests/hostile/ run without it)")
    write_seeds()
    work = os.path.join(WORK, target)
    if "--save" in argv:
        save_new_outcomes(target, work)
        return
    os.makedirs(work, exist_ok=True)
    check = TARGETS[target]
    fuzzer_args = [sys.argv[0], work, os.path.join(CORPUS, target), "-max_total_time=%d" % seconds,
                   "-artifact_prefix=" + os.path.join(WORK, "crash-" + target + "-"), "-max_len=4096",
                   "-print_final_stats=1"]
    atheris.instrument_all()
    atheris.Setup(fuzzer_args, lambda data: check(data))
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv[1:])
