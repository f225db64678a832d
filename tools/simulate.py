"""Run the device on this computer: the firmware's App with simulated sensors.

    python3 tools/simulate.py [--host 127.0.0.1] [--port 8080] [--rate 2]
                              [--seed 1] [--token SECRET] [--board host]
                              [--name simulated] [--max-clients N]
                              [--cert cert.pem [--key key.pem]]
                              [--mqtt HOST[:PORT] [--device-name NAME]] [--devices N]
                              [--custom FILE] [--clock host|none]
    micropython tools/simulate.py [the same options, except --cert/--key]

Then open the printed URL. --mqtt adds the MQTT uplink to a broker (the
"mqtt" block of config.json: topics microws/NAME/...); --devices N runs N
devices in this one process, NAME-1 ... NAME-N with seeds SEED+0 ...
SEED+N-1, on ports PORT ... PORT+N-1 (each URL is printed).

The LED prints `LED on` / `LED off` here. Ctrl-C
(or SIGTERM on CPython) stops it; every dashboard then gets a close 1001 and
starts reconnecting. The board file comes from boards/ (host by default:
other boards' hardware sensors have nothing to read on a laptop).

The same file runs on CPython and on MicroPython's unix port, which runs the
firmware's own code as a board does (real heap: the free_heap sensor and the
`info` command show it; try `micropython -X heapsize=155k tools/simulate.py`).
Every difference between the two is in the section "CPython / MicroPython"
below, with its reason.
"""

import sys

try:
    import asyncio
except ImportError:  # MicroPython started with a MICROPYPATH that lacks ".frozen"
    sys.exit("microws: asyncio not found; run as MICROPYPATH=.frozen micropython tools/simulate.py")

USAGE = """usage: simulate.py [-h] [--host HOST] [--port PORT] [--board BOARD] [--rate RATE]
                   [--seed SEED] [--name NAME] [--token TOKEN] [--max-clients N]
                   [--cert CERT] [--key KEY] [--mqtt HOST[:PORT]] [--mqtt-ca CA]
                   [--device-name NAME] [--devices N] [--custom FILE] [--clock host|none]

Simulate a microws device with its dashboard.

options:
  -h, --help     show this help message and exit
  --host HOST    address to listen on (default 127.0.0.1; 0.0.0.0: the whole network)
  --port PORT    port to listen on (default 8080)
  --board BOARD  board file in boards/ (default host), or the path of one (FILE.json)
  --rate RATE    samples per second (default: the board's)
  --seed SEED    seed of the simulated readings (default 1)
  --name NAME    device name (default simulated)
  --token TOKEN  commands only from pages opened with ?token=TOKEN
  --max-clients N
                 dashboards at once (default: the board's); one more is refused
                 with 503 and its page says "device busy"
  --cert CERT    serve https:// and wss:// with this certificate (PEM; CPython only)
  --key KEY      the certificate's private key (PEM; default: in --cert; CPython only)
  --mqtt HOST[:PORT]
                 publish to this MQTT broker (port 1883 unless given) and take commands from it
                 (topics microws/NAME/samples, info, status, cmd, reply)
  --mqtt-ca CA   connect to the broker with TLS, its certificate from this CA (PEM)
  --device-name NAME
                 the same as --name
  --devices N    run N simulated devices (NAME-1 ... NAME-N, seeds SEED ...,
                 ports PORT ... PORT+N-1; default 1)
  --custom FILE  load this custom.py (your sensors, commands, routes: firmware/extend.py)
  --clock host|none
                 the wall-clock time: the host's (default), or none, as on a board
                 without NTP: the first dashboard's time command sets it"""

# option: (type, default)
OPTIONS = {
    "host": (str, "127.0.0.1"),
    "port": (int, 8080),
    "board": (str, "host"),
    "rate": (float, None),
    "seed": (int, 1),
    "name": (str, "simulated"),
    "token": (str, ""),
    "max_clients": (int, None),
    "cert": (str, None),
    "key": (str, None),
    "mqtt": (str, None),
    "mqtt_ca": (str, None),
    "device_name": (str, None),
    "devices": (int, 1),
    "custom": (str, None),
    "clock": (str, "host"),
}


# ------------------------------------------------------------------ CPython / MicroPython
# Everything that differs between the two runtimes is here, with its reason.

MICROPYTHON = sys.implementation.name == "micropython"


def _absolute(path):
    """An absolute, normalised path, by string operations: MicroPython has
    no os.path (the unix port's os has getcwd)."""
    import os

    if not path.startswith("/"):
        path = os.getcwd().rstrip("/") + "/" + path
    parts = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part and part != ".":
            parts.append(part)
    return "/" + "/".join(parts)


def _line_buffered_stdout():
    """Every line out at once, the device's log included (LED on, sensor
    failed, mqtt: ...): CPython buffers a piped stdout, so someone reading it
    through tee or a test would see nothing for minutes. MicroPython's stdout
    is unbuffered."""
    if not MICROPYTHON:
        sys.stdout.reconfigure(line_buffering=True)


def _build_page(www):
    """Rebuild the page's .gz so it is never stale. tools/build_www.py needs
    CPython (argparse, zlib); under MicroPython the page is served as it is."""
    try:
        import build_www
    except ImportError as error:
        import os

        names = os.listdir(www)
        if "index.html.gz" not in names:
            print("microws: dashboard not rebuilt (tools/build_www.py needs CPython: %s); "
                 "serving www/index.html uncompressed" % error)
            return
        stale = os.stat(www + "/index.html.gz")[8] < os.stat(www + "/index.html")[8]  # st_mtime
        print("microws: dashboard not rebuilt (tools/build_www.py needs CPython: %s); serving "
             "www/index.html.gz as it is%s" % (error, " -- it is OLDER than index.html, run "
                                                "python3 tools/build_www.py" if stale else ""))
        return
    build_www.build(www)


def _tls_context(args):
    """CPython's ssl: MicroPython's ssl differs and is not wired up here."""
    if not args.cert:
        return None
    if MICROPYTHON:
        raise ConfigError("--cert/--key: TLS is CPython only here; run python3 tools/simulate.py")
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.cert, args.key)
    except OSError as error:  # ssl.SSLError among them
        raise ConfigError("--cert %s%s: not a PEM certificate and key that belong together (%s); "
                          "README, Security: how to make one" % (args.cert, " --key " + args.key if args.key else "",
                                                                 _reason(error)))
    return context


def _on_stop_signals(stopped):
    """CPython: SIGINT and SIGTERM set `stopped`, so serve() stops the app
    inside its own loop. MicroPython has no signal module: Ctrl-C (SIGINT)
    raises KeyboardInterrupt out of the loop and main() stops the app then;
    SIGTERM ends the process at once."""
    if MICROPYTHON:
        return
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stopped.set)
        except (NotImplementedError, RuntimeError):  # Windows
            pass


def _stop_after_interrupt(running):
    """MicroPython: finish app.stop() in the interrupted loop, whose tasks
    (the clients' readers) are still queued; asyncio.run() would drop them."""
    while MICROPYTHON and running:
        asyncio.get_event_loop().run_until_complete(_stop(running.pop()))


def _reason(error):
    """An OSError's text: MicroPython's have only the errno."""
    return getattr(error, "strerror", None) or str(error)


def _is_file(path):
    """By opening it: MicroPython has no os.path."""
    try:
        open(path, "rb").close()
        return True
    except OSError:
        return False


# ------------------------------------------------------------------ paths

ROOT = _absolute(__file__).rsplit("/", 2)[0]
for folder in (ROOT + "/lib", ROOT + "/firmware", ROOT + "/tools"):
    if folder not in sys.path:
        sys.path.insert(0, folder)

from app import App  # noqa: E402
from boardfile import load_board  # noqa: E402
from config import ConfigError, parse_config, redacted  # noqa: E402
from hardware import hardware  # noqa: E402
from microws.compat import ticks_diff, ticks_ms  # noqa: E402

WWW = ROOT + "/firmware/www"


# ------------------------------------------------------------------ options

class ListenError(Exception):
    """A device's port could not be opened: which one, and why."""


class Options:
    def __init__(self, values):
        for key in values:
            setattr(self, key, values[key])


def _usage_error(problem):
    sys.stderr.write(USAGE.split("\n\n")[0] + "\nsimulate.py: error: " + problem + "\n")
    sys.exit(2)


def parse_args(argv=None):
    """The options, like argparse would give them (--opt VALUE, --opt=VALUE,
    a unique prefix of an option); argparse itself is CPython only."""
    if argv is None:
        argv = sys.argv[1:]
    values = {}
    for key in OPTIONS:
        values[key] = OPTIONS[key][1]
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg in ("-h", "--help"):
            print(USAGE)
            sys.exit(0)
        if not arg.startswith("--") or len(arg) == 2:
            _usage_error("unrecognized arguments: " + arg)
        name, sep, value = arg[2:].partition("=")
        name = name.replace("-", "_")  # --max-clients is max_clients
        matches = [key for key in OPTIONS if key == name] or [key for key in OPTIONS if key.startswith(name)]
        if len(matches) != 1:
            if matches:
                _usage_error("ambiguous option: --%s could match %s" % (name, ", ".join("--" + m.replace("_", "-") for m in matches)))
            _usage_error("unrecognized arguments: " + arg)
        key = matches[0]
        if not sep:
            if i >= len(argv):
                _usage_error("argument --%s: expected one argument" % key.replace("_", "-"))
            value = argv[i]
            i += 1
        kind = OPTIONS[key][0]
        try:
            values[key] = kind(value)
        except ValueError:
            _usage_error("argument --%s: invalid %s value: %r" % (key.replace("_", "-"), kind.__name__, value))
    if values["clock"] not in ("host", "none"):
        _usage_error("argument --clock: must be host or none")
    if values["max_clients"] is not None and not 1 <= values["max_clients"] <= 64:
        _usage_error("argument --max-clients: must be between 1 and 64")
    if not 1 <= values["devices"] <= 1000:
        _usage_error("argument --devices: must be between 1 and 1000")
    if values["device_name"] is not None:
        values["name"] = values["device_name"]
    if values["mqtt"] is not None:
        values["mqtt"] = _broker(values["mqtt"])
    for key in ("custom", "cert", "key", "mqtt_ca"):
        if values[key] is not None and not _is_file(values[key]):
            _usage_error("argument --%s: no such file: %s" % (key, values[key]))
    if values["key"] and not values["cert"]:
        _usage_error("argument --key: needs --cert, the certificate this key belongs to")
    return Options(values)


def _broker(text):
    """--mqtt HOST or HOST:PORT ([IPv6]:PORT), as tools/deploy.py takes it:
    the port is 1883 unless given."""
    host, port = text, "1883"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        _usage_error("argument --mqtt: must be HOST or HOST:PORT (port 1 to 65535), e.g. 127.0.0.1 or 127.0.0.1:1883")
    return host, int(port)


# ------------------------------------------------------------------ the device

def make_app(args, log=print):
    if args.custom:  # before the board file, which may name its sensors (as main.py)
        import extend

        extend.load(_absolute(args.custom), log)
    boards, name = ROOT + "/boards", args.board
    if name.endswith(".json"):  # a board file elsewhere, by its path (examples/host-custom.json)
        boards, _, name = _absolute(name).rpartition("/")
        name = name[:-5]
    try:
        board = load_board(name, boards)
    except ValueError as error:
        raise ConfigError(str(error))
    if args.max_clients is not None:
        board = dict(board)
        board["max_clients"] = args.max_clients
    data = {"board": board["name"], "device_name": args.name, "port": args.port, "token": args.token}
    if args.rate is not None:
        data["rate"] = args.rate
    if args.mqtt is not None:
        data["mqtt"] = {"host": args.mqtt[0], "port": args.mqtt[1]}
        if args.mqtt_ca:
            data["mqtt"].update(tls=True, ca=args.mqtt_ca)
    config = parse_config(data, board, "options")
    log("microws: config", redacted(config))
    started = ticks_ms()

    def since_start():  # a board's ticks_ms counts from its boot
        return ticks_diff(ticks_ms(), started)

    hw = hardware(seed=args.seed, clock=since_start)
    if args.clock == "none":
        del hw["host_time"]
    return App(board, config, hw, www=WWW, log=log)


async def _stop(app):
    await app.stop()
    print("microws: stopped")


def device_options(args, i):
    """The options of device i of --devices N: its own name, seed and port."""
    if args.devices == 1:
        return args
    one = Options(args.__dict__)
    one.name = "%s-%d" % (args.name, i + 1)
    one.seed = args.seed + i
    one.port = args.port + i
    return one


def _prefixed(name):
    """A log that names the device, when several share the console."""
    def log(*parts):
        print(name + ":", *parts)
    return log


async def serve(args, running=None):
    """Serve until a stop signal; `running` (a list) receives the apps."""
    context = _tls_context(args)
    _build_page(WWW)
    stopped = asyncio.Event()
    _on_stop_signals(stopped)
    if running is None:
        running = []
    apps = []
    try:
        for i in range(args.devices):
            one = device_options(args, i)
            app = make_app(one, print if args.devices == 1 else _prefixed(one.name))
            try:
                await app.start(one.host, one.port, context)
            except OSError as error:
                raise ListenError("cannot listen on %s:%d: %s (another program has it? choose another with --port)"
                                  % (one.host, one.port, _reason(error)))
            apps.append(app)
            running.append(app)
            shown = "127.0.0.1" if one.host in ("0.0.0.0", "") else one.host
            suffix = "/?token=<your token>" if one.token else "/"  # the token itself is never printed
            scheme = "https" if context else "http"
            port = app.server.port or one.port  # MicroPython's listener does not tell its port
            print("microws: simulated device %r, open %s://%s:%d%s" % (one.name, scheme, shown, port, suffix))
        await stopped.wait()
    finally:  # not reached on MicroPython's Ctrl-C: see _stop_after_interrupt
        for app in apps:
            if app in running:
                running.remove(app)
                await _stop(app)


def main(argv=None):
    _line_buffered_stdout()
    args = parse_args(argv)
    running = []
    try:
        asyncio.run(serve(args, running))
    except (ConfigError, ListenError) as error:
        sys.exit("microws: " + str(error))
    except KeyboardInterrupt:
        _stop_after_interrupt(running)


if __name__ == "__main__":
    main()
