"""How often a client may command the device: a per-client rate limit.
The token check is token_guard.py's, imported only when a token is set."""

from microws.compat import ticks_diff

COMMANDS_PER_SECOND = 5
COMMAND_BURST = 10


class CommandLimiter:
    """A token bucket: a burst of COMMAND_BURST, then per_second commands.

    clock: ticks_ms-like. Commands beyond the limit are refused, not
    queued, so a flooding client costs the device nothing but the refusal.
    """

    def __init__(self, clock, per_second=COMMANDS_PER_SECOND, burst=COMMAND_BURST):
        self.per_second = per_second
        self.burst = burst
        self._clock = clock
        self._level = burst * 1000  # in thousandths of a command
        self._last = clock()

    def allow(self):
        now = self._clock()
        elapsed = max(0, ticks_diff(now, self._last))
        self._last = now
        self._level = min(self.burst * 1000, self._level + elapsed * self.per_second)
        if self._level >= 1000:
            self._level -= 1000
            return True
        return False
