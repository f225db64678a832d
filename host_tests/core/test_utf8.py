"""Tests for microws.utf8 (runs under pytest on CPython and under MicroPython).

The expected verdicts are spelled out, or come from ``_reference``, an
independent checker written in the test that decodes code points and asks
"can any continuation of these bytes still be a valid code point?".  Only
``test_matches_cpython_strict_decoder`` uses Python's own decoder, and only on
CPython: MicroPython's ``bytes.decode()`` accepts overlongs and surrogates.
"""
import sys

from microws.sansio import Utf8Validator, is_valid

# ---------------------------------------------------------------------------
# helpers

INCOMPLETE = -2  # _reference/_first_failure: input ends inside a sequence
VALID = -1       # _reference/_first_failure: input is complete, valid UTF-8


def _first_failure(data):
    """Feed ``data`` one byte at a time; return the index of the byte whose
    feed returned False, else VALID or INCOMPLETE."""
    v = Utf8Validator()
    for i in range(len(data)):
        if not v.feed(data, i, i + 1):
            assert not v.complete()
            return i
    return VALID if v.complete() else INCOMPLETE


def _reference(data):
    """Independent strict checker: index of the first byte after which no
    valid UTF-8 continuation exists, else VALID or INCOMPLETE."""
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b < 0x80:
            i += 1
            continue
        if 0xC0 <= b <= 0xDF:
            k, cp, smallest = 1, b & 0x1F, 0x80
        elif 0xE0 <= b <= 0xEF:
            k, cp, smallest = 2, b & 0x0F, 0x800
        elif 0xF0 <= b <= 0xF7:
            k, cp, smallest = 3, b & 0x07, 0x10000
        else:
            return i  # continuation byte without lead, or F8..FF
        j = 0
        while True:
            # Code points reachable from the bits known so far.
            left = 6 * (k - j)
            low = cp << left
            high = low | ((1 << left) - 1)
            if low < smallest:
                low = smallest
            if high > 0x10FFFF:
                high = 0x10FFFF
            if low > high or (0xD800 <= low and high <= 0xDFFF):
                return i + j  # overlong, too large, or surrogate
            if j == k:
                break
            j += 1
            if i + j >= n:
                return INCOMPLETE
            c = data[i + j]
            if c & 0xC0 != 0x80:
                return i + j  # sequence interrupted
            cp = (cp << 6) | (c & 0x3F)
        i += k + 1
    return VALID


def _verdict_in_two_feeds(data, i):
    v = Utf8Validator()
    first = v.feed(data, 0, i)
    second = v.feed(data, i, len(data))
    return first, second, v.complete()


class _Lcg:
    """Deterministic pseudo-random numbers (Numerical Recipes constants)."""

    def __init__(self, seed):
        self.state = seed & 0xFFFFFFFF

    def next(self, bound):
        self.state = (self.state * 1664525 + 1013904223) & 0xFFFFFFFF
        return (self.state >> 8) % bound


# Encodings spelled out by hand (code point -> bytes), used as building blocks.
GOOD = (
    b"\x00",                    # U+0000
    b"A",                       # U+0041
    b"\x7f",                    # U+007F  last 1-byte
    b"\xc2\x80",                # U+0080  first 2-byte
    b"\xc3\xa9",                # U+00E9  e acute
    b"\xdf\xbf",                # U+07FF  last 2-byte
    b"\xe0\xa0\x80",            # U+0800  first 3-byte
    b"\xe2\x82\xac",            # U+20AC  euro sign
    b"\xe6\x97\xa5",            # U+65E5  CJK
    b"\xed\x9f\xbf",            # U+D7FF  just below the surrogates
    b"\xee\x80\x80",            # U+E000  just above the surrogates
    b"\xef\xbf\xbd",            # U+FFFD  replacement character
    b"\xef\xbf\xbf",            # U+FFFF  last 3-byte (noncharacter, valid)
    b"\xf0\x90\x80\x80",        # U+10000 first 4-byte
    b"\xf0\x9f\x98\x80",        # U+1F600 emoji
    b"\xf3\xbf\xbf\xbf",        # U+FFFFF
    b"\xf4\x80\x80\x80",        # U+100000
    b"\xf4\x8f\xbf\xbf",        # U+10FFFF last code point
)

# (bytes, index of the byte that must be rejected) -- one per class of error.
BAD = (
    (b"\x80", 0),                   # stray continuation byte
    (b"\xbf", 0),                   # stray continuation byte
    (b"a\x80", 1),                  # stray continuation after ASCII
    (b"\xc3\xa9\xa9", 2),           # one continuation too many
    (b"\xc0\x80", 0),               # overlong U+0000 (C0 never valid)
    (b"\xc1\xbf", 0),               # overlong U+007F (C1 never valid)
    (b"\xe0\x80\x80", 1),           # overlong U+0000 in 3 bytes
    (b"\xe0\x9f\xbf", 1),           # overlong U+07FF in 3 bytes
    (b"\xf0\x80\x80\x80", 1),       # overlong U+0000 in 4 bytes
    (b"\xf0\x8f\xbf\xbf", 1),       # overlong U+FFFF in 4 bytes
    (b"\xed\xa0\x80", 1),           # U+D800 first surrogate
    (b"\xed\xbf\xbf", 1),           # U+DFFF last surrogate
    (b"\xed\xa0\x80\xed\xb0\x80", 1),  # CESU-8 style surrogate pair
    (b"\xf4\x90\x80\x80", 1),       # U+110000 first above the range
    (b"\xf4\xbf\xbf\xbf", 1),       # U+13FFFF
    (b"\xf5\x80\x80\x80", 0),       # F5 lead: always above U+10FFFF
    (b"\xf7\xbf\xbf\xbf", 0),       # F7 lead
    (b"\xf8\x88\x80\x80\x80", 0),   # old 5-byte form
    (b"\xfc\x84\x80\x80\x80\x80", 0),  # old 6-byte form
    (b"\xfe", 0),                   # never valid
    (b"\xff", 0),                   # never valid
    (b"\xc3A", 1),                  # 2-byte sequence interrupted by ASCII
    (b"\xe2\x82A", 2),              # 3-byte sequence interrupted by ASCII
    (b"\xf0\x9f\x98A", 3),          # 4-byte sequence interrupted by ASCII
    (b"\xe2\x82\xe2\x82\xac", 2),   # interrupted by a new lead byte
    (b"\xf0\x9f\xc3\xa9", 2),       # interrupted by a new lead byte
)

TRUNCATED = (
    b"\xc3",
    b"\xe2",
    b"\xe2\x82",
    b"\xf0",
    b"\xf0\x9f",
    b"\xf0\x9f\x98",
    b"\xed",        # could still become U+D000..U+D7FF
    b"\xf4\x8f",
    b"abc\xe2\x82",
)

# Texts split at every position in the split tests.
TEXTS = (
    b"",
    b"Hello, world",
    b"h\xc3\xa9llo w\xc3\xb6rld",
    b"\xe2\x82\xac",
    b"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
    b"\xf0\x9f\x98\x80\xf0\x9f\x8e\x89",
    b"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z",
    b"\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
    b"\xed\x9f\xbf\xee\x80\x80",
)


# ---------------------------------------------------------------------------
# the reference checker must agree with the spelled-out expectations

def test_reference_checker_agrees_with_spelled_out_cases():
    for good in GOOD:
        assert _reference(good) == VALID, good
    for bad, at in BAD:
        assert _reference(bad) == at, bad
    for cut in TRUNCATED:
        assert _reference(cut) == INCOMPLETE, cut


# ---------------------------------------------------------------------------
# valid input

def test_empty_input_is_valid():
    v = Utf8Validator()
    assert v.complete()
    assert v.feed(b"", 0, 0)
    assert v.complete()
    assert is_valid(b"")


def test_all_ascii_bytes_are_valid():
    data = bytes(range(128))
    assert is_valid(data)
    for b in range(128):
        assert is_valid(bytes([b])), b


def test_two_byte_sequences_are_valid():
    assert is_valid(b"\xc2\x80")       # U+0080
    assert is_valid(b"\xc3\xa9")       # U+00E9
    assert is_valid(b"\xdf\xbf")       # U+07FF
    for lead in range(0xC2, 0xE0):
        for cont in (0x80, 0xBF):
            assert is_valid(bytes([lead, cont])), (lead, cont)


def test_three_byte_sequences_are_valid():
    assert is_valid(b"\xe0\xa0\x80")   # U+0800
    assert is_valid(b"\xe2\x82\xac")   # U+20AC
    assert is_valid(b"\xed\x9f\xbf")   # U+D7FF
    assert is_valid(b"\xee\x80\x80")   # U+E000
    assert is_valid(b"\xef\xbf\xbf")   # U+FFFF


def test_four_byte_sequences_are_valid():
    assert is_valid(b"\xf0\x90\x80\x80")  # U+10000
    assert is_valid(b"\xf0\x9f\x98\x80")  # U+1F600
    assert is_valid(b"\xf4\x8f\xbf\xbf")  # U+10FFFF


def test_boundary_code_points():
    assert is_valid(b"\x7f")                  # U+007F
    assert is_valid(b"\xc2\x80")              # U+0080
    assert is_valid(b"\xdf\xbf")              # U+07FF
    assert is_valid(b"\xe0\xa0\x80")          # U+0800
    assert is_valid(b"\xef\xbf\xbf")          # U+FFFF
    assert is_valid(b"\xf0\x90\x80\x80")      # U+10000
    assert is_valid(b"\xf4\x8f\xbf\xbf")      # U+10FFFF
    assert not is_valid(b"\xf4\x90\x80\x80")  # U+110000


def test_every_spelled_out_encoding_is_valid_alone_and_concatenated():
    for good in GOOD:
        assert is_valid(good), good
        assert _first_failure(good) == VALID, good
    assert is_valid(b"".join(GOOD))


def test_encoded_python_strings_are_valid():
    text = "h\u00e9llo \u20ac \u65e5\u672c\u8a9e"
    assert is_valid(text.encode("utf-8"))


# ---------------------------------------------------------------------------
# invalid input: every class, and the exact byte where it is rejected

def test_overlong_two_byte_forms_are_rejected_at_lead_byte():
    assert _first_failure(b"\xc0\x80") == 0
    assert _first_failure(b"\xc1\xbf") == 0
    assert not is_valid(b"\xc0\xaf")


def test_overlong_three_byte_forms_are_rejected_at_second_byte():
    assert _first_failure(b"\xe0\x80\x80") == 1
    assert _first_failure(b"\xe0\x9f\xbf") == 1
    for second in range(0x80, 0xA0):
        assert _first_failure(bytes([0xE0, second, 0x80])) == 1, second


def test_overlong_four_byte_forms_are_rejected_at_second_byte():
    assert _first_failure(b"\xf0\x80\x80\x80") == 1
    assert _first_failure(b"\xf0\x8f\xbf\xbf") == 1
    for second in range(0x80, 0x90):
        assert _first_failure(bytes([0xF0, second, 0x80, 0x80])) == 1, second


def test_surrogate_is_rejected_at_second_byte():
    assert _first_failure(b"\xed\xa0\x80") == 1  # U+D800
    assert _first_failure(b"\xed\xbf\xbf") == 1  # U+DFFF
    for second in range(0xA0, 0xC0):
        assert _first_failure(bytes([0xED, second, 0x80])) == 1, second


def test_surrogate_pair_encoded_separately_is_rejected():
    assert _first_failure(b"\xed\xa0\xbd\xed\xb8\x80") == 1


def test_code_point_above_10ffff_is_rejected_at_second_byte():
    assert _first_failure(b"\xf4\x90\x80\x80") == 1  # U+110000
    for second in range(0x90, 0xC0):
        assert _first_failure(bytes([0xF4, second, 0x80, 0x80])) == 1, second


def test_lead_bytes_f5_to_ff_are_rejected_immediately():
    for lead in range(0xF5, 0x100):
        assert _first_failure(bytes([lead, 0x80, 0x80, 0x80])) == 0, lead


def test_stray_continuation_bytes_are_rejected():
    for cont in range(0x80, 0xC0):
        assert _first_failure(bytes([cont])) == 0, cont
        assert _first_failure(bytes([0x41, cont])) == 1, cont
    assert _first_failure(b"\xc3\xa9\xa9") == 2
    assert _first_failure(b"\xe2\x82\xac\x80") == 3
    assert _first_failure(b"\xf0\x9f\x98\x80\x80") == 4


def test_sequence_interrupted_by_non_continuation_is_rejected():
    assert _first_failure(b"\xc3A") == 1
    assert _first_failure(b"\xe2\x82A") == 2
    assert _first_failure(b"\xf0\x9f\x98A") == 3
    assert _first_failure(b"\xe2\x82\xe2\x82\xac") == 2
    assert _first_failure(b"\xf0\x9f\xc3\xa9") == 2
    assert _first_failure(b"\xc3\xff") == 1


def test_every_spelled_out_error_is_rejected_at_its_byte():
    for bad, at in BAD:
        assert _first_failure(bad) == at, bad
        assert not is_valid(bad), bad
        # Whole-buffer feed fails too, and valid text before does not help.
        v = Utf8Validator()
        assert not v.feed(b"ok \xc3\xa9 " + bad, 0, 7 + len(bad))


def test_truncated_sequence_is_incomplete_not_failed():
    for cut in TRUNCATED:
        v = Utf8Validator()
        assert v.feed(cut, 0, len(cut)), cut
        assert not v.complete(), cut
        assert not v.failed(), cut
        assert not is_valid(cut), cut


def test_fail_fast_in_the_fragment_where_the_error_arrives():
    # F4 alone may still become U+10xxxx; F4 90 never can.
    v = Utf8Validator()
    assert v.feed(b"abc\xf4", 0, 4)
    assert not v.complete()
    assert not v.feed(b"\x90\x80\x80", 0, 3)
    # Surrogate split after the lead byte.
    v = Utf8Validator()
    assert v.feed(b"\xed", 0, 1)
    assert not v.feed(b"\xa0", 0, 1)
    # Overlong split after the lead byte.
    v = Utf8Validator()
    assert v.feed(b"\xe0", 0, 1)
    assert not v.feed(b"\x9f\xbf", 0, 2)


def test_validator_stays_failed_until_reset():
    v = Utf8Validator()
    assert not v.feed(b"\xff", 0, 1)
    assert v.failed()
    assert not v.complete()
    assert not v.feed(b"abc", 0, 3)
    assert not v.feed(b"", 0, 0)
    assert not v.complete()
    v.reset()
    assert not v.failed()
    assert v.complete()
    assert v.feed(b"abc", 0, 3)
    assert v.complete()


def test_reset_in_the_middle_of_a_sequence_starts_fresh():
    v = Utf8Validator()
    assert v.feed(b"\xe2\x82", 0, 2)
    assert not v.complete()
    v.reset()
    assert v.complete()
    # The pending continuation is forgotten: 0xAC is now a stray byte.
    assert not v.feed(b"\xac", 0, 1)
    v.reset()
    # The restricted range after E0/ED/F0/F4 is forgotten too.
    assert v.feed(b"\xf4", 0, 1)
    v.reset()
    assert v.feed(b"\xc3\xbf", 0, 2)
    assert v.complete()


# ---------------------------------------------------------------------------
# state carried across feeds

def test_complete_is_false_in_the_middle_of_every_sequence():
    for good in GOOD:
        v = Utf8Validator()
        for i in range(len(good)):
            assert v.feed(good, i, i + 1), (good, i)
            assert v.complete() == (i == len(good) - 1), (good, i)


def test_emoji_split_across_fragments_is_valid():
    v = Utf8Validator()
    assert v.feed(b"hi \xf0\x9f", 0, 5)
    assert not v.complete()
    assert v.feed(b"\x98", 0, 1)
    assert not v.complete()
    assert v.feed(b"\x80!", 0, 2)
    assert v.complete()


def test_valid_texts_split_at_every_position_are_valid():
    for text in TEXTS:
        assert is_valid(text), text
        for i in range(len(text) + 1):
            # Offsets into one buffer ...
            assert _verdict_in_two_feeds(text, i) == (True, True, True), (text, i)
            # ... and two separate buffers.
            v = Utf8Validator()
            a = text[:i]
            b = text[i:]
            assert v.feed(a, 0, len(a)), (text, i)
            assert v.feed(b, 0, len(b)), (text, i)
            assert v.complete(), (text, i)


def test_valid_text_split_into_three_feeds_at_every_pair_of_positions():
    text = TEXTS[7]
    n = len(text)
    for i in range(n + 1):
        for j in range(i, n + 1):
            v = Utf8Validator()
            assert v.feed(text, 0, i)
            assert v.feed(text, i, j)
            assert v.feed(text, j, n)
            assert v.complete(), (i, j)


def test_split_verdict_matches_whole_buffer_for_invalid_and_truncated_input():
    cases = [bad for bad, _ in BAD] + list(TRUNCATED)
    for text in TEXTS[1:4]:
        for bad, _ in BAD:
            cases.append(text + bad + text)
    for data in cases:
        whole = is_valid(data)
        fail_at = _reference(data)
        for i in range(len(data) + 1):
            first, second, done = _verdict_in_two_feeds(data, i)
            assert (first and second and done) == whole, (data, i)
            if fail_at >= 0:
                # The feed holding the bad byte is the one that fails.
                assert first == (fail_at >= i), (data, i)
                assert not second
            else:
                assert first and second
                assert done == (fail_at == VALID)


# ---------------------------------------------------------------------------
# start/end offsets and buffer types

def test_start_and_end_offsets_are_honoured():
    buf = b"\xff\xc3\xa9\xff"
    v = Utf8Validator()
    assert v.feed(buf, 1, 3)  # only C3 A9
    assert v.complete()
    assert v.feed(buf, 2, 2)  # empty range
    assert v.complete()
    assert not v.feed(buf, 0, 1)


def test_bytes_outside_the_range_are_ignored_when_split_in_one_buffer():
    buf = b"\x80\x80\xe2\x82\xac\xff\xff"
    v = Utf8Validator()
    assert v.feed(buf, 2, 3)
    assert not v.complete()
    assert v.feed(buf, 3, 4)
    assert v.feed(buf, 4, 5)
    assert v.complete()
    # A range ending before a bad byte does not see it.
    v = Utf8Validator()
    assert v.feed(b"ab\xffcd", 0, 2)
    assert v.feed(b"ab\xffcd", 3, 5)
    assert v.complete()


def test_bytearray_and_memoryview_buffers_are_accepted():
    data = b"x\xf0\x9f\x98\x80y"
    for buf in (data, bytearray(data), memoryview(data), memoryview(bytearray(data))):
        assert is_valid(buf)
        v = Utf8Validator()
        assert v.feed(buf, 0, 3)
        assert v.feed(buf, 3, len(data))
        assert v.complete()
    assert not is_valid(bytearray(b"\xed\xa0\x80"))
    assert not is_valid(memoryview(b"\xed\xa0\x80"))
    big = bytearray(b"\xe2\x82\xac" * 40)
    v = Utf8Validator()
    assert v.feed(memoryview(big)[3:], 0, 117)
    assert v.complete()


def test_is_valid_on_whole_buffers():
    assert is_valid(b"Normal closure")
    assert is_valid(b"\xe2\x9c\x93 done")
    assert not is_valid(b"bad \xc3")
    assert not is_valid(b"bad \xc0\x80")


# ---------------------------------------------------------------------------
# systematic comparison with the reference checker (both runtimes)

def test_all_one_and_two_byte_inputs_match_reference():
    for a in range(256):
        one = bytes([a])
        assert _first_failure(one) == _reference(one), one
    buf = bytearray(2)
    for a in range(0xC0, 0x100):  # 00..BF as first byte is trivial
        buf[0] = a
        for b in range(256):
            buf[1] = b
            assert _first_failure(buf) == _reference(buf), (a, b)


def test_selected_three_and_four_byte_inputs_match_reference():
    # Every lead byte E0..F7 with every continuation byte second, and the
    # bytes at the edges of each range (or not continuations at all) after.
    edges = (0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF)
    others = (0x41, 0x7F, 0xC0, 0xC2, 0xE0, 0xF4, 0xFF)
    buf3 = bytearray(3)
    buf4 = bytearray(4)
    for a in range(0xE0, 0xF8):
        buf3[0] = a
        buf4[0] = a
        for b in range(0x80, 0xC0):
            buf3[1] = b
            for c in edges + others:
                buf3[2] = c
                assert _first_failure(buf3) == _reference(buf3), (a, b, c)
        for b in edges:
            buf4[1] = b
            for c in edges + others:
                buf4[2] = c
                for d in edges + others:
                    buf4[3] = d
                    assert _first_failure(buf4) == _reference(buf4), (a, b, c, d)


def _lcg_inputs(count):
    """Deterministic byte strings: mostly valid sequences glued together,
    sometimes mutated, truncated or with a random byte inserted."""
    rng = _Lcg(12345)
    specials = (0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xE0,
                0xED, 0xF0, 0xF4, 0xF5, 0xFF)
    out = []
    for _ in range(count):
        parts = bytearray()
        for _ in range(rng.next(6)):
            parts.extend(GOOD[rng.next(len(GOOD))])
        kind = rng.next(4)
        if kind == 1 and parts:
            parts[rng.next(len(parts))] = specials[rng.next(len(specials))]
        elif kind == 2 and parts:
            parts = parts[:rng.next(len(parts))]
        elif kind == 3:
            at = rng.next(len(parts) + 1)  # (MicroPython: no bytearray.insert)
            parts = parts[:at] + bytes([rng.next(256)]) + parts[at:]
        out.append(bytes(parts))
    return out


def test_lcg_generated_inputs_match_reference_and_split_verdicts():
    seen = [0, 0, 0]  # valid, invalid, truncated
    for data in _lcg_inputs(1500):
        want = _reference(data)
        assert _first_failure(data) == want, data
        assert is_valid(data) == (want == VALID), data
        if want == VALID:
            seen[0] += 1
        elif want == INCOMPLETE:
            seen[2] += 1
        else:
            seen[1] += 1
        mid = len(data) // 2
        first, second, done = _verdict_in_two_feeds(data, mid)
        assert (first and second and done) == (want == VALID), data
    # The generator really produces all three kinds of input.
    assert seen[0] > 100 and seen[1] > 100 and seen[2] > 50, seen


def test_unmutated_lcg_concatenations_are_valid():
    rng = _Lcg(777)
    for _ in range(300):
        parts = bytearray()
        for _ in range(1 + rng.next(8)):
            parts.extend(GOOD[rng.next(len(GOOD))])
        assert is_valid(parts), parts
        cut = rng.next(len(parts) + 1)
        assert _verdict_in_two_feeds(parts, cut) == (True, True, True), parts


# ---------------------------------------------------------------------------
# CPython only: compare with Python's strict decoder

def _cpython_first_failure(data):
    """Fail-fast position derived from CPython's strict decoder."""
    try:
        data.decode("utf-8")
        return VALID
    except UnicodeDecodeError as e:
        lead = data[e.start]
        if lead < 0xC2 or lead > 0xF4:
            return e.start  # invalid lead byte, rejected by itself
        if e.end >= len(data):
            return INCOMPLETE  # "unexpected end of data"
        return e.end  # bytes[start:end] is a valid prefix; the next breaks it


def test_matches_cpython_strict_decoder():
    if sys.implementation.name == "micropython":
        return  # MicroPython's decoder is lax; it is not an oracle
    inputs = []
    for a in range(256):
        inputs.append(bytes([a]))
        for b in range(256):
            inputs.append(bytes([a, b]))
    conts = (0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF)
    others = (0x00, 0x41, 0x7F, 0xC0, 0xC2, 0xE0, 0xF0, 0xF4, 0xF5, 0xFF)
    for a in range(0xC0, 0x100):
        for b in range(256):
            for c in conts + others:
                inputs.append(bytes([a, b, c]))
                if a >= 0xF0:
                    for d in conts + others:
                        inputs.append(bytes([a, b, c, d]))
    inputs.extend(_lcg_inputs(3000))
    rng = _Lcg(99)
    for _ in range(3000):  # plain random bytes, biased to the high half
        inputs.append(bytes([rng.next(256) | (0x80 * rng.next(2))
                             for _ in range(rng.next(12))]))
    for data in inputs:
        want = _cpython_first_failure(data)
        assert is_valid(data) == (want == VALID), data
        assert _first_failure(data) == want, data
        assert _reference(data) == want, data
