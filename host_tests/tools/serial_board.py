"""A MicroPython board on a pseudo-terminal, for running the real mpremote
against it without hardware.

It speaks the raw REPL the way MicroPython's pyexec does (Ctrl-A enters it,
Ctrl-D on an empty line soft-resets, raw-paste mode with flow control,
"OK" / output / \\x04 / error output / \\x04 / ">"), and runs what it gets
with CPython over a folder that stands for the board's flash: open(), os
and sys are replaced by board-like ones (MicroPython's stat tuples, error
text such as "OSError: [Errno 28] ENOSPC", a flash size). machine.reset()
reboots it: it prints a boot log that ends with the firmware's URL line.
"""

import binascii
import errno
import hashlib
import os
import select
import threading
import time
import tty

BANNER = b"raw REPL; CTRL-B to exit\r\n>"
PASTE_WINDOW = 256


class _Reset(BaseException):
    """machine.reset() was called: stop the script, reboot."""


class SerialBoard:
    def __init__(self, root, version=(1, 22, 2), arch_index=10, capacity=1_000_000, boot_log=(),
                 statvfs=True):
        self.root = root
        self.has_statvfs = statvfs
        self.version = version
        self.mpy = 6 | (2 << 8) | (arch_index << 10)
        self.capacity = capacity
        self.boot_log = list(boot_log)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.soft_resets = 0
        self.resets = 0
        self.scripts = []
        self._mode = "friendly"
        self._buffer = bytearray()
        self._paste_count = 0
        self._globals = {}
        self._out = []
        self._boots = []
        self._app_running = False
        self._app_lock = threading.Lock()
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self):
        self._running = False
        for thread in [self._thread] + self._boots:  # none may write to a reused descriptor
            thread.join(5)
        os.close(self.master)
        os.close(self.slave)

    # --- the wire -------------------------------------------------------------

    def _write(self, data):
        view = memoryview(data)
        while view:
            n = os.write(self.master, view)
            view = view[n:]

    def _serve(self):
        while self._running:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            for byte in data:
                self._byte(byte)

    def _byte(self, c):
        if self._mode == "rebooting":
            return
        if self._mode == "friendly":
            if c in (0x01, 0x03):  # Ctrl-C (or the raw REPL) stops the running app
                with self._app_lock:
                    self._app_running = False
            if c == 0x01:
                self._mode = "raw"
                self._buffer = bytearray()
                self._write(BANNER)
            elif c == 0x03:
                self._write(b"\r\n>>> ")
            return
        if self._mode == "paste":
            if c == 0x04:
                self._write(b"\x04")
                self._mode = "raw"
                self._run(bytes(self._buffer), b"")
                return
            self._buffer.append(c)
            self._paste_count += 1
            if self._paste_count == PASTE_WINDOW:
                self._paste_count = 0
                self._write(b"\x01")
            return
        # raw REPL
        if c == 0x01:
            self._buffer = bytearray()
            self._write(BANNER)
        elif c == 0x02:
            self._mode = "friendly"
            self._buffer = bytearray()
            self._write(b"\r\nMicroPython v%d.%d.%d on fake; serial board\r\n>>> " % self.version)
        elif c == 0x03:
            self._buffer = bytearray()
        elif c == 0x04 and not self._buffer:
            self.soft_resets += 1
            self._globals = {}
            self._write(b"OK\r\nMPY: soft reboot\r\n" + BANNER)
        elif c == 0x04:
            code = bytes(self._buffer)
            self._buffer = bytearray()
            self._run(code, b"OK")
        else:
            self._buffer.append(c)
            if self._buffer == b"\x05A\x01":  # enter raw-paste mode
                self._buffer = bytearray()
                self._paste_count = 0
                self._mode = "paste"
                self._write(b"R\x01" + PASTE_WINDOW.to_bytes(2, "little"))

    def _run(self, code, ack):
        self._write(ack)
        self.scripts.append(code.decode())
        out = self._out = []
        error = ""
        try:
            exec(compile(code.decode(), "<stdin>", "exec"), self._namespace())
        except _Reset:
            self._reboot()
            return
        except OSError as e:
            name = errno.errorcode.get(e.errno, str(e.errno))
            error = 'Traceback (most recent call last):\r\n  File "<stdin>", line 1, in <module>\r\n' \
                    "OSError: [Errno %d] %s\r\n" % (e.errno, name)
        except Exception as e:  # noqa: BLE001 (reported like the board would)
            error = 'Traceback (most recent call last):\r\n  File "<stdin>", line 1, in <module>\r\n' \
                    "%s: %s\r\n" % (type(e).__name__, e)
        text = "".join(out).replace("\n", "\r\n")
        self._write(text.encode() + b"\x04" + error.encode() + b"\x04>")

    def _reboot(self):
        self.resets += 1
        self._mode = "rebooting"

        def boot():
            time.sleep(0.3)
            if not self._running:
                return
            self._globals = {}
            self._app_running = True
            self._mode = "friendly"
            try:
                for line in self.boot_log:
                    self._write(line.encode() + b"\r\n")
                # the port may be opened (and its input flushed) a little
                # later: a board's app keeps running, so repeat the last line
                for _ in range(40):
                    time.sleep(0.25)
                    with self._app_lock:
                        if not (self._running and self._app_running and self.boot_log):
                            return
                        self._write(self.boot_log[-1].encode() + b"\r\n")
            except OSError:  # closed meanwhile
                return

        thread = threading.Thread(target=boot, daemon=True)
        self._boots.append(thread)
        thread.start()

    # --- the board's modules ------------------------------------------------------

    def _real(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def _used(self):
        total = 0
        for folder, _, files in os.walk(self.root):
            total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
        return total

    def _namespace(self):
        if self._globals:
            return self._globals
        board = self

        def board_print(*args, sep=" ", end="\n", file=None):
            board._out.append(sep.join(str(a) for a in args) + end)

        class Flash:
            def __init__(self, path, mode):
                self.file = open(board._real(path), mode)
                self.start = os.path.getsize(board._real(path)) if "r" in mode else 0

            def write(self, data):
                if board._used() + len(data) > board.capacity:
                    raise OSError(errno.ENOSPC, "")
                n = self.file.write(data)
                self.file.flush()
                return n

            def read(self, n=-1):
                return self.file.read(n)

            def close(self):
                self.file.close()

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.close()

        def board_open(path, mode="r"):
            if os.path.isdir(board._real(path)):
                raise OSError(errno.EISDIR, "")
            try:
                return Flash(path, mode)
            except FileNotFoundError:
                raise OSError(errno.ENOENT, "")

        class FakeOs:
            @staticmethod
            def mkdir(path):
                try:
                    os.mkdir(board._real(path))
                except FileExistsError:
                    raise OSError(errno.EEXIST, "")

            @staticmethod
            def remove(path):
                try:
                    os.remove(board._real(path))
                except FileNotFoundError:
                    raise OSError(errno.ENOENT, "")

            @staticmethod
            def stat(path):
                real = board._real(path)
                if not os.path.exists(real):
                    raise OSError(errno.ENOENT, "")
                mode = 0x4000 if os.path.isdir(real) else 0x8000
                return (mode, 0, 0, 0, 0, 0, 0 if mode == 0x4000 else os.path.getsize(real), 0, 0, 0)

            @staticmethod
            def statvfs(path):
                if not board.has_statvfs:
                    raise OSError(errno.EINVAL, "")
                free = (board.capacity - board._used()) // 512
                return (512, 512, board.capacity // 512, free, free, 0, 0, 0, 0, 255)

            @staticmethod
            def ilistdir(path=""):
                real = board._real(path or "/")
                for name in sorted(os.listdir(real)):
                    full = os.path.join(real, name)
                    yield (name, 0x4000 if os.path.isdir(full) else 0x8000, 0,
                           0 if os.path.isdir(full) else os.path.getsize(full))

        class Implementation:
            name = "micropython"
            version = board.version + ("",)
            _machine = "Fake board with ESP32"
            _mpy = board.mpy

        class FakeSys:
            implementation = Implementation()
            path = ["", "/lib"]

        class FakeTime:
            @staticmethod
            def sleep_ms(ms):
                time.sleep(ms / 1000)

        class FakeMachine:
            @staticmethod
            def reset():
                raise _Reset()

        modules = {"os": FakeOs, "sys": FakeSys, "time": FakeTime, "machine": FakeMachine,
                   "hashlib": hashlib, "binascii": binascii}

        def board_import(name, globals=None, locals=None, fromlist=(), level=0):
            if name not in modules:
                raise ImportError("no module named '%s'" % name)
            return modules[name]

        import builtins

        names = dict(vars(builtins))
        names.update(print=board_print, open=board_open, __import__=board_import)
        self._globals = {"__builtins__": names, "__name__": "__main__"}
        return self._globals
