"""The last samples, kept for a dashboard that connects late.

A ring made once at start, sized by the board file's "history": each
sample costs 4 bytes for its `ms` and 4 per value (float32, NaN for a
failed read), nothing else: seq is not stored, because every sample goes
into the ring, so the row at slot i of a full ring has a seq computable
from the newest one. push() allocates nothing on MicroPython.

Rows go out as `h` texts of at most about CHUNK_BYTES (firmware/PROTOCOL.md),
formatted one row at a time into one buffer, so a long history never
becomes one big string.
"""

import json
from array import array

from sensors.base import quantize

NAN = float("nan")
CHUNK_BYTES = 512  # an `h` message stays within this (unless one row alone is longer): small boards
CHUNK_HEAD = b'{"t":"h","rows":['
CHUNK_TAIL = b"]}"
DONE = '{"t":"h","rows":[],"done":true}'
FLOAT32_DIGITS = "%.7g"  # what a float32 holds of a value without decimals


class History:
    """capacity samples of `count` values each; capacity 0 keeps none."""

    def __init__(self, capacity, count):
        self.capacity = capacity
        self.count = count
        self._ms = array("I", bytes(4 * capacity))
        self._values = array("f", bytes(4 * capacity * count))
        self._next = 0  # the slot the next sample goes to
        self.size = 0  # samples held
        self.newest_seq = -1

    def nbytes(self):
        """The ring's storage (the arrays' items)."""
        return 4 * self.capacity * (1 + self.count)

    def push(self, seq, ms, values):
        """Keep one sample (values: numbers or None); seq must be the one after
        the last pushed (the ring starts over otherwise)."""
        if not self.capacity:
            return
        if seq != self.newest_seq + 1:
            self.size = 0
        slot = self._next
        if ms > 0x3FFFFFFF:  # never on a board (30-bit ticks): a long-running host's clock
            ms &= 0xFFFFFFFF
        self._ms[slot] = ms
        at = slot * self.count
        store = self._values
        for i in range(self.count):
            value = values[i]
            store[at + i] = NAN if value is None else value
        self._next = slot + 1 if slot + 1 < self.capacity else 0
        if self.size < self.capacity:
            self.size += 1
        self.newest_seq = seq

    def oldest_seq(self):
        return self.newest_seq - self.size + 1

    def _slot(self, seq):
        return (self._next - (self.newest_seq - seq) - 1) % self.capacity

    def ms(self, seq):
        return self._ms[self._slot(seq)]

    def value(self, seq, i):
        """Value i of sample seq, None for a failed read (NaN)."""
        value = self._values[self._slot(seq) * self.count + i]
        return None if value != value else value


def _number(value, decimals):
    """A stored float32 as the `s` stream carried it: rounded to the sensor's
    decimals, or a whole number, or float32's 7 significant digits."""
    if value is None:
        return "null"
    if decimals is not None:
        return json.dumps(quantize(value, decimals))
    if value == int(value) and abs(value) < 16777216:  # whole and exact in a float32
        return str(int(value))
    return json.dumps(float(FLOAT32_DIGITS % value))


class HistorySender:
    """Formats a History into `h` chunks in one buffer made at start.

    decimals: per value, the sensor's decimals (None: see _number).
    wall_at(ms): the Unix ms of a sample taken at ticks `ms`, or None.
    """

    def __init__(self, history, decimals, row_bytes=None):
        self.history = history
        self.decimals = decimals
        # one row: [seq,ms,ts,[v,...]] with up to 24 characters a value
        longest = row_bytes or 48 + 24 * history.count
        self._buf = bytearray(max(CHUNK_BYTES, len(CHUNK_HEAD) + longest + len(CHUNK_TAIL)))
        self._view = memoryview(self._buf)
        self._buf[:len(CHUNK_HEAD)] = CHUNK_HEAD
        self.busy = False

    def row(self, seq, ts):
        history = self.history
        decimals = self.decimals
        parts = []
        for i in range(history.count):
            parts.append(_number(history.value(seq, i), decimals[i]))
        return "[%d,%d,%s,[%s]]" % (seq, history.ms(seq), "null" if ts is None else "%d" % ts,
                                    ",".join(parts))

    def chunks(self, wall_at, join=None):
        """Yield memoryviews of `h` texts, oldest rows first, ending with the
        done message (a str). Each view is valid until the next step: send it
        before asking for the next. Rows overwritten meanwhile are skipped;
        rows sampled meanwhile are sent too, until none is left.

        join(): called once the rows have caught up with the newest sample,
        right before the done message and with no wait in between: a client
        that joins the live stream there gets every sample after the
        history's newest, and after it, never one older than a history row.
        """
        history = self.history
        if history.size:
            yield from self._rows(wall_at)
        if join is not None:
            join()
        yield DONE

    def _rows(self, wall_at):
        history = self.history
        last = history.newest_seq + history.capacity  # catching up ends: a client slower than the sampler
        seq = history.oldest_seq()
        buf = self._buf
        head = len(CHUNK_HEAD)
        limit = len(buf) - len(CHUNK_TAIL)
        while True:
            if seq < history.oldest_seq():  # the ring moved on while a chunk was out
                seq = history.oldest_seq()
            end = min(history.newest_seq, last)
            at = head
            while seq <= end:
                row = self.row(seq, wall_at(history.ms(seq))).encode()
                extra = len(row) + (1 if at > head else 0)
                if at + extra > limit and at > head:
                    break
                if at > head:
                    buf[at] = 0x2C  # ","
                    at += 1
                self._view[at:at + len(row)] = row
                at += len(row)
                seq += 1
            if at == head:
                return
            self._view[at:at + len(CHUNK_TAIL)] = CHUNK_TAIL
            yield self._view[:at + len(CHUNK_TAIL)]
            if seq > min(history.newest_seq, last):  # looked at after the send: sampled meanwhile goes too
                return
