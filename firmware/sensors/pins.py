"""Sensors on a pin: an analog input (scaled) and a digital input.

`machine` is passed in; pins are claimed at the first read, so building the
sensor list touches no hardware.
"""

from sensors.base import Sensor

FULL_SCALE = 65535  # ADC.read_u16(), the same on every port


class AdcSensor(Sensor):
    """An analog input mapped to `offset + fraction * scale` (fraction of
    full scale, 0..1; `invert` uses 1 - fraction, e.g. for a light sensor
    whose voltage falls with light).

    `pin` is a GPIO number (ADC(Pin(pin))); `channel` an ADC channel number
    for ports that want one (ESP8266: ADC(0)).
    """

    def __init__(self, machine, name, unit="", pin=None, channel=None, scale=1.0, offset=0.0,
                 invert=False, decimals=2):
        Sensor.__init__(self, name, unit, decimals)
        self._machine = machine
        self._pin = pin
        self._channel = channel
        self._scale = scale
        self._offset = offset
        self._invert = invert
        self._adc = None

    def _open(self):
        machine = self._machine
        if self._channel is not None:
            adc = machine.ADC(self._channel)
        else:
            adc = machine.ADC(machine.Pin(self._pin))
        # ESP32: the default 0 dB attenuation reads only up to about 1 V;
        # 11 dB covers (almost) 0..3.3 V, what a divider on 3V3 gives.
        if hasattr(adc, "atten") and hasattr(machine.ADC, "ATTN_11DB"):
            adc.atten(machine.ADC.ATTN_11DB)
        return adc

    def _read(self):
        if self._adc is None:
            self._adc = self._open()
        fraction = self._adc.read_u16() / FULL_SCALE
        if self._invert:
            fraction = 1 - fraction
        return self._offset + fraction * self._scale


class DigitalSensor(Sensor):
    """A digital input as 1 (active) or 0; `active_low` for a button to
    ground with the pull-up on."""

    def __init__(self, machine, name, pin, pull=None, active_low=False, unit=""):
        Sensor.__init__(self, name, unit)
        self._machine = machine
        self._pin_id = pin
        self._pull = pull
        self._active_low = active_low
        self._pin = None

    def _open(self):
        Pin = self._machine.Pin
        if self._pull == "up":
            return Pin(self._pin_id, Pin.IN, Pin.PULL_UP)
        if self._pull == "down":
            return Pin(self._pin_id, Pin.IN, Pin.PULL_DOWN)
        return Pin(self._pin_id, Pin.IN)

    def _read(self):
        if self._pin is None:
            self._pin = self._open()
        level = self._pin.value()
        return 1 if bool(level) != self._active_low else 0
