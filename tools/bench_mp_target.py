"""The MicroPython half of tools/bench_mp.py: runs inside `micropython`.

tools/bench_mp.py compiles this file with mpy-cross beside the servers'
.mpy files and starts it once per measurement:

    MICROPYPATH=.frozen:STAGE micropython -X heapsize=N -m bench_mp_target \
        MODE SERVER [key=value ...]

With romfs=IMAGE, the ROMFS image is mounted on /rom first (MicroPython
1.25+), so the server's modules are imported from it in place.

MODE import: import the modules named by mods=a,b,c one after the other and
    print the heap each one took (gc.collect(); gc.mem_alloc() around it).
    asyncio is imported first, with every submodule, as a row of its own,
    so a library's figure is its own.
MODE serve: start SERVER's echo server on 127.0.0.1:port and print
    "@@ ready". With side=PORT, a second tiny TCP server answers one
    command byte per connection: "c" collects and replies gc.mem_alloc(),
    "a" replies gc.mem_alloc() without collecting, "q" ends the process.
    alloc=1 disables the garbage collector once the server runs.

SERVER: microws, microws_rm (the echo handler on ws.receive_message()),
microdot, or mws (micropython-websocket-server's websocket_server).

Every accepted socket of every server gets TCP_NODELAY. microws and
microdot take their sockets from asyncio.start_server, so this script
replaces asyncio.start_server with one whose callback sets the option on the
accepted socket and then hands over to the server's own callback: a plain
function, so no coroutine frame is added per connection. micropython-
websocket-server sets it from its on_connect callback.

Lines for the harness start with "@@ ". Plain MicroPython: no argparse.
"""

import gc
import sys

IPPROTO_TCP = 6  # Linux values: this port's socket module has no constants for them
TCP_NODELAY = 1


def say(*words):
    print("@@", *words)


def options(argv):
    found = {}
    for word in argv:
        if "=" in word:
            key, value = word.split("=", 1)
            found[key] = value
    return found


def heap(collect=True):
    if collect:
        gc.collect()
    return gc.mem_alloc()


def import_asyncio():
    import asyncio

    for name in asyncio._attrs:  # the submodules load on first use: load them all now
        getattr(asyncio, name)


# ============================================================ import mode


def measure_imports(names):
    say("start", heap())
    before = heap()
    import_asyncio()
    after = heap()
    say("import", "asyncio", after - before)
    for name in names:
        before = heap()
        try:
            __import__(name)
        except ImportError as error:  # e.g. a CPython-only module
            say("import_failed", name, repr(error).replace(" ", "_"))
            continue
        after = heap()
        say("import", name, after - before)
    loaded = [name for name in sys.modules if name.startswith("microws")]
    say("loaded", ",".join(sorted(loaded)))
    if "microws.server" in sys.modules:
        server = sys.modules["microws.server"]
        say("receive_message", 1 if hasattr(server.WebSocket, "receive_message") else 0)


# ============================================================ servers


def nodelay(sock):
    try:
        sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass


def patch_start_server(asyncio):
    """asyncio.start_server, with TCP_NODELAY on every accepted socket."""
    original = asyncio.start_server

    def start_server(callback, host, port, *args, **kwargs):
        def accepted(reader, writer):
            nodelay(writer.s)
            return callback(reader, writer)

        return original(accepted, host, port, *args, **kwargs)

    asyncio.start_server = start_server
    return original


def microws_server(opts, variant):
    from microws.server import ConnectionClosed, Server

    server = Server(max_clients=int(opts.get("max_clients", "4")),
                    max_message_size=int(opts.get("max_message_size", "1024")),
                    queue_size=int(opts.get("queue_size", "8")),
                    ping_interval=0, close_timeout=1)

    if variant:
        @server.websocket("/")
        async def echo(ws):
            try:
                while True:
                    message = await ws.receive_message()
                    await ws.send(message)
            except ConnectionClosed:
                pass
    else:
        @server.websocket("/")  # the README's echo handler
        async def echo(ws):
            async for message in ws:
                await ws.send(message)

    async def start(port):
        await server.start("127.0.0.1", port)

    return start


def microdot_server(opts):
    import asyncio

    from microdot import Microdot
    from microdot.websocket import WebSocket, with_websocket

    WebSocket.max_message_length = int(opts.get("max_message_size", "1024"))
    app = Microdot()

    @app.route("/")
    @with_websocket
    async def echo(request, ws):  # microdot's documented echo handler
        while True:
            message = await ws.receive()
            await ws.send(message)

    async def start(port):
        asyncio.create_task(app.start_server("127.0.0.1", port))
        while getattr(app, "server", None) is None:
            await asyncio.sleep_ms(1)

    return start


async def side_channel(reader, writer):
    command = await reader.read(1)
    if command == b"q":
        sys.exit(0)
    value = heap(command == b"c")
    writer.write(b"%d\n" % value)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


def serve_asyncio(server, opts):
    import_asyncio()
    import asyncio

    original_start_server = patch_start_server(asyncio)
    if server == "microdot":
        start = microdot_server(opts)
    else:
        start = microws_server(opts, server == "microws_rm")

    async def main():
        await start(int(opts["port"]))
        if "side" in opts:
            await original_start_server(side_channel, "127.0.0.1", int(opts["side"]))
        if opts.get("alloc") == "1":
            gc.collect()
            gc.disable()
        say("ready")
        while True:
            await asyncio.sleep(3600)

    asyncio.run(main())


def serve_mws(opts):
    from websocket_server import WebSocketServerApp

    def on_connect(conn, addr):
        nodelay(conn._sock)

    def on_message(conn, message):
        conn.send(message)

    app = WebSocketServerApp("127.0.0.1", int(opts["port"]), on_connect=on_connect, on_message=on_message)
    say("ready")  # it listens a moment later, inside serve_forever()
    app.serve_forever()


def mount_romfs(path):
    """Mount the ROMFS image at path on /rom, first on sys.path: its .mpy
    files are imported in place. The image is read into one bytearray of
    its size (no growing buffer); "@@ romfs N" is the heap that took."""
    import os
    import vfs

    before = heap()
    image = bytearray(os.stat(path)[6])
    with open(path, "rb") as f:
        f.readinto(image)
    vfs.mount(vfs.VfsRom(image), "/rom")
    sys.path.insert(0, "/rom")
    say("romfs", heap() - before)


def main():
    mode = sys.argv[1]
    server = sys.argv[2]
    opts = options(sys.argv[3:])
    if "romfs" in opts:
        mount_romfs(opts["romfs"])
    if mode == "import":
        measure_imports(opts["mods"].split(","))
        say("done")
    elif server == "mws":
        serve_mws(opts)
    else:
        serve_asyncio(server, opts)


main()
