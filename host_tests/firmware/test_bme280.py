"""The BME280 driver against register bytes as a chip reports them
(bme280_record.py). The expected numbers are computed here,
independently, with the datasheet's floating-point formulas (section 8.1);
the driver uses the integer ones and must agree within their resolution.
"""
import pytest

from bme280_record import ADC_H, ADC_P, ADC_T, CAL, calibration_registers, chip
from sensors import bme280
from sensors.base import Shared, SharedValue


# ---- the datasheet's floating-point compensation, written out independently

def float_compensation(cal, adc_t, adc_p, adc_h):
    var1 = (adc_t / 16384.0 - cal["T1"] / 1024.0) * cal["T2"]
    var2 = ((adc_t / 131072.0 - cal["T1"] / 8192.0) ** 2) * cal["T3"]
    t_fine = var1 + var2
    temperature = t_fine / 5120.0

    var1 = t_fine / 2.0 - 64000.0
    var2 = var1 * var1 * cal["P6"] / 32768.0
    var2 = var2 + var1 * cal["P5"] * 2.0
    var2 = var2 / 4.0 + cal["P4"] * 65536.0
    var1 = (cal["P3"] * var1 * var1 / 524288.0 + cal["P2"] * var1) / 524288.0
    var1 = (1.0 + var1 / 32768.0) * cal["P1"]
    p = 1048576.0 - adc_p
    p = (p - var2 / 4096.0) * 6250.0 / var1
    var1 = cal["P9"] * p * p / 2147483648.0
    var2 = p * cal["P8"] / 32768.0
    pressure = p + (var1 + var2 + cal["P7"]) / 16.0

    h = t_fine - 76800.0
    h = (adc_h - (cal["H4"] * 64.0 + cal["H5"] / 16384.0 * h)) * (
        cal["H2"] / 65536.0 * (1.0 + cal["H6"] / 67108864.0 * h * (1.0 + cal["H3"] / 67108864.0 * h)))
    h = h * (1.0 - cal["H1"] * h / 524288.0)
    humidity = min(100.0, max(0.0, h))
    return temperature, pressure, humidity  # °C, Pa, %RH


def test_float_reference_reproduces_the_datasheet_example():
    t, p, _ = float_compensation(CAL, ADC_T, ADC_P, ADC_H)
    assert t == pytest.approx(25.08, abs=0.005)
    assert p == pytest.approx(100653.27, abs=0.01)


def test_bme280_calibration_decodes_every_word():
    tp, h = calibration_registers(CAL)
    cal = bme280.Calibration(tp, h)
    assert {k: getattr(cal, k) for k in CAL} == CAL


def test_bme280_calibration_decodes_negative_h4_h5():
    cal_values = dict(CAL, H4=-5, H5=-1000, H6=-20, H2=-3)
    tp, h = calibration_registers(cal_values)
    cal = bme280.Calibration(tp, h)
    assert (cal.H4, cal.H5, cal.H6, cal.H2) == (-5, -1000, -20, -3)


def test_bme280_integer_compensation_matches_datasheet_values():
    cal = bme280.Calibration(*calibration_registers(CAL))
    t, t_fine = bme280.compensate_temperature(cal, ADC_T)
    assert t == 2508  # 25.08 °C
    p = bme280.compensate_pressure(cal, ADC_P, t_fine)
    assert p / 256 == pytest.approx(100653.27, abs=0.5)


def test_bme280_reads_what_the_float_formulas_give():
    sensor = bme280.BME280(chip())
    t, h, p = sensor.read()
    ft, fp, fh = float_compensation(CAL, ADC_T, ADC_P, ADC_H)
    assert t == pytest.approx(ft, abs=0.01)
    assert p == pytest.approx(fp / 100, abs=0.01)  # hPa
    assert h == pytest.approx(fh, abs=0.05)
    assert 0 < h < 100


@pytest.mark.parametrize("adc", [
    (400000, 300000, 20000),
    (560000, 500000, 45000),
    (480000, 360000, 10000),
    (519888, 415148, 0),  # very dry: clamps at 0 %
    (519888, 415148, 65000),  # saturated: clamps at 100 %
])
def test_bme280_agrees_with_float_formulas_across_the_range(adc):
    t, h, p = bme280.BME280(chip(adc=adc)).read()
    ft, fp, fh = float_compensation(CAL, *adc)
    assert t == pytest.approx(ft, abs=0.01)
    assert p == pytest.approx(fp / 100, abs=0.01)
    assert h == pytest.approx(fh, abs=0.05)
    assert 0 <= h <= 100


def test_bme280_begin_checks_id_reads_calibration_and_starts_normal_mode():
    i2c = chip()
    sensor = bme280.BME280(i2c)
    sensor.begin()
    assert (0xD0, 1) in i2c.reads and (0x88, 26) in i2c.reads and (0xE1, 7) in i2c.reads
    # sleep first (config is ignored in normal mode), ctrl_hum before ctrl_meas
    assert i2c.writes == [
        (0xF4, bytes([0x00])),
        (0xF5, bytes([(1 << 5) | (2 << 2)])),  # standby 62.5 ms, IIR 4
        (0xF2, bytes([0x01])),  # humidity x1
        (0xF4, bytes([(2 << 5) | (5 << 2) | 3])),  # T x2, P x16, normal mode
    ]


def test_bme280_reads_data_in_one_burst():
    i2c = chip()
    sensor = bme280.BME280(i2c)
    sensor.read()
    i2c.reads.clear()
    sensor.read()
    assert i2c.reads == [(0xF7, 8)]


def test_bme280_wrong_chip_id_raises_oserror():
    with pytest.raises(OSError, match="no BME280 at 0x76"):
        bme280.BME280(chip(chip_id=0x55)).begin()


def test_bme280_absent_chip_raises_oserror():
    with pytest.raises(OSError):
        bme280.BME280(chip(address=0x77)).read()


def test_bmp280_gives_no_humidity():
    i2c = chip(chip_id=0x58)
    t, h, p = bme280.BME280(i2c).read()
    assert h is None and t == pytest.approx(25.08, abs=0.01)
    assert all(reg != 0xF2 for reg, _ in i2c.writes)


def test_bme280_value_not_measured_yet_is_none():
    # right after power-on the data registers hold 0x80000 / 0x8000
    t, h, p = bme280.BME280(chip(adc=(ADC_T, 0x80000, 0x8000))).read()
    assert t is not None and p is None and h is None
    assert bme280.BME280(chip(adc=(0x80000, 0x80000, 0x8000))).read() == (None, None, None)


def test_bme280_recovers_after_the_bus_fails():
    i2c = chip()
    sensor = bme280.BME280(i2c)
    sensor.read()
    i2c.fail = True
    with pytest.raises(OSError):
        sensor.read()
    i2c.fail = False
    i2c.writes.clear()
    assert sensor.read()[0] == pytest.approx(25.08, abs=0.01)
    assert i2c.writes, "begin() ran again after the failure"


def test_bme280_as_three_sensors_reads_the_chip_once_per_sample():
    i2c = chip()
    driver = bme280.BME280(i2c)
    shared = Shared(driver.read, 3)
    sensors = [SharedValue(shared, i, n) for i, n in enumerate(("temperature", "humidity", "pressure"))]
    for _ in range(3):
        i2c.reads.clear()
        values = [s.read() for s in sensors]
        assert [r for r in i2c.reads if r[0] == 0xF7] == [(0xF7, 8)]
        assert values[0] == pytest.approx(25.08, abs=0.01) and values[2] == pytest.approx(1006.53, abs=0.01)


def test_bme280_failed_read_is_none_for_every_value():
    i2c = chip()
    shared = Shared(bme280.BME280(i2c).read, 3)
    sensors = [SharedValue(shared, i, str(i)) for i in range(3)]
    i2c.fail = True
    assert [s.read() for s in sensors] == [None, None, None]
    i2c.fail = False
    assert None not in [s.read() for s in sensors]


def test_c_division_truncates_toward_zero():
    assert bme280._div(7, 2) == 3 and bme280._div(-7, 2) == -3 and bme280._div(7, -2) == -3
