"""tools/bench_mp.py in its tiny configuration, so the MicroPython benchmark
cannot rot.

It checks the machinery, not the figures: the servers run under
MicroPython's unix port on real sockets, every section measures every
server it is meant to with a figure in its JSON lines, and every target
gets a verdict. The figures themselves (and whether microws loses
connections in a small heap) are the tool's to report, not this test's.

Needs `micropython` (the unix port) and `mpy-cross` on PATH; without them
the tool says so and exits 2, and this test fails with that message.
"""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TOOLS = os.path.join(ROOT, "tools")
BENCH = os.path.join(TOOLS, "bench_mp.py")
MICROWS_DIR = os.path.join(ROOT, "lib", "microws")
TIMEOUT_S = 300

ASYNC_SERVERS = {"microws", "microdot"}
SECTIONS = ("(a) heap taken by importing", "(b) smallest -X heapsize", "(c) heap held per idle connection",
            "(d) idle dashboard connections", "(e) heap allocated per echoed message", "(f) echo rate")
CAPACITY_HEAPS = {48 * 1024, 64 * 1024, 110 * 1024, 155 * 1024}
ROMFS_CAPACITY_HEAPS = {48 * 1024, 64 * 1024, 110 * 1024}


@pytest.fixture(scope="module")
def tiny_run():
    result = subprocess.run([sys.executable, BENCH, "--tiny"], capture_output=True, text=True,
                            timeout=TIMEOUT_S, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, result.stdout + result.stderr
    return result.stdout, lines


def rows(lines, bench, **match):
    return [r for r in lines if r["bench"] == bench and all(r.get(k) == v for k, v in match.items())]


def echo_servers(lines):
    """The echo servers measured: microws's receive_message variant when it has one."""
    found = {"microws", "microdot", "mws"}
    if rows(lines, "min_heap", server="microws_rm"):
        found.add("microws_rm")
    return found


def test_every_json_line_has_a_figure(tiny_run):
    _, lines = tiny_run
    for row in lines:
        assert isinstance(row["bench"], str)
        assert row["tiny"] is True
        assert isinstance(row["value"], (int, float)), row
        assert row["value"] >= 0, row


def test_every_section_is_printed_without_a_failure_note(tiny_run):
    out, _ = tiny_run
    for title in SECTIONS:
        assert title in out
    notes = [line for line in out.splitlines() if line.startswith("note:")]
    assert not [n for n in notes if "not measured" in n or "skip" in n], out


def test_import_heap_of_every_server_and_every_microws_module(tiny_run):
    _, lines = tiny_run
    for server in ("microws", "microdot", "mws"):
        (total,) = rows(lines, "import_total", server=server)
        assert total["value"] > 0
    (microdot,) = rows(lines, "import_total", server="microdot")
    parts = rows(lines, "import_heap", server="microdot")
    assert microdot["value"] == sum(r["value"] for r in parts)
    modules = {"microws" if n == "__init__.py" else "microws." + n[:-3]
               for n in os.listdir(MICROWS_DIR) if n.endswith(".py")}
    found = rows(lines, "import_heap", server="microws")
    measured = {r["module"] for r in found}
    assert measured <= modules
    assert {"microws", "microws.frames", "microws.handshake", "microws.server"} <= measured
    assert [r for r in found if r["module"] == "microws.server"][0]["pulled_in_by_server"] is True
    assert rows(lines, "import_heap", server="asyncio")


def test_microws_modules_are_listed_leaves_first():
    sys.path.insert(0, TOOLS)
    try:
        import bench_mp
    finally:
        sys.path.remove(TOOLS)
    order = bench_mp.microws_modules()
    assert order[0] == "microws"
    assert order.index("microws.compat") < order.index("microws.server")
    assert order.index("microws.frames") < order.index("microws.connection")


def test_smallest_heap_of_every_echo_server(tiny_run):
    _, lines = tiny_run
    assert {r["server"] for r in rows(lines, "min_heap")} == echo_servers(lines)
    for row in rows(lines, "min_heap"):
        assert row["value"] > 0 and row["step"] > 0


def test_heap_per_idle_connection(tiny_run):
    _, lines = tiny_run
    wanted = echo_servers(lines) - {"mws"}  # it serves one client at a time
    assert {r["server"] for r in rows(lines, "conn_heap")} == wanted
    for row in rows(lines, "conn_heap"):
        assert row["connections"] > 0 and row["heap_with"] > row["heap_without"] > 0
        if row["server"].startswith("microws"):
            # max_message_size + 139 bytes, in 32-byte heap blocks (64-bit)
            assert row["receive_buffer"] == (row["max_message_size"] + 139 + 31) // 32 * 32
            assert row["value"] == row["at_accept"] + row["per_max_client_at_start"]
            assert row["beyond_buffer"] == row["value"] - row["receive_buffer"]


def test_connections_held_in_every_small_heap(tiny_run):
    _, lines = tiny_run
    for server in ASYNC_SERVERS:
        found = rows(lines, "capacity", server=server, code="mpy")
        assert {r["heap"] for r in found} == CAPACITY_HEAPS
        for row in found:
            assert row["settings"] == {"max_message_size": 512, "queue_size": 4}
            assert isinstance(row["lost"], int) and row["lost"] >= 0
            assert row["tries"] >= 1 and row["next_failure"]


def test_imports_and_connections_held_with_the_code_in_romfs(tiny_run):
    out, lines = tiny_run
    assert "(a2) the same imports with the code in a ROMFS image" in out and "(d2) the same" in out
    for server in ("microws", "microdot", "mws"):
        (row,) = rows(lines, "import_total_romfs", server=server)
        assert row["value"] > 0 and row["image_bytes"] > 0
        assert row["image_heap"] >= row["image_bytes"]  # the image is a bytearray in that heap
        # in place: less heap than the same .mpy files imported from the filesystem
        (from_files,) = rows(lines, "import_total", server=server)
        assert row["value"] < from_files["value"], (row, from_files)
    for server in ASYNC_SERVERS:
        found = rows(lines, "capacity", server=server, code="romfs")
        assert {r["heap"] for r in found} == ROMFS_CAPACITY_HEAPS
        for row in found:
            assert isinstance(row["lost"], int) and row["lost"] >= 0 and row["next_failure"]


def test_allocation_per_message(tiny_run):
    _, lines = tiny_run
    for server in echo_servers(lines) - {"mws"}:
        found = rows(lines, "alloc_per_message", server=server)
        assert {r["size"] for r in found} == {16, 1024}
        for row in found:
            assert row["messages"] > 0 and row["side_channel_reading"] > 0


def test_echo_rate_of_every_server(tiny_run):
    _, lines = tiny_run
    for server in echo_servers(lines):
        found = rows(lines, "echo_rate", server=server)
        assert {r["size"] for r in found} == {16, 1024, 65536}
        for row in found:
            assert row["messages"] > 0 and row["seconds"] > 0
            assert abs(row["value"] - row["messages"] / row["seconds"]) <= 0.01 * row["value"]


def test_every_target_gets_a_verdict_also_in_markdown(tiny_run):
    out, lines = tiny_run
    table = out[out.index("\ntargets\n"):].strip().splitlines()[3:]  # after the title, header and rule
    assert len(table) >= 5, out
    for line in table:
        assert line.rstrip().endswith(("met", "missed")) or " missed by " in line, line

    sys.path.insert(0, TOOLS)
    try:
        import bench_mp
    finally:
        sys.path.remove(TOOLS)
    records = [{k: v for k, v in row.items() if k != "tiny"} for row in lines]
    servers = [s for s in ("microws", "microws_rm", "microdot", "mws") if s in echo_servers(lines)]
    markdown = bench_mp.targets_text(bench_mp.targets(records, servers), markdown=True).splitlines()
    assert markdown[:2] == ["| target | measured | verdict |", "|---|---:|---|"]
    assert len(markdown) == 2 + len(table)
    for line in markdown[2:]:
        assert line.startswith("| ") and ("| met |" in line or "| **missed" in line), line
