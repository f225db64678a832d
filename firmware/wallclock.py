"""Wall-clock time (Unix milliseconds, UTC) on a device that boots without it.

A board learns the time from NTP when it has a network (MicroPython's
`ntptime`), or else from the first dashboard's `time` command; the
simulator knows it at once from its host. The time is kept as an offset to
the uptime (uptime.py), so it follows the ticks across their wrap, and a
sample taken before the clock was known still gets its time afterwards.
"""

MIN_MS = 1577836800000  # 2020-01-01T00:00:00Z: a `time` command before this is wrong
MAX_MS = 4102444800000  # 2100-01-01T00:00:00Z
UNIX_2000_S = 946684800  # ports whose time epoch is 2000 (time.gmtime(0)[0] == 2000)

NTP_TIMEOUT_S = 1  # ntptime blocks the whole device up to this long (plus its DNS look-up)
NTP_RETRY_MS = 300000  # without an answer: again in 5 minutes
NTP_RESYNC_MS = 21600000  # with one: again in 6 hours (a crystal drifts a few seconds a day)


class WallClock:
    """uptime_ms: () -> ms since boot, never going back (Device.uptime_ms)."""

    def __init__(self, uptime_ms):
        self._uptime_ms = uptime_ms
        self._offset = None  # Unix ms at uptime 0
        self.source = None  # "ntp", "dashboard" or "host" once known

    def known(self):
        return self._offset is not None

    def set(self, unix_ms, source):
        self._offset = int(unix_ms) - self._uptime_ms()
        self.source = source

    def now(self):
        """Unix ms now, or None while unknown."""
        if self._offset is None:
            return None
        return self._offset + self._uptime_ms()


def valid_ms(ms):
    """True for a Unix ms a dashboard may set (2020 to 2100)."""
    return (type(ms) is int or type(ms) is float) and MIN_MS <= ms < MAX_MS


def ntp_unix_ms(ntptime, epoch_year):
    """Ask NTP once: Unix ms. Blocks up to ntptime.timeout (and the DNS
    look-up); raises OSError without an answer. epoch_year: the port's
    time.gmtime(0)[0] (ntptime.time() counts from it)."""
    ntptime.timeout = NTP_TIMEOUT_S
    seconds = ntptime.time()
    if epoch_year == 2000:
        seconds += UNIX_2000_S
    return seconds * 1000 + 500  # the answer is whole seconds: the middle of that second


def host_unix_ms():
    """The host's own clock (the simulator; CPython or the unix port)."""
    import time

    if hasattr(time, "time_ns"):
        return time.time_ns() // 1000000
    return int(time.time() * 1000)
