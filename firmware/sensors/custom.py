"""A sensor from the user's custom.py (extend.sensor), as the board file
names it: {"type": "custom", "sensor": "soil", "options": {...}}.

Whatever the user's code does, the device goes on: a class that fails to
be made, a read() that raises or returns something else than a number, or
a sensor that custom.py did not register (it failed to load) all read null
with the reason, which the page shows on the sensor's card.
"""

from sensors.base import Sensor, SensorFailure


class CustomSensor(Sensor):
    """reader: () -> number or None, or None when there is none (problem says why)."""

    def __init__(self, name, unit, decimals, reader, problem=None):
        Sensor.__init__(self, name, unit, decimals)
        self._reader = reader
        self._problem = problem

    def _read(self):
        if self._reader is None:
            raise SensorFailure(self._problem)
        value = self._reader()
        if value is not None and type(value) is not int and type(value) is not float:
            raise SensorFailure("read() gave a %s, not a number" % type(value).__name__)
        return value


def build_custom(spec, name, unit):
    from extend import SENSORS, status

    kind = spec["sensor"]
    registered = SENSORS.get(kind)
    decimals = spec.get("decimals")
    if registered is None:
        why = status["error"]
        problem = ("custom.py did not load: " + why) if why else ("no custom.py sensor named " + kind)
        return CustomSensor(name, unit, decimals, None, problem[:48])
    if decimals is None:
        decimals = registered["decimals"]
    make = registered["make"]
    options = spec.get("options") or {}
    if not isinstance(make, type):  # a function: called for each reading
        if options:
            return CustomSensor(name, unit, decimals, None, kind + " is a function: it takes no options")
        return CustomSensor(name, unit, decimals, make)
    try:
        instance = make(**options)
        reader = instance.read
    except Exception as error:  # noqa: BLE001 (a user's bug reads null with its reason)
        text = str(error)
        problem = type(error).__name__ + (": " + text if text else "")
        return CustomSensor(name, unit, decimals, None, (kind + ": " + problem)[:48])
    return CustomSensor(name, unit, decimals, reader)
