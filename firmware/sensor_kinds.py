"""The sensor kinds a board file may list, and the factory that builds them
(boardfile.check_spec checks a spec). Needed only to start: main.py drops
this module once the App is made, and nothing the sensors keep refers to it.

A sensor object has `name`, `unit` and read() -> number or None (see
sensors.base). A spec in a board file is a dict with a "type"; one spec may
give several values (dht22: temperature and humidity), each a sensor of its
own with a unique name. Modules of a kind are imported only when a board
uses it, which keeps the heap of a small board free.
"""

from checks import default_label

# type: (default names, units, allowed keys besides "type"). A None name
# must be given in the spec ("name"); kinds with several values take
# "names", a list of the same length, to rename them.
KINDS = {
    "internal_temp": (("mcu_temp",), ("°C",), ("name",)),
    "adc": ((None,), ("",), ("name", "unit", "pin", "channel", "scale", "offset", "invert", "decimals")),
    "digital": ((None,), ("",), ("name", "unit", "pin", "pull", "active_low")),
    "dht11": (("temperature", "humidity"), ("°C", "%"), ("pin", "names")),
    "dht22": (("temperature", "humidity"), ("°C", "%"), ("pin", "names")),
    "bme280": (("temperature", "humidity", "pressure"), ("°C", "%", "hPa"), ("address", "names")),
    "wifi_rssi": (("rssi",), ("dBm",), ("name",)),
    "free_heap": (("free_heap",), ("B",), ("name",)),
    "uptime": (("uptime",), ("s",), ("name",)),
    "simulated": ((None,), ("",), ("name", "unit", "base", "amplitude", "period_s", "phase",
                                   "noise", "min", "max", "decimals", "seed")),
    # a sensor of the user's custom.py (extend.py): "sensor" names it, "options" go to its class
    "custom": ((None,), ("",), ("sensor", "name", "unit", "decimals", "options")),
}
# Every kind also takes "show" ("chart" or "tile") and, for the page, "label"
# (kinds with several values: "labels", a list like "names").
TILE_KINDS = ("free_heap", "uptime", "wifi_rssi")  # status values: tiles unless "show" says otherwise


def describe(spec):
    """[(name, unit), ...] of the values a valid spec gives."""
    names, units, _ = KINDS[spec["type"]]
    if spec["type"] == "custom":
        from extend import SENSORS

        registered = SENSORS.get(spec["sensor"]) or {}
        return [(spec.get("name", spec["sensor"]), spec.get("unit", registered.get("unit", "")))]
    if len(names) == 1:
        return [(spec.get("name", names[0]), spec.get("unit", units[0]))]
    names = spec.get("names", names)
    return [(names[i], units[i]) for i in range(len(names))]


# ---------------------------------------------------------------- factory


def _default_clock():
    import time

    if hasattr(time, "ticks_ms"):
        return time.ticks_ms
    start = time.monotonic()
    return lambda: int((time.monotonic() - start) * 1000)


def _build(spec, wanted, board, hw, clock):
    """The sensors of one spec whose names are in `wanted` (a list of
    indexes into describe(spec))."""
    kind = spec["type"]
    named = describe(spec)
    name, unit = named[0]
    machine = hw.get("machine")
    if kind in ("dht11", "dht22", "bme280"):
        from sensors.base import Shared, SharedValue

        if kind == "bme280":
            from sensors.bme280 import measure_later

            shared = Shared(measure_later(board.get("i2c"), machine, spec.get("address", 0x76)), 3)
            decimals = (2, 1, 2)
        else:
            from sensors.dhtxx import MIN_INTERVAL_MS, DhtReader

            reader = DhtReader(hw.get("dht"), machine, spec["pin"], kind)
            shared = Shared(reader.measure, 2, MIN_INTERVAL_MS[kind], clock)
            decimals = (1, 1)
        return [SharedValue(shared, i, named[i][0], named[i][1], decimals[i]) for i in wanted]
    if kind == "custom":
        from sensors.custom import build_custom

        return [build_custom(spec, name, unit)]
    if kind == "simulated":
        from sensors.simulated import Simulated

        params = {}
        for key in ("base", "amplitude", "period_s", "phase", "noise", "min", "max", "decimals"):
            if key in spec:
                params[key] = spec[key]
        return [Simulated(name, unit, clock, spec.get("seed", hw.get("seed", 0)), **params)]
    if kind in ("adc", "digital"):
        from sensors import pins

        if kind == "adc":
            return [pins.AdcSensor(machine, name, unit, spec.get("pin"), spec.get("channel"),
                                   spec.get("scale", 1), spec.get("offset", 0),
                                   spec.get("invert", False), spec.get("decimals", 2))]
        return [pins.DigitalSensor(machine, name, spec["pin"], spec.get("pull"),
                                   spec.get("active_low", False), unit)]
    if kind == "free_heap":
        gc = hw.get("gc")
        if gc is not None and hasattr(gc, "mem_free"):
            from sensors.system import FreeHeap

            return [FreeHeap(gc.mem_free, name, unit)]
        from sensors.simulated import SimulatedHeap

        return [SimulatedHeap(board["heap_bytes"], hw.get("seed", 0), name, unit)]
    from sensors import system

    if kind == "uptime":
        return [system.UptimeSensor(clock, name, unit, hw.get("ticks_diff"))]
    if kind == "wifi_rssi":
        return [system.WifiRssi(hw.get("network"), name, unit)]
    if kind == "internal_temp":
        platform = hw.get("platform")
        if platform is None:
            import sys

            platform = sys.platform
        return [system.InternalTemp(name, unit, 1, hw.get("esp32"), machine, platform)]
    raise ValueError("unknown sensor type " + kind)


def _present(sensor, spec, index):
    """Set how the page shows a sensor: its label and "chart" or "tile"."""
    kind = spec["type"]
    label = spec.get("label")
    if "labels" in spec:
        label = spec["labels"][index]
    show = spec.get("show")
    if kind == "custom":
        from extend import SENSORS

        registered = SENSORS.get(spec["sensor"]) or {}
        label = label or registered.get("label")
        show = show or registered.get("show")
    sensor.label = label or default_label(sensor.name)
    sensor.show = show or ("tile" if kind in TILE_KINDS else "chart")


def build_sensors(board, config, hw):
    """The sensor objects to sample, in the order of the `s` messages.

    board: a checked board (boardfile.load_board); config: the parsed device
    config (its "sensors", a list of names, picks and orders them; None or
    absent: all of the board's, in board order); hw: a dict of what the
    port has: "machine", "dht", "esp32", "network", "gc" (modules, or None),
    "clock" (ticks_ms-like, default time.ticks_ms), "seed" (simulations),
    "platform" (default sys.platform). Nothing touches hardware here: pins
    and buses are claimed at the first read.
    """
    hw = hw or {}
    clock = hw.get("clock") or _default_clock()
    wanted = (config or {}).get("sensors")
    made = {}
    order = []
    for spec in board["sensors"]:
        named = describe(spec)
        indexes = [i for i in range(len(named)) if wanted is None or named[i][0] in wanted]
        if not indexes:
            continue
        for sensor in _build(spec, indexes, board, hw, clock):
            _present(sensor, spec, [n for n, _ in named].index(sensor.name))
            made[sensor.name] = sensor
            order.append(sensor.name)
    if wanted is not None:
        missing = [n for n in wanted if n not in made]
        if missing:
            raise ValueError("sensors: not on board " + board["name"] + ": " + ", ".join(missing))
        order = wanted
    return [made[n] for n in order]
