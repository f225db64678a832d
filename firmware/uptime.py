"""Time since boot that survives the wrap of time.ticks_ms().

ticks_ms() wraps after about 12 days on ports with 30-bit ticks, so uptime
is accumulated from wrap-safe differences instead of read directly. Call
ms() at least once per wrap period (every sample does).
"""

try:
    from time import ticks_diff
except ImportError:  # CPython: clocks given to us do not wrap

    def ticks_diff(new, old):
        return new - old


class Uptime:
    """Milliseconds since boot from `clock` (a ticks_ms-like callable that
    counts from boot), never going backwards."""

    def __init__(self, clock):
        self._clock = clock
        self._last = self._total = clock()

    def ms(self):
        now = self._clock()
        delta = ticks_diff(now, self._last)
        if delta > 0:
            self._total += delta
        self._last = now
        return self._total

    def seconds(self):
        return self.ms() // 1000
