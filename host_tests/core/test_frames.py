"""Frame headers, masking and close codes (RFC 6455 sections 5 and 7.4)."""

from wsutil import MASK, raises

from microws import compat
from microws.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    close_payload,
    header_size,
    is_valid_close_code,
    write_header,
)
from microws.sansio import encode_frame, write_header_before


def test_rfc_example_unmasked_text_hello():
    assert encode_frame(OP_TEXT, b"Hello") == b"\x81\x05\x48\x65\x6c\x6c\x6f"


def test_rfc_example_masked_text_hello():
    expected = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    assert encode_frame(OP_TEXT, b"Hello", mask=MASK) == expected


def test_rfc_example_fragmented_unmasked_text():
    assert encode_frame(OP_TEXT, b"Hel", fin=False) == b"\x01\x03\x48\x65\x6c"
    assert encode_frame(OP_CONTINUATION, b"lo") == b"\x80\x02\x6c\x6f"


def test_rfc_example_ping_and_masked_pong():
    assert encode_frame(OP_PING, b"Hello") == b"\x89\x05\x48\x65\x6c\x6c\x6f"
    expected = b"\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    assert encode_frame(OP_PONG, b"Hello", mask=MASK) == expected


def test_rfc_example_256_bytes_binary_uses_16_bit_length():
    frame = encode_frame(OP_BINARY, bytes(256))
    assert frame[:4] == b"\x82\x7e\x01\x00"
    assert len(frame) == 4 + 256


def test_rfc_example_64_kib_binary_uses_64_bit_length():
    frame = encode_frame(OP_BINARY, bytes(65536))
    assert frame[:10] == b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"
    assert len(frame) == 10 + 65536


def test_header_size_at_length_boundaries():
    assert header_size(0) == 2
    assert header_size(125) == 2
    assert header_size(126) == 4
    assert header_size(65535) == 4
    assert header_size(65536) == 10
    assert header_size(125, masked=True) == 6
    assert header_size(65536, masked=True) == 14


def test_write_header_matches_header_size_at_boundaries():
    buf = bytearray(14)
    for length in (0, 1, 125, 126, 127, 65535, 65536, 1 << 20):
        assert write_header(buf, 0, OP_BINARY, length) == header_size(length)
        assert write_header(buf, 0, OP_BINARY, length, mask=MASK) == header_size(length, True)


def test_write_header_before_leaves_frame_contiguous_with_payload():
    buf = bytearray(10 + 5)
    buf[10:] = b"Hello"
    start = write_header_before(buf, 10, OP_TEXT, 5)
    assert start == 8
    assert bytes(buf[start:]) == b"\x81\x05Hello"


def test_write_header_before_without_room_raises():
    raises(ValueError, write_header_before, bytearray(300), 3, OP_BINARY, 200)


def test_rsv_bits_and_fin_flag_encoded():
    assert encode_frame(OP_BINARY, b"", fin=False, rsv=4)[0] == 0x42
    assert encode_frame(OP_BINARY, b"", rsv=1)[0] == 0x92


def reference_xor(data, mask, phase):
    out = bytearray(data)
    for i in range(len(out)):
        out[i] ^= mask[(phase + i) & 3]
    return bytes(out)


def check_unmask(function):
    data = bytes(range(3, 40))
    for phase in range(4):
        for start in range(4):
            for end in range(start, start + 10):
                buf = bytearray(data)
                function(buf, start, end, MASK, phase)
                expected = data[:start] + reference_xor(data[start:end], MASK, phase) + data[end:]
                assert bytes(buf) == expected, (phase, start, end)


def test_unmask_chosen_for_this_runtime_matches_reference():
    check_unmask(compat.unmask)


def test_portable_unmask_matches_reference():
    check_unmask(compat._unmask_python)


def test_unmask_is_its_own_inverse_on_large_buffer():
    data = bytes(range(256)) * 40
    buf = bytearray(data)
    compat.unmask(buf, 0, len(buf), MASK, 1)
    assert bytes(buf) != data
    compat.unmask(buf, 0, len(buf), MASK, 1)
    assert bytes(buf) == data


def test_close_codes_defined_by_rfc_are_valid():
    for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999):
        assert is_valid_close_code(code), code


def test_reserved_and_unassigned_close_codes_are_invalid():
    for code in (0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535):
        assert not is_valid_close_code(code), code


def test_close_payload_is_code_then_utf8_reason():
    assert close_payload(1000, "bye") == b"\x03\xe8bye"
    assert close_payload(1001, "\u00e9") == b"\x03\xe9\xc3\xa9"
    assert close_payload() == b""


def test_close_payload_refuses_invalid_code_long_reason_and_reason_without_code():
    raises(ValueError, close_payload, 1005)
    raises(ValueError, close_payload, 1000, "x" * 124)
    raises(ValueError, close_payload, None, "why")
    assert len(close_payload(1000, "x" * 123)) == 125


def test_opcode_constants_follow_rfc():
    assert (OP_CONTINUATION, OP_TEXT, OP_BINARY) == (0, 1, 2)
    assert (OP_CLOSE, OP_PING, OP_PONG) == (8, 9, 10)
