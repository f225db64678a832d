"""Fixtures of the uplink tests: a fresh Mosquitto for each test; firmware/
on sys.path (the modules a board runs from its root)."""

import os
import sys

import pytest

FIRMWARE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "firmware")
if FIRMWARE not in sys.path:
    sys.path.insert(0, FIRMWARE)

from host_tests.mqtt.broker import Mosquitto


@pytest.fixture
def broker(tmp_path):
    running = Mosquitto(str(tmp_path)).start()
    yield running
    running.stop()
