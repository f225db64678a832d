"""Board descriptions (boards/NAME.json): what a board has, and how much of
it the server may use.

Adding a board means adding one JSON file; load_board() checks it and says
which field of which file is wrong. memory_budget() gives the heap the
firmware needs at the board's limits from the file's "measured" block,
which tools/measure_boards.py writes (with max_clients and deploy) from a
measurement under MicroPython, so a test can keep every board file within
its heap.
"""

import json

from checks import fmt, is_bool, is_int, is_name, is_number, is_str

MPY_ARCHS = ("x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
             "xtensa", "xtensawin", "rv32imc", None)

FIELDS = ("name", "description", "mpy_arch", "heap_bytes", "max_clients", "max_message_size",
          "queue_size", "led", "i2c", "sensors", "rate", "min_rate", "max_rate")
# client_cap: the most dashboards the port's TCP stack allows beside page loads (not memory);
# deploy and measured: written by tools/measure_boards.py
# outputs: switches and PWM beside the led (outputs.py); history: samples kept for a late dashboard
OPTIONAL_FIELDS = ("client_cap", "outputs", "history", "deploy", "measured")
MAX_HISTORY = 20000  # samples (history.py: 4 bytes + 4 per value each)
DEPLOYS = ("mpy", "frozen")  # precompiled files in the board's flash, or the library frozen into the firmware
MEASURED_BYTES = ("app_bytes", "per_connection_bytes")  # what memory_budget() needs from "measured"


def _fail(source, field, problem):
    raise ValueError(source + ": " + field + ": " + problem)


def _check_int(source, board, field, low, high=None):
    v = board[field]
    if not is_int(v) or v < low or (high is not None and v > high):
        limit = ("from %d to %d" % (low, high)) if high is not None else (">= %d" % low)
        _fail(source, field, "must be an integer " + limit)


def _check_pins(source, value, field, keys, optional=()):
    if value is None:
        return
    if type(value) is not dict:
        _fail(source, field, "must be an object or null")
    for key in value:
        if key not in keys and key not in optional:
            _fail(source, field + "." + key, "unknown (allowed: " + ", ".join(keys + optional) + ")")
    for key in keys:
        if key not in value:
            _fail(source, field + "." + key, "required")


def check_board(board, source="board"):
    """Raise ValueError("SOURCE: FIELD: problem") unless `board` is a
    usable board description; return it."""
    if type(board) is not dict:
        raise ValueError(source + ": must be a JSON object")
    for key in board:
        if key not in FIELDS and key not in OPTIONAL_FIELDS:
            _fail(source, key, "unknown field (fields: " + ", ".join(FIELDS + OPTIONAL_FIELDS) + ")")
    for key in FIELDS:
        if key not in board:
            _fail(source, key, "required")
    if not is_name(board["name"]):
        _fail(source, "name", "must be a name of letters, digits, '_' or '-'")
    if not is_str(board["description"]):
        _fail(source, "description", "must be a text")
    if board["mpy_arch"] not in MPY_ARCHS:
        _fail(source, "mpy_arch", "must be one of " + ", ".join(str(a) for a in MPY_ARCHS if a) + " or null")
    _check_int(source, board, "heap_bytes", 8192)
    _check_int(source, board, "max_clients", 1, 64)
    _check_int(source, board, "max_message_size", 125, 65536)
    _check_int(source, board, "queue_size", 1, 256)
    if "client_cap" in board:
        _check_int(source, board, "client_cap", 1, 64)
    if "history" in board:
        _check_int(source, board, "history", 0, MAX_HISTORY)
    if "deploy" in board and board["deploy"] not in DEPLOYS:
        _fail(source, "deploy", "must be one of " + ", ".join(DEPLOYS))
    if "measured" in board:
        measured = board["measured"]
        if type(measured) is not dict:
            _fail(source, "measured", "must be an object (written by tools/measure_boards.py)")
        for key in MEASURED_BYTES:
            if not is_int(measured.get(key)) or measured[key] < 0:
                _fail(source, "measured." + key, "must be an integer >= 0 (run python3 tools/measure_boards.py)")

    led = board["led"]
    _check_pins(source, led, "led", ("pin",), ("active_low",))
    if led is not None:
        pin = led["pin"]
        if not ((is_int(pin) and pin >= 0) or (is_str(pin) and pin)):
            _fail(source, "led.pin", 'must be a GPIO number or a pin name such as "LED"')
        if not is_bool(led.get("active_low", False)):
            _fail(source, "led.active_low", "must be true or false")
    i2c = board["i2c"]
    _check_pins(source, i2c, "i2c", ("sda", "scl"), ("bus", "freq"))
    if i2c is not None:
        for key in ("sda", "scl"):
            if not ((is_int(i2c[key]) and i2c[key] >= 0) or (is_str(i2c[key]) and i2c[key])):
                _fail(source, "i2c." + key, "must be a GPIO number or a pin name")
        for key in ("bus", "freq"):
            if key in i2c and not (is_int(i2c[key]) and i2c[key] >= 0):
                _fail(source, "i2c." + key, "must be an integer >= 0")

    _check_outputs(source, board)

    from sensor_kinds import describe

    specs = board["sensors"]
    if type(specs) is not list:
        _fail(source, "sensors", "must be a list of sensor specs")
    seen = []
    for i in range(len(specs)):
        where = "sensors[%d]" % i
        try:
            check_spec(specs[i])
        except ValueError as e:
            _fail(source, where, str(e))
        if specs[i]["type"] == "bme280" and i2c is None:
            _fail(source, where, "bme280 needs the board's i2c pins")
        for name, _ in describe(specs[i]):
            if name in seen:
                _fail(source, where, "sensor name " + name + " is used twice (rename with name/names)")
            seen.append(name)

    for key in ("rate", "min_rate", "max_rate"):
        if not is_number(board[key]) or board[key] <= 0:
            _fail(source, key, "must be a number > 0 (Hz)")
    if not board["min_rate"] <= board["rate"] <= board["max_rate"]:
        _fail(source, "rate", "must be between min_rate (%s) and max_rate (%s)"
              % (fmt(board["min_rate"]), fmt(board["max_rate"])))
    return board


# ---------------------------------------------------------------- sensor specs

SHOW = ("chart", "tile")
MAX_LABEL = 32
_NUMBERS = ("scale", "offset", "base", "amplitude", "phase", "min", "max")


def _check_value(key, value):
    """The problem with one spec field, or None."""
    if key == "name":
        return None if is_name(value) else "must be a name of 1-32 letters, digits, '_' or '-'"
    if key == "unit":
        return None if is_str(value) and len(value) <= 16 else "must be a text of at most 16 characters"
    if key == "pin":
        ok = (is_int(value) and value >= 0) or (is_str(value) and 0 < len(value) <= 8)
        return None if ok else 'must be a GPIO number or a pin name such as "LED"'
    if key in ("channel", "seed"):
        return None if is_int(value) and value >= 0 else "must be an integer >= 0"
    if key == "address":
        ok = is_int(value) and 0 <= value <= 127
        return None if ok else "must be a 7-bit I2C address (0-127; 118 is 0x76)"
    if key == "decimals":
        return None if is_int(value) and 0 <= value <= 6 else "must be an integer from 0 to 6"
    if key in ("invert", "active_low"):
        return None if is_bool(value) else "must be true or false"
    if key == "pull":
        return None if value in ("up", "down", None) else 'must be "up", "down" or null'
    if key == "label":
        return None if is_str(value) and 0 < len(value) <= MAX_LABEL else "must be a text of 1 to 32 characters"
    if key == "show":
        return None if value in SHOW else 'must be "chart" or "tile"'
    if key == "sensor":
        return None if is_name(value) else "must be the name of a sensor registered in custom.py"
    if key == "options":
        return None if type(value) is dict else "must be an object (the custom sensor's keyword arguments)"
    if key == "period_s":
        return None if is_number(value) and value > 0 else "must be a number > 0"
    if key == "noise":
        return None if is_number(value) and value >= 0 else "must be a number >= 0"
    if key in _NUMBERS:
        return None if is_number(value) else "must be a number"
    return None


def check_spec(spec):
    """Raise ValueError("field: problem") for a sensor spec a board cannot use
    (the kinds: sensor_kinds.KINDS)."""
    if type(spec) is not dict:
        raise ValueError("must be an object with a \"type\"")
    kind = spec.get("type")
    from sensor_kinds import KINDS

    if kind not in KINDS:
        raise ValueError("type: must be one of " + ", ".join(sorted(KINDS)))
    names, _, allowed = KINDS[kind]
    allowed = allowed + (("labels", "show") if len(names) > 1 else ("label", "show"))
    for key in spec:
        if key != "type" and key not in allowed:
            raise ValueError(key + ": unknown for type " + kind + " (allowed: " + ", ".join(allowed) + ")")
        problem = _check_value(key, spec[key])
        if problem:
            raise ValueError(key + ": " + problem)
    if kind == "custom":
        if "sensor" not in spec:
            raise ValueError('sensor: required for type custom (the name given to @sensor in custom.py)')
    elif names[0] is None and "name" not in spec:
        raise ValueError("name: required for type " + kind)
    if "labels" in spec:
        given = spec["labels"]
        if type(given) is not list or len(given) != len(names) or \
                not all(is_str(x) and 0 < len(x) <= MAX_LABEL for x in given):
            raise ValueError("labels: must be a list of %d texts of 1 to 32 characters" % len(names))
    if "names" in spec:
        given = spec["names"]
        if type(given) is not list or len(given) != len(names) or not all(is_name(n) for n in given):
            raise ValueError("names: must be a list of %d names (default %s)"
                             % (len(names), ", ".join(names)))
    if kind == "adc" and ("pin" in spec) == ("channel" in spec):
        raise ValueError("pin or channel: give exactly one")
    if kind in ("digital", "dht11", "dht22") and "pin" not in spec:
        raise ValueError("pin: required for type " + kind)
    if "min" in spec and "max" in spec and not spec["min"] < spec["max"]:
        raise ValueError("min: must be below max")


# ---------------------------------------------------------------- outputs

OUTPUT_KINDS = ("switch", "pwm")
RESERVED = ("info", "rate", "time")  # command names an output cannot take
OUTPUT_KEYS = {
    "switch": ("name", "kind", "label", "pin", "active_low"),
    "pwm": ("name", "kind", "label", "pin", "min", "max", "unit", "freq", "initial"),
}


def check_output(spec):
    """Raise ValueError("field: problem") for an output spec a board cannot use."""
    if type(spec) is not dict:
        raise ValueError('must be an object with "name" and "kind"')
    kind = spec.get("kind")
    if kind not in OUTPUT_KINDS:
        raise ValueError("kind: must be one of " + ", ".join(OUTPUT_KINDS))
    for key in spec:
        if key not in OUTPUT_KEYS[kind]:
            raise ValueError(key + ": unknown for kind " + kind + " (allowed: " + ", ".join(OUTPUT_KEYS[kind]) + ")")
    name = spec.get("name")
    if not is_name(name):
        raise ValueError("name: must be a name of 1-32 letters, digits, '_' or '-'")
    if name in RESERVED:
        raise ValueError("name: " + name + " is a command of its own (" + ", ".join(RESERVED) + ")")
    if "label" in spec and not (is_str(spec["label"]) and 0 < len(spec["label"]) <= 32):
        raise ValueError("label: must be a text of 1 to 32 characters")
    pin = spec.get("pin")
    if not ((is_int(pin) and pin >= 0) or (is_str(pin) and 0 < len(pin) <= 8)):
        raise ValueError('pin: must be a GPIO number or a pin name such as "LED"')
    if not is_bool(spec.get("active_low", False)):
        raise ValueError("active_low: must be true or false")
    if kind == "pwm":
        for key in ("min", "max"):
            if not is_number(spec.get(key)):
                raise ValueError(key + ": required, a number")
        if not spec["min"] < spec["max"]:
            raise ValueError("min: must be below max")
        if "initial" in spec and not (is_number(spec["initial"]) and spec["min"] <= spec["initial"] <= spec["max"]):
            raise ValueError("initial: must be a number within min..max")
        if "unit" in spec and not (is_str(spec["unit"]) and len(spec["unit"]) <= 16):
            raise ValueError("unit: must be a text of at most 16 characters")
        if "freq" in spec and not (is_int(spec["freq"]) and 1 <= spec["freq"] <= 40000000):
            raise ValueError("freq: must be an integer number of Hz from 1 to 40000000")



def _check_outputs(source, board):
    outputs = board.get("outputs", [])
    if type(outputs) is not list:
        _fail(source, "outputs", "must be a list of outputs (switch or pwm)")
    seen = ["led"] if board["led"] is not None else []
    for i in range(len(outputs)):
        where = "outputs[%d]" % i
        try:
            check_output(outputs[i])
        except ValueError as e:
            _fail(source, where, str(e))
        name = outputs[i]["name"]
        if name in seen:
            _fail(source, where, "output name " + name + " is used twice" + (" (the board's led is one)"
                                                                                if name == "led" else ""))
        seen.append(name)


def load_board(name, boards_dir="boards"):
    """Read and check boards_dir/NAME.json; ValueError names file and field."""
    source = boards_dir.rstrip("/") + "/" + str(name) + ".json"
    if not is_name(name):
        raise ValueError(source + ": board name must be letters, digits, '_' or '-'")
    try:
        with open(source) as f:
            text = f.read()
    except OSError:
        raise ValueError(source + ": no such board file (boards: " + ", ".join(board_names(boards_dir)) + ")")
    try:
        board = json.loads(text)
    except ValueError as e:
        raise ValueError(source + ": not valid JSON (" + str(e) + ")")
    check_board(board, source)
    if board["name"] != name:
        _fail(source, "name", "must be the file's name, " + name)
    return board


def board_names(boards_dir="boards"):
    """Names of the board files in boards_dir."""
    import os

    try:
        files = os.listdir(boards_dir)
    except OSError:
        return []
    return sorted(f[:-5] for f in files if f.endswith(".json"))


def memory_budget(board):
    """Heap (bytes, on the board) the firmware needs at the board's limits:
    the app after start, plus max_clients idle dashboard connections, both
    as tools/measure_boards.py measured them for this board's
    max_message_size and queue_size. ValueError without a measurement."""
    measured = board.get("measured")
    if type(measured) is not dict or not all(is_int(measured.get(k)) for k in MEASURED_BYTES):
        raise ValueError("board " + str(board.get("name")) + ": no measured block; "
                         "run python3 tools/measure_boards.py")
    return measured["app_bytes"] + board["max_clients"] * measured["per_connection_bytes"]
