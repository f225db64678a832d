"""The server side of a connection fed raw bytes (RFC 6455 sections 5-7).

Every input is fed whole, byte by byte and in 3-byte pieces
(feed_every_way): partial reads are normal on Wi-Fi.
"""

from wsutil import client_frame, close_frame_of, feed, feed_every_way, raises

from microws.connection import (
    CLOSED,
    CLOSING,
    EV_BINARY,
    EV_CLOSE,
    EV_FAILED,
    EV_PING,
    EV_PONG,
    EV_TEXT,
    OPEN,
    ConnectionClosed,
)
from microws.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    close_payload,
)
from microws.sansio import EventConnection, encode_frame

EMOJI = "\U0001f600"  # F0 9F 98 80


# ---------------------------------------------------------------- messages


def test_server_receives_rfc_masked_text_hello():
    events, sent, _ = feed_every_way(b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58")
    assert events == [(EV_TEXT, "Hello")]
    assert sent == b""


def test_server_receives_binary():
    events, _, _ = feed_every_way(client_frame(OP_BINARY, bytes(range(200))))
    assert events == [(EV_BINARY, bytes(range(200)))]


def test_server_receives_empty_text_and_binary():
    events, _, _ = feed_every_way(client_frame(OP_TEXT, b"") + client_frame(OP_BINARY, b""))
    assert events == [(EV_TEXT, ""), (EV_BINARY, b"")]


def test_server_receives_16_bit_length_frame():
    payload = bytes(i & 0xFF for i in range(300))
    events, _, _ = feed_every_way(client_frame(OP_BINARY, payload))
    assert events == [(EV_BINARY, payload)]


def test_server_receives_64_bit_length_frame():
    payload = bytes(i & 0xFF for i in range(70000))
    events, _, _ = feed(client_frame(OP_BINARY, payload), max_message_size=70000)
    assert events == [(EV_BINARY, payload)]
    events, _, _ = feed(client_frame(OP_BINARY, payload), max_message_size=70000, split=4096)
    assert events == [(EV_BINARY, payload)]


def test_server_receives_several_messages_in_one_read():
    data = client_frame(OP_TEXT, "one") + client_frame(OP_BINARY, b"two") + client_frame(OP_TEXT, "3")
    events, _, _ = feed_every_way(data)
    assert events == [(EV_TEXT, "one"), (EV_BINARY, b"two"), (EV_TEXT, "3")]


def test_server_receives_multibyte_text():
    text = "caf\u00e9 \u20ac " + EMOJI
    events, _, _ = feed_every_way(client_frame(OP_TEXT, text))
    assert events == [(EV_TEXT, text)]


def test_server_receives_fragmented_text():
    data = (client_frame(OP_TEXT, "Hel", fin=False) + client_frame(OP_CONTINUATION, "lo, ", fin=False)
            + client_frame(OP_CONTINUATION, "world"))
    events, _, _ = feed_every_way(data)
    assert events == [(EV_TEXT, "Hello, world")]


def test_server_receives_fragmented_binary_with_empty_fragments():
    data = (client_frame(OP_BINARY, b"", fin=False) + client_frame(OP_CONTINUATION, b"ab", fin=False)
            + client_frame(OP_CONTINUATION, b"", fin=False) + client_frame(OP_CONTINUATION, b"c"))
    events, _, _ = feed_every_way(data)
    assert events == [(EV_BINARY, b"abc")]


def test_server_receives_emoji_split_across_two_continuation_frames():
    raw = EMOJI.encode("utf-8")
    data = (client_frame(OP_TEXT, b"smile ", fin=False) + client_frame(OP_CONTINUATION, raw[:2], fin=False)
            + client_frame(OP_CONTINUATION, raw[2:]))
    events, _, _ = feed_every_way(data)
    assert events == [(EV_TEXT, "smile " + EMOJI)]


def test_server_answers_ping_with_pong_of_same_payload():
    events, sent, _ = feed_every_way(client_frame(OP_PING, b"are you there?"))
    assert events == [(EV_PING, b"are you there?")]
    assert sent == encode_frame(OP_PONG, b"are you there?")


def test_server_answers_empty_and_125_byte_pings():
    payload = bytes(range(125))
    events, sent, _ = feed_every_way(client_frame(OP_PING) + client_frame(OP_PING, payload))
    assert events == [(EV_PING, b""), (EV_PING, payload)]
    assert sent == encode_frame(OP_PONG) + encode_frame(OP_PONG, payload)


def test_server_answers_ping_between_fragments():
    data = (client_frame(OP_TEXT, "frag", fin=False) + client_frame(OP_PING, b"p")
            + client_frame(OP_CONTINUATION, "ment"))
    events, sent, _ = feed_every_way(data)
    assert events == [(EV_PING, b"p"), (EV_TEXT, "fragment")]
    assert sent == encode_frame(OP_PONG, b"p")


def test_server_reports_pong():
    events, sent, _ = feed_every_way(client_frame(OP_PONG, b"keepalive-7"))
    assert events == [(EV_PONG, b"keepalive-7")]
    assert sent == b""


def test_message_fills_exactly_the_configured_maximum():
    events, _, _ = feed_every_way(client_frame(OP_BINARY, bytes(64)), max_message_size=64)
    assert events == [(EV_BINARY, bytes(64))]


def test_fragmented_message_at_maximum_with_ping_inside_fits_buffer():
    data = (client_frame(OP_BINARY, b"a" * 60, fin=False) + client_frame(OP_PING, b"x" * 125)
            + client_frame(OP_CONTINUATION, b"b" * 4))
    events, _, _ = feed_every_way(data, max_message_size=64)
    assert events == [(EV_PING, b"x" * 125), (EV_BINARY, b"a" * 60 + b"b" * 4)]


def test_reads_ask_for_exactly_the_bytes_needed():
    conn = EventConnection()
    assert conn.read_size == 2  # the first two header bytes
    frame = client_frame(OP_BINARY, bytes(300))
    conn.receive_data(frame[:2])
    assert conn.read_size == 2 + 4  # 16-bit length and masking key
    conn.receive_data(frame[2:8])
    assert conn.read_size == 300
    conn.receive_data(frame[8:100])
    assert conn.read_size == 208


def test_buffer_is_allocated_once_and_reused():
    conn = EventConnection(256)
    buffer = conn.buffer
    for i in range(20):
        feed(client_frame(OP_BINARY, bytes([i]) * 200), conn=conn)
    assert conn.buffer is buffer
    assert len(buffer) == 256 + 139


# ------------------------------------------------------- protocol violations


def assert_fails(data, code, max_message_size=1024):
    events, sent, conn = feed_every_way(data, max_message_size)
    assert (EV_FAILED, code) in events, events
    assert close_frame_of(sent)[0] == code
    assert conn.failed
    return events, sent, conn


def test_server_fails_on_unmasked_frame():
    assert_fails(encode_frame(OP_TEXT, b"Hello"), 1002)


def test_server_fails_on_nonzero_rsv_bits():
    for rsv in (1, 2, 4, 7):
        assert_fails(client_frame(OP_TEXT, b"x", rsv=rsv), 1002)


def test_server_fails_on_reserved_opcodes():
    for opcode in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
        assert_fails(client_frame(opcode, b"x"), 1002)


def test_server_fails_on_fragmented_control_frame():
    assert_fails(client_frame(OP_PING, b"x", fin=False), 1002)


def test_server_fails_on_control_frame_over_125_bytes():
    assert_fails(client_frame(OP_PING, bytes(126)), 1002)


def test_server_fails_on_continuation_with_nothing_to_continue():
    assert_fails(client_frame(OP_CONTINUATION, b"x"), 1002)
    assert_fails(client_frame(OP_TEXT, "whole") + client_frame(OP_CONTINUATION, b"x"), 1002)


def test_server_fails_on_new_message_inside_fragmented_one():
    events, _, _ = assert_fails(
        client_frame(OP_TEXT, "a", fin=False) + client_frame(OP_TEXT, "b"), 1002)
    assert [e for e in events if e[0] == EV_TEXT] == []


def test_violation_after_good_messages_keeps_their_events():
    events, _, _ = assert_fails(client_frame(OP_TEXT, "ok") + client_frame(5, b""), 1002)
    assert events[0] == (EV_TEXT, "ok")


def test_server_fails_on_invalid_utf8_text_with_1007():
    assert_fails(client_frame(OP_TEXT, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"), 1007)


def test_server_fails_on_overlong_and_out_of_range_utf8():
    for bad in (b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf4\x90\x80\x80", b"\xed\xa0\x80", b"\xff"):
        assert_fails(client_frame(OP_TEXT, bad), 1007)


def test_server_fails_on_text_ending_inside_a_character():
    assert_fails(client_frame(OP_TEXT, EMOJI.encode("utf-8")[:3]), 1007)


def test_invalid_utf8_rejected_in_the_fragment_where_it_arrives():
    conn = EventConnection()
    first = client_frame(OP_TEXT, b"fine \xed\xa0\x80", fin=False)
    events, sent, _ = feed(first, conn=conn)  # the message has not ended
    assert events == [(EV_FAILED, 1007)]
    assert close_frame_of(sent)[0] == 1007


def test_invalid_utf8_rejected_before_the_frame_ends():
    frame = client_frame(OP_TEXT, b"\xf4\x90" + b"x" * 100)
    events, _, _ = feed(frame[:6 + 2])  # header, mask and two payload bytes
    assert events == [(EV_FAILED, 1007)]


def test_utf8_state_carries_across_fragments_with_invalid_tail():
    raw = EMOJI.encode("utf-8")
    data = client_frame(OP_TEXT, raw[:2], fin=False) + client_frame(OP_CONTINUATION, b"A")
    assert_fails(data, 1007)


def test_binary_message_is_not_checked_for_utf8():
    events, _, _ = feed_every_way(client_frame(OP_BINARY, b"\xff\xfe"))
    assert events == [(EV_BINARY, b"\xff\xfe")]


def test_server_discards_input_after_failure_and_completes_the_close():
    data = (client_frame(OP_TEXT, b"\xff") + client_frame(OP_TEXT, "ignored")
            + client_frame(OP_PING, b"ignored") + client_frame(OP_CLOSE, close_payload(1002)))
    events, sent, conn = feed_every_way(data)
    assert events == [(EV_FAILED, 1007), (EV_CLOSE, (None, ""))]
    assert close_frame_of(sent)[0] == 1007  # one close frame, no pong, no echo
    assert conn.state == CLOSED


def test_server_discards_unmasked_frames_after_failure():
    data = (encode_frame(OP_BINARY, b"unmasked") + encode_frame(OP_BINARY, bytes(300))
            + encode_frame(OP_CLOSE, close_payload(1000)))
    events, sent, conn = feed_every_way(data)
    assert events == [(EV_FAILED, 1002), (EV_CLOSE, (None, ""))]
    assert conn.state == CLOSED


# --------------------------------------------------------------------- limits


def test_message_over_limit_fails_with_1009_before_payload_is_read():
    frame = client_frame(OP_BINARY, bytes(2000))
    conn = EventConnection(1024)
    events, sent, _ = feed(frame[:8], conn=conn)  # header, 16-bit length, mask only
    assert events == [(EV_FAILED, 1009)]
    assert close_frame_of(sent)[0] == 1009


def test_fragmented_message_over_limit_fails_with_1009():
    data = client_frame(OP_BINARY, bytes(600), fin=False) + client_frame(OP_CONTINUATION, bytes(600))
    assert_fails(data, 1009)


def test_frame_over_frame_limit_fails_with_1009():
    conn = EventConnection(4096, max_frame_size=512)
    events, _, _ = feed(client_frame(OP_BINARY, bytes(513)), conn=conn)
    assert events == [(EV_FAILED, 1009)]
    conn = EventConnection(4096, max_frame_size=512)
    events, _, _ = feed(client_frame(OP_BINARY, bytes(512)), conn=conn)
    assert events == [(EV_BINARY, bytes(512))]


def test_frame_announcing_2_to_63_bytes_fails_with_1009_and_stops_reading():
    header = b"\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00" + b"\x01\x02\x03\x04"
    events, sent, conn = feed_every_way(header)
    assert events == [(EV_FAILED, 1009)]
    assert close_frame_of(sent)[0] == 1009
    assert conn.read_size == 0
    assert len(conn.buffer) == 1024 + 139


def test_oversized_message_is_discarded_and_peer_close_completes():
    data = client_frame(OP_BINARY, bytes(5000)) + client_frame(OP_CLOSE, close_payload(1000))
    events, sent, conn = feed_every_way(data)
    assert events == [(EV_FAILED, 1009), (EV_CLOSE, (None, ""))]
    assert conn.state == CLOSED


# ---------------------------------------------------------------- closing


def test_server_echoes_close_code_and_closes():
    events, sent, conn = feed_every_way(client_frame(OP_CLOSE, close_payload(1000, "bye")))
    assert events == [(EV_CLOSE, (1000, "bye"))]
    assert close_frame_of(sent) == (1000, b"")
    assert conn.state == CLOSED
    assert conn.read_size == 0


def test_server_echoes_every_valid_close_code():
    for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999):
        events, sent, _ = feed(client_frame(OP_CLOSE, close_payload(code)))
        assert events == [(EV_CLOSE, (code, ""))], code
        assert close_frame_of(sent)[0] == code


def test_server_answers_empty_close_with_empty_close():
    events, sent, conn = feed_every_way(client_frame(OP_CLOSE, b""))
    assert events == [(EV_CLOSE, (1005, ""))]
    assert sent == b"\x88\x00"
    assert conn.state == CLOSED


def test_server_fails_on_one_byte_close_payload():
    _, _, conn = assert_fails(client_frame(OP_CLOSE, b"\x03"), 1002)
    assert conn.state == CLOSED


def test_server_fails_on_invalid_close_codes():
    for code in (0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535):
        payload = bytes([code >> 8, code & 0xFF])
        events, sent, _ = feed(client_frame(OP_CLOSE, payload))
        assert events == [(EV_FAILED, 1002)], code
        assert close_frame_of(sent)[0] == 1002


def test_server_fails_on_close_reason_with_invalid_utf8():
    assert_fails(client_frame(OP_CLOSE, b"\x03\xe8\xce\xba\xe1\xbd"), 1007)


def test_close_reason_utf8_valid_multibyte():
    events, _, _ = feed_every_way(client_frame(OP_CLOSE, close_payload(1000, "\u00e9t\u00e9")))
    assert events == [(EV_CLOSE, (1000, "\u00e9t\u00e9"))]


def test_close_between_fragments_closes():
    data = client_frame(OP_TEXT, "part", fin=False) + client_frame(OP_CLOSE, close_payload(1001))
    events, sent, conn = feed_every_way(data)
    assert events == [(EV_CLOSE, (1001, ""))]
    assert conn.state == CLOSED


def test_input_after_close_is_ignored():
    data = client_frame(OP_CLOSE, close_payload(1000)) + client_frame(OP_TEXT, "late")
    events, sent, _ = feed_every_way(data)
    assert events == [(EV_CLOSE, (1000, ""))]


def test_no_data_frames_after_receiving_close():
    _, _, conn = feed(client_frame(OP_CLOSE, close_payload(1000)))
    raises(ConnectionClosed, conn.send_message, "too late")
    raises(ConnectionClosed, conn.frame_header, OP_BINARY, 3)


def test_server_initiated_close_then_peer_reply_completes():
    conn = EventConnection()
    conn.close(1001, "going away")
    assert conn.state == CLOSING
    assert close_frame_of(conn.data_to_send()) == (1001, b"going away")
    raises(ConnectionClosed, conn.send_message, b"no more")
    events, sent, _ = feed(client_frame(OP_CLOSE, close_payload(1001)), conn=conn)
    assert events == [(EV_CLOSE, (1001, ""))]
    assert sent == b""  # no second close
    assert conn.state == CLOSED


def test_close_sent_once_only():
    conn = EventConnection()
    conn.close(1000)
    conn.close(1000)
    assert conn.data_to_send() == b"\x88\x02\x03\xe8"


def test_no_pong_after_server_sent_close():
    conn = EventConnection()
    conn.close()
    conn.data_to_send()
    events, sent, _ = feed(client_frame(OP_PING, b"x"), conn=conn)
    assert sent == b""
    assert conn.state == CLOSING


def test_server_keeps_receiving_data_until_peer_replies_to_close():
    conn = EventConnection()
    conn.close()
    events, _, _ = feed(client_frame(OP_TEXT, "in flight"), conn=conn)
    assert events == [(EV_TEXT, "in flight")]


def test_eof_without_close_is_abnormal_1006():
    conn = EventConnection()
    assert conn.receive_eof() == EV_CLOSE
    assert conn.close_code == 1006
    assert conn.state == CLOSED


def test_close_refuses_invalid_code_and_long_reason():
    raises(ValueError, EventConnection().close, 1006)
    raises(ValueError, EventConnection().close, 1000, "r" * 124)


# -------------------------------------------------------------------- sending


def test_server_sends_unmasked_text_and_binary():
    conn = EventConnection()
    conn.send_message("Hello")
    conn.send_message(b"\x00\x01")
    assert conn.data_to_send() == b"\x81\x05Hello" + b"\x82\x02\x00\x01"


def test_server_sends_fragmented_message_with_continuations():
    conn = EventConnection()
    conn.send_message("Hel", fin=False)
    conn.send_ping(b"between")
    conn.send_message("lo", fin=False, opcode=OP_TEXT)
    conn.send_message("!", opcode=OP_TEXT)
    expected = (b"\x01\x03Hel" + b"\x89\x07between" + b"\x00\x02lo" + b"\x80\x01!")
    assert conn.data_to_send() == expected


def test_server_refuses_new_message_inside_its_own_fragmented_one():
    conn = EventConnection()
    conn.send_message(b"part", fin=False)
    raises(ValueError, conn.check_can_send_message)
    conn.send_message(b"end")
    conn.check_can_send_message()


def test_frame_header_lengths_and_views():
    conn = EventConnection()
    for length, size in ((5, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)):
        assert conn.frame_header(OP_BINARY, length) == size
        view = conn.header_view(size)
        assert len(view) == size
        assert bytes(view) == encode_frame(OP_BINARY, bytes(length))[:size]


def test_ping_payload_limited_to_125_bytes():
    raises(ValueError, EventConnection().send_ping, bytes(126))


def test_sent_frames_are_readable_by_a_parser():
    # What the server sends, masked as a client would, parses back the same.
    conn = EventConnection()
    conn.send_message("\u00e9t\u00e9")
    sent = conn.data_to_send()
    assert sent == encode_frame(OP_TEXT, "\u00e9t\u00e9".encode("utf-8"))
    events, _, _ = feed(client_frame(OP_TEXT, sent[2:]))
    assert events == [(EV_TEXT, "\u00e9t\u00e9")]


def test_new_connection_is_open():
    conn = EventConnection()
    assert conn.state == OPEN
    assert not conn.failed
