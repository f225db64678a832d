"""tools/bench_mp.py in its tiny configuration, so the MicroPython benchmark
cannot rot.

It checks the machinery, not the speed: every job runs under MicroPython
(the WebAssembly port, in Node), every measurement is reported as one JSON
line with its keys and a positive figure, every target gets a verdict, and
microdot is measured beside microws in the same run.

No assertion on allocation per message: the server path does allocate today
(see the tool's table (c)); the protocol core's zero allocation is proven
by host_tests/core/mp_only/test_zero_alloc.py instead.
Install the interpreter first: npm ci --prefix host_tests/micropython
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BENCH = os.path.join(ROOT, "tools", "bench_mp.py")
MP_DIR = os.path.join(HERE, "micropython")
PACKAGE_DIR = os.path.join(MP_DIR, "node_modules", "@micropython", "micropython-webassembly-pyscript")
INSTALL_HINT = "run: npm ci --prefix host_tests/micropython"
TIMEOUT_S = 600

ECHO_SIZES = {16, 1024, 65536}
MICROWS_MODULES = {"microws", "microws.sha1", "microws.compat", "microws.utf8", "microws.frames",
                   "microws.handshake", "microws.connection", "microws.http", "microws.server", "total"}
MICRODOT_MODULES = {"microdot", "microdot.websocket", "total"}
ALLOC_CASES = {"echo 16 B", "echo 1024 B", "send 64 B", "broadcast 64 B to 4"}


def _problem():
    """Why MicroPython cannot run here, or None (as test_micropython.py decides)."""
    if shutil.which("node") is None:
        return "node is not on PATH: install Node.js 20+, then " + INSTALL_HINT
    if not os.path.isdir(PACKAGE_DIR):
        return "MicroPython for Node is not installed: " + INSTALL_HINT
    return None


@pytest.fixture(scope="module")
def tiny_run():
    problem = _problem()
    if problem:
        pytest.skip(problem)
    result = subprocess.run([sys.executable, BENCH, "--tiny"], capture_output=True, text=True,
                            timeout=TIMEOUT_S, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.stdout, lines


def rows(lines, bench, **match):
    return [r for r in lines if r["bench"] == bench and all(r.get(k) == v for k, v in match.items())]


def test_every_json_line_has_its_keys_and_a_figure(tiny_run):
    _, lines = tiny_run
    assert lines
    for row in lines:
        assert isinstance(row["bench"], str)
        assert row["tiny"] is True
        if row["bench"] not in ("platform", "harness_alloc"):
            assert isinstance(row["value"], (int, float)), row


def test_it_ran_under_micropython_with_the_portable_unmask(tiny_run):
    _, lines = tiny_run
    for row in rows(lines, "platform"):
        assert row["implementation"] == "micropython"
        assert row["platform"] == "webassembly"
        assert row["unmask"] == "python"  # no viper on this port


def test_import_heap_of_every_module_from_source_and_precompiled(tiny_run):
    _, lines = tiny_run
    for lib, modules in (("microws", MICROWS_MODULES), ("microdot", MICRODOT_MODULES)):
        for form in ("py", "mpy"):
            found = rows(lines, "import_heap", lib=lib, form=form)
            assert {r["module"] for r in found} == modules, (lib, form)
            total = [r for r in found if r["module"] == "total"][0]
            assert total["value"] > 0
            assert total["value"] == sum(r["value"] for r in found if r["module"] != "total")


def test_heap_per_idle_connection(tiny_run):
    _, lines = tiny_run
    for lib in ("microws", "microdot"):
        found = rows(lines, "conn_heap", lib=lib)
        assert {r["max_message_size"] for r in found} == {1024, 512}
        for row in found:
            assert row["value"] > 0 and row["connections"] > 0 and row["fake_stream"] > 0
            if lib == "microws":
                # the receive buffer is the connection's: max_message_size + 139, in 16-byte blocks
                assert row["receive_buffer"] == (row["max_message_size"] + 139 + 15) // 16 * 16
                assert row["excluding_buffer"] == row["value"] - row["receive_buffer"]
                assert row["excluding_buffer"] > 0


def test_allocation_per_message_is_measured(tiny_run):
    _, lines = tiny_run
    found = rows(lines, "alloc_per_message", lib="microws")
    assert {r["case"] for r in found} == ALLOC_CASES
    for row in found:
        assert row["messages"] > 0
        assert row["value"] >= 0 and row["stream_share"] >= 0
        assert abs(row["library"] + row["stream_share"] - row["value"]) < 0.01
    broadcast = [r for r in found if r["case"].startswith("broadcast")][0]
    assert broadcast["dropped"] == 0  # paced: every client got every message
    assert {r["case"] for r in rows(lines, "alloc_per_message", lib="microdot")} == {"echo 16 B", "echo 1024 B"}


def test_echo_rates_and_ratios_against_microdot(tiny_run):
    out, lines = tiny_run
    for lib in ("microws", "microdot"):
        found = rows(lines, "echo_rate", lib=lib)
        assert {r["size"] for r in found} == ECHO_SIZES
        for row in found:
            assert row["messages"] > 0 and row["seconds"] > 0
            assert abs(row["value"] - row["messages"] / row["seconds"]) <= 0.01 * row["value"]
    ratios = rows(lines, "echo_ratio")
    assert {r["size"] for r in ratios} == ECHO_SIZES
    for row in ratios:
        assert row["value"] > 0
        assert abs(row["value"] - row["microws"] / row["microdot"]) < 1e-6 * row["value"]


def test_capacity_in_a_small_heap(tiny_run):
    _, lines = tiny_run
    for lib in ("microws", "microdot"):
        (row,) = rows(lines, "capacity", lib=lib)
        assert row["heap"] == 49152 and row["max_message_size"] == 512  # the ESP8266's buffer
        assert row["form"] == "mpy"  # the port loads mpy-cross's .mpy files
        assert row["value"] >= 0
        assert row["interpreter_heap"] > 0 and row["import_and_server"] > 0 and row["per_connection"] > 0
        # the figures after 1, 2, ... connections grow, and `value` of them fit
        figures = row["heap_with_connections"]
        assert figures == sorted(figures)
        assert row["value"] == sum(1 for f in figures if f <= row["heap"])


def test_every_target_gets_a_verdict(tiny_run):
    out, _ = tiny_run
    verdicts = [line for line in out.splitlines() if line.startswith(("PASS ", "FAIL ", "SKIP "))]
    assert len(verdicts) == 3 + 1 + len(ALLOC_CASES), out
    assert not [v for v in verdicts if v.startswith("SKIP")], out  # microdot was measured
    for title in ("(a) heap taken by imports", "(b) heap held per idle connection", "(c) bytes allocated",
                  "(d) echo rate", "(e) idle dashboard connections"):
        assert title in out
