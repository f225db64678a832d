"""RFC 6455 section 4.2: the server's opening handshake, without sockets.

A request head goes in (bytes, line by line or whole); out comes either the
101 response that accepts the upgrade, or an HTTP error response that says
why not. The asyncio server and the tests drive the same functions.
"""

import binascii

from .compat import const, sha1

# A constant: MicroPython compiles the block below away (annotations are
# strings it never evaluates); mypy takes any TYPE_CHECKING as true.
TYPE_CHECKING = const(0)
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

    Headers = Iterable[Tuple[str, str]]

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DEFAULT_MAX_HEAD = 4096

REASONS = {
    101: "Switching Protocols",
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

_BASE64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_TOKEN_SEPARATORS = '()<>@,;:\\"/[]?={} \t'


class HTTPError(Exception):
    """A request answered with an HTTP error instead of what it asked for."""

    def __init__(self, status: int, message: str, headers: "Optional[Headers]" = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or ()

    def response(self) -> bytes:
        return error_response(self.status, self.message, self.headers)


class HandshakeError(HTTPError):
    """A request head or upgrade that breaks HTTP/1.1 or RFC 6455 4.2.1."""


class Request:
    """A parsed HTTP/1.1 request head."""

    def __init__(self, method: str, target: str, version: str, headers: "dict[str, str]") -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # lower-case name -> value (repeats joined by ", ")
        path, _, query = target.partition("?")
        self.path = path
        self.query = query

    def header(self, name: str, default: "Optional[str]" = None) -> "Optional[str]":
        return self.headers.get(name, default)

    def has_token(self, name: str, token: str) -> bool:
        """Does a comma-list header contain this token (case-insensitive)?"""
        return token in header_tokens(self.headers.get(name, ""))


def header_tokens(value: str) -> "List[str]":
    """Lower-cased, stripped items of a comma-separated header value."""
    tokens = []
    for item in value.split(","):
        item = item.strip().lower()
        if item:
            tokens.append(item)
    return tokens


def _is_token(text):
    if not text:
        return False
    for ch in text:
        if ord(ch) <= 32 or ord(ch) >= 127 or ch in _TOKEN_SEPARATORS:
            return False
    return True


class HeadReader:
    """Collects a request head line by line, with a size limit (431).

    Reading line by line never consumes bytes past the blank line, so a
    WebSocket frame sent right behind the request stays in the stream.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_HEAD) -> None:
        self.max_size = max_size
        self.size = 0
        self._lines = []  # type: List[bytes]

    def feed_line(self, line: bytes) -> bool:
        """Add one line (with its line ending); True once the head is complete."""
        self.size += len(line)
        if self.size > self.max_size:
            raise HandshakeError(431, "request head larger than %d bytes" % self.max_size)
        if not line.endswith(b"\n"):
            raise HandshakeError(400, "request head ended early")
        if line == b"\r\n" or line == b"\n":
            if not self._lines:
                return False  # tolerate blank lines before the request line (RFC 9112 2.2)
            return True
        self._lines.append(line)
        return False

    def request(self) -> Request:
        return parse_lines(self._lines)


def _decode_line(line):
    if line.endswith(b"\r\n"):
        line = line[:-2]
    elif line.endswith(b"\n"):
        line = line[:-1]
    for byte in line:
        if byte >= 0x80 or (byte < 0x20 and byte != 0x09) or byte == 0x7F:
            raise HandshakeError(400, "request head has a non-ASCII or control byte")
    return line.decode()


def parse_lines(lines: "Sequence[bytes]") -> Request:
    """Request line and header fields (RFC 9112 sections 3 and 5)."""
    if not lines:
        raise HandshakeError(400, "empty request")
    parts = _decode_line(lines[0]).split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise HandshakeError(400, "malformed request line")
    method, target, version = parts
    if not _is_token(method):
        raise HandshakeError(400, "malformed method")
    if not version.startswith("HTTP/1."):
        raise HandshakeError(400, "unsupported HTTP version %s" % version)
    headers = {}  # type: dict[str, str]
    for raw in lines[1:]:
        line = _decode_line(raw)
        if line[:1] in (" ", "\t"):
            raise HandshakeError(400, "folded header lines are not allowed")
        name, colon, value = line.partition(":")
        if not colon or not _is_token(name):
            raise HandshakeError(400, "malformed header line")
        name = name.lower()
        value = value.strip()
        if name in headers:
            if name == "host":
                raise HandshakeError(400, "more than one Host header")
            headers[name] = headers[name] + ", " + value
        else:
            headers[name] = value
    return Request(method, target, version, headers)


def _key_is_well_formed(key):
    """16 random bytes in base64 are exactly 24 characters ending in '=='."""
    raw = key.encode()
    if len(raw) != 24 or raw[22:] != b"==":
        return False
    for byte in raw[:22]:
        if byte not in _BASE64_CHARS:
            return False
    try:
        return len(binascii.a2b_base64(raw)) == 16
    except (ValueError, binascii.Error):
        return False


def check_request(request: Request, origins: "Optional[Sequence[Optional[str]]]" = None) -> str:
    """Validate an upgrade request (4.2.1); return its Sec-WebSocket-Key.

    Origin (cross-site WebSocket hijacking): with `origins` None (the
    default) a browser's Origin must name the host it connected to (the Host
    header), and clients that send no Origin (non-browser clients) are let
    in. `origins`, when given, is an allow-list of Origin values instead;
    put None in it to also admit clients that send no Origin, "*" to admit
    any. Raises HandshakeError with the HTTP status that fits the fault.
    """
    if request.method != "GET":
        raise HandshakeError(405, "a WebSocket upgrade must be a GET", (("Allow", "GET"),))
    if request.version != "HTTP/1.1":
        raise HandshakeError(400, "a WebSocket upgrade needs HTTP/1.1")
    if not request.header("host"):
        raise HandshakeError(400, "missing Host header")
    if not request.has_token("upgrade", "websocket"):
        raise HandshakeError(400, "Upgrade header must contain 'websocket'")
    if not request.has_token("connection", "upgrade"):
        raise HandshakeError(400, "Connection header must contain 'upgrade'")
    version = request.header("sec-websocket-version")
    if version is None:
        raise HandshakeError(400, "missing Sec-WebSocket-Version header")
    if version.strip() != "13":
        raise HandshakeError(
            426, "unsupported WebSocket version", (("Sec-WebSocket-Version", "13"),)
        )
    key = request.header("sec-websocket-key") or ""
    if not _key_is_well_formed(key):
        raise HandshakeError(400, "Sec-WebSocket-Key must be 16 bytes in base64")
    origin = request.header("origin")
    if origins is None:
        if origin is not None and not same_host(origin, request.header("host") or ""):
            raise HandshakeError(403, "origin not allowed: not this host")
    elif origin not in origins and "*" not in origins:
        raise HandshakeError(403, "origin not allowed")
    return key


def same_host(origin: str, host: str) -> bool:
    """Does an Origin (http or https) name the host of this Host header?

    Case-insensitive, the scheme's default port (80, 443) written or not."""
    origin = origin.lower()
    host = host.lower()
    if origin.startswith("http://"):
        origin, port = origin[7:], ":80"
    elif origin.startswith("https://"):
        origin, port = origin[8:], ":443"
    else:
        return False  # "null" (a sandboxed page, a file) and other schemes
    if origin.endswith(port):
        origin = origin[:-len(port)]
    if host.endswith(port):
        host = host[:-len(port)]
    return bool(origin) and origin == host


def accept_key(key: "Union[str, bytes]", hash_function: "Callable[[bytes], Any]" = sha1) -> str:
    """Sec-WebSocket-Accept: base64(SHA-1(key + GUID)) (4.2.2, item 5.4)."""
    if isinstance(key, str):
        key = key.encode()
    digest = hash_function(key + GUID).digest()
    return binascii.b2a_base64(digest)[:-1].decode()


def offered_subprotocols(request: Request) -> "List[str]":
    """The client's Sec-WebSocket-Protocol list, in its order of preference."""
    offered = []
    for item in (request.header("sec-websocket-protocol") or "").split(","):
        item = item.strip()
        if item:
            offered.append(item)
    return offered


def accept(request: Request, subprotocol: "Optional[str]" = None,
           origins: "Optional[Sequence[Optional[str]]]" = None, extra_headers: "Headers" = ()) -> bytes:
    """Validate the request and return the 101 response that accepts it."""
    key = check_request(request, origins)
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(key)),
    ]
    if subprotocol is not None:
        if subprotocol not in offered_subprotocols(request):
            raise ValueError("subprotocol %r was not offered by the client" % subprotocol)
        headers.append(("Sec-WebSocket-Protocol", subprotocol))
    for header in extra_headers:
        headers.append(header)
    return response_head(101, headers)


def response_head(status: int, headers: "Headers" = ()) -> bytes:
    """An HTTP/1.1 response head as bytes."""
    parts = ["HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, "Unknown"))]
    for name, value in headers:
        parts.append("%s: %s\r\n" % (name, value))
    parts.append("\r\n")
    return "".join(parts).encode()


def error_response(status: int, message: str = "", headers: "Headers" = ()) -> bytes:
    """A complete plain-text error response; the connection closes after it."""
    body = (message or REASONS.get(status, "")).encode() + b"\n"
    all_headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
    ]
    for header in headers:
        all_headers.append(header)
    return response_head(status, all_headers) + body
