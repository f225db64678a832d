"""The short soak: tools/soak.py with 20,000 frames (the long run is the tool)."""

import asyncio
import importlib.util
import os
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location("soak", os.path.join(ROOT, "tools", "soak.py"))
soak = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(soak)


def test_short_soak_fast_clients_lose_nothing_the_slow_one_drops_counted_frames():
    tracemalloc.start()
    try:
        result = asyncio.run(asyncio.wait_for(
            soak.soak(20000, fast=3, slow=1, queue=8, every_s=1.0, payload=1024, log=lambda *a: None), 240))
    finally:
        tracemalloc.stop()
    assert soak.problems(result) == []
    clients = result["clients"]
    for name in ("fast0", "fast1", "fast2"):
        assert clients[name]["received"] == 20000 and clients[name]["dropped_by_server"] == 0
    assert clients["slow0"]["dropped_by_server"] > 0  # it really was too slow
    assert clients["slow0"]["received"] < 20000
    # bounded: 20 MB went through; what stays traced is a few queues' worth
    assert result["traced_end"] < 2 * 1024 * 1024, result["traced_end"]
    assert all(point["traced"] < 4 * 1024 * 1024 for point in result["memory"]), result["memory"]
