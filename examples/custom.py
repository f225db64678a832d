"""An example custom.py: a soil moisture sensor, a command and two routes,
added to the device without changing the firmware (firmware/extend.py).

On a board: copy it next to main.py (python3 tools/deploy.py --custom
examples/custom.py) and name the sensor in the board file:
    {"type": "custom", "sensor": "soil", "options": {"pin": 32}}
On a laptop:
    python3 tools/simulate.py --board examples/host-custom.json --custom examples/custom.py
"""

from extend import command, route, sensor


@sensor("soil", unit="%", label="Soil moisture", decimals=1)
class Soil:
    """A capacitive soil probe on an ADC pin: `dry` and `wet` are its raw
    read_u16() values in air and in water. Without pins (a laptop) it
    pretends: a pot that dries out and is watered again."""

    def __init__(self, pin=32, dry=52000, wet=21000):
        self._dry = dry
        self._wet = wet
        self._adc = None
        try:
            import machine

            if hasattr(machine, "ADC") and hasattr(machine, "Pin"):
                self._adc = machine.ADC(machine.Pin(pin))
        except ImportError:  # CPython
            pass
        self._raw = wet

    def read(self):
        if self._adc is not None:
            raw = self._adc.read_u16()
        else:
            self._raw = self._raw + 97 if self._raw < self._dry else self._wet
            raw = self._raw
        percent = (self._dry - raw) * 100 / (self._dry - self._wet)
        return min(100.0, max(0.0, percent))


@command("beep", args={"ms": (int, 10, 2000), "times": (int, 1, 5, 1)})
def beep(device, args):
    """{"cmd":"beep","ms":200} -> ack with "beeped": 200, "times": 1. A real
    buzzer would start here and stop in a task of its own: a handler must
    not block the device."""
    print("beep: %d ms x %d" % (args["ms"], args["times"]))
    return {"beeped": args["ms"], "times": args["times"]}


@route("/soil")
def soil(device, request):
    """GET /soil: the last reading as JSON, for a script or a home server."""
    return {"soil": device.value("soil"), "unit": "%"}


@route("/ws/soil", websocket=True)
async def soil_stream(device, ws):
    """A WebSocket of its own: answers every message with the last reading."""
    async for message in ws:
        await ws.send('{"soil":%s}' % ("null" if device.value("soil") is None else device.value("soil")))
