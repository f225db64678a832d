"""The MicroPython side of tools/bench_mp.py. Runs only on MicroPython.

tools/bench_mp.mjs loads this module into the WebAssembly port of
MicroPython (under Node) and awaits main(job), where job is a JSON string
that says what to measure. Each figure is printed as one line
`@@BENCH {json}`; tools/bench_mp.py collects them.

The WebAssembly port has no sockets, so each connection is a FakeStream: an
in-memory object with the interface of MicroPython's asyncio Stream (one
object for reading and writing: readinto, read, readline, readexactly,
write, drain, awrite, out_buf, .s.close(), close, wait_closed, aclose,
get_extra_info). Both servers get their connections the way
asyncio.start_server hands them over: microws through
Server._serve_client(reader, writer), microdot through
Microdot.handle_request(reader, writer). Everything from the request head
on (handshake, routing, the handler, frames) is the servers' own code.

Like the real Stream, every read and every drain yields to the scheduler
once (the real one waits for the poller even when data is ready). A read
returns what is ready of the current frame, at most what was asked for.
Writes are counted and dropped: the peer reads instantly.
"""

import asyncio
import gc
import json
import sys
import time

MARK = "@@BENCH "

# A browser's upgrade request for the dashboard (Chromium on Linux): both
# servers parse it and keep its headers for the connection's lifetime.
HEAD = (
    b"GET /ws HTTP/1.1\r\n"
    b"Host: 192.168.1.50\r\n"
    b"Connection: Upgrade\r\n"
    b"Pragma: no-cache\r\n"
    b"Cache-Control: no-cache\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/126.0.0.0 Safari/537.36\r\n"
    b"Upgrade: websocket\r\n"
    b"Origin: http://192.168.1.50\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Accept-Encoding: gzip, deflate\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    b"\r\n"
)
MASK = b"\x37\xfa\x21\x3d"
PEER = ("192.168.1.23", 50123)


def emit(record):
    print(MARK + json.dumps(record))


def note(text):
    emit({"measure": "note", "text": text})


async def settled():
    """Heap in use after a collection. This port collects only once control
    has gone back to JavaScript: sleep, then collect again."""
    for _ in range(3):
        gc.collect()
        await asyncio.sleep_ms(20)
    return gc.mem_alloc()


def block_bytes(n):
    """Heap taken by an n-byte buffer: MicroPython allocates 16-byte blocks."""
    return (n + 15) // 16 * 16


# ================================================================ frames


def masked_frame(size, opcode=2):
    """A client's masked frame carrying `size` bytes."""
    head = bytearray([0x80 | opcode])
    if size < 126:
        head.append(0x80 | size)
    elif size < 65536:
        head.append(0x80 | 126)
        head += size.to_bytes(2, "big")
    else:
        head.append(0x80 | 127)
        head += size.to_bytes(8, "big")
    head += MASK
    body = bytearray(size)
    for i in range(size):
        body[i] = ((i * 7 + 3) & 0xFF) ^ MASK[i & 3]
    return bytes(head + body)


def reply_size(size):
    """Bytes of the server's unmasked frame carrying `size` bytes."""
    if size < 126:
        return 2 + size
    if size < 65536:
        return 4 + size
    return 10 + size


# ================================================================ streams


class _Socket:
    """What stream.s is: compat.abort() closes the socket through it."""

    def __init__(self, stream):
        self.stream = stream

    def close(self):
        self.stream.closed = True
        self.stream._more.set()


class Sink:
    """Bytes written by several streams together (a broadcast)."""

    def __init__(self):
        self.total = 0


class FakeStream:
    """One accepted TCP connection, as MicroPython's asyncio Stream.

    The peer first sends `head`; supply(frame, count) then queues `count`
    copies of a frame. A read with nothing queued waits for supply() or
    end(). write() counts the bytes and sets `reached` once `written`
    reaches `target`.
    """

    def __init__(self, head, sink=None):
        self.s = _Socket(self)
        self.out_buf = b""  # the real Stream keeps unsent bytes here; ours sends at once
        self._src = head
        self._view = memoryview(head)
        self._pos = 0
        self._frame = None
        self._frame_view = None
        self._left = 0
        self._more = asyncio.Event()
        self.eof = False  # the peer closed its side
        self.closed = False  # our side closed the socket
        self.waiting = False  # a read waits for input
        self.idle = asyncio.Event()  # set when a read waits for input
        self.written = 0
        self.target = -1
        self.reached = asyncio.Event()
        self.first = None  # the first bytes written (the handshake answer)
        self.sink = sink
        self.reads = 0
        self.drains = 0

    # ------------------------------------------------- the peer's side

    def supply(self, frame, count):
        if self._frame is not frame:
            self._frame = frame
            self._frame_view = memoryview(frame)
        self._left += count
        self._more.set()

    def end(self):
        self.eof = True
        self._more.set()

    def expect(self, nbytes):
        """Set `reached` once nbytes more have been written."""
        self.reached.clear()
        self.target = self.written + nbytes

    # ------------------------------------------------------------ reading

    def _ready(self):
        """Bytes ready in the current piece of input, moving to the next
        queued frame when the current one is used up."""
        if self._pos == len(self._src):
            if not self._left:
                return 0
            self._left -= 1
            self._src = self._frame
            self._view = self._frame_view
            self._pos = 0
        return len(self._src) - self._pos

    async def _available(self):
        await asyncio.sleep_ms(0)  # the real Stream waits for the poller every time
        while True:
            ready = self._ready()
            if ready or self.eof or self.closed:
                return ready
            self.waiting = True
            self.idle.set()
            self._more.clear()
            await self._more.wait()
            self.waiting = False

    async def readinto(self, buf):
        self.reads += 1
        ready = await self._available()
        if not ready:
            return 0
        n = len(buf)
        if n > ready:
            n = ready
        pos = self._pos
        buf[:n] = self._view[pos : pos + n]
        self._pos = pos + n
        return n

    async def read(self, n=-1):
        self.reads += 1
        ready = await self._available()
        if not ready:
            return b""
        if n < 0 or n > ready:
            n = ready
        pos = self._pos
        self._pos = pos + n
        return self._src[pos : pos + n]

    async def readexactly(self, n):
        data = b""
        while n:
            part = await self.read(n)
            if not part:
                raise EOFError
            data += part
            n -= len(part)
        return data

    async def readline(self):
        line = b""
        while True:
            self.reads += 1
            ready = await self._available()
            if not ready:
                return line
            pos = self._pos
            end = self._src.find(b"\n", pos, pos + ready)
            end = pos + ready if end < 0 else end + 1
            line += self._src[pos:end]
            self._pos = end
            if line[-1] == 10:
                return line

    # ------------------------------------------------------------ writing

    def write(self, data):
        if self.closed:
            raise OSError(9)  # EBADF, as a closed socket
        n = len(data)
        if self.first is None:
            self.first = bytes(data[:12])
        self.written += n
        if self.sink is not None:
            self.sink.total += n
        if self.target >= 0 and self.written >= self.target:
            self.target = -1
            self.reached.set()

    async def drain(self):
        self.drains += 1
        await asyncio.sleep_ms(0)  # the real drain always yields once

    async def awrite(self, data):
        self.write(data)
        await self.drain()

    # ------------------------------------------------------------ closing

    def close(self):
        pass  # as MicroPython's Stream: wait_closed() closes the socket

    async def wait_closed(self):
        self.closed = True
        self._more.set()

    async def aclose(self):
        await self.wait_closed()

    def get_extra_info(self, name):
        return PEER if name == "peername" else None


# ================================================================ servers


class Quiet:
    """A log function that keeps the last message instead of printing."""

    def __init__(self):
        self.count = 0
        self.last = None

    def __call__(self, *args):
        self.count += 1
        self.last = args


def microws_server(max_message_size, queue_size=8, log=None):
    from microws.server import Server

    server = Server(max_clients=1000, max_message_size=max_message_size, queue_size=queue_size,
                    ping_interval=0, log=log or Quiet())

    @server.websocket("/ws")
    async def echo(ws):  # the README's echo handler
        async for message in ws:
            await ws.send(message)

    return server, server._serve_client


PUSH = [0, b""]  # messages each trigger makes the pushing handler send, and the payload


def microws_push_route(server):
    @server.websocket("/push")
    async def push(ws):
        async for _ in ws:
            n = PUSH[0]
            payload = PUSH[1]
            while n:
                await ws.send(payload)
                n -= 1


def install_sha1():
    """microdot's handshake calls hashlib.sha1, which this port lacks: hand it
    the same pure-Python SHA-1 that microws falls back to here."""
    import hashlib

    if hasattr(hashlib, "sha1"):
        return

    from microws.sha1 import sha1

    class HashlibWithSha1:
        pass

    shim = HashlibWithSha1()
    for name in dir(hashlib):
        if not name.startswith("__"):
            setattr(shim, name, getattr(hashlib, name))
    shim.sha1 = sha1
    sys.modules["hashlib"] = shim


def board_imports():
    """This port freezes micropython-lib's `inspect`, which board firmware
    (ESP32, ESP8266, Pico W) does not have; with it, microdot takes its
    CPython path (run_in_executor) and fails. Hide it, as on a board."""
    if "/nostub" in sys.path:
        return
    try:
        import os

        os.mkdir("/nostub")
    except OSError:
        pass
    with open("/nostub/inspect.py", "w") as f:
        f.write("raise ImportError('no inspect on a board')\n")
    sys.path.insert(0, "/nostub")


def microdot_app(max_message_size):
    board_imports()
    install_sha1()
    from microdot import Microdot
    from microdot.websocket import WebSocket, with_websocket

    WebSocket.max_message_length = max_message_size
    app = Microdot()

    @app.route("/ws")
    @with_websocket
    async def echo(request, ws):  # microdot's documented echo handler
        while True:
            message = await ws.receive()
            await ws.send(message)

    return app, app.handle_request


def make_server(lib, max_message_size, queue_size=8, log=None):
    if lib == "microws":
        return microws_server(max_message_size, queue_size, log)
    return microdot_app(max_message_size)


async def open_connection(serve, stream):
    """Start serving one accepted connection; True once the handshake is
    answered with 101 and the server waits for the first frame."""
    task = asyncio.create_task(serve(stream, stream))
    while not stream.waiting:  # the head is all there: the first wait is for a frame
        if stream.closed or task.done():
            return task, False
        await asyncio.sleep_ms(0)
    for _ in range(4):  # let the handler task reach its receive()
        await asyncio.sleep_ms(0)
    return task, stream.first == b"HTTP/1.1 101"


async def close_connections(streams, tasks):
    for stream in streams:
        stream.end()
    for task in tasks:
        for _ in range(200):
            if task.done():
                break
            await asyncio.sleep_ms(1)


# ================================================================ measurements


async def job_import(job):
    """(a) heap taken by importing each module, in order, from a fresh interpreter."""
    for name in job.get("preload", ()):
        __import__(name)
    if job["lib"] == "microdot":
        board_imports()
        install_sha1()
    before = first = await settled()
    for name in job["modules"]:
        __import__(name)
        after = await settled()
        emit({"measure": "import_heap", "lib": job["lib"], "form": job["form"], "module": name,
              "value": after - before, "unit": "B"})
        before = after
    emit({"measure": "import_heap", "lib": job["lib"], "form": job["form"], "module": "total",
          "value": before - first, "unit": "B", "modules": job["modules"]})


async def stream_costs(rounds):
    """Bytes the harness itself allocates per operation, on this port: a
    FakeStream read (readinto), a drain, an asyncio.sleep_ms(0), an
    Event.wait() on a set event. Subtracted from the servers' figures."""
    frame = masked_frame(16)
    stream = FakeStream(b"")
    stream.supply(frame, 10 * rounds + 100)
    buf = bytearray(32)
    views = (memoryview(buf)[:2], memoryview(buf)[:4], memoryview(buf)[:16])
    event = asyncio.Event()
    event.set()
    costs = {}
    for _ in range(2):  # the second pass is the measurement (the first warms up)
        gc.disable()
        start = gc.mem_alloc()
        for _ in range(rounds):
            await stream.readinto(views[0])
            await stream.readinto(views[1])
            await stream.readinto(views[2])
        costs["read"] = (gc.mem_alloc() - start) / (3 * rounds)
        start = gc.mem_alloc()
        for _ in range(rounds):
            await stream.drain()
        costs["drain"] = (gc.mem_alloc() - start) / rounds
        start = gc.mem_alloc()
        for _ in range(rounds):
            await asyncio.sleep_ms(0)
        costs["sleep"] = (gc.mem_alloc() - start) / rounds
        start = gc.mem_alloc()
        for _ in range(rounds):
            await event.wait()
        costs["wait"] = (gc.mem_alloc() - start) / rounds
        gc.enable()
    return costs


async def echo_batch(stream, frame, reply, count):
    stream.expect(count * reply)
    stream.supply(frame, count)
    await stream.reached.wait()


async def open_echo(lib, size):
    """One echo connection past its handshake, with the frame to send and
    the size of its reply."""
    server, serve = make_server(lib, max(size, 1024))
    stream = FakeStream(HEAD)
    task, ok = await open_connection(serve, stream)
    if not ok:
        raise RuntimeError("%s: no handshake" % lib)
    return server, stream, task, masked_frame(size), reply_size(size)


async def measure_alloc_echo(lib, size, count, costs):
    """(c) bytes allocated per echoed message in steady state (mem_alloc delta,
    no collection in between)."""
    server, stream, task, frame, reply = await open_echo(lib, size)
    await echo_batch(stream, frame, reply, 50)  # warm up
    await settled()
    reads, drains = stream.reads, stream.drains
    gc.disable()
    start = gc.mem_alloc()
    await echo_batch(stream, frame, reply, count)
    total = gc.mem_alloc() - start
    gc.enable()
    reads = stream.reads - reads
    drains = stream.drains - drains
    harness = reads * costs["read"] + drains * costs["drain"] + costs["wait"]
    record = {"measure": "alloc_per_message", "lib": lib, "case": "echo %d B" % size, "size": size,
              "messages": count, "value": total / count, "unit": "B/message",
              "reads_per_message": reads / count, "drains_per_message": drains / count}
    if lib == "microws":
        # reads go through readinto, writes through write + drain: what the
        # real Stream's calls cost is the stream's, the rest is microws's
        record["stream_share"] = harness / count
        record["library"] = (total - harness) / count
    emit(record)
    await close_connections([stream], [task])


async def measure_alloc_push(size, count, costs):
    """(c) bytes allocated per message a handler streams with `await ws.send()`."""
    server, serve = microws_server(1024)
    microws_push_route(server)
    stream = FakeStream(HEAD.replace(b"GET /ws ", b"GET /push "))
    task, ok = await open_connection(serve, stream)
    if not ok:
        raise RuntimeError("push: no handshake")
    trigger = masked_frame(1)
    payload = bytes(range(size))
    PUSH[1] = payload
    reply = reply_size(size)
    PUSH[0] = 50
    await echo_batch(stream, trigger, 50 * reply, 1)  # warm up
    await settled()
    PUSH[0] = count
    reads, drains = stream.reads, stream.drains
    gc.disable()
    start = gc.mem_alloc()
    await echo_batch(stream, trigger, count * reply, 1)
    total = gc.mem_alloc() - start
    gc.enable()
    reads = stream.reads - reads
    drains = stream.drains - drains
    harness = reads * costs["read"] + drains * costs["drain"] + costs["wait"]
    emit({"measure": "alloc_per_message", "lib": "microws", "case": "send %d B" % size, "size": size,
          "messages": count, "value": total / count, "unit": "B/message",
          "stream_share": harness / count, "library": (total - harness) / count,
          "drains_per_message": drains / count})
    await close_connections([stream], [task])


async def measure_alloc_broadcast(size, clients, count, costs):
    """(c) bytes allocated per message broadcast to `clients` dashboards,
    paced like a sampler: broadcast, then sleep until every client got it."""
    server, serve = microws_server(1024)
    sink = Sink()
    streams, tasks = [], []
    for _ in range(clients):
        stream = FakeStream(HEAD, sink)
        task, ok = await open_connection(serve, stream)
        if not ok:
            raise RuntimeError("broadcast: no handshake")
        streams.append(stream)
        tasks.append(task)
    group = server.group("/ws")
    payload = bytes(range(size))
    per_round = clients * reply_size(size)

    async def rounds(n):
        sleeps = 0
        for _ in range(n):
            expected = sink.total + per_round
            group.broadcast(payload)
            while sink.total < expected:
                await asyncio.sleep_ms(0)
                sleeps += 1
        return sleeps

    await rounds(50)  # warm up: the queues and writer tasks are created here
    await settled()
    drains = sum(s.drains for s in streams)
    dropped = sum(ws.dropped for ws in group)
    gc.disable()
    start = gc.mem_alloc()
    sleeps = await rounds(count)
    total = gc.mem_alloc() - start
    gc.enable()
    drains = sum(s.drains for s in streams) - drains
    dropped = sum(ws.dropped for ws in group) - dropped
    harness = drains * costs["drain"] + sleeps * costs["sleep"]
    emit({"measure": "alloc_per_message", "lib": "microws", "case": "broadcast %d B to %d" % (size, clients),
          "size": size, "clients": clients, "messages": count, "value": total / count, "unit": "B/message",
          "stream_share": harness / count, "library": (total - harness) / count,
          "library_per_client": (total - harness) / count / clients, "dropped": dropped})
    await close_connections(streams, tasks)


async def fake_stream_heap(n):
    """Heap held by one idle FakeStream (subtracted from per-connection heap)."""
    before = await settled()
    keep = [FakeStream(HEAD) for _ in range(n)]
    after = await settled()
    del keep
    return (after - before - block_bytes(4 * n)) / n  # minus the list itself


async def measure_conn_heap(lib, n, max_message_size, stream_heap):
    """(b) heap held per idle connection: handshake done, handler in receive()."""
    server, serve = make_server(lib, max_message_size)
    streams, tasks = [], []
    for i in range(n + 1):
        if i == 1:  # the first connection warms up: interned names, code caches
            before = await settled()
        stream = FakeStream(HEAD)
        task, ok = await open_connection(serve, stream)
        if not ok:
            raise RuntimeError("%s: no handshake" % lib)
        streams.append(stream)
        tasks.append(task)
    after = await settled()
    lists = block_bytes(4 * len(streams)) * 2  # this function's two lists grew meanwhile
    per = (after - before - lists) / n - stream_heap
    record = {"measure": "conn_heap", "lib": lib, "max_message_size": max_message_size, "connections": n,
              "value": per, "unit": "B/connection", "fake_stream": stream_heap}
    if lib == "microws":
        from microws.connection import CONTROL_ROOM

        buffer = block_bytes(max_message_size + CONTROL_ROOM)
        record["receive_buffer"] = buffer
        record["excluding_buffer"] = per - buffer
    emit(record)
    await close_connections(streams, tasks)


async def measure_rate(lib, size, duration_ms):
    """(d) echoed messages per second, one connection, one message in flight."""
    server, stream, task, frame, reply = await open_echo(lib, size)
    await echo_batch(stream, frame, reply, 2)  # warm up
    done = 0
    elapsed = 0
    batch = 1
    while elapsed < duration_ms * 1000:
        start = time.ticks_us()
        await echo_batch(stream, frame, reply, batch)
        took = time.ticks_diff(time.ticks_us(), start)
        done += batch
        elapsed += took
        if took < duration_ms * 250:
            batch *= 2
    emit({"measure": "echo_rate", "lib": lib, "size": size, "messages": done, "seconds": elapsed / 1e6,
          "value": done * 1e6 / elapsed, "unit": "messages/s"})
    await close_connections([stream], [task])


async def job_main(job):
    """(b), (c), (d) for one library, in a large heap."""
    lib = job["lib"]
    tiny = job["tiny"]
    emit({"measure": "platform", "lib": lib, "implementation": sys.implementation.name,
          "version": ".".join(str(v) for v in sys.implementation.version[:3]), "platform": sys.platform,
          "unmask": _unmask_kind()})
    stream_heap = await fake_stream_heap(8)
    for max_message_size in job["conn_sizes"]:
        await measure_conn_heap(lib, job["connections"], max_message_size, stream_heap)
    costs = await stream_costs(200)
    emit({"measure": "harness_alloc", "lib": lib, "value": costs["read"], "unit": "B/read", "costs": costs})
    count = 100 if tiny else 1000
    for size in job["alloc_sizes"]:
        await measure_alloc_echo(lib, size, count, costs)
    if lib == "microws":
        await measure_alloc_push(64, count, costs)
        await measure_alloc_broadcast(64, 4, count, costs)
    for size in job["rate_sizes"]:
        await measure_rate(lib, size, job["duration_ms"])


def _unmask_kind():
    try:
        from microws import compat

        return compat.UNMASK_KIND
    except ImportError:
        return None


async def job_capacity(job):
    """(e) idle dashboard connections that fit at once in a heap of
    job["heap"] bytes.

    This port cannot be held to a small heap: its heap grows on demand
    (split heap), and it collects only when control goes back to JavaScript,
    so a real MemoryError cannot be provoked at 48 KB. The run counts
    instead: it opens connections one after another and, after each, takes
    the heap that stays in use (after collection). What counts against the
    budget is what a board would hold: the interpreter's own heap at start
    (job["interpreter_heap"], measured before this module was loaded), the
    library's import and server object, and the connections, without this
    module and without the in-memory streams. A connection "fits" while
    that total stays within the budget. Not modelled: fragmentation, and
    the garbage of a handshake in progress (on this port mostly the
    pure-Python SHA-1, which boards do natively).
    """
    lib = job["lib"]
    budget = job["heap"]
    interpreter = job["interpreter_heap"]
    stream_heap = await fake_stream_heap(8)
    start = await settled()
    server, serve = make_server(lib, job["max_message_size"], job["queue_size"], Quiet())
    imported = await settled() - start
    streams, tasks = [], []
    fits = 0
    figures = []
    while len(streams) < job["limit"]:
        stream = FakeStream(HEAD)
        streams.append(stream)
        task, ok = await open_connection(serve, stream)
        if not ok:
            raise RuntimeError("%s: connection %d refused" % (lib, len(streams)))
        tasks.append(task)
        lists = 2 * block_bytes(4 * len(streams))  # this function's two lists
        held = await settled() - start - len(streams) * stream_heap - lists
        total = interpreter + held
        figures.append(total)
        if total <= budget:
            fits = len(streams)
        if total > budget and len(streams) >= 3:  # 3: enough for the figure per connection
            break
    per = (figures[-1] - figures[0]) / (len(figures) - 1) if len(figures) > 1 else None
    emit({"measure": "capacity", "lib": lib, "form": job["form"], "heap": budget,
          "max_message_size": job["max_message_size"], "value": fits, "unit": "connections",
          "interpreter_heap": interpreter, "import_and_server": imported,
          "per_connection": per, "fake_stream": stream_heap,
          "heap_with_connections": figures,
          "stopped_by": "budget exceeded" if figures[-1] > budget else "limit of the measurement"})
    await close_connections(streams, tasks)


async def main(job_text):
    job = json.loads(job_text)
    kind = job["kind"]
    if kind == "import":
        await job_import(job)
    elif kind == "main":
        await job_main(job)
    elif kind == "capacity":
        await job_capacity(job)
    else:
        raise ValueError("unknown job kind %r" % kind)
    emit({"measure": "done", "kind": kind})
