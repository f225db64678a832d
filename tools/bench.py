"""Throughput of microws's asyncio server against two references, on CPython.

    python3 tools/bench.py [--duration S] [--warmup S] [--tiny]
                           [--servers raw,websockets,microws] [--markdown]

One run starts three servers, each in a subprocess of its own (so the load
generator does not share their CPU), and measures them one case at a time:

  raw         asyncio TCP echo (a Protocol writing back what it reads): the
              same bytes with no WebSocket framing, the ceiling
  websockets  the `websockets` package's asyncio echo server
  microws     microws.server.Server with the echo handler of the README

Cases: echo of 16 B, 1 KiB and 64 KiB binary messages over 1 and 8
connections, pipelined (each connection keeps a window of frames in flight:
half a window is written as soon as half a window of replies is back), and
push: the server broadcasts 64 B messages to 1 and 8 clients as fast as it
can (messages/s received, all clients together).

The client is one thread with non-blocking sockets and pre-encoded masked
frames; replies are checked cheaply (the byte count, and the last byte of
every read against where it falls in the expected frame). CPU time per
message is given for the client (this process) and for the server (its
child's utime + stime from /proc/PID/stat, Linux only).

Output: a table, then one JSON line per measurement, then the targets of
issue 8 with PASS/FAIL. Every figure is also a ratio to the references
measured in the same run. --tiny is a short run for tests (checks the
machinery, not the speed).
"""

import argparse
import asyncio
import base64
import json
import os
import platform
import selectors
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")

SERVERS = ("raw", "websockets", "microws")
REFERENCES = ("websockets", "raw")
ECHO_SIZES = (16, 1024, 65536)
CONNECTIONS = (1, 8)
PUSH_SIZE = 64
# Frames in flight per connection, by message size.
WINDOWS = {16: 128, 1024: 32, 65536: 4}
MAX_MESSAGE = 65536
MASK = b"\x5a\xc3\x17\x8e"
PUSH_LIMIT = 64 * 1024  # bytes a push server lets pile up per client before yielding
DRAIN_TIMEOUT_S = 15
CONNECT_TIMEOUT_S = 10


class BenchError(Exception):
    pass


# ============================================================== frames


def frame(payload, opcode=2, mask=None):
    """One whole frame; masked (a client's) when mask is given."""
    n = len(payload)
    head = bytearray([0x80 | opcode])
    bit = 0x80 if mask else 0
    if n < 126:
        head.append(bit | n)
    elif n < 65536:
        head.append(bit | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(bit | 127)
        head += n.to_bytes(8, "big")
    if not mask:
        return bytes(head) + bytes(payload)
    key = (mask * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return bytes(head) + mask + body


def payload_of(size, seed=1):
    """Deterministic bytes that differ from one position to the next."""
    return bytes((i * 31 + seed * 7 + (i >> 8)) & 0xFF for i in range(size))


# ============================================================ servers
# `bench.py --serve KIND` runs one server and prints {"port": P, "push_port": Q}.
# Echo is on "/" and push on "/push" (the raw server: a second port). A push
# starts when a client sends "start SIZE CLIENTS" and runs while clients stay.


def _exit_when_parent_goes():
    """The child ends when its stdin closes (the bench ended or died)."""
    import threading

    def watch():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _announce(port, push_port):
    print(json.dumps({"port": port, "push_port": push_port, "pid": os.getpid()}), flush=True)


class _Pusher:
    """Keeps one push loop at a time (a new start replaces an old loop)."""

    def __init__(self):
        self.task = None

    def start(self, coroutine):
        if self.task is not None:
            self.task.cancel()
        self.task = asyncio.ensure_future(coroutine)


async def _wait_for_clients(count_clients, wanted):
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while count_clients() < wanted and time.monotonic() < deadline:
        await asyncio.sleep(0.001)


async def serve_raw(max_size):
    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)

        def pause_writing(self):
            self.transport.pause_reading()

        def resume_writing(self):
            self.transport.resume_reading()

    loop = asyncio.get_running_loop()
    echo = await loop.create_server(Echo, "127.0.0.1", 0)
    writers = []
    pusher = _Pusher()

    async def push(size, wanted):
        await _wait_for_clients(lambda: len(writers), wanted)
        data = frame(payload_of(size))
        while writers:
            for writer in writers:
                writer.write(data)
            while writers and max(w.transport.get_write_buffer_size() for w in writers) > PUSH_LIMIT:
                await asyncio.sleep(0)
            await asyncio.sleep(0)

    async def push_client(reader, writer):
        writers.append(writer)
        try:
            line = await reader.readline()
            if line.startswith(b"start"):
                _, size, wanted = line.split()
                pusher.start(push(int(size), int(wanted)))
            await reader.read()  # until the client goes
        except (OSError, ConnectionError):
            pass
        finally:
            writers.remove(writer)
            writer.close()

    push_server = await asyncio.start_server(push_client, "127.0.0.1", 0)
    _announce(echo.sockets[0].getsockname()[1], push_server.sockets[0].getsockname()[1])
    await asyncio.Event().wait()


async def serve_websockets(max_size):
    from websockets.asyncio.server import broadcast, serve
    from websockets.exceptions import ConnectionClosed

    pushed = set()
    pusher = _Pusher()

    async def push(size, wanted):
        await _wait_for_clients(lambda: len(pushed), wanted)
        data = payload_of(size)
        while pushed:
            broadcast(pushed, data)
            while pushed and max(c.transport.get_write_buffer_size() for c in pushed) > PUSH_LIMIT:
                await asyncio.sleep(0)
            await asyncio.sleep(0)

    async def handler(ws):
        if ws.request.path == "/push":
            pushed.add(ws)
            try:
                async for message in ws:
                    if isinstance(message, str) and message.startswith("start"):
                        _, size, wanted = message.split()
                        pusher.start(push(int(size), int(wanted)))
            except ConnectionClosed:
                pass
            finally:
                pushed.discard(ws)
            return
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass  # the bench drops its connections without a closing handshake

    async with serve(handler, "127.0.0.1", 0, max_size=max_size, ping_interval=None) as server:
        _announce(server.sockets[0].getsockname()[1], None)
        await asyncio.Event().wait()


async def serve_microws(max_size):
    sys.path.insert(0, LIB)
    from microws.server import Server

    server = Server(max_clients=64, max_message_size=max_size, ping_interval=0,
                    close_timeout=1, log=lambda *args: None)
    pusher = _Pusher()

    @server.websocket("/")
    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def push(size, wanted):
        group = server.group("/push")
        await _wait_for_clients(lambda: len(group), wanted)
        data = payload_of(size)
        while len(group):
            group.broadcast(data)
            await asyncio.sleep(0)

    @server.websocket("/push")
    async def push_route(ws):
        async for message in ws:
            if isinstance(message, str) and message.startswith("start"):
                _, size, wanted = message.split()
                pusher.start(push(int(size), int(wanted)))

    await server.start("127.0.0.1", 0)
    _announce(server.port, None)
    await asyncio.Event().wait()


SERVE = {"raw": serve_raw, "websockets": serve_websockets, "microws": serve_microws}


class ServerProcess:
    """One server in a child Python; its CPU time from /proc."""

    def __init__(self, kind, max_size=MAX_MESSAGE):
        self.kind = kind
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve", kind, "--max-size", str(max_size)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(5)
            raise BenchError("the %s server did not start (exit code %s)" % (kind, self.process.returncode))
        info = json.loads(line)
        self.port = info["port"]
        self.push_port = info["push_port"] or info["port"]
        self.pid = self.process.pid
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def cpu_seconds(self):
        """utime + stime of the child, or None where /proc is missing."""
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / self._tick  # fields 14, 15 of stat(5)

    def stop(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ============================================================ client


def connect(port, path):
    """A TCP connection; a WebSocket one when path is given."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if path is not None:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise BenchError("connection closed during the handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise BenchError("handshake refused: %r" % head[:80])
        if not head.endswith(b"\r\n\r\n"):
            raise BenchError("bytes after the handshake response")
    sock.setblocking(False)
    return sock


class Client:
    """One connection of the load generator."""

    def __init__(self, sock, reply, batch=b"", batch_frames=0, window=0):
        self.sock = sock
        self.reply = reply  # the frame every message comes back as
        self.reply_size = len(reply)
        self.batch = memoryview(batch)  # batch_frames masked frames, written as one
        self.batch_frames = batch_frames
        self.window = window
        self.sent = 0  # frames queued
        self.received = 0  # bytes
        self.out = None
        self.writing = False
        self.stopping = False

    def messages(self):
        return self.received // self.reply_size

    def refill(self, selector):
        """Echo: top up the window by one batch when half of it is back."""
        if self.stopping or self.out is not None:
            return
        if self.sent - self.received // self.reply_size <= self.window - self.batch_frames:
            self.out = self.batch
            self.sent += self.batch_frames
            self.flush(selector)

    def flush(self, selector):
        try:
            n = self.sock.send(self.out)
        except BlockingIOError:
            n = 0
        if n == len(self.out):
            self.out = None
            if self.writing:
                self.writing = False
                selector.modify(self.sock, selectors.EVENT_READ, self)
            return
        self.out = self.out[n:]
        if not self.writing:
            self.writing = True
            selector.modify(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, self)


def drive(clients, server, duration, warmup, echo):
    """Run the clients; returns (messages, seconds, client cpu, server cpu)
    counted over `duration` after `warmup`."""
    selector = selectors.DefaultSelector()
    for client in clients:
        selector.register(client.sock, selectors.EVENT_READ, client)
    buffer = bytearray(1 << 18)
    start = time.perf_counter()
    t_warm = start + warmup
    t_end = t_warm + duration
    first = None
    if echo:
        for client in clients:
            client.refill(selector)
            client.refill(selector)  # a whole window: two batches
    try:
        while True:
            now = time.perf_counter()
            if first is None and now >= t_warm:
                first = (now, sum(c.messages() for c in clients), time.process_time(), server.cpu_seconds())
            elif first is not None and now >= t_end:
                last = (now, sum(c.messages() for c in clients), time.process_time(), server.cpu_seconds())
                break
            for key, events in selector.select(0.05):
                client = key.data
                if events & selectors.EVENT_READ:
                    try:
                        n = client.sock.recv_into(buffer)
                    except BlockingIOError:
                        n = -1
                    if n == 0:
                        raise BenchError("the %s server closed a connection" % server.kind)
                    if n > 0:
                        received = client.received + n
                        client.received = received
                        if buffer[n - 1] != client.reply[(received - 1) % client.reply_size]:
                            raise BenchError("%s: wrong bytes in a reply" % server.kind)
                        if echo:
                            client.refill(selector)
                if events & selectors.EVENT_WRITE and client.out is not None:
                    client.flush(selector)
        if echo:
            _drain(clients, selector, buffer, server)
    finally:
        selector.close()
    seconds = last[0] - first[0]
    server_cpu = None if first[3] is None or last[3] is None else last[3] - first[3]
    return last[1] - first[1], seconds, last[2] - first[2], server_cpu


def _drain(clients, selector, buffer, server):
    """Echo: stop sending; every frame sent must come back, exactly."""
    for client in clients:
        client.stopping = True
    deadline = time.perf_counter() + DRAIN_TIMEOUT_S
    while any(c.out is not None or c.received < c.sent * c.reply_size for c in clients):
        if time.perf_counter() > deadline:
            raise BenchError("%s: replies missing after %d s" % (server.kind, DRAIN_TIMEOUT_S))
        for key, events in selector.select(0.05):
            client = key.data
            if events & selectors.EVENT_WRITE and client.out is not None:
                client.flush(selector)
            if events & selectors.EVENT_READ:
                try:
                    n = client.sock.recv_into(buffer)
                except BlockingIOError:
                    continue
                if n == 0:
                    raise BenchError("the %s server closed a connection" % server.kind)
                client.received += n
    for client in clients:
        if client.received != client.sent * client.reply_size:
            raise BenchError("%s: %d bytes of replies, expected %d"
                             % (server.kind, client.received, client.sent * client.reply_size))


def close_all(clients):
    for client in clients:
        try:
            client.sock.close()
        except OSError:
            pass


def measure_echo(server, size, connections, duration, warmup):
    payload = os.urandom(size)
    request = frame(payload, mask=MASK)
    reply = request if server.kind == "raw" else frame(payload)
    window = WINDOWS[size]
    batch_frames = max(1, window // 2)
    batch = request * batch_frames
    path = None if server.kind == "raw" else "/"
    clients = [Client(connect(server.port, path), reply, batch, batch_frames, window)
               for _ in range(connections)]
    try:
        result = drive(clients, server, duration, warmup, echo=True)
    finally:
        close_all(clients)
    return result, window


def measure_push(server, size, connections, duration, warmup):
    reply = frame(payload_of(size))
    path = None if server.kind == "raw" else "/push"
    clients = [Client(connect(server.push_port, path), reply) for _ in range(connections)]
    try:
        start = "start %d %d" % (size, connections)
        if server.kind == "raw":
            clients[0].sock.sendall((start + "\n").encode())
        else:
            clients[0].sock.sendall(frame(start.encode(), opcode=1, mask=MASK))
        return drive(clients, server, duration, warmup, echo=False)
    finally:
        close_all(clients)
        time.sleep(0.05)  # let the push loop notice that its clients left


# ============================================================ unmasking
# The one per-byte cost a WebSocket server cannot avoid: XOR of the client's
# payload with its mask. websockets does it in C; microws in Python, with
# the method compat.unmask picks for this runtime.


def unmask_methods():
    sys.path.insert(0, LIB)
    from microws import compat

    methods = [("microws (%s)" % compat.UNMASK_KIND, lambda buf, mask: compat.unmask(buf, 0, len(buf), mask, 0)),
               ("whole integer", _unmask_whole_integer)]
    try:
        from websockets.speedups import apply_mask
    except ImportError:
        return methods
    methods.append(("websockets (C)", apply_mask))
    return methods


def _unmask_whole_integer(buf, mask):
    """The alternative microws does not use above 512 bytes: the payload and
    the repeated key as two integers, one XOR (measured, for comparison)."""
    n = len(buf)
    key = int.from_bytes(mask * (n // 4 + 1), "little") & ((1 << (n << 3)) - 1)
    buf[:] = (int.from_bytes(buf, "little") ^ key).to_bytes(n, "little")


def measure_unmask(duration):
    """ns per byte for each method and size; the C one is the reference."""
    rows = []
    for size in ECHO_SIZES:
        buf = bytearray(os.urandom(size))
        for name, method in unmask_methods():
            calls = 0
            start = time.perf_counter()
            end = start + duration / 4
            now = start
            while now < end:
                for _ in range(16):
                    method(buf, MASK)
                calls += 16
                now = time.perf_counter()
            rows.append({"bench": "unmask", "method": name, "size": size,
                         "ns_per_byte": round((now - start) / calls / size * 1e9, 4)})
    for row in rows:
        ref = [r for r in rows if r["size"] == row["size"] and r["method"] == "websockets (C)"]
        if ref and row is not ref[0]:
            row["vs_websockets_c"] = round(ref[0]["ns_per_byte"] / row["ns_per_byte"], 4)
    return rows


def unmask_table(rows):
    lines = ["| unmask | method | ns/byte | µs per message | speed vs websockets' C |", "|---|---|---:|---:|---:|"]
    for row in rows:
        ratio = row.get("vs_websockets_c")
        lines.append("| %s | %s | %.3f | %.2f | %s |" % (
            _size_name(row["size"]), row["method"], row["ns_per_byte"], row["ns_per_byte"] * row["size"] / 1000,
            "" if ratio is None else "%.3f×" % ratio))
    return "\n".join(lines)


# ============================================================ reporting


def record(bench, kind, size, connections, window, result):
    messages, seconds, client_cpu, server_cpu = result
    if messages <= 0:
        raise BenchError("%s %s: no message in %.2f s" % (kind, bench, seconds))
    rate = messages / seconds
    return {
        "bench": bench,
        "server": kind,
        "size": size,
        "connections": connections,
        "window": window,
        "messages": messages,
        "seconds": round(seconds, 4),
        "messages_per_s": round(rate, 1),
        "mb_per_s": round(rate * size / 1e6, 3),
        "client_cpu_us_per_message": round(client_cpu / messages * 1e6, 3),
        "server_cpu_us_per_message": None if server_cpu is None else round(server_cpu / messages * 1e6, 3),
        "python": platform.python_version(),
    }


def add_ratios(rows):
    """vs_KIND: this row's messages/s over KIND's in the same case."""
    by_case = {}
    for row in rows:
        by_case.setdefault((row["bench"], row["size"], row["connections"]), {})[row["server"]] = row
    for row in rows:
        case = by_case[(row["bench"], row["size"], row["connections"])]
        for ref in REFERENCES:
            if ref != row["server"] and ref in case:
                row["vs_" + ref] = round(row["messages_per_s"] / case[ref]["messages_per_s"], 3)


def _size_name(size):
    return "%d KiB" % (size // 1024) if size >= 1024 else "%d B" % size


def _fmt_ratio(row, ref):
    value = row.get("vs_" + ref)
    return "" if value is None else "%.2f×" % value


def table(rows):
    lines = [
        "| case | server | messages/s | MB/s | vs websockets | vs raw TCP | client CPU µs/msg | server CPU µs/msg |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        case = "%s %s ×%d" % (row["bench"], _size_name(row["size"]), row["connections"])
        server_cpu = row["server_cpu_us_per_message"]
        lines.append("| %s | %s | %s | %.2f | %s | %s | %.2f | %s |" % (
            case, row["server"], format(int(row["messages_per_s"]), ","), row["mb_per_s"],
            _fmt_ratio(row, "websockets"), _fmt_ratio(row, "raw"),
            row["client_cpu_us_per_message"], "" if server_cpu is None else "%.2f" % server_cpu))
    return "\n".join(lines)


def targets(rows):
    """Issue 8's CPython targets: (name, measured ratio or None, wanted, ok)."""
    def ratio(size, connections):
        for row in rows:
            if (row["bench"], row["server"], row["size"], row["connections"]) == ("echo", "microws", size, connections):
                return row.get("vs_websockets")
        return None

    checks = [("echo 16 B ×8: microws messages/s ≥ 2× websockets", ratio(16, 8), 2.0)]
    for connections in CONNECTIONS:
        checks.append(("echo 64 KiB ×%d: microws MB/s ≥ 1× websockets" % connections,
                       ratio(65536, connections), 1.0))
    return [(name, value, wanted, value is not None and value >= wanted) for name, value, wanted in checks]


def machine():
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import websockets

        ws_version = websockets.__version__
    except ImportError:
        ws_version = None
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "websockets": ws_version,
            "system": platform.platform()}


# ============================================================ main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="WebSocket server throughput: microws against references.")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per case (default 3)")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before measuring (default 0.5)")
    parser.add_argument("--tiny", action="store_true",
                        help="a few seconds in all (0.1 s per case): checks the machinery, not the speed")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help="comma-separated subset of %s" % ",".join(SERVERS))
    parser.add_argument("--markdown", action="store_true", help="also print the machine as Markdown")
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--max-size", type=int, default=MAX_MESSAGE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tiny:
        args.duration, args.warmup = 0.1, 0.05
    return args


def cases():
    for size in ECHO_SIZES:
        for connections in CONNECTIONS:
            yield "echo", size, connections
    for connections in CONNECTIONS:
        yield "push", PUSH_SIZE, connections


def main(argv=None):
    args = parse_args(argv)
    if args.serve:
        _exit_when_parent_goes()
        asyncio.run(SERVE[args.serve](args.max_size))
        return 0
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    for kind in kinds:
        if kind not in SERVERS:
            raise SystemExit("unknown server %r (choose among %s)" % (kind, ", ".join(SERVERS)))
    info = machine()
    print("bench: %s, %s cores, %s %s, websockets %s; %.2f s per case after %.2f s warm-up"
          % (info["cpu"], info["cores"], info["implementation"], info["python"], info["websockets"],
             args.duration, args.warmup), flush=True)
    servers = {}
    rows = []
    try:
        for kind in kinds:
            servers[kind] = ServerProcess(kind)
        for bench, size, connections in cases():
            for kind in kinds:
                if bench == "echo":
                    result, window = measure_echo(servers[kind], size, connections, args.duration, args.warmup)
                else:
                    result = measure_push(servers[kind], size, connections, args.duration, args.warmup)
                    window = 0
                rows.append(record(bench, kind, size, connections, window, result))
                print("  %-5s %-7s ×%d %-10s %10.0f messages/s" % (
                    bench, _size_name(size), connections, kind, rows[-1]["messages_per_s"]), flush=True)
    finally:
        for server in servers.values():
            server.stop()
    add_ratios(rows)
    unmask_rows = measure_unmask(args.duration)
    print()
    print(table(rows))
    print()
    print(unmask_table(unmask_rows))
    print()
    for row in rows + unmask_rows:
        print(json.dumps(row))
    print()
    if "microws" in kinds and "websockets" in kinds:
        for name, value, wanted, ok in targets(rows):
            print("%s %s (measured %s)" % ("PASS" if ok else "FAIL", name,
                                           "n/a" if value is None else "%.2f×" % value))
    if args.markdown:
        print()
        print("Machine: %s, %s cores; %s %s; websockets %s; %s"
              % (info["cpu"], info["cores"], info["implementation"], info["python"],
                 info["websockets"], info["system"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
