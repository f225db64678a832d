"""firmware/main.py itself under MicroPython's unix port, as a board starts
it: config.json, the board file, a custom.py, the Wi-Fi (a stand-in
`network` module: no network, so its own access point), then the server.
The start-up checks are gone from sys.modules once it serves."""
import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request

import websockets

from host_tests.processes import free_port, lines_until, micropython_command

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

NETWORK = '''
STA_IF = 0
AP_IF = 1
STAT_IDLE = 0
STAT_CONNECTING = 1
STAT_WRONG_PASSWORD = -3
STAT_NO_AP_FOUND = -2
STAT_CONNECT_FAIL = -1
STAT_GOT_IP = 3
AUTH_OPEN = 0
AUTH_WPA2_PSK = 3


class WLAN:
    """No network in reach: main.py opens its own access point."""

    def __init__(self, interface):
        self.interface = interface

    def active(self, on=None):
        return True

    def connect(self, *args):
        pass

    def disconnect(self):
        pass

    def isconnected(self):
        return False

    def status(self, param=None):
        return STAT_NO_AP_FOUND if param is None else -70

    def config(self, *args, **kwargs):
        return b"\\x01\\x02\\x03\\x04\\x05\\x06" if args else None

    def ifconfig(self, *args):
        return ("192.168.4.1", "255.255.255.0", "192.168.4.1", "192.168.4.1")
'''

CUSTOM = '''
import sys

from extend import command, route


@command("hi")
def hi(device, args):
    return {"hello": device.name}


@route("/modules")
def modules(device, request):
    return sorted(sys.modules)
'''


async def _dashboard(port):
    async with websockets.connect("ws://127.0.0.1:%d/ws" % port) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        await ws.send('{"cmd":"hi","id":1}')
        while True:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if reply["t"] == "ack":
                return hello, reply


def _wait_listening(port, seconds=10):
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_main_py_starts_with_custom_py_and_drops_the_start_up_checks(tmp_path):
    port = free_port()
    (tmp_path / "boards").mkdir()
    shutil.copy(os.path.join(ROOT, "boards", "host.json"), str(tmp_path / "boards"))
    shutil.copytree(os.path.join(ROOT, "firmware", "www"), str(tmp_path / "www"))
    (tmp_path / "config.json").write_text(json.dumps({"board": "host", "port": port, "device_name": "potting-shed"}))
    (tmp_path / "custom.py").write_text(CUSTOM)
    (tmp_path / "network.py").write_text(NETWORK)
    env = dict(os.environ, MICROPYPATH=".frozen:%s:%s:%s" % (tmp_path, os.path.join(ROOT, "lib"),
                                                              os.path.join(ROOT, "firmware")))
    proc = subprocess.Popen([micropython_command(), "-X", "heapsize=1M", os.path.join(ROOT, "firmware", "main.py")],
                            cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        text = "".join(lines_until(proc, "serving on port"))
        assert "custom: loaded custom.py (sensors: -; commands: hi; routes: /modules)" in text, text
        assert "serving on port %d" % port in text, text
        _wait_listening(port)  # main.py says so just before asyncio.run() opens the port
        hello, reply = asyncio.run(_dashboard(port))
        assert hello["device"] == "potting-shed" and hello["commands"] == ["hi"]
        assert reply == {"t": "ack", "id": 1, "cmd": "hi", "hello": "potting-shed"}
        with urllib.request.urlopen("http://127.0.0.1:%d/modules" % port, timeout=10) as answer:
            modules = json.loads(answer.read())
        assert "app" in modules and "extend" in modules
        # dropped once the App runs: the checks, the sensor and output factories, the first Wi-Fi join
        assert not {"boardfile", "config", "mqtt_config", "sensor_kinds", "output_kinds", "wifi_join"} & set(modules)
        # not configured, never imported: no token, no MQTT
        assert not {"token_guard", "uplink", "mqtt"} & set(modules)
    finally:
        proc.kill()
        proc.wait(5)
        proc.stdout.close()
