"""Incremental, strict (RFC 3629) UTF-8 validation for WebSocket text.

MicroPython's ``bytes.decode()`` accepts overlong forms, surrogates and code
points above U+10FFFF, and it has no incremental decoder, so it cannot be used
to decide whether a (possibly fragmented) text message is valid.

``Utf8Validator`` keeps its state across ``feed`` calls, so a message may be
validated fragment by fragment (or chunk by chunk as it is read), and it fails
fast: ``feed`` returns False at the first byte after which no valid
continuation of the input exists.  For example ``F4 90`` is rejected at the
``90`` because every sequence starting that way encodes a code point above
U+10FFFF.

``feed`` allocates nothing: the state is three small ints on the instance,
the buffer is only indexed, and the loop works on local variables.

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


try:
    from typing import TYPE_CHECKING
except ImportError:  # MicroPython: annotations are strings, never evaluated
    TYPE_CHECKING = False  # type: ignore[misc]
if TYPE_CHECKING:
    from circuitpython_typing import ReadableBuffer


class Utf8Validator:
    """Validate UTF-8 incrementally.

    State: ``_need`` is the number of continuation bytes still expected
    (0..3), or -1 once the input has been found invalid; ``_lo``/``_hi`` is
    the inclusive range allowed for the next continuation byte.  Whenever
    ``_need`` is 0 the range is 0x80..0xBF.
    """

    def __init__(self) -> None:
        # Create every attribute here so that feed() only ever replaces
        # existing values and never grows the instance dictionary.
        self._need = 0
        self._lo = 0x80
        self._hi = 0xBF

    def reset(self) -> None:
        """Forget everything: start a new message."""
        self._need = 0
        self._lo = 0x80
        self._hi = 0xBF

    def feed(self, buf: "ReadableBuffer", start: int, end: int) -> bool:
        """Validate ``buf[start:end]`` as the next part of the message.

        ``buf`` may be bytes, bytearray or memoryview.  Returns False as soon
        as the input seen so far cannot be the beginning of valid UTF-8; the
        validator then stays failed until ``reset()``.  Returns True
        otherwise (the message may still end in the middle of a sequence:
        see ``complete()``).
        """
        need = self._need
        if need < 0:
            return False
        lo = self._lo
        hi = self._hi
        i = start
        while i < end:
            b = buf[i]
            i += 1
            if need:
                if b < lo or b > hi:
                    self._need = -1
                    return False
                need -= 1
                lo = 0x80
                hi = 0xBF
            elif b < 0x80:
                pass
            elif b < 0xC2:
                # 80..BF: continuation byte without a lead byte.
                # C0, C1: would only start overlong forms of U+0000..U+007F.
                self._need = -1
                return False
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
                self._need = -1
                return False
        self._need = need
        self._lo = lo
        self._hi = hi
        return True

    def complete(self) -> bool:
        """True if no error was seen and no multi-byte sequence is open,
        i.e. the message may end here."""
        return self._need == 0

    def failed(self) -> bool:
        """True once invalid input has been seen (until ``reset()``)."""
        return self._need < 0


def is_valid(data: "ReadableBuffer") -> bool:
    """Return True if the whole buffer ``data`` is strict, complete UTF-8."""
    v = Utf8Validator()
    return v.feed(data, 0, len(data)) and v.complete()
