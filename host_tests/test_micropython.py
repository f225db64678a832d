"""Runs the shared core tests under a real MicroPython and reports them here,
one pytest test per MicroPython test.

The test names come from the files' source (ast) at collection time. One Node
process (micropython/runner.mjs, the WebAssembly port of MicroPython) runs
all the needed files once per session; each generated test then looks up its
own `@@MPTEST {json}` result line.
Install the interpreter first: npm ci --prefix host_tests/micropython
"""
import ast
import glob
import json
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
MP_DIR = os.path.join(HERE, "micropython")
PACKAGE_DIR = os.path.join(MP_DIR, "node_modules", "@micropython", "micropython-webassembly-pyscript")
PATTERNS = ("core/test_*.py", "core/mp_only/test_*.py", "firmware_mp/test_*.py")
MARK = "@@MPTEST "
INSTALL_HINT = "run: npm ci --prefix host_tests/micropython"
TIMEOUT_S = int(os.environ.get("MICROWS_MP_TIMEOUT", "600"))
HEAP = os.environ.get("MICROWS_MP_HEAP")  # bytes; runner.mjs defaults to 2 MiB
TAIL_LINES = 30


def _test_files():
    """Paths relative to host_tests/, which is also what the runner reports."""
    found = []
    for pattern in PATTERNS:
        found += sorted(glob.glob(os.path.join(HERE, pattern)))
    return [os.path.relpath(f, HERE).replace(os.sep, "/") for f in found]


def _test_names(relpath):
    """Top-level test_* functions in source order, the order mp_runner.py
    runs them in. A file CPython cannot parse gets a single `<import>` test."""
    with open(os.path.join(HERE, relpath), encoding="utf-8") as f:
        source = f.read()
    try:
        tree = ast.parse(source, relpath)
    except SyntaxError:
        return ["<import>"]
    names = []
    for node in tree.body:
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.name.startswith("test_") and node.name not in names):
            names.append(node.name)
    return names


CASES = [(f, name) for f in _test_files() for name in _test_names(f)]


class Results:
    """What the single MicroPython run produced: records by (file, test), the
    output each test printed, and why nothing could run (`problem`)."""

    def __init__(self, problem=None):
        self.problem = problem
        self.records = {}
        self.tail = ""

    def parse(self, stdout, stderr):
        printed = []
        for line in stdout.splitlines():
            at = line.find(MARK)  # a test may print without a final newline
            if at < 0:
                printed.append(line)
                continue
            if at:
                printed.append(line[:at])
            record = json.loads(line[at + len(MARK):])
            record["printed"] = printed
            self.records[(record["file"], record["test"])] = record
            printed = []
        tail = stdout.splitlines()[-TAIL_LINES:] + ["--- stderr ---"] + stderr.splitlines()[-TAIL_LINES:]
        self.tail = "\n".join(tail)


def _text(data):
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data or ""


def _run_micropython(files):
    node = shutil.which("node")
    if node is None:
        return Results("node is not on PATH: install Node.js 20+, then " + INSTALL_HINT)
    if not os.path.isdir(PACKAGE_DIR):
        return Results("MicroPython for Node is not installed: " + INSTALL_HINT)
    command = [node, os.path.join(MP_DIR, "runner.mjs")]
    if HEAP:
        command += ["--heap", HEAP]
    results = Results()
    try:
        done = subprocess.run(command + files, cwd=HERE, capture_output=True,
                              text=True, encoding="utf-8", errors="replace", timeout=TIMEOUT_S)
        stdout, stderr = done.stdout, done.stderr
    except subprocess.TimeoutExpired as timeout:
        # Keep the results of the tests that finished before the hang.
        stdout = _text(timeout.stdout)
        stderr = _text(timeout.stderr) + "node was killed after %d s (MICROWS_MP_TIMEOUT)" % TIMEOUT_S
    results.parse(stdout, stderr)
    return results


@pytest.fixture(scope="session")
def micropython_results(request):
    """Runs MicroPython once per session, only on the files whose tests were
    selected (so `-k` stays fast)."""
    selected = []
    for item in request.session.items:
        case = getattr(item, "callspec", None) and item.callspec.params.get("mp_case")
        if case and case[0] not in selected:
            selected.append(case[0])
    return _run_micropython(selected)


@pytest.mark.parametrize("mp_case", CASES, ids=["%s::%s" % case for case in CASES])
def test_micropython(mp_case, micropython_results):
    file, name = mp_case
    results = micropython_results
    if results.problem:
        pytest.fail(results.problem, pytrace=False)
    record = results.records.get((file, name))
    if record is None:
        record = results.records.get((file, "<import>"))
    if record is None:
        pytest.fail("%s::%s reported no result under MicroPython (crashed, hung or never ran)."
                    "\nEnd of node's output:\n%s" % (file, name, results.tail), pytrace=False)
    if record["printed"]:
        print("\n".join(record["printed"]))  # shown by pytest as captured stdout
    if not record["ok"]:
        what = "import of %s" % file if record["test"] == "<import>" else "%s::%s" % (file, name)
        pytest.fail("%s failed under MicroPython:\n%s" % (what, record["error"]), pytrace=False)
