"""Put the library and the repository root on sys.path for every test."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (os.path.join(ROOT, "lib"), ROOT):
    if path not in sys.path:
        sys.path.insert(0, path)


def pytest_configure(config):
    """Register the markers used by the host tests."""
    config.addinivalue_line(
        "markers",
        "autobahn: Autobahn|Testsuite conformance run of the echo server (2-7 min); "
        "deselect with -m 'not autobahn'",
    )


# MicroPython-only tests (e.g. heap_lock checks) run through
# test_micropython.py, never directly under CPython.
collect_ignore_glob = ["core/mp_only/*"]
