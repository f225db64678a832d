"""A quick run of tools/bench_fleet.py (4 devices, 2 subscribers, 3 s) reports sane figures:
every device stream reaches every subscriber, nothing lost or out of order, latencies
and CPU measured. No timing thresholds: the README's figures come from the full run."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "host_tests", "mqtt"))
from broker import require_mosquitto  # noqa: E402

CHROMIUM = os.environ.get("MICROWS_CHROMIUM") or "/usr/bin/chromium"


def bench(*extra):
    require_mosquitto()
    run = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench_fleet.py"), "--devices", "4",
                          "--rate", "4", "--subscribers", "2", "--seconds", "3", "--json"] + list(extra),
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def test_quick_bench_reports_sane_figures():
    r = bench()
    assert r["streams"] == 4 * 2  # every device at every subscriber
    assert r["expected"] > 0 and r["missing"] == 0 and r["out_of_order"] == 0 and r["loss"] == 0
    assert r["received"] == r["expected"]  # each sample once per subscriber
    assert r["received_per_s"] > r["published_per_s"] > 0
    lat = r["latency_ms"]
    assert lat["n"] == r["received"]  # the simulator knows the time: every sample has ts
    assert 0 <= lat["p50"] <= lat["p99"] <= lat["max"]
    for part in ("broker", "devices", "subscribers"):
        assert r["cpu_percent"][part] >= 0
    assert r["broker_us_per_delivery"] >= 0 and r["device_us_per_sample"] > 0
    assert r["page_busy_percent"] is None


@pytest.mark.skipif(importlib.util.find_spec("playwright") is None or not os.access(CHROMIUM, os.X_OK),
                    reason="the fleet page run needs playwright and Chromium (apt-get install -y chromium)")
def test_quick_bench_with_the_fleet_page_measures_it():
    r = bench("--page")
    assert r["missing"] == 0 and r["streams"] == 4 * 2
    assert 0 < r["page_busy_percent"] < 100
