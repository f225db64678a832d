"""tools/bench.py in its tiny configuration, so the benchmark cannot rot.

It checks the machinery, not the speed: every server starts, every case
runs, every echoed byte comes back (the tool raises otherwise), and the
output has the shape the README's table is made from.
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "tools", "bench.py")

SERVERS = {"raw", "websockets", "microws"}
CASES = {("echo", size, n) for size in (16, 1024, 65536) for n in (1, 8)} | {("push", 64, 1), ("push", 64, 8)}


def run_tiny():
    result = subprocess.run([sys.executable, BENCH, "--tiny"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_tiny_run_measures_every_case_on_every_server_with_ratios():
    out = run_tiny()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    rows = [row for row in lines if row["bench"] in ("echo", "push")]
    unmask = [row for row in lines if row["bench"] == "unmask"]
    # the per-byte cost of unmasking, with websockets' C code as the reference
    assert {(row["size"], row["method"].split()[0]) for row in unmask} == {
        (size, method) for size in (16, 1024, 65536) for method in ("microws", "whole", "websockets")}
    assert all(row["ns_per_byte"] > 0 for row in unmask)
    assert all(row["vs_websockets_c"] > 0 for row in unmask if not row["method"].startswith("websockets"))
    seen = {(r["bench"], r["size"], r["connections"], r["server"]) for r in rows}
    assert seen == {case + (server,) for case in CASES for server in SERVERS}
    for row in rows:
        assert row["messages"] > 0 and row["seconds"] > 0
        assert abs(row["messages_per_s"] - row["messages"] / row["seconds"]) <= 0.01 * row["messages_per_s"] + 1
        assert row["client_cpu_us_per_message"] >= 0
        # every figure is given against the references of the same run
        for ref in ("websockets", "raw"):
            if row["server"] != ref:
                ratio = row["vs_" + ref]
                assert ratio > 0
    table_rows = [line for line in out.splitlines() if line.startswith("| echo") or line.startswith("| push")]
    assert len(table_rows) == len(rows)
    verdicts = [line for line in out.splitlines() if line.startswith(("PASS ", "FAIL "))]
    assert len(verdicts) == 3, out


def test_an_unknown_server_is_refused_with_a_clear_message():
    result = subprocess.run([sys.executable, BENCH, "--servers", "microws,nginx"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "unknown server 'nginx'" in result.stderr
