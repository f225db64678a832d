"""Incremental, strict (RFC 3629) UTF-8 validation for WebSocket text.

MicroPython's ``bytes.decode()`` accepts overlong forms, surrogates and code
points above U+10FFFF, and it has no incremental decoder, so it cannot be used
to decide whether a (possibly fragmented) text message is valid.

``feed`` carries its state from call to call, so a message may be validated
fragment by fragment (or chunk by chunk as it is read), and it fails fast: it
answers "invalid" at the first byte after which no valid continuation of the
input exists.  For example ``F4 90`` is rejected at the
``90`` because every sequence starting that way encodes a code point above
U+10FFFF.

``feed`` allocates nothing: the state is one small int, the buffer is only
indexed, and the loop works on local variables.

Well-formed sequences (RFC 3629, section 4)::

    00..7F
    C2..DF  80..BF
    E0      A0..BF  80..BF
    E1..EC  80..BF  80..BF
    ED      80..9F  80..BF
    EE..EF  80..BF  80..BF
    F0      90..BF  80..BF  80..BF
    F1..F3  80..BF  80..BF  80..BF
    F4      80..8F  80..BF  80..BF

Only the byte right after the lead byte ever has a range other than 80..BF.
"""

from .compat import const

# A constant: MicroPython compiles the block below away (annotations are
# strings it never evaluates); mypy takes any TYPE_CHECKING as true.
TYPE_CHECKING = const(0)
if TYPE_CHECKING:
    from circuitpython_typing import ReadableBuffer


def feed(state: int, buf: "ReadableBuffer", start: int, end: int) -> int:
    """Validate ``buf[start:end]`` as the next part of a message; return the
    new state. State 0: nothing seen, or the input so far ends on a character
    boundary (a message may end here); negative: invalid, for good; positive:
    inside a character.

    The state is one small int, so a connection keeps it in one attribute
    and allocates nothing: bits 0-1 hold the continuation bytes still
    expected (0..3), bits 2-7 how far the next one's lowest allowed value
    lies above 0x80, bits 8 and up how far its highest lies below 0xBF
    (both 0 whenever no character is open). ``buf`` may be bytes, bytearray
    or memoryview. Fails fast: negative at the first byte after which no
    valid continuation of the input exists.
    """
    if state < 0:
        return state
    need = state & 3
    lo = 0x80 + ((state >> 2) & 0x3F)
    hi = 0xBF - (state >> 8)
    i = start
    while i < end:
        b = buf[i]
        i += 1
        if need:
            if b < lo or b > hi:
                return -1
            need -= 1
            lo = 0x80
            hi = 0xBF
        elif b < 0x80:
            pass
        elif b < 0xC2:
            # 80..BF: continuation byte without a lead byte.
            # C0, C1: would only start overlong forms of U+0000..U+007F.
            return -1
        elif b < 0xE0:
            need = 1
        elif b < 0xF0:
            need = 2
            if b == 0xE0:
                lo = 0xA0  # E0 80..9F would be overlong (< U+0800)
            elif b == 0xED:
                hi = 0x9F  # ED A0..BF would be surrogates U+D800..U+DFFF
        elif b < 0xF5:
            need = 3
            if b == 0xF0:
                lo = 0x90  # F0 80..8F would be overlong (< U+10000)
            elif b == 0xF4:
                hi = 0x8F  # F4 90..BF would be above U+10FFFF
        else:
            # F5..FF: above U+10FFFF or never valid in UTF-8.
            return -1
    return need | (lo - 0x80) << 2 | (0xBF - hi) << 8
