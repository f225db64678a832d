"""Bosch BME280 (temperature, pressure, humidity) over I2C.

Written from the Bosch datasheet (BST-BME280-DS002): calibration words at
0x88..0xA1 and 0xE1..0xE7, settings in ctrl_hum (0xF2), ctrl_meas (0xF4)
and config (0xF5), the burst of raw readings at 0xF7..0xFE, and the
datasheet's integer compensation (section 4.2.3 / 8.2), which needs no float
unit and gives the same numbers on every port. A BMP280 (chip id 0x58, the
same part without humidity) also works; its humidity reads None.

The I2C object is passed in (machine.I2C or SoftI2C on a board, a fake in
tests): only readfrom_mem(addr, reg, n) and writeto_mem(addr, reg, buf).
"""

ADDRESS = 0x76  # SDO to GND; 0x77 with SDO to VDDIO

REG_CALIB_TP = 0x88  # 26 bytes: dig_T1..dig_P9, one unused, dig_H1 (0xA1)
REG_CHIP_ID = 0xD0
REG_CALIB_H = 0xE1  # 7 bytes: dig_H2..dig_H6
REG_CTRL_HUM = 0xF2
REG_CTRL_MEAS = 0xF4
REG_CONFIG = 0xF5
REG_DATA = 0xF7  # 8 bytes: press[3], temp[3], hum[2]

CHIP_ID_BME280 = 0x60
CHIP_IDS_BMP280 = (0x56, 0x57, 0x58)

# Register field codes (datasheet 5.4)
OVERSAMPLE = {0: 0, 1: 1, 2: 2, 4: 3, 8: 4, 16: 5}  # times -> osrs code
FILTER = {0: 0, 2: 1, 4: 2, 8: 3, 16: 4}  # IIR coefficient -> code
STANDBY_62_5_MS = 1
MODE_NORMAL = 3

SKIPPED_TP = 0x80000  # what a skipped (or not yet made) measurement reads
SKIPPED_H = 0x8000


def _u16(b, i):
    return b[i] | (b[i + 1] << 8)


def _s16(b, i):
    v = b[i] | (b[i + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


def _signed(v, bits):
    return v - (1 << bits) if v & (1 << (bits - 1)) else v


def _div(a, b):
    """C's integer division (truncates toward zero); Python's // floors."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


class Calibration:
    """The factory trimming words, decoded from the two register blocks."""

    def __init__(self, tp, h):
        self.T1 = _u16(tp, 0)
        self.T2 = _s16(tp, 2)
        self.T3 = _s16(tp, 4)
        self.P1 = _u16(tp, 6)
        self.P2 = _s16(tp, 8)
        self.P3 = _s16(tp, 10)
        self.P4 = _s16(tp, 12)
        self.P5 = _s16(tp, 14)
        self.P6 = _s16(tp, 16)
        self.P7 = _s16(tp, 18)
        self.P8 = _s16(tp, 20)
        self.P9 = _s16(tp, 22)
        self.H1 = tp[25]
        self.H2 = _s16(h, 0)
        self.H3 = h[2]
        # dig_H4 and dig_H5 are 12-bit signed values sharing register 0xE5.
        self.H4 = _signed((h[3] << 4) | (h[4] & 0x0F), 12)
        self.H5 = _signed((h[5] << 4) | (h[4] >> 4), 12)
        self.H6 = _signed(h[6], 8)


def compensate_temperature(cal, adc_t):
    """(temperature in 0.01 °C, t_fine); t_fine feeds the other two."""
    var1 = (((adc_t >> 3) - (cal.T1 << 1)) * cal.T2) >> 11
    d = (adc_t >> 4) - cal.T1
    var2 = (((d * d) >> 12) * cal.T3) >> 14
    t_fine = var1 + var2
    return (t_fine * 5 + 128) >> 8, t_fine


def compensate_pressure(cal, adc_p, t_fine):
    """Pressure in Pa as Q24.8 (divide by 256), the 64-bit variant."""
    var1 = t_fine - 128000
    var2 = var1 * var1 * cal.P6
    var2 += (var1 * cal.P5) << 17
    var2 += cal.P4 << 35
    var1 = ((var1 * var1 * cal.P3) >> 8) + ((var1 * cal.P2) << 12)
    var1 = (((1 << 47) + var1) * cal.P1) >> 33
    if var1 == 0:
        return 0  # would divide by zero (uncalibrated chip)
    p = 1048576 - adc_p
    p = _div(((p << 31) - var2) * 3125, var1)
    var1 = (cal.P9 * (p >> 13) * (p >> 13)) >> 25
    var2 = (cal.P8 * p) >> 19
    return ((p + var1 + var2) >> 8) + (cal.P7 << 4)


def compensate_humidity(cal, adc_h, t_fine):
    """Relative humidity in % as Q22.10 (divide by 1024), 0..100 %."""
    v = t_fine - 76800
    v = ((((adc_h << 14) - (cal.H4 << 20) - (cal.H5 * v)) + 16384) >> 15) * (
        ((((((v * cal.H6) >> 10) * (((v * cal.H3) >> 11) + 32768)) >> 10) + 2097152) * cal.H2 + 8192) >> 14
    )
    v -= ((((v >> 15) * (v >> 15)) >> 7) * cal.H1) >> 4
    if v < 0:
        v = 0
    elif v > 419430400:
        v = 419430400
    return v >> 12


class BME280:
    """The chip in normal mode: it measures continuously (oversampling
    T x2, P x16, H x1, IIR filter 4, 62.5 ms standby: about 9 readings/s),
    so read() only fetches the latest result and never waits."""

    def __init__(self, i2c, address=ADDRESS, temperature_os=2, pressure_os=16, humidity_os=1, iir=4):
        self.i2c = i2c
        self.address = address
        self._os = (OVERSAMPLE[temperature_os], OVERSAMPLE[pressure_os], OVERSAMPLE[humidity_os])
        self._iir = FILTER[iir]
        self.calibration = None
        self.has_humidity = True

    def _read(self, reg, n):
        return self.i2c.readfrom_mem(self.address, reg, n)

    def _write(self, reg, value):
        self.i2c.writeto_mem(self.address, reg, bytes((value,)))

    def begin(self):
        """Check the chip id, load the calibration, start measuring.
        Raises OSError when no BME280/BMP280 answers."""
        chip = self._read(REG_CHIP_ID, 1)[0]
        if chip != CHIP_ID_BME280 and chip not in CHIP_IDS_BMP280:
            raise OSError("no BME280 at 0x%02x (chip id 0x%02x)" % (self.address, chip))
        self.has_humidity = chip == CHIP_ID_BME280
        tp = self._read(REG_CALIB_TP, 26)
        h = self._read(REG_CALIB_H, 7) if self.has_humidity else bytes(7)
        self.calibration = Calibration(tp, h)
        osrs_t, osrs_p, osrs_h = self._os
        # config is only written reliably in sleep mode, and ctrl_hum takes
        # effect at the next ctrl_meas write: so sleep, config, hum, meas.
        self._write(REG_CTRL_MEAS, 0)
        self._write(REG_CONFIG, (STANDBY_62_5_MS << 5) | (self._iir << 2))
        if self.has_humidity:
            self._write(REG_CTRL_HUM, osrs_h)
        self._write(REG_CTRL_MEAS, (osrs_t << 5) | (osrs_p << 2) | MODE_NORMAL)

    def read_raw(self):
        """(adc_T, adc_P, adc_H) from one burst read, so all three belong
        to the same measurement."""
        d = self._read(REG_DATA, 8)
        adc_p = (d[0] << 12) | (d[1] << 4) | (d[2] >> 4)
        adc_t = (d[3] << 12) | (d[4] << 4) | (d[5] >> 4)
        adc_h = (d[6] << 8) | d[7]
        return adc_t, adc_p, adc_h

    def read_compensated(self):
        """(0.01 °C, Pa/256, %RH/1024) as integers; None for a value the
        chip has not measured yet; None for all when there is no reading."""
        if self.calibration is None:
            self.begin()
        cal = self.calibration
        adc_t, adc_p, adc_h = self.read_raw()
        if adc_t == SKIPPED_TP:
            return None, None, None
        t, t_fine = compensate_temperature(cal, adc_t)
        p = None if adc_p == SKIPPED_TP else compensate_pressure(cal, adc_p, t_fine)
        h = None
        if self.has_humidity and adc_h != SKIPPED_H:
            h = compensate_humidity(cal, adc_h, t_fine)
        return t, p, h

    def read(self):
        """(temperature °C, humidity %RH, pressure hPa) as floats (None for
        a missing value). A bus error raises OSError and makes the next call
        start over with begin(), so a re-plugged sensor comes back."""
        try:
            t, p, h = self.read_compensated()
        except OSError:
            self.calibration = None
            raise
        return (
            None if t is None else t / 100,
            None if h is None else h / 1024,
            None if p is None else p / 25600,
        )


def i2c_bus(spec, machine):
    """The board's I2C bus (its board file's "i2c"): hardware bus `bus` if
    given, else SoftI2C (any pins, every port)."""
    spec = spec or {}
    if machine is None or "sda" not in spec:
        raise OSError("no I2C bus on this board")
    Pin = machine.Pin
    freq = spec.get("freq", 100000)
    if "bus" in spec:
        return machine.I2C(spec["bus"], sda=Pin(spec["sda"]), scl=Pin(spec["scl"]), freq=freq)
    return machine.SoftI2C(sda=Pin(spec["sda"]), scl=Pin(spec["scl"]), freq=freq)


def measure_later(i2c_spec, machine, address):
    """measure() for sensors.base.Shared: bus and driver are made at the first
    call, so nothing touches the hardware at start. Here, not in the factory,
    because the closure keeps its module alive."""
    driver = []

    def measure():
        if not driver:
            driver.append(BME280(i2c_bus(i2c_spec, machine), address))
        return driver[0].read()

    return measure
