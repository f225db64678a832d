"""The MicroPython side of tools/measure_boards.py: start the firmware's App
for one board as firmware/main.py does, and report its heap. MicroPython
(unix port) only; measure_boards.py runs it with a fixed heap and the
precompiled library and firmware first on MICROPYPATH:

    MICROPYPATH=.frozen:BUILD/lib:BUILD/firmware micropython -X heapsize=2M \\
        tools/measure_device.py BOARDS_DIR BOARD PORT MAX_CLIENTS

It prints `@@HEAP {"at": "...", "alloc": N}` lines (gc.mem_alloc() after a
collection) before the imports and after the start, then serves on
127.0.0.1:PORT until killed. The side channel for the connections is one
route the firmware does not have: GET /__heap collects and answers
{"alloc": N, "clients": n}. Its request's own objects are in every answer
alike, so they cancel in the per-connection slope.
"""

import gc
import sys

gc.collect()
BEFORE = gc.mem_alloc()  # the interpreter and this script, as after a board's boot

import json  # noqa: E402


def heap():
    gc.collect()
    gc.collect()
    return gc.mem_alloc()


def report(at, alloc):
    print("@@HEAP " + json.dumps({"at": at, "alloc": alloc, "modules": sorted(sys.modules)}))


def main():
    boards_dir, name, port, max_clients = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    report("before", BEFORE)
    # what main.py imports and keeps (wifi joins nothing here: the unix port has no network)
    from config import parse_config

    from boardfile import load_board
    import wifi  # noqa: F401

    board = load_board(name, boards_dir)
    board["max_clients"] = max_clients
    config = parse_config({"board": name, "port": port}, board, "measure")
    from app import App
    from hardware import hardware
    from microws.compat import asyncio

    app = App(board, config, hardware(), www=boards_dir + "/../firmware/www", log=lambda *a: None)

    @app.server.route("/__heap")
    def _heap(request):
        return {"alloc": heap(), "clients": app.clients()}

    async def run():
        await app.start("127.0.0.1", port)
        app.device.read()  # every sensor read once: drivers imported and buses claimed, as while streaming
        app.device.seq = 0
        report("started", heap())
        while True:
            await asyncio.sleep(3600)

    asyncio.run(run())


main()
