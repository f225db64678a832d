"""A blocking WebSocket client over plain sockets, written for these tests
and independent of microws (its own framing, masking and accept key), so a
shared bug cannot hide. It can misbehave where a client library would not:
unmasked or reserved-bit frames, half a frame, a reset, a silent socket."""

import base64
import hashlib
import os
import socket
import struct
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MASK = b"\x37\xfa\x21\x3d"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def upgrade_head(path="/ws", extra=(), key=None):
    key = key or base64.b64encode(os.urandom(16)).decode()
    lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1", "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
    lines.extend("%s: %s" % pair for pair in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), key


def masked(payload, mask):
    if not mask or not payload:
        return bytes(payload)
    key = int.from_bytes(mask * ((len(payload) + 3) // 4), "big") >> (8 * (-len(payload) % 4))
    return (int.from_bytes(payload, "big") ^ key).to_bytes(len(payload), "big")


def frame(opcode, payload=b"", fin=True, rsv=0, mask=MASK, length=None):
    """One frame as a client sends it (masked unless mask is None).
    length: announce this payload length instead of the real one."""
    n = len(payload) if length is None else length
    head = bytearray([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if mask else 0
    if n < 126:
        head.append(bit | n)
    elif n < 65536:
        head.append(bit | 126)
        head += struct.pack(">H", n)
    else:
        head.append(bit | 127)
        head += struct.pack(">Q", n)
    if mask:
        head += mask
    return bytes(head) + masked(payload, mask)


def close_payload(code, reason=""):
    return struct.pack(">H", code) + reason.encode()


def parse_head(data):
    """(status, {lower-case name: value}) of an HTTP response head."""
    lines = data.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    assert parts[0] == "HTTP/1.1" and len(parts) >= 2, "not an HTTP/1.1 status line: %r" % lines[0]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


class Closed(Exception):
    """The server ended the TCP connection (FIN or reset) where data was expected."""


class RawClient:
    def __init__(self, sock):
        self.sock = sock
        self.pending = b""  # received, not yet consumed

    @classmethod
    def open(cls, port, timeout=5):
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock)

    @classmethod
    def upgrade(cls, port, path="/ws", extra=(), timeout=5):
        """Connected and upgraded: asserts the 101 and its accept key."""
        client = cls.open(port, timeout)
        try:
            head, key = upgrade_head(path, extra)
            client.sendall(head)
            status, headers = client.read_head()
            assert status == 101, "expected 101, got %d %r" % (status, headers)
            assert headers.get("sec-websocket-accept") == accept_key(key), headers
        except BaseException:
            client.close()
            raise
        return client

    # ------------------------------------------------------------------ bytes

    def sendall(self, data):
        self.sock.sendall(data)

    def _more(self):
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise Closed("the server closed the connection (%d bytes unread: %r)"
                         % (len(self.pending), self.pending[:40]))
        self.pending += chunk

    def read_exactly(self, n):
        while len(self.pending) < n:
            self._more()
        data, self.pending = self.pending[:n], self.pending[n:]
        return data

    def read_head(self):
        """(status, headers) of the HTTP response head; raises Closed if the
        server ends the connection first."""
        while b"\r\n\r\n" not in self.pending:
            self._more()
            assert len(self.pending) < 65536, "endless response head"
        head, _, self.pending = self.pending.partition(b"\r\n\r\n")
        return parse_head(head)

    def read_response(self):
        """(status, headers, body): everything until the server closes."""
        status, headers = self.read_head()
        body = self.pending
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            body += chunk
        self.pending = b""
        return status, headers, body

    # ----------------------------------------------------------------- frames

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, mask=MASK):
        self.sendall(frame(opcode, payload, fin, rsv, mask))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode())

    def read_frame(self):
        """(fin, opcode, payload) of the next frame; checks the server's framing."""
        b0, b1 = self.read_exactly(2)
        assert b0 & 0x70 == 0, "RSV bits set by the server: %#x" % b0
        assert b1 & 0x80 == 0, "the server masked a frame"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self.read_exactly(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self.read_exactly(8))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self.read_exactly(n)

    def read_message(self):
        """(opcode, payload) of the next data message, fragments joined; pings answered."""
        opcode = None
        parts = []
        while True:
            fin, op, payload = self.read_frame()
            if op == OP_PING:
                self.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                raise AssertionError("close %r where a message was expected" % (payload,))
            if opcode is None:
                assert op in (OP_TEXT, OP_BINARY), "message starts with opcode %d" % op
                opcode = op
            else:
                assert op == OP_CONT, "opcode %d inside a fragmented message" % op
            parts.append(payload)
            if fin:
                return opcode, b"".join(parts)

    def echo(self, message):
        """Send a text (str) or binary (bytes) message; assert it comes back."""
        if isinstance(message, str):
            self.send_frame(OP_TEXT, message.encode())
            expected = (OP_TEXT, message.encode())
        else:
            self.send_frame(OP_BINARY, message)
            expected = (OP_BINARY, bytes(message))
        got = self.read_message()
        assert got == expected, "echo of %r came back as %r" % (expected[1][:40], got[1][:40])

    def read_close(self):
        """(code, reason) of the server's close frame, skipping data frames."""
        while True:
            _, opcode, payload = self.read_frame()
            if opcode == OP_CLOSE:
                if not payload:
                    return None, ""
                return struct.unpack(">H", payload[:2])[0], payload[2:].decode("utf-8")

    def close_handshake(self, code=1000, reason=""):
        """Client-initiated close: the server must echo the code, then end TCP."""
        self.send_frame(OP_CLOSE, close_payload(code, reason))
        got = self.read_close()
        assert got[0] == code, "close %d answered with %r" % (code, got)
        assert self.at_eof(), "the server kept the TCP connection after the closing handshake"

    def at_eof(self, timeout=5):
        """True once the server has ended the TCP connection, within timeout."""
        deadline = time.monotonic() + timeout
        old = self.sock.gettimeout()
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    return False
                except ConnectionResetError:
                    return True
                if not chunk:
                    return True
            return False
        finally:
            self.sock.settimeout(old)

    def reset(self):
        """Abort: the kernel sends RST, unsent data and all."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        self.sock.close()


def http_request(port, head, timeout=5):
    """Send raw request bytes -> (status, headers, body) read until the server closes."""
    client = RawClient.open(port, timeout)
    try:
        client.sendall(head)
        return client.read_response()
    finally:
        client.close()


def http_get(port, path, timeout=5):
    return http_request(port, ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode(), timeout)
