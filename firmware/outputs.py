"""Things the dashboard can switch: an LED on a pin, or a simulated one.

An output has `name` and value() (read: True/False) / value(on) (set).
The state is kept here rather than read back from the pin: reading an
output pin is not reliable on every port.
"""


class PinOutput:
    """A pin driven high for on, or low for on with active_low (the
    ESP8266 NodeMCU LED). `pin` is a machine.Pin already set to OUT."""

    def __init__(self, name, pin, active_low=False):
        self.name = name
        self._pin = pin
        self._active_low = active_low
        self.value(False)

    def value(self, on=None):
        if on is None:
            return self._on
        self._on = bool(on)
        self._pin.value(0 if self._on == self._active_low else 1)
        return self._on


class SimulatedLed:
    """The host's LED: says `LED on` / `LED off` in the terminal."""

    def __init__(self, name="led", out=print):
        self.name = name
        self._out = out
        self._on = False

    def value(self, on=None):
        if on is None:
            return self._on
        self._on = bool(on)
        self._out("LED on" if self._on else "LED off")
        return self._on


def build_outputs(board, hw):
    """[the LED] from the board's "led" ([] without one); hw["machine"] on a
    board, none on the host (a SimulatedLed)."""
    led = board.get("led")
    if led is None:
        return []
    machine = (hw or {}).get("machine")
    if machine is None:
        return [SimulatedLed("led")]
    pin = machine.Pin(led["pin"], machine.Pin.OUT)
    return [PinOutput("led", pin, led.get("active_low", False))]
