"""The outputs a board file lists, built into outputs.Output objects. Needed
only to start: dropped with the other start-up modules (app.STARTUP_MODULES)."""

from outputs import PWM_FREQ, PinOutput, Pwm, SimulatedSwitch


def output_specs(board):
    """The board's outputs as specs, its "led" first (a switch named led)."""
    specs = []
    led = board.get("led")
    if led is not None:
        spec = {"name": "led", "kind": "switch", "label": "LED", "pin": led["pin"]}
        if "active_low" in led:
            spec["active_low"] = led["active_low"]
        specs.append(spec)
    return specs + list(board.get("outputs") or [])


def build_output(spec, machine, out=print):
    name, label = spec["name"], spec.get("label")
    if spec["kind"] == "pwm":
        pwm = None
        if machine is not None:
            pwm = machine.PWM(machine.Pin(spec["pin"]), freq=spec.get("freq", PWM_FREQ))
        return Pwm(name, spec["min"], spec["max"], spec.get("unit", ""), spec.get("initial"), pwm, label, out)
    if machine is None:
        return SimulatedSwitch(name, out, label)
    pin = machine.Pin(spec["pin"], machine.Pin.OUT)
    return PinOutput(name, pin, spec.get("active_low", False), label)


def build_outputs(board, hw, out=print):
    """The outputs of a checked board, in board order ("led" first); on
    real pins with hw["machine"], simulated (printed) without."""
    machine = (hw or {}).get("machine")
    return [build_output(spec, machine, out) for spec in output_specs(board)]
