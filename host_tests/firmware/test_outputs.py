"""Named outputs from the board file: switches and PWM with a range, each
checked by the board file loader and again by the device for every command."""
import json
import os

import pytest

from boardfile import check_board, check_output, load_board
from device import Device
from fakes import Clock, FakeMachine
from output_kinds import build_outputs
from outputs import Pwm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST = load_board("host", os.path.join(ROOT, "boards"))


class FakePWM:
    def __init__(self, pin, freq=None):
        self.pin = pin
        self.freq = freq
        self.duties = []

    def duty_u16(self, value):
        assert 0 <= value <= 65535
        self.duties.append(value)


class PwmMachine(FakeMachine):
    def __init__(self):
        FakeMachine.__init__(self)
        self.pwms = []
        machine = self

        class PWM(FakePWM):
            def __init__(self, pin, freq=None):
                FakePWM.__init__(self, pin, freq)
                machine.pwms.append(self)

        self.PWM = PWM


def host_device(out):
    return Device(HOST, {"rate": 2}, [], build_outputs(HOST, {}, out.append), Clock())


def command(dev, obj, **kw):
    reply, change = dev.handle_command(json.dumps(obj), **kw)
    return json.loads(reply), (json.loads(change) if change else None)


def test_hello_lists_every_output_as_a_control_in_board_order():
    hello = json.loads(host_device([]).hello())
    assert hello["controls"] == [
        {"name": "led", "label": "LED", "kind": "switch"},
        {"name": "relay", "label": "Relay", "kind": "switch"},
        {"name": "fan", "label": "Fan", "kind": "pwm", "min": 0, "max": 100, "unit": "%"},
    ]
    assert hello["outputs"] == {"led": False, "relay": False, "fan": 0}


def test_a_switch_keeps_the_led_protocol():
    out = []
    dev = host_device(out)
    reply, change = command(dev, {"cmd": "relay", "on": True, "id": 2})
    assert reply == {"t": "ack", "id": 2, "cmd": "relay", "on": True}
    assert change["outputs"]["relay"] is True and out == ["Relay on"]
    for bad in ({"cmd": "relay"}, {"cmd": "relay", "on": 1}, {"cmd": "relay", "value": 50}):
        assert command(dev, bad)[0]["t"] == "error"


def test_a_pwm_takes_a_number_within_its_range():
    out = []
    dev = host_device(out)
    reply, change = command(dev, {"cmd": "fan", "value": 40, "id": 5})
    assert reply == {"t": "ack", "id": 5, "cmd": "fan", "value": 40}
    assert change["outputs"] == {"led": False, "relay": False, "fan": 40} and out == ["Fan 40 %"]
    assert command(dev, {"cmd": "fan", "value": 40})[1] is None  # no change, no broadcast
    assert command(dev, {"cmd": "fan", "value": 12.5})[0]["value"] == 12.5


@pytest.mark.parametrize("message, problem", [
    ({"cmd": "fan", "value": 101}, "value must be a number from 0 to 100"),
    ({"cmd": "fan", "value": -1}, "value must be a number from 0 to 100"),
    ({"cmd": "fan", "value": "50"}, "value must be a number from 0 to 100"),
    ({"cmd": "fan", "value": True}, "value must be a number from 0 to 100"),
    ({"cmd": "fan", "value": None}, "value must be a number from 0 to 100"),
    ({"cmd": "fan", "on": True}, "missing value (a number from 0 to 100)"),
])
def test_a_pwm_refuses_anything_else(message, problem):
    out = []
    dev = host_device(out)
    reply, change = command(dev, dict(message, id=9))
    assert reply == {"t": "error", "id": 9, "error": problem} and change is None and out == []
    assert dev.outputs["fan"].value() == 0


def test_read_only_dashboards_cannot_set_outputs():
    dev = host_device([])
    reply, _ = command(dev, {"cmd": "fan", "value": 10}, readonly=True)
    assert "read-only" in reply["error"] and dev.outputs["fan"].value() == 0


def test_a_pwm_on_a_board_maps_its_range_onto_the_duty_cycle():
    machine = PwmMachine()
    board = dict(HOST, led=None, outputs=[{"name": "dimmer", "kind": "pwm", "pin": 4, "min": 10, "max": 20,
                                           "initial": 15, "freq": 500}])
    (dimmer,) = build_outputs(board, {"machine": machine})
    (pwm,) = machine.pwms
    assert pwm.freq == 500 and pwm.duties == [32768]  # initial 15: half way
    dimmer.value(10)
    dimmer.value(20)
    assert pwm.duties[1:] == [0, 65535] and dimmer.value() == 20


def test_a_switch_on_a_board_drives_its_pin():
    machine = FakeMachine()
    board = dict(HOST, led=None, outputs=[{"name": "relay", "kind": "switch", "pin": 5, "active_low": True}])
    (relay,) = build_outputs(board, {"machine": machine})
    relay.value(True)
    assert relay.label == "Relay" and relay.value() is True
    pin = machine.pins[5]
    assert pin.mode == pin.OUT and pin.writes == [1, 0]  # active low: off (high) at start, then on (low)


@pytest.mark.parametrize("spec, problem", [
    ({"name": "fan", "kind": "dimmer", "pin": 4}, "kind: must be one of switch, pwm"),
    ({"kind": "switch", "pin": 4}, "name: must be a name"),
    ({"name": "rate", "kind": "switch", "pin": 4}, "name: rate is a command of its own"),
    ({"name": "fan", "kind": "switch"}, "pin: must be a GPIO number"),
    ({"name": "fan", "kind": "pwm", "pin": 4, "max": 100}, "min: required"),
    ({"name": "fan", "kind": "pwm", "pin": 4, "min": 5, "max": 5}, "min: must be below max"),
    ({"name": "fan", "kind": "pwm", "pin": 4, "min": 0, "max": 1, "initial": 2}, "initial: must be"),
    ({"name": "fan", "kind": "pwm", "pin": 4, "min": 0, "max": 1, "freq": 0}, "freq: must be"),
    ({"name": "fan", "kind": "switch", "pin": 4, "min": 0}, "min: unknown for kind switch"),
    ({"name": "fan", "kind": "switch", "pin": 4, "label": ""}, "label: must be a text"),
])
def test_bad_output_specs_name_the_field(spec, problem):
    with pytest.raises(ValueError) as raised:
        check_output(spec)
    assert problem in str(raised.value)


def test_the_board_file_names_the_output_that_is_wrong():
    board = dict(HOST, outputs=[{"name": "relay", "kind": "switch", "pin": 5},
                                {"name": "relay", "kind": "switch", "pin": 6}])
    with pytest.raises(ValueError, match=r"host: outputs\[1\]: output name relay is used twice"):
        check_board(board, "host")
    with pytest.raises(ValueError, match=r"outputs\[0\].*the board's led"):
        check_board(dict(HOST, outputs=[{"name": "led", "kind": "switch", "pin": 5}]), "host")
    with pytest.raises(ValueError, match=r"outputs\[0\]: kind"):
        check_board(dict(HOST, outputs=[{"name": "x", "pin": 5}]), "host")
    with pytest.raises(ValueError, match="outputs: must be a list"):
        check_board(dict(HOST, outputs={"x": 1}), "host")


def test_duty_rounds_to_the_nearest_step():
    pwm = Pwm("x", 0, 3, pwm=FakePWM(1))
    assert [pwm.duty(v) for v in (0, 1, 1.5, 3)] == [0, 21845, 32768, 65535]
