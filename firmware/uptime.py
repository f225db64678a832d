"""Time since boot that survives the wrap of time.ticks_ms().

ticks_ms() wraps (after about 12 days on ports with 30-bit ticks) and
ticks_diff() is right only for two ticks less than half that period apart
(about 6 days). So uptime is accumulated from wrap-safe differences, and
ms() must be called more often than that: the App calls it every minute,
whether or not a dashboard is connected (App._keep_time), and every sample
and every `info` call it too.
"""

try:
    from time import ticks_diff
except ImportError:  # CPython: clocks given to us do not wrap

    def ticks_diff(new, old):
        return new - old


class Uptime:
    """Milliseconds since boot from `clock` (a ticks_ms-like callable that
    counts from boot), never going backwards. diff: the clock's
    ticks_diff (time.ticks_diff by default)."""

    def __init__(self, clock, diff=None):
        self._clock = clock
        self._diff = diff or ticks_diff
        self._last = self._total = clock()  # the clock counts from boot

    def ms(self):
        now = self._clock()
        delta = self._diff(now, self._last)
        if delta > 0:
            self._total += delta
        self._last = now
        return self._total

    def seconds(self):
        return self.ms() // 1000
