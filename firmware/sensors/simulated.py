"""Simulated sensors for the host (and for a board with nothing wired).

A value is a slow daily-like cycle (a sine over `period_s` of clock time)
plus smooth noise (a damped random walk), clamped to min..max. Everything
is deterministic for a seed: the random numbers come from an own xorshift32
(integers only), the sine from a short series (only + - * /), and the
parameters are quantised to thousandths, which sidesteps the last-bit
differences of float parsing. So CPython and MicroPython (double-precision
builds) produce the same values for the same seed and clock.
"""

import math

from sensors.base import Sensor

MASK32 = 0xFFFFFFFF
DEFAULT_SEED = 0x2545F491


class Prng:
    """xorshift32 (Marsaglia, 2003): tiny, fast, identical everywhere."""

    def __init__(self, seed):
        self._state = (seed & MASK32) or DEFAULT_SEED  # 0 would stay 0

    def next_u32(self):
        x = self._state
        x ^= (x << 13) & MASK32
        x ^= x >> 17
        x ^= (x << 5) & MASK32
        self._state = x
        return x

    def uniform(self):
        """A float in [-1, 1)."""
        return self.next_u32() / 2147483648 - 1


def name_seed(name):
    """FNV-1a of the name: each sensor gets its own stream from one seed
    (Python's hash() of a str differs per process)."""
    h = 0x811C9DC5
    for byte in name.encode():
        h = ((h ^ byte) * 0x01000193) & MASK32
    return h


def sin_turns(t):
    """sin(2*pi*t), from a Taylor series on [-pi/2, pi/2] (error < 1e-7):
    no libm, so the same bits on every runtime."""
    t -= math.floor(t)
    if t > 0.75:
        t -= 1
    elif t > 0.25:
        t = 0.5 - t
    x = t * 2 * math.pi
    x2 = x * x
    return x * (1 - x2 / 6 * (1 - x2 / 20 * (1 - x2 / 42 * (1 - x2 / 72 * (1 - x2 / 110)))))


def _milli(x):
    return int(x * 1000 + 0.5) if x >= 0 else int(x * 1000 - 0.5)


class Simulated(Sensor):
    """One simulated value; `clock` is a ticks_ms-like callable.

    base + amplitude * sin(2*pi*(ms / period + phase)) + noise, where the
    noise follows n = 0.8 * n + noise * u (u uniform in [-1, 1)), so it
    stays within 5 * noise and moves at most 2 * noise per sample.
    """

    def __init__(self, name, unit, clock, seed=0, base=0, amplitude=0, period_s=600, phase=0,
                 noise=0, min=None, max=None, decimals=2):
        Sensor.__init__(self, name, unit, decimals)
        self._clock = clock
        self._prng = Prng(seed ^ name_seed(name))
        self._base = _milli(base) / 1000
        self._amplitude = _milli(amplitude) / 1000
        self._period_ms = _milli(period_s)
        self._phase = _milli(phase) / 1000
        self._noise = _milli(noise) / 1000
        self._min = None if min is None else _milli(min) / 1000
        self._max = None if max is None else _milli(max) / 1000
        self._n = 0.0

    def _read(self):
        turns = self._clock() / self._period_ms + self._phase
        self._n = self._n * 4 / 5 + self._noise * self._prng.uniform()
        value = self._base + self._amplitude * sin_turns(turns) + self._n
        if self._min is not None and value < self._min:
            value = self._min
        if self._max is not None and value > self._max:
            value = self._max
        return value


class SimulatedHeap(Sensor):
    """Free heap of a pretend board: falls as garbage piles up, jumps back
    when the collector runs (the sawtooth a real board shows)."""

    def __init__(self, total, seed=0, name="free_heap", unit="B"):
        Sensor.__init__(self, name, unit)
        self._total = total
        self._floor = total // 5  # live data, never collected
        self._used = self._floor
        self._step = max(1, total // 500)
        self._prng = Prng(seed ^ name_seed(name))

    def _read(self):
        self._used += self._step + self._prng.next_u32() % self._step
        if self._used > self._total * 3 // 5:
            self._used = self._floor + self._prng.next_u32() % self._step
        return self._total - self._used
