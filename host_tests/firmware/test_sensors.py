"""Sensors: the read() contract, each kind with fakes, and the factory."""
import os

import pytest

import boardfile
from fakes import Clock, FakeDhtModule, FakeMachine, FakeNetwork
from sensor_kinds import build_sensors, describe
from sensors.base import Sensor, Shared, SharedValue, quantize
from sensors.dhtxx import DhtReader
from sensors.pins import AdcSensor, DigitalSensor
from sensors.system import FreeHeap, InternalTemp, UptimeSensor, WifiRssi

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOARDS_DIR = os.path.join(ROOT, "boards")


def board(name):
    return boardfile.load_board(name, BOARDS_DIR)


# ------------------------------------------------------------------- base

class Raising(Sensor):
    def _read(self):
        raise OSError(110)


class Returning(Sensor):
    def __init__(self, value, decimals=None):
        Sensor.__init__(self, "x", "", decimals)
        self.value = value

    def _read(self):
        return self.value


def test_sensor_failed_read_returns_none():
    assert Raising("x").read() is None


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), None])
def test_sensor_not_a_finite_number_reads_none(value):
    assert Returning(value).read() is None


def test_sensor_rounds_floats_to_its_decimals():
    assert Returning(21.456, 1).read() == 21.5
    assert Returning(-3.25, 1).read() == -3.3
    assert Returning(7, 1).read() == 7


def test_quantize_rounds_half_away_from_zero_on_every_runtime():
    assert quantize(2.675, 2) in (2.67, 2.68)  # 2.675 is 2.67499.. as a double
    assert quantize(0.125, 2) == 0.13 and quantize(-0.125, 2) == -0.13
    assert quantize(1.5, None) == 1.5


def test_shared_measures_once_for_all_values_of_a_sample():
    calls = []

    def measure():
        calls.append(1)
        return (len(calls), -len(calls))

    shared = Shared(measure, 2)
    a, b = SharedValue(shared, 0, "a"), SharedValue(shared, 1, "b")
    assert (a.read(), b.read()) == (1, -1)
    assert (a.read(), b.read()) == (2, -2)
    assert len(calls) == 2


def test_shared_with_one_value_enabled_measures_every_read():
    calls = []
    shared = Shared(lambda: calls.append(1) or (1, 2), 2)
    b = SharedValue(shared, 1, "b")
    b.read(), b.read(), b.read()
    assert len(calls) == 3


# ------------------------------------------------------------------- DHT

def dht_pair(results, kind="dht22", clock=None):
    module = FakeDhtModule(results)
    machine = FakeMachine()
    clock = clock or Clock()
    reader = DhtReader(module, machine, 4, kind)
    shared = Shared(reader.measure, 2, 2000 if kind == "dht22" else 1000, clock)
    t = SharedValue(shared, 0, "temperature", "°C", 1)
    h = SharedValue(shared, 1, "humidity", "%", 1)
    return module, machine, clock, t, h


def test_dht_temperature_and_humidity_share_one_measure():
    module, machine, clock, t, h = dht_pair([(21.3, 40.1), (21.4, 40.5)])
    assert (t.read(), h.read()) == (21.3, 40.1)
    assert module.measures == 1
    clock.advance(2000)
    assert (t.read(), h.read()) == (21.4, 40.5)
    assert module.measures == 2
    assert module.made == [("DHT22", 4)]


def test_dht_is_not_asked_more_often_than_it_can_answer():
    module, _, clock, t, h = dht_pair([(21.3, 40.1), (22.0, 41.0)])
    t.read(), h.read()
    for _ in range(3):  # 2 Hz sampling of a DHT22
        clock.advance(500)
        assert (t.read(), h.read()) == (21.3, 40.1)
    assert module.measures == 1
    clock.advance(500)
    assert (t.read(), h.read()) == (22.0, 41.0)


def test_dht11_rests_one_second():
    module, _, clock, t, h = dht_pair([(20, 30)], kind="dht11")
    t.read(), h.read()
    clock.advance(1000)
    t.read(), h.read()
    assert module.measures == 2 and module.made[0][0] == "DHT11"


def test_dht_failed_measure_reads_none_for_both():
    module, _, clock, t, h = dht_pair([OSError(110), (21.0, 50.0)])
    assert (t.read(), h.read()) == (None, None)
    assert module.measures == 1
    clock.advance(2000)
    assert (t.read(), h.read()) == (21.0, 50.0)


def test_dht_survives_a_wrapping_clock():
    clock = Clock(start=2 ** 30 - 100)
    module, _, clock, t, h = dht_pair([(1, 2)], clock=clock)
    t.read(), h.read()
    clock.now = 50  # ticks_ms wrapped; plain subtraction is negative
    t.read(), h.read()
    assert module.measures == 2


def test_dht_without_dht_module_reads_none():
    shared = Shared(DhtReader(None, None, 4).measure, 2, 2000, Clock())
    assert SharedValue(shared, 0, "t").read() is None


# ----------------------------------------------------------------- system

def test_internal_temp_esp32_s3_reads_celsius():
    class Esp32:
        def mcu_temperature(self):
            return 41

    assert InternalTemp(esp32=Esp32()).read() == 41.0


def test_internal_temp_original_esp32_converts_fahrenheit():
    class Esp32:
        def raw_temperature(self):
            return 122

    assert InternalTemp(esp32=Esp32()).read() == 50.0


def test_internal_temp_rp2040_uses_adc4_and_datasheet_formula():
    raw = round(0.706 / 3.3 * 65535)  # 0.706 V is 27 °C
    machine = FakeMachine({4: [raw, round(0.6887 / 3.3 * 65535)]})
    sensor = InternalTemp(machine=machine, platform="rp2")
    assert sensor.read() == pytest.approx(27.0, abs=0.15)  # 1 LSB is 0.03 °C, then 1 decimal
    assert sensor.read() == pytest.approx(37.0, abs=0.15)  # 17.21 mV lower: 10 degrees warmer
    assert machine.adcs[0].source == 4


def test_internal_temp_is_none_where_there_is_none():
    assert InternalTemp(machine=FakeMachine(), platform="esp8266").read() is None
    assert InternalTemp().read() is None


def test_free_heap_reads_gc():
    assert FreeHeap(lambda: 81234).read() == 81234


def test_uptime_counts_seconds_across_a_tick_wrap(monkeypatch):
    import uptime

    period = 2 ** 30
    monkeypatch.setattr(uptime, "ticks_diff", lambda a, b: ((a - b + period // 2) % period) - period // 2)
    clock = Clock(start=period - 1500)
    sensor = UptimeSensor(clock)
    assert sensor.read() == (period - 1500) // 1000
    clock.now = 3500  # wrapped: 5 s later
    assert sensor.read() == (period - 1500 + 5000) // 1000


def test_wifi_rssi_reads_station_signal():
    net = FakeNetwork({"home": "pw"}, join_polls=0)
    sta = net.WLAN(net.STA_IF)
    sta.active(True)
    sta.connect("home", "pw")
    assert WifiRssi(net).read() == -61


def test_wifi_rssi_is_none_when_not_joined():
    assert WifiRssi(FakeNetwork()).read() is None
    assert WifiRssi(None).read() is None


# ------------------------------------------------------------------- pins

def test_adc_scales_full_range_to_percent_and_sets_attenuation():
    machine = FakeMachine({34: [0, 32768, 65535]})
    light = AdcSensor(machine, "light", "%", pin=34, scale=100, decimals=1)
    assert [light.read(), light.read(), light.read()] == [0.0, 50.0, 100.0]
    assert machine.adcs[0].attenuation == machine.ADC.ATTN_11DB


def test_adc_channel_offset_and_invert():
    machine = FakeMachine({0: [16384]})
    sensor = AdcSensor(machine, "level", channel=0, scale=10, offset=-5, invert=True)
    assert sensor.read() == pytest.approx(-5 + 0.75 * 10, abs=0.01)
    assert machine.adcs[0].source == 0


def test_adc_failure_reads_none():
    machine = FakeMachine({34: [OSError(5)]})
    assert AdcSensor(machine, "light", pin=34).read() is None


def test_adc_claims_the_pin_only_when_read():
    machine = FakeMachine({34: [1]})
    AdcSensor(machine, "light", pin=34)
    assert machine.adcs == []


def test_digital_active_low_button_with_pull_up():
    machine = FakeMachine()
    button = DigitalSensor(machine, "button", 0, pull="up", active_low=True)
    assert button.read() == 1  # the fake pin idles at 0: pressed
    pin = machine.pins[0]
    assert (pin.mode, pin.pull) == (pin.IN, pin.PULL_UP)
    pin.level = 1
    assert button.read() == 0


def test_digital_plain_input():
    machine = FakeMachine()
    sensor = DigitalSensor(machine, "door", 5)
    assert sensor.read() == 0
    machine.pins[5].level = 1
    assert sensor.read() == 1 and machine.pins[5].pull is None


# ---------------------------------------------------------------- factory

def test_build_sensors_host_gives_the_board_list_in_order():
    sensors = build_sensors(board("host"), None, {"clock": Clock(), "seed": 1})
    assert [(s.name, s.unit) for s in sensors] == [
        ("temperature", "°C"), ("humidity", "%"), ("pressure", "hPa"), ("light", "%"),
        ("free_heap", "B"), ("uptime", "s")]
    values = [s.read() for s in sensors]
    assert all(isinstance(v, (int, float)) for v in values), values


def test_build_sensors_config_picks_and_orders():
    sensors = build_sensors(board("host"), {"sensors": ["light", "temperature"]}, {"clock": Clock()})
    assert [s.name for s in sensors] == ["light", "temperature"]


def test_build_sensors_unknown_name_is_an_error():
    with pytest.raises(ValueError, match="not on board host: co2"):
        build_sensors(board("host"), {"sensors": ["co2"]}, {"clock": Clock()})


def test_build_sensors_esp32_with_fakes():
    from bme280_record import chip

    i2c = chip()
    machine = FakeMachine({34: [65535]}, i2c=i2c)

    class Esp32:
        def mcu_temperature(self):
            return 45

    class Gc:
        def mem_free(self):
            return 90000

    net = FakeNetwork()
    hw = {"machine": machine, "esp32": Esp32(), "network": net, "gc": Gc(), "clock": Clock(),
          "platform": "esp32"}
    sensors = build_sensors(board("esp32"), None, hw)
    assert machine.adcs == [] and machine.i2c_calls == [], "building touches no hardware"
    names = [s.name for s in sensors]
    assert names == ["temperature", "humidity", "pressure", "light", "boot_button", "mcu_temp", "rssi",
                     "free_heap", "uptime"]
    values = dict(zip(names, [s.read() for s in sensors]))
    assert values["temperature"] == pytest.approx(25.08, abs=0.01)
    assert values["pressure"] == pytest.approx(1006.53, abs=0.01)
    assert values["light"] == 100.0
    assert values["boot_button"] == 1
    assert values["mcu_temp"] == 45.0
    assert values["rssi"] is None  # not joined
    assert values["free_heap"] == 90000
    assert values["uptime"] == 0
    assert machine.i2c_calls == [("I2C", 0, 21, 22, 400000)]


def test_build_sensors_esp8266_dht_and_adc_channel():
    module = FakeDhtModule([(23.5, 55.0)])
    machine = FakeMachine({0: [0]})
    hw = {"machine": machine, "dht": module, "clock": Clock(), "platform": "esp8266",
          "network": FakeNetwork(), "gc": None}
    sensors = build_sensors(board("esp8266"), {"sensors": ["humidity", "temperature", "light"]}, hw)
    assert [s.read() for s in sensors] == [55.0, 23.5, 0.0]
    assert module.measures == 1 and module.made == [("DHT22", 14)]
    assert machine.adcs[0].source == 0


def test_build_sensors_without_hardware_reads_none_not_raises():
    sensors = build_sensors(board("picow"), None, {"clock": Clock(), "platform": "rp2"})
    values = {s.name: s.read() for s in sensors}
    assert values["temperature"] is None and values["light"] is None and values["mcu_temp"] is None
    assert values["uptime"] == 0


def test_build_sensors_soft_i2c_without_bus_number():
    from bme280_record import chip

    b = board("esp8266")
    b = dict(b, sensors=[{"type": "bme280"}])
    machine = FakeMachine(i2c=chip())
    sensors = build_sensors(b, None, {"machine": machine, "clock": Clock()})
    assert sensors[0].read() == pytest.approx(25.08, abs=0.01)
    assert machine.i2c_calls == [("SoftI2C", 4, 5, 100000)]


def test_build_sensors_host_free_heap_is_a_sawtooth_within_the_heap():
    sensors = build_sensors(board("host"), {"sensors": ["free_heap"]}, {"clock": Clock(), "seed": 3})
    values = [sensors[0].read() for _ in range(1000)]
    heap = board("host")["heap_bytes"]
    assert all(0 < v < heap for v in values)
    rises = sum(1 for a, b in zip(values, values[1:]) if b > a)
    assert 1 <= rises < 20  # mostly falling, now and then a collection


def test_describe_renamed_values():
    spec = {"type": "dht22", "pin": 4, "names": ["t_out", "h_out"]}
    assert describe(spec) == [("t_out", "°C"), ("h_out", "%")]
    assert describe({"type": "uptime", "name": "up"}) == [("up", "s")]


def test_uptime_takes_the_clocks_own_ticks_diff_and_accumulates_over_many_wraps():
    from uptime import Uptime

    period = 2 ** 30

    def diff(a, b):
        return ((a - b + period // 2) % period) - period // 2

    total = [0]
    up = Uptime(lambda: total[0] % period, diff)
    for _ in range(24 * 60):  # 60 days, looked at every hour
        total[0] += 3600 * 1000
        up.ms()
    assert up.seconds() == 60 * 86400


# ------------------------------------------------------------------- labels and tiles

def test_sensors_get_labels_and_status_values_are_tiles():
    spec = [{"type": "simulated", "name": "soil_moisture"}, {"type": "free_heap", "label": "Free memory"},
            {"type": "uptime"}, {"type": "wifi_rssi", "show": "chart"}, {"type": "internal_temp"},
            {"type": "bme280", "labels": ["Air", "Damp", "Pressure"], "show": "tile"}]
    b = dict(board("host"), sensors=spec, i2c={"sda": 1, "scl": 2})
    boardfile.check_board(b, "test")
    made = build_sensors(b, None, {"clock": Clock()})
    assert [(s.name, s.label, s.show) for s in made] == [
        ("soil_moisture", "Soil moisture", "chart"), ("free_heap", "Free memory", "tile"),
        ("uptime", "Uptime", "tile"), ("rssi", "Rssi", "chart"), ("mcu_temp", "Mcu temp", "chart"),
        ("temperature", "Air", "tile"), ("humidity", "Damp", "tile"), ("pressure", "Pressure", "tile")]


@pytest.mark.parametrize("spec, problem", [
    ({"type": "uptime", "label": ""}, "label: must be a text of 1 to 32 characters"),
    ({"type": "uptime", "label": "x" * 33}, "label: must be a text of 1 to 32 characters"),
    ({"type": "uptime", "show": "gauge"}, 'show: must be "chart" or "tile"'),
    ({"type": "dht22", "pin": 4, "label": "T"}, "label: unknown for type dht22"),
    ({"type": "dht22", "pin": 4, "labels": ["T"]}, "labels: must be a list of 2 texts"),
])
def test_bad_labels_and_show_name_the_field(spec, problem):
    from boardfile import check_spec

    with pytest.raises(ValueError) as raised:
        check_spec(spec)
    assert problem in str(raised.value)
