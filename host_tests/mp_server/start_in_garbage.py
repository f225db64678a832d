"""Under MicroPython: start a server with max_clients slots in a heap that the
program before it left either collected ("clean") or full of garbage between
live objects ("garbage"); print "started" or "refused".

    micropython -X heapsize=N start_in_garbage.py clean|garbage MAX_CLIENTS PAIRS

PAIRS live 8-byte objects, each followed by a 200-byte one that becomes
garbage: the holes a program's start-up leaves behind (imports, parsing a
configuration). Run by test_mp_start_heap.py.
"""

import gc
import sys

import asyncio
from microws.server import Server

mode, max_clients, pairs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
live = []
garbage = []
for _ in range(pairs):
    live.append(bytearray(8))
    garbage.append(bytearray(200))
garbage = None
if mode == "clean":
    gc.collect()


async def main():
    server = Server(max_clients=max_clients, max_message_size=512, queue_size=4, ping_interval=0)
    try:
        await server.start("127.0.0.1", 0)
    except MemoryError as error:
        print("refused", error)
        return
    print("started")
    await server.stop()


asyncio.run(main())
