"""A microws server for the tests of host_tests/mp_server/, run under the
MicroPython unix port (it also runs under CPython, without /heap):

    micropython -X heapsize=128k host_tests/mp_server/serve.py --port 9001
        [--host 127.0.0.1] [--max-clients N] [--max-size BYTES]
        [--max-head BYTES] [--head-timeout S] [--ping-interval S]
        [--close-timeout S] [--cert DER --key DER] [--quiet 1] [--lib DIR]

Routes:
  /ws          echo; the close code the client sent is kept for /last-close
  /proto       subprotocols sensors.v2, sensors.v1: sends the chosen one
               (or "none"), then echoes
  /close       waits for one text message "CODE REASON", then the server
               closes with that code and reason
  GET /heap    {"alloc": gc.mem_alloc(), "free": gc.mem_free()} after
               gc.collect() (MicroPython only)
  GET /last-close  {"code": the close code of the last /ws client to end}

Prints "READY <port>" once it listens (the test chooses the port: binding
port 0 is not practical on MicroPython's asyncio).
No argparse, typing or dataclasses here: MicroPython runs this file.
"""

import asyncio
import gc
import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"


def _library_path():
    """lib/ of this repository, or the folder after --lib (the tests put
    .mpy files compiled by mpy-cross there: source needs more heap to load)."""
    argv = sys.argv
    for i in range(1, len(argv) - 1):
        if argv[i] == "--lib":
            return argv[i + 1]
    try:
        here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    except NameError:
        here = "host_tests/mp_server"
    return here + "/../../lib"


sys.path.insert(0, _library_path())

from microws.server import ConnectionClosed, Server  # noqa: E402

USAGE = ("usage: serve.py --port P [--host H] [--max-clients N] [--max-size B] [--max-head B] "
         "[--head-timeout S] [--ping-interval S] [--close-timeout S] [--cert F --key F] [--quiet 1] "
         "[--lib DIR]")
TEXT_OPTIONS = ("host", "cert", "key", "lib")
FLOAT_OPTIONS = ("head-timeout", "ping-interval", "close-timeout")


def parse_args(argv):
    options = {"host": "127.0.0.1", "port": 0, "max-clients": 4, "max-size": 1024,
               "max-head": 4096, "head-timeout": 5.0, "ping-interval": 0.0,
               "close-timeout": 2.0, "cert": "", "key": "", "quiet": 0, "lib": ""}
    i = 0
    while i < len(argv):
        name = argv[i]
        if not name.startswith("--") or name[2:] not in options or i + 1 >= len(argv):
            print(USAGE)
            sys.exit(2)
        key = name[2:]
        value = argv[i + 1]
        if key in TEXT_OPTIONS:
            options[key] = value
        elif key in FLOAT_OPTIONS:
            options[key] = float(value)
        else:
            options[key] = int(value)
        i += 2
    if not options["port"]:
        print(USAGE)
        sys.exit(2)
    return options


def make_server(options):
    log = (lambda *args: None) if options["quiet"] else None
    extra = {"log": log} if log else {}
    server = Server(max_clients=options["max-clients"], max_message_size=options["max-size"],
                    max_head_size=options["max-head"], head_timeout=options["head-timeout"],
                    ping_interval=options["ping-interval"], close_timeout=options["close-timeout"],
                    **extra)
    last_close = {"code": None}

    @server.websocket("/ws")
    async def echo(ws):
        try:
            async for message in ws:
                await ws.send(message)
        finally:
            last_close["code"] = ws.close_code

    @server.websocket("/zc")
    async def echo_in_place(ws):
        # The zero-copy API: the message goes back from the connection's own buffer.
        try:
            while True:
                await ws.send(await ws.receive_message())
        except ConnectionClosed:
            pass

    @server.websocket("/proto", subprotocols=["sensors.v2", "sensors.v1"])
    async def proto(ws):
        await ws.send(ws.subprotocol or "none")
        async for message in ws:
            await ws.send(message)

    @server.websocket("/close")
    async def closer(ws):
        order = await ws.receive()
        code, _, reason = order.partition(" ")
        await ws.close(int(code), reason)

    @server.route("/last-close")
    def last(request):
        return {"code": last_close["code"]}

    if IS_MICROPYTHON:
        @server.route("/heap")
        def heap(request):
            gc.collect()
            return {"alloc": gc.mem_alloc(), "free": gc.mem_free()}

    return server


def ssl_context(cert, key):
    import ssl

    if IS_MICROPYTHON:  # DER files
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    else:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def main(options):
    server = make_server(options)
    context = ssl_context(options["cert"], options["key"]) if options["cert"] else None
    await server.start(options["host"], options["port"], ssl=context)
    gc.collect()
    print("READY %d" % options["port"])
    forever = asyncio.Event()
    await forever.wait()


asyncio.run(main(parse_args(sys.argv[1:])))
