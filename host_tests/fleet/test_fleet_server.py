"""tools/fleet.py serves the page, its committed script and /config.json;
tools/build_fleet.py makes exactly the committed bundle from package-lock.json."""

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from host_tests.processes import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLEET = os.path.join(ROOT, "tools", "fleet.py")


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "tools", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fleet_page():
    port = free_port()
    proc = subprocess.Popen([sys.executable, FLEET, "--broker", "ws://10.1.2.3:9001", "--root", "plant/floor2",
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        assert proc.poll() is None, proc.stdout.read().decode()
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "fleet.py did not listen"
            time.sleep(0.05)
    yield "http://127.0.0.1:%d" % port
    proc.terminate()
    proc.wait(5)


def get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.headers.get("Content-Type"), response.read()


def test_serves_page_script_and_config(fleet_page):
    status, kind, body = get(fleet_page + "/config.json")
    assert (status, kind) == (200, "application/json")
    assert json.loads(body) == {"broker": "ws://10.1.2.3:9001", "root": "plant/floor2"}
    status, kind, body = get(fleet_page + "/")
    assert status == 200 and kind.startswith("text/html")
    assert b'<script src="fleet.js"></script>' in body
    status, kind, body = get(fleet_page + "/fleet.js")
    with open(os.path.join(ROOT, "tools", "fleet", "www", "fleet.js"), "rb") as f:
        assert body == f.read()
    assert kind.startswith("application/javascript")


@pytest.mark.parametrize("args, problem", [
    (["--broker", "mqtt://127.0.0.1:1883"], "ws://HOST:PORT"),
    (["--broker", "ws://127.0.0.1:9001", "--root", "microws/#"], "without + or #"),
    ([], "--broker"),
])
def test_bad_options_are_refused_with_the_reason(args, problem):
    run = subprocess.run([sys.executable, FLEET] + args, capture_output=True, text=True, timeout=20)
    assert run.returncode == 2
    assert problem in run.stderr


def test_committed_bundle_is_what_the_build_makes():
    same, size = _load("build_fleet").check()
    assert same, "tools/fleet/www/fleet.js is stale: run python3 tools/build_fleet.py and commit it"
    assert 100_000 < size < 500_000  # the mqtt client is in it, minified
