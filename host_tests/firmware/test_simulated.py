"""Simulated sensors: deterministic for a seed, smooth, within bounds."""
import math

import pytest

from fakes import Clock
from sensors.simulated import Prng, Simulated, SimulatedHeap, name_seed, sin_turns

TEMPERATURE = dict(base=21.5, amplitude=3.0, period_s=600, phase=0.6, noise=0.05, decimals=2)


def series(seed=1, n=500, step_ms=500, name="temperature", **params):
    clock = Clock()
    sensor = Simulated(name, "°C", clock, seed, **(params or TEMPERATURE))
    values = []
    for _ in range(n):
        values.append(sensor.read())
        clock.advance(step_ms)
    return values


def test_prng_xorshift32_known_sequence():
    # xorshift32 with shifts 13, 17, 5 from state 1 (Marsaglia 2003)
    prng = Prng(1)
    assert [prng.next_u32() for _ in range(3)] == [270369, 67634689, 2647435461]


def test_prng_uniform_stays_in_range():
    prng = Prng(12345)
    values = [prng.uniform() for _ in range(10000)]
    assert min(values) >= -1 and max(values) < 1
    assert abs(sum(values) / len(values)) < 0.05


def test_prng_zero_seed_still_moves():
    prng = Prng(0)
    assert prng.next_u32() != 0


def test_sin_turns_matches_math_sin():
    for i in range(-1000, 1000):
        t = i / 137
        assert sin_turns(t) == pytest.approx(math.sin(2 * math.pi * t), abs=1e-6)


def test_name_seed_is_fnv1a():
    assert name_seed("") == 0x811C9DC5
    assert name_seed("a") == 0xE40C292C


def test_simulated_same_seed_same_values():
    assert series(seed=7) == series(seed=7)


def test_simulated_two_instances_side_by_side_are_identical():
    clock = Clock()
    a = Simulated("temperature", "°C", clock, 5, **TEMPERATURE)
    b = Simulated("temperature", "°C", clock, 5, **TEMPERATURE)
    for _ in range(200):
        assert a.read() == b.read()
        clock.advance(250)


def test_simulated_other_seed_other_values():
    assert series(seed=1) != series(seed=2)


def test_simulated_sensors_with_one_seed_differ_by_name():
    assert series(name="a") != series(name="b")


def test_simulated_is_smooth_between_samples():
    step_ms = 500
    values = series(seed=3, n=2000, step_ms=step_ms)
    p = TEMPERATURE
    bound = p["amplitude"] * 2 * math.pi * step_ms / (p["period_s"] * 1000) + 2 * p["noise"] + 0.01
    steps = [abs(b - a) for a, b in zip(values, values[1:])]
    assert max(steps) <= bound
    assert max(steps) > 0


def test_simulated_follows_a_daily_cycle():
    values = series(seed=3, n=1200, step_ms=500)  # one full period (600 s)
    p = TEMPERATURE
    assert max(values) == pytest.approx(p["base"] + p["amplitude"], abs=5 * p["noise"] + 0.01)
    assert min(values) == pytest.approx(p["base"] - p["amplitude"], abs=5 * p["noise"] + 0.01)


def test_simulated_clamps_to_min_and_max():
    values = series(name="light", base=20, amplitude=70, period_s=60, noise=0.5, min=0, max=100, decimals=1)
    assert min(values) == 0 and max(values) <= 100
    assert values.count(0) > 10  # night


def test_simulated_rounds_to_its_decimals():
    for v in series(n=50, decimals=1, base=1, amplitude=1, noise=0.3):
        assert v == round(v, 1)


def test_simulated_constant_without_amplitude_or_noise():
    assert set(series(n=20, base=1013.25)) == {1013.25}


def test_simulated_heap_sawtooth_is_deterministic():
    a, b = SimulatedHeap(100000, 9), SimulatedHeap(100000, 9)
    va = [a.read() for _ in range(500)]
    assert va == [b.read() for _ in range(500)]
    assert min(va) >= 40000 - 200 and max(va) <= 80000
