"""What every sensor is: a name, a unit and read() -> number or None.

read() never raises: a sensor that fails this time (unplugged, bad checksum,
bus error) gives None, the sample carries `null`, and the sampling loop goes
on; `error` then holds the reason (a short text), None after a good read.
Subclasses implement _read(), which may raise.
"""

from uptime import ticks_diff


def quantize(value, decimals):
    """value rounded to `decimals` places, the same on CPython and on
    MicroPython (their round() differ on halfway cases)."""
    if decimals is None:
        return value
    scale = 10 ** decimals
    return int(value * scale + 0.5 if value >= 0 else value * scale - 0.5) / scale


MAX_REASON = 48  # longest reason kept (memory; the page shows it)


class SensorFailure(Exception):
    """A failure whose text is already the reason (a shared measurement's)."""


def reason(error):
    """A short text for why a read failed: "OSError: [Errno 19] ENODEV"."""
    text = str(error)
    if not isinstance(error, SensorFailure):
        name = type(error).__name__
        text = name + ": " + text if text else name
    return text[:MAX_REASON]


class Sensor:
    """One value of one sensor."""

    def __init__(self, name, unit="", decimals=None):
        self.name = name
        self.unit = unit
        self.decimals = decimals
        self.error = None

    def read(self):
        try:
            value = self._read()
        except Exception as e:  # noqa: BLE001 (a failed read is None, by design)
            self.error = reason(e)
            return None
        self.error = None
        if type(value) is float:
            if value - value != 0:  # NaN or infinite: not JSON
                self.error = "not a number"
                return None
            return quantize(value, self.decimals)
        return value

    def _read(self):
        raise NotImplementedError


class Shared:
    """One measurement shared by several values (DHT: temperature and
    humidity; BME280: three), so a sample measures the chip once.

    measure() returns a tuple of `count` values, or raises. A value that was
    already handed out since the last measurement triggers the next one, so
    one sample that reads every value measures exactly once, whichever of
    them are enabled. min_interval_ms (with `clock`, ticks_ms-like) keeps
    chips that must rest between measurements (DHT22: 2 s) from being asked
    too often: until then the last values are repeated.
    """

    def __init__(self, measure, count, min_interval_ms=0, clock=None):
        self._measure = measure
        self._all = (1 << count) - 1
        self._unread = 0
        self._values = None
        self._min_interval = min_interval_ms
        self._clock = clock
        self._last = None
        self.error = None  # why the last measurement failed

    def value(self, index):
        bit = 1 << index
        if not self._unread & bit:
            self._refresh()
        self._unread &= ~bit
        values = self._values
        return None if values is None else values[index]

    def _refresh(self):
        self._unread = self._all
        if self._min_interval and self._clock is not None:
            now = self._clock()
            if self._last is not None and 0 <= ticks_diff(now, self._last) < self._min_interval:
                return
            self._last = now
        try:
            self._values = self._measure()
            self.error = None
        except Exception as e:  # noqa: BLE001
            self._values = None
            self.error = reason(e)


class SharedValue(Sensor):
    """Value number `index` of a Shared measurement."""

    def __init__(self, shared, index, name, unit="", decimals=None):
        Sensor.__init__(self, name, unit, decimals)
        self._shared = shared
        self._index = index

    def _read(self):
        value = self._shared.value(self._index)
        if value is None and self._shared.error is not None:
            raise SensorFailure(self._shared.error)
        return value
