"""Soak: a long sensor stream to several dashboards, one of them slow.

    python3 tools/soak.py [--frames 1000000] [--fast 4] [--slow 1] [--queue 8] [--payload 64]

A microws Server broadcasts numbered frames to every client of /ws as fast
as the fast clients take them (as a device would at a rate its dashboards
keep up with). The fast clients must get every frame, in order. The slow
client reads a frame every few milliseconds through a small socket buffer:
the server drops its oldest queued frames and counts them (ws.dropped), and
it must still see its frames in increasing order. Every few seconds the
tool prints traced Python memory (tracemalloc) and the process's RSS; at the
end one JSON line with the totals. Exit status 1 if a rule was broken.
Standard library only (plus lib/).
"""

import asyncio
import json
import os
import socket
import struct
import sys
import time
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "lib"))

from microws.server import Server  # noqa: E402

HEAD = ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
PAYLOAD = 64  # bytes per frame by default: an 8-byte sequence number and a sample-sized body


def rss_bytes():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class Reader:
    """One dashboard: reads the server's unmasked binary frames, checks order."""

    def __init__(self, name, slow_s=0.0):
        self.name = name
        self.slow_s = slow_s
        self.received = 0
        self.last = -1
        self.gaps = 0  # frames skipped (dropped by the server)
        self.out_of_order = 0
        self.closed_with = None

    async def connect(self, port):
        sock = socket.socket()
        if self.slow_s:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        limit = 4096 if self.slow_s else 1 << 16
        self.reader, self.writer = await asyncio.open_connection(sock=sock, limit=limit)
        self.writer.write(HEAD)
        answer = await self.reader.readuntil(b"\r\n\r\n")
        if not answer.startswith(b"HTTP/1.1 101"):
            raise RuntimeError("handshake refused: %r" % answer[:40])

    async def run(self):
        read = self.reader.readexactly
        try:
            while True:
                b0, b1 = await read(2)
                size = b1 & 0x7F
                if size == 126:
                    size = struct.unpack(">H", await read(2))[0]
                elif size == 127:
                    size = struct.unpack(">Q", await read(8))[0]
                payload = await read(size)
                if b0 & 0x0F == 8:
                    self.closed_with = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                    return
                seq = struct.unpack(">Q", payload[:8])[0]
                if seq <= self.last:
                    self.out_of_order += 1
                elif seq != self.last + 1:
                    self.gaps += seq - self.last - 1
                self.last = seq
                self.received += 1
                if self.slow_s:
                    await asyncio.sleep(self.slow_s)
        except (asyncio.IncompleteReadError, ConnectionError):
            return


async def soak(frames, fast=4, slow=1, queue=8, every_s=5.0, payload=PAYLOAD, log=print):
    server = Server(max_clients=fast + slow + 1, queue_size=queue, send_timeout=30, ping_interval=0,
                    log=lambda *a: None)

    @server.websocket("/ws")
    async def stream(ws):
        async for _ in ws:
            pass

    await server.start("127.0.0.1", 0)
    fast_readers = [Reader("fast%d" % i) for i in range(fast)]
    slow_readers = [Reader("slow%d" % i, slow_s=0.005) for i in range(slow)]
    for reader in fast_readers + slow_readers:
        await reader.connect(server.port)
    while len(server.clients) < fast + slow:
        await asyncio.sleep(0.01)
    tasks = [asyncio.create_task(r.run()) for r in fast_readers + slow_readers]
    group = server.group("/ws")
    server_side = list(group)  # kept: a client closed for being too slow leaves the group
    body = bytearray(max(8, payload))
    memory = []
    started = last_report = time.monotonic()
    window = max(1, queue // 2)
    for seq in range(frames):
        struct.pack_into(">Q", body, 0, seq)
        group.broadcast(bytes(body))
        # pace to the fast dashboards: never more than half a queue ahead of them
        while any(seq - r.last >= window for r in fast_readers):
            await asyncio.sleep(0)
        now = time.monotonic()
        if now - last_report >= every_s:
            last_report = now
            current, peak = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (None, None)
            point = {"t_s": round(now - started, 1), "sent": seq + 1, "traced": current, "traced_peak": peak,
                     "rss": rss_bytes()}
            memory.append(point)
            log("soak: %(t_s)7.1f s  sent %(sent)9d  traced %(traced)s B  rss %(rss)s B" % point)
    while any(r.last < frames - 1 for r in fast_readers):
        await asyncio.sleep(0.01)
    dropped = {}
    for ws in server_side:
        dropped[ws.remote_address[1]] = (ws.dropped, ws.close_code)
    by_port = {}
    for r in fast_readers + slow_readers:
        by_port[r.name] = dropped.get(r.writer.get_extra_info("sockname")[1], (0, None))
    elapsed = time.monotonic() - started
    for task in tasks[fast:]:
        task.cancel()  # the slow ones would take minutes to read what is still buffered
    for r in slow_readers:
        r.writer.transport.abort()
    await server.stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    current = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None
    return {
        "frames": frames, "seconds": round(elapsed, 1), "frames_per_s": round(frames / elapsed),
        "clients": {r.name: {"received": r.received, "gaps": r.gaps, "out_of_order": r.out_of_order,
                             "dropped_by_server": by_port[r.name][0], "server_closed_with": by_port[r.name][1],
                             "close_seen": r.closed_with} for r in fast_readers + slow_readers},
        "memory": memory, "traced_end": current, "rss_end": rss_bytes(),
    }


def problems(result):
    """The rules a soak run must keep; [] when it kept them all."""
    found = []
    for name, client in result["clients"].items():
        if client["out_of_order"]:
            found.append("%s got frames out of order" % name)
        if name.startswith("fast"):
            if client["received"] != result["frames"] or client["gaps"] or client["dropped_by_server"]:
                found.append("fast client %s lost frames: %r" % (name, client))
        elif client["gaps"] > client["dropped_by_server"]:
            # frames it missed were dropped by the server, and counted (drops near the
            # end, after its last read, are counted but never seen as gaps)
            found.append("%s: %d frames missing but only %d drops counted" % (name, client["gaps"],
                                                                             client["dropped_by_server"]))
    traced = [p["traced"] for p in result["memory"] if p["traced"] is not None]
    if len(traced) >= 4 and max(traced[len(traced) // 2:]) > 2 * max(traced[: len(traced) // 2]) + (1 << 20):
        found.append("traced memory kept growing: %r" % traced)
    return found


def main(argv):
    options = {"--frames": 1000000, "--fast": 4, "--slow": 1, "--queue": 8, "--payload": PAYLOAD}
    for i in range(0, len(argv), 2):
        if argv[i] not in options or i + 1 >= len(argv):
            sys.exit("usage: python3 tools/soak.py [--frames N] [--fast N] [--slow N] [--queue N] [--payload BYTES]")
        options[argv[i]] = int(argv[i + 1])
    tracemalloc.start()
    result = asyncio.run(soak(options["--frames"], options["--fast"], options["--slow"], options["--queue"],
                              payload=options["--payload"]))
    print(json.dumps(result))
    broken = problems(result)
    for problem in broken:
        print("soak: FAILED:", problem)
    if not broken:
        slow = [c for n, c in result["clients"].items() if n.startswith("slow")]
        print("soak: OK: %d frames at %d/s; fast clients lost nothing; slow clients dropped %s, closed by the "
              "server with %s" % (result["frames"], result["frames_per_s"], [c["dropped_by_server"] for c in slow],
                                  [c["server_closed_with"] for c in slow]))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
