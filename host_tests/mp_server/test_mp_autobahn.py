"""Autobahn|Testsuite cases 1.*-7.* and 10.* against tools/echo_server.py
under the MicroPython unix port, through tools/autobahn.py (kosoku's case
files), as host_tests/test_autobahn.py does for CPython.

    micropython -X heapsize=256k tools/echo_server.py --max-size 65536

Required: 0 FAILED, ERROR or TIMEOUT (the runner's exit status 0). A message
larger than 64 KiB must get close 1009, which Autobahn accepts (those are
the 9.x cases, not in this run). Run once in a 256 KB heap and once in 2 MB.
Deselect with -m "not autobahn".
"""

import importlib.util
import os
import subprocess
import sys
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"]
MAX_SIZE = 65536
RUN_BUDGET_S = 600  # the runner's --max-time
KILL_AFTER_S = RUN_BUDGET_S + 120  # if the runner itself hangs
TABLE_START = "Autobahn|Testsuite (kosoku"


def require_kosoku():
    """The test command installs kosoku; without it this test fails, not skips."""
    if sys.version_info < (3, 10):
        pytest.fail("kosoku needs Python >= 3.10 (this is %d.%d)" % sys.version_info[:2], pytrace=False)
    if importlib.util.find_spec("kosoku") is None:
        pytest.fail("kosoku is not installed: pip install kosoku==0.1.0", pytrace=False)


def run_autobahn(port, capsys):
    """tools/autobahn.py with its output streamed to the terminal -> (rc, output)."""
    command = [sys.executable, os.path.join("tools", "autobahn.py"), "127.0.0.1:%d" % port,
               "--max-time", str(RUN_BUDGET_S)]
    for case in CASES:
        command += ["-i", case]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            encoding="utf-8", errors="replace", env=dict(os.environ, PYTHONUNBUFFERED="1"))
    watchdog = threading.Timer(KILL_AFTER_S, proc.kill)
    watchdog.start()
    lines = []
    try:
        with capsys.disabled():
            print("\n$ %s" % " ".join(command), flush=True)
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
    start = output.find(TABLE_START)
    if start >= 0:
        return output[start:]
    return "(the runner printed no table; last lines:)\n" + "\n".join(output.splitlines()[-60:])


@pytest.mark.autobahn
@pytest.mark.parametrize("heap", ["256k", "2m"])
def test_autobahn_conformance_under_micropython(mp_server, mpy_lib, capsys, heap):
    require_kosoku()
    # precompiled, as on a board: compiling the source alone needs more than 256 KB
    server = mp_server(heap=heap, script=os.path.join(ROOT, "tools", "echo_server.py"),
                       ready="echo server on", max_size=MAX_SIZE, lib=mpy_lib)
    returncode, output = run_autobahn(server.port, capsys)
    alive = server.alive()
    problems = []
    if returncode != 0:
        problems.append("tools/autobahn.py exit %s (1: a case or check is FAILED, ERROR or TIMEOUT)"
                        % returncode)
    if not alive:
        problems.append("the MicroPython echo server exited during the run with code %s"
                        % server.proc.returncode)
    if problems:
        pytest.fail("\n".join(problems + ["", summary_of(output), server.log(20)]), pytrace=False)
