"""Autobahn|Testsuite conformance of the echo server (cases 1-7, 9, 10).

Starts tools/echo_server.py with a 16 MiB message limit (the 9.x cases send
messages up to 16 MiB) and runs tools/autobahn.py against it.  The runner is a
subprocess, so a crash of kosoku's native code cannot take pytest down.  Its
output is streamed to the terminal while it runs (2-7 minutes) and the table
is repeated in the failure message.

    pytest -m "not autobahn"       # quick run without this test
    MICROWS_ECHO_SERVER=/path/to/other_echo_server.py pytest -m autobahn
        # same run against another server script taking --host/--port/--max-size
"""

import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from host_tests.processes import free_port, stop_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join("tools", "autobahn.py")
DEFAULT_SERVER = os.path.join("tools", "echo_server.py")
MAX_SIZE = 16 * 1024 * 1024
LISTEN_TIMEOUT_S = 10
RUN_BUDGET_S = 900  # the runner's --max-time; a healthy server needs 2-7 minutes
KILL_AFTER_S = RUN_BUDGET_S + 180  # last resort if the runner itself hangs
TABLE_START = "Autobahn|Testsuite (kosoku"  # first line of the runner's summary


def require_kosoku():
    """The test command installs kosoku; without it this test must fail, not skip."""
    if sys.version_info < (3, 10):
        pytest.fail("kosoku needs Python >= 3.10 (this is %d.%d): pip install "
                    "kosoku==0.1.0 under a newer Python" % sys.version_info[:2], pytrace=False)
    if importlib.util.find_spec("kosoku") is None:
        pytest.fail("kosoku is not installed: pip install kosoku==0.1.0", pytrace=False)


def tail(path, lines=40):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read().splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty)"


class EchoServer:
    """The server under test, started from the repository root; a context
    manager, so that it is stopped whatever happens."""

    def __init__(self, log_dir):
        self.script = os.environ.get("MICROWS_ECHO_SERVER") or DEFAULT_SERVER
        self.port = free_port()
        self.stdout_path = os.path.join(log_dir, "echo_server.stdout")
        self.stderr_path = os.path.join(log_dir, "echo_server.stderr")
        self.proc = None

    def __enter__(self):
        command = [sys.executable, self.script, "--host", "127.0.0.1",
                   "--port", str(self.port), "--max-size", str(MAX_SIZE)]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err,
                                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
        try:
            self.wait_listening(" ".join(command))
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def wait_listening(self, command):
        deadline = time.monotonic() + LISTEN_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"echo server exited with code {self.proc.returncode} before "
                            f"listening: {command}\n{self.logs()}", pytrace=False)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"echo server did not listen on 127.0.0.1:{self.port} within "
                    f"{LISTEN_TIMEOUT_S} s: {command}\n{self.logs()}", pytrace=False)

    def logs(self):
        return (f"--- echo server stderr (last lines) ---\n{tail(self.stderr_path)}\n"
                f"--- echo server stdout (last lines) ---\n{tail(self.stdout_path)}")

    def stop(self):
        stop_process(self.proc)


def run_autobahn(port, capsys):
    """Run tools/autobahn.py, streaming its output to the terminal -> (rc, output)."""
    command = [sys.executable, RUNNER, f"127.0.0.1:{port}", "--max-time", str(RUN_BUDGET_S)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            encoding="utf-8", errors="replace",
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    watchdog = threading.Timer(KILL_AFTER_S, proc.kill)
    watchdog.start()
    lines = []
    try:
        with capsys.disabled():
            print(f"\n$ {' '.join(command)}", flush=True)
            for line in proc.stdout:
                lines.append(line)
                sys.stdout.write(line)
                sys.stdout.flush()
        proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, "".join(lines)


def summary_of(output):
    """The runner's table and not-OK list, or the end of its output if it has none."""
    start = output.find(TABLE_START)
    if start >= 0:
        return output[start:]
    return "(the runner printed no table; last lines:)\n" + "\n".join(output.splitlines()[-60:])


def explain_exit(returncode):
    if returncode == 0:
        return "passed"
    if returncode == 1:
        return "exit 1: a case or check is FAILED, ERROR or TIMEOUT"
    if returncode == 2:
        return "exit 2: the run could not start"
    if returncode < 0:
        return f"killed by signal {-returncode} (a crash of kosoku's native code, or the watchdog)"
    return f"exit {returncode}"


@pytest.mark.autobahn
def test_autobahn_conformance(tmp_path, capsys):
    require_kosoku()
    with EchoServer(str(tmp_path)) as server:
        returncode, output = run_autobahn(server.port, capsys)
        server_exit = server.proc.poll()
        server_logs = server.logs()

    problems = []
    if returncode != 0:
        problems.append(f"tools/autobahn.py {explain_exit(returncode)}")
    if server_exit is not None:
        problems.append(f"the echo server exited during the run with code {server_exit}")
    if problems:  # the message alone, no traceback: the table is what matters
        pytest.fail("\n".join(problems + ["", summary_of(output), server_logs]), pytrace=False)
