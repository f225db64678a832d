"""The MicroPython side of tools/measure_boards.py: start the firmware's App
for one board as firmware/main.py does, and report its heap. MicroPython
(unix port) only; measure_boards.py runs it with a fixed heap and the
precompiled library and firmware first on MICROPYPATH:

    MICROPYPATH=.frozen:BUILD/lib:BUILD/firmware micropython -X heapsize=2M \\
        tools/measure_device.py BOARDS_DIR BOARD PORT MAX_CLIENTS

With MICROWS_ROMFS=IMAGE, the modules come from that ROMFS image instead
(mount_romfs below).

It prints `@@HEAP {"at": "...", "alloc": N}` lines (gc.mem_alloc() after a
collection) before the imports and after the start, and one with "at":
"history": the heap of a history ring (firmware/history.py) of the board's
capacity, and of 1000 samples more (the cost per sample is the difference
over 1000), each made alone and dropped again. Then it serves on
127.0.0.1:PORT until killed. The side channel for the connections is one
route the firmware does not have: GET /__heap collects and answers
{"alloc": N, "clients": n}. Its request's own objects are in every answer
alike, so they cancel in the per-connection slope.
"""

import gc
import sys


def mount_romfs():
    """With MICROWS_ROMFS=IMAGE (measure_boards.py's second run): the library
    and firmware from a ROMFS image on /rom, imported in place, as from a
    board's ROMFS partition. The image is one bytearray in this heap, read
    before BEFORE, so it is not counted."""
    import os
    import vfs

    path = os.getenv("MICROWS_ROMFS")
    if path:
        image = bytearray(os.stat(path)[6])
        with open(path, "rb") as f:
            f.readinto(image)
        vfs.mount(vfs.VfsRom(image), "/rom")
        sys.path[:0] = ["/rom/lib", "/rom/firmware"]


mount_romfs()
gc.collect()
BEFORE = gc.mem_alloc()  # the interpreter and this script, as after a board's boot

import json  # noqa: E402


def heap():
    gc.collect()
    gc.collect()
    return gc.mem_alloc()


def report(at, alloc, **more):
    record = {"at": at, "alloc": alloc, "modules": sorted(sys.modules)}
    record.update(more)
    print("@@HEAP " + json.dumps(record))


def ring_heap(capacity, count):
    """The heap a History of capacity samples of count values takes."""
    from history import History

    before = heap()
    ring = History(capacity, count)
    taken = heap() - before
    del ring
    return taken


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
    from app import App, drop_startup_modules
    from hardware import hardware
    from microws.compat import asyncio

    app = App(board, config, hardware(), www=boards_dir + "/../firmware/www", log=lambda *a: None)
    del parse_config, load_board, board  # as main.py does
    drop_startup_modules()  # as main.py does

    @app.server.route("/__heap")
    def _heap(request):
        return {"alloc": heap(), "clients": app.clients()}

    async def run():
        await app.start("127.0.0.1", port)
        app.device.read()  # every sensor read once: drivers imported and buses claimed, as while streaming
        app.device.seq = 0
        count = len(app.device.sensors)
        capacity = app.device.history.capacity
        ring = ring_heap(capacity, count)
        report("history", ring, capacity=capacity, values=count,
               per_1000=ring_heap(capacity + 1000, count) - ring)
        report("started", heap())
        while True:
            await asyncio.sleep(3600)

    asyncio.run(run())


main()
