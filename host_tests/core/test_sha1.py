"""Tests for microws.sha1 (runs under pytest on CPython and under MicroPython).

Expected digests are FIPS 180 examples or were computed once with CPython's
hashlib and written here, so the tests need no hashlib at run time.
"""
import binascii

from microws.sha1 import sha1


def _hex(digest):
    return binascii.hexlify(digest).decode()


def _pattern(n):
    # bytes 00 01 02 ... wrapping at 256
    return bytes([i & 0xFF for i in range(n)])


def test_empty_message_matches_fips_vector():
    assert _hex(sha1().digest()) == "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    assert _hex(sha1(b"").digest()) == "da39a3ee5e6b4b0d3255bfef95601890afd80709"


def test_abc_matches_fips_vector():
    assert _hex(sha1(b"abc").digest()) == "a9993e364706816aba3e25717850c26c9cd0d89d"


def test_448_bit_message_matches_fips_vector():
    msg = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
    assert len(msg) * 8 == 448
    assert _hex(sha1(msg).digest()) == "84983e441c3bd26ebaae4aa1f95129e5e54670f1"


def test_digest_is_20_bytes():
    d = sha1(b"abc").digest()
    assert isinstance(d, bytes)
    assert len(d) == 20
    assert sha1().digest_size == 20
    assert sha1().block_size == 64


def test_thousand_a_matches_precomputed_digest():
    assert _hex(sha1(b"a" * 1000).digest()) == "291e9a6c66994949b57ba5e650361e98fc36b1ba"


def test_thousand_byte_pattern_matches_precomputed_digest():
    data = bytes([(i * 7 + 3) & 0xFF for i in range(1000)])
    assert _hex(sha1(data).digest()) == "4231a8a50a10fa9758db8ec71fdef855b751048a"


def test_lengths_around_padding_boundaries_match_precomputed_digests():
    # 55 is the longest message whose padding fits in one block, 56 needs two;
    # 64/128 are exact block multiples.
    expected = (
        (55, "8ae2d46729cfe68ff927af5eec9c7d1b66d65ac2"),
        (56, "636e2ec698dac903498e648bd2f3af641d3c88cb"),
        (63, "6d942da0c4392b123528f2905c713a3ce28364bd"),
        (64, "c6138d514ffa2135bfce0ed0b8fac65669917ec7"),
        (65, "69bd728ad6e13cd76ff19751fde427b00e395746"),
        (119, "41c89d06001bab4ab78736b44efe7ce18ce6ae08"),
        (120, "d3dbd653bd8597b7475321b60a36891278e6a04a"),
        (128, "e6434bc401f98603d7eda504790c98c67385d535"),
    )
    for n, hexdigest in expected:
        assert _hex(sha1(_pattern(n)).digest()) == hexdigest, n


def test_incremental_updates_equal_one_shot_for_every_piece_size():
    data = bytes([(i * 7 + 3) & 0xFF for i in range(1000)])
    want = "4231a8a50a10fa9758db8ec71fdef855b751048a"
    for piece in (1, 3, 7, 55, 56, 63, 64, 65, 100, 999, 1000):
        h = sha1()
        for i in range(0, len(data), piece):
            h.update(data[i:i + piece])
        assert _hex(h.digest()) == want, piece


def test_two_piece_updates_split_at_every_position_equal_one_shot():
    data = _pattern(130)
    want = sha1(data).digest()
    for i in range(len(data) + 1):
        h = sha1(data[:i])
        h.update(data[i:])
        assert h.digest() == want, i


def test_empty_updates_change_nothing():
    h = sha1()
    h.update(b"")
    h.update(b"ab")
    h.update(b"")
    h.update(b"c")
    h.update(b"")
    assert _hex(h.digest()) == "a9993e364706816aba3e25717850c26c9cd0d89d"


def test_bytearray_and_memoryview_input_accepted():
    want = "a9993e364706816aba3e25717850c26c9cd0d89d"
    assert _hex(sha1(bytearray(b"abc")).digest()) == want
    assert _hex(sha1(memoryview(b"abc")).digest()) == want
    data = bytes([(i * 7 + 3) & 0xFF for i in range(1000)])
    h = sha1()
    mv = memoryview(data)
    for i in range(0, 1000, 150):
        h.update(mv[i:i + 150])
    assert _hex(h.digest()) == "4231a8a50a10fa9758db8ec71fdef855b751048a"


def test_digest_does_not_finalize_and_update_may_continue():
    h = sha1(b"ab")
    first = h.digest()
    assert h.digest() == first
    h.update(b"c")
    assert _hex(h.digest()) == "a9993e364706816aba3e25717850c26c9cd0d89d"


def test_hexdigest_and_copy():
    h = sha1(b"ab")
    c = h.copy()
    c.update(b"c")
    assert c.hexdigest() == "a9993e364706816aba3e25717850c26c9cd0d89d"
    assert h.digest() == sha1(b"ab").digest()


def test_rfc6455_handshake_accept_example():
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    guid = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    d = sha1(key + guid).digest()
    assert binascii.b2a_base64(d)[:-1] == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
