"""The server's opening handshake (RFC 6455 section 4.2)."""

from wsutil import raises, upgrade_request

from microws import compat
from microws.handshake import (
    HandshakeError,
    HeadReader,
    accept,
    accept_key,
    error_response,
    offered_subprotocols,
)
from microws.sansio import parse_request
from microws.sha1 import sha1 as portable_sha1

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def status_of(head, origins=None):
    """The HTTP status a request head gets: 101 or the error's."""
    try:
        accept(parse_request(head), origins=origins)
    except HandshakeError as error:
        return error.status
    return 101


def test_accept_key_matches_rfc_example():
    assert accept_key(RFC_KEY) == RFC_ACCEPT


def test_accept_key_with_portable_sha1_matches_rfc_example():
    assert accept_key(RFC_KEY, portable_sha1) == RFC_ACCEPT


def test_accept_key_with_native_sha1_matches_rfc_example_where_present():
    # The WebAssembly MicroPython has no hashlib.sha1: there the portable one
    # is what compat chose, and the previous test covers it.
    if compat.HAVE_NATIVE_SHA1:
        assert compat.sha1 is not portable_sha1
        assert accept_key(RFC_KEY, compat.sha1) == RFC_ACCEPT
    else:
        assert compat.sha1 is portable_sha1


def test_server_accepts_valid_upgrade_with_101():
    response = accept(parse_request(upgrade_request()))
    assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"\r\nUpgrade: websocket\r\n" in response
    assert b"\r\nConnection: Upgrade\r\n" in response
    assert ("\r\nSec-WebSocket-Accept: " + RFC_ACCEPT + "\r\n").encode() in response
    assert response.endswith(b"\r\n\r\n")
    assert b"Sec-WebSocket-Protocol" not in response


def test_server_accepts_tokens_in_any_case_and_in_lists():
    head = upgrade_request(
        replace=(("Upgrade", "WebSocket"), ("Connection", "keep-alive, UPGRADE"))
    )
    assert status_of(head) == 101


def test_request_parses_path_query_and_lowercase_headers():
    request = parse_request(upgrade_request(request_line="GET /ws?token=abc HTTP/1.1"))
    assert request.method == "GET"
    assert request.path == "/ws"
    assert request.query == "token=abc"
    assert request.header("sec-websocket-version") == "13"
    assert request.has_token("upgrade", "websocket")


def test_repeated_headers_join_as_a_list():
    head = upgrade_request(
        drop=("connection",), add=(("Connection", "keep-alive"), ("Connection", "Upgrade"))
    )
    assert status_of(head) == 101


def test_server_rejects_missing_host_with_400():
    assert status_of(upgrade_request(drop=("host",))) == 400


def test_server_rejects_missing_upgrade_with_400():
    assert status_of(upgrade_request(drop=("upgrade",))) == 400


def test_server_rejects_upgrade_to_other_protocol_with_400():
    assert status_of(upgrade_request(replace=(("Upgrade", "h2c"),))) == 400


def test_server_rejects_connection_without_upgrade_token_with_400():
    assert status_of(upgrade_request(replace=(("Connection", "keep-alive"),))) == 400
    assert status_of(upgrade_request(replace=(("Connection", "upgraded"),))) == 400


def test_server_rejects_key_of_wrong_size_with_400():
    # 15 and 17 bytes in base64, and garbage
    for key in ("AAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAAA=", "!!!!!!!!!!!!!!!!!!!!!!==",
                "dGhlIHNhbXBsZSBub25jZQ", ""):
        assert status_of(upgrade_request(replace=(("Sec-WebSocket-Key", key),))) == 400, key


def test_server_rejects_missing_key_with_400():
    assert status_of(upgrade_request(drop=("sec-websocket-key",))) == 400


def test_server_rejects_other_version_with_426_naming_13():
    head = upgrade_request(replace=(("Sec-WebSocket-Version", "8"),))
    error = raises(HandshakeError, accept, parse_request(head))
    assert error.status == 426
    response = error.response()
    assert response.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in response


def test_server_rejects_missing_version_with_400():
    assert status_of(upgrade_request(drop=("sec-websocket-version",))) == 400


def test_server_rejects_post_with_405():
    head = upgrade_request(request_line="POST /ws HTTP/1.1")
    error = raises(HandshakeError, accept, parse_request(head))
    assert error.status == 405
    assert b"\r\nAllow: GET\r\n" in error.response()


def test_server_rejects_http_1_0_with_400():
    assert status_of(upgrade_request(request_line="GET /ws HTTP/1.0")) == 400


def test_server_rejects_malformed_request_line_with_400():
    for line in ("GET /ws", "GET  /ws HTTP/1.1", "GET /ws SPDY/3", "G(T /ws HTTP/1.1"):
        assert status_of(upgrade_request(request_line=line)) == 400, line


def test_server_rejects_malformed_header_line_with_400():
    for bad in (b"NoColonHere", b"Bad Name: x", b" folded: x", b"X-Bin: \xff"):
        head = upgrade_request().replace(b"\r\n\r\n", b"\r\n" + bad + b"\r\n\r\n")
        assert status_of(head) == 400, bad


def test_server_rejects_two_host_headers_with_400():
    assert status_of(upgrade_request(add=(("Host", "evil.example"),))) == 400


def test_server_rejects_origin_outside_allow_list_with_403():
    head = upgrade_request(add=(("Origin", "http://evil.example"),))
    assert status_of(head, origins=("http://device.local",)) == 403
    assert status_of(upgrade_request(), origins=("http://device.local",)) == 403


def test_server_accepts_origin_in_allow_list():
    head = upgrade_request(add=(("Origin", "http://device.local"),))
    assert status_of(head, origins=("http://device.local",)) == 101


def test_allow_list_with_none_admits_clients_without_origin():
    assert status_of(upgrade_request(), origins=("http://device.local", None)) == 101


def with_host_and_origin(host, origin):
    return upgrade_request(replace=(("Host", host),), add=(("Origin", origin),))


def test_without_allow_list_another_sites_origin_gets_403():
    # cross-site WebSocket hijacking: a page elsewhere must not drive the device
    assert status_of(upgrade_request(add=(("Origin", "http://anywhere.example"),))) == 403
    assert status_of(with_host_and_origin("192.168.1.50", "http://192.168.1.51")) == 403
    assert status_of(with_host_and_origin("192.168.1.50:8080", "http://192.168.1.50")) == 403
    assert status_of(with_host_and_origin("192.168.1.50", "http://192.168.1.50:8080")) == 403
    assert status_of(with_host_and_origin("device.local", "http://device.local.evil.example")) == 403
    assert status_of(with_host_and_origin("device.local", "null")) == 403
    assert status_of(with_host_and_origin("device.local", "file://device.local")) == 403
    assert status_of(with_host_and_origin("device.local:443", "http://device.local")) == 403


def test_without_allow_list_the_origin_of_the_host_itself_is_accepted():
    assert status_of(upgrade_request(add=(("Origin", "http://device.local"),))) == 101
    assert status_of(with_host_and_origin("192.168.1.50", "http://192.168.1.50")) == 101
    assert status_of(with_host_and_origin("127.0.0.1:8080", "http://127.0.0.1:8080")) == 101
    assert status_of(with_host_and_origin("[::1]:8080", "https://[::1]:8080")) == 101
    # https origins too, and case does not matter
    assert status_of(with_host_and_origin("Device.Local", "HTTPS://device.LOCAL")) == 101
    # the scheme's default port, written or not, on either side
    assert status_of(with_host_and_origin("device.local:80", "http://device.local")) == 101
    assert status_of(with_host_and_origin("device.local", "http://device.local:80")) == 101
    assert status_of(with_host_and_origin("device.local:443", "https://device.local")) == 101
    assert status_of(with_host_and_origin("device.local", "https://device.local:443")) == 101


def test_without_allow_list_clients_without_origin_are_accepted():
    assert status_of(upgrade_request()) == 101


def test_allow_list_replaces_the_same_host_rule():
    same = upgrade_request(add=(("Origin", "http://device.local"),))
    other = upgrade_request(add=(("Origin", "http://dashboard.example"),))
    # narrower: only the listed origin, not even the host itself, nor no Origin
    assert status_of(same, origins=("http://dashboard.example",)) == 403
    assert status_of(upgrade_request(), origins=("http://dashboard.example",)) == 403
    assert status_of(other, origins=("http://dashboard.example",)) == 101
    # wider: another site is let in when listed
    assert status_of(other, origins=("http://device.local", "http://dashboard.example")) == 101


def test_star_in_allow_list_admits_any_origin_and_none():
    assert status_of(upgrade_request(add=(("Origin", "http://anywhere.example"),)), origins=("*",)) == 101
    assert status_of(upgrade_request(add=(("Origin", "null"),)), origins=("*",)) == 101
    assert status_of(upgrade_request(), origins=("*",)) == 101


def test_head_larger_than_limit_gets_431():
    head = upgrade_request(add=(("X-Padding", "x" * 200),))
    error = raises(HandshakeError, parse_request, head, 128)
    assert error.status == 431
    assert error.response().startswith(b"HTTP/1.1 431 ")


def test_head_reader_refuses_431_as_soon_as_limit_passes():
    reader = HeadReader(64)
    assert reader.feed_line(b"GET /ws HTTP/1.1\r\n") is False
    error = raises(HandshakeError, reader.feed_line, b"X-Padding: " + b"y" * 60 + b"\r\n")
    assert error.status == 431


def test_head_reader_completes_at_blank_line_line_by_line():
    reader = HeadReader()
    lines = upgrade_request().split(b"\r\n")[:-1]
    done = [reader.feed_line(line + b"\r\n") for line in lines]
    assert done[-1] is True
    assert True not in done[:-1]
    assert reader.request().path == "/ws"


def test_head_reader_skips_blank_lines_before_request_line():
    reader = HeadReader()
    assert reader.feed_line(b"\r\n") is False
    assert reader.feed_line(b"GET / HTTP/1.1\r\n") is False
    assert reader.feed_line(b"Host: x\r\n") is False
    assert reader.feed_line(b"\r\n") is True


def test_head_reader_rejects_line_cut_short_with_400():
    error = raises(HandshakeError, HeadReader().feed_line, b"GET / HTTP/1.1")
    assert error.status == 400


def test_incomplete_head_is_400():
    assert raises(HandshakeError, parse_request, b"GET / HTTP/1.1\r\nHost: x\r\n").status == 400


def test_subprotocols_offered_in_client_order():
    head = upgrade_request(add=(("Sec-WebSocket-Protocol", "chat, sensors.v1"),
                                ("Sec-WebSocket-Protocol", "json")))
    assert offered_subprotocols(parse_request(head)) == ["chat", "sensors.v1", "json"]


def test_accept_names_the_chosen_offered_subprotocol_only():
    request = parse_request(upgrade_request(add=(("Sec-WebSocket-Protocol", "chat, json"),)))
    response = accept(request, subprotocol="json")
    assert b"\r\nSec-WebSocket-Protocol: json\r\n" in response
    assert b"chat" not in response


def test_accept_refuses_subprotocol_the_client_did_not_offer():
    request = parse_request(upgrade_request(add=(("Sec-WebSocket-Protocol", "chat"),)))
    raises(ValueError, accept, request, "json")
    raises(ValueError, accept, parse_request(upgrade_request()), "chat")


def test_error_response_is_complete_and_closes():
    response = error_response(400, "bad key")
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nConnection: close" in head
    assert ("\r\nContent-Length: %d" % len(body)).encode() in head
    assert body == b"bad key\n"
