"""A microws server under MicroPython that locks its heap on request.

    micropython zero_alloc_server.py PORT

Routes: /echo echoes without a copy (receive_message, send(message)); a
text message "!lock" locks the heap (micropython.heap_lock), "!unlock"
unlocks it and answers with what happened meanwhile; "!bcast N" broadcasts
a 64-byte frame made in advance to the clients of /push, N times. While
the heap is locked any allocation raises MemoryError, so a client that
keeps getting its answers proves the path allocated nothing.
"""

import sys

ROOT = __file__.rsplit("/", 3)[0] if __file__.count("/") >= 3 else "../.."
sys.path.insert(0, ROOT + "/lib")

import micropython  # noqa: E402

from microws.server import Server  # noqa: E402

PORT = int(sys.argv[1])
LOCKED = b"locked"
FRAME = bytearray(64)  # what /push clients receive while the heap is locked
for i in range(64):
    FRAME[i] = 65 + i % 26
state = [0, 0, 0]  # heap locked?, messages echoed while locked, broadcasts while locked

server = Server(max_clients=6, max_message_size=2048, ping_interval=0.5, queue_size=4,
                log=lambda *args: print("server:", *args))


def command(message, tag):
    """Does this text message start with tag (compared in place)?"""
    if message.size < len(tag):
        return False
    buf = message.buffer
    for i in range(len(tag)):
        if buf[i] != tag[i]:
            return False
    return True


@server.websocket("/echo")
async def echo(ws):
    push = server.group("/push")
    while True:
        message = await ws.receive_message()
        if message.text and message.size and message.buffer[0] == 33:  # "!"
            if command(message, b"!lock"):
                state[0] = 1
                state[1] = state[2] = 0
                micropython.heap_lock()
                await ws.send(LOCKED, True)
                continue
            if command(message, b"!unlock"):
                try:
                    bytearray(16)
                    effective = False
                except MemoryError:
                    effective = True
                micropython.heap_unlock()
                state[0] = 0
                await ws.send("unlocked %d %d %d" % (effective, state[1], state[2]))
                continue
            if command(message, b"!bcast"):
                n = message.buffer[7] - 48  # one digit
                for _ in range(n):
                    push.broadcast(FRAME)
                    state[2] += 1
                await ws.send(LOCKED if state[0] else b"sent", True)
                continue
        if state[0]:
            state[1] += 1
        await ws.send(message)


@server.websocket("/push")
async def push(ws):
    while True:
        await ws.receive_message()  # pings are answered in here


print("ready", PORT)
server.run("127.0.0.1", PORT)
