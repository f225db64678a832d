"""tools/bench_uplink.py runs (short) and its figures hold: the uplink's
per-sample allocation stays below a budget, no sample is lost on the way."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import bench_uplink  # noqa: E402
from host_tests.mqtt.broker import require_mosquitto  # noqa: E402


def test_bench_uplink_measures_on_micropython(capsys):
    require_mosquitto()
    figures = bench_uplink.main(["--publishes", "5000"])
    out = capsys.readouterr().out
    assert "| import heap (mqtt, mqtt_config, uplink as .mpy) |" in out
    assert 4000 < figures["import_heap"] < 40000
    assert figures["object_heap"] > 768 + 512  # the receive and send buffers at least
    # a budget: the bytes copy of the text, a view and a wake-up; a coroutine per publish would exceed it
    assert figures["publish_bytes"] <= 256, figures["publish_bytes"]
    assert figures["uplink_per_s"] > 0 and figures["client_per_s"] > 0 and figures["raw_per_s"] > 0
