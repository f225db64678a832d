"""Limits and hostile clients against the server under MicroPython, over raw
sockets (mpclient.RawClient). Each violation must close only the connection
that committed it, with the right code or HTTP status; a bystander client
held open meanwhile still echoes, and afterwards a fresh client is served.
"""

import socket
import time

import pytest
from mpclient import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    Closed,
    RawClient,
    close_payload,
    frame,
    http_request,
    upgrade_head,
)

HEAP = "256k"
MAX_SIZE = 1024
MAX_HEAD = 512


@pytest.fixture
def server(mp_server):
    return mp_server(heap=HEAP, max_size=MAX_SIZE, max_clients=4, max_head=MAX_HEAD, head_timeout=2)


@pytest.fixture
def bystander(server):
    """A client connected before the misbehaviour; checked by undisturbed()."""
    client = RawClient.upgrade(server.port)
    client.echo("before")
    yield client
    client.close()


def undisturbed(server, bystander):
    """The bystander still echoes and closes properly; a fresh client is served."""
    server.assert_alive()
    try:
        bystander.echo("after the hostile client \u00e9")
        bystander.echo(bytes(range(256)) * 4)
        bystander.close_handshake(1000)
    except (AssertionError, OSError, Closed) as error:
        raise AssertionError("the bystander was disturbed: %r\n%s" % (error, server.log())) from error
    server.assert_serving()


def expect_close(client, code):
    """The server closes with `code`; we answer; it ends the TCP connection."""
    got, _ = client.read_close()
    assert got == code, "expected close %d, got %r" % (code, got)
    try:
        client.send_frame(OP_CLOSE, close_payload(code))
    except OSError:
        pass  # it may already have ended the connection
    assert client.at_eof(timeout=4), "the server kept the TCP connection after close %d" % code


# ------------------------------------------------------------------ messages

@pytest.mark.parametrize("frames", [
    [frame(OP_BINARY, bytes(MAX_SIZE + 1))],
    [frame(OP_TEXT, b"a" * (MAX_SIZE + 1))],
    [frame(OP_BINARY, bytes(600), fin=False), frame(OP_CONT, bytes(600))],  # too large only in sum
    [frame(OP_BINARY, b"", length=(1 << 63) - 1)],  # announced, never sent
    [frame(OP_BINARY, b"", length=1 << 32)],
], ids=["whole-binary", "whole-text", "fragmented", "announced-2^63", "announced-2^32"])
def test_oversize_message_closes_with_1009(server, bystander, frames):
    client = RawClient.upgrade(server.port)
    client.echo(bytes(MAX_SIZE))  # the limit itself is fine
    for data in frames:
        client.sendall(data)
    expect_close(client, 1009)
    client.close()
    undisturbed(server, bystander)


@pytest.mark.parametrize("frames", [
    [frame(OP_TEXT, b"\xff")],
    [frame(OP_TEXT, b"ok \xc0\xaf")],  # overlong '/'
    [frame(OP_TEXT, b"\xed\xa0\x80")],  # a surrogate
    [frame(OP_TEXT, b"\xf4\x90\x80\x80")],  # beyond U+10FFFF
    [frame(OP_TEXT, b"cut \xe2\x82")],  # a character cut off by the message's end
    [frame(OP_TEXT, "\u00e9t\u00e9".encode(), fin=False), frame(OP_CONT, b"\x80\x80")],
    [frame(OP_TEXT, b"\xe2", fin=False), frame(OP_CONT, b"\x82", fin=False), frame(OP_CONT, b"(")],
    [frame(OP_CLOSE, close_payload(1000) + b"\xff\xfe")],  # a close reason must be UTF-8 too
], ids=["ff", "overlong", "surrogate", "too-high", "truncated", "second-fragment", "split-char",
        "close-reason"])
def test_invalid_utf8_closes_with_1007(server, bystander, frames):
    client = RawClient.upgrade(server.port)
    client.echo("valid \u00e9\U0001f600 first")
    for data in frames:
        client.sendall(data)
    if frames[-1][0] & 0x0F == OP_CLOSE:  # the handshake is over with that close
        got, _ = client.read_close()
        assert got == 1007, got
        assert client.at_eof(timeout=4)
    else:
        expect_close(client, 1007)
    client.close()
    undisturbed(server, bystander)


@pytest.mark.parametrize("data", [
    frame(OP_TEXT, b"hello", mask=None),  # unmasked
    frame(OP_TEXT, b"hello", rsv=4),  # RSV1
    frame(OP_TEXT, b"hello", rsv=2),  # RSV2
    frame(OP_TEXT, b"hello", rsv=1),  # RSV3
    frame(OP_PING, b"", rsv=4),
    frame(3, b"hello"),  # reserved data opcodes
    frame(7, b""),
    frame(0xB, b"x"),  # reserved control opcodes
    frame(0xF, b""),
    frame(OP_CONT, b"no message to continue"),
    frame(OP_TEXT, b"one", fin=False) + frame(OP_TEXT, b"two"),  # new message inside a fragmented one
    frame(OP_PING, b"fragmented ping", fin=False),
    frame(OP_PING, b"p" * 126),  # control payload over 125
    frame(OP_CLOSE, b"\x03"),  # a 1-byte close payload
    frame(OP_CLOSE, close_payload(1005)),  # a code no endpoint may send
    frame(OP_CLOSE, close_payload(999)),
], ids=["unmasked", "rsv1", "rsv2", "rsv3", "rsv-on-ping", "opcode-3", "opcode-7", "opcode-0xB",
        "opcode-0xF", "lone-continuation", "nested-message", "fragmented-ping", "long-ping",
        "close-1-byte", "close-1005", "close-999"])
def test_protocol_violation_closes_with_1002(server, bystander, data):
    client = RawClient.upgrade(server.port)
    client.echo("fine so far")
    client.sendall(data)
    if data[0] & 0x0F == OP_CLOSE:
        got, _ = client.read_close()
        assert got == 1002, got
        assert client.at_eof(timeout=4)
    else:
        expect_close(client, 1002)
    client.close()
    undisturbed(server, bystander)


def test_control_frames_inside_a_fragmented_message_are_answered(server, bystander):
    client = RawClient.upgrade(server.port)
    client.send_frame(OP_TEXT, b"frag", fin=False)
    client.send_frame(OP_PING, b"in between")
    _, opcode, payload = client.read_frame()
    assert (opcode, payload) == (0xA, b"in between")
    client.send_frame(OP_CONT, b"mented")
    assert client.read_message() == (OP_TEXT, b"fragmented")
    client.close_handshake(1000)
    client.close()
    undisturbed(server, bystander)


# ---------------------------------------------------------------- HTTP heads

@pytest.mark.parametrize("head", [
    b"GARBAGE\r\n\r\n",
    b"GET /ws\r\nHost: x\r\n\r\n",  # no HTTP version
    b"GET /ws HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: x\r\n folded: line\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: \xff\x00\r\n\r\n",
    upgrade_head(key="c2hvcnQ=")[0],  # a key that is not 16 bytes
    upgrade_head()[0].replace(b"Upgrade: websocket\r\n", b""),
], ids=["garbage", "no-version", "no-colon", "folded", "two-hosts", "control-byte", "short-key",
        "no-upgrade"])
def test_malformed_request_head_gets_400(server, bystander, head):
    status, headers, _ = http_request(server.port, head)
    assert status == 400, (status, headers)
    undisturbed(server, bystander)


def test_request_head_that_ends_early_gets_400(server, bystander):
    client = RawClient.open(server.port)
    client.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
    client.sock.shutdown(socket.SHUT_WR)
    status, _, _ = client.read_response()
    assert status == 400
    client.close()
    undisturbed(server, bystander)


def test_request_head_over_the_limit_gets_431(server, bystander):
    head, _ = upgrade_head(extra=(("X-Padding", "p" * (MAX_HEAD + 100)),))
    status, _, _ = http_request(server.port, head)
    assert status == 431
    many, _ = upgrade_head(extra=[("X-H%d" % i, "v") for i in range(100)])  # small lines, many of them
    status, _, _ = http_request(server.port, many)
    assert status == 431
    undisturbed(server, bystander)


def test_one_endless_line_gets_431(server, bystander):
    client = RawClient.open(server.port)
    client.sendall(b"GET /" + b"a" * (2 * MAX_HEAD))  # no line end, ever
    status, _ = client.read_head()
    assert status == 431
    client.close()
    undisturbed(server, bystander)


def test_slow_request_head_gets_408(mp_server):
    server = mp_server(heap=HEAP, max_size=MAX_SIZE, max_clients=2, head_timeout=1)
    bystander = RawClient.upgrade(server.port)
    client = RawClient.open(server.port)
    head, _ = upgrade_head()
    start = time.monotonic()
    client.sock.settimeout(0.2)
    answer = b""
    for byte in head:
        try:
            client.sendall(bytes([byte]))
            answer += client.sock.recv(4096)
        except socket.timeout:
            continue
        except OSError:
            break
        break  # an answer or the end: either way, stop trickling
    elapsed = time.monotonic() - start
    client.sock.settimeout(5)
    if answer:
        while b"\r\n\r\n" not in answer:
            chunk = client.sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    client.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert 0.9 < elapsed < 2.5, elapsed
    undisturbed(server, bystander)


# ----------------------------------------------------------------- max_clients

def test_client_beyond_max_clients_gets_503_and_the_others_are_undisturbed(mp_server):
    server = mp_server(heap=HEAP, max_size=MAX_SIZE, max_clients=2)
    first = RawClient.upgrade(server.port)
    second = RawClient.upgrade(server.port)
    for _ in range(3):
        extra = RawClient.open(server.port)
        extra.sendall(upgrade_head()[0])
        status, headers, body = extra.read_response()  # the first response is the only one
        extra.close()
        assert status == 503, (status, headers)
        assert b"HTTP/1.1 101" not in body
    for client in (first, second):
        client.echo("still fine")
    first.close_handshake(1000)
    first.close()
    third = None
    for _ in range(40):  # the slot comes free once the server has seen the close
        try:
            third = RawClient.upgrade(server.port)
            break
        except AssertionError:
            time.sleep(0.05)
    assert third is not None, "no slot came free after a client closed"
    third.echo("in")
    for client in (second, third):
        client.close_handshake(1000)
        client.close()
    server.assert_serving()


# --------------------------------------------------------- silent and resets

def test_silent_clients_do_not_disturb_others(server, bystander):
    silent_tcp = RawClient.open(server.port)  # connects, sends nothing
    silent_ws = RawClient.upgrade(server.port)  # upgrades, then sends nothing
    for n in range(5):
        client = RawClient.upgrade(server.port)
        client.echo("while others are silent %d" % n)
        client.close_handshake(1000)
        client.close()
    bystander.echo("meanwhile")
    # the silent TCP client loses its place by the head timeout (2 s)
    silent_tcp.sock.settimeout(5)
    answer = silent_tcp.sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    silent_tcp.close()
    silent_ws.echo("still here after all")
    silent_ws.close_handshake(1000)
    silent_ws.close()
    undisturbed(server, bystander)


@pytest.mark.parametrize("part", [
    upgrade_head()[0][:30],  # half a request head
    frame(OP_TEXT, b"x" * 500)[:1],  # one byte of a frame header
    frame(OP_TEXT, b"x" * 500)[:4],  # header, half the mask
    frame(OP_BINARY, b"x" * 1000)[:300],  # half the payload
    frame(OP_TEXT, b"one", fin=False) + frame(OP_CONT, b"two")[:5],  # inside a fragmented message
], ids=["in-head", "in-header", "in-mask", "in-payload", "in-fragments"])
def test_reset_mid_frame_does_not_disturb_others(mp_server, part):
    server = mp_server(heap=HEAP, max_size=MAX_SIZE, max_clients=2)
    bystander = RawClient.upgrade(server.port)
    if part.startswith(b"GET"):
        client = RawClient.open(server.port)
    else:
        client = RawClient.upgrade(server.port)
        client.echo("before the reset")
    client.sendall(part)
    time.sleep(0.05)
    client.reset()
    bystander.echo("undisturbed")
    # its slot comes free: with max_clients 2 a new client gets in
    fresh = None
    for _ in range(40):
        try:
            fresh = RawClient.upgrade(server.port)
            break
        except AssertionError:
            time.sleep(0.05)
    assert fresh is not None, "the reset client's slot never came free\n" + server.log()
    fresh.echo("in its place")
    fresh.close_handshake(1000)
    fresh.close()
    undisturbed(server, bystander)
