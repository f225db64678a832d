"""Extending the device without forking it: a user's custom.py.

custom.py sits next to main.py; main.py (and tools/simulate.py --custom
FILE) loads it before the board file, when it is there. In it:

    from extend import sensor, command, route

    @sensor("soil", unit="%", label="Soil moisture", decimals=1)
    class Soil:
        def __init__(self, pin=32):       # the board spec's "options"
            ...
        def read(self):                  # a number, or None; may raise
            ...

    @command("beep", args={"ms": (int, 10, 2000)})
    def beep(device, args):              # args: checked, by name
        return {"beeped": args["ms"]}    # keys added to the ack

    @route("/soil")                      # plain HTTP; websocket=True for a WebSocket route
    def soil_page(device, request):
        return {"soil": device.value("soil")}

The board file names a sensor of custom.py as
{"type": "custom", "sensor": "soil"} (also "name", "unit", "label",
"show", "decimals", "options"). If custom.py fails to load, the failure
is logged with its reason, what it registered is dropped, the device
starts without it, and such a sensor reads null with the reason.
"""

import sys

from checks import is_bool, is_int, is_name, is_number, is_str

SENSORS = {}  # name: {"make": class or function, "unit", "label", "show", "decimals"}
COMMANDS = {}  # name: (handler, args spec, readonly)
ROUTES = []  # (path, handler, websocket)
BUILTIN_COMMANDS = ("info", "rate", "time")
ARG_TYPES = (int, float, str, bool)
status = {"loaded": None, "error": None}  # what load() found: the file, or why it failed


def clear():
    """Forget every registration (tests; a failed load)."""
    SENSORS.clear()
    COMMANDS.clear()
    del ROUTES[:]
    status["loaded"] = status["error"] = None


# ------------------------------------------------------------------ decorators

def sensor(name, unit="", label=None, show="chart", decimals=None):
    """Register a sensor kind: a class whose instances have read(), made
    once per board spec with the spec's "options" as keyword arguments; or a
    function, called for each reading."""
    if not is_name(name):
        raise ValueError("sensor name %r: must be 1-32 letters, digits, '_' or '-'" % (name,))
    if not is_str(unit) or len(unit) > 16:
        raise ValueError("sensor %s: unit must be a text of at most 16 characters" % name)
    if label is not None and not (is_str(label) and 0 < len(label) <= 32):
        raise ValueError("sensor %s: label must be a text of 1 to 32 characters" % name)
    if show not in ("chart", "tile"):
        raise ValueError('sensor %s: show must be "chart" or "tile"' % name)
    if decimals is not None and not (is_int(decimals) and 0 <= decimals <= 6):
        raise ValueError("sensor %s: decimals must be an integer from 0 to 6" % name)

    def register(make):
        if name in SENSORS:
            raise ValueError("sensor %s is registered twice" % name)
        SENSORS[name] = {"make": make, "unit": unit, "label": label, "show": show, "decimals": decimals}
        return make

    return register


def command(name, args=None, readonly=False):
    """Register a command {"cmd": name, ...}: handler(device, args) gets the
    checked arguments as a dict and returns a dict of keys for the ack (or
    None); raising answers an error. args: {arg: (type,), (type, low, high)
    or (type, low, high, default)}, type int, float, str (low/high: its
    length) or bool; without a default an argument is required.
    readonly=True lets read-only dashboards use it too."""
    if not is_name(name):
        raise ValueError("command name %r: must be 1-32 letters, digits, '_' or '-'" % (name,))
    if name in BUILTIN_COMMANDS:
        raise ValueError("command %s: a built-in command has that name" % name)
    args = args or {}
    if type(args) is not dict:
        raise ValueError("command %s: args must be a dict of name: (type, low, high)" % name)
    for arg in args:
        _check_arg_spec(name, arg, args[arg])

    def register(handler):
        if name in COMMANDS:
            raise ValueError("command %s is registered twice" % name)
        COMMANDS[name] = (handler, args, bool(readonly))
        return handler

    return register


def route(path, websocket=False):
    """Register an HTTP route, handler(device, request) returning what a
    microws route returns (dict: JSON, str: HTML, a Response); or with
    websocket=True an async handler(device, ws)."""
    if not is_str(path) or not path.startswith("/") or path in ("/", "/ws", "/ws/bin", "/status"):
        raise ValueError("route %r: must be a path starting with / other than the device's own" % (path,))

    def register(handler):
        for known in ROUTES:
            if known[0] == path:
                raise ValueError("route %s is registered twice" % path)
        ROUTES.append((path, handler, bool(websocket)))
        return handler

    return register


def install_routes(server, device, log=print):
    """Put the registered routes on the App's server. A handler gets the
    device first; one that raises is logged, and its client gets a 500, or
    a close 1011."""
    for path, handler, websocket in ROUTES:
        if websocket:
            server.websocket(path)(_websocket_route(path, handler, device, log))
        else:
            server.route(path)(_http_route(path, handler, device, log))


def _failed(path, error, log):
    reason = "%s: %s" % (type(error).__name__, error)
    log("custom: route %s failed: %s" % (path, reason))
    return "custom route %s failed: %s" % (path, reason)


def _websocket_route(path, handler, device, log):
    from microws.server import ConnectionClosed

    async def serve(ws):
        try:
            await handler(device, ws)
        except ConnectionClosed:
            pass
        except Exception as error:  # noqa: BLE001 (a user's bug ends its connection only)
            if not ws.closed:
                await ws.close(1011, _failed(path, error, log)[:120])

    return serve


def _http_route(path, handler, device, log):
    async def serve(request):
        try:
            result = handler(device, request)
            if hasattr(result, "send"):  # an async handler
                result = await result
            return result
        except Exception as error:  # noqa: BLE001 (a user's bug is a 500, not a dropped connection)
            from microws.http import Response

            return Response(_failed(path, error, log), 500)

    return serve


def _check_arg_spec(name, arg, spec):
    where = "command %s: argument %s: " % (name, arg)
    if not is_name(arg) or arg in ("cmd", "id", "token"):
        raise ValueError(where + "must be a name other than cmd, id and token")
    if type(spec) is not tuple or not 1 <= len(spec) <= 4 or spec[0] not in ARG_TYPES:
        raise ValueError(where + "must be (type,), (type, low, high) or (type, low, high, default), "
                         "type int, float, str or bool")
    if len(spec) == 2:
        raise ValueError(where + "give both low and high")
    if len(spec) >= 3:
        if spec[0] is bool or not (is_number(spec[1]) and is_number(spec[2]) and spec[1] <= spec[2]):
            raise ValueError(where + "low and high must be numbers, low <= high (not for bool)")
    if len(spec) == 4 and check_arg(spec, spec[3]) is not None:
        raise ValueError(where + "its default must pass its own check")


def check_arg(spec, value):
    """The problem with one argument's value, or None."""
    kind = spec[0]
    if kind is bool:
        return None if is_bool(value) else "must be true or false"
    if kind is str:
        if not is_str(value):
            return "must be a text"
        size = len(value)
        if len(spec) >= 3 and not spec[1] <= size <= spec[2]:
            return "must be %d to %d characters" % (spec[1], spec[2])
        return None
    if kind is int and not is_int(value):
        return "must be an integer"
    if kind is float and not is_number(value):
        return "must be a number"
    if len(spec) >= 3 and not spec[1] <= value <= spec[2]:
        return "must be from %s to %s" % (spec[1], spec[2])
    return None


def command_args(spec, msg):
    """(args dict, None) or (None, problem) for a command message."""
    args = {}
    for arg in spec:
        if arg not in msg:
            if len(spec[arg]) == 4:
                args[arg] = spec[arg][3]
                continue
            return None, "missing " + arg
        problem = check_arg(spec[arg], msg[arg])
        if problem:
            return None, arg + " " + problem
        args[arg] = msg[arg]
    return args, None


# ------------------------------------------------------------------ loading

def load(path, log=print):
    """Import the user's file at path (custom.py), if it exists. True when it
    loaded (once: loading it again changes nothing); a failure is logged with
    its reason and traceback, and what it registered is dropped: the device
    then runs without it."""
    if status["loaded"] == path:
        return True
    status["loaded"] = status["error"] = None
    folder, _, file = path.rpartition("/")
    module, dot, ext = file.rpartition(".")
    if not dot or ext not in ("py", "mpy"):
        log("custom: %s: not a .py or .mpy file, not loaded" % path)
        status["error"] = "not a .py or .mpy file"
        return False
    try:
        open(path).close()
    except OSError:
        return False  # no custom file: nothing to extend
    before = (list(SENSORS), list(COMMANDS), len(ROUTES))
    added = folder and folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        if module in sys.modules:
            del sys.modules[module]
        __import__(module)
    except Exception as error:  # noqa: BLE001 (a user's bug must not stop the device)
        _forget_since(before)
        sys.modules.pop(module, None)
        reason = "%s: %s" % (type(error).__name__, error)
        status["error"] = reason
        log("custom: %s failed to load, the device runs without it: %s" % (path, reason))
        _print_traceback(error)
        return False
    finally:
        if added:
            sys.path.remove(folder)
    status["loaded"] = path
    log("custom: loaded %s (sensors: %s; commands: %s; routes: %s)" % (
        path, ", ".join(SENSORS) or "-", ", ".join(COMMANDS) or "-", ", ".join(r[0] for r in ROUTES) or "-"))
    return True


def _forget_since(before):
    sensors, commands, routes = before
    for name in list(SENSORS):
        if name not in sensors:
            del SENSORS[name]
    for name in list(COMMANDS):
        if name not in commands:
            del COMMANDS[name]
    del ROUTES[routes:]


def _print_traceback(error):
    """MicroPython: sys.print_exception; CPython: traceback."""
    if hasattr(sys, "print_exception"):
        sys.print_exception(error)
        return
    import traceback

    traceback.print_exception(type(error), error, error.__traceback__)
