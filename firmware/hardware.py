"""The port's optional modules, found once: what `hw` means everywhere.

A board has some of machine, dht, esp32, network; the host has none of
them, and the firmware then simulates what they would give. MicroPython's
unix port has a `machine` without pins (no Pin, ADC, I2C): that counts as
none, so the simulated LED and sensors run there as on CPython. There
(the host) the wall-clock time is known at once: hw["host_time"].
"""


def _optional(name):
    try:
        return __import__(name)
    except ImportError:
        return None


def hardware(seed=None, clock=None):
    """The `hw` dict that sensors, outputs and the app take."""
    hw = {}
    for name in ("machine", "dht", "esp32", "network", "gc"):
        hw[name] = _optional(name)
    if hw["machine"] is not None and not hasattr(hw["machine"], "Pin"):
        hw["machine"] = None  # the unix port's
    if hw["machine"] is None:  # the host: its own clock (a board asks NTP or a dashboard)
        from wallclock import host_unix_ms

        hw["host_time"] = host_unix_ms
    if seed is not None:
        hw["seed"] = seed
    if clock is not None:
        hw["clock"] = clock
    return hw
