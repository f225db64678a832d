"""Things the dashboard can switch or set: relays and LEDs (switch), and
PWM outputs with a range (a fan, a dimmer), each named in the board file.

An output has `name`, `label`, `kind` ("switch" or "pwm") and value()
(read the state) / value(v) (set it: True/False for a switch, a number in
min..max for a pwm, which also has `min`, `max` and `unit`). The state is
kept here rather than read back from the pin: reading an output pin is not
reliable on every port. The board's "led" is the switch named "led".
boardfile.check_output checks their specs.
"""

from checks import default_label, fmt, is_bool, is_number

PWM_FREQ = 1000  # Hz, the default; the ESP8266 allows at most 1 kHz
DUTY_FULL = 65535  # machine.PWM.duty_u16


class Output:
    """What every output has; value() is the subclass's."""

    kind = "switch"

    def __init__(self, name, label=None):
        self.name = name
        self.label = label or default_label(name)

    def control(self):
        """The output's entry in hello's `controls`."""
        return {"name": self.name, "label": self.label, "kind": self.kind}

    def check(self, value):
        """The problem with a new state, or None."""
        return None if is_bool(value) else "on must be true or false"


class PinOutput(Output):
    """A pin driven high for on, or low for on with active_low (the
    ESP8266 NodeMCU LED). `pin` is a machine.Pin already set to OUT."""

    def __init__(self, name, pin, active_low=False, label=None):
        Output.__init__(self, name, label)
        self._pin = pin
        self._active_low = active_low
        self.value(False)

    def value(self, on=None):
        if on is None:
            return self._on
        self._on = bool(on)
        self._pin.value(0 if self._on == self._active_low else 1)
        return self._on


class SimulatedSwitch(Output):
    """A switch on the host: says `LED on` / `Relay off` in the terminal."""

    def __init__(self, name="led", out=print, label=None):
        Output.__init__(self, name, label or ("LED" if name == "led" else None))
        self._out = out
        self._on = False

    def value(self, on=None):
        if on is None:
            return self._on
        self._on = bool(on)
        self._out(self.label + (" on" if self._on else " off"))
        return self._on


class Pwm(Output):
    """A number in min..max, mapped linearly onto the duty cycle (min: 0,
    max: full). `pwm` is a machine.PWM, or None on the host, where the
    value is printed instead."""

    kind = "pwm"

    def __init__(self, name, low, high, unit="", initial=None, pwm=None, label=None, out=print):
        Output.__init__(self, name, label)
        self.min = low
        self.max = high
        self.unit = unit
        self._pwm = pwm
        self._out = out
        self._value = low if initial is None else initial
        if pwm is not None:
            self._drive(self._value)

    def control(self):
        entry = Output.control(self)
        entry["min"] = self.min
        entry["max"] = self.max
        entry["unit"] = self.unit
        return entry

    def range_text(self):
        return "a number from %s to %s" % (fmt(self.min), fmt(self.max))

    def check(self, value):
        if not is_number(value) or not self.min <= value <= self.max:
            return "value must be " + self.range_text()
        return None

    def duty(self, value):
        """The duty_u16 for a value."""
        return int((value - self.min) * DUTY_FULL / (self.max - self.min) + 0.5)

    def value(self, value=None):
        if value is None:
            return self._value
        self._value = value
        if self._pwm is None:
            self._out("%s %s%s" % (self.label, fmt(value), (" " + self.unit) if self.unit else ""))
        else:
            self._drive(value)
        return value

    def _drive(self, value):
        if hasattr(self._pwm, "duty_u16"):
            self._pwm.duty_u16(self.duty(value))
        else:  # older ESP8266 firmware: duty 0..1023
            self._pwm.duty(self.duty(value) >> 6)
