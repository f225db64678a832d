"""The device as the dashboards see it: state, samples and commands, as
JSON text in and out (firmware/PROTOCOL.md). No sockets, no asyncio: the
server moves the texts, this decides them, so every answer is testable.
"""

import json
import struct

from checks import default_label, is_number, is_str
from history import History, HistorySender
from uptime import Uptime, ticks_diff
from wallclock import WallClock, valid_ms

try:
    from microws import __version__ as FW_VERSION
except ImportError:
    FW_VERSION = "0.1.0"

NAN = float("nan")
MAX_ECHO = 32  # longest unknown command name quoted back in an error


def _compact(obj):
    """JSON without spaces, for a json.dumps that lacks `separators`."""
    if type(obj) is dict:
        return "{" + ",".join(json.dumps(str(k)) + ":" + _compact(v) for k, v in obj.items()) + "}"
    if type(obj) is list or type(obj) is tuple:
        return "[" + ",".join(_compact(v) for v in obj) + "]"
    return json.dumps(obj)


try:  # MicroPython has `separators` since 1.19
    json.dumps([0], separators=(",", ":"))

    def dumps(obj):
        """Compact JSON text (no spaces), as the protocol wants."""
        return json.dumps(obj, separators=(",", ":"))

except TypeError:
    dumps = _compact


class Device:
    """board, config: checked dicts (boardfile.py, config.py); sensors: objects
    with name, unit, read() (and label, show: sensor_kinds.build_sensors);
    outputs: outputs.Output objects; clock: ticks_ms-like, counting from
    boot; diff: its ticks_diff (default time.ticks_diff); mem: () -> (free,
    alloc) in bytes, default gc's (None, None on CPython, which has no such
    numbers); host_time: () -> Unix ms where the wall-clock time is known at
    once (the simulator), None on a board; commands: extra commands
    {name: (handler, args, readonly)} (extend.COMMANDS).
    """

    def __init__(self, board, config, sensors, outputs, clock, mem=None, diff=None, log=None,
                 host_time=None, commands=None):
        self.board_name = board["name"]  # the board dict itself is let go after start (main.py)
        self.log = log or print
        self.errors = [None] * len(sensors)  # each sensor's failure reason, None when it reads
        self.name = config.get("device_name") or "microws"
        self.sensors = sensors
        self.outputs = {}
        self._output_order = []
        for output in outputs:
            self.outputs[output.name] = output
            self._output_order.append(output.name)
        self.min_rate = float(board["min_rate"])
        self.max_rate = float(board["max_rate"])
        self.rate = float(config.get("rate") or board["rate"])
        self.seq = 0
        self._clock = clock
        self._uptime = Uptime(clock, diff)
        self._diff = diff or ticks_diff
        self._mem = mem or _gc_mem
        self.wifi = None  # a wifi.Keeper, whose state info reports
        self.commands = {}
        for name in commands or {}:
            if name in self.outputs:
                self.log("custom: command %s not added: an output has that name" % name)
            else:
                self.commands[name] = commands[name]
        self.values = [None] * len(sensors)  # the last reading's
        self.history = History(board.get("history", 0), len(sensors))
        self.history_sender = HistorySender(self.history, [getattr(s, "decimals", None) for s in sensors])
        self.wall = WallClock(self._uptime.ms)
        if host_time is not None:
            self.wall.set(host_time(), "host")
        self.uplink = None  # the MQTT uplink (firmware/uplink.py), whose state info reports

    def uptime_ms(self):
        return self._uptime.ms()

    def value(self, name):
        """The last reading of the sensor called name (None before the first,
        or when it failed); KeyError for a name the device does not have."""
        for i in range(len(self.sensors)):
            if self.sensors[i].name == name:
                return self.values[i]
        raise KeyError(name)

    def set_clock(self, unix_ms, source):
        """Learn the wall-clock time (NTP: "ntp"); the `state` text to
        broadcast when the clock was unknown until now, else None."""
        was_known = self.wall.known()
        self.wall.set(unix_ms, source)
        return None if was_known else self.state()

    def wall_at(self, ms):
        """The Unix ms of ticks `ms` (a sample's), or None while unknown."""
        now = self.wall.now()
        if now is None:
            return None
        return now - self._diff(int(self._clock()), ms)

    def keep_time(self):
        """Look at the clock: needed at least every few days (ticks_diff is
        right only within half the ticks period), so the App calls it every
        minute whether or not anyone is watching."""
        self._uptime.ms()
        for sensor in self.sensors:
            keep = getattr(sensor, "keep_time", None)
            if keep is not None:
                keep()

    # ------------------------------------------------------------ messages

    def _outputs_state(self):
        state = {}
        for name in self._output_order:
            output = self.outputs[name]
            state[name] = bool(output.value()) if output.kind == "switch" else output.value()
        return state

    def hello(self, readonly=False, why=None):
        """The `hello` text for a client that just connected; why: the
        reason it is read-only when it presented a token (wrong, refused)."""
        msg = {
            "t": "hello", "device": self.name, "board": self.board_name, "fw": FW_VERSION,
            "rate": self.rate, "min_rate": self.min_rate, "max_rate": self.max_rate,
            "sensors": [_sensor_entry(s) for s in self.sensors],
            "controls": [self.outputs[name].control() for name in self._output_order],
            "outputs": self._outputs_state(), "readonly": bool(readonly),
            "clock": self.wall.known(), "history": self.history.capacity,
            "commands": list(self.commands),
        }
        if readonly and why:
            msg["why"] = why
        return dumps(msg)

    def read(self):
        """Read every sensor once: (seq, ms, values, errors, ts), seq
        counting from 0; errors is None when every sensor read, else each
        sensor's failure reason (None for those that read); ts: the Unix ms,
        None while the clock is unknown. The reading goes into the history.

        One reading feeds both stream formats, so text and binary
        dashboards see the same sample under the same seq.
        """
        values = []
        errors = self.errors
        failing = False
        for i in range(len(self.sensors)):
            sensor = self.sensors[i]
            try:
                value = sensor.read()
                error = getattr(sensor, "error", None)
            except Exception as e:  # noqa: BLE001 (sensors should not raise; if one does, it is a null)
                value = None
                error = _reason(e)
            if not is_number(value):  # None, NaN, inf, or not a number at all
                value = None
            if error is not None and not is_str(error):
                error = str(error)
            if (error is None) != (errors[i] is None):  # a change: said once each way
                if error is None:
                    self.log("sensor %s recovered" % sensor.name)
                else:
                    self.log("sensor %s failed: %s" % (sensor.name, error))
            errors[i] = error
            if error is not None:
                failing = True
            values.append(value)
        ms = int(self._clock())
        self._uptime.ms()
        seq = self.seq
        self.seq += 1
        self.values = values
        self.history.push(seq, ms, values)
        return seq, ms, values, list(errors) if failing else None, self.wall.now()

    def sample(self):
        """Read every sensor once; the `s` text."""
        return sample_text(self.read())

    def state(self):
        """The `state` text, broadcast when the rate or an output changes."""
        return dumps({"t": "state", "rate": self.rate, "outputs": self._outputs_state(),
                      "clock": self.wall.known()})

    def info(self, clients=0, dropped=0, msg_id=None):
        """The `info` text (the answer to the info command)."""
        free, alloc = self._mem()
        msg = {
            "t": "info", "device": self.name, "board": self.board_name, "fw": FW_VERSION,
            "mem_free": free, "mem_alloc": alloc, "uptime_s": self._uptime.seconds(),
            "clients": clients, "rate": self.rate, "outputs": self._outputs_state(), "dropped": dropped,
        }
        failed = {}
        for i in range(len(self.sensors)):
            if self.errors[i] is not None:
                failed[self.sensors[i].name] = self.errors[i]
        if failed:
            msg["sensor_errors"] = failed
        if self.wifi is not None:
            msg["wifi"] = self.wifi.info()
        if self.uplink is not None:
            msg["mqtt"] = self.uplink.info()
        if msg_id is not None:
            msg["id"] = msg_id
        return dumps(msg)

    # ------------------------------------------------------------ commands

    def refuse(self, text, problem):
        """An `error` text for a command that is not carried out (too many
        commands), with the command's id when it has a usable one, so the
        dashboard can match the refusal to what it sent."""
        msg_id = None
        try:
            if type(text) is not str:
                text = bytes(text).decode()
            msg = json.loads(text)
            if type(msg) is dict:
                msg_id = msg.get("id")
        except Exception:  # noqa: BLE001 (not JSON: an error without id)
            pass
        if msg_id is not None and not (is_number(msg_id) or is_str(msg_id)):
            msg_id = None
        return _error(msg_id, problem)

    def handle_command(self, text, clients=0, dropped=0, readonly=False):
        """(reply text, broadcast text or None) for one message from a
        dashboard. Never raises: whatever comes in gets an answer."""
        try:
            return self._handle(text, clients, dropped, readonly)
        except Exception as e:  # noqa: BLE001 (a bug here must not end the connection)
            return _error(None, "internal error: " + type(e).__name__), None

    def _handle(self, text, clients, dropped, readonly):
        if type(text) is not str:
            try:
                text = bytes(text).decode()
            except Exception:  # noqa: BLE001
                return _error(None, "message is not UTF-8 text"), None
        try:
            msg = json.loads(text)
        except Exception:  # noqa: BLE001 (ValueError, or MicroPython's variants)
            return _error(None, "message is not valid JSON"), None
        if type(msg) is not dict:
            return _error(None, "message must be a JSON object"), None
        msg_id = msg.get("id")
        if msg_id is not None and not (is_number(msg_id) or is_str(msg_id)):
            return _error(None, "id must be a number or a string"), None
        if "cmd" not in msg:
            return _error(msg_id, "missing cmd"), None
        cmd = msg["cmd"]
        if not is_str(cmd):
            return _error(msg_id, "cmd must be a string"), None
        if cmd == "info":
            return self.info(clients, dropped, msg_id), None
        if cmd == "rate":
            return self._set_rate(msg, msg_id, readonly)
        if cmd == "time":
            return self._set_time(msg, msg_id)
        if cmd in self.outputs:
            return self._switch(cmd, msg, msg_id, readonly)
        if cmd in self.commands:
            return self._custom(cmd, msg, msg_id, readonly)
        if len(cmd) > MAX_ECHO:
            cmd = cmd[:MAX_ECHO] + "..."
        return _error(msg_id, "unknown command: " + cmd), None

    def _set_rate(self, msg, msg_id, readonly):
        if readonly:
            return _error(msg_id, "read-only client: rate cannot be changed"), None
        if "rate" not in msg:
            return _error(msg_id, "missing rate"), None
        rate = msg["rate"]
        if not is_number(rate):
            return _error(msg_id, "rate must be a number"), None
        if not self.min_rate <= rate <= self.max_rate:
            return _error(msg_id, "rate must be between %s and %s" % (self.min_rate, self.max_rate)), None
        changed = float(rate) != self.rate
        self.rate = float(rate)
        return _ack(msg_id, {"cmd": "rate", "rate": self.rate}), self.state() if changed else None

    def _set_time(self, msg, msg_id):
        """Any client may tell the time, but only while the device has none."""
        ms = msg.get("ms")
        if not valid_ms(ms):
            return _error(msg_id, "ms must be the Unix time in milliseconds (2020 to 2100)"), None
        if self.wall.known():
            return _ack(msg_id, {"cmd": "time", "clock": self.wall.source}), None
        change = self.set_clock(ms, "dashboard")
        return _ack(msg_id, {"cmd": "time", "clock": "dashboard"}), change

    def _switch(self, name, msg, msg_id, readonly):
        output = self.outputs[name]
        verb = "switched" if output.kind == "switch" else "set"
        if readonly:
            return _error(msg_id, "read-only client: " + name + " cannot be " + verb), None
        key = "on" if output.kind == "switch" else "value"
        if key not in msg:
            if key == "on":
                return _error(msg_id, "missing on (true or false)"), None
            return _error(msg_id, "missing value (%s)" % output.range_text()), None
        value = msg[key]
        problem = output.check(value)
        if problem:
            return _error(msg_id, problem), None
        changed = output.value() != value
        output.value(value)
        return _ack(msg_id, {"cmd": name, key: value}), self.state() if changed else None

    def _custom(self, name, msg, msg_id, readonly):
        """A command of custom.py: its arguments checked, its handler's keys in the ack."""
        handler, spec, allow_readonly = self.commands[name]
        if readonly and not allow_readonly:
            return _error(msg_id, "read-only client: " + name + " is not allowed"), None
        from extend import command_args

        args, problem = command_args(spec, msg)
        if problem:
            return _error(msg_id, problem), None
        try:
            result = handler(self, args)
        except Exception as e:  # noqa: BLE001 (a user's handler must not end the connection)
            return _error(msg_id, name + " failed: " + _reason(e)), None
        fields = {"cmd": name}
        if type(result) is dict:
            for key in result:
                if key not in ("t", "id", "cmd"):
                    fields[key] = result[key]
        elif result is not None:
            return _error(msg_id, name + " failed: its handler must return a dict or None"), None
        try:
            return _ack(msg_id, fields), None
        except Exception as e:  # noqa: BLE001 (not JSON-able)
            return _error(msg_id, name + " failed: its answer is not JSON (" + _reason(e) + ")"), None


def _reason(error):
    text = str(error)
    name = type(error).__name__
    return (name + ": " + text if text else name)[:48]


def _sensor_entry(sensor):
    """A sensor in hello: name, unit, label, show ("chart" or "tile")."""
    return {"name": sensor.name, "unit": sensor.unit,
            "label": getattr(sensor, "label", None) or default_label(sensor.name),
            "show": getattr(sensor, "show", None) or "chart"}


def sample_text(reading):
    """The `s` text of a reading (seq, ms, values[, errors[, ts]]); "ts" only
    while the clock is known; "e", the failing sensors' reasons (null for
    the others), only when one fails."""
    seq, ms, values = reading[0], reading[1], reading[2]
    errors = reading[3] if len(reading) > 3 else None
    ts = reading[4] if len(reading) > 4 else None
    head = '{"t":"s","seq":%d,"ms":%d' % (seq, ms) if ts is None else \
        '{"t":"s","seq":%d,"ms":%d,"ts":%d' % (seq, ms, ts)
    if errors:
        return '%s,"v":%s,"e":%s}' % (head, dumps(values), dumps(errors))
    return '%s,"v":%s}' % (head, dumps(values))


# The binary sample (firmware/PROTOCOL.md): "<BBHII" header, then one
# little-endian float32 per sensor, NaN for a failed read; when a sensor
# fails, then ceil(n / 8) bytes of flags, bit i set for sensor i failing.
BINARY_MAGIC = 0x53  # "S"
BINARY_VERSION = 1
BINARY_HEADER = 12


def sample_binary(reading):
    """The binary form of a reading: 12-byte header + 4 bytes per value
    (+ the failure flags when a sensor failed)."""
    seq, ms, values = reading[0], reading[1], reading[2]
    errors = reading[3] if len(reading) > 3 else None
    size = BINARY_HEADER + 4 * len(values)
    data = bytearray(size + ((len(values) + 7) // 8 if errors else 0))
    if errors:
        for i in range(len(errors)):
            if errors[i] is not None:
                data[size + i // 8] |= 1 << (i % 8)
    struct.pack_into("<BBHII", data, 0, BINARY_MAGIC, BINARY_VERSION, len(values),
                     seq & 0xFFFFFFFF, ms & 0xFFFFFFFF)
    at = BINARY_HEADER
    for value in values:
        struct.pack_into("<f", data, at, NAN if value is None else value)
        at += 4
    return data


def _gc_mem():
    try:
        import gc

        return gc.mem_free(), gc.mem_alloc()
    except (ImportError, AttributeError):
        return None, None


def _ack(msg_id, fields):
    msg = {"t": "ack"}
    if msg_id is not None:
        msg["id"] = msg_id
    msg.update(fields)
    return dumps(msg)


def _error(msg_id, problem):
    msg = {"t": "error", "error": problem}
    if msg_id is not None:
        msg["id"] = msg_id
    return dumps(msg)
