"""Who may command the device: the token check and a per-client rate limit.

The token is compared in constant time so that answer timing tells a
guesser nothing about how much of a guess was right.
"""

from microws.compat import ticks_diff

COMMANDS_PER_SECOND = 5
COMMAND_BURST = 10


def token_matches(presented, token):
    """True when presented == token, in time that depends only on their lengths."""
    a = presented.encode() if isinstance(presented, str) else bytes(presented)
    b = token.encode() if isinstance(token, str) else bytes(token)
    diff = len(a) ^ len(b)
    for i in range(len(b)):
        diff |= (a[i] if i < len(a) else 0) ^ b[i]
    return diff == 0 and len(b) > 0


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
