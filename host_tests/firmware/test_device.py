"""Device: hello, samples, and an answer to every command, good or bad."""
import json
import os

import pytest

import boardfile
import device
from device import Device
from fakes import Clock, FakeMachine
from output_kinds import build_outputs
from outputs import Output, PinOutput, SimulatedSwitch
from sensors.base import Sensor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOARD = boardfile.load_board("esp32", os.path.join(ROOT, "boards"))


class Fixed(Sensor):
    def __init__(self, name, unit, values):
        Sensor.__init__(self, name, unit)
        self.values = list(values)

    def _read(self):
        v = self.values.pop(0) if len(self.values) > 1 else self.values[0]
        if isinstance(v, Exception):
            raise v
        return v


class Rude:
    """A sensor that breaks the contract and raises from read()."""
    name, unit = "rude", ""

    def read(self):
        raise RuntimeError("boom")


def make(config=None, sensors=None, outputs=None, clock=None, mem=lambda: (81234, 30122)):
    led_lines = []
    if outputs is None:
        outputs = [SimulatedSwitch("led", led_lines.append)]
    cfg = {"device_name": "microws-3f2a", "rate": 2.0}
    cfg.update(config or {})
    if sensors is None:
        sensors = [Fixed("temperature", "°C", [21.53]), Fixed("humidity", "%", [45.2])]
    dev = Device(BOARD, cfg, sensors, outputs, clock or Clock(521000), mem)
    dev.led_lines = led_lines
    return dev


def compact(text):
    """Protocol texts are compact JSON: no space outside strings."""
    assert text == json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":")) or \
        text == json.dumps(json.loads(text), separators=(",", ":")), text
    return json.loads(text)


def command(dev, obj, **kw):
    text = obj if isinstance(obj, str) else json.dumps(obj)
    reply, broadcast = dev.handle_command(text, **kw)
    return compact(reply), (compact(broadcast) if broadcast is not None else None)


# -------------------------------------------------------------- messages

def test_hello_describes_the_device():
    msg = compact(make().hello())
    assert msg == {
        "t": "hello", "device": "microws-3f2a", "board": "esp32", "fw": device.FW_VERSION,
        "rate": 2.0, "min_rate": 0.1, "max_rate": 20.0,
        "sensors": [{"name": "temperature", "unit": "°C", "label": "Temperature", "show": "chart"},
                    {"name": "humidity", "unit": "%", "label": "Humidity", "show": "chart"}],
        "controls": [{"name": "led", "label": "LED", "kind": "switch"}],
        "outputs": {"led": False}, "readonly": False,
        "clock": False, "history": BOARD.get("history", 0), "commands": [],
    }


def test_hello_readonly_client():
    assert compact(make().hello(readonly=True))["readonly"] is True


def test_hello_without_device_name_uses_microws():
    assert compact(make({"device_name": ""}).hello())["device"] == "microws"


def test_sample_is_compact_and_exact():
    assert make().sample() == '{"t":"s","seq":0,"ms":521000,"v":[21.53,45.2]}'


def test_sample_seq_counts_from_zero_and_ms_follows_the_clock():
    clock = Clock(1000)
    dev = make(clock=clock)
    seqs = []
    for _ in range(3):
        msg = compact(dev.sample())
        seqs.append((msg["seq"], msg["ms"]))
        clock.advance(500)
    assert seqs == [(0, 1000), (1, 1500), (2, 2000)]


def test_sample_failed_sensor_is_null_and_the_rest_goes_on():
    sensors = [Fixed("a", "", [OSError(5)]), Fixed("b", "", [7]), Rude(), Fixed("c", "", [float("nan")])]
    dev = make(sensors=sensors)
    assert compact(dev.sample())["v"] == [None, 7, None, None]


def test_sample_with_no_sensors():
    assert compact(make(sensors=[]).sample())["v"] == []


def test_info_reports_memory_uptime_clients_and_drops():
    clock = Clock(5231400)
    dev = make(clock=clock)
    msg = compact(dev.info(clients=2, dropped=3))
    assert msg == {"t": "info", "device": "microws-3f2a", "board": "esp32", "fw": device.FW_VERSION,
                   "mem_free": 81234, "mem_alloc": 30122, "uptime_s": 5231, "clients": 2, "rate": 2.0,
                   "outputs": {"led": False}, "dropped": 3}


def test_info_memory_is_null_on_cpython():
    dev = Device(BOARD, {"rate": 2}, [], [], Clock())
    msg = compact(dev.info())
    assert msg["mem_free"] is None and msg["mem_alloc"] is None


def test_state_message():
    assert compact(make().state()) == {"t": "state", "rate": 2.0, "outputs": {"led": False}, "clock": False}


def test_rate_defaults_to_config_then_board():
    assert make({"rate": 5}).rate == 5.0
    assert Device(BOARD, {}, [], [], Clock()).rate == 2.0


# -------------------------------------------------------------- commands

def test_command_rate_changes_rate_and_broadcasts_state():
    dev = make()
    reply, broadcast = command(dev, {"cmd": "rate", "rate": 5, "id": 1})
    assert reply == {"t": "ack", "id": 1, "cmd": "rate", "rate": 5.0}
    assert broadcast == {"t": "state", "rate": 5.0, "outputs": {"led": False}, "clock": False}
    assert dev.rate == 5.0 and type(dev.rate) is float


def test_command_rate_unchanged_broadcasts_nothing():
    reply, broadcast = command(make(), {"cmd": "rate", "rate": 2.0})
    assert reply == {"t": "ack", "cmd": "rate", "rate": 2.0} and broadcast is None


@pytest.mark.parametrize("rate", [0.1, 20, 20.0])
def test_command_rate_accepts_the_limits(rate):
    reply, _ = command(make(), {"cmd": "rate", "rate": rate})
    assert reply["t"] == "ack"


@pytest.mark.parametrize("rate, error", [
    (0.05, "rate must be between 0.1 and 20.0"),
    (21, "rate must be between 0.1 and 20.0"),
    (-1, "rate must be between 0.1 and 20.0"),
    ("5", "rate must be a number"),
    (True, "rate must be a number"),
    (None, "rate must be a number"),
    ([5], "rate must be a number"),
])
def test_command_rate_rejects_bad_values(rate, error):
    dev = make()
    reply, broadcast = command(dev, {"cmd": "rate", "rate": rate, "id": 7})
    assert reply == {"t": "error", "id": 7, "error": error}
    assert broadcast is None and dev.rate == 2.0


def test_command_rate_missing_value():
    reply, _ = command(make(), {"cmd": "rate"})
    assert reply == {"t": "error", "error": "missing rate"}


def test_command_led_switches_and_broadcasts_state():
    dev = make()
    reply, broadcast = command(dev, {"cmd": "led", "on": True, "id": 2})
    assert reply == {"t": "ack", "id": 2, "cmd": "led", "on": True}
    assert broadcast == {"t": "state", "rate": 2.0, "outputs": {"led": True}, "clock": False}
    assert dev.led_lines == ["LED on"]
    reply, broadcast = command(dev, {"cmd": "led", "on": False})
    assert reply == {"t": "ack", "cmd": "led", "on": False} and broadcast["outputs"] == {"led": False}
    assert dev.led_lines == ["LED on", "LED off"]


def test_command_led_same_state_broadcasts_nothing():
    _, broadcast = command(make(), {"cmd": "led", "on": False})
    assert broadcast is None


@pytest.mark.parametrize("on", [1, 0, "true", None, [True]])
def test_command_led_needs_a_boolean(on):
    dev = make()
    reply, broadcast = command(dev, {"cmd": "led", "on": on, "id": "x"})
    assert reply == {"t": "error", "id": "x", "error": "on must be true or false"}
    assert broadcast is None and dev.led_lines == []


def test_command_led_missing_on():
    reply, _ = command(make(), {"cmd": "led"})
    assert reply == {"t": "error", "error": "missing on (true or false)"}


def test_command_led_on_a_board_without_led_is_unknown():
    reply, _ = command(make(outputs=[]), {"cmd": "led", "on": True})
    assert reply == {"t": "error", "error": "unknown command: led"}


def test_command_info_answers_with_info():
    reply, broadcast = command(make(), {"cmd": "info", "id": 3}, clients=2, dropped=1)
    assert reply["t"] == "info" and reply["id"] == 3 and reply["clients"] == 2 and reply["dropped"] == 1
    assert broadcast is None


def test_command_info_without_id_has_no_id():
    reply, _ = command(make(), {"cmd": "info"})
    assert "id" not in reply


@pytest.mark.parametrize("msg_id", [0, 7, -1, 2.5, "abc", ""])
def test_command_id_is_echoed(msg_id):
    reply, _ = command(make(), {"cmd": "rate", "rate": 3, "id": msg_id})
    assert reply["id"] == msg_id


@pytest.mark.parametrize("msg_id", [True, [1], {"a": 1}])
def test_command_bad_id_is_an_error_without_echo(msg_id):
    dev = make()
    reply, broadcast = command(dev, {"cmd": "rate", "rate": 3, "id": msg_id})
    assert reply == {"t": "error", "error": "id must be a number or a string"}
    assert broadcast is None and dev.rate == 2.0


def test_command_null_id_means_no_id():
    reply, _ = command(make(), {"cmd": "rate", "rate": 3, "id": None})
    assert reply == {"t": "ack", "cmd": "rate", "rate": 3.0}


@pytest.mark.parametrize("text, error", [
    ("not json", "message is not valid JSON"),
    ("", "message is not valid JSON"),
    ('{"cmd": "rate"', "message is not valid JSON"),
    ("[1, 2]", "message must be a JSON object"),
    ('"rate"', "message must be a JSON object"),
    ("5", "message must be a JSON object"),
    ("null", "message must be a JSON object"),
    ("{}", "missing cmd"),
    ('{"rate": 5}', "missing cmd"),
    ('{"cmd": 5}', "cmd must be a string"),
    ('{"cmd": null}', "cmd must be a string"),
    ('{"cmd": "reboot"}', "unknown command: reboot"),
    ('{"cmd": ""}', "unknown command: "),
])
def test_command_malformed_gets_an_error(text, error):
    reply, broadcast = command(make(), text)
    assert reply == {"t": "error", "error": error}
    assert broadcast is None


def test_command_error_keeps_the_id_when_it_is_valid():
    reply, _ = command(make(), {"id": 9})
    assert reply == {"t": "error", "id": 9, "error": "missing cmd"}


def test_command_unknown_long_name_is_shortened():
    reply, _ = command(make(), {"cmd": "x" * 1000})
    assert reply["error"] == "unknown command: " + "x" * device.MAX_ECHO + "..."


def test_command_as_bytes_is_accepted():
    reply, _ = make().handle_command(b'{"cmd":"info"}')
    assert json.loads(reply)["t"] == "info"


def test_command_invalid_utf8_bytes():
    reply, _ = make().handle_command(b'{"cmd":"\xff"}')
    assert json.loads(reply) == {"t": "error", "error": "message is not UTF-8 text"}


def test_command_readonly_client_may_only_ask():
    dev = make()
    reply, broadcast = command(dev, {"cmd": "rate", "rate": 5}, readonly=True)
    assert reply["t"] == "error" and "read-only" in reply["error"] and dev.rate == 2.0
    reply, _ = command(dev, {"cmd": "led", "on": True}, readonly=True)
    assert reply["t"] == "error" and "read-only" in reply["error"] and dev.led_lines == []
    reply, _ = command(dev, {"cmd": "info"}, readonly=True)
    assert reply["t"] == "info"


def test_command_never_raises_even_when_an_output_breaks():
    class Broken(Output):
        def value(self, on=None):
            raise OSError(5)

    dev = make(outputs=[Broken("led")], sensors=[])
    reply, broadcast = dev.handle_command('{"cmd":"led","on":true}')
    assert json.loads(reply) == {"t": "error", "error": "internal error: OSError"}


def test_compact_fallback_encoder_matches_json():
    obj = {"t": "hello", "a": [1, 2.5, None, True, "x, y: z"], "o": {"led": False}, "u": "°C"}
    assert json.loads(device._compact(obj)) == obj
    assert " " not in device._compact({"a": [1, 2], "b": {"c": None}})


# --------------------------------------------------------------- outputs

def test_pin_output_active_high():
    machine = FakeMachine()
    (led,) = build_outputs({"led": {"pin": 2, "active_low": False}}, {"machine": machine})
    pin = machine.pins[2]
    assert pin.mode == pin.OUT and pin.writes == [0] and led.value() is False
    led.value(True)
    assert pin.level == 1 and led.value() is True


def test_pin_output_active_low_esp8266_led():
    machine = FakeMachine()
    (led,) = build_outputs({"led": {"pin": 2, "active_low": True}}, {"machine": machine})
    pin = machine.pins[2]
    assert pin.writes == [1]  # off at start: high
    led.value(True)
    assert pin.level == 0 and led.value() is True
    led.value(False)
    assert pin.level == 1


def test_pin_output_pico_w_led_by_name():
    machine = FakeMachine()
    (led,) = build_outputs({"led": {"pin": "LED"}}, {"machine": machine})
    assert "LED" in machine.pins and led.name == "led"


def test_simulated_led_prints_to_the_terminal(capsys):
    (led,) = build_outputs({"led": {"pin": "LED"}}, {})
    assert isinstance(led, SimulatedSwitch)
    led.value(True)
    led.value(False)
    assert capsys.readouterr().out == "LED on\nLED off\n"


def test_no_led_no_outputs():
    assert build_outputs({"led": None}, {"machine": FakeMachine()}) == []


def test_pin_output_value_is_a_bool():
    led = PinOutput("led", FakeMachine().Pin(2, 3))
    led.value(1)
    assert led.value() is True


def test_a_failing_sensor_is_logged_once_with_its_reason_and_again_when_it_recovers():
    import struct

    flaky = Fixed("temperature", "°C", [OSError(19), OSError(19), OSError(19), 21.5, 21.5])
    lines = []
    dev = Device(BOARD, {"rate": 2}, [flaky, Fixed("humidity", "%", [45.2])], [], Clock(), lambda: (1, 2),
                 log=lines.append)
    first = compact(dev.sample())
    assert first["v"] == [None, 45.2] and first["e"] == ["OSError: 19", None]
    reading = dev.read()
    binary = device.sample_binary(reading)
    assert len(binary) == 12 + 4 * 2 + 1 and binary[-1] == 0b01  # the flags byte: sensor 0 failed
    assert struct.unpack_from("<BBH", binary) == (0x53, 1, 2)
    info = compact(dev.info())
    assert info["sensor_errors"] == {"temperature": "OSError: 19"}
    dev.sample()
    assert lines == ["sensor temperature failed: OSError: 19"]  # once, though it failed 3 times
    good = compact(dev.sample())
    assert good["v"] == [21.5, 45.2] and "e" not in good
    assert len(device.sample_binary(dev.read())) == 12 + 4 * 2  # no flags when all read
    assert "sensor_errors" not in compact(dev.info())
    assert lines == ["sensor temperature failed: OSError: 19", "sensor temperature recovered"]


def test_a_sensor_that_raises_from_read_and_a_shared_measurement_give_their_reasons():
    from sensors.base import Shared, SharedValue

    def measure():
        raise OSError(110)

    shared = Shared(measure, 2)
    lines = []
    dev = Device(BOARD, {"rate": 2}, [Rude(), SharedValue(shared, 0, "t"), SharedValue(shared, 1, "h")], [],
                 Clock(), lambda: (1, 2), log=lines.append)
    assert compact(dev.sample())["e"] == ["RuntimeError: boom", "OSError: 110", "OSError: 110"]
    assert len(lines) == 3 and lines[0] == "sensor rude failed: RuntimeError: boom"
