"""DHT11 / DHT22 through MicroPython's `dht` module (passed in).

One measure() gives both temperature and humidity; the factory shares it
between two sensors (sensors.base.Shared). The chips need a rest between
measurements (datasheets: DHT11 1 s, DHT22 2 s); asked sooner they fail,
so Shared repeats the last values until then.
"""

MIN_INTERVAL_MS = {"dht11": 1000, "dht22": 2000}


class DhtReader:
    """measure() -> (temperature °C, humidity %RH); raises OSError when the
    chip does not answer or the checksum is wrong."""

    def __init__(self, dht, machine, pin, kind="dht22"):
        self._dht = dht
        self._machine = machine
        self._pin = pin
        self._kind = kind
        self._chip = None

    def measure(self):
        if self._chip is None:
            make = self._dht.DHT11 if self._kind == "dht11" else self._dht.DHT22
            self._chip = make(self._machine.Pin(self._pin))
        self._chip.measure()
        return (self._chip.temperature(), self._chip.humidity())
