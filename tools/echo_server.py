"""An echo server: every text or binary message goes back as it came.

For conformance tests (Autobahn), interop tests and benchmarks. Runs under
CPython and under MicroPython's unix port (no argparse):

    python3 tools/echo_server.py [--host 127.0.0.1] [--port 9001]
        [--max-size BYTES] [--max-clients N] [--lib DIR]
    micropython tools/echo_server.py --port 9001

--lib: where microws is loaded from (default: the repository's lib/; a
folder of .mpy files compiled by mpy-cross takes far less heap).
"""

import sys

try:
    _here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
except NameError:
    _here = "tools"
_lib = _here + "/../lib"
if "--lib" in sys.argv:
    _at = sys.argv.index("--lib")
    _lib = sys.argv[_at + 1]
    del sys.argv[_at : _at + 2]
sys.path.insert(0, _lib)

from microws.compat import IS_MICROPYTHON  # noqa: E402
from microws.server import Server  # noqa: E402

# CPython: large enough for every Autobahn case (up to 16 MiB), many clients;
# MicroPython: what a small heap holds (the server makes every client's
# buffer when it starts).
DEFAULT_MAX_SIZE = 64 * 1024 if IS_MICROPYTHON else 16 * 1024 * 1024
DEFAULT_MAX_CLIENTS = 2 if IS_MICROPYTHON else 64
USAGE = "usage: echo_server.py [--host H] [--port P] [--max-size BYTES] [--max-clients N] [--lib DIR]"


def parse_args(argv):
    options = {"host": "127.0.0.1", "port": 9001, "max-size": DEFAULT_MAX_SIZE, "max-clients": DEFAULT_MAX_CLIENTS}
    i = 0
    while i < len(argv):
        name = argv[i]
        if name in ("-h", "--help"):
            print(USAGE)
            sys.exit(0)
        if not name.startswith("--") or name[2:] not in options or i + 1 >= len(argv):
            print(USAGE)
            sys.exit(2)
        value = argv[i + 1]
        options[name[2:]] = value if name == "--host" else int(value)
        i += 2
    return options


def make_server(max_size, max_clients):
    server = Server(max_clients=max_clients, max_message_size=max_size,
                    ping_interval=0, close_timeout=1)

    @server.websocket("/")
    async def echo(ws):
        # No copy: the message goes back from the connection's own buffer.
        while True:
            message = await ws.receive_message()
            await ws.send(message)

    return server


def main():
    options = parse_args(sys.argv[1:])
    server = make_server(options["max-size"], options["max-clients"])
    print("echo server on ws://%s:%d/ (max message %d bytes, %d clients)"
          % (options["host"], options["port"], options["max-size"], options["max-clients"]))
    server.run(options["host"], options["port"])


main()
