"""Plain HTTP on the WebSocket's port: static files, routes, errors."""

import gzip
import os

from rawclient import http_request, split_response
from serverutil import run, running

from microws.http import Response
from microws.server import Server

PAGE = b"<!doctype html><title>dash</title>" + b"<p>hello</p>" * 50


def site(tmp_path):
    www = tmp_path / "www"
    (www / "js").mkdir(parents=True)
    (www / "index.html").write_bytes(PAGE)
    (www / "index.html.gz").write_bytes(gzip.compress(PAGE, mtime=0))
    (www / "js" / "app.js").write_bytes(b"console.log(1)")
    (www / "style.css").write_bytes(b"body{}")
    (www / "only.json.gz").write_bytes(gzip.compress(b"{}", mtime=0))
    (tmp_path / "secret.txt").write_bytes(b"the wifi password")
    server = Server()
    server.static("/", str(www))

    @server.route("/api/info")
    def info(request):
        return {"board": "host", "query": request.query}

    @server.route("/api/async")
    async def later(request):
        return Response("made later", content_type="text/plain")

    @server.websocket("/ws")
    async def ws_route(ws):
        await ws.send("hi")

    return server


def get(port, path, method="GET", headers=()):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1"]
    lines.extend("%s: %s" % pair for pair in headers)
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return http_request(port, head)


def test_static_index_served_with_type_and_length(tmp_path):
    async def body():
        async with running(site(tmp_path)) as port:
            status, headers, content = split_response(await get(port, "/"))
            assert status == 200
            assert headers["content-type"] == "text/html; charset=utf-8"
            assert int(headers["content-length"]) == len(PAGE) == len(content)
            assert content == PAGE
            assert "content-encoding" not in headers
    run(body())


def test_precompressed_file_served_when_client_accepts_gzip(tmp_path):
    async def body():
        async with running(site(tmp_path)) as port:
            reply = await get(port, "/index.html", headers=(("Accept-Encoding", "gzip, deflate, br"),))
            status, headers, content = split_response(reply)
            assert status == 200
            assert headers["content-encoding"] == "gzip"
            assert headers["content-type"] == "text/html; charset=utf-8"
            assert int(headers["content-length"]) == len(content)
            assert gzip.decompress(content) == PAGE
            assert headers["vary"] == "Accept-Encoding"
    run(body())


def test_gzip_refused_with_q_zero_gets_plain_file(tmp_path):
    async def body():
        async with running(site(tmp_path)) as port:
            reply = await get(port, "/", headers=(("Accept-Encoding", "gzip;q=0"),))
            status, headers, content = split_response(reply)
            assert content == PAGE
            assert "content-encoding" not in headers
    run(body())


def test_gzip_only_file_without_gzip_support_is_406(tmp_path):
    async def body():
        async with running(site(tmp_path)) as port:
            assert split_response(await get(port, "/only.json"))[0] == 406
            reply = await get(port, "/only.json", headers=(("Accept-Encoding", "gzip"),))
            status, headers, _ = split_response(reply)
            assert status == 200
            assert headers["content-type"] == "application/json"
    run(body())


def test_content_types_by_extension(tmp_path):
    async def body():
        async with running(site(tmp_path)) as port:
            assert split_response(await get(port, "/js/app.js"))[1]["content-type"].startswith(
                "application/javascript")
            assert split_response(await get(port, "/style.css"))[1]["content-type"].startswith("text/css")
    run(body())


def test_head_gives_headers_without_body(tmp_path):
    async def body():
        async with running(site(tmp_path)) as port:
            status, headers, content = split_response(await get(port, "/", method="HEAD"))
            assert status == 200
            assert int(headers["content-length"]) == len(PAGE)
            assert content == b""
    run(body())


def test_unknown_path_is_404(tmp_path):
    async def body():
        async with running(site(tmp_path)) as port:
            assert split_response(await get(port, "/nope.html"))[0] == 404
            assert split_response(await get(port, "/js/"))[0] == 404
    run(body())


def test_other_methods_are_405(tmp_path):
    async def body():
        async with running(site(tmp_path)) as port:
            status, headers, _ = split_response(await get(port, "/", method="POST"))
            assert status == 405
            assert "GET" in headers["allow"]
            assert split_response(await get(port, "/api/info", method="DELETE"))[0] == 405
    run(body())


def test_no_way_out_of_the_static_folder(tmp_path):
    async def body():
        async with running(site(tmp_path)) as port:
            for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/js/../../secret.txt",
                         "/%2E%2E%2Fsecret.txt", "/..%2fsecret.txt", "/js/%2e%2e/%2e%2e/secret.txt",
                         "/..\\secret.txt", "/%00secret.txt"):
                reply = await get(port, path)
                assert b"wifi password" not in reply, path
                assert split_response(reply)[0] in (400, 404), path
    run(body())


def test_bad_percent_escape_is_400(tmp_path):
    async def body():
        async with running(site(tmp_path)) as port:
            assert split_response(await get(port, "/%zz"))[0] == 400
    run(body())


def test_route_returning_dict_is_json(tmp_path):
    async def body():
        async with running(site(tmp_path)) as port:
            status, headers, content = split_response(await get(port, "/api/info?x=1"))
            assert status == 200
            assert headers["content-type"] == "application/json"
            assert content.replace(b" ", b"") == b'{"board":"host","query":"x=1"}'
    run(body())


def test_async_route_returning_response(tmp_path):
    async def body():
        async with running(site(tmp_path)) as port:
            status, headers, content = split_response(await get(port, "/api/async"))
            assert (status, content) == (200, b"made later")
            assert headers["content-type"] == "text/plain"
    run(body())


def test_websocket_route_without_upgrade_is_400(tmp_path):
    async def body():
        async with running(site(tmp_path)) as port:
            assert split_response(await get(port, "/ws"))[0] == 400
    run(body())


def test_large_file_streamed_in_full(tmp_path):
    async def body():
        server = site(tmp_path)
        big = os.urandom(200_000)
        (tmp_path / "www" / "big.bin").write_bytes(big)
        async with running(server) as port:
            status, headers, content = split_response(await get(port, "/big.bin"))
            assert status == 200
            assert content == big
            assert headers["content-type"] == "application/octet-stream"
    run(body())
