"""Just enough HTTP/1.1 to serve a dashboard beside the WebSocket: static
files (precompressed .gz when the browser accepts it), small plain routes.
Every response closes its connection: a dashboard loads one page.

The server imports this module on the first plain HTTP request, so a board
that only streams never holds it."""

import json
import os

from .handshake import HTTPError, header_tokens, response_head

try:
    from typing import TYPE_CHECKING
except ImportError:  # MicroPython: annotations are strings, never evaluated
    TYPE_CHECKING = False  # type: ignore[misc]
if TYPE_CHECKING:
    from typing import Any, Iterable, Tuple, Union

CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "htm": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js": "application/javascript; charset=utf-8",
    "mjs": "application/javascript; charset=utf-8",
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "ico": "image/x-icon",
    "webp": "image/webp",
    "wasm": "application/wasm",
    "woff2": "font/woff2",
}
CHUNK_SIZE = 1024


class Response:
    """What a plain HTTP route returns when a str, bytes or dict won't do."""

    def __init__(self, body: "Union[str, bytes]" = b"", status: int = 200,
                 content_type: str = "text/plain; charset=utf-8", headers: "Iterable[Tuple[str, str]]" = ()) -> None:
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.body = body
        self.status = status
        self.content_type = content_type
        self.headers = headers

    @classmethod
    def from_result(cls, result: "Any") -> "Response":
        """Turn a route's return value into a Response."""
        if isinstance(result, Response):
            return result
        if isinstance(result, (dict, list)):
            return cls(json.dumps(result), content_type="application/json")
        if isinstance(result, str):
            return cls(result, content_type="text/html; charset=utf-8")
        if result is None:
            return cls(b"", status=204)
        return cls(bytes(result), content_type="application/octet-stream")

    def head(self) -> bytes:
        headers = [
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            ("Connection", "close"),
        ]
        for header in self.headers:
            headers.append(header)
        return response_head(self.status, headers)


def content_type(name):
    dot = name.rfind(".")
    return CONTENT_TYPES.get(name[dot + 1 :].lower() if dot >= 0 else "", "application/octet-stream")


def _hex_value(ch):
    code = ord(ch)
    if 48 <= code <= 57:
        return code - 48
    code |= 0x20
    if 97 <= code <= 102:
        return code - 87
    return -1


def percent_decode(text):
    """Decode %XX escapes of a URL path; bad escapes are a 400."""
    if "%" not in text:
        return text
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "%":
            high = _hex_value(text[i + 1]) if i + 1 < len(text) else -1
            low = _hex_value(text[i + 2]) if i + 2 < len(text) else -1
            if high < 0 or low < 0:
                raise HTTPError(400, "bad percent-escape in path")
            out.append(high * 16 + low)
            i += 3
        else:
            out.extend(ch.encode("utf-8"))
            i += 1
    try:
        return bytes(out).decode("utf-8")
    except UnicodeError:
        raise HTTPError(400, "path is not UTF-8")


def safe_path(folder, url_path):
    """The file under folder that url_path names, or None if it would leave
    the folder (.., encoded or not, backslashes, NUL)."""
    path = percent_decode(url_path)
    if "\\" in path or "\0" in path:
        return None
    parts = []
    for part in path.split("/"):
        if part == ".." or part == ".":
            return None
        if part:
            parts.append(part)
    if path.endswith("/") or not parts:
        parts.append("index.html")
    return folder.rstrip("/") + "/" + "/".join(parts)


def file_size(path):
    """Size of a regular file, None if it does not exist or is a folder."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    if stat[0] & 0x4000:  # S_IFDIR
        return None
    return stat[6]


def accepts_gzip(request):
    for token in header_tokens(request.header("accept-encoding", "")):
        name, _, params = token.partition(";")
        if name.strip() in ("gzip", "*"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def find_static(folder, request):
    """(file path, gzipped?) for a static request; raises HTTPError 404/406."""
    path = safe_path(folder, request.path)
    if path is None:
        raise HTTPError(404, "not found")
    plain = file_size(path) is not None
    if file_size(path + ".gz") is not None:
        if accepts_gzip(request):
            return path + ".gz", True
        if not plain:
            raise HTTPError(406, "this file is stored gzip-compressed only")
    if not plain:
        raise HTTPError(404, "not found")
    return path, False


async def send_file(link, path, name, gzipped, head_only):
    """Stream a file in small chunks: a board has no RAM for a whole page."""
    headers = [
        ("Content-Type", content_type(name)),
        ("Content-Length", str(file_size(path))),
        ("Cache-Control", "no-cache"),
        ("Vary", "Accept-Encoding"),
        ("Connection", "close"),
    ]
    if gzipped:
        headers.append(("Content-Encoding", "gzip"))
    await link.write_all(response_head(200, headers))
    if head_only:
        return
    chunk = bytearray(CHUNK_SIZE)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(chunk)
            if not n:
                break
            await link.write_all(chunk if n == CHUNK_SIZE else memoryview(chunk)[:n])


async def serve_http(server, request, link):
    """Answer a plain HTTP request: a route, a static file, or an error."""
    method = request.method
    head_only = method == "HEAD"
    try:
        if request.path in server._http_routes:
            handler, methods = server._http_routes[request.path]
            if method not in methods and not (head_only and "GET" in methods):
                raise HTTPError(405, "method not allowed", (("Allow", ", ".join(methods)),))
            result = handler(request)
            if hasattr(result, "send"):  # a coroutine: the handler was async
                result = await result
            response = Response.from_result(result)
            await link.write_all(response.head())
            if not head_only:
                await link.write_all(response.body)
            return
        for prefix, folder in server._static:
            if request.path.startswith(prefix) or request.path + "/" == prefix:
                if method != "GET" and not head_only:
                    raise HTTPError(405, "method not allowed", (("Allow", "GET, HEAD"),))
                rest = request.path[len(prefix) - 1 :] or "/"
                path, gzipped = find_static(folder, _Rebased(request, rest))
                name = path[:-3] if gzipped else path
                await send_file(link, path, name, gzipped, head_only)
                return
        raise HTTPError(404, "not found")
    except HTTPError as error:
        response = error.response()
        if head_only:
            response = response[: response.find(b"\r\n\r\n") + 4]
        await link.write_all(response)


class _Rebased:
    """A request seen with its path relative to a static mount."""

    def __init__(self, request, path):
        self.path = path
        self.header = request.header
