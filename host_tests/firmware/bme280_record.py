"""A BME280's registers as the chip reports them, for the fake I2C bus.

Calibration: the example trimming values Bosch prints in the BMP280/BME280
datasheets (dig_T1..dig_P9; with adc_T = 519888 and adc_P = 415148 the
datasheet's example gives 25.08 °C and 100653.27 Pa), plus humidity
trimming values typical of real chips.
"""
import struct

from fakes import FakeI2C

CAL = dict(T1=27504, T2=26435, T3=-1000,
           P1=36477, P2=-10685, P3=3024, P4=2855, P5=140, P6=-7, P7=15500, P8=-14600, P9=6000,
           H1=75, H2=370, H3=0, H4=309, H5=50, H6=30)
ADC_T, ADC_P, ADC_H = 519888, 415148, 30000


def calibration_registers(cal):
    """The two calibration blocks as the chip stores them."""
    tp = struct.pack("<HhhHhhhhhhhh", cal["T1"], cal["T2"], cal["T3"], cal["P1"], cal["P2"], cal["P3"],
                     cal["P4"], cal["P5"], cal["P6"], cal["P7"], cal["P8"], cal["P9"])
    tp += bytes([0x00, cal["H1"]])  # 0xA0 unused, 0xA1 dig_H1
    h4, h5 = cal["H4"] & 0xFFF, cal["H5"] & 0xFFF
    h = struct.pack("<hB", cal["H2"], cal["H3"]) + bytes([
        h4 >> 4,  # 0xE4: dig_H4[11:4]
        ((h5 & 0x0F) << 4) | (h4 & 0x0F),  # 0xE5: dig_H5[3:0] | dig_H4[3:0]
        h5 >> 4,  # 0xE6: dig_H5[11:4]
        cal["H6"] & 0xFF,  # 0xE7
    ])
    assert len(tp) == 26 and len(h) == 7
    return tp, h


def data_registers(adc_t, adc_p, adc_h):
    """0xF7..0xFE: press msb/lsb/xlsb, temp msb/lsb/xlsb, hum msb/lsb."""
    def twenty(v):
        return bytes([(v >> 12) & 0xFF, (v >> 4) & 0xFF, (v & 0x0F) << 4])
    return twenty(adc_p) + twenty(adc_t) + bytes([adc_h >> 8, adc_h & 0xFF])


def chip(cal=CAL, adc=(ADC_T, ADC_P, ADC_H), chip_id=0x60, address=0x76):
    tp, h = calibration_registers(cal)
    return FakeI2C(address, {0xD0: [chip_id], 0x88: tp, 0xE1: h, 0xF7: data_registers(*adc)})
