"""The port's optional modules, found once: what `hw` means everywhere.

A board has some of machine, dht, esp32, network; the host has none of
them, and the firmware then simulates what they would give.
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
    if seed is not None:
        hw["seed"] = seed
    if clock is not None:
        hw["clock"] = clock
    return hw
