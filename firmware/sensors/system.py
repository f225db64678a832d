"""Sensors the board has without wiring: chip temperature, Wi-Fi signal,
free heap, uptime. Port modules (esp32, machine, network) are passed in, so
nothing here imports a board-only module.
"""

from sensors.base import Sensor
from uptime import Uptime

# RP2040 datasheet, 4.9.5: the sensor reads 0.706 V at 27 °C and falls by
# 1.721 mV per degree; ADC channel 4, 3.3 V reference, read_u16 full scale.
RP2_TEMP_CHANNEL = 4
RP2_VREF = 3.3
RP2_V27 = 0.706
RP2_SLOPE = 0.001721


class InternalTemp(Sensor):
    """The MCU's own temperature (°C): runs warmer than the room, useful as
    a health value. None where the port has no sensor (ESP8266)."""

    def __init__(self, name="mcu_temp", unit="°C", decimals=1, esp32=None, machine=None, platform=""):
        Sensor.__init__(self, name, unit, decimals)
        self._esp32 = esp32
        self._machine = machine
        self._platform = platform
        self._adc = None

    def _read(self):
        esp32 = self._esp32
        if esp32 is not None:
            if hasattr(esp32, "mcu_temperature"):  # S2, S3, C3, C6: °C
                return float(esp32.mcu_temperature())
            return (esp32.raw_temperature() - 32) * 5 / 9  # original ESP32: °F
        if self._platform == "rp2" and self._machine is not None:
            if self._adc is None:
                self._adc = self._machine.ADC(RP2_TEMP_CHANNEL)
            volts = self._adc.read_u16() * RP2_VREF / 65535
            return 27 - (volts - RP2_V27) / RP2_SLOPE
        return None


class FreeHeap(Sensor):
    """Free heap in bytes (gc.mem_free): a leak shows as a falling line."""

    def __init__(self, mem_free, name="free_heap", unit="B"):
        Sensor.__init__(self, name, unit)
        self._mem_free = mem_free

    def _read(self):
        return self._mem_free()


class UptimeSensor(Sensor):
    """Seconds since boot; a drop to zero on the chart shows a reset."""

    def __init__(self, clock, name="uptime", unit="s", diff=None):
        Sensor.__init__(self, name, unit)
        self._uptime = Uptime(clock, diff)

    def keep_time(self):
        """Called every minute (App), so a wrap of ticks between samples
        cannot be missed."""
        self._uptime.ms()

    def _read(self):
        return self._uptime.seconds()


class WifiRssi(Sensor):
    """Signal strength of the joined network (dBm); None when not joined
    (access point mode)."""

    def __init__(self, network, name="rssi", unit="dBm"):
        Sensor.__init__(self, name, unit)
        self._network = network
        self._wlan = None

    def _read(self):
        if self._wlan is None:
            self._wlan = self._network.WLAN(self._network.STA_IF)
        if not self._wlan.isconnected():
            return None
        return self._wlan.status("rssi")
